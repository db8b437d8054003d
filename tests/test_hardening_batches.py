"""Fuzzing the batch parser (issue 11): whatever a box or a stick sends as a batch document,
central refuses it with a 4xx-mapped error or takes it; it never raises anything else (a 500).

Hypothesis builds JSON of every shape, documents with the batch's own field names holding
values of the wrong type, size or nesting, and raw text that is barely JSON.
"""

from __future__ import annotations

import contextlib
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.sync import contract as c

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=40,
)
BATCH_FIELDS = ("v", "device", "after_seq", "after_hash", "keys", "dossiers")
EVENT_LIKE = st.dictionaries(
    st.sampled_from(
        ("seq", "dossier", "type", "key", "payload", "at", "hlc", "prev", "hash", "blobs")
    ),
    JSON,
)
BATCH_LIKE = st.fixed_dictionaries(
    {name: JSON for name in BATCH_FIELDS} | {"events": JSON | st.lists(EVENT_LIKE, max_size=3)},
    optional={"software": JSON},
)


def parse(text: str) -> None:
    """Decode as central does; only a DocumentError (a 4xx for the sender) may come out."""
    with contextlib.suppress(c.DocumentError):
        c.decode_document(c.SignedDocument(signed=text, signature="AA=="), c.Batch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BATCH_LIKE)
def test_batches_with_wrong_field_values_are_refused_not_crashed_on(doc: dict) -> None:
    parse(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_is_refused_or_taken(doc: object) -> None:
    parse(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789abtrue\\ ', max_size=400))
def test_barely_json_text_never_escapes_as_anything_but_a_refusal(text: str) -> None:
    parse(text)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=33, max_value=5000), st.sampled_from("[{"))
def test_deep_nesting_is_refused_before_the_decoder_recurses(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = (
        opener * depth + closer * depth if opener == "[" else '{"a":' * depth + "1" + closer * depth
    )
    try:
        c.decode_document(c.SignedDocument(signed=body, signature="AA=="), c.Batch)
    except c.DocumentError as exc:
        assert "deeper" in str(exc) or "malformed" in str(exc)
    assert c.json_too_deep(body.encode())


def test_a_well_formed_empty_batch_is_taken() -> None:
    """The fuzzing above would pass trivially if nothing ever decoded: this one must."""
    doc = {
        "v": 1,
        "device": "0" * 32,
        "after_seq": 0,
        "after_hash": "0" * 64,
        "events": [],
        "keys": [],
        "dossiers": [],
    }
    batch = c.decode_document(
        c.SignedDocument(signed=msgspec.json.encode(doc).decode(), signature="AA=="), c.Batch
    )
    assert batch.after_seq == 0 and batch.events == []
