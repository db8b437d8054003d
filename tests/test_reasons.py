"""Every reason the core can give has the clerk's sentence, in both languages.

Reasons are closed sets (``StrEnum``): a reason without a sentence used to reach the
clerk as its bare code ("too_big_to_decode") or as "Something went wrong".
"""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from edge.capture.pipeline import Outcome
from edge.capture.readers import Reason, bad_input
from edge.tui.i18n import po_path
from edge.tui.messages import QUARANTINE


def _catalogue(lang: str) -> dict[str, str]:
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.id, str)}


VI = _catalogue("vi")
EN = _catalogue("en")


@pytest.mark.parametrize("reason", list(Reason))
def test_every_capture_reason_has_the_clerk_s_sentence_in_both_catalogues(reason: Reason) -> None:
    sentence = QUARANTINE.get(reason)
    assert sentence is not None, f"no sentence for {reason} in edge/tui/messages.py"
    assert sentence in EN, "missing from the English catalogue"
    assert VI.get(sentence), "no Vietnamese translation"


@pytest.mark.parametrize("reason", list(Reason))
def test_every_capture_reason_has_an_english_message_for_the_log(reason: Reason) -> None:
    fields = {"kind": "GIF", "size": "1 x 1 pixels", "need": "1", "limit": "1"}
    message = bad_input(reason, **fields).message
    assert message and "\n" not in message and message.rstrip().endswith(".")


def test_outcomes_are_what_the_report_says() -> None:
    assert {str(o) for o in Outcome} == {
        "stored",
        "duplicate",
        "quarantined",
        "interrupted",
        "held",
        "failed",
    }
