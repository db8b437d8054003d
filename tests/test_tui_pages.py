"""A dossier's pages at the desk (issue 12): what each page is, turned, deleted and restored,
read enlarged with zoom and pan, and tagged with the document it is.

Driven through the real app with Pilot at 80×24, the box's console size; what the ledger
recorded is checked beside what the clerk sees. Snapshots in Vietnamese, at 80×24 and on
the console's 16 colours, are under tests/__snapshots__/test_tui_pages/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import Static

from edge import samples
from edge.clock import Clock
from edge.desk import DeskError, DeskLedger, clean_details
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ConfirmDialog
from edge.tui.screens.document_tag import DocumentTagDialog, page_run
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.page_view import PageViewScreen
from edge.tui.widgets.page_list import PageList
from edge.tui.widgets.preview import HalfBlockView, PagePreview, PageZoom, Viewport
from edge.vault import Keyring
from tests.test_desk import TODAY
from tests.test_tui_flows import payloads, reader_for, status
from tests.tui_fixtures import (
    APP_DAY_MS,
    Desk,
    add_dossier_pages,
    id_card_text,
    make_app,
    page_bytes,
    sign_in,
    use_box_console,
    wait_until,
)

BIRTH = "1.001193"
"""Đăng ký khai sinh: a form and a birth certificate (giấy chứng sinh), originals."""


def card_dossier(desk: Desk) -> str:
    """A dossier capture opened on its receipt slip, with a citizen's ID card on page 2."""
    person = samples.sample_people(1, 4242)[0]
    code = samples.sample_codes(1, 4242)[0]
    card = [{"text": id_card_text(person), "symbology": "qr", "kind": "cccd"}]
    return add_dossier_pages(
        desk,
        code,
        [
            (page_bytes(samples.cover_page(code, 5, 100)), []),
            (page_bytes(samples.text_page(6, 100)), card),
            (page_bytes(samples.text_page(7, 100)), []),
        ],
    )


@contextmanager
def ledger_for(desk: Desk) -> Iterator[DeskLedger]:
    """The clerk's ledger on the tests' fixed clock, five minutes before 'now'."""
    store, reader = reader_for(desk.state)
    clock = store.clock
    store.clock = Clock(clock.floor_ms, clock.last, wall=lambda: APP_DAY_MS - 5 * 60_000)
    try:
        yield DeskLedger(store, Keyring.load(desk.state).sealer(), reader.session)
    finally:
        store.close()


def with_procedure(desk: Desk, dossier_id: str) -> None:
    with ledger_for(desk) as ledger:
        ledger.save_details(dossier_id, clean_details({"procedure": BIRTH}, today=TODAY))


async def open_pages(pilot: Pilot[Any], app: EdgeApp, dossier_id: str) -> PageList:
    """Sign in, open the dossier and put the cursor in its page list."""
    await sign_in(pilot)
    app.open_dossier(dossier_id)
    await wait_until(pilot, lambda: isinstance(app.screen, DossierScreen))
    await pilot.pause(0.2)
    pages = app.screen.query_one(PageList)
    pages.focus()
    await pilot.pause()
    return pages


def lines(pages: PageList) -> list[str]:
    return [
        pages.get_option_at_index(i).prompt.plain  # type: ignore[union-attr]
        for i in range(pages.option_count)
    ]


def live(desk: Desk, dossier_id: str) -> list[Any]:
    store = Store.open(desk.state)
    try:
        return store.pages(dossier_id)
    finally:
        store.close()


# -- labels -------------------------------------------------------------------------------------


async def test_each_page_says_whether_it_is_the_cover_an_id_card_or_blank(desk: Desk) -> None:
    dossier = card_dossier(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        pages = await open_pages(pilot, app, dossier)
        shown = lines(pages)
        assert shown[0].startswith(" 1. Bìa · JPEG")
        assert shown[1].startswith(" 2. CCCD · JPEG")
        assert shown[2].startswith(" 3. JPEG")
        width = pages.scrollable_content_region.width
        assert width <= 34
        assert all(cell_len(row) <= width for line in shown for row in line.split("\n"))

        app.pop_screen()
        app.open_dossier(desk.filled.waiting[0])
        await wait_until(pilot, lambda: isinstance(app.screen, DossierScreen))
        await pilot.pause(0.2)
        shown = lines(app.screen.query_one(PageList))
        assert any("Trang trắng" in line and "⚠" not in line for line in shown)
    app.office.close()


# -- rotation -----------------------------------------------------------------------------------


async def test_r_turns_the_page_and_the_preview_follows(desk: Desk) -> None:
    dossier = card_dossier(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("down", "r")
        await pilot.pause(0.3)
        assert "xoay 90°" in status(app)
        assert "xoay 90°" in lines(app.screen.query_one(PageList))[1]
        [view] = app.screen.query_one(PagePreview).query(HalfBlockView)
        width, height = view.image.size
        assert width > height  # a portrait page, shown on its side
        await pilot.press("R")
        await pilot.pause(0.3)
        assert "như khi quét" in status(app)
    app.office.close()
    assert [p["rotation"] for p in live(desk, dossier)] == [0, 0, 0]
    turns = payloads(desk.state, "page.rotated")
    assert [(t["degrees"], t["clerk"]) for t in turns] == [(90, "lan"), (0, "lan")]


# -- deletion -----------------------------------------------------------------------------------


async def test_a_deleted_page_is_confirmed_kept_and_restored_from_the_same_screen(
    desk: Desk,
) -> None:
    dossier = card_dossier(desk)
    before = [p["id"] for p in live(desk, dossier)]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("down", "x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # the safe answer has the focus: nothing is deleted
        await pilot.pause()
        assert len(live(desk, dossier)) == 3
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("tab", "enter")
        await pilot.pause(0.2)
        assert "Đã xóa trang 2" in status(app)
        assert "2 trang" in app.screen.query_one("#pages-title").render().plain  # type: ignore[attr-defined]
        assert [p["id"] for p in live(desk, dossier)] == [before[0], before[2]]

        await pilot.press("d")
        await pilot.pause(0.2)
        pages = app.screen.query_one(PageList)
        assert pages.current_id == before[1]
        assert "trước là trang 2" in lines(pages)[-1]
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, PageViewScreen)  # a deleted page can be looked at
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause(0.2)
        assert "trang 2" in status(app)
    app.office.close()
    assert [p["id"] for p in live(desk, dossier)] == before
    assert [(e["page"], e["clerk"]) for e in payloads(desk.state, "page.deleted")] == [
        (before[1], "lan")
    ]
    assert [e["position"] for e in payloads(desk.state, "page.restored")] == [2]


async def test_a_completed_dossier_s_pages_are_read_not_changed(desk: Desk) -> None:
    dossier = desk.filled.complete[0]
    before = [(p["id"], p["rotation"]) for p in live(desk, dossier)]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("r", "x", "t", "u")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DossierScreen)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, PageViewScreen)
    app.office.close()
    assert [(p["id"], p["rotation"]) for p in live(desk, dossier)] == before


# -- zoom and pan -------------------------------------------------------------------------------


def test_the_viewport_zooms_pans_and_stays_on_the_page() -> None:
    size = (1414, 2000)
    whole = Viewport()
    assert whole.box(size, 78, 20) == (0, 0, 1414, 2000)
    view = whole.zoomed(2, size, 78, 20)
    assert view.zoom == 4
    left, top, right, bottom = view.box(size, 78, 20)
    assert (right - left, bottom - top) == pytest.approx((975, 500), abs=2)
    view = view.panned(0, -5, size, 78, 20)
    assert view.box(size, 78, 20)[1] == 0  # the top of the page, no further
    deep = whole.zoomed(20, size, 78, 20)
    assert deep.scale(size, 78, 20) <= 2.0 + 1e-9
    assert deep.zoomed(-20, size, 78, 20).zoom == 1.0


async def test_the_enlarged_page_zooms_and_moves_with_the_keyboard(desk: Desk) -> None:
    dossier = card_dossier(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, PageViewScreen)
        zoom = app.screen.query_one(PageZoom)
        assert zoom.content_size.width >= 76  # the whole 80 columns, less the frame
        await pilot.press("plus", "plus")
        await pilot.pause()
        assert zoom.view.zoom == 4
        assert "×4" in app.screen.query_one("#page-view-title").render().plain  # type: ignore[attr-defined]
        top = zoom.view.box(zoom.image.size, *zoom.window)[1]
        await pilot.press("pagedown", "right")
        await pilot.pause()
        assert zoom.view.box(zoom.image.size, *zoom.window)[1] > top
        await pilot.press("minus")
        assert zoom.view.zoom == 2
        await pilot.press("0")
        assert zoom.view == Viewport()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen)
    app.office.close()


# -- document tags ------------------------------------------------------------------------------


def test_a_run_of_pages_is_typed_as_one_page_or_first_to_last() -> None:
    assert page_run("3", 5) == (3,)
    assert page_run(" 2-4 ", 5) == (2, 3, 4)
    assert page_run("4–2", 5) == (2, 3, 4)
    assert page_run("0", 5) is None
    assert page_run("2-6", 5) is None
    assert page_run("2,4", 5) is None


async def test_pages_are_tagged_with_the_procedure_s_documents(desk: Desk) -> None:
    dossier = card_dossier(desk)
    with_procedure(desk, dossier)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("down", "t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DocumentTagDialog)
        field = dialog.query_one("#tag-pages")
        assert field.value == "2"  # type: ignore[attr-defined]
        field.value = "2-3"  # type: ignore[attr-defined]
        dialog.query_one("#tag-documents").focus()
        await pilot.press("down", "enter")  # the birth certificate
        await pilot.pause()
        await pilot.press("down", "enter")  # a certified copy
        await pilot.pause(0.2)
        assert isinstance(app.screen, DossierScreen)
        assert "Giấy chứng sinh" in status(app)
        shown = lines(app.screen.query_one(PageList))
        assert "sao c.thực" in shown[1] and "sao c.thực" in shown[2]
    app.office.close()
    store, reader = reader_for(desk.state)
    try:
        listed = reader.documents(dossier)
    finally:
        store.close()
    assert listed == [
        {"name": "Tờ khai đăng ký khai sinh", "kind": "original", "pages": []},
        {
            "name": "Giấy chứng sinh hoặc giấy tờ thay thế",
            "kind": "certified_copy",
            "pages": [2, 3],
        },
    ]
    [tagged] = payloads(desk.state, "page.tagged")
    assert tagged["clerk"] == "lan" and tagged["kind"] == "certified_copy"


async def test_tagging_asks_for_the_procedure_first(desk: Desk) -> None:
    dossier = card_dossier(desk)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_pages(pilot, app, dossier)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen)
        assert "F2" in status(app)
    app.office.close()


# -- snapshots ----------------------------------------------------------------------------------


def _tagged_and_deleted(desk: Desk) -> str:
    dossier = card_dossier(desk)
    with_procedure(desk, dossier)
    with ledger_for(desk) as ledger:
        pages = [p["id"] for p in ledger.store.pages(dossier)]
        ledger.tag_pages(dossier, pages[1:2], "Tờ khai đăng ký khai sinh", "original")
        ledger.rotate_page(dossier, pages[2])
        ledger.delete_page(dossier, pages[2])
    return dossier


async def _pages_screen(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await sign_in(pilot)
    await pilot.press("2", "end", "enter")
    await pilot.pause(0.3)
    app.screen.query_one(PageList).focus()
    await pilot.press("d")
    await pilot.pause(0.3)


async def _zoomed(pilot: Pilot[Any]) -> None:
    await _pages_screen(pilot)
    await pilot.press("home", "enter")
    await pilot.pause(0.3)
    await pilot.press("plus", "plus")
    await pilot.pause(0.2)


async def _tag_dialog(pilot: Pilot[Any]) -> None:
    await _pages_screen(pilot)
    await pilot.press("home", "down", "t")
    await pilot.pause(0.2)


SCREENS = {"pages": _pages_screen, "page_zoomed": _zoomed, "tag_dialog": _tag_dialog}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_pages_snapshot(snap_compare, desk: Desk, screen: str) -> None:
    _tagged_and_deleted(desk)
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=SCREENS[screen])
    finally:
        app.office.store.close()


@pytest.mark.parametrize("screen", list(SCREENS))
def test_pages_snapshot_on_the_box_console(
    snap_compare, desk: Desk, screen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_box_console(monkeypatch)
    _tagged_and_deleted(desk)
    app = make_app(desk, console=True)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=SCREENS[screen])
    finally:
        app.office.store.close()


# -- pages retention took off the box -------------------------------------------------------------


async def test_a_purged_page_says_central_keeps_it_and_cannot_be_moved(desk: Desk) -> None:
    """After retention (edge/retention.py) a page's bytes are gone from the box: the list
    says where it is, the preview says why it shows nothing, and a split that would have
    to re-seal it is refused in words instead of failing half-way."""
    dossier = card_dossier(desk)
    store = Store.open(desk.state)
    try:
        second = store.pages(dossier)[1]
        with store.transaction():
            store.mark_purged([second["id"]], [second["blob_id"]], "2026-11-27T00:00:00.000Z")
    finally:
        store.close()
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        pages = await open_pages(pilot, app, dossier)
        shown = lines(pages)
        assert "lưu tại trung tâm" in shown[1] and "lưu tại trung tâm" not in shown[0]
        await pilot.press("down")
        await pilot.pause(0.3)
        preview = app.screen.query_one(PagePreview)
        said = " ".join(str(w.render()) for w in preview.query(Static))
        assert "trung tâm vẫn giữ" in said
    app.office.close()
    with ledger_for(desk) as ledger, pytest.raises(DeskError) as refused:
        ledger.split(dossier, second["id"])
    assert refused.value.reason == "page_purged"
    assert [p["id"] for p in live(desk, dossier)][1] == second["id"]  # nothing moved
