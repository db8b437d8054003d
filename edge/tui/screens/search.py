"""Search from any list with /: code, CCCD, phone or name, with or without accents.

Names and numbers are found through the blind index (keyed hashes of their
words), then the matching dossiers' names are opened to show and order them
the Vietnamese way. Showing results is an audited view of personal data.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input

from edge.desk import SearchResult
from edge.tui.i18n import N_, _, local_time, number
from edge.tui.messages import status_label
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.columns import code_cell
from edge.tui.widgets.common import Field
from edge.tui.widgets.dossier_list import Column, DossierList, ListSource

SEARCH_DELAY = 0.25
LIMIT = 100


class SearchScreen(DeskScreen):
    searchable = False
    nav = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", N_("Back"), key_display="Esc"),
    ]

    DEFAULT_CSS = """
    SearchScreen #query { margin: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self.result = SearchResult(0)

    def body(self) -> ComposeResult:
        yield Field(
            placeholder=_("Code, CCCD, phone or name (accents optional)"),
            id="query",
            compact=True,
            max_length=100,
        )
        yield DossierList(
            ListSource([]),
            [
                Column(_("Citizen's name"), 0, lambda r: r["name"] or "—"),
                Column(_("Dossier code"), 26, code_cell),
                Column(_("Status"), 14, lambda r: status_label(r["status"])),
                Column(_("Received"), 11, lambda r: local_time(r["received_at"])),
            ],
            empty=_("Type at least 2 characters; Enter searches at once."),
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
        rows = [
            {
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
        if self.result.truncated:
            self.say(
                _("{total} found; the newest {n} are shown. Type more to narrow.").format(
                    total=number(self.result.total), n=number(len(rows))
                )
            )
        else:
            self.say(_("{n} found.").format(n=number(self.result.total)))

    @on(DossierList.Chosen)
    def _open(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])

    def action_back(self) -> None:
        self.app.pop_screen()
