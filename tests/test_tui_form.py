"""The dossier form and the catalogue (issue 12): the return date offered, the channel, Saved.

Driven with Textual's Pilot over a real captured desk, on the tests' fixed clock:
Friday 27 November 2026, 08:30 at the counter; the desk's dossiers were received that
morning.
"""

from __future__ import annotations

from textual.widgets import Input, OptionList

from edge import samples
from edge.domain import Channel
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ProcedurePicker
from edge.tui.screens.dossier import DossierScreen
from edge.tui.widgets.common import Plain, StatusLine
from tests.test_tui_flows import payloads
from tests.tui_fixtures import Desk, add_dossier_pages, make_app, page_bytes, sign_in


def status(app: EdgeApp) -> str:
    return str(app.screen.query_one("#status", StatusLine).render())


def shown(app: EdgeApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Plain).render())


def value(app: EdgeApp, selector: str) -> str:
    return app.screen.query_one(selector, Input).value


async def open_dossier(pilot, dossier_id: str) -> DossierScreen:  # type: ignore[no-untyped-def]
    pilot.app.open_dossier(dossier_id)
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DossierScreen)
    return screen


async def choose(pilot, typed: str) -> None:  # type: ignore[no-untyped-def]
    """F2, type part of a name without accents, Enter on the first match."""
    pilot.app.screen.query_one("#procedure", Input).focus()
    await pilot.press("f2")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ProcedurePicker)
    await pilot.press(*typed)
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


async def test_choosing_a_procedure_offers_its_return_date_and_says_agency_time_fee(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_dossier(pilot, desk.filled.waiting[0])
        assert value(app, "#channel") == "1" and shown(app, "#channel-name") == "trực tiếp"
        pilot.app.screen.query_one("#procedure", Input).focus()
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press(*"thuong tru")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ProcedurePicker)
        assert shown(app, "#detail") == "Công an cấp xã · 7 ngày làm việc · 20.000 đồng/lần"
        await pilot.press("enter")
        await pilot.pause()
        # received Friday morning: seven working days after it is Tuesday 8 December
        assert value(app, "#procedure") == "1.004222"
        assert value(app, "#appointment") == "08/12/2026"
        assert shown(app, "#procedure-name") == "Đăng ký thường trú"
        assert shown(app, "#procedure-detail").endswith("20.000 đồng/lần")
        await choose(pilot, "dang ky khai sinh")
        assert value(app, "#procedure") == "1.001193"
        assert value(app, "#appointment") == "27/11/2026"  # returned the same day
        assert shown(app, "#procedure-detail") == (
            "UBND cấp xã · trong ngày nếu nhận trước 15:00 · miễn phí, lệ phí"
        )
    app.office.close()


async def test_the_channel_changes_fee_and_a_typed_date_is_never_replaced(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_dossier(pilot, desk.filled.waiting[0])
        await choose(pilot, "thuong tru")
        channel = app.screen.query_one("#channel", Input)
        channel.focus()
        channel.value = ""
        await pilot.press("4")  # only 1, 2 or 3 can be typed
        assert channel.value == ""
        await pilot.press("2")
        await pilot.pause()
        assert shown(app, "#channel-name") == "trực tuyến"
        assert shown(app, "#procedure-detail").endswith("10.000 đồng/lần")
        field = app.screen.query_one("#appointment", Input)
        field.value = "10/12/2026"
        await pilot.pause()
        await choose(pilot, "giam ho")
        assert value(app, "#procedure") == "1.004837"
        assert value(app, "#appointment") == "10/12/2026"
        field.value = ""
        await pilot.pause()
        await choose(pilot, "dang ky tam tru")
        assert value(app, "#appointment") == "02/12/2026"
    app.office.close()


async def test_saved_is_cleared_by_the_next_edit_and_the_channel_is_kept(desk: Desk) -> None:
    target = desk.filled.waiting[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_dossier(pilot, target)
        await choose(pilot, "chu ky")
        channel = app.screen.query_one("#channel", Input)
        channel.value = "3"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert status(app) == "Đã lưu."
        await pilot.press("ctrl+s")  # saving again says it again
        await pilot.pause()
        assert status(app) == "Đã lưu."
        field = app.screen.query_one("#full_name", Input)
        field.focus()
        await pilot.press("N")
        await pilot.pause()
        assert status(app) == ""
        await pilot.press("backspace", "ctrl+s")
        await pilot.pause()
        assert status(app) == "Đã lưu."
        await pilot.press("escape")
        await pilot.pause()
        await open_dossier(pilot, target)
        assert value(app, "#channel") == "3"
        assert shown(app, "#channel-name") == "qua bưu chính công ích"
        assert value(app, "#appointment") == "27/11/2026"
    app.office.close()
    saved = payloads(desk.state, "dossier.details_set")[-1]
    assert saved["channel"] == Channel.BUU_CHINH_CONG_ICH and saved["procedure"] == "2.000884"
    assert saved["appointment"] == "2026-11-27"


async def test_a_dossier_received_after_closing_counts_from_the_next_working_day(
    desk: Desk,
) -> None:
    """Thursday 26 November at 17:30: the counter had closed, so the count starts on Friday."""
    late = add_dossier_pages(
        desk,
        samples.sample_codes(1, 4321)[0],
        [(page_bytes(samples.text_page(1, 100)), [])],
        minutes_ago=15 * 60,
    )
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_dossier(pilot, late)
        await choose(pilot, "giam ho")
        assert value(app, "#appointment") == "02/12/2026"  # not 01/12, as before closing
    app.office.close()
    store = Store.open(desk.state)
    try:
        assert store.dossier(late)["appointment"] is None  # offered, not saved unasked
    finally:
        store.close()


async def test_the_picker_says_agency_time_and_fee_of_the_highlighted_procedure(
    desk: Desk,
) -> None:
    app = make_app(desk, lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_dossier(pilot, desk.filled.waiting[0])
        app.screen.query_one("#procedure", Input).focus()
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press(*"trich luc")
        await pilot.pause()
        assert shown(app, "#detail") == (
            "UBND cấp xã · same day if received before 15:00 · 8,000 VND/bản sao"
        )
        app.screen.query_one("#filter", Input).value = "khai"
        await pilot.pause()
        await pilot.press("down", "down")  # khai sinh, khai tử, then lại khai sinh
        await pilot.pause()
        choices = app.screen.query_one(OptionList)
        assert choices.get_option_at_index(choices.highlighted or 0).id == "1.004884"
        assert shown(app, "#detail") == "UBND cấp xã · 5 working days · fee not stated"
    app.office.close()
