"""The dossier's page list: each page's number and what capture and the clerk said of it.

A line says what the page is (the cover carrying the dossier's code or a receipt
symbol, a blank page, a citizen's ID card), how it is turned, then capture's quality
warnings and, dimmed, its format. A page tagged with a required document has a
second line naming it and how it was given (original, copy, ...), cut to the list's
width: the tagging dialog (T) shows it in full. Lines wrap rather than being cut, so
nothing is lost at 80 columns, where the list is 33 cells wide.

With D the pages the clerk deleted follow under their own heading, each saying where
it was and when it went; U restores the highlighted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from edge.printable import printable
from edge.tui.i18n import N_, _, local_time
from edge.tui.messages import flag_label
from edge.tui.widgets.common import translate_bindings

MEDIA = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF", "application/pdf": "PDF"}
COVER_KINDS = ("dossier_code", "receipt_like")
"""Symbols that make a page a cover: the dossier's code, or what looks like a receipt's."""
KIND_NAMES = {
    "original": N_("original"),
    "certified_copy": N_("certified copy"),
    "copy": N_("copy"),
    "electronic": N_("electronic copy"),
}
"""How a document was given (bản chính, bản sao có chứng thực, bản sao, bản điện tử)."""
KIND_SHORT = {
    "original": N_("orig."),
    "certified_copy": N_("cert. copy"),
    "copy": N_("copy"),
    "electronic": N_("e-copy"),
}
"""The same, short enough for the page list's 33 cells at 80 columns."""
DELETED_HEADING = "deleted-heading"
INDENT = 4
"""Cells before a line's text: the page number ("12. ") or the deleted mark."""
_CONSOLE = Console(width=200, color_system=None, legacy_windows=False)
"""Only measures and wraps text (``Text.wrap`` needs a console); never prints."""


def kind_name(kind: str | None) -> str:
    return _(KIND_NAMES[kind]) if kind in KIND_NAMES else ""


@dataclass(frozen=True)
class PageEntry:
    """One line of the list: a page as the dossier screen knows it."""

    id: str
    number: int
    media_type: str
    dpi: float | None
    flags: tuple[str, ...] = ()
    cover: bool = False
    id_card: bool = False
    rotation: int = 0
    document: str | None = None
    kind: str | None = None
    deleted_at: str | None = None
    supplement: bool = False
    """Scanned while the agency's request for more documents was open (Mẫu 02)."""
    purged: bool = False
    """Its bytes left the box after retention: central keeps them."""

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def page_entry(
    page: Any,
    symbols: list[dict[str, Any]],
    *,
    cover: bool = False,
    supplement: bool = False,
) -> PageEntry:
    """A page row (dict or sqlite Row) with its opened symbols as a list entry.

    ``cover`` says the log shows capture opened the dossier on this page (its code
    symbol is not kept); a cover symbol among ``symbols`` says so too.
    """
    kinds = {str(s.get("kind")) for s in symbols}
    flags = page["flags"]
    if isinstance(flags, str):
        flags = json.loads(flags or "[]")
    return PageEntry(
        id=str(page["id"]),
        number=int(page["position"]),
        media_type=str(page["media_type"]),
        dpi=page["dpi"],
        flags=tuple(str(f) for f in flags or ()),
        cover=cover or bool(kinds & set(COVER_KINDS)),
        id_card="cccd" in kinds,
        rotation=int(page["rotation"] or 0),
        document=page["document"],
        kind=page["document_kind"],
        deleted_at=page["deleted_at"],
        supplement=supplement,
        purged=_column(page, "purged_at") is not None,
    )


def _column(page: Any, name: str) -> Any:
    """A column that stores from before its migration do not have yet."""
    try:
        return page[name]
    except (KeyError, IndexError):
        return None


def labels(entry: PageEntry) -> list[str]:
    """What the page is, in the clerk's words: cover, blank, ID card."""
    found = []
    if entry.cover:
        found.append(_("Cover"))
    if "blank" in entry.flags:
        found.append(flag_label("blank"))
    if entry.id_card:
        found.append(_("ID card"))
    if entry.supplement:
        found.append(_("Supplement"))
    if entry.purged:
        found.append(_("kept at central"))
    return found


def page_line(entry: PageEntry, width: int) -> Text:
    """The entry's lines: number, labels, turn, warnings, format; then its document."""
    line = Text(end="")
    parts: list[tuple[str, str]] = []
    if entry.deleted:
        line.append(" ×  ", style="red")
        parts.append(
            (
                _("was page {n}, deleted {time}").format(
                    n=entry.number, time=local_time(entry.deleted_at or "")
                ),
                "red",
            )
        )
    else:
        line.append(f"{entry.number:>2}. ")
    parts += [(label, "bold") for label in labels(entry)]
    if entry.rotation:
        parts.append((_("turned {degrees}°").format(degrees=entry.rotation), "cyan"))
    warnings = [flag_label(f) for f in entry.flags if f != "blank"]
    if warnings:
        parts.append(("⚠ " + printable(", ".join(warnings)), "yellow"))
    fmt = MEDIA.get(entry.media_type, "?")
    if entry.dpi:
        fmt += f" {int(entry.dpi)} dpi"
    parts.append((fmt, "dim"))
    body = Text(end="")
    for index, (part, style) in enumerate(parts):
        if index:
            body.append(" · ", style="dim")
        body.append(part, style=style)
    # wrapped under the text, not under the number, so the numbers stand out
    rows = body.wrap(_CONSOLE, max(8, width - INDENT), overflow="fold")
    for index, row in enumerate(rows):
        if index:
            line.append("\n" + " " * INDENT)
        line.append_text(row)
    if entry.document:
        tag = printable(entry.document)
        how = _(KIND_SHORT[entry.kind]) if entry.kind in KIND_SHORT else ""
        second = Text(" " * INDENT)
        room = max(8, width - INDENT - (cell_len(how) + 3 if how else 0))
        if cell_len(tag) > room:
            tag = _cut(tag, room)
        second.append(tag, style="italic")
        if how:
            second.append(" · " + how, style="bold")
        line.append("\n")
        line.append_text(second)
    return line


def _cut(value: str, room: int) -> str:
    out = ""
    for char in value:
        if cell_len(out + char) > room - 1:
            break
        out += char
    return out.rstrip() + "…"


class PageList(OptionList):
    """The pages of a dossier; the keys act on the highlighted page (the screen does the work)."""

    DEFAULT_CSS = """
    PageList { scrollbar-size-vertical: 1; }
    """

    # None is shown in the footer, which has no room left at 80 columns: the dossier screen
    # says the main ones when the list gets the focus, and F1 lists them all.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", N_("Enlarge page"), show=False),
        Binding(
            "left_square_bracket,ctrl+up",
            "screen.move_page(-1)",
            N_("Move"),
            key_display="[ ]",
            show=False,
        ),
        Binding("right_square_bracket,ctrl+down", "screen.move_page(1)", N_("Down"), show=False),
        Binding("s", "screen.split", N_("Split here"), key_display="S", show=False),
        Binding("r", "screen.rotate_page(90)", N_("Turn"), key_display="R", show=False),
        Binding("R", "screen.rotate_page(-90)", N_("Turn back"), key_display="Shift+R", show=False),
        Binding("delete,x", "screen.delete_page", N_("Delete page"), key_display="X", show=False),
        Binding("t", "screen.tag_pages", N_("Tag document"), key_display="T", show=False),
        Binding("d", "screen.show_deleted", N_("Show deleted pages"), key_display="D", show=False),
        Binding("u", "screen.restore_page", N_("Restore page"), key_display="U", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        translate_bindings(self)
        self.entries: list[PageEntry] = []
        self._width = 0

    @property
    def line_width(self) -> int:
        """Cells a line has: the list's width, or the 80-column one before it is laid out."""
        width = self.scrollable_content_region.width
        return width if width > 0 else 33

    def show(self, entries: list[PageEntry], keep: str | None = None) -> None:
        """Show these pages (live ones, then deleted ones under a heading), on ``keep``."""
        current = keep if keep is not None else self.current_id
        self.entries = entries
        self._width = self.line_width
        self.clear_options()
        deleted = [e for e in entries if e.deleted]
        for entry in entries:
            if entry.deleted:
                continue
            self.add_option(Option(page_line(entry, self._width), id=entry.id))
        if deleted:
            heading = Text(" " + _("Deleted pages ({n})").format(n=len(deleted)), style="bold red")
            self.add_option(Option(heading, id=DELETED_HEADING, disabled=True))
            for entry in deleted:
                self.add_option(Option(page_line(entry, self._width), id=entry.id))
        ids = [e.id for e in entries if not e.deleted] + [e.id for e in deleted]
        if ids:
            target = current if current in ids else ids[0]
            self.highlighted = self.get_option_index(target)

    @property
    def current_id(self) -> str | None:
        if self.highlighted is None or not self.option_count:
            return None
        option = self.get_option_at_index(self.highlighted)
        return None if option.id == DELETED_HEADING else option.id

    @property
    def current(self) -> PageEntry | None:
        found = self.current_id
        return next((e for e in self.entries if e.id == found), None)

    def on_resize(self, event: events.Resize) -> None:
        if self.entries and self.line_width != self._width:
            self.show(self.entries)
