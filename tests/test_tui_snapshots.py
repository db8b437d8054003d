"""Snapshots of the main screens in Vietnamese, at 80×24 (the cheap monitor) and 120×40.

The SVGs under tests/__snapshots__/test_tui_snapshots/ are the accepted
screens; after a deliberate change of layout or wording, look at the report
and accept with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from edge import samples
from edge.tui.screens import handover as handover_screen
from tests.tui_fixtures import (
    MISREAD,
    REVIEW_CODE,
    Desk,
    add_dossier_pages,
    add_review,
    id_card_text,
    make_app,
    page_bytes,
    sign_in,
    use_box_console,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _home(pilot: Pilot[None]) -> None:
    await sign_in(pilot)


def _go(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause()

    return run


async def _dossier(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("2")
    await pilot.pause()
    await pilot.press("down", "enter")
    await pilot.pause(0.3)


async def _search(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("slash", *"nguyen", "enter")
    await pilot.pause(0.2)


async def _sign_in_screen(pilot: Pilot[None]) -> None:
    await pilot.press(*"lan", "tab")
    await pilot.pause()


SCREENS = {
    "sign_in": _sign_in_screen,
    "home": _home,
    "inbox": _go("2"),
    "dossier": _dossier,
    "search": _search,
    "results": _go("3"),
    "handover": _go("4"),
    "sync": _go("5"),
    "quarantine": _go("6"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, desk: Desk, screen: str, size: tuple[int, int]) -> None:
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=size, run_before=SCREENS[screen])
    finally:
        app.office.store.close()


# -- issue 12: the box's console (TERM=linux, 16 colours) and the new screens -----------------


async def _handover_written(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("4")
    await pilot.pause()
    await pilot.press("space", "b")
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause(0.2)


async def _sync_details(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("5", "t")
    await pilot.pause(0.2)


NEW_SCREENS = {
    "handover_written": _handover_written,
    "sync_details": _sync_details,
}
BOX_PDF = Path("/var/lib/edge/handover/ban-giao-2026-11-27-lan-1.pdf")
"""Where the box writes the list: a fixed path, so the dialog's snapshot is the same each run."""


def _fixed_pdf_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handover_screen, "handover_pdf", lambda *_a, **_k: BOX_PDF)


@pytest.mark.parametrize("screen", list(NEW_SCREENS))
def test_new_screen(snap_compare, desk: Desk, screen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_pdf_path(monkeypatch)
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=NEW_SCREENS[screen])
    finally:
        app.office.store.close()


@pytest.mark.parametrize("screen", [*SCREENS, *NEW_SCREENS])
def test_screen_on_the_box_console(
    snap_compare, desk: Desk, screen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every screen usable in 16 colours: fields visible when empty, focus plain to see."""
    use_box_console(monkeypatch)
    _fixed_pdf_path(monkeypatch)
    app = make_app(desk, console=True)
    run_before = {**SCREENS, **NEW_SCREENS}[screen]
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        app.office.store.close()


# -- issue 10: a cover to check, and an ID card among the pages (80×24 only) -------------------

PORTAL_LINK = "https://dichvucong.hanoi.gov.vn/tra-cuu?SGT=001203012345&MHS=XX-1"


def _review_desk(desk: Desk) -> None:
    add_review(
        desk,
        [
            {"text": MISREAD, "symbology": "code128", "code": None,
             "alternatives": [REVIEW_CODE], "why": "unconfirmed", "personal": False},
            {"text": PORTAL_LINK, "symbology": "qr", "code": None, "alternatives": [],
             "why": "no_pattern", "personal": True},
        ],
        follows=desk.filled.waiting[1],
    )  # fmt: skip


def _id_card_desk(desk: Desk) -> None:
    person = samples.sample_people(1, 4242)[0]
    code = samples.sample_codes(1, 4242)[0]
    card = [{"text": id_card_text(person), "symbology": "qr", "kind": "cccd"}]
    add_dossier_pages(
        desk,
        code,
        [
            (page_bytes(samples.cover_page(code, 5, 100)), []),
            (page_bytes(samples.text_page(6, 100)), card),
        ],
    )


async def _first_row(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("2")
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause(0.4)


async def _new_code(pilot: Pilot[None]) -> None:
    await _first_row(pilot)
    await pilot.press("n")
    await pilot.pause(0.2)


async def _id_card(pilot: Pilot[None]) -> None:
    await sign_in(pilot)
    await pilot.press("2", "end", "enter")
    await pilot.pause(0.4)


REVIEW_SCREENS = {
    "home_with_review": (_review_desk, _home),
    "inbox_with_review": (_review_desk, _go("2")),
    "review_panel": (_review_desk, _first_row),
    "review_new_code": (_review_desk, _new_code),
    "id_card": (_id_card_desk, _id_card),
}


@pytest.mark.parametrize("screen", list(REVIEW_SCREENS))
def test_review_screen(snap_compare, desk: Desk, screen: str) -> None:
    prepare, run_before = REVIEW_SCREENS[screen]
    prepare(desk)
    app = make_app(desk)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        app.office.store.close()
