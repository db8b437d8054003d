"""Sync and update status: what the box knows about central and about updates.

Sync itself is another part of the box; this screen only reads what it
records (per-dossier sync state, central's statuses, and its ``sync.*`` and
``update.*`` notes) and says plainly when something is not set up yet.

The first line says how the last round went, in words: "succeeded" only when
the last round did, never next to a failure. What went wrong is told to the
clerk in the box's own words, chosen from the round's stable code: the text of
a refusal comes from whatever answered at central's URL, unsigned, and is only
listed (escaped, as plain text) among the technical details, shown on T. S runs
a round now, in the background (the daemon's own rounds go on as before). Every
value here is a ``plain_text`` cell: a string in a Rich table would be parsed
as markup.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from edge.tui.i18n import N_, _, local_time, number
from edge.tui.messages import portal_label, sync_label, sync_problem, update_label
from edge.tui.queries import (
    SyncState,
    central_counts,
    last_seq,
    last_update,
    meta_with_prefix,
    sync_counts,
    sync_state,
)
from edge.tui.screens.base import DeskScreen
from edge.tui.widgets.common import plain, plain_text


class SyncScreen(DeskScreen):
    nav = "sync"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sync_now", N_("Sync now")),
        Binding("t", "details", N_("Technical details")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    AUTO_FOCUS = "#scroll"

    def __init__(self) -> None:
        super().__init__()
        self.syncing = False

    def body(self) -> ComposeResult:
        with VerticalScroll(id="scroll"):
            yield Static(id="central", classes="card")
            yield Static(id="states", classes="card")
            yield Static(id="details", classes="card")

    def on_mount(self) -> None:
        self.set_title(_("Sync and updates"))
        self.query_one("#central").border_title = _("Central")
        self.query_one("#states").border_title = _("Dossiers")
        self.query_one("#details").border_title = _("Technical details")
        self.query_one("#details").display = False
        self.query_one("#scroll").focus()
        self.refresh_data()

    def action_details(self) -> None:
        details = self.query_one("#details")
        details.display = not details.display
        if details.display:
            self.query_one("#scroll", VerticalScroll).scroll_end(animate=False)

    def action_sync_now(self) -> None:
        """One round now, on a thread: the link may take a minute, the clerk need not wait."""
        if self.syncing:
            return
        if not sync_state(self.office.store).enrolled:
            self.say(_("This box is not enrolled yet: regional IT enrolls it."), "error")
            return
        self.syncing = True
        self.say(_("Syncing with central…"))
        self.run_worker(self._sync_round, thread=True, exclusive=True)

    def _sync_round(self) -> None:
        from edge.sync.client import sync_once

        try:
            report = sync_once(self.office.state)
            done, code = bool(report.done), report.error_code
        except Exception:
            done, code = False, "internal"
        self.app.call_from_thread(self._synced, done, code)

    def _synced(self, done: bool, code: str | None) -> None:
        self.syncing = False
        if done:
            self.say(_("Sync finished: central has everything this box sent."), "ok")
        elif code:
            self.say(sync_problem(code), "error")
        else:
            self.say(_("Sync went part of the way; the box goes on by itself."))
        self.refresh_data()

    def refresh_data(self) -> None:
        store = self.office.store
        state = sync_state(store)
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(width=28)
        grid.add_column(ratio=1)
        if not state.enrolled:
            _row(
                grid,
                _("Enrolment"),
                _("not enrolled yet: the box keeps everything until it is"),
                "yellow",
            )
        else:
            _row(grid, _("Central server"), state.central_url or "")
            _row(grid, _("Enrolled"), local_time(state.enrolled_at))
        if state.enrolled or state.last_error:
            text, style = _last_round(state, self.office.now_ms())
            _row(grid, _("Last round"), text, style)
        _row(
            grid,
            _("Last successful sync"),
            local_time(state.last_ok) if state.last_ok else _("never"),
        )
        _row(grid, _("Events waiting to go"), number(state.events_waiting))
        _row(grid, _("Batches awaiting a receipt"), number(state.batches_waiting))
        update = last_update(store)
        _row(grid, _("Update"), update_label(update))
        _row(grid, _("Events recorded"), number(last_seq(store)))
        self.query_one("#central", Static).update(grid)

        states = Table.grid(expand=True)
        states.add_column(ratio=2)
        states.add_column(justify="right")
        counts = sync_counts(store)
        for name in ("pending", "sent", "acknowledged"):
            _row(states, sync_label(name), number(counts.pop(name, 0)))
        for name, n in sorted(counts.items()):
            _row(states, sync_label(name), number(n))
        for status, n in sorted(central_counts(store).items()):
            _row(states, _("Agency: {status}").format(status=portal_label(status)), number(n))
        self.query_one("#states", Static).update(states)

        rows = list(state.cursors) + meta_with_prefix(store, "sync.", "update.")
        if not rows:
            self.query_one("#details", Static).update(plain(_("Nothing recorded by sync yet.")))
            return
        details = Table.grid(expand=True, padding=(0, 1))
        details.add_column(width=28)
        details.add_column(ratio=1)
        for key, value in rows:
            _row(details, key, value[:200])
        self.query_one("#details", Static).update(details)


def _row(table: Table, label: str, value: str, style: str = "") -> None:
    """``add_row`` for a label and a value, both plain text (never markup)."""
    table.add_row(plain_text(label), plain_text(value, style))


def _last_round(state: SyncState, now_ms: int) -> tuple[str, str]:
    """How the last round went, in words, and its colour.

    Sync empties its error when a round finishes, so a recorded error means the last
    round failed, whatever succeeded earlier: "connected" beside "Connection refused"
    was the worst of both.
    """
    if state.last_error:
        stamp = state.last_error.split(" ", 1)[0]
        try:
            when = local_time(stamp)
        except ValueError:
            when = "—"
        return (
            _("failed: {time} · {why}").format(time=when, why=sync_problem(state.last_error_code)),
            "yellow",
        )
    if state.last_ok is None:
        return _("no round has finished yet"), "yellow"
    if state.link(now_ms) != "ok":
        return _("succeeded, but over a day ago: check the link"), "yellow"
    return _("succeeded: central has what it acknowledged"), "green"
