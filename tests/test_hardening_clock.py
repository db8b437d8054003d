"""A wall clock that runs ahead or is set back must not freeze the box (issue 11, item 3).

One event recorded while the wall clock said 2031 used to pin the hybrid logical
clock there: sign-in delays never ran out, pages captured afterwards were dated 2031
and ``edge doctor`` said the clock was fine. These tests replay that on real
databases: the clerk's right password works after a jump, capture dates pages by
the corrected clock, the log keeps its order, delays follow the monotonic clock and
survive restarts as what was left of them, and doctor names the jump.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import Input

import edge.store as store_module
from edge.cli import main
from edge.clock import Clock, Hlc
from edge.desk import DeskError, LoginGuard
from edge.records import Ledger
from edge.store import Store
from edge.sync import outbox
from edge.tui.screens.home import HomeScreen
from edge.tui.widgets.common import StatusLine
from edge.update.apply import _put_references
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.tui_fixtures import APP_DAY_MS, Desk, make_app, sign_in

JUMP_MS = int(datetime(2031, 6, 1, 9, 0, tzinfo=UTC).timestamp() * 1000)
"""What a wrong time server once made the box believe."""

TODAY_MS = APP_DAY_MS
"""27 November 2026, the day the clock is right again."""


def _status(app) -> str:
    return str(app.screen.query_one("#status", StatusLine).render())


def _record_at(state: Path, wall_ms: int) -> None:
    """Something recorded while the wall clock said ``wall_ms`` (a sign-in, a scan)."""
    store = Store.open(state)
    try:
        store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: wall_ms)
        with store.transaction():
            Ledger(store, Keyring.load(state).sealer()).record(None, "box.checked", {})
    finally:
        store.close()


def _guard(state: Path, clock: Clock) -> tuple[Store, LoginGuard]:
    store = Store.open(state)
    store.clock = Clock(
        store.clock.floor_ms,
        store.clock.last,
        wall=clock._wall,
        monotonic=clock._monotonic,
        boot=clock.boot,
    )
    return store, LoginGuard(store, Keyring.load(state))


def _fail(guard: LoginGuard, times: int) -> DeskError:
    error = None
    for _ in range(times):
        with pytest.raises(DeskError) as caught:
            guard.sign_in("lan", "sai-mat-khau")
        error = caught.value
    assert error is not None
    return error


# -- what the clerk sees -------------------------------------------------------------------


async def test_the_right_password_works_after_the_clock_ran_ahead_once(desk: Desk) -> None:
    now = [JUMP_MS]
    app = make_app(desk, wall=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)  # recorded while the clock said 2031
        assert isinstance(app.screen, HomeScreen)
    app.office.close()

    now[0] = TODAY_MS  # the clock is right again
    app = make_app(desk, wall=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(3):
            await sign_in(pilot, password="sai-mat-khau")
            app.screen.query_one("#user", Input).value = ""
        assert "Đợi 2 giây" in _status(app)
        now[0] += 2_000
        await sign_in(pilot)
        assert isinstance(app.screen, HomeScreen), _status(app)
    app.office.close()

    store = Store.open(desk.state)
    try:
        events = store.events()
        stamps = [Hlc.parse(e.hlc) for e in events]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # order kept
        last = events[-1]
        assert last.type == "clerk.signed_out" and last.at.startswith("2026-11-27")
        assert Hlc.parse(last.hlc).ms >= JUMP_MS  # order stays ahead; the time shown does not
    finally:
        store.close()


def test_pages_scanned_after_the_clock_came_back_are_dated_today(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record_at(state, JUMP_MS)
    store = Store.open(state)
    try:
        store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: TODAY_MS)
        with store.transaction():
            Ledger(store, Keyring.load(state).sealer()).create_dossier("H29.01-261127-0001")
    finally:
        store.close()
    assert main(["dossiers", "--state", str(state), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["received_at"].startswith("2026-11-27"), row


def test_what_sync_and_updates_record_after_the_jump_is_dated_today(state: Path) -> None:
    """Enrolment, sync batches and reference data a signed update brings are dated by the
    corrected clock, not by the order stamp the jump left in 2031."""
    _record_at(state, JUMP_MS)
    store = Store.open(state)
    try:
        store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: TODAY_MS)
        with store.transaction():
            outbox.save_enrollment(store, "dev-1", "http://127.0.0.1:9", "H29.01")
            _put_references(store, {"procedures": ([{"code": "1.001"}], "fleet/reference.json")})
        (enrolled,) = store.conn.execute("SELECT enrolled_at FROM sync_enrollment").fetchone()
        (updated,) = store.conn.execute("SELECT updated FROM reference_data").fetchone()
        assert store.now().ms >= JUMP_MS  # the order stays ahead
    finally:
        store.close()
    assert enrolled.startswith("2026-11-27") and updated.startswith("2026-11-27")


def test_a_clock_set_back_keeps_time_moving_and_delays_running(state: Path) -> None:
    floor = TODAY_MS
    store = Store.open(state)
    store.clock.observe(floor)
    with store.transaction():
        pass
    store.close()
    mono = [1_000_000]
    clock = Clock(wall=lambda: floor - 10 * 86_400_000, monotonic=lambda: mono[0], boot="b1")
    store, guard = _guard(state, clock)
    try:
        assert _fail(guard, 3).reason == "wrong_password"
        with pytest.raises(DeskError) as refused:
            guard.sign_in("lan", PASSWORD)
        assert refused.value.reason == "wait"
        mono[0] += 300_000  # five minutes pass; the wall clock stays ten days behind
        guard.sign_in("lan", PASSWORD).close()
        with store.transaction():
            dossier = Ledger(store, Keyring.load(state).sealer()).create_dossier(None)
        received = store.dossier(dossier)["received_at"]
        assert received == "2026-11-27T01:35:00.000Z"  # the floor, moved on by five minutes
    finally:
        store.close()


def test_a_forward_jump_neither_lifts_nor_freezes_a_delay(state: Path) -> None:
    wall, mono = [TODAY_MS], [5_000_000]
    clock = Clock(wall=lambda: wall[0], monotonic=lambda: mono[0], boot="b1")
    store, guard = _guard(state, clock)
    try:
        _fail(guard, 3)
        wall[0] = JUMP_MS  # five years ahead in an instant: no time has passed
        with pytest.raises(DeskError) as refused:
            guard.sign_in("lan", PASSWORD)
        assert refused.value.reason == "wait"
        wall[0] = TODAY_MS + 1_000  # and back
        mono[0] += 2_000
        guard.sign_in("lan", PASSWORD).close()
    finally:
        store.close()


def test_a_lockout_survives_a_restart_as_what_was_left_of_it(state: Path) -> None:
    wall, mono = [TODAY_MS], [7_000_000]
    clock = Clock(wall=lambda: wall[0], monotonic=lambda: mono[0], boot="b1")
    store, guard = _guard(state, clock)
    for attempt in range(6):
        if attempt:
            mono[0] += 120_000
            wall[0] += 120_000
        error = _fail(guard, 1)
    assert error.reason == "locked_out" and error.details["seconds"] == 900
    store.close()

    # the UI restarts in the same boot: ten minutes of the lockout are gone
    mono[0] += 600_000
    wall[0] += 600_000
    store, guard = _guard(state, clock)
    with pytest.raises(DeskError) as refused:
        guard.sign_in("lan", PASSWORD)
    assert refused.value.reason == "locked_out" and refused.value.details["seconds"] == 300
    store.close()

    # a reboot into 1970: the monotonic clock restarted, the wall clock says nothing
    # useful; the five minutes left stay five minutes, not fifty-six years
    rebooted = Clock(wall=lambda: 0, monotonic=lambda: 1_000, boot="b2")
    store, guard = _guard(state, rebooted)
    with pytest.raises(DeskError) as refused:
        guard.sign_in("lan", PASSWORD)
    assert refused.value.reason == "locked_out" and refused.value.details["seconds"] == 300
    store.close()


THAW_MIGRATION = 9
"""edge/store.py's migration that keeps sign-in delays as time left (issue 11); a store
from before it is one whose user_version is one less, whatever migrations came later."""


def test_an_already_frozen_box_recovers_when_it_is_upgraded(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A box that stored deadlines in 2031 before this release: the upgrade thaws them.

    Only the thawing migration is replayed on the store rolled back to before it: the ones
    after it add columns and tables this store already has."""
    store = Store.open(state)
    store.close()
    conn = sqlite3.connect(state / "edge.db")
    for column in ("wait_ms", "lock_ms", "since"):
        conn.execute(f"ALTER TABLE clerk_logins DROP COLUMN {column}")
    conn.execute(
        "INSERT INTO clerk_logins(login, failures, lockouts, next_attempt_ms, "
        "locked_until_ms, updated) VALUES ('lan', 3, 0, ?, 0, '2031-06-01T09:00:00.000Z')",
        (JUMP_MS + 2_000,),
    )
    conn.execute(
        "INSERT INTO clerk_logins(login, failures, lockouts, next_attempt_ms, "
        "locked_until_ms, updated) VALUES ('?8d969eef6ecad3c2', 1, 0, 0, 0, 'x')"
    )
    conn.execute(f"PRAGMA user_version={THAW_MIGRATION - 1}")
    conn.commit()
    conn.close()
    monkeypatch.setattr("edge.store.MIGRATIONS", store_module.MIGRATIONS[:THAW_MIGRATION])
    store = Store.open(state)
    try:
        assert [r["login"] for r in store.conn.execute("SELECT login FROM clerk_logins")] == ["lan"]
        LoginGuard(store, Keyring.load(state)).sign_in("lan", PASSWORD).close()
    finally:
        store.close()


# -- what the technician sees ----------------------------------------------------------------


def test_doctor_reports_that_the_clock_ran_ahead(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wall = int(datetime.now(UTC).timestamp() * 1000)
    _record_at(state, wall + 5 * 365 * 86_400_000)
    assert main(["doctor", "--state", str(state), "--json"]) in (0, 1)
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    clock = checks["clock"]
    assert clock["status"] == "warn"
    assert "ran ahead" in clock["detail"] and "order is kept" in clock["detail"]
    assert "keep time sync on" in clock["fix"]


def test_doctor_reports_a_clock_central_disagreed_with(state: Path) -> None:
    from edge.doctor import check_clock

    store = Store.open(state)
    try:
        with store.transaction():
            store.conn.execute(
                "INSERT INTO sync_cursors(name, value) VALUES ('clock.offset_ms', ?)",
                (str(-3 * 86_400_000),),
            )
        check = check_clock(store)
    finally:
        store.close()
    assert check.status == "warn"
    assert "3 days ahead of central's" in check.detail
    assert "timedatectl" in check.fix


def test_a_healthy_clock_is_ok(state: Path) -> None:
    from edge.doctor import check_clock

    store = Store.open(state)
    try:
        assert check_clock(store).status == "ok"
    finally:
        store.close()


# -- the clock itself ----------------------------------------------------------------------


def test_order_and_time_are_separate_answers() -> None:
    wall, mono = [JUMP_MS], [0]
    clock = Clock(wall=lambda: wall[0], monotonic=lambda: mono[0], boot="b1")
    ahead, at = clock.tick()
    assert ahead.ms == at == JUMP_MS
    wall[0] = TODAY_MS
    stamp, at = clock.tick()
    assert stamp > ahead and at == TODAY_MS
    assert clock.order_ahead_ms() == JUMP_MS - TODAY_MS


def test_the_order_counter_never_outgrows_its_five_digits() -> None:
    clock = Clock(last=Hlc(JUMP_MS, 99_999), wall=lambda: TODAY_MS)
    stamp = clock.now()
    assert stamp == Hlc(JUMP_MS + 1, 0) and len(str(stamp)) == 19


def test_instants_round_trip_and_measure_across_boots() -> None:
    from edge.clock import Instant

    wall, mono = [TODAY_MS], [50]
    clock = Clock(wall=lambda: wall[0], monotonic=lambda: mono[0], boot="b1")
    then = Instant.parse(str(clock.instant()))
    assert then == Instant("b1", 50, TODAY_MS)
    mono[0] += 1_500
    wall[0] += 999_999  # the wall clock jumped; the monotonic clock counts
    assert clock.since_ms(then) == 1_500
    other = Clock(wall=lambda: TODAY_MS + 60_000, monotonic=lambda: 5, boot="b2")
    assert other.since_ms(then) == 60_000
    assert Instant.parse("") is None and Instant.parse("2026-11-27T01:30:00Z") is None
