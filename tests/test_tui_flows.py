"""The clerk's flows, driven through the real app with Textual's Pilot.

Each test signs in on a copy of a captured, filled desk (tests/tui_fixtures.py)
and checks both what the clerk sees and what the ledger recorded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from textual.widgets import Input, OptionList, Static

from edge import samples
from edge.daemon import Daemon
from edge.desk import RESULT_READY, DeskReader
from edge.records import COMPLETE, UNASSIGNED, WAITING_DETAILS, Ledger
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.demo_office import tiny_page
from edge.tui.screens.dialogs import (
    ConfirmDialog,
    FileWrittenDialog,
    HandBackDialog,
    ProcedurePicker,
)
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.handover import HandoverScreen
from edge.tui.screens.home import HomeScreen
from edge.tui.screens.inbox import InboxScreen
from edge.tui.screens.quarantine import QuarantineScreen
from edge.tui.screens.results import ResultsScreen
from edge.tui.screens.search import SearchScreen
from edge.tui.screens.signin import SignInScreen
from edge.tui.widgets.common import StatusLine
from edge.tui.widgets.dossier_list import DossierList
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.tui_fixtures import (
    APP_DAY_MS,
    SEED,
    Desk,
    add_dossier_pages,
    make_app,
    sign_in,
    use_box_console,
    wait_until,
)


def status(app: EdgeApp) -> str:
    return str(app.screen.query_one("#status", StatusLine).render())


def event_types(state: Path) -> list[str]:
    store = Store.open(state)
    try:
        return [e.type for e in store.events()]
    finally:
        store.close()


def payloads(state: Path, event_type: str) -> list[dict]:
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        reader = DeskReader(store, session)
        return [reader.event_payload(e) for e in store.events() if e.type == event_type]
    finally:
        session.close()
        store.close()


def reader_for(state: Path) -> tuple[Store, DeskReader]:
    store = Store.open(state)
    return store, DeskReader(store, Keyring.load(state).unlock("lan", PASSWORD))


async def type_into(pilot, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    await pilot.press(*text)


async def open_list_row(pilot, match) -> None:
    """Move the focused list's cursor to the first row ``match`` accepts, then Enter."""
    listing = pilot.app.screen.query_one(DossierList)
    for index in range(listing.total):
        row = listing.row(index)
        if row is not None and match(row):
            listing.cursor = index
            break
    else:
        raise AssertionError("no such row in the list")
    await pilot.press("enter")
    await pilot.pause()


# -- signing in ---------------------------------------------------------------------------


async def test_sign_in_opens_home_and_is_audited(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, SignInScreen)
        assert app.focused is app.screen.query_one("#user")
        await sign_in(pilot, keys=True)
        assert isinstance(app.screen, HomeScreen)
        assert app.office.unlocked is not None
        title = str(app.screen.query_one("#title").render())
        assert "27/11/2026" in title and "lan" in title
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        assert app.office.unlocked is None
    app.office.close()
    types = event_types(desk.state)
    assert "clerk.signed_in" in types and "clerk.signed_out" in types


async def test_wrong_password_delays_then_locks_out_across_restarts(desk: Desk) -> None:
    now = [APP_DAY_MS]
    app = make_app(desk, wall=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        for attempt in range(1, 7):
            await sign_in(pilot, password="sai-mat-khau", keys=attempt == 1)
            assert isinstance(app.screen, SignInScreen)
            message = status(app)
            if attempt <= 2:
                assert message.startswith("Sai tên đăng nhập hoặc mật khẩu")
            elif attempt < 6:
                assert "Đợi" in message and "giây" in message
                # trying again at once is refused without checking the password
                await pilot.press(*"sai", "enter")
                await pilot.pause()
                assert "Vui lòng đợi" in status(app)
                await pilot.press("ctrl+a", "delete")
                now[0] += 120_000
            else:
                assert "tạm khóa đăng nhập 15 phút" in status(app)
            user = app.screen.query_one("#user", Input)
            user.value = ""
            user.focus()
    app.office.close()
    # the lockout is in the database: a restart does not lift it, the right password waits
    app = make_app(desk, wall=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, SignInScreen)
        assert "tạm khóa" in status(app)
        now[0] += 15 * 60_000
        app.screen.query_one("#user", Input).value = ""
        app.screen.query_one("#user", Input).focus()
        await sign_in(pilot)
        assert isinstance(app.screen, HomeScreen)
    app.office.close()
    types = event_types(desk.state)
    assert types.count("clerk.sign_in_failed") == 5
    assert types.count("clerk.locked_out") == 1
    assert "clerk.sign_in_refused" in types
    failed = payloads(desk.state, "clerk.sign_in_failed")
    assert all(p["clerk"] == "lan" for p in failed)


async def test_unknown_user_name_is_never_stored(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, user="mat-khau-go-nham")
        assert isinstance(app.screen, SignInScreen)
    app.office.close()
    failed = payloads(desk.state, "clerk.sign_in_failed")
    assert failed == [{"clerk": None, "unknown": True, "failures": 1, "delay_s": 0}]
    assert b"mat-khau-go-nham" not in (desk.state / "edge.db").read_bytes()


async def test_idle_lock_drops_the_key_and_resumes_where_the_clerk_was(desk: Desk) -> None:
    app = make_app(desk, idle_minutes=0.5 / 60, refresh_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("2")
        await pilot.pause()
        assert isinstance(app.screen, InboxScreen)
        await pilot.pause(0.9)
        assert isinstance(app.screen, SignInScreen)
        assert app.screen.locked_by == "lan"
        assert app.office.unlocked is None
        assert app.focused is app.screen.query_one("#password")
        await pilot.press("2")  # digits type into the password field, navigation is blocked
        assert isinstance(app.screen, SignInScreen)
        app.screen.query_one("#password", Input).value = ""
        # half a second would lock again while a loaded machine derives the key
        app.idle_seconds = 60.0
        await pilot.press(*PASSWORD, "enter")
        await pilot.pause()
        assert isinstance(app.screen, InboxScreen)
    app.office.close()
    assert payloads(desk.state, "clerk.signed_out")[0]["reason"] == "idle"


# -- dossiers -------------------------------------------------------------------------------


async def test_complete_a_dossier(desk: Desk) -> None:
    person = samples.sample_people(1, 99)[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("2")
        await pilot.pause()
        target = desk.filled.waiting[0]
        await open_list_row(pilot, lambda r: r["id"] == target)
        screen = app.screen
        assert isinstance(screen, DossierScreen)
        # the procedure from the catalogue, found without accents
        await type_into(pilot, "#procedure", "")
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ProcedurePicker)
        await pilot.press(*"dang ky khai sinh", "enter")
        await pilot.pause()
        assert screen.query_one("#procedure", Input).value == "1.001193"
        # khai sinh is returned the same day (Luật Hộ tịch 2014, art. 16)
        assert screen.query_one("#appointment", Input).value == "27/11/2026"
        screen.query_one("#full_name", Input).value = person.full_name
        # a CCCD that disagrees with the year of birth is refused in Vietnamese
        screen.query_one("#birth_year", Input).value = str(person.birth_date.year + 1)
        screen.query_one("#cccd", Input).value = person.cccd
        await pilot.press("f9")
        await pilot.pause()
        assert "không khớp với năm sinh" in status(app)
        assert app.focused is screen.query_one("#cccd")
        screen.query_one("#birth_year", Input).value = str(person.birth_date.year)
        screen.query_one("#phone", Input).value = person.phone
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)  # completing cannot be undone: asked
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, InboxScreen)
        assert "Đã hoàn tất hồ sơ" in status(app)
    app.office.close()
    store, reader = reader_for(desk.state)
    row = store.dossier(target)
    assert row["status"] == COMPLETE and row["procedure_code"] == "1.001193"
    fields = reader.fields(target)
    assert fields["full_name"] == person.full_name and fields["cccd"] == person.cccd
    assert fields["given"] == person.given_name
    assert store.conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 0
    assert store.verify_chain() is None
    store.close()
    viewed = payloads(desk.state, "audit.viewed")
    assert any(p["what"] == ["fields", "pages"] for p in viewed)


async def test_typing_is_kept_as_a_sealed_draft_across_a_restart(desk: Desk) -> None:
    target = desk.filled.waiting[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause()
        await type_into(pilot, "#full_name", "Trần Thị Bích")
        await pilot.pause(0.5)
    # the process ends without saving (as after a power cut: the draft was already written)
    app.office.store.close()
    raw = (desk.state / "edge.db").read_bytes()
    assert "Bích".encode() not in raw
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause()
        assert app.screen.query_one("#full_name", Input).value == "Trần Thị Bích"
        assert "khôi phục" in status(app)
    app.office.close()


async def test_assign_a_code_to_an_unassigned_dossier(desk: Desk) -> None:
    store = Store.open(desk.state)
    unassigned = store.conn.execute(
        "SELECT id FROM dossiers WHERE status=?", (UNASSIGNED,)
    ).fetchone()[0]
    store.close()
    code = samples.sample_codes(1, 1234)[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("2")
        await pilot.pause()
        await open_list_row(pilot, lambda r: r["code"] is None)
        screen = app.screen
        assert isinstance(screen, DossierScreen)
        assert not screen.query_one("#code", Input).disabled
        await type_into(pilot, "#code", "không phải mã")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Mã hồ sơ không hợp lệ" in status(app)
        await type_into(pilot, "#code", code.lower())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert status(app) == "Đã lưu."
        assert screen.query_one("#code", Input).disabled
    app.office.close()
    store = Store.open(desk.state)
    row = store.dossier(unassigned)
    assert row["code"] == code and row["status"] == WAITING_DETAILS
    store.close()
    assert "dossier.code_assigned" in event_types(desk.state)


async def test_a_code_already_known_merges_the_pages_and_keeps_them_readable(desk: Desk) -> None:
    store = Store.open(desk.state)
    unassigned = store.conn.execute(
        "SELECT id FROM dossiers WHERE status=?", (UNASSIGNED,)
    ).fetchone()[0]
    target_id = desk.filled.waiting[1]
    target = store.dossier(target_id)
    before = len(store.pages(target_id))
    store.close()
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(unassigned)
        await pilot.pause()
        await type_into(pilot, "#code", target["code"])
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, DossierScreen) and app.screen.dossier_id == target_id,
        )
    app.office.close()
    store, reader = reader_for(desk.state)
    pages = store.pages(target_id)
    assert len(pages) == before + 1
    assert all(reader.page_bytes(p)[:2] == b"\xff\xd8" for p in pages)
    assert store.dossier(unassigned)["status"] == "merged"
    store.close()


async def test_reorder_and_split_pages(desk: Desk) -> None:
    target = desk.filled.waiting[0]
    store = Store.open(desk.state)
    original = [p["id"] for p in store.pages(target)]
    store.close()
    assert len(original) >= 3
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause()
        screen = app.screen
        screen.query_one("#pages").focus()
        await pilot.press("down", "right_square_bracket")
        await pilot.pause()
        assert "vị trí 3" in status(app)
        await pilot.press("up", "s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")
        await pilot.pause()
        assert "Đã tách" in status(app)
    app.office.close()
    store, reader = reader_for(desk.state)
    kept = [p["id"] for p in store.pages(target)]
    assert kept == [original[0]]
    new_id = store.conn.execute(
        "SELECT dossier_id FROM pages WHERE id=?", (original[1],)
    ).fetchone()[0]
    moved = store.pages(new_id)
    assert [p["id"] for p in moved][:2] == [original[2], original[1]]
    assert all(reader.page_bytes(p) for p in moved)
    assert store.dossier(new_id)["status"] == UNASSIGNED
    assert store.verify_chain() is None
    store.close()


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["Nguyễn", "nguyen", "NGUYEN"])
async def test_search_finds_names_with_or_without_accents(desk: Desk, typed: str) -> None:
    people = samples.sample_people(40, SEED)
    app = make_app(desk)
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("slash")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*typed, "enter")
        await pilot.pause()
        listing = app.screen.query_one(DossierList)
        names = [listing.row(i)["name"] for i in range(listing.total)]
    app.office.close()
    store = Store.open(desk.state)
    with_names = {
        r[0] for r in store.conn.execute("SELECT id FROM dossiers WHERE fields IS NOT NULL")
    }
    store.close()
    expected = [p.full_name for p in people[1 : len(with_names) + 1] if p.family_name == "Nguyễn"]
    assert names and sorted(names) == sorted(expected)
    from edge.text import name_sort_key, split_name

    assert names == sorted(names, key=lambda n: name_sort_key(*split_name(n)))
    searched = payloads(desk.state, "audit.searched")
    assert searched and searched[-1]["total"] == len(names)


async def test_search_by_full_name_cccd_and_code(desk: Desk) -> None:
    people = samples.sample_people(40, SEED)
    person = people[3]
    app = make_app(desk)
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("slash")
        await pilot.pause()
        from edge.text import fold

        for query in (fold(person.full_name), person.full_name, person.cccd):
            await type_into(pilot, "#query", query)
            await pilot.press("enter")
            await pilot.pause()
            listing = app.screen.query_one(DossierList)
            assert [listing.row(i)["name"] for i in range(listing.total)] == [person.full_name]
        await type_into(pilot, "#query", desk.codes[3][-9:])
        await pilot.press("enter")
        await pilot.pause()
        listing = app.screen.query_one(DossierList)
        assert listing.row(0)["code"] == desk.codes[3]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen)
    app.office.close()


# -- results, handover, quarantine ----------------------------------------------------------------


async def test_hand_back_a_result(desk: Desk) -> None:
    target = desk.filled.results[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        listing = app.screen.query_one(DossierList)
        assert listing.total == 2
        await open_list_row(pilot, lambda r: r["id"] == target)  # Enter opens the dossier
        assert isinstance(app.screen, DossierScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("t")  # t hands the result back
        await pilot.pause()
        assert isinstance(app.screen, HandBackDialog)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HandBackDialog)  # the ID paper's number is required
        await pilot.press(*"001190012345", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        assert app.screen.query_one(DossierList).total == 1
        assert "Đã trả kết quả" in status(app)
    app.office.close()
    store = Store.open(desk.state)
    row = store.dossier(target)
    assert row["handed_back_at"] and row["central_status"] == RESULT_READY
    store.close()
    handed = payloads(desk.state, "result.handed_back")[-1]
    assert handed["receiver_id"] == "001190012345" and handed["clerk"] == "lan"


def pdf_text(path: Path) -> str:
    pdf = pypdfium2.PdfDocument(path)
    try:
        width, height = pdf[0].get_size()
        assert (round(width), round(height)) == (595, 842)
        return "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


async def test_handover_list_is_an_a4_pdf_listing_the_codes(desk: Desk) -> None:
    """Issue 12: a dossier can stay behind, and each list names exactly its own dossiers.

    The confirmation said 20 while the PDF said 28 (the whole date); a dossier received
    at 02:03 Vietnam time was listed on the previous (UTC) day; the path was cut off.
    """
    store = Store.open(desk.state)
    early = desk.filled.complete[0]
    # 02:03 on 27/11 at the counter is still 26/11 in UTC
    store.conn.execute(
        "UPDATE dossiers SET received_at='2026-11-26T19:03:00.000Z' WHERE id=?", (early,)
    )
    store.close()
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HandoverScreen)
        listing = screen.query_one(DossierList)
        codes = [listing.row(i)["code"] for i in range(listing.total)]
        assert len(codes) == len(desk.filled.complete)
        listing.cursor = codes.index(store_code(desk, desk.filled.complete[-1]))
        await pilot.press("space")  # this one stays for the next courier
        await pilot.pause()
        kept = store_code(desk, desk.filled.complete[-1])
        assert f"{len(codes) - 1}/{len(codes)}" in title(app)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert f"{len(codes) - 1} hồ sơ giấy" in app.screen.question
        await pilot.press("enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, FileWrittenDialog)
        # the whole path is on screen, wrapped if need be, at 80 columns
        shown = "".join(
            str(dialog.query_one(f"#{name}").render()).replace("\n", "")
            for name in ("folder", "file")
        )
        assert str(screen.last_pdf.parent) in shown and screen.last_pdf.name in shown
        await pilot.press("escape")
        await pilot.pause()
        first_pdf = screen.last_pdf
        assert "Đã bàn giao ngày 27/11/2026" in title(app)
        await pilot.press("d")  # back to what is waiting: the one left here
        await pilot.pause()
        assert screen.query_one(DossierList).total == 1
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FileWrittenDialog)
        await pilot.press("escape")
        await pilot.pause()
        second_pdf = screen.last_pdf
    app.office.close()
    assert first_pdf.name == "ban-giao-2026-11-27-lan-1.pdf"
    assert second_pdf.name == "ban-giao-2026-11-27-lan-2.pdf"
    text = pdf_text(first_pdf)
    assert "BIÊN BẢN BÀN GIAO HỒ SƠ GIẤY" in text
    assert "Độc lập - Tự do - Hạnh phúc" in text
    for code in codes:
        assert (code in text) == (code != kept)
    assert f"Tổng cộng: {len(codes) - 1} hồ sơ" in text
    assert "26/11/2026" not in text and "27/11/2026" in text
    # no citizen's name is printed
    assert not any(p.family_name + " " in text for p in samples.sample_people(40, SEED))
    second = pdf_text(second_pdf)
    assert kept in second and "lần 2" in second
    assert not any(code in second for code in codes if code != kept)
    recorded = payloads(desk.state, "handover.recorded")
    assert [len(r["dossiers"]) for r in recorded] == [len(codes) - 1, 1]


def title(app: EdgeApp) -> str:
    return str(app.screen.query_one("#title").render())


def store_code(desk: Desk, dossier_id: str) -> str:
    store = Store.open(desk.state)
    try:
        return store.dossier(dossier_id)["code"]
    finally:
        store.close()


async def test_quarantine_retry_puts_the_file_back_for_capture(desk: Desk) -> None:
    original = "đây không phải là ảnh quét\n".encode()
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, QuarantineScreen)
        assert app.screen.query_one(DossierList).total == 1
        assert "không phải bản quét" in str(app.screen.query_one("#why").render())
        await pilot.press("r")
        await pilot.pause()
        assert "trở lại thư mục máy quét" in status(app)
        assert app.screen.query_one(DossierList).total == 0
    app.office.close()
    assert (desk.inbox / "ghi-chu.jpg").read_bytes() == original
    assert not list(desk.inbox.glob("*.part"))
    daemon = Daemon(desk.state, desk.inbox, {"settle_seconds": 0.0})
    try:
        report = daemon.run_once().as_json()
    finally:
        daemon.close()
    assert [q["file"] for q in report["quarantined"]] == ["ghi-chu.jpg"]
    assert "file.retry_requested" in event_types(desk.state)


async def test_quarantine_discard_is_confirmed_and_audited(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("6")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # the safe answer is focused: nothing is discarded
        await pilot.pause()
        assert app.screen.query_one(DossierList).total == 1
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("tab", "enter")
        await pilot.pause()
        assert app.screen.query_one(DossierList).total == 0
    app.office.close()
    assert payloads(desk.state, "file.discarded")[0]["clerk"] == "lan"


# -- live refresh and language ---------------------------------------------------------------


async def test_home_refreshes_while_the_daemon_captures(desk: Desk) -> None:
    app = make_app(desk, refresh_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)

        def waiting() -> str:
            return str(app.screen.query_one("#desk").render())

        before = waiting()
        writer = Store.open(desk.state)  # the daemon's own connection
        with writer.transaction():
            Ledger(writer, Keyring.load(desk.state).sealer()).create_dossier(None)
        writer.close()
        await pilot.pause(0.4)
        assert waiting() != before
    app.office.close()


async def test_english_is_complete_for_the_sign_in_and_home(desk: Desk) -> None:
    app = make_app(desk, lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        assert str(app.screen.query_one("#heading").render()) == "Sign in"
        await sign_in(pilot)
        steps = app.screen.query_one("#next", OptionList)
        text = " ".join(str(steps.get_option_at_index(i).prompt) for i in range(steps.option_count))
        assert "Press 2 to complete" in text
    app.office.close()


def test_tui_needs_a_terminal(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    assert main(["tui", "--state", str(desk.state)]) == 2
    assert "needs a terminal" in capsys.readouterr().err


def test_dossiers_json_still_lists_every_dossier(desk: Desk) -> None:
    store = Store.open(desk.state)
    rows = store.list_dossiers()
    store.close()
    assert json.dumps(rows, ensure_ascii=False)
    assert {r["status"] for r in rows} >= {UNASSIGNED, WAITING_DETAILS, COMPLETE}


async def test_a_password_set_by_regional_it_must_be_changed_at_first_sign_in(
    desk: Desk,
) -> None:
    from edge.tui.screens.signin import ChangePasswordScreen

    ring = desk.state / "keyring.json"
    data = json.loads(ring.read_text())
    data["clerks"]["lan"]["must_change"] = True
    ring.write_text(json.dumps(data))
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, ChangePasswordScreen)
        await pilot.press("2")  # no way around it
        assert isinstance(app.screen, ChangePasswordScreen)
        app.screen.query_one("#new", Input).value = "ngan"
        app.screen.query_one("#again", Input).value = "ngan"
        app.screen.query_one("#again", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "ít nhất 8 ký tự" in status(app)
        app.screen.query_one("#new", Input).value = "gio-mua-thoi-qua-deo-hai-van"
        app.screen.query_one("#again", Input).value = "gio-mua-thoi-qua-deo-hai-van"
        app.screen.query_one("#again", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
    app.office.close()
    keyring = Keyring.load(desk.state)
    assert not keyring.must_change_password("lan")
    keyring.unlock("lan", "gio-mua-thoi-qua-deo-hai-van").close()
    assert "clerk.password_changed" in event_types(desk.state)


# -- issue 12: what was wrong at the counter ---------------------------------------------------


def shown_text(renderable: object, width: int = 120) -> str:
    """A Rich renderable (a Static's table) as the plain text a terminal would show."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return " ".join(console.export_text().split())


def console_background(color: Any) -> int:
    """The background a 16-colour Linux console shows for a Textual colour (8 of them)."""
    from rich.color import Color as RichColor
    from rich.color import ColorSystem

    if color.ansi is not None and color.ansi >= 0:
        return color.ansi % 8
    if color.ansi == -1:
        return 0  # the terminal's default background: black on the console
    downgraded = RichColor.from_rgb(color.r, color.g, color.b).downgrade(ColorSystem.STANDARD)
    return (downgraded.number or 0) % 8


async def test_fields_and_focus_are_visible_on_the_box_console(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TERM=linux (edge-tui@.service): empty fields were invisible, focus only a cursor."""
    use_box_console(monkeypatch)
    target = add_dossier_pages(desk, None, [(tiny_page(1), [])])
    app = make_app(desk, console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        fields = list(app.screen.query(Input))
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause(0.3)
        fields = [f for f in app.screen.query(Input) if f.display and not f.disabled]
        screen_bg = console_background(app.screen.background_colors[1])
        focused = [f for f in fields if f.has_focus]
        assert len(focused) == 1
        blurred = [f for f in fields if not f.has_focus]
        for field in blurred:
            assert console_background(field.background_colors[1]) != screen_bg, field.id
        for field in blurred:
            assert console_background(field.background_colors[1]) != console_background(
                focused[0].background_colors[1]
            )
    app.office.close()


def test_the_ui_never_writes_logs_to_its_terminal(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """StandardError=tty: writing the handover PDF flooded the screen with fontTools lines."""
    import logging
    import sys
    from datetime import date

    from edge.observe.logs import one_line_handler
    from edge.tui import run
    from edge.tui.handover import HandoverLine, handover_pdf

    def clerk_works(self: EdgeApp) -> None:
        handover_pdf(
            [HandoverLine("H29.01-261127-0001", "1.001193", "Đăng ký khai sinh", 2, None)],
            on=date(2026, 11, 27),
            office="H29.01",
            clerk="lan",
            out_dir=desk.state / "handover",
        )
        logging.getLogger("edge.tui").info("handover list written")

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.addHandler(one_line_handler(sys.stderr))  # what 'edge' sets up for every command
    root.setLevel(logging.INFO)
    monkeypatch.setenv("EDGE_TUI_GRAPHICS", "0")
    monkeypatch.setattr(EdgeApp, "run", clerk_works)
    try:
        assert run(desk.state, inbox=desk.inbox) == 0
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    assert capsys.readouterr().err == ""
    assert "handover list written" in (desk.state / "logs" / "tui.log").read_text()


def _enrolled(desk: Desk, *, error: str | None) -> None:
    store = Store.open(desk.state)
    with store.transaction():
        store.conn.execute(
            "INSERT INTO sync_enrollment VALUES (1, 'dev1', 'https://central.example', "
            "'H29.01', '2026-11-20T01:00:00.000Z')"
        )
        store.conn.execute(
            "INSERT INTO sync_batches(n, batch_id, after_seq, last_seq, events, blobs, created, "
            "receipt, acknowledged_at) VALUES (1, 'b1', 0, 1, 1, '[]', "
            "'2026-11-27T00:50:00.000Z', '{}', '2026-11-27T00:50:00.000Z')"
        )
        if error:
            store.put_meta("sync.last_error", error)
            store.put_meta("sync.last_error_code", "unreachable")
    store.close()


async def test_sync_screen_says_how_the_last_round_went(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "connected" beside "Connection refused": connected meant "some success today"."""
    _enrolled(
        desk,
        error="2026-11-27T01:20:00.000Z central is unreachable or busy (Connection refused)",
    )
    from edge.sync import client

    rounds: list[Path] = []

    def one_round(state: Path, **_kw: Any) -> Any:
        rounds.append(state)
        return type("Report", (), {"done": True, "error_code": None})()

    monkeypatch.setattr(client, "sync_once", one_round)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("5")
        await pilot.pause()
        central = shown_text(app.screen.query_one("#central", Static).content)
        assert "không thành công: 27/11 08:20 ·" in central
        assert "không kết nối được" in central
        assert "đã kết nối" not in central and "Connection refused" not in central
        details = app.screen.query_one("#details", Static)
        assert not details.display  # the technician's detail is behind a key
        await pilot.press("t")
        await pilot.pause()
        assert details.display
        assert "Connection refused" in shown_text(details.content)
        await pilot.press("s")
        await wait_until(pilot, lambda: "Đồng bộ xong" in status(app))
    app.office.close()
    assert rounds == [desk.state]


async def test_f9_checks_first_and_marks_every_field_to_fix(desk: Desk) -> None:
    """It asked "complete? cannot be changed" first, then reported one missing field at a time."""
    target = add_dossier_pages(desk, "H29.01.16-261127-0042", [(tiny_page(1), [])])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause(0.3)
        screen = app.screen
        screen.query_one("#birth_year", Input).value = "2031"
        screen.query_one("#appointment", Input).value = "20/11/2026"
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen)  # nothing asked while things are wrong
        marked = {f.id for f in screen.query(Input) if f.has_class("-invalid")}
        assert marked == {"procedure", "full_name", "cccd", "birth_year", "appointment"}
        assert app.focused is screen.query_one("#procedure")
        assert "Hãy sửa các ô được đánh dấu" in status(app)
        assert "Thủ tục" in status(app) and "Số CCCD" in status(app)
        screen.query_one("#appointment", Input).value = ""
        screen.query_one("#birth_year", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "Năm sinh ở tương lai" in status(app)
    app.office.close()


async def test_a_completed_dossier_is_reopened_with_f7_until_handed_over(desk: Desk) -> None:
    target = desk.filled.complete[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause(0.3)
        assert "F7" in status(app)
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DossierScreen) and screen.editable
        assert not screen.query_one("#full_name", Input).disabled
    app.office.close()
    store = Store.open(desk.state)
    assert store.dossier(target)["status"] == WAITING_DETAILS
    store.close()
    assert payloads(desk.state, "dossier.reopened")[0]["clerk"] == "lan"


async def test_a_name_typed_at_once_lands_in_the_name(desk: Desk) -> None:
    """The form opened in "Thủ tục", which took any text: a name typed at once went there."""
    target = add_dossier_pages(desk, "H29.01.16-261127-0043", [(tiny_page(1), [])])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause(0.3)
        await pilot.press(*"Le Thi Ha")
        screen = app.screen
        assert screen.query_one("#full_name", Input).value == "Le Thi Ha"
        assert screen.query_one("#procedure", Input).value == ""
        screen.query_one("#procedure", Input).focus()
        await pilot.press("k")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ProcedurePicker)  # only a choice from the list
        assert picker.query_one("#filter", Input).value == "k"
        await pilot.press("escape")
        await pilot.pause()
        assert screen.query_one("#procedure", Input).value == ""
    app.office.close()


async def test_keys_typed_right_after_switching_screens_are_commands(desk: Desk) -> None:
    """ "4" then "d" quickly gave the handover date field "dp" (2 tries in 4)."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await app.push_screen(HandoverScreen())
        # before any refresh: the screen's first focus must not be a text field
        assert not isinstance(app.focused, Input)
        await pilot.press("d", "p")
        await pilot.pause()
        assert app.screen.query_one("#date", Input).value == "27/11/2026"
    app.office.close()


async def test_split_pages_go_back_into_a_completed_dossier(desk: Desk) -> None:
    """The split-off pages were stranded, and the refusal blamed the dossier in hand."""
    store = Store.open(desk.state)
    source = desk.filled.complete[0]
    code = store.dossier(source)["code"]
    pages = [p["id"] for p in store.pages(source)]
    store.close()
    split_off = add_dossier_pages(desk, None, [(tiny_page(9), [])])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(split_off)
        await pilot.pause(0.3)
        await pilot.press("f8")
        await pilot.pause()
        await pilot.press(*code, "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen) and app.screen.dossier_id == source
    app.office.close()
    store = Store.open(desk.state)
    assert [p["id"] for p in store.pages(source)][: len(pages)] == pages
    assert len(store.pages(source)) == len(pages) + 1
    assert store.dossier(split_off)["status"] == "merged"
    store.close()


async def test_quarantine_advice_does_not_send_the_clerk_to_the_scanner_folder(
    desk: Desk,
) -> None:
    """The file already left the scanner folder: "delete it from there" sent clerks hunting."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("6")
        await pilot.pause()
        why = str(app.screen.query_one("#why").render())
        assert "đã lấy nó ra khỏi thư mục máy quét" in why
        assert "(X)" in why
    app.office.close()
    assert not (desk.inbox / "ghi-chu.jpg").exists()
