"""Snapshots of the main screens in Vietnamese, at 80×24 (the cheap monitor) and 120×40.

The SVGs under tests/__snapshots__/test_tui_snapshots/ are the accepted
screens; after a deliberate change of layout or wording, look at the report
and accept with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from tests.tui_fixtures import Desk, make_app, sign_in

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
