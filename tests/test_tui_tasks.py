"""The clerk's tasks on screen (edge/tui/screens/tasks.py): what the agency's answers ask.

Driven through the real app with Textual's Pilot on a copy of the captured, filled desk
(tests/tui_fixtures.py, 'today' is Friday 27/11/2026); statuses reach it as sync applies
them (``edge.sync.downlink.apply``), on the tests' fixed clock so that snapshots hold.
Snapshots in Vietnamese at 80×24, 120×40 and on the box's 16-colour console.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from edge.clock import Clock
from edge.desk import DeskReader
from edge.desk.tasks import TASK_DONE
from edge.records import Ledger
from edge.store import Store
from edge.sync import contract as c
from edge.sync import downlink
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ConfirmDialog, HandBackDialog
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.home import HomeScreen
from edge.tui.screens.tasks import TasksScreen
from edge.tui.widgets.dossier_list import DossierList
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.tui_fixtures import APP_DAY_MS, Desk, make_app, sign_in, use_box_console, wait_until

SUPPLEMENT_NOTE = "Thiếu bản sao giấy khai sinh có chứng thực của con"
FEE_NOTE = "Lệ phí đăng ký: 8.000 đồng"
REFUSED_NOTE = "Hồ sơ không thuộc thẩm quyền của UBND xã"


def send_status(
    desk: Desk, dossier_id: str, status: int, note: str = "", *, item: int, minutes_ago: int = 30
) -> None:
    """A status from central as sync applies it, at a fixed time on the tests' clock."""
    store = Store.open(desk.state)
    clock = store.clock
    at = APP_DAY_MS - minutes_ago * 60_000
    store.clock = Clock(clock.floor_ms, clock.last, wall=lambda: at)
    try:
        ledger = Ledger(store, Keyring.load(desk.state).sealer())
        code = store.dossier(dossier_id)["code"]
        doc = c.DownlinkDoc(
            v=1,
            id=item,
            device=None,
            office=None,
            kind="status",
            body={"code": code, "status": status, "note": note},
            at=at,
        )
        assert downlink.apply(store, ledger, doc) == "status"
    finally:
        store.close()


def with_tasks(desk: Desk) -> dict[str, str]:
    """Three tasks: a supplement asked for, a fee to pay, a dossier not accepted."""
    supplement = desk.filled.complete[3]
    fee = desk.filled.complete[4]
    refused = desk.filled.waiting[1]
    send_status(desk, supplement, 5, SUPPLEMENT_NOTE, item=1, minutes_ago=50)
    send_status(desk, fee, 6, FEE_NOTE, item=2, minutes_ago=40)
    send_status(desk, refused, 3, REFUSED_NOTE, item=3, minutes_ago=20)
    return {"supplement": supplement, "fee": fee, "refused": refused}


def on_terminal(app: EdgeApp) -> str:
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return "\n".join("".join(s.text for strip in line for s in strip) for line in update.strips)


def words_on(app: EdgeApp) -> str:
    """What the screen says, lines joined: a note wraps at 80 columns."""
    return " ".join(on_terminal(app).split())


async def go(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


def task_events(desk: Desk, dossier_id: str) -> list[dict[str, Any]]:
    store = Store.open(desk.state)
    session = Keyring.load(desk.state).unlock("lan", PASSWORD)
    try:
        reader = DeskReader(store, session)
        return [reader.event_payload(e) for e in store.dossier_events(dossier_id, TASK_DONE)]
    finally:
        session.close()
        store.close()


# -- snapshots -------------------------------------------------------------------------------


async def _tasks(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("7")
    await pilot.pause(0.2)


async def _second_task(pilot: Pilot[None]) -> None:
    await _tasks(pilot)
    await pilot.press("down")
    await pilot.pause(0.2)


async def _home(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.pause(0.2)


async def _mark_done(pilot: Pilot[None]) -> None:
    await _second_task(pilot)
    await pilot.press("d")
    await pilot.pause(0.2)


SNAPSHOTS = {
    "tasks": _tasks,
    "tasks_fee": _second_task,
    "tasks_mark_done": _mark_done,
    "home_with_tasks": _home,
}


@pytest.mark.parametrize("screen", list(SNAPSHOTS))
def test_tasks_screen_snapshot(snap_compare, desk: Desk, screen: str) -> None:
    with_tasks(desk)
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=SNAPSHOTS[screen])
    finally:
        app.office.store.close()


def test_tasks_screen_snapshot_wide(snap_compare, desk: Desk) -> None:
    with_tasks(desk)
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(120, 40), run_before=_tasks)
    finally:
        app.office.store.close()


@pytest.mark.parametrize("screen", ["tasks", "tasks_mark_done"])
def test_tasks_screen_on_the_box_console(
    snap_compare, desk: Desk, screen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_box_console(monkeypatch)
    with_tasks(desk)
    app = make_app(desk, console=True)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=SNAPSHOTS[screen])
    finally:
        app.office.store.close()


def test_empty_tasks_screen_snapshot(snap_compare, desk: Desk) -> None:
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=_tasks)
    finally:
        app.office.store.close()


# -- flows -----------------------------------------------------------------------------------


async def test_the_list_says_what_to_do_and_shows_centrals_note(desk: Desk) -> None:
    tasks = with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7")
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        assert "(3)" in str(screen.query_one("#title").render())
        shown = on_terminal(app)
        assert " 7 Việc " in shown.splitlines()[0] and len(shown.splitlines()[0]) <= 80
        for words in ("Bổ sung giấy tờ", "Nộp nghĩa vụ tài chính", "Trả lại hồ sơ giấy"):
            assert words in shown
        assert "27/11/2026" in shown
        listing = screen.query_one(DossierList)
        assert [listing.row(i)["id"] for i in range(3)] == [
            tasks["supplement"],
            tasks["fee"],
            tasks["refused"],
        ]
        # the note of the row under the cursor, in full, below the list
        shown = words_on(app)
        assert SUPPLEMENT_NOTE in shown and FEE_NOTE not in shown
        await go(pilot, "down")
        shown = words_on(app)
        assert FEE_NOTE in shown and SUPPLEMENT_NOTE not in shown
        assert "khi đã nộp xong, nhấn D" in shown
        # Enter opens the dossier, Esc comes back
        await go(pilot, "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DossierScreen) and app.screen.dossier_id == tasks["fee"]
        await go(pilot, "escape")
        assert isinstance(app.screen, TasksScreen)
    app.office.close()


async def test_in_english_too(desk: Desk) -> None:
    with_tasks(desk)
    app = make_app(desk, lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7")
        shown = words_on(app)
        assert "Tasks from the agency (3)" in shown
        for words in ("Get missing papers", "Citizen must pay", "Return the paper"):
            assert words in shown
        assert "scan them into the dossier (Enter, then F4)" in shown
    app.office.close()


async def test_d_marks_a_payment_done_after_asking(desk: Desk) -> None:
    tasks = with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7", "down", "d")
        assert isinstance(app.screen, ConfirmDialog)
        await go(pilot, "escape")
        assert isinstance(app.screen, TasksScreen)
        assert task_events(desk, tasks["fee"]) == []
        await go(pilot, "d")
        assert isinstance(app.screen, ConfirmDialog)
        await go(pilot, "enter")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        assert "(2)" in str(screen.query_one("#title").render())
        assert "Đã đánh dấu xong" in str(screen.query_one("#status").render())
        [done] = task_events(desk, tasks["fee"])
        assert done["status"] == 6 and done["clerk"] == "lan"
    app.office.close()


async def test_d_on_another_task_says_what_to_do_instead(desk: Desk) -> None:
    tasks = with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7", "d")
        assert isinstance(app.screen, TasksScreen)
        said = str(app.screen.query_one("#status").render())
        assert "quét vào hồ sơ" in said
        await go(pilot, "t")
        assert isinstance(app.screen, TasksScreen)
        assert task_events(desk, tasks["supplement"]) == []
        assert "(3)" in str(app.screen.query_one("#title").render())
    app.office.close()


async def test_t_hands_the_paper_of_a_refused_dossier_back(desk: Desk) -> None:
    tasks = with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7", "end", "t")
        assert isinstance(app.screen, HandBackDialog)
        await go(pilot, *"001203012345", "enter")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        assert "(2)" in str(screen.query_one("#title").render()), str(
            screen.query_one("#status").render()
        )
    store = Store.open(desk.state)
    try:
        assert store.dossier(tasks["refused"])["handed_back_at"]
    finally:
        store.close()
    app.office.close()


async def test_home_counts_the_tasks_and_7_opens_them(desk: Desk) -> None:
    with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, HomeScreen)
        shown = on_terminal(app)
        assert "Nhấn 7: cơ quan có yêu cầu với 3 hồ sơ." in shown
        [card] = [line for line in shown.splitlines() if "Việc cơ quan yêu cầu" in line]
        assert card.split("Việc cơ quan yêu cầu")[1].split("│")[0].strip() == "3"
        # the step opens the list with Enter, like every other step
        steps = app.screen.query_one("#next")
        ids = [steps.get_option_at_index(i).id for i in range(steps.option_count)]
        steps.highlighted = ids.index("tasks")
        await go(pilot, "enter")
        assert isinstance(app.screen, TasksScreen)
        await go(pilot, "escape")
        assert isinstance(app.screen, HomeScreen)
    app.office.close()


async def test_a_status_arriving_while_the_list_is_open_shows_at_once(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7")
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        assert "Không có việc nào" in on_terminal(app)
        send_status(desk, desk.filled.complete[4], 6, FEE_NOTE, item=1)
        await wait_until(pilot, lambda: screen.query_one(DossierList).total == 1)
        await pilot.pause(0.2)
        assert FEE_NOTE in words_on(app)
        # a later status from central replaces the task: 4 is no task at all
        send_status(desk, desk.filled.complete[4], 4, item=2)
        await wait_until(pilot, lambda: screen.query_one(DossierList).total == 0)
    app.office.close()


async def test_locking_drops_the_opened_notes(desk: Desk) -> None:
    with_tasks(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7")
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        await go(pilot, "ctrl+l")
        source = screen.query_one(DossierList).source
        assert getattr(source, "_rows", None) == []
        assert str(screen.query_one("#note").render()) == ""
    app.office.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_the_navigation_bar_fits_80_columns(desk: Desk, lang: str) -> None:
    """Seven screens: "/ Search" gives way where it would be cut off."""
    app = make_app(desk, lang=lang)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "7")
        bar = on_terminal(app).splitlines()[0]
        assert bar.rstrip().endswith(("7 Việc", "7 Tasks")), bar
    app.office.close()
    app = make_app(desk, lang=lang)
    async with app.run_test(size=(120, 40)) as pilot:
        await sign_in(pilot)
        bar = on_terminal(app).splitlines()[0]
        assert bar.rstrip().endswith(("/ Tìm kiếm", "/ Search")), bar
    app.office.close()
