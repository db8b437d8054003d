"""Sync and update status: what the box knows about central and about updates.

Sync itself is another part of the box; this screen only reads what it
records (per-dossier sync state, central's statuses, and its ``sync.*`` and
``update.*`` notes) and says plainly when something is not set up yet.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from edge.tui.i18n import N_, _, local_time, number
from edge.tui.messages import portal_label, sync_label, update_label
from edge.tui.queries import (
    central_counts,
    last_seq,
    last_update,
    meta_with_prefix,
    sync_counts,
    sync_state,
)
from edge.tui.screens.base import DeskScreen


class SyncScreen(DeskScreen):
    nav = "sync"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    DEFAULT_CSS = """
    SyncScreen #scroll { height: 1fr; padding: 0 1; }
    SyncScreen .card { margin-bottom: 0; }
    """

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
        self.query_one("#scroll").focus()
        self.refresh_data()

    def refresh_data(self) -> None:
        store = self.office.store
        state = sync_state(store)
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(width=28)
        grid.add_column(ratio=1)
        if not state.enrolled:
            grid.add_row(
                _("Enrolment"),
                Text(_("not enrolled yet: the box keeps everything until it is"), style="yellow"),
            )
        else:
            grid.add_row(_("Central server"), state.central_url or "")
            grid.add_row(_("Enrolled"), local_time(state.enrolled_at))
        link = state.link(self.office.now_ms())
        if state.enrolled:
            text = _("connected") if link == "ok" else _("no sync for over a day: check the link")
            grid.add_row(_("Link"), Text(text, style="" if link == "ok" else "yellow"))
        grid.add_row(
            _("Last successful sync"), local_time(state.last_ok) if state.last_ok else _("never")
        )
        if state.last_error:
            grid.add_row(_("Last problem"), Text(state.last_error[:200], style="yellow"))
        grid.add_row(_("Events waiting to go"), number(state.events_waiting))
        grid.add_row(_("Batches awaiting a receipt"), number(state.batches_waiting))
        update = last_update(store)
        grid.add_row(_("Update"), update_label(update))
        grid.add_row(_("Events recorded"), number(last_seq(store)))
        self.query_one("#central", Static).update(grid)

        states = Table.grid(expand=True)
        states.add_column(ratio=2)
        states.add_column(justify="right")
        counts = sync_counts(store)
        for name in ("pending", "sent", "acknowledged"):
            states.add_row(sync_label(name), number(counts.pop(name, 0)))
        for name, n in sorted(counts.items()):
            states.add_row(sync_label(name), number(n))
        for status, n in sorted(central_counts(store).items()):
            states.add_row(_("Agency: {status}").format(status=portal_label(status)), number(n))
        self.query_one("#states", Static).update(states)

        rows = list(state.cursors) + meta_with_prefix(store, "sync.", "update.")
        if not rows:
            self.query_one("#details", Static).update(_("Nothing recorded by sync yet."))
            return
        details = Table.grid(expand=True, padding=(0, 1))
        details.add_column(width=28)
        details.add_column(ratio=1)
        for key, value in rows:
            details.add_row(key, value[:200])
        self.query_one("#details", Static).update(details)
