"""The clerk's scan key (issue 17), with SANE's own ``test`` backend as the scanner.

As in tests/test_scan.py, the scanner is a real SANE device enabled through a
SANE_CONFIG_DIR of the test's own; nothing below SANE is faked. The app is driven
with Pilot on a copy of the captured desk: F4 on the home screen scans a batch
into the inbox, F4 on a dossier's screen scans into that dossier, and a box with
no scanner says so in Vietnamese.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.capture.grouping import folder_target
from edge.tui.app import EdgeApp
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.home import HomeScreen
from edge.tui.widgets.common import StatusLine
from tests.tui_fixtures import Desk, make_app, sign_in, wait_until

SMALL_PAGES = {
    "number_of_devices": "1",
    "test-picture": '"Grid"',
    "geometry_max": "40.0",
    "br_x": "40.0",
    "br_y": "40.0",
}
"""Ten small pages (the test scanner's feeder holds ten): a batch takes a second or two."""
SLOW = {"read-limit": "true", "read-limit-size": "4096", "read-delay": "true",
        "read-delay-duration": "200000"}  # fmt: skip
"""About half a second per page, so a batch can be watched and stopped mid-way."""
PAGES = [f"page_{n:04d}.jpg" for n in range(1, 11)]
NO_SCANNER = "Không tìm thấy máy quét. Hãy kiểm tra dây cáp và nguồn điện, rồi thử lại."
Configure = Callable[..., Path]


@pytest.fixture
def sane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """A SANE configuration with only the test backend (or none: ``backends=""``)."""
    if shutil.which("scanimage") is None:
        pytest.fail("scanimage is missing: run 'make system-deps' (sane-utils, libsane1)")
    folder = tmp_path / "sane.d"
    folder.mkdir()
    monkeypatch.setenv("SANE_CONFIG_DIR", str(folder))

    def configure(backends: str = "test\n", **options: str) -> Path:
        (folder / "dll.conf").write_text(backends)
        values = {**SMALL_PAGES, **options}
        (folder / "test.conf").write_text("".join(f"{k} {v}\n" for k, v in values.items()))
        return folder

    configure()
    return configure


def status(app: EdgeApp) -> str:
    return str(app.screen.query_one("#status", StatusLine).render())


def scanning_count(app: EdgeApp) -> int:
    """The page count the status line shows while scanning ("Đang quét… 3 trang…")."""
    shown = re.match(r"Đang quét… (\d+) trang\. F4 hoặc Esc để dừng\.$", status(app))
    return int(shown.group(1)) if shown else -1


def new_jobs(inbox: Path, before: set[Path]) -> list[Path]:
    return sorted(p for p in inbox.iterdir() if p not in before)


async def test_the_scan_key_scans_a_batch_into_the_inbox(desk: Desk, sane: Configure) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, HomeScreen)
        before = set(desk.inbox.iterdir())
        await pilot.press("f4")
        await wait_until(pilot, lambda: not app.scanning, seconds=60)
        [job] = new_jobs(desk.inbox, before)
        assert sorted(p.name for p in job.iterdir()) == PAGES
        assert folder_target(job.name) is None
        assert status(app) == "Đã quét 10 trang."
        assert not [p for p in desk.inbox.iterdir() if p.name.startswith(".")]
    app.office.close()


async def test_the_count_shows_while_scanning_and_esc_stops(desk: Desk, sane: Configure) -> None:
    sane(**SLOW)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        before = set(desk.inbox.iterdir())
        await pilot.press("f4")
        await wait_until(pilot, lambda: scanning_count(app) >= 2, seconds=60)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.scanning, seconds=60)
        [job] = new_jobs(desk.inbox, before)
        assert job.name.endswith("-cut-short-stopped")
        count = len(list(job.iterdir()))
        assert 2 <= count < 10
        assert status(app).startswith(f"Đã quét {count} trang. Đã dừng quét")
    app.office.close()


async def test_from_a_dossier_the_scan_joins_that_dossier(desk: Desk, sane: Configure) -> None:
    target = desk.filled.waiting[0]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await pilot.pause()
        assert isinstance(app.screen, DossierScreen)
        before = set(desk.inbox.iterdir())
        await pilot.press("f4")
        await wait_until(pilot, lambda: not app.scanning, seconds=60)
        [job] = new_jobs(desk.inbox, before)
        assert folder_target(job.name) == target
        assert sorted(p.name for p in job.iterdir()) == PAGES
        assert isinstance(app.screen, DossierScreen)
        assert status(app) == "Đã quét 10 trang."
    app.office.close()


async def test_no_scanner_is_said_in_vietnamese(desk: Desk, sane: Configure) -> None:
    sane(backends="")
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        before = set(desk.inbox.iterdir())
        await pilot.press("f4")
        await wait_until(pilot, lambda: not app.scanning, seconds=60)
        assert status(app) == NO_SCANNER
        assert new_jobs(desk.inbox, before) == []
    app.office.close()


async def test_without_the_inbox_the_scan_key_says_whom_to_call(
    desk: Desk, sane: Configure
) -> None:
    app = make_app(desk, with_inbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("f4")
        await pilot.pause()
        assert not app.scanning
        assert status(app).startswith("Chưa xác định được thư mục máy quét")
    app.office.close()
