"""What every signed-in screen shares: navigation bar, title, status line, key hints.

Below the body, a warning line appears while the capture daemon is not running (the
app decides, from its heartbeat): new scans then wait unread in the inbox, and the
clerk must know before telling a citizen their papers are in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer

from edge.desk import DeskError, DeskReason
from edge.tui.i18n import _, ngettext, number
from edge.tui.messages import explain
from edge.tui.office import Office, Unlocked
from edge.tui.widgets.common import (
    DeskFooter,
    NavBar,
    Plain,
    StatusLine,
    Title,
    translate_bindings,
)
from edge.tui.widgets.dossier_list import DossierList

if TYPE_CHECKING:
    from edge.tui.app import EdgeApp


LISTED_AUDIT_DELAY = 1.0
"""Seconds names drawn in a list are gathered before they are logged as one event."""


def capture_warning() -> str:
    return _("! Capture stopped: new scans are not read. Call regional IT (edge doctor).")


def overdue_note(n: int) -> str:
    """The title's count of overdue rows, with the mark those rows carry; "" when none."""
    if not n:
        return ""
    return " · ! " + ngettext("{n} overdue", "{n} overdue", n).format(n=number(n))


class DeskScreen(Screen[Any]):
    """A screen of the signed-in desk; ``refresh_data`` runs when the database changed."""

    nav = ""
    searchable = True
    """Lists open search with /; screens where / is typed into a field set this False."""

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)
        self._listed: list[str] = []
        self._audited: set[str] = set()
        self._listed_timer: Timer | None = None

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
            raise DeskError(DeskReason.LOCKED)
        return unlocked

    def compose(self) -> ComposeResult:
        yield NavBar(self.nav)
        yield Title(id="title")
        yield from self.body()
        warning = Plain(capture_warning(), id="capture-warning")
        warning.display = self.edge.capture_down
        yield warning
        yield StatusLine(id="status")
        yield DeskFooter(optional=self.edge.OPTIONAL_HINTS)

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

    def show_capture_down(self, down: bool) -> None:
        try:
            self.query_one("#capture-warning", Plain).display = down
        except NoMatches:
            return  # as in set_title

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

    def reveal_name(self, row: dict[str, Any]) -> None:
        """``DossierList.reveal``: the citizen's name of a row about to be drawn.

        Each name drawn is audited once per visit of the list, gathered for a moment so
        that scrolling writes one event, not one per row.
        """
        unlocked = self.office.unlocked
        if unlocked is not None and "name" not in row:
            row["name"] = unlocked.citizen_name(row["id"])
            if row["name"] and row["id"] not in self._audited:
                self._audited.add(row["id"])
                self._listed.append(row["id"])
                if self._listed_timer is None:
                    self._listed_timer = self.set_timer(LISTED_AUDIT_DELAY, self.audit_listed)

    def audit_listed(self) -> None:
        """Write the names drawn since the last write into the log (``audit.listed``)."""
        if self._listed_timer is not None:
            self._listed_timer.stop()
            self._listed_timer = None
        shown, self._listed = self._listed, []
        unlocked = self.office.unlocked
        if shown and unlocked is not None:
            unlocked.ledger.listed(shown)

    def on_unmount(self) -> None:
        self.audit_listed()

    def forget(self) -> None:
        """The desk locks: drop what was opened for the screen (the names in the lists),
        after logging which names were shown."""
        self.audit_listed()
        self._audited.clear()
        for listing in self.query(DossierList):
            listing.forget()

    def unsaved_typing(self) -> bool:
        """Typing on this screen that no Ctrl+S has saved yet: Ctrl+Q asks before signing out."""
        return False
