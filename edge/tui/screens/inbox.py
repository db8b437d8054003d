"""Scanned dossiers waiting for the clerk, oldest first; T shows every dossier instead.

Covers capture could not confirm are listed before the rest, marked in words. Each row
shows the citizen's name (opened for the rows on screen only) and the return date;
rows past their return date are marked and counted in the title.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from edge.tui.i18n import N_, _, ngettext, number
from edge.tui.queries import AllSource, WaitingSource
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen, overdue_note
from edge.tui.widgets.dossier_list import DossierList


class InboxScreen(DeskScreen):
    nav = "inbox"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "toggle_all", N_("All / waiting")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = False

    def body(self) -> ComposeResult:
        today = self.office.today
        yield DossierList(
            WaitingSource(self.office.store),
            [
                columns.code(),
                columns.name(),
                columns.return_by(today),
                columns.received(min_list_width=columns.WIDE),
                columns.pages(min_list_width=columns.WIDE),
                columns.flags(16),
                columns.status(14, min_list_width=columns.WIDE),
            ],
            empty=_("No scanned dossier is waiting. New scans appear here by themselves."),
            reveal=self.reveal_name,
            marked=columns.overdue_test(today),
            id="list",
        )

    def on_mount(self) -> None:
        self.query_one(DossierList).focus()
        self._title()

    def _title(self) -> None:
        listing = self.query_one(DossierList)
        total = listing.total
        source = listing.source
        if self.show_all:
            title = _("All dossiers ({n})").format(n=number(total))
        else:
            title = _("Dossiers waiting for details ({n})").format(n=number(total))
            reviews = source.reviews() if isinstance(source, WaitingSource) else 0
            if reviews:
                title += " · " + ngettext(
                    "{n} cover to check first", "{n} covers to check first", reviews
                ).format(n=number(reviews))
        if isinstance(source, WaitingSource):
            # the whole table (100,000 rows) is not counted on every redraw: its rows are marked
            title += overdue_note(source.overdue(self.office.today()))
        self.set_title(title)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        source = AllSource if self.show_all else WaitingSource
        self.query_one(DossierList).set_source(source(self.office.store))
        self._title()

    def refresh_data(self) -> None:
        self.query_one(DossierList).reload()
        self._title()

    @on(DossierList.Chosen)
    def _open(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])
