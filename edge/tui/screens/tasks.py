"""What the agency's answers ask of the counter (issue 12): more papers, a payment, a return.

One row per dossier whose latest status from central is a task (edge/desk/tasks.py),
oldest first: its code, the citizen's name, what to do in a few words, and the day
the status came. Below the list, for the row under the cursor, what to do in full and
central's note (what is missing, what to pay), opened for the screen only: it is
sealed at rest like the status event it came in.

Enter opens the dossier, as on every list (F4 there scans the missing papers into it).
D marks a payment done, after asking; T hands the paper of a dossier the agency did not
accept, or stopped, back to the citizen, with the same dialog as a result's hand-back.
A task leaves the list by itself once done; a newer status from central replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from edge.clock import parse_iso
from edge.desk import DeskError, DeskReader, local_day
from edge.desk.tasks import Task, TaskKind
from edge.domain import PortalStatus
from edge.tui.i18n import N_, _, day, number
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import ConfirmDialog, HandBackDialog
from edge.tui.widgets.common import Plain
from edge.tui.widgets.dossier_list import Column, DossierList

SHORT = {
    PortalStatus.YEU_CAU_BO_SUNG: N_("Get missing papers"),
    PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH: N_("Citizen must pay"),
    PortalStatus.KHONG_DUOC_TIEP_NHAN: N_("Return the paper"),
    PortalStatus.DUNG_XU_LY: N_("Return the paper"),
}
"""What to do, in the few words of the list's column."""

WHAT_TO_DO = {
    PortalStatus.YEU_CAU_BO_SUNG: N_(
        "The agency asks for more papers: get them from the citizen, then scan them "
        "into the dossier (Enter, then F4)."
    ),
    PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH: N_(
        "The citizen must pay the agency's fee, charge or tax: once paid, press D."
    ),
    PortalStatus.KHONG_DUOC_TIEP_NHAN: N_(
        "The agency did not accept the dossier: hand the paper back to the citizen (T)."
    ),
    PortalStatus.DUNG_XU_LY: N_(
        "The agency stopped processing the dossier: hand the paper back to the citizen (T)."
    ),
}
"""What to do, in full, under the list."""


def short_text(status: int) -> str:
    return _(SHORT[PortalStatus(status)]) if status in SHORT else ""


def what_to_do(status: int) -> str:
    return _(WHAT_TO_DO[PortalStatus(status)]) if status in WHAT_TO_DO else ""


def task_row(task: Task) -> dict[str, Any]:
    """A list row: the dossier's id (``reveal`` opens the name by it) and the task."""
    return {
        "id": task.dossier_id,
        "code": task.code,
        "central_status": int(task.status),
        "kind": str(task.kind),
        "request": task.request,
        "requested_at": task.requested_at,
        "appointment": task.appointment,
        "note": task.note,
    }


def requested_day(row: dict[str, Any]) -> date | None:
    try:
        return local_day(parse_iso(str(row["requested_at"])))
    except (KeyError, ValueError):
        return None


class TaskSource:
    """The open tasks, read again (notes opened) at every count: tasks are few."""

    def __init__(self, reader: Callable[[], DeskReader]) -> None:
        self.reader = reader
        self._rows: list[dict[str, Any]] = []

    def count(self) -> int:
        self._rows = [task_row(task) for task in self.reader().tasks()]
        return len(self._rows)

    def rows(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._rows[offset : offset + limit]

    def forget(self) -> None:
        """Drop the opened notes (the desk is locking)."""
        self._rows = []


def _day_cell(row: dict[str, Any]) -> str:
    shown = requested_day(row)
    return day(shown) if shown else "—"


def _note_cell(row: dict[str, Any]) -> str:
    return str(row.get("note") or "")


class TasksScreen(DeskScreen):
    nav = "tasks"

    DEFAULT_CSS = """
    TasksScreen #detail { height: 5; padding: 0 1; border-top: solid $primary-darken-2; }
    TasksScreen #detail > Plain { height: auto; }
    TasksScreen #note { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "mark_done", N_("Mark done")),
        Binding("t", "hand_back", N_("Hand back paper")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    def body(self) -> ComposeResult:
        yield DossierList(
            TaskSource(lambda: self.desk.reader),
            [
                columns.code(),
                columns.name(),
                Column(_("To do"), 22, lambda r: short_text(r["central_status"])),
                Column(_("Agency's note"), 0, _note_cell, min_list_width=columns.WIDE),
                Column(_("Since"), 11, _day_cell),
            ],
            empty=_("Nothing to do. What the agency asks appears here by itself."),
            reveal=self.reveal_name,
            id="list",
        )
        with Vertical(id="detail"):
            yield Plain("", id="todo")
            yield Plain("", id="note")

    def on_mount(self) -> None:
        self.query_one(DossierList).focus()
        self._title()

    def _title(self) -> None:
        total = self.query_one(DossierList).total
        self.set_title(_("Tasks from the agency ({n})").format(n=number(total)))

    def refresh_data(self) -> None:
        self.query_one(DossierList).reload()
        self._title()

    def forget(self) -> None:
        super().forget()
        source = self.query_one(DossierList).source
        if isinstance(source, TaskSource):
            source.forget()
        self.query_one("#todo", Plain).update("")
        self.query_one("#note", Plain).update("")

    @on(DossierList.Highlighted)
    def _detail(self, event: DossierList.Highlighted) -> None:
        todo, note = self.detail_text(event.row)
        self.query_one("#todo", Plain).update(todo)
        self.query_one("#note", Plain).update(note)

    @staticmethod
    def detail_text(row: dict[str, Any] | None) -> tuple[str, str]:
        """What to do in full, and central's note, for the row under the cursor."""
        if row is None:
            return "", ""
        note = row.get("note")
        if note:
            said = _("Agency's note: {note}").format(note=note)
        elif note is None:
            said = _("The agency's note could not be opened.")
        else:
            said = _("The agency wrote no note.")
        return what_to_do(row["central_status"]), said

    @on(DossierList.Chosen)
    def _chosen(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])

    def _current(self) -> dict[str, Any] | None:
        return self.query_one(DossierList).current

    def action_mark_done(self) -> None:
        row = self._current()
        if row is None:
            return
        if row["kind"] != TaskKind.PAYMENT:
            self.say(self._not_here(row), "error")
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.mark_done(row["id"], row["request"])
            except DeskError as exc:
                self.refresh_data()
                self.fail(exc)
                return
            self.refresh_data()
            self.say(_("Payment for {code} marked done.").format(code=row["code"]), "ok")

        question = _(
            "Has the citizen paid what the agency asked for dossier {code}? "
            "The agency is told at the next sync."
        ).format(code=row["code"])
        self.app.push_screen(ConfirmDialog(question, _("Mark done")), confirmed)

    def action_hand_back(self) -> None:
        row = self._current()
        if row is None:
            return
        if row["kind"] != TaskKind.HAND_BACK:
            self.say(self._not_here(row), "error")
            return
        desk = self.desk
        details = desk.reader.details(row["id"])
        desk.ledger.viewed(row["id"], ["fields"])
        procedure = self.office.catalogue.get(details.get("procedure", ""))

        def done(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            try:
                self.desk.ledger.hand_back(row["id"], *answer)
            except DeskError as exc:
                self.refresh_data()
                self.fail(exc)
                return
            self.refresh_data()
            self.say(_("The paper of {code} was handed back.").format(code=row["code"]), "ok")

        self.app.push_screen(
            HandBackDialog(
                row["code"] or "", details.get("full_name", ""), procedure.name if procedure else ""
            ),
            done,
        )

    @staticmethod
    def _not_here(row: dict[str, Any]) -> str:
        """Why D or T does not apply to this task: what does, in full."""
        return what_to_do(row["central_status"])
