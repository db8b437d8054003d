"""Today at a glance: what came in, what waits for the clerk, and the box's health."""

from __future__ import annotations

from typing import ClassVar

from babel.dates import format_date
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Static

from edge.tui.i18n import N_, _, language, local_time, number
from edge.tui.messages import update_attention, update_label
from edge.tui.queries import Glance, glance
from edge.tui.screens.base import DeskScreen
from edge.tui.widgets.common import plain_text


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    gb = n / 1e9
    if gb >= 1:
        whole = f"{gb:.1f}"
        return (whole.replace(".", ",") if language() == "vi" else whole) + " GB"
    return f"{n // 1_000_000} MB"


class HomeScreen(DeskScreen):
    nav = "home"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("2", "app.go('inbox')", N_("Dossiers")),
        Binding("3", "app.go('results')", N_("Results")),
        Binding("4", "app.go('handover')", N_("Handover")),
        Binding("f4", "scan", N_("Scan"), key_display="F4"),
        Binding("escape", "stop_scan", N_("Stop scan"), key_display="Esc", show=False),
    ]

    DEFAULT_CSS = """
    HomeScreen #cards { height: auto; }
    HomeScreen #next { padding: 0 1; height: 1fr; }
    """

    def body(self) -> ComposeResult:
        with Horizontal(id="cards"):
            yield Static(id="desk", classes="card")
            yield Static(id="box", classes="card")
        yield Static(id="next")

    def on_mount(self) -> None:
        self.query_one("#desk").border_title = _("Counter")
        self.query_one("#box").border_title = _("Sync and box")
        self.refresh_data()

    def refresh_data(self) -> None:
        office = self.office
        today = office.today()
        g = glance(office.store, today, office.free_bytes)
        weekday = format_date(today, "EEEE", locale=language())
        self.set_title(
            _("Today, {weekday} {date} · office {office} · clerk {clerk}").format(
                weekday=weekday,
                date=today.strftime("%d/%m/%Y"),
                office=office.office_code,
                clerk=self.desk.clerk,
            )
        )
        self.query_one("#desk", Static).update(self._desk(g))
        self.query_one("#box", Static).update(self._box(g))
        self.query_one("#next", Static).update(self._next(g))

    @staticmethod
    def _grid(rows: list[tuple[str, str, bool]]) -> Table:
        table = Table.grid(expand=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        table.add_column(justify="right", no_wrap=True)
        for label, value, attention in rows:
            table.add_row(
                plain_text(label), plain_text(value, "bold yellow" if attention else "bold")
            )
        return table

    def _desk(self, g: Glance) -> Table:
        return self._grid(
            [
                (_("Received today"), number(g.received_today), False),
                (_("Dossiers waiting for details"), number(g.waiting), g.waiting > 0),
                (_("  of which covers to check"), number(g.reviews), g.reviews > 0),
                (_("  of which without code"), number(g.unassigned), g.unassigned > 0),
                (_("With quality warnings"), number(g.quality), g.quality > 0),
                (_("Results to hand back"), number(g.results), g.results > 0),
                (_("Paper to return to agency"), number(g.handover), g.handover > 0),
            ]
        )

    def _box(self, g: Glance) -> Table:
        link = g.sync.link(self.office.now_ms())
        link_text = {
            "not_enrolled": _("not enrolled"),
            "ok": _("connected"),
            "stale": _("no recent sync"),
        }[link]
        last = g.sync.last_ok
        return self._grid(
            [
                (_("Waiting to sync"), number(g.pending_sync), False),
                (_("Last sync"), local_time(last) if last else _("never"), False),
                (_("Link"), link_text, link == "stale"),
                (_("Free disk"), _size(g.free_bytes), bool(g.disk_alert)),
                (_("Quarantined files"), number(g.quarantined), g.quarantined > 0),
                (_("Update"), update_label(g.update), update_attention(g.update)),
            ]
        )

    def _next(self, g: Glance) -> Text:
        lines = Text()
        lines.append(_("Next steps") + "\n", style="bold")
        steps = []
        if g.disk_alert:
            steps.append(_("The disk is almost full: scanning is paused. Call regional IT."))
        if g.reviews:
            steps.append(
                _("Press 2: check {n} cover(s) first (new dossier, or same as before).").format(
                    n=number(g.reviews)
                )
            )
        if g.waiting:
            steps.append(
                _("Press 2 to complete {n} scanned dossier(s).").format(n=number(g.waiting))
            )
        if g.results:
            steps.append(_("Press 3 to hand back {n} result(s).").format(n=number(g.results)))
        if g.handover:
            steps.append(
                _("Press 4 to list {n} paper dossier(s) for the agency.").format(
                    n=number(g.handover)
                )
            )
        if g.quarantined:
            steps.append(
                _("Press 6: {n} file(s) could not be read.").format(n=number(g.quarantined))
            )
        if not steps:
            steps.append(_("Nothing waiting. New scans appear here by themselves."))
        for step in steps:
            lines.append(" • " + step + "\n")
        lines.append(_("Press / to search by code, name, CCCD or phone."), style="dim")
        return lines
