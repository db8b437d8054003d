"""The store: durable settings, a hash chain that shows tampering, a forward-only clock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.clock import Clock, Hlc
from edge.records import Ledger
from edge.store import MIGRATIONS, Store, StoreError
from edge.vault import Keyring


def test_opens_in_wal_with_full_sync(state: Path) -> None:
    store = Store.open(state)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert store.schema_version == len(MIGRATIONS)
    store.close()


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="edge init"):
        Store.open(tmp_path)


def test_newer_schema_is_refused(state: Path) -> None:
    conn = sqlite3.connect(state / "edge.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="newer release"):
        Store.open(state)


def test_event_chain_detects_edits_and_deletions(state: Path) -> None:
    store = Store.open(state)
    ledger = Ledger(store, Keyring.load(state).sealer())
    with store.transaction():
        for n in range(5):
            ledger.record(None, "test.event", {"n": n})
    assert store.verify_chain() is None
    store.conn.execute("UPDATE events SET type='forged' WHERE seq=3")
    assert store.verify_chain() == 3
    store.conn.execute("UPDATE events SET type='test.event' WHERE seq=3")
    assert store.verify_chain() is None
    store.conn.execute("DELETE FROM events WHERE seq=2")
    assert store.verify_chain() == 3
    store.close()


def test_event_payloads_are_sealed(state: Path) -> None:
    store = Store.open(state)
    ledger = Ledger(store, Keyring.load(state).sealer())
    with store.transaction():
        event = ledger.record(None, "test.event", {"secret": "Nguyễn Văn Đức"})
    assert "Nguyễn".encode() not in event.payload
    store.close()


def test_rolled_back_transaction_leaves_nothing(state: Path) -> None:
    store = Store.open(state)
    before = store.count("events")
    ledger = Ledger(store, Keyring.load(state).sealer())
    with pytest.raises(RuntimeError), store.transaction():
        ledger.create_dossier("000.00.01.H29-240115-0001")
        raise RuntimeError("power cut")
    assert store.count("events") == before
    assert store.count("dossiers") == 0
    store.close()


def test_clock_never_goes_back_or_below_floor() -> None:
    wall = [1_000]
    clock = Clock(floor_ms=5_000, wall=lambda: wall[0])
    first = clock.now()
    assert first.ms == 5_000
    wall[0] = 10_000
    second = clock.now()
    wall[0] = 2_000
    third = clock.now()
    assert first < second < third
    assert third == Hlc(10_000, 1)
    assert clock.behind_floor_ms() == 3_000


def test_hlc_and_floor_survive_restart(state: Path) -> None:
    store = Store.open(state)
    store.clock.observe(4_102_444_800_000)
    with store.transaction():
        stamp = store.now()
    store.close()
    again = Store.open(state)
    assert again.clock.floor_ms == 4_102_444_800_000
    assert again.now() > stamp
    again.close()


def test_settings_round_trip(state: Path) -> None:
    store = Store.open(state)
    settings = store.settings().with_changes(
        settle_seconds=2, code_patterns=[r"X-(?P<date>\d{6})-\d{4}"]
    )
    with store.transaction():
        store.put_settings(settings)
    assert store.settings().settle_seconds == 2.0
    assert store.settings().code_patterns == (r"X-(?P<date>\d{6})-\d{4}",)
    store.close()
