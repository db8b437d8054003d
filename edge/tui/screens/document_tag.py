"""T on the page list: which required document a page, or a run of pages, is, and in what form.

The documents offered are the dossier's procedure's (thành phần hồ sơ, in the
catalogue's order), each with what the catalogue asks for and the pages already
tagged with it; the last choice takes the tag off. Enter on a document goes on to
how it was given: the original (bản chính), a certified copy (bản sao có chứng thực),
a copy (bản sao) or an electronic copy (bản điện tử); Enter there tags the pages.
The pages field above takes one page or a run ("3-5"); it starts on the page the
clerk was on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from edge.catalogue import Document
from edge.printable import printable
from edge.tui.i18n import N_, _, ngettext
from edge.tui.screens.dialogs import Dialog
from edge.tui.widgets.common import Field, Plain, StatusLine
from edge.tui.widgets.page_list import KIND_NAMES, kind_name

NO_DOCUMENT = "-"
"""The option that takes the tag off (no document name is a single dash)."""
_RUN = re.compile(r"^\s*(\d{1,4})\s*(?:[-–—]\s*(\d{1,4}))?\s*$")


@dataclass(frozen=True)
class TagChoice:
    """What the clerk chose: page numbers, and the document and kind (None: no tag)."""

    pages: tuple[int, ...]
    document: str | None
    kind: str | None


def page_run(typed: str, last: int) -> tuple[int, ...] | None:
    """Page numbers from "3" or "3-5" (either order), all within 1..last; None if not so."""
    found = _RUN.match(typed)
    if found is None:
        return None
    first = int(found.group(1))
    end = int(found.group(2) or first)
    first, end = min(first, end), max(first, end)
    if first < 1 or end > last:
        return None
    return tuple(range(first, end + 1))


def numbers_text(numbers: Sequence[int]) -> str:
    """Page numbers as the clerk reads them: "2", "2–4", "1, 3–4"."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def wanted(document: Document) -> str:
    """What the catalogue asks for: "1 original", "1 original, 2 copies"."""
    parts = []
    if document.originals:
        count = document.originals
        parts.append(ngettext("{n} original", "{n} originals", count).format(n=count))
    if document.copies:
        count = document.copies
        parts.append(ngettext("{n} copy", "{n} copies", count).format(n=count))
    return ", ".join(parts)


class DocumentTagDialog(Dialog):
    """Choose the document and its kind for one page or a run of pages."""

    DEFAULT_CSS = """
    DocumentTagDialog #tag-pages-row { height: 1; }
    DocumentTagDialog #tag-pages-row Label { width: auto; padding-right: 1; }
    DocumentTagDialog #tag-pages { width: 12; }
    DocumentTagDialog #tag-pages-hint { width: 1fr; color: $text-muted; padding-left: 1; }
    DocumentTagDialog OptionList { height: auto; max-height: 10; border: none; padding: 0; }
    DocumentTagDialog #tag-kind-title { margin-top: 1; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), key_display="Esc"),
    ]

    def __init__(
        self,
        documents: Sequence[Document],
        tagged: dict[str, list[int]],
        *,
        numbers: tuple[int, ...],
        last: int,
        current: tuple[str | None, str | None] = (None, None),
    ) -> None:
        """``tagged`` gives the page numbers each document name is on now; ``last`` the
        number of the dossier's last page; ``current`` the first page's tag."""
        super().__init__()
        self.documents = list(documents)
        self.tagged = tagged
        self.numbers = numbers
        self.last = last
        self.current = current
        known = {d.name for d in self.documents}
        # a tag the catalogue no longer lists stays choosable, so it can be kept or fixed
        self.extra = [name for name in tagged if name not in known]
        self.document: str | None = None
        self._names = [d.name for d in self.documents] + self.extra

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="tag-box"):
            yield Plain(_("Which document are these pages?"), classes="dialog-title")
            with Horizontal(id="tag-pages-row"):
                yield Label(_("Pages"))
                yield Field(
                    value=numbers_text(self.numbers).replace("–", "-"),
                    id="tag-pages",
                    compact=True,
                    max_length=9,
                    restrict=r"[0-9 \-–]*",
                )
                yield Plain(_("one page, or a run such as 2-4"), id="tag-pages-hint")
            yield OptionList(id="tag-documents")
            yield Plain(_("Given as"), id="tag-kind-title")
            yield OptionList(id="tag-kinds")
            yield StatusLine("", id="tag-status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        documents = self.query_one("#tag-documents", OptionList)
        names = self._names
        for index, name in enumerate(names):
            documents.add_option(Option(self._document_line(name), id=f"doc:{index}"))
        untag = Text(_("No document: take the tag off"), style="italic")
        documents.add_option(Option(untag, id=NO_DOCUMENT))
        document, kind = self.current
        start = names.index(document) if document in names else self._first_untagged(names)
        documents.highlighted = start
        kinds = self.query_one("#tag-kinds", OptionList)
        for key in KIND_NAMES:
            kinds.add_option(Option(kind_name(key), id=key))
        kinds.highlighted = list(KIND_NAMES).index(kind) if kind in KIND_NAMES else 0
        kinds.disabled = True
        documents.focus()
        self.query_one("#tag-status", StatusLine).say(
            _("Enter chooses the document, then how it was given; Shift+Tab: the pages.")
        )

    def _first_untagged(self, names: list[str]) -> int:
        return next((i for i, n in enumerate(names) if not self.tagged.get(n)), 0)

    def _document_line(self, name: str) -> Text:
        line = Text(printable(name))
        document = next((d for d in self.documents if d.name == name), None)
        notes = []
        if document is not None and wanted(document):
            notes.append(wanted(document))
        if document is None:
            notes.append(_("not in the catalogue"))
        pages = self.tagged.get(name)
        notes.append(
            _("pages {numbers}").format(numbers=numbers_text(pages)) if pages else _("no page yet")
        )
        line.append("  (" + "; ".join(notes) + ")", style="dim")
        return line

    def _pages(self) -> tuple[int, ...] | None:
        field = self.query_one("#tag-pages", Input)
        found = page_run(field.value, self.last)
        if found is None:
            field.add_class("-invalid")
            field.focus()
            self.query_one("#tag-status", StatusLine).say(
                _("Write one page or a run such as 2-4, from 1 to {n}.").format(n=self.last),
                "error",
            )
        else:
            field.remove_class("-invalid")
        return found

    @on(OptionList.OptionSelected, "#tag-documents")
    def _document_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        pages = self._pages()
        if pages is None:
            return
        if event.option.id == NO_DOCUMENT:
            self.dismiss(TagChoice(pages, None, None))
            return
        self.document = self._names[event.option_index]
        kinds = self.query_one("#tag-kinds", OptionList)
        if self.current[0] != self.document:
            document = next((d for d in self.documents if d.name == self.document), None)
            if document is not None:
                kind = "original" if document.originals or not document.copies else "copy"
                kinds.highlighted = list(KIND_NAMES).index(kind)
        kinds.disabled = False
        kinds.focus()

    @on(OptionList.OptionSelected, "#tag-kinds")
    def _kind_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        pages = self._pages()
        if pages is None or self.document is None:
            return
        self.dismiss(TagChoice(pages, self.document, event.option.id))

    @on(Input.Submitted, "#tag-pages")
    def _pages_typed(self, event: Input.Submitted) -> None:
        event.stop()
        if self._pages() is not None:
            self.query_one("#tag-documents", OptionList).focus()

    def action_cancel(self) -> None:
        kinds = self.query_one("#tag-kinds", OptionList)
        if kinds.has_focus:
            # back to the documents, as a second thought about the document is common
            kinds.disabled = True
            self.query_one("#tag-documents", OptionList).focus()
            return
        self.dismiss(None)
