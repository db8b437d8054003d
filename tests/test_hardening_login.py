"""Signing in, wherever it happens (issue 11, items 10, 11 and 13).

The command line now goes through the desk's sign-in guard and audit log; a
password typed into the user-name field leaves only a keyed, salted, expiring tag;
chosen passwords are estimated (with Vietnamese in mind) and refused with one line
that says what to do; and the temporary password of a freshly provisioned box opens
the desk only to choose a new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from textual.widgets import Input

from edge import samples
from edge.cli import main
from edge.daemon import Daemon
from edge.desk import DeskError, DeskLedger, DeskReader, LoginGuard, LoginPolicy
from edge.provision import provision
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.i18n import set_language
from edge.tui.messages import explain
from edge.tui.office import Office
from edge.tui.screens.home import HomeScreen
from edge.tui.screens.signin import ChangePasswordScreen
from edge.tui.widgets.common import StatusLine
from edge.vault import Keyring, WrongPassword
from tests.conftest import PASSWORD
from tests.tui_fixtures import APP_DAY_MS, FREE_BYTES

NEW_PASSWORD = "trâu ăn cỏ bên sông Hồng"
"""A clerk's own choice: four unrelated words and a place, as the advice says."""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``edge ARGS`` in-process: exit code, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edge: error: "), err
    return lines[0]


def audit(state: Path, *types: str) -> list[tuple[str, dict]]:
    """The audit events of these types, opened as regional IT would."""
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        reader = DeskReader(store, session)
        return [(e.type, reader.event_payload(e)) for e in store.events() if e.type in types]
    finally:
        session.close()
        store.close()


@pytest.fixture
def scanned(state: Path, inbox: Path) -> str:
    """A box with one captured dossier; returns its code."""
    code = samples.sample_codes(1, seed=31)[0]
    samples.write_job(inbox, [samples.DossierSpec(code, 1)], "jpeg", seed=31)
    daemon = Daemon(state, inbox, {"settle_seconds": 0.0})
    try:
        daemon.run_once()
    finally:
        daemon.close()
    return code


def export_args(state: Path, code: str, out: Path) -> list[str]:
    return ["export", "--state", str(state), "--dossier", code, "--clerk", "lan", "--out", str(out)]


# -- item 10: the command line goes through the guard ---------------------------------------


def test_a_locked_out_clerk_is_refused_at_the_command_line(
    scanned: str,
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store.open(state)
    guard = LoginGuard(store, Keyring.load(state), LoginPolicy(free_failures=5))
    for _ in range(6):  # someone at the counter guesses until the desk locks
        with pytest.raises(DeskError):
            guard.sign_in("lan", "doan-thu-xem")
    store.close()

    monkeypatch.setenv("EDGE_PASSWORD", PASSWORD)  # the right password, during the lockout
    code, out, err = run(capsys, *export_args(state, scanned, tmp_path / "out"))
    assert code == 2 and not out
    assert "locked out" in one_line(err) and "try again in 15 min" in err
    assert not (tmp_path / "out").exists()
    refused = audit(state, "clerk.sign_in_refused")
    assert refused == [
        ("clerk.sign_in_refused", {"clerk": "lan", "unknown": False, "via": "edge export"})
    ]


def test_wrong_passwords_at_the_command_line_count_toward_the_desk_delay(
    scanned: str,
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_PASSWORD", "doan-thu-xem")
    for _attempt in range(3):
        code, _out, err = run(capsys, *export_args(state, scanned, tmp_path / "out"))
        assert code == 2 and "wrong password" in one_line(err)
    assert "wait 2 s" in err
    failed = audit(state, "clerk.sign_in_failed")
    assert [p["failures"] for _, p in failed] == [1, 2, 3]
    assert all(p["via"] == "edge export" for _, p in failed)
    # the clerk at the desk now has to wait too: the attempts were counted
    store = Store.open(state)
    try:
        with pytest.raises(DeskError) as refused:
            LoginGuard(store, Keyring.load(state)).sign_in("lan", PASSWORD)
        assert refused.value.reason == "wait"
    finally:
        store.close()


def test_an_export_is_audited_like_a_view_at_the_desk(
    scanned: str,
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_PASSWORD", PASSWORD)
    code, out, _err = run(capsys, *export_args(state, scanned, tmp_path / "out"))
    assert code == 0 and Path(out.strip()).is_dir()
    events = audit(state, "clerk.signed_in", "audit.viewed", "clerk.signed_out")
    assert [t for t, _ in events] == ["clerk.signed_in", "audit.viewed", "clerk.signed_out"]
    assert events[0][1] == {"clerk": "lan", "via": "edge export"}
    assert events[1][1] == {"clerk": "lan", "what": ["fields", "pages", "export"]}
    assert events[2][1] == {"clerk": "lan", "reason": "done", "via": "edge export"}


@pytest.mark.parametrize(
    ("args", "via"),
    [
        (("sync", "--once", "--clerk", "lan"), "edge sync"),
        (("enroll", "--central", "http://127.0.0.1:9", "--token", "t", "--clerk", "lan"),
         "edge enroll"),
        (("clerks", "--activate", "--clerk", "lan"), "edge clerks --activate"),
    ],
)  # fmt: skip
def test_every_command_that_unlocks_a_key_is_guarded(
    state: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    via: str,
) -> None:
    monkeypatch.setenv("EDGE_PASSWORD", "doan-thu-xem")
    code, _out, err = run(capsys, args[0], "--state", str(state), *args[1:])
    assert code == 2 and "wrong password" in one_line(err)
    assert audit(state, "clerk.sign_in_failed") == [
        (
            "clerk.sign_in_failed",
            {"clerk": "lan", "unknown": False, "failures": 1, "delay_s": 0, "via": via},
        )
    ]


# -- item 11: nothing unsalted is kept of an unknown name ----------------------------------


def test_a_password_typed_as_the_user_name_is_kept_only_keyed_and_salted(
    state: Path, tmp_path: Path
) -> None:
    typed = "mat-khau-go-nham"
    store = Store.open(state)
    try:
        with pytest.raises(DeskError):
            LoginGuard(store, Keyring.load(state)).sign_in(typed, "x")
        (key,) = [r[0] for r in store.conn.execute("SELECT login FROM clerk_logins")]
    finally:
        store.close()
    unsalted = hashlib.sha256(typed.encode()).hexdigest()
    assert key != "?" + unsalted[:16]
    raw = b"".join(p.read_bytes() for p in state.glob("edge.db*"))
    assert unsalted[:16].encode() not in raw and typed.encode() not in raw
    # another box turns the same name into another tag: it is salted with the box's secret
    other = tmp_path / "other"
    provision(other, office="H29.02", clerk="mai", password=PASSWORD)
    assert Keyring.load(other).login_tag(typed) != key[1:]


def test_an_unknown_name_is_forgotten(state: Path) -> None:
    from edge.clock import Clock

    wall = [APP_DAY_MS]
    store = Store.open(state)
    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: wall[0])
    keyring = Keyring.load(state)
    try:
        guard = LoginGuard(store, keyring)
        with pytest.raises(DeskError):
            guard.sign_in("mat-khau-go-nham", "x")
        assert store.count("clerk_logins") == 1
        wall[0] += 3_600_000  # an hour after its last attempt it is gone
        LoginGuard(store, keyring)
        assert store.count("clerk_logins") == 0
        with pytest.raises(DeskError):
            guard.sign_in("mat-khau-go-nham", "x")
        guard.sign_in("lan", PASSWORD).close()  # and at once when a clerk signs in
        assert store.count("clerk_logins") == 0
    finally:
        store.close()


# -- item 13: passwords a guesser reaches soon are refused ----------------------------------


@pytest.mark.parametrize(
    ("password", "reason", "words"),
    [
        ("12345678", "password_common", "dùng nhiều nhất"),
        ("        ", "password_repeats", "lặp lại"),
        ("abcdefghij", "password_sequence", "dãy liên tiếp"),
        ("qwertyuiop", "password_common", "dùng nhiều nhất"),
        ("lan29011990", "password_personal", "tên đăng nhập"),
        ("Lan.H29.01!", "password_personal", "mã bưu cục"),
        ("matkhau123", "password_vietnamese", "tiếng Việt"),
        ("mật khẩu mới 2026", "password_vietnamese", "tiếng Việt"),
        ("bưu điện xã Hòa Bình", "password_vietnamese", "tiếng Việt"),
        ("29/01/1990", "password_date", "ngày tháng"),
    ],
)
def test_a_weak_password_is_refused_with_one_line_saying_why(
    state: Path, password: str, reason: str, words: str
) -> None:
    set_language("vi")
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        with pytest.raises(DeskError) as refused:
            DeskLedger(store, keyring.sealer(), session).change_password(keyring, password)
    finally:
        session.close()
        store.close()
    assert refused.value.reason == reason
    line = explain(refused.value)
    assert "\n" not in line and words in line and "Hãy" in line
    keyring.unlock("lan", PASSWORD).close()  # nothing changed


async def test_a_fresh_box_makes_the_clerk_choose_a_password_at_first_sign_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    temporary = "ong-vang-bay-qua-ruong-lua"  # strong enough; refused for being the same
    monkeypatch.setenv("EDGE_PASSWORD", temporary)
    code, out, _err = run(
        capsys, "init", "--state", str(state), "--office", "H29.01", "--clerk", "lan"
    )
    assert code == 0 and "new password at the first sign-in" in out

    # the temporary password opens nothing on the command line
    code, _out, err = run(capsys, "sync", "--state", str(state), "--once", "--clerk", "lan")
    assert code == 2 and "choose a new one first" in one_line(err)

    set_language("vi")
    office = Office(state, wall=lambda: APP_DAY_MS, free_bytes=lambda: FREE_BYTES)
    app = EdgeApp(office, idle_minutes=0, refresh_seconds=0.2)

    async def submit(new: str) -> str:
        app.screen.query_one("#new", Input).value = new
        app.screen.query_one("#again", Input).value = new
        app.screen.query_one("#again", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        if isinstance(app.screen, HomeScreen):
            return ""
        return str(app.screen.query_one("#status", StatusLine).render())

    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#user", Input).value = "lan"
        app.screen.query_one("#password", Input).value = temporary
        app.screen.query_one("#password", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChangePasswordScreen)
        assert "12345678" in str(app.screen.query_one("#advice").render())
        assert "dùng nhiều nhất" in await submit("12345678")
        assert "mật khẩu được cấp" in await submit(temporary)
        assert isinstance(app.screen, ChangePasswordScreen)
        assert await submit(NEW_PASSWORD) == ""
        assert isinstance(app.screen, HomeScreen)
    office.close()
    keyring = Keyring.load(state)
    assert not keyring.must_change_password("lan")
    keyring.unlock("lan", NEW_PASSWORD).close()
    with pytest.raises(WrongPassword):
        keyring.unlock("lan", temporary)
    store = Store.open(state)
    try:
        assert "clerk.password_changed" in [e.type for e in store.events()]
    finally:
        store.close()
