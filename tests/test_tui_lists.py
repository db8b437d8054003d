"""Lists a clerk can work from (issue 12): names, return dates, overdue rows, Enter opens.

Driven through the real app at 80×24 with Textual's Pilot, on a copy of a captured,
filled desk (tests/tui_fixtures.py), whose 'today' is Friday 27/11/2026.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from edge.desk import DeskLedger, DeskReader, Details
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.demo_office import add_history
from edge.tui.office import Unlocked
from edge.tui.screens.base import LISTED_AUDIT_DELAY
from edge.tui.screens.dialogs import HandBackDialog
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.inbox import InboxScreen
from edge.tui.screens.quarantine import QuarantinedFile, QuarantineScreen
from edge.tui.screens.results import ResultsScreen
from edge.tui.screens.search import SearchScreen
from edge.tui.widgets.dossier_list import DossierList
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.test_tui_flows import payloads
from tests.tui_fixtures import Desk, make_app, sign_in, use_box_console, wait_until

HOSTILE = "[@click=app.quit]Lê Văn Tám[/] \x1b[31m"
"""A name as typed by someone who knows Textual markup and terminal escapes."""


def on_terminal(app: EdgeApp) -> list[str]:
    """The characters the app would write to the terminal, line by line, styles aside."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return ["".join(s.text for strip in line for s in strip) for line in update.strips]


def line_with(app: EdgeApp, text: str) -> str:
    found = [line for line in on_terminal(app) if text in line]
    assert found, f"{text!r} is not on the screen"
    return found[0]


def segments_of(app: EdgeApp, text: str) -> list[Any]:
    """The styled segments of the first screen line that shows ``text``."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    for line in update.strips:
        segments = [s for strip in line for s in strip]
        if text in "".join(s.text for s in segments):
            return segments
    raise AssertionError(f"{text!r} is not on the screen")


def set_details(desk: Desk, dossier_id: str, **values: str) -> None:
    store = Store.open(desk.state)
    keyring = Keyring.load(desk.state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        DeskLedger(store, keyring.sealer(), session).save_details(dossier_id, Details(**values))
    finally:
        session.close()
        store.close()


def names(desk: Desk, ids: list[str]) -> dict[str, str]:
    store = Store.open(desk.state)
    session = Keyring.load(desk.state).unlock("lan", PASSWORD)
    try:
        reader = DeskReader(store, session)
        return {i: reader.details(i)["full_name"] for i in ids}
    finally:
        session.close()
        store.close()


async def go(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


# -- names and return dates -------------------------------------------------------------------


async def test_the_waiting_list_shows_names_and_marks_overdue_return_dates(desk: Desk) -> None:
    late, early = desk.filled.waiting
    set_details(desk, late, full_name="Phạm Thị Lụa", appointment="2026-11-20")
    set_details(desk, early, full_name=HOSTILE, appointment="2026-11-30")
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "2")
        assert isinstance(app.screen, InboxScreen)
        row = line_with(app, "Phạm Thị Lụa")
        assert "!20/11/2026" in row
        other = line_with(app, "[@click=app.quit]")  # shown as typed, never markup
        assert "30/11/2026" in other and "!30/11/2026" not in other
        assert "\x1b" not in "".join(on_terminal(app))
        title = str(app.screen.query_one("#title").render())
        assert "! 1 quá hạn" in title
        # bold in any palette, not colour alone
        bold = [s for s in segments_of(app, "Phạm Thị Lụa") if "Phạm" in s.text]
        assert bold and bold[0].style.bold
        listing = app.screen.query_one(DossierList)
        assert listing.row(listing.cursor)["id"] != early
        plain = [s for s in segments_of(app, "[@click=app.quit]") if "@click" in s.text]
        assert not plain[0].style.bold
        assert app.is_running and app.office.unlocked is not None
    app.office.close()


async def test_overdue_rows_stand_out_on_the_box_console(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TERM=linux, 16 colours: the mark and bold carry it where colours are few."""
    use_box_console(monkeypatch)
    late = desk.filled.waiting[1]
    set_details(desk, late, full_name="Phạm Thị Lụa", appointment="2026-11-02")
    app = make_app(desk, console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "2", "end")  # the cursor on the last row, away from the late one
        assert "!02/11/2026" in line_with(app, "Phạm Thị Lụa")
        late_cells = [s for s in segments_of(app, "Phạm Thị Lụa") if "Phạm" in s.text]
        assert late_cells[0].style.bold
    app.office.close()


async def test_the_results_list_shows_names_return_dates_and_enter_opens(desk: Desk) -> None:
    first, second = desk.filled.results
    store = Store.open(desk.state)
    with store.transaction():
        store.conn.execute("UPDATE dossiers SET appointment='2026-11-26' WHERE id=?", (first,))
        store.conn.execute("UPDATE dossiers SET appointment='2026-11-27' WHERE id=?", (second,))
    store.close()
    who = names(desk, [first, second])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "3")
        assert isinstance(app.screen, ResultsScreen)
        assert "!26/11/2026" in line_with(app, who[first])
        today = line_with(app, who[second])
        assert "27/11/2026" in today and "!27/11/2026" not in today  # due today: not late
        assert "1 quá hạn" in str(app.screen.query_one("#title").render())
        listing = app.screen.query_one(DossierList)
        assert listing.current is not None and listing.current["id"] == first
        await go(pilot, "enter")
        assert isinstance(app.screen, DossierScreen) and app.screen.dossier_id == first
        await go(pilot, "escape")
        assert isinstance(app.screen, ResultsScreen)
        await go(pilot, "t")
        assert isinstance(app.screen, HandBackDialog)
        await go(pilot, "escape")
        assert isinstance(app.screen, ResultsScreen)
    app.office.close()


async def test_a_handed_back_result_is_never_overdue(desk: Desk) -> None:
    returned = desk.filled.handed_back[0]
    store = Store.open(desk.state)
    with store.transaction():
        store.conn.execute("UPDATE dossiers SET appointment='2026-11-01' WHERE id=?", (returned,))
    code = store.dossier(returned)["code"]
    store.close()
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "slash", *code, "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, SearchScreen)
        row = line_with(app, "01/11/2026")
        assert code in row and "!01/11/2026" not in row
    app.office.close()


async def test_search_results_show_return_dates_and_enter_opens(desk: Desk) -> None:
    late = desk.filled.waiting[1]
    set_details(desk, late, full_name="Phạm Thị Lụa", appointment="2026-11-25")
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "slash", *"lua", "enter")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        assert "!25/11/2026" in line_with(app, "Phạm Thị Lụa")
        assert "1 quá hạn" in str(screen.query_one("#status").render())
        await go(pilot, "enter")
        assert isinstance(app.screen, DossierScreen) and app.screen.dossier_id == late
    app.office.close()


# -- only the rows on screen are opened, and only in memory --------------------------------------


def bulk(desk: Desk, n: int) -> None:
    store = Store.open(desk.state)
    keyring = Keyring.load(desk.state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        add_history(store, keyring, session, n, seed=3, open_every=2)
    finally:
        session.close()
        store.close()


async def test_a_long_list_opens_only_the_names_on_screen(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk(desk, 240)
    opened: list[str] = []
    real = Unlocked.citizen_name

    def counting(self: Unlocked, dossier_id: str) -> str:
        opened.append(dossier_id)
        return real(self, dossier_id)

    monkeypatch.setattr(Unlocked, "citizen_name", counting)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "2")
        opened.clear()
        await go(pilot, "t")
        listing = app.screen.query_one(DossierList)
        assert listing.total > 240
        visible = listing.size.height - 1
        assert 0 < len(set(opened)) <= visible
        await go(pilot, "end")
        assert len(set(opened)) <= 2 * visible
        last = [listing.row(i) for i in range(listing.total - visible, listing.total)]
        assert any(row and row.get("name") for row in last)
    app.office.close()


async def test_names_never_reach_the_disk_and_go_with_the_lock(desk: Desk) -> None:
    late = desk.filled.waiting[1]
    set_details(desk, late, full_name="Phạm Thị Lụa Riêng", appointment="2026-11-20")
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "2")
        line_with(app, "Phạm Thị Lụa Riêng")
        await go(pilot, "slash", *"rieng", "enter")
        await pilot.pause(0.3)
        line_with(app, "Phạm Thị Lụa Riêng")
        await go(pilot, "ctrl+l")
        for screen in app.screen_stack:
            for listing in screen.query(DossierList):
                cached = [row for block in listing._blocks.values() for row in block]
                assert not any(row.get("name") for row in cached)
                if isinstance(screen, SearchScreen):
                    assert listing.total == 0 and not screen.result.rows
        await sign_in(pilot, keys=False)
        await pilot.pause(0.3)
        assert isinstance(app.screen, SearchScreen)
        line_with(app, "Phạm Thị Lụa Riêng")  # searched again once the clerk is back
    app.office.close()
    wanted = "Phạm Thị Lụa Riêng".encode()
    for path in Path(desk.base).rglob("*"):
        if path.is_file():
            assert wanted not in path.read_bytes(), path


async def test_names_shown_in_a_list_are_in_the_log_once_per_visit(desk: Desk) -> None:
    """Decree 13/2023: who saw a citizen's name. A list shows names as search results do,
    so the names drawn are logged (``audit.listed``), once per visit, not once per redraw."""
    late, early = desk.filled.waiting
    set_details(desk, late, full_name="Phạm Thị Lụa", appointment="2026-11-20")
    set_details(desk, early, full_name="Trần Văn Bình", appointment="2026-11-30")
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "2")
        line_with(app, "Phạm Thị Lụa")
        for _ in range(3):  # moving the cursor redraws rows: no new entries
            await go(pilot, "down", "up")
        await pilot.pause(LISTED_AUDIT_DELAY + 0.5)
        first = payloads(desk.state, "audit.listed")
        assert first and all(p["clerk"] == "lan" for p in first)
        shown = [i for p in first for i in p["shown"]]
        assert {late, early} <= set(shown) and len(shown) == len(set(shown))
        await go(pilot, "ctrl+l")  # locking writes what was gathered, then forgets it
        await sign_in(pilot, keys=False)
        await pilot.pause(LISTED_AUDIT_DELAY + 0.5)
        again = payloads(desk.state, "audit.listed")[len(first) :]
        assert {late, early} <= {i for p in again for i in p["shown"]}  # a new visit
    app.office.close()
    # nothing in an audit entry names the citizen: ids only
    for payload in payloads(desk.state, "audit.listed"):
        assert "Phạm" not in str(payload) and "Bình" not in str(payload)


# -- Enter opens, on every list ------------------------------------------------------------


async def test_enter_opens_on_home_inbox_and_quarantine(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await go(pilot, "enter")  # the first next step: scanned dossiers to complete
        assert isinstance(app.screen, InboxScreen)
        await go(pilot, "enter")
        assert isinstance(app.screen, DossierScreen)
        await go(pilot, "escape", "1", "down", "enter")  # the next one: results
        assert isinstance(app.screen, ResultsScreen)
        await go(pilot, "6", "enter")
        dialog = app.screen
        assert isinstance(dialog, QuarantinedFile)
        shown = "\n".join(on_terminal(app))
        assert "ghi-chu.jpg" in shown and "không phải bản quét" in shown
        await go(pilot, "escape")
        assert isinstance(app.screen, QuarantineScreen)
        assert app.screen.query_one(DossierList).total == 1
        await go(pilot, "enter", "r")
        assert isinstance(app.screen, QuarantineScreen)
        await wait_until(pilot, lambda: app.screen.query_one(DossierList).total == 0)
    app.office.close()
    assert (desk.inbox / "ghi-chu.jpg").exists()
