"""Issue 16, items 2 and 3: outside text that acts on a terminal, or on the clerk's UI.

A scan named ``\\x1b]0;pwned\\x07\\x1b[2J\\x1b[41mRED.jpg`` cleared the quarantine screen
and retitled the terminal; a problem body from whatever answered at central's URL
painted a blinking "CALL 0900-000-000 NOW" on the sync screen; ``edge sync`` and
``edge capture`` printed such sequences raw. File names with Textual markup were
interpreted in dialogs: ``[reverse blink]zz.jpg`` blinked, clicking
``[@click=app.quit]clickme.jpg`` signed the clerk out and ``[a="]crash.jpg`` stopped
the app.

Now outside text goes through ``edge.printable`` wherever it is shown or logged, the
UI never parses data as markup, and the clerk is told sync problems in the box's own
words. The UI tests drive the real app with Pilot and read what it would send to the
terminal; the CLI tests run ``edge sync``, ``edge enroll`` and ``edge capture`` as real
processes against a hostile central and hostile file names.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual import events
from textual.widgets import Input

from edge.capture.names import display_name
from edge.daemon import Daemon
from edge.desk import DeskLedger, clean_details
from edge.printable import printable
from edge.store import Store
from edge.sync import client, outbox
from edge.sync import contract as c
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ConfirmDialog, HandBackDialog
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.quarantine import QuarantineScreen
from edge.tui.screens.search import SearchScreen
from edge.tui.screens.sync import SyncScreen
from edge.tui.widgets.common import Plain
from edge.tui.widgets.dossier_list import DossierList
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.tui_fixtures import Desk, make_app, sign_in, wait_until

EDGE = [sys.executable, "-m", "edge.cli"]

UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
"""Controls (but the newline ending a line), DEL, C1, zero-width, separators, bidi."""

TERMINAL = "\x1b]0;pwned\x07\x1b[2J\x1b[41mRED.jpg"
BLINK = "[reverse blink]zz.jpg"
CLICK = "[@click=app.quit]clickme.jpg"
CRASH = '[a="]crash.jpg'

SCARY = "\x1b[2J\x1b[5;41mCALL 0900-000-000 NOW\x1b[0m [blink]now[/blink] [@click=app.quit]x"
"""What a fake central says in its problem body (unsigned)."""


def on_terminal(app: EdgeApp) -> str:
    """The characters the app would write to the terminal for the whole screen, styles aside."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return "\n".join("".join(s.text for strip in line for s in strip) for line in update.strips)


def card(screen: str, title: str) -> str:
    """The words inside the bordered card titled ``title``, wrapped lines joined."""
    lines = screen.split("\n")
    top = next(i for i, line in enumerate(lines) if f"╭─ {title} " in line)
    bottom = next(i for i in range(top, len(lines)) if "╰" in lines[i])
    return " ".join(" ".join(line.strip(" │") for line in lines[top + 1 : bottom]).split())


def assert_clean(text: str) -> None:
    found = UNSAFE.search(text)
    assert found is None, f"{found.group()!r} would reach the terminal in {text!r}"


def status(app: EdgeApp) -> str:
    return str(app.screen.query_one("#status").render())


def still_signed_in(app: EdgeApp) -> bool:
    return app.is_running and app.office.unlocked is not None


# -- the rendering -----------------------------------------------------------------------


@given(st.text(max_size=60) | st.binary(max_size=40).map(os.fsdecode))
def test_printable_is_one_safe_line_and_idempotent(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable() and not UNSAFE.search(shown)
    shown.encode("utf-8")
    assert printable(shown) == shown


def test_printable_shows_what_was_there() -> None:
    assert printable("Nguyễn Văn Đức") == "Nguyễn Văn Đức"
    assert printable(TERMINAL) == "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[41mRED.jpg"
    assert printable("a\nb\x9bc\x7f") == "a\\x0ab\\u009bc\\x7f"
    assert printable("rtl\u202egpj.exe\u200b") == "rtl\\u202egpj.exe\\u200b"
    assert printable(os.fsdecode(b"bad\xff.jpg")) == "bad\\xff.jpg"
    assert printable("C:\\scans\\x.jpg") == "C:\\scans\\x.jpg"  # backslashes stay
    assert printable(display_name(TERMINAL)) == display_name(TERMINAL)


# -- file names in the quarantine screen and its dialogs ---------------------------------


def capture_hostile_names(desk: Desk, names: list[str]) -> None:
    for index, name in enumerate(names):
        (desk.inbox / name).write_bytes(f"not a scan {index}\n".encode())
    daemon = Daemon(desk.state, desk.inbox, {"settle_seconds": 0.0})
    try:
        report = daemon.run_once().as_json()
    finally:
        daemon.close()
    assert sorted(q["file"] for q in report["quarantined"]) == sorted(map(display_name, names))


def pick(app: EdgeApp, name: str) -> None:
    listing = app.screen.query_one(DossierList)
    for index in range(listing.total):
        row = listing.row(index)
        if row is not None and row["name"] == name:
            listing.cursor = index
            return
    raise AssertionError(f"{name!r} is not listed")


async def test_hostile_file_names_are_shown_as_they_are_and_do_nothing(desk: Desk) -> None:
    capture_hostile_names(desk, [TERMINAL, BLINK, CLICK, CRASH, "legacy.jpg"])
    # a row recorded before names were escaped at capture (or by any other writer)
    store = Store.open(desk.state)
    with store.transaction():
        store.conn.execute(
            "UPDATE quarantine SET name = ? WHERE name = 'legacy.jpg'", ("old\x1b[2J\u202egpj.exe",)
        )
    store.close()
    app = make_app(desk)
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("6")
        await wait_until(pilot, lambda: isinstance(app.screen, QuarantineScreen))
        screen = on_terminal(app)
        assert_clean(screen)
        for shown in (display_name(TERMINAL), BLINK, CLICK, CRASH, "old\\x1b[2J\\u202egpj.exe"):
            assert shown in screen

        # the discard dialog names the file exactly; clicking on the name does nothing
        for name in (BLINK, CLICK):
            pick(app, name)
            await pilot.press("x")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            dialog = on_terminal(app)
            assert_clean(dialog)
            assert f"Loại bỏ tệp {name}?" in dialog
            question = app.screen.query_one(".dialog-title")
            for column in range(0, question.size.width, 2):
                await pilot.click(question, offset=(column, 0))
            await pilot.pause()
            assert still_signed_in(app) and isinstance(app.screen, ConfirmDialog)
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, QuarantineScreen))

        # markup that does not parse is only characters: the file can be discarded
        pick(app, CRASH)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert CRASH in on_terminal(app)
        await pilot.click("#yes")
        await wait_until(pilot, lambda: isinstance(app.screen, QuarantineScreen))
        assert still_signed_in(app)
        assert status(app) == f"Đã loại bỏ tệp {CRASH}."
        names = [app.screen.query_one(DossierList).row(i)["name"] for i in range(4)]
        assert CRASH not in names

        # retry writes the file back under the name it has, and says which, escaped
        pick(app, "old\x1b[2J\u202egpj.exe")
        await pilot.press("r")
        await wait_until(pilot, lambda: "thư mục máy quét" in status(app))
        assert "Đã đưa old\\x1b[2J\\u202egpj.exe trở lại" in status(app)
        assert_clean(on_terminal(app))
    app.office.close()
    assert (desk.inbox / "old\x1b[2J\u202egpj.exe").read_bytes() == b"not a scan 4\n"


# -- a citizen's name, typed or pasted with anything in it -------------------------------

HOSTILE_NAME = "Khổng [@click=app.quit]Tú\x1b[2J\x1b[41m Zzyzx [reverse blink]Lan"


async def test_a_hostile_citizen_name_is_plain_text_everywhere_it_shows(desk: Desk) -> None:
    dossier_id = desk.filled.waiting[0]
    store = Store.open(desk.state)
    keyring = Keyring.load(desk.state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        details = clean_details(
            {"full_name": HOSTILE_NAME, "note": '[a="]\x1b]0;owned\x07'}, today=date(2026, 11, 27)
        )
        DeskLedger(store, keyring.sealer(), session).save_details(dossier_id, details)
    finally:
        session.close()
        store.close()
    shown = printable(HOSTILE_NAME)
    app = make_app(desk)
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"zzyzx", "enter")
        await wait_until(pilot, lambda: app.screen.query_one(DossierList).total == 1)
        screen = on_terminal(app)
        assert_clean(screen)
        assert shown[:40] in screen
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DossierScreen))
        assert app.screen.query_one("#full_name", Input).value == shown
        assert app.screen.query_one("#note", Input).value == '[a="]\\x1b]0;owned\\x07'
        assert_clean(on_terminal(app))
        # pasted text is outside text too: its first line, made visible
        note = app.screen.query_one("#note", Input)
        note.value = ""
        note.focus()
        note.post_message(events.Paste("\x1b[2J[b]bold\u202e\nsecond line"))
        await wait_until(pilot, lambda: note.value != "")
        assert note.value == "\\x1b[2J[b]bold\\u202e"
        assert_clean(on_terminal(app))

        app.push_screen(HandBackDialog("H29-1", HOSTILE_NAME, "[b]Khai sinh\x1b[5m"))
        await wait_until(pilot, lambda: "Người nộp" in on_terminal(app))
        assert isinstance(app.screen, HandBackDialog)
        dialog = on_terminal(app)
        assert_clean(dialog)
        lines = [str(line.render()) for line in app.screen.query(Plain)]
        assert f"Người nộp: {shown}" in lines and "Thủ tục: [b]Khai sinh\\x1b[5m" in lines
        for widget in app.screen.query(".dialog-title, Plain"):
            for column in range(0, widget.size.width, 3):
                await pilot.click(widget, offset=(column, 0))
        await pilot.pause()
        assert still_signed_in(app) and isinstance(app.screen, HandBackDialog)
    app.office.close()


# -- a hostile "central" ------------------------------------------------------------------


class _Hostile(BaseHTTPRequestHandler):
    """Answers every request with an unsigned problem body full of escapes and markup."""

    code = "device_revoked"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {"code": self.code, "title": SCARY, "status": 403, "detail": SCARY}
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the box's output, not the server's."""


@pytest.fixture
def hostile_central() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def enroll_with(state: Path, url: str) -> None:
    """As if ``edge enroll`` had succeeded with whatever now answers at ``url``."""
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        with store.transaction():
            device = c.device_id_for(keyring.device_public)
            outbox.save_enrollment(store, device, url, keyring.office)
    finally:
        store.close()


def run_edge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_edge_sync_and_enroll_print_central_s_text_escaped(
    state: Path, hostile_central: str, edge_env: dict[str, str]
) -> None:
    result = run_edge(
        "enroll", "--state", str(state), "--central", hostile_central, "--token", "t", env=edge_env
    )
    assert result.returncode != 0
    assert_clean(result.stderr.rstrip("\n"))
    assert result.stderr.count("\n") == 1
    said = "edge: error: central refused (device_revoked); its unsigned text: "
    assert result.stderr.strip() == said + printable(SCARY)

    enroll_with(state, hostile_central)
    result = run_edge("sync", "--state", str(state), "--once", env=edge_env)
    assert result.returncode == 1
    for stream in (result.stdout, result.stderr):
        for text_line in stream.splitlines():
            assert_clean(text_line)
    assert said + printable(SCARY) in result.stderr

    result = run_edge("sync", "--state", str(state), "--once", "--json", env=edge_env)
    report = json.loads(result.stdout)
    assert report["error_code"] == "device_revoked" and "\x1b" not in report["error"]


def test_an_unknown_problem_code_is_not_trusted(state: Path, hostile_central: str) -> None:
    enroll_with(state, hostile_central)
    _Hostile.code = "\x1b[5mfree\nform"
    try:
        report = client.sync_once(state)
    finally:
        _Hostile.code = "device_revoked"
    assert report.error_code == "unknown"
    store = Store.open(state)
    try:
        assert store.meta(client.LAST_ERROR_CODE) == "unknown"
        problem = store.meta(client.LAST_ERROR)
        names = [r[0] for r in store.conn.execute("SELECT name FROM sync_cursors")]
    finally:
        store.close()
    assert problem is not None and problem.isprintable()
    assert "errors.unknown" in names and all(n.isprintable() for n in names)


async def test_the_sync_screen_tells_the_clerk_in_its_own_words(
    desk: Desk, hostile_central: str
) -> None:
    enroll_with(desk.state, hostile_central)
    report = client.sync_once(desk.state)
    assert report.error_code == "device_revoked"
    app = make_app(desk)
    async with app.run_test(size=(100, 40)) as pilot:
        await sign_in(pilot)
        await pilot.press("5")
        await wait_until(pilot, lambda: isinstance(app.screen, SyncScreen))
        screen = on_terminal(app)
        assert_clean(screen)
        clerk = card(screen, "Máy chủ trung tâm")
        assert "Trung tâm không còn chấp nhận thiết bị này: hãy gọi bộ phận CNTT khu vực." in clerk
        assert "CALL" not in clerk and "0900" not in clerk and "[blink]" not in clerk
        # the technician's view (behind T) keeps central's words, escaped, as plain characters
        await pilot.press("t")
        await pilot.pause()
        screen = on_terminal(app)
        assert_clean(screen)
        technical = card(screen, "Chi tiết kỹ thuật")
        assert "\\x1b[2J\\x1b[5;41mCALL 0900-000-000 NOW\\x1b[0m [blink]now[/blink]" in technical
        for widget in app.screen.query("#details, #central"):
            for row in range(widget.size.height):
                for column in range(0, widget.size.width, 4):
                    await pilot.click(widget, offset=(column, row))
        await pilot.pause()
        assert still_signed_in(app) and isinstance(app.screen, SyncScreen)
    app.office.close()


async def test_an_old_raw_sync_problem_is_not_shown_to_the_clerk(desk: Desk) -> None:
    """Written by a box before this fix: raw text, no code."""
    store = Store.open(desk.state)
    with store.transaction():
        store.put_meta(client.LAST_ERROR, f"2026-11-27T01:00:00Z central refused (x): {SCARY}")
    store.close()
    app = make_app(desk)
    async with app.run_test(size=(100, 40)) as pilot:
        await sign_in(pilot)
        await pilot.press("5")
        await wait_until(pilot, lambda: isinstance(app.screen, SyncScreen))
        screen = on_terminal(app)
        assert_clean(screen)
        clerk = card(screen, "Máy chủ trung tâm")
        assert "CALL" not in clerk
        assert "27/11 08:00 · Trung tâm từ chối dữ liệu thiết bị gửi; không có gì bị mất." in clerk
        await pilot.press("t")
        await pilot.pause()
        screen = on_terminal(app)
        assert_clean(screen)
        assert "\\x1b[5;41mCALL" in card(screen, "Chi tiết kỹ thuật")
    app.office.close()


# -- edge capture: a traceback quoting a hostile name ------------------------------------

_FAILING_CAPTURE = """
import sys
from edge.capture.pipeline import Capture

def process(self, path, *args, **kwargs):
    raise RuntimeError(f"reader gave up on {path.name}")

Capture.process = process
from edge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_capture_logs_escape_names_in_tracebacks_too(
    state: Path, inbox: Path, edge_env: dict[str, str]
) -> None:
    (inbox / TERMINAL).write_bytes(b"whatever")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _FAILING_CAPTURE,
            *("capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=edge_env,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr
    for line in result.stderr.splitlines():
        assert_clean(line)
    assert f"RuntimeError: reader gave up on {printable(TERMINAL)}" in result.stderr
    assert f"could not capture {display_name(TERMINAL)}" in result.stderr


def test_the_clerk_s_app_exits_non_zero_when_it_stops_on_an_error(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MarkupError used to end the UI with a traceback and exit status 0."""
    from textual.app import App

    from edge.tui import run

    def broken(self: EdgeApp) -> None:
        raise RuntimeError("boom")

    monkeypatch.setenv("EDGE_TUI_GRAPHICS", "0")
    monkeypatch.setattr(EdgeApp, "run", lambda self: App.run(self, headless=True))
    monkeypatch.setattr(EdgeApp, "on_mount", broken)
    assert run(desk.state, inbox=desk.inbox) == 1
