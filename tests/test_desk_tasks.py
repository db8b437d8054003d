"""Central's statuses as the clerk's tasks (edge/desk/tasks.py), on a real SQLite store.

Statuses arrive the way sync applies them (``edge.sync.downlink.apply``, a signed item's
body); supplements are scanned into a dossier through the real capture daemon, the way
F4 on the dossier screen files them; the agency's return date goes through a real
central, its ``notify`` and ``edge central notify --appointment``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import samples
from edge.capture.grouping import into_tag
from edge.cli import main
from edge.daemon import Daemon
from edge.desk import DeskError, DeskLedger, DeskReader
from edge.desk.tasks import (
    SUPPLEMENT_ADDED,
    TASK_DONE,
    TaskKind,
    open_task_count,
    open_tasks,
)
from edge.domain import PortalStatus
from edge.records import Ledger
from edge.store import Store
from edge.sync import client, downlink
from edge.sync import contract as c
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.syncutil import FAST, CentralServer, box_dossiers

CODES = [f"000.00.01.H29-261127-{n:04d}" for n in range(1, 10)]


class Box:
    """A provisioned box's store, its capture-side ledger and a signed-in clerk's desk."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self._items = itertools.count(1)
        self.open()

    def open(self) -> None:
        self.store = Store.open(self.state)
        keyring = Keyring.load(self.state)
        self.session = keyring.unlock("lan", PASSWORD)
        self.capture = Ledger(self.store, keyring.sealer())
        self.desk = DeskLedger(self.store, keyring.sealer(), self.session)
        self.reader = DeskReader(self.store, self.session)

    def close(self) -> None:
        self.session.close()
        self.store.close()

    def restart(self) -> None:
        """A power cut and a new process: nothing but the database is kept."""
        self.close()
        self.open()

    def dossier(self, code: str) -> str:
        with self.store.transaction():
            return self.capture.create_dossier(code)

    def status(self, code: str, status: int, note: str = "", **more: Any) -> None:
        """One signed downlink status item, applied as sync applies it."""
        doc = c.DownlinkDoc(
            v=1,
            id=next(self._items),
            device=None,
            office=None,
            kind="status",
            body={"code": code, "status": status, "note": note, **more},
            at=int(time.time() * 1000),
        )
        assert downlink.apply(self.store, self.capture, doc) == "status"

    def scan_into(self, inbox: Path, dossier_id: str, pages: int, seed: int = 5) -> None:
        """F4 on the dossier screen: a job folder naming the dossier, filed by capture."""
        folder = inbox / f"scan-20261127-083000-{into_tag(dossier_id)}"
        samples.write_job(folder, [samples.DossierSpec(None, pages)], "jpeg", dpi=100, seed=seed)
        daemon = Daemon(self.state, inbox, {"settle_seconds": 0.0})
        try:
            daemon.run_once()
        finally:
            daemon.close()

    def events(self, dossier_id: str, event_type: str) -> list[dict[str, Any]]:
        return [
            self.reader.event_payload(e) for e in self.store.dossier_events(dossier_id, event_type)
        ]


@pytest.fixture
def box(state: Path) -> Iterator[Box]:
    opened = Box(state)
    yield opened
    opened.close()


def listed(reader: DeskReader) -> list[tuple[str | None, int, str | None]]:
    return [(t.code, int(t.status), t.note) for t in reader.tasks()]


def test_statuses_that_ask_something_of_the_counter_are_tasks(box: Box) -> None:
    for code in CODES[:7]:
        box.dossier(code)
    for code, status in zip(CODES, [2, 3, 4, 5, 6, 8, 9], strict=False):
        box.status(code, status, note=f"ghi chú {status}")
    assert listed(box.reader) == [
        (CODES[1], 3, "ghi chú 3"),
        (CODES[3], 5, "ghi chú 5"),
        (CODES[4], 6, "ghi chú 6"),
        (CODES[5], 8, "ghi chú 8"),
    ]
    kinds = [t.kind for t in box.reader.tasks()]
    assert kinds == [TaskKind.HAND_BACK, TaskKind.SUPPLEMENT, TaskKind.PAYMENT, TaskKind.HAND_BACK]
    # counted and listed without a key: the note stays sealed
    assert open_task_count(box.store) == 4
    assert [t.note for t in open_tasks(box.store)] == [None] * 4
    stored = box.store.conn.execute("SELECT payload FROM events WHERE type = 'central.status'")
    assert all("ghi chú".encode() not in bytes(r[0]) for r in stored)


def test_tasks_survive_a_restart_and_are_derived_the_same(box: Box) -> None:
    for code, status in zip(CODES, [5, 6, 3, 8], strict=False):
        box.dossier(code)
        box.status(code, status, note=f"ghi chú {code}")
    before = box.reader.tasks()
    box.restart()
    assert box.reader.tasks() == before
    box.restart()
    assert box.reader.tasks() == before and open_task_count(box.store) == 4


def test_a_later_status_supersedes_an_earlier_task(box: Box) -> None:
    first, second, third = (box.dossier(code) for code in CODES[:3])
    box.status(CODES[0], 5, "thiếu bản sao giấy khai sinh")
    box.status(CODES[0], 4)  # the agency received the papers another way: being processed
    box.status(CODES[1], 4)
    box.status(CODES[1], 6, "lệ phí 8.000 đồng")
    box.status(CODES[2], 6, "lệ phí")
    box.status(CODES[2], 5, "thiếu tờ khai")
    tasks = {t.dossier_id: t for t in box.reader.tasks()}
    assert set(tasks) == {second, third} and first not in tasks
    assert (tasks[second].status, tasks[second].note) == (6, "lệ phí 8.000 đồng")
    assert (tasks[third].status, tasks[third].note) == (5, "thiếu tờ khai")
    latest = box.store.last_event(third, "central.status")
    assert latest is not None and tasks[third].request == latest.seq


def test_a_payment_is_marked_done_by_the_clerk_audited(box: Box) -> None:
    dossier_id = box.dossier(CODES[0])
    box.status(CODES[0], 6, "lệ phí 8.000 đồng")
    [task] = box.reader.tasks()
    box.desk.mark_done(dossier_id)
    assert box.reader.tasks() == []
    assert box.events(dossier_id, TASK_DONE) == [
        {"request": task.request, "status": 6, "clerk": "lan"}
    ]
    box.restart()
    assert box.reader.tasks() == [] and open_task_count(box.store) == 0
    # the agency asks again (another fee): a new task, for the new request
    box.status(CODES[0], 6, "thuế")
    [again] = box.reader.tasks()
    assert again.request > task.request and again.note == "thuế"


def test_only_a_payment_is_marked_done_by_hand(box: Box) -> None:
    supplement = box.dossier(CODES[0])
    box.status(CODES[0], 5, "thiếu tờ khai")
    refused = box.dossier(CODES[1])
    box.status(CODES[1], 3)
    nothing = box.dossier(CODES[2])
    box.status(CODES[2], 9)
    seq = box.store.conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    for dossier_id, reason in [
        (supplement, "task_not_payment"),
        (refused, "task_not_payment"),
        (nothing, "task_changed"),
        ("d000000000000ffffffffff", "dossier_missing"),
    ]:
        with pytest.raises(DeskError) as failed:
            box.desk.mark_done(dossier_id)
        assert failed.value.reason == reason
    assert box.store.conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] == seq
    assert len(box.reader.tasks()) == 2


def test_a_payment_asked_again_meanwhile_is_not_marked_done_unseen(box: Box) -> None:
    dossier_id = box.dossier(CODES[0])
    box.status(CODES[0], 6, "lệ phí")
    [seen] = box.reader.tasks()
    box.status(CODES[0], 6, "lệ phí và thuế")  # arrives while the clerk is asking the citizen
    with pytest.raises(DeskError) as failed:
        box.desk.mark_done(dossier_id, seen.request)
    assert failed.value.reason == "task_changed"
    [now] = box.reader.tasks()
    assert now.note == "lệ phí và thuế"
    box.desk.mark_done(dossier_id, now.request)
    assert box.reader.tasks() == []


def test_a_supplement_scanned_into_the_dossier_is_tagged_and_ends_the_task(
    box: Box, inbox: Path
) -> None:
    dossier_id = box.dossier(CODES[0])
    box.scan_into(inbox, dossier_id, 1, seed=3)  # the paper received at the counter
    first = {p["id"] for p in box.store.pages(dossier_id)}
    box.status(CODES[0], 5, "thiếu bản sao giấy khai sinh có chứng thực")
    [task] = box.reader.tasks()
    assert task.kind is TaskKind.SUPPLEMENT

    box.scan_into(inbox, dossier_id, 2, seed=4)  # Mẫu 02: the missing papers, F4
    pages = [p["id"] for p in box.store.pages(dossier_id)]
    added = [p for p in pages if p not in first]
    assert len(added) == 2
    assert box.reader.supplement_pages(dossier_id) == {p: task.request for p in added}
    tags = box.events(dossier_id, SUPPLEMENT_ADDED)
    assert [page for tag in tags for page in tag["pages"]] == added
    assert {tag["request"] for tag in tags} == {task.request}
    assert box.reader.tasks() == []
    box.restart()
    assert box.reader.tasks() == [] and len(box.reader.supplement_pages(dossier_id)) == 2

    # once the agency moved on, pages scanned in are ordinary pages again
    box.status(CODES[0], 4)
    box.scan_into(inbox, dossier_id, 1, seed=6)
    assert len(box.reader.supplement_pages(dossier_id)) == 2


def test_pages_before_the_request_are_no_supplement(box: Box, inbox: Path) -> None:
    dossier_id = box.dossier(CODES[0])
    box.scan_into(inbox, dossier_id, 2)
    box.status(CODES[0], 5, "thiếu tờ khai")
    assert box.reader.supplement_pages(dossier_id) == {}
    assert [t.dossier_id for t in box.reader.tasks()] == [dossier_id]


@pytest.mark.parametrize("status", [3, 8])
def test_a_refused_or_stopped_dossier_is_a_task_until_the_paper_is_handed_back(
    box: Box, status: int
) -> None:
    dossier_id = box.dossier(CODES[0])
    box.status(CODES[0], status, "hồ sơ không thuộc thẩm quyền")
    [task] = box.reader.tasks()
    assert task.kind is TaskKind.HAND_BACK
    box.desk.hand_back(dossier_id, "Nguyễn Văn An", "001203012345")
    assert box.reader.tasks() == []
    box.restart()
    assert box.reader.tasks() == []


def test_a_paper_already_handed_back_is_no_task(box: Box) -> None:
    """A result handed back before the agency stopped the dossier: nothing is left here."""
    dossier_id = box.dossier(CODES[0])
    box.status(CODES[0], 9)
    box.desk.hand_back(dossier_id, "Nguyễn Văn An", "001203012345")
    box.status(CODES[0], 8, "dừng xử lý")
    assert box.reader.tasks() == [] and open_task_count(box.store) == 0


def test_a_merged_dossier_has_no_task(box: Box) -> None:
    dossier_id = box.dossier(CODES[0])
    box.status(CODES[0], 5, "thiếu tờ khai")
    with box.store.transaction():
        box.store.update_dossier(dossier_id, status="merged")
    assert box.reader.tasks() == []


# -- the agency's return date: edge central notify --appointment ------------------------------


def test_central_checks_the_return_date_before_queueing_anything(tmp_path: Path) -> None:
    from edge.sync.central.errors import AdminError
    from edge.sync.central.receiver import Central

    central = Central(tmp_path / "central")
    try:
        for wrong in ["31/02/2026", "2026-13-01", "mai", "4.12.2026"]:
            with pytest.raises(AdminError, match="not a date"):
                central.notify("KHONG-CO", 5, appointment=wrong)
    finally:
        central.close()


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_the_agencys_return_date_and_note_reach_the_clerk_through_central(
    box_template: Path,
    tmp_path: Path,
    central: CentralServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    state = tmp_path / "box"
    shutil.copytree(box_template, state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        client.enroll(state, central.url, central.central.issue_token("H29.01"), session=session)
    finally:
        session.close()
    assert client.sync_once(state, policy=FAST).done
    first, second = sorted(d["code"] for d in box_dossiers(state) if d["code"])[:2]
    data = str(tmp_path / "central")

    code, out, err = _in_process(
        capsys, "central", "notify", "--data", data, "--code", first, "--status", "5",
        "--note", "Thiếu bản sao giấy khai sinh", "--appointment", "04/12/2026",
    )  # fmt: skip
    assert code == 0, err
    assert "return date 04/12/2026" in out
    central.central.notify(second, 6, "Lệ phí 8.000 đồng", appointment="2026-12-07")
    code, _out, err = _in_process(
        capsys, "central", "notify", "--data", data, "--code", first, "--status", "4",
        "--appointment", "31/02/2026",
    )  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "31/02/2026" in lines[0] and "dd/mm/yyyy" in lines[0]
    assert "Traceback" not in err

    assert client.sync_once(state, policy=FAST).done
    rows = {d["code"]: d for d in box_dossiers(state)}
    assert rows[first]["central_status"] == 5 and rows[second]["central_status"] == 6
    box = Box(state)
    try:
        assert box.store.dossier_by_code(first)["appointment"] == "2026-12-04"
        assert box.store.dossier_by_code(second)["appointment"] == "2026-12-07"
        assert listed(box.reader) == [
            (first, 5, "Thiếu bản sao giấy khai sinh"),
            (second, 6, "Lệ phí 8.000 đồng"),
        ]
        [status] = box.events(box.store.dossier_by_code(first)["id"], "central.status")
        assert status["appointment"] == "2026-12-04"
    finally:
        box.close()
    held = central.central.list_dossiers()
    assert {d["code"]: d["central_status"] for d in held if d["code"] in (first, second)} == {
        first: 5,
        second: 6,
    }


def test_portal_statuses_that_are_tasks() -> None:
    from edge.desk.tasks import KINDS

    assert set(KINDS) == {
        PortalStatus.KHONG_DUOC_TIEP_NHAN,
        PortalStatus.YEU_CAU_BO_SUNG,
        PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH,
        PortalStatus.DUNG_XU_LY,
    }
