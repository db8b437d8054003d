"""What capture saw on a cover it could not confirm, and an ID card found among the pages.

Texts shown here were printed on paper the box scanned (barcodes, QR codes): they are
hostile input. They become plain ``rich.text.Text`` (never parsed as markup, so
``[@click=app.quit]`` is only characters), with control and format characters made
visible (``edge.printable``) and each cut to a line; texts capture marked as personal
(a portal link carrying a citizen's ID number) stay hidden until the clerk asks to see them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from edge.printable import printable
from edge.symbols import IdCard, parse_id_card
from edge.tui.i18n import N_, _, ngettext
from edge.tui.messages import id_card_warning, review_why, symbology_label
from edge.tui.widgets.common import Field, translate_bindings

SHOWN_CANDIDATES = 3
"""Candidate lines in the panel; more are counted, not listed (80×24 leaves no room)."""


def safe_text(value: object, limit: int = 120) -> str:
    """A scanned text fit for one line of the screen: nothing in it acts, nothing hides.

    Escape sequences, bidi overrides and zero-width characters are shown as their escapes
    (``edge.printable``: a text cannot move the cursor, colour the terminal or read
    differently than it is), and a long text is cut with an ellipsis.
    """
    clean = printable(unicodedata.normalize("NFC", str(value)[: limit * 2]))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass(frozen=True)
class Candidate:
    """One symbol capture read on the cover and could not trust."""

    text: str
    symbology: str
    code: str | None
    alternatives: tuple[str, ...]
    why: str
    personal: bool


def candidates(review: dict[str, Any] | None) -> list[Candidate]:
    """The candidates of a ``dossier.created`` review payload, whatever shape it arrived in."""
    found: list[Candidate] = []
    items = review.get("review") if isinstance(review, dict) else None
    if not isinstance(items, list):
        return found
    for item in items:
        if not isinstance(item, dict):
            continue
        alternatives = item.get("alternatives")
        code = item.get("code")
        found.append(
            Candidate(
                text=str(item.get("text") or ""),
                symbology=str(item.get("symbology") or ""),
                code=code if isinstance(code, str) and code else None,
                alternatives=tuple(
                    str(a) for a in (alternatives if isinstance(alternatives, list) else [])
                ),
                why=str(item.get("why") or ""),
                personal=bool(item.get("personal", True)),
            )
        )
    return found


def best_code(found: Iterable[Candidate], patterns: Any) -> str:
    """The code to offer first: a candidate's valid code, else a text that is one, else ''.

    A personal text is never offered (only the code capture took out of it), so nothing
    personal is ever typed into a field on the clerk's behalf.
    """
    found = list(found)
    for candidate in found:
        if candidate.code:
            normal = patterns.match(candidate.code)
            if normal:
                return str(normal)
    for candidate in found:
        if candidate.personal:
            continue
        for text in (candidate.text, *candidate.alternatives):
            normal = patterns.match(text.strip()) if text else None
            if normal:
                return str(normal)
    return ""


@dataclass(frozen=True)
class Review:
    """What the panel shows for a dossier waiting for its cover to be checked."""

    found: tuple[Candidate, ...]
    page: int
    """Position of the page whose symbol capture could not trust."""
    previous_code: str | None
    """Code of the dossier "same as before" adds the pages to (None: it has none yet)."""
    has_previous: bool
    best: str = ""
    """The code offered for "a new dossier" (listed first wherever it was read)."""

    @property
    def has_hidden(self) -> bool:
        return any(c.personal for c in self.found)


def _quoted(text: str) -> str:
    return "«" + safe_text(text, 60) + "»"


def review_text(review: Review, *, revealed: bool) -> Text:
    """The panel's lines: what went wrong, what was read, and the two answers."""
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(
        "⚠ " + _("The box could not read the receipt on page {n} for sure.").format(n=review.page),
        style="bold",
    )
    if not review.found:
        out.append("\n  " + _("No symbol text was kept: look at the page."), style="italic")
    for candidate in review.found[:SHOWN_CANDIDATES]:
        out.append("\n  • ")
        label = symbology_label(candidate.symbology)
        why = review_why(candidate.why)
        if label and why:
            out.append(f"{label} ({why}): ", style="dim")
        elif label or why:
            out.append(f"{label or why}: ", style="dim")
        if candidate.personal and not revealed:
            if candidate.code:
                out.append(_("code {code}").format(code=safe_text(candidate.code, 40)) + ", ")
            out.append(_("hidden as personal data (v shows it)"), style="italic")
        else:
            texts = [candidate.text, *candidate.alternatives]
            # the valid code first: a long misread must not push it off the line
            texts.sort(key=lambda t: t.strip().upper() != review.best)
            for index, text in enumerate(texts[:3]):
                if index:
                    out.append(" " + _("or") + " ")
                out.append(_quoted(text), style="bold")
    more = len(review.found) - SHOWN_CANDIDATES
    if more > 0:
        out.append(
            "\n  "
            + ngettext("… and {n} more symbol", "… and {n} more symbols", more).format(n=more),
            style="dim",
        )
    out.append("\n")
    out.append("n", style="bold reverse")
    out.append(" " + _("new dossier (check the code)") + "   ")
    out.append("b", style="bold reverse")
    if review.has_previous:
        code = review.previous_code or _("(no code yet)")
        out.append(" " + _("same as before: {code}").format(code=safe_text(code, 40)))
    else:
        out.append(" " + _("same as before: no dossier before it"), style="dim")
    return out


class CodeInput(Field):
    """The code of the new dossier: prefilled, Enter confirms, Esc puts the question back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.review_cancel", N_("Cancel"), key_display="Esc"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        translate_bindings(self)


class ReviewPanel(Vertical, can_focus=True):
    """Above the form while the cover is unchecked; focused, so n and b answer at once."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "screen.review_new", N_("New dossier")),
        Binding("b", "screen.review_previous", N_("Same as before")),
        # named in the panel's own line, not in the footer: 80 columns are full
        Binding("v", "screen.review_reveal", N_("Show hidden"), show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        yield Static("", id="review-text")
        with Horizontal(id="review-new"):
            yield Label(_("New dossier code"))
            yield CodeInput(id="review-code", compact=True, max_length=60)

    def show(self, review: Review, *, revealed: bool) -> None:
        self.query_one("#review-text", Static).update(review_text(review, revealed=revealed))


# -- the citizen ID card (CCCD) QR -----------------------------------------------------------


@dataclass(frozen=True)
class CardFound:
    card: IdCard
    page: int


def find_id_card(pages: Iterable[tuple[int, list[dict[str, Any]]]], today: Any) -> CardFound | None:
    """The first readable ID card QR among the pages' symbols (position, symbols)."""
    for position, symbols in pages:
        for symbol in symbols:
            if symbol.get("kind") != "cccd":
                continue
            card = parse_id_card(str(symbol.get("text") or ""), today=today)
            if card is not None:
                return CardFound(card, position)
    return None


def card_text(found: CardFound) -> Text:
    card = found.card
    out = Text(end="")
    out.append(_("From the ID card on page {n}:").format(n=found.page) + " ", style="bold")
    out.append(
        _("{name}, {number}, born {date}").format(
            name=safe_text(card.full_name, 60),
            number=safe_text(card.number, 12),
            date=card.birth_date.strftime("%d/%m/%Y"),
        )
    )
    if card.warnings:
        problems = "; ".join(id_card_warning(w) for w in card.warnings)
        out.append("\n⚠ " + _("Check the card: {problems}.").format(problems=problems))
    out.append("\n")
    out.append("F3", style="bold reverse")
    out.append(" " + _("fills the form; Ctrl+S saves."), style="dim")
    return out


def card_values(card: IdCard) -> dict[str, str]:
    """The form's fields an ID card fills."""
    values = {
        "full_name": safe_text(card.full_name, 100),
        "cccd": card.number,
        "birth_year": f"{card.birth_date.year:04d}",
    }
    if card.address:
        values["address"] = safe_text(card.address, 200)
    return values
