"""Central's statuses as the clerk's tasks (issue 12): what the agency's answer asks of the counter.

The agency's system sends each dossier's portal status down (``edge.sync.downlink``:
a sealed ``central.status`` event, and ``dossiers.central_status``). Four of them ask
something of the clerk, and stay a task until it is done:

* 5, more documents requested (Yêu cầu bổ sung): central's note says what is missing;
  done once supplement pages were added to the dossier after the request (capture
  records ``dossier.supplement_added`` for each page scanned into a dossier whose latest
  status is 5, naming the page and the request it answers: Mẫu 02);
* 6, financial obligation (Yêu cầu thực hiện nghĩa vụ tài chính): the citizen must pay;
  done when the clerk says so (``Tasks.mark_done``, an audited ``task.done``);
* 3, not accepted (Không được tiếp nhận), and 8, processing stopped (Dừng xử lý): the
  paper goes back to the citizen; done once it was handed back (``hand_back``).

Only the dossier's latest status counts: a later status supersedes an earlier task,
and a settling event only counts after the status it answers. Nothing is stored
beside the log: the task list is derived from the event log and the dossier rows on
every read (``Store.central_requests``), so it survives restarts and is the same on
every run. Counting needs no key (event types and statuses are plain); central's
note is sealed in its event and is opened for the signed-in clerk's screen only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from edge.desk.errors import DeskError, DeskReason
from edge.domain import PortalStatus
from edge.records import Ledger, Reader
from edge.store import Event, Store
from edge.vault import OfficeSession, VaultError

SUPPLEMENT_ADDED = "dossier.supplement_added"
"""Pages scanned into a dossier whose latest status asks for more documents:
``{"pages": [page ids], "request": seq of the central.status event they answer}``."""
TASK_DONE = "task.done"
"""The clerk says a task is done (status 6): ``{"request": seq, "status": 6, "clerk": ...}``."""
HANDED_BACK = ("dossier.handed_back", "result.handed_back")
"""Events of a hand-back at the counter (``Handover.hand_back``), by either name it had."""


class TaskKind(StrEnum):
    """What the clerk does about a status: the UI words it, per status."""

    SUPPLEMENT = "supplement"
    PAYMENT = "payment"
    HAND_BACK = "hand_back"


KINDS: dict[PortalStatus, TaskKind] = {
    PortalStatus.YEU_CAU_BO_SUNG: TaskKind.SUPPLEMENT,
    PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH: TaskKind.PAYMENT,
    PortalStatus.KHONG_DUOC_TIEP_NHAN: TaskKind.HAND_BACK,
    PortalStatus.DUNG_XU_LY: TaskKind.HAND_BACK,
}
"""The statuses that are tasks, and what each asks."""

SETTLED_BY: dict[int, tuple[str, ...]] = {
    int(PortalStatus.YEU_CAU_BO_SUNG): (SUPPLEMENT_ADDED,),
    int(PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH): (TASK_DONE,),
    int(PortalStatus.KHONG_DUOC_TIEP_NHAN): HANDED_BACK,
    int(PortalStatus.DUNG_XU_LY): HANDED_BACK,
}
"""The events that settle each status's task when they follow it."""

SETTLED_BY_HAND_BACK = (int(PortalStatus.KHONG_DUOC_TIEP_NHAN), int(PortalStatus.DUNG_XU_LY))
"""Statuses whose task is moot once the dossier left the counter, whenever that was: a
paper already handed back cannot be handed back again."""


@dataclass(frozen=True)
class Task:
    """One open task: a dossier's latest central status, and what it asks of the clerk."""

    dossier_id: str
    code: str | None
    status: PortalStatus
    request: int
    """The seq of the ``central.status`` event that asked: what a settling event answers."""
    requested_at: str
    """When the status reached the box (ISO UTC)."""
    appointment: str | None
    """The dossier's return date (ISO), the agency's when it sent one."""
    note: str | None = None
    """Central's note (what is missing, what to pay), opened for the clerk's screen;
    None when read without a key (``open_tasks``) or when it could not be opened."""

    @property
    def kind(self) -> TaskKind:
        return KINDS[self.status]


def _rows(store: Store, dossier_id: str | None = None) -> list[Any]:
    return store.central_requests(
        dict(SETTLED_BY), handed_back=SETTLED_BY_HAND_BACK, dossier_id=dossier_id
    )


def _task(row: Any, note: str | None = None) -> Task:
    return Task(
        dossier_id=str(row["dossier_id"]),
        code=row["code"],
        status=PortalStatus(int(row["central_status"])),
        request=int(row["seq"]),
        requested_at=str(row["at"]),
        appointment=row["appointment"] or None,
        note=note,
    )


def open_tasks(store: Store, dossier_id: str | None = None) -> list[Task]:
    """Every open task, oldest request first (one dossier's, when given); no key needed."""
    return [_task(row) for row in _rows(store, dossier_id)]


def open_task_count(store: Store) -> int:
    """How many tasks are open: what the home screen shows."""
    return len(_rows(store))


def _event(row: Any) -> Event:
    return Event(
        seq=row["seq"],
        dossier_id=row["dossier_id"],
        type=row["type"],
        key_id=row["key_id"],
        payload=bytes(row["payload"]),
        at=row["at"],
        hlc=row["hlc"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class TaskReading(Reader):
    """The tasks with central's notes opened, for the signed-in clerk (part of ``DeskReader``)."""

    def tasks(self) -> list[Task]:
        """Every open task with central's note, oldest request first."""
        return [_task(row, self._note(row)) for row in _rows(self.store)]

    def task(self, dossier_id: str) -> Task | None:
        """The dossier's open task with central's note, or None when nothing is asked."""
        rows = _rows(self.store, dossier_id)
        return _task(rows[0], self._note(rows[0])) if rows else None

    def supplement_pages(self, dossier_id: str) -> dict[str, int]:
        """The dossier's pages scanned as a supplement (Mẫu 02): page id -> the seq of the
        ``central.status`` request they answer. A page moved to another dossier since is
        still named here; the page list looks up the pages it shows."""
        pages: dict[str, int] = {}
        for event in self.store.dossier_events(dossier_id, SUPPLEMENT_ADDED):
            try:
                payload = self.event_payload(event)
            except VaultError:
                continue
            request = payload.get("request")
            for page_id in payload.get("pages") or []:
                pages[str(page_id)] = int(request) if isinstance(request, int) else 0
        return pages

    def _note(self, row: Any) -> str | None:
        try:
            payload = self.event_payload(_event(row))
        except VaultError:
            return None
        return str(payload.get("note") or "")


class Tasks(Ledger):
    """The clerk's part in tasks (of ``DeskLedger``; not built on ``DeskLedgerBase``, whose
    reader includes ``TaskReading``: the modules would import each other)."""

    session: OfficeSession

    def mark_done(self, dossier_id: str, request: int | None = None) -> None:
        """The citizen paid what the agency asked (status 6): the task is done, audited.

        Only a financial obligation is marked done by hand: a supplement is done by
        scanning it into the dossier, a refusal by handing the paper back. ``request`` is
        the task the clerk saw (``Task.request``): the task is looked up again inside the
        transaction, and a status that arrived meanwhile (a later one supersedes it, even
        a second 6) raises ``task_changed`` instead of being marked done unseen.
        """
        with self.store.transaction():
            tasks = open_tasks(self.store, dossier_id)
            if not tasks:
                if self.store.dossier(dossier_id) is None:
                    raise DeskError(DeskReason.DOSSIER_MISSING)
                raise DeskError(DeskReason.TASK_CHANGED)
            task = tasks[0]
            if request is not None and task.request != request:
                raise DeskError(DeskReason.TASK_CHANGED)
            if task.kind is not TaskKind.PAYMENT:
                raise DeskError(DeskReason.TASK_NOT_PAYMENT, kind=str(task.kind))
            self.record(
                dossier_id,
                TASK_DONE,
                {"request": task.request, "status": int(task.status), "clerk": self.session.clerk},
            )
