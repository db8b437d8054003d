"""Fixtures for the clerk UI tests: a captured, filled desk and an app bound to it.

Building the desk (generated scans, a real capture, details typed through the
desk ledger) takes seconds, so it is built once per session under a fixed
clock and copied for each test. The fixed clock makes every time shown on
screen the same on every run, which the snapshot tests need.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from textual.pilot import Pilot
from textual.widgets import Input

import edge.clock
from edge import samples
from edge.clock import Clock
from edge.daemon import Daemon
from edge.provision import provision
from edge.records import Ledger
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.demo_office import Filled, fill_desk
from edge.tui.i18n import set_language
from edge.tui.office import Office
from edge.vault import Keyring
from tests.conftest import PASSWORD

# pytest-textual-snapshot 1.0 names the SVG extension for syrupy < 5; syrupy 7 reads this
# attribute, so without it the accepted screens would be saved as ".raw" files.
pytest_textual_snapshot.SVGImageExtension.file_extension = "svg"

APP_DAY_MS = int(datetime(2026, 11, 27, 1, 30, tzinfo=UTC).timestamp() * 1000)
"""Friday 27 November 2026, 08:30 at the counter (UTC+7): the tests' 'today'."""

CAPTURE_START = APP_DAY_MS / 1000 - 3600
FREE_BYTES = 12_300_000_000
SEED = 7


class FakeTime:
    """Stands in for the time module in edge.clock: a clock that ticks 200 ms per reading."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        self.now += 0.2
        return self.now


@dataclass(frozen=True)
class Desk:
    base: Path
    state: Path
    inbox: Path
    filled: Filled
    codes: list[str]


def write_scans(inbox: Path, codes: list[str]) -> None:
    """A morning at the counter, small: pages before any cover, six dossiers, a bad file."""
    spec = samples.DossierSpec
    samples.write_job(
        inbox,
        [
            spec(None, 1),
            spec(codes[0], 2, blank_backs=True),
            spec(codes[1], 2),
            spec(codes[2], 1),
            spec(codes[3], 1, symbology="code128"),
            spec(codes[4], 1),
            spec(codes[5], 1),
            spec(codes[6], 1),
        ],
        "jpeg",
        dpi=200,
        seed=SEED,
    )
    (inbox / "ghi-chu.jpg").write_text("đây không phải là ảnh quét\n", encoding="utf-8")


@pytest.fixture(scope="session")
def desk_template(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    base = tmp_path_factory.mktemp("desk-template")
    state, inbox = base / "state", base / "inbox"
    inbox.mkdir()
    codes = samples.sample_codes(7, SEED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(edge.clock, "time", FakeTime(CAPTURE_START))
        provision(state, office="H29.01", clerk="lan", password=PASSWORD)
        write_scans(inbox, codes)
        daemon = Daemon(state, inbox, {"settle_seconds": 0.0})
        try:
            daemon.run_once()
        finally:
            daemon.close()
        filled = fill_desk(state, "lan", PASSWORD, seed=SEED)
    return Desk(base, state, inbox, filled, codes)


@pytest.fixture
def desk(desk_template: Desk, tmp_path: Path) -> Iterator[Desk]:
    base = tmp_path / "desk"
    shutil.copytree(desk_template.base, base)
    yield Desk(base, base / "state", base / "inbox", desk_template.filled, desk_template.codes)


def make_app(
    desk: Desk,
    *,
    lang: str = "vi",
    wall: object = None,
    idle_minutes: float = 0,
    refresh_seconds: float = 0.2,
    console: bool = False,
    with_inbox: bool = True,
) -> EdgeApp:
    """The app over a desk, with the tests' fixed 'today' and disk size.

    Drawn for a truecolor terminal whatever terminal runs the tests, unless ``console``:
    then the app reads the terminal from the environment (``use_box_console``). Without
    ``with_inbox`` the app is started without ``--inbox``, as by hand on a box.
    """
    set_language(lang)
    office = Office(
        desk.state,
        inbox=desk.inbox if with_inbox else None,
        wall=wall or (lambda: APP_DAY_MS),  # type: ignore[arg-type]
        free_bytes=lambda: FREE_BYTES,
    )
    return EdgeApp(
        office,
        idle_minutes=idle_minutes,
        refresh_seconds=refresh_seconds,
        color_system=None if console else "truecolor",
    )


async def sign_in(
    pilot: Pilot[None], user: str = "lan", password: str = PASSWORD, *, keys: bool = False
) -> None:
    """Sign in from the sign-in screen: typed key by key, or (faster) filled and submitted."""
    if keys:
        await pilot.press(*user, "tab", *password, "enter")
    else:
        screen = pilot.app.screen
        screen.query_one("#user", Input).value = user
        field = screen.query_one("#password", Input)
        field.value = password
        field.focus()
        await pilot.press("enter")
    await pilot.pause()


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 10
) -> None:
    """Let the app work until ``condition`` holds: a loaded machine needs more than one pause."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition(), "the app did not reach the expected state in time"


REVIEW_CODE = "H26.22.16-251111-3366"
"""The code on the cover of the review dossiers below, as a Code 128 printed too small."""
MISREAD = "HP6.2(.16-251111-3366"
"""What a half-scale decode made of it: checksum-valid, and wrong (issue 10)."""


def page_bytes(image: Any) -> bytes:
    out = io.BytesIO()
    samples.save_jpeg(image, out, dpi=100, quality=70)
    return out.getvalue()


def add_dossier_pages(
    desk: Desk,
    code: str | None,
    pages: Sequence[tuple[bytes, list[dict[str, Any]]]],
    *,
    review: Sequence[dict[str, Any]] = (),
    follows: str | None = None,
    minutes_ago: int = 10,
) -> str:
    """A dossier as capture would have filed it, with each page's symbols sealed beside it.

    Written through the ledger capture uses, on the tests' fixed clock, so what the
    screens show of it (received time) is the same on every run.
    """
    store = Store.open(desk.state)
    clock = store.clock
    store.clock = Clock(clock.floor_ms, clock.last, wall=lambda: APP_DAY_MS - minutes_ago * 60_000)
    try:
        ledger = Ledger(store, Keyring.load(desk.state).sealer())
        with store.transaction():
            dossier_id = ledger.create_dossier(code, review=list(review), follows=follows)
            for index, (data, symbols) in enumerate(pages):
                ledger.add_page(
                    dossier_id,
                    data,
                    media_type="image/jpeg",
                    sha256=f"{dossier_id}:{index}".encode().hex()[:64].ljust(64, "0"),
                    source_sha=f"src:{dossier_id}:{index}".encode().hex()[:64].ljust(64, "0"),
                    source_name=f"scan_{index + 1}.jpg",
                    source_index=index,
                    width=827,
                    height=1169,
                    dpi=100.0,
                    flags=[],
                    symbols=symbols,
                )
    finally:
        store.close()
    return dossier_id


def add_review(
    desk: Desk,
    review: Sequence[dict[str, Any]] | None = None,
    *,
    follows: str | None = None,
    pages: int = 2,
) -> str:
    """A dossier opened by a cover capture could not confirm, after ``follows``."""
    if review is None:
        review = [
            {
                "text": MISREAD,
                "symbology": "code128",
                "code": None,
                "alternatives": [REVIEW_CODE],
                "why": "unconfirmed",
                "personal": False,
            }
        ]
    symbols = [
        {"text": r["text"], "symbology": r["symbology"], "kind": "receipt_like", "confirmed": False}
        for r in review
    ]
    images = [(page_bytes(samples.cover_page(REVIEW_CODE, 3, 100, symbology="code128")), symbols)]
    images += [(page_bytes(samples.text_page(4 + i, 100)), []) for i in range(pages - 1)]
    return add_dossier_pages(desk, None, images, review=review, follows=follows)


def id_card_text(person: samples.Person, *, number: str | None = None) -> str:
    """The QR on a chip ID card: ID12|old ID9|name|ddmmyyyy|sex|address|issue ddmmyyyy."""
    born = person.birth_date.strftime("%d%m%Y")
    return (
        f"{number or person.cccd}|{person.cccd[-9:]}|{person.full_name}|{born}|{person.sex}|"
        f"{person.address}|01072021"
    )


def use_box_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The box's own console, as edge-tui@.service sets it: 16 colours."""
    monkeypatch.setenv("TERM", "linux")
    monkeypatch.delenv("COLORTERM", raising=False)


@pytest.fixture(autouse=True)
def _vietnamese_again() -> Iterator[None]:
    """Each test starts in Vietnamese, whatever the previous one chose."""
    set_language("vi")
    yield
    set_language("vi")
