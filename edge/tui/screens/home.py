"""Today at a glance: what came in, what waits for the clerk, and the box's health.

The next steps are a list like every other: Enter on one opens its screen. What the
agency's answers ask of the counter (more papers, a payment, a paper to return) is
counted from the log like the task list itself (edge/desk/tasks.py), without a key.
"""

from __future__ import annotations

from typing import ClassVar

from babel.dates import format_date
from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edge.desk.tasks import open_task_count
from edge.tui.i18n import N_, _, language, local_time, number
from edge.tui.messages import update_attention, update_label
from edge.tui.queries import Glance, glance
from edge.tui.screens.base import DeskScreen
from edge.tui.widgets.common import Plain, plain, plain_text, translate_bindings


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
        Binding("2", "app.go('inbox')", N_("Dossiers"), show=False),
        Binding("3", "app.go('results')", N_("Results"), show=False),
        Binding("4", "app.go('handover')", N_("Handover"), show=False),
        Binding("7", "app.go('tasks')", N_("Tasks"), show=False),
        Binding("f4", "scan", N_("Scan"), key_display="F4"),
        Binding("escape", "stop_scan", N_("Stop scan"), key_display="Esc", show=False),
    ]

    AUTO_FOCUS = "#next"

    def body(self) -> ComposeResult:
        with Horizontal(id="cards"):
            yield Static(id="desk", classes="card")
            yield Static(id="box", classes="card")
        yield Plain(_("Next steps"), id="next-title")
        yield NextSteps(id="next")
        yield Plain(_("Press / to search by code, name, CCCD or phone."), id="search-hint")

    def on_mount(self) -> None:
        self.query_one("#desk").border_title = _("Counter")
        self.query_one("#box").border_title = _("Sync and box")
        self.refresh_data()

    def refresh_data(self) -> None:
        office = self.office
        today = office.today()
        g = glance(office.store, today, office.free_bytes)
        tasks = open_task_count(office.store)
        weekday = format_date(today, "EEEE", locale=language())
        self.set_title(
            _("Today, {weekday} {date} · office {office} · clerk {clerk}").format(
                weekday=weekday,
                date=today.strftime("%d/%m/%Y"),
                office=office.office_code,
                clerk=self.desk.clerk,
            )
        )
        self.query_one("#desk", Static).update(self._desk(g, tasks))
        self.query_one("#box", Static).update(self._box(g))
        self.query_one(NextSteps).show(self._next(g, tasks))

    @on(OptionList.OptionSelected, "#next")
    def _step_chosen(self, event: OptionList.OptionSelected) -> None:
        screen = STEP_SCREENS.get(event.option.id or "")
        if screen is not None:
            self.edge.action_go(screen)

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

    def _desk(self, g: Glance, tasks: int) -> Table:
        return self._grid(
            [
                (_("Received today"), number(g.received_today), False),
                (_("Dossiers waiting for details"), number(g.waiting), g.waiting > 0),
                (_("  of which covers to check"), number(g.reviews), g.reviews > 0),
                (_("  of which without code"), number(g.unassigned), g.unassigned > 0),
                (_("With quality warnings"), number(g.quality), g.quality > 0),
                (_("Tasks from the agency"), number(tasks), tasks > 0),
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

    def _next(self, g: Glance, tasks: int) -> list[tuple[str, str]]:
        """(step, words) for each thing waiting: ``STEP_SCREENS`` says what Enter opens."""
        steps: list[tuple[str, str]] = []
        if g.disk_alert:
            steps.append(
                ("disk", _("The disk is almost full: scanning is paused. Call regional IT."))
            )
        if g.reviews:
            text = _("Press 2: check {n} cover(s) first (new dossier, or same as before).")
            steps.append(("reviews", text.format(n=number(g.reviews))))
        if tasks:
            text = _("Press 7: the agency asks something for {n} dossier(s).")
            steps.append(("tasks", text.format(n=number(tasks))))
        if g.waiting:
            text = _("Press 2 to complete {n} scanned dossier(s).")
            steps.append(("waiting", text.format(n=number(g.waiting))))
        if g.results:
            text = _("Press 3 to hand back {n} result(s).")
            steps.append(("results", text.format(n=number(g.results))))
        if g.handover:
            text = _("Press 4 to list {n} paper dossier(s) for the agency.")
            steps.append(("handover", text.format(n=number(g.handover))))
        if g.quarantined:
            text = _("Press 6: {n} file(s) could not be read.")
            steps.append(("quarantined", text.format(n=number(g.quarantined))))
        if not steps:
            steps.append(("idle", _("Nothing waiting. New scans appear here by themselves.")))
        return steps


STEP_SCREENS = {
    "disk": "sync",
    "reviews": "inbox",
    "waiting": "inbox",
    "results": "results",
    "handover": "handover",
    "quarantined": "quarantine",
    "tasks": "tasks",
}
"""The screen each next step is done on (the idle line has none)."""


class NextSteps(OptionList):
    """The home screen's next steps; the highlight stays on its step when the counts change."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", N_("Open"))]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        translate_bindings(self)

    def show(self, steps: list[tuple[str, str]]) -> None:
        current = self.highlighted_option.id if self.highlighted_option is not None else None
        self.clear_options()
        self.add_options(Option(plain("• " + text), id=step) for step, text in steps)
        ids = [step for step, _text in steps]
        self.highlighted = ids.index(current) if current in ids else 0
