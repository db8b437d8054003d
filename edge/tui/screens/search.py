"""Search from any list with /: code, CCCD, phone or name, with or without accents.

Names and numbers are found through the blind index (keyed hashes of their
words), then the matching dossiers' names are opened to show and order them
the Vietnamese way. Showing results is an audited view of personal data.

Each result shows its return date, marked when overdue. The names found are dropped
when the desk locks, and the search runs again once the clerk is back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input

from edge.desk import SearchResult
from edge.tui.i18n import N_, _, number
from edge.tui.messages import search_hint
from edge.tui.queries import return_dates
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen, overdue_note
from edge.tui.widgets.common import Field
from edge.tui.widgets.dossier_list import DossierList, ListSource

SEARCH_DELAY = 0.25
LIMIT = 100


class SearchScreen(DeskScreen):
    searchable = False
    nav = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", N_("Back"), key_display="Esc"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self.result = SearchResult(0)
        self._forgotten = False

    def body(self) -> ComposeResult:
        yield Field(
            placeholder=_("Code, CCCD, phone or name (accents optional)"),
            id="query",
            compact=True,
            max_length=100,
        )
        today = self.office.today
        yield DossierList(
            ListSource([]),
            [
                columns.name(),
                columns.code(),
                columns.return_by(today),
                columns.status(14),
                columns.received(min_list_width=columns.WIDE),
            ],
            empty=_("Type at least 2 characters; Enter searches at once."),
            marked=columns.overdue_test(today),
            id="results",
        )

    def on_mount(self) -> None:
        self.set_title(_("Search"))
        self.query_one("#query", Input).focus()

    @on(Input.Changed, "#query")
    def _typed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY, self.search)

    @on(Input.Submitted, "#query")
    def _submitted(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.search()
        if self.result.rows:
            self.query_one(DossierList).focus()

    def on_key(self, event: Any) -> None:
        if event.key == "down" and self.focused is self.query_one("#query"):
            self.query_one(DossierList).focus()
            event.stop()

    def search(self) -> None:
        self._timer = None
        if self.office.unlocked is None:
            return
        query = self.query_one("#query", Input).value.strip()
        results = self.query_one(DossierList)
        if len(query.replace(" ", "")) < 2:
            self.result = SearchResult(0)
            results.set_source(ListSource([]))
            self.say("")
            return
        self.result = self.desk.reader.find(query, LIMIT)
        dates = return_dates(self.office.store, [f.dossier_id for f in self.result.rows])
        rows = [
            {
                **dates.get(f.dossier_id, {}),
                "id": f.dossier_id,
                "code": f.code,
                "status": f.status,
                "received_at": f.received_at,
                "name": f.name,
            }
            for f in self.result.rows
        ]
        results.empty = _("Nothing found. Check the spelling, or search by code or CCCD.")
        results.set_source(ListSource(rows))
        if rows:
            self.desk.ledger.searched([f.dossier_id for f in self.result.rows], self.result.total)
        today = self.office.today()
        late = overdue_note(sum(columns.is_overdue(row, today) for row in rows))
        if self.result.truncated:
            self.say(
                _("{total} found; the newest {n} are shown. Type more to narrow.").format(
                    total=number(self.result.total), n=number(len(rows))
                )
                + late
            )
        elif rows or not self.result.hint:
            self.say(_("{n} found.").format(n=number(self.result.total)) + late)
        if self.result.hint:
            self.say(search_hint(self.result.hint))

    def forget(self) -> None:
        """The names found go with the lock; ``refresh_data`` after sign-in searches again."""
        self.result = SearchResult(0)
        self.query_one(DossierList).set_source(ListSource([]))
        self._forgotten = True

    def refresh_data(self) -> None:
        # not on every change of the database: each search is an audited event, which
        # is itself a change
        if self._forgotten:
            self._forgotten = False
            self.search()

    @on(DossierList.Chosen)
    def _open(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])

    def action_back(self) -> None:
        self.app.pop_screen()
