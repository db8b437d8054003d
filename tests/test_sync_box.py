"""The box's side of sync: keys made before enrollment, a wrong clock, a restored box,
the upgrade of a box captured before sync existed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge.store import MIGRATIONS, Store, _statements
from edge.sync import client
from edge.vault import Keyring
from tests.syncutil import FAST, PASSWORD, CentralServer, box_chain, box_dossiers, central_chain


def test_keys_made_before_enrollment_wait_for_a_clerk(box: Path, central: CentralServer) -> None:
    result = client.enroll(box, central.url, central.central.issue_token("H29.01"))
    assert result["keys_waiting_for_clerk"] > 0
    report = client.sync_once(box, policy=FAST)
    # the records are safe at central, but central cannot read them yet: not done
    assert not report.done and report.pending["keys_waiting_for_clerk"] > 0
    assert report.pending["events"] == 0
    assert {d["readable"] for d in central.central.list_dossiers()} == {False}
    assert {d["sync"] for d in box_dossiers(box)} == {"sent"}
    session = Keyring.load(box).unlock("lan", PASSWORD)
    try:
        report = client.sync_once(box, policy=FAST, session=session)
    finally:
        session.close()
    assert report.done, report.error
    assert {d["readable"] for d in central.central.list_dossiers()} == {True}
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
@pytest.mark.parametrize("skew_days", [-20000, -3, 2])
def test_a_box_with_a_wrong_clock_still_syncs_and_learns_centrals_time(
    box: Path, central: CentralServer, skew_days: int
) -> None:
    client.enroll(box, central.url, central.central.issue_token("H29.01"))
    wrong = skew_days * 86400.0
    store = Store.open(box)
    keyring = Keyring.load(box)
    try:
        report = client.Round(store, keyring, policy=FAST, wall=lambda: time.time() + wrong).run()
        assert report.pending["events"] == 0, report.error
        assert abs(store.clock.floor_ms - central.central.now()) < 60_000
    finally:
        store.close()
    # the floor is persisted: a fresh process sees it too
    store = Store.open(box)
    try:
        assert store.clock.floor_ms >= central.central.now() - 60_000
    finally:
        store.close()


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_a_box_restored_from_backup_takes_centrals_receipts_and_goes_on(
    box: Path, central: CentralServer
) -> None:
    session = Keyring.load(box).unlock("lan", PASSWORD)
    device = client.enroll(
        box, central.url, central.central.issue_token("H29.01"), session=session
    )["device"]
    session.close()
    assert client.sync_once(box, policy=FAST).done
    store = Store.open(box)
    try:
        with store.transaction():
            store.conn.execute("DELETE FROM sync_keys")
            store.conn.execute("DELETE FROM sync_batches")
            store.conn.execute("UPDATE dossiers SET sync = 'pending'")
    finally:
        store.close()
    # rebuilt differently (smaller batches), so its first batch is not one central knows
    report = client.sync_once(box, policy=client.Policy(**{**FAST.__dict__, "batch_events": 7}))
    assert report.done, report.error
    assert report.receipts_adopted > 0
    assert central_chain(central.central, device) == box_chain(box)
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}


def test_upgrading_a_box_links_its_old_events_to_their_blobs(box: Path) -> None:
    """The sync migration's back-fill finds the blobs of events written before it existed."""
    script = next(m for m in MIGRATIONS if "CREATE TABLE event_blobs" in m)
    backfill = [s for s in _statements(script) if s.startswith("INSERT OR IGNORE INTO event_blobs")]
    store = Store.open(box)
    try:
        before = store.conn.execute("SELECT seq, blob_id FROM event_blobs ORDER BY 1, 2").fetchall()
        assert len(before) == store.count("pages") + sum(
            len(json.loads(r[0])) for r in store.conn.execute("SELECT blob_ids FROM quarantine")
        )
        with store.transaction():
            store.conn.execute("DELETE FROM event_blobs")
            for statement in backfill:
                store.conn.execute(statement)
        after = store.conn.execute("SELECT seq, blob_id FROM event_blobs ORDER BY 1, 2").fetchall()
    finally:
        store.close()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_the_last_sync_problem_is_kept_for_the_clerk_and_the_fleet_page(
    box: Path, central: CentralServer
) -> None:
    from edge.observe.health import health_summary

    client.enroll(box, central.url, central.central.issue_token("H29.01"))
    store = Store.open(box)
    with store.transaction():
        store.put_meta("sync.last_error", "2026-11-01T08:00:00Z an old problem")
    store.close()
    session = Keyring.load(box).unlock("lan", PASSWORD)
    try:
        assert client.sync_once(box, policy=FAST, session=session).done
    finally:
        session.close()
    store = Store.open(box)
    try:
        assert not store.meta("sync.last_error")  # a finished round clears it
    finally:
        store.close()

    central.server.should_exit = True  # the link goes down
    central.thread.join(15)
    report = client.sync_once(box, policy=FAST)
    assert report.error_code == "unreachable"
    store = Store.open(box)
    try:
        problem = store.meta("sync.last_error")
        summary = health_summary(store, box)
    finally:
        store.close()
    assert problem and "central is unreachable" in problem and problem[:4].isdigit()
    assert summary["sync"]["last_error"] == problem
    assert summary["sync"]["errors"]["unreachable"] >= 1
