"""Every reason the core can give has the clerk's sentence, in both languages.

Reasons are closed sets (``StrEnum``): a reason without a sentence used to reach the
clerk as its bare code ("too_big_to_decode") or as "Something went wrong".
"""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from edge.capture.pipeline import Outcome
from edge.capture.readers import Reason, bad_input
from edge.desk import DeskError, DeskReason
from edge.tui.i18n import _, po_path, set_language
from edge.tui.messages import ERRORS, QUARANTINE, explain


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


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("reason", list(DeskReason))
def test_every_desk_reason_has_a_sentence_that_says_what_to_do(
    reason: DeskReason, lang: str
) -> None:
    """A misspelt or forgotten reason used to reach the clerk as "Something went wrong"."""
    set_language(lang)
    try:
        error = DeskError(reason, field="full_name", seconds=30, fields=["full_name", "cccd"])
        sentence = explain(error)
        fallback = _("Something went wrong ({code}). Try again, or call regional IT.")
        assert sentence != fallback.format(code=reason)
        assert "\n" not in sentence and sentence.strip()
        if lang == "vi":
            english = ERRORS.get(reason)
            assert english is None or VI.get(english), f"{reason}: no Vietnamese translation"
    finally:
        set_language("vi")


def test_a_misspelt_desk_reason_fails_where_it_is_raised() -> None:
    with pytest.raises(ValueError):
        DeskError("dosier_missing")  # type: ignore[arg-type]
