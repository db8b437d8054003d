"""What every signed-in screen shares: navigation bar, title, status line, key hints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from edge.desk import DeskError
from edge.tui.messages import explain
from edge.tui.office import Office, Unlocked
from edge.tui.widgets.common import NavBar, StatusLine, Title, translate_bindings

if TYPE_CHECKING:
    from edge.tui.app import EdgeApp


class DeskScreen(Screen[Any]):
    """A screen of the signed-in desk; ``refresh_data`` runs when the database changed."""

    nav = ""
    searchable = True
    """Lists open search with /; screens where / is typed into a field set this False."""

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    @property
    def edge(self) -> EdgeApp:
        return self.app  # type: ignore[return-value]

    @property
    def office(self) -> Office:
        return self.edge.office

    @property
    def desk(self) -> Unlocked:
        """The unlocked office; screens exist only while a clerk is signed in."""
        unlocked = self.office.unlocked
        if unlocked is None:
            raise DeskError("locked")
        return unlocked

    def compose(self) -> ComposeResult:
        yield NavBar(self.nav)
        yield Title(id="title")
        yield from self.body()
        yield StatusLine(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def body(self) -> ComposeResult:
        yield from ()

    def set_title(self, text: str) -> None:
        try:
            title = self.query_one("#title", Title)
        except NoMatches:
            return  # the screen is being taken down (sign-out, exit): nothing left to show
        title.update(text)

    def say(self, message: str, kind: str = "info") -> None:
        try:
            line = self.query_one("#status", StatusLine)
        except NoMatches:
            return  # as in set_title
        line.say(message, kind)

    def fail(self, error: DeskError) -> None:
        self.say(explain(error), "error")

    @property
    def scan_into(self) -> str | None:
        """The dossier a scan started here joins; None: capture sorts the pages by their covers."""
        return None

    def action_scan(self) -> None:
        self.edge.start_scan(self.scan_into)

    def action_stop_scan(self) -> None:
        self.edge.stop_scan()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_scan":
            return self.edge.scanning
        return True

    def refresh_data(self) -> None:
        """The database changed (the daemon captured, or sync wrote): redraw what is shown."""
