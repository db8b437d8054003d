"""Sync and update status: what the box knows about central and about updates.

Sync itself is another part of the box; this screen only reads what it
records (per-dossier sync state, central's statuses, and its ``sync.*`` and
``update.*`` notes) and says plainly when something is not set up yet.

What went wrong is told to the clerk in the box's own words, chosen from the
round's stable code: the text of a refusal comes from whatever answered at
central's URL, unsigned, and is only listed (escaped, as plain text) among the
technical details. Every value here is a ``plain_text`` cell: a string in a Rich
table would be parsed as markup.
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
            _row(
                grid,
                _("Enrolment"),
                _("not enrolled yet: the box keeps everything until it is"),
                "yellow",
            )
        else:
            _row(grid, _("Central server"), state.central_url or "")
            _row(grid, _("Enrolled"), local_time(state.enrolled_at))
        link = state.link(self.office.now_ms())
        if state.enrolled:
            text = _("connected") if link == "ok" else _("no sync for over a day: check the link")
            _row(grid, _("Link"), text, "" if link == "ok" else "yellow")
        _row(
            grid,
            _("Last successful sync"),
            local_time(state.last_ok) if state.last_ok else _("never"),
        )
        if state.last_error:
            problem = _problem(state.last_error, state.last_error_code)
            _row(grid, _("Last problem"), problem, "yellow")
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


def _problem(text: str, code: str | None) -> str:
    """When the last round failed, and the clerk's sentence for why."""
    stamp = text.split(" ", 1)[0]
    try:
        when = local_time(stamp)
    except ValueError:
        return sync_problem(code)
    return f"{when} · {sync_problem(code)}"
