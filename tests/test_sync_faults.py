"""Sync through a link that cuts, fails, stalls and duplicates: nothing lost, nothing twice.

A proxy the test runs (tests/linkproxy.py) sits between the box and central
on loopback and injects faults request by request. The box just keeps running
``edge sync`` rounds until one reports done, as it would on a bad 3G link.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from edge.store import Store
from edge.sync import client, outbox
from edge.sync.client import Policy
from edge.vault import Keyring
from tests.linkproxy import Fault, LinkProxy, Request
from tests.syncutil import (
    PASSWORD,
    CentralServer,
    box_chain,
    box_dossiers,
    capture,
    central_chain,
)

HOSTILE = Policy(
    attempts=3,
    base=0.01,
    cap=0.05,
    round_seconds=60,
    read_timeout=5,
    chunk_start=48 << 10,
    chunk_min=16 << 10,
    chunk_max=192 << 10,
    batch_events=4,
)


def enroll_through(state: Path, server: CentralServer, url: str) -> str:
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        return client.enroll(state, url, server.central.issue_token("H29.01"), session=session)[
            "device"
        ]
    finally:
        session.close()


def repoint(state: Path, url: str) -> None:
    store = Store.open(state)
    try:
        with store.transaction():
            store.conn.execute("UPDATE sync_enrollment SET central_url = ?", (url,))
    finally:
        store.close()


def until_done(state: Path, policy: Policy, rounds: int) -> list[client.RoundReport]:
    reports = []
    for _ in range(rounds):
        reports.append(client.sync_once(state, policy=policy))
        if reports[-1].done:
            return reports
    raise AssertionError(f"not done after {rounds} rounds: {reports[-1].error}")


def test_hostile_link_loses_nothing_and_duplicates_nothing(
    box: Path, central: CentralServer
) -> None:
    rng = random.Random(7)
    kinds = ["cut_request", "cut_response", "status", "status_after", "delay", "duplicate"]

    def hostile(request: Request) -> Fault:
        if request.path.startswith("/v1/enroll") or rng.random() > 0.35:
            return Fault()
        kind = rng.choice(kinds)
        return Fault(
            kind=kind,
            at=rng.random(),
            status=rng.choice([500, 503]),
            retry_after=rng.choice([None, None, 0]),
            delay=0.3,
        )

    with LinkProxy(central.port, policy=hostile) as proxy:
        device = enroll_through(box, central, proxy.url)
        capture(box, box.parent / "inbox", dossiers=1, pages=1, seed=31, name="late")
        reports = until_done(box, HOSTILE, rounds=60)
    seen = {e.fault for e in proxy.log}
    assert set(kinds) <= seen, f"faults not exercised: {set(kinds) - seen}"
    assert sum(r.retries for r in reports) > 0
    # central holds every event exactly once, and both chains agree link by link
    assert central_chain(central.central, device) == box_chain(box)
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}
    held = {d["id"]: d for d in central.central.list_dossiers()}
    for mine in box_dossiers(box):
        assert held[mine["id"]]["pages"] == mine["pages"]
    store = Store.open(box)
    try:
        receipts = store.conn.execute(
            "SELECT COUNT(*) FROM sync_batches WHERE receipt IS NOT NULL"
        ).fetchone()[0]
        blob_ids = [r[0] for r in store.conn.execute("SELECT id FROM blobs")]
    finally:
        store.close()
    assert receipts > 0
    for blob_id in blob_ids:
        assert central.central.blobs.has(blob_id)
        assert central.central.blobs.read(blob_id) == _box_blob(box, blob_id)


def _box_blob(state: Path, blob_id: str) -> bytes:
    store = Store.open(state)
    try:
        return store.blob(blob_id)
    finally:
        store.close()


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_a_cut_at_ninety_percent_resumes_from_centrals_offset(
    tmp_path: Path, central: CentralServer
) -> None:
    from tests.syncutil import make_box

    state = make_box(tmp_path / "big", dossiers=1, pages=0, fmt="tiff", seed=41)
    store = Store.open(state)
    try:
        blob_id, length = store.conn.execute(
            "SELECT id, size FROM blobs ORDER BY size DESC LIMIT 1"
        ).fetchone()
    finally:
        store.close()
    chunk = 128 << 10
    assert length > 10 * chunk, "the test needs a blob of many chunks"
    target = int(length * 0.9)
    state_of = {"cut": False, "away": False}

    def cut_at_ninety(request: Request) -> Fault:
        if state_of["away"]:
            return Fault(kind="status", status=503)
        offset = int(request.headers.get("upload-offset", "-1"))
        if (
            request.method == "PATCH"
            and blob_id in request.path
            and not state_of["cut"]
            and offset <= target < offset + request.length
        ):
            state_of["cut"] = state_of["away"] = True
            return Fault(kind="cut_request", at=(target - offset) / request.length)
        return Fault()

    steady = Policy(
        attempts=2,
        base=0.01,
        cap=0.02,
        round_seconds=60,
        chunk_start=chunk,
        chunk_min=chunk,
        chunk_max=chunk,
    )
    with LinkProxy(central.port, policy=cut_at_ninety) as proxy:
        enroll_through(state, central, proxy.url)
        first = client.sync_once(state, policy=steady)
        assert not first.done and state_of["cut"]
        state_of["away"] = False
        second = client.sync_once(state, policy=steady)
        assert second.done, second.error
    patches = [e for e in proxy.log if e.method == "PATCH" and blob_id in e.path]
    sent = sum(e.body_forwarded for e in patches)
    assert length <= sent <= length + chunk, (sent, length)
    cut = next(e for e in patches if e.fault == "cut_request")
    delivered = [e for e in patches if e.fault == "pass" and e.body_forwarded]
    offsets = [int(e.headers["upload-offset"]) for e in delivered]
    cut_offset = int(cut.headers["upload-offset"])
    # the first chunk central took after the cut starts where central had stored up to...
    resumed = next(e for e in delivered if e.index > cut.index)
    assert int(resumed.headers["upload-offset"]) == cut_offset >= target - chunk
    # ...and everything before it went over the link exactly once
    assert offsets == sorted(set(offsets)) and sum(e.body_forwarded for e in delivered) == length
    assert central.central.blobs.read(blob_id) == _box_blob(state, blob_id)


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_retry_after_is_honoured(box: Path, central: CentralServer) -> None:
    busy = {"left": 2}

    def overloaded(request: Request) -> Fault:
        if request.path.startswith("/v1/enroll") or busy["left"] == 0:
            return Fault()
        busy["left"] -= 1
        return Fault(kind="status", status=503, retry_after=1)

    with LinkProxy(central.port, policy=overloaded) as proxy:
        enroll_through(box, central, proxy.url)
        report = client.sync_once(box, policy=Policy(attempts=5, base=0.01, cap=0.05))
    assert report.done, report.error
    answered = [e for e in proxy.log if not e.path.startswith("/v1/enroll")]
    assert [e.fault for e in answered[:3]] == ["status", "status", "pass"]
    # the proxy notes 'ended' just after the box has the answer: allow a few ms of slack
    assert answered[1].started - answered[0].ended >= 0.95
    assert answered[2].started - answered[1].ended >= 0.95


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_a_box_does_not_spin_while_central_is_away(box: Path, central: CentralServer) -> None:
    enroll_through(box, central, central.url)
    repoint(box, "http://127.0.0.1:9")  # discard port: nothing listens
    policy = Policy(attempts=4, base=0.2, cap=0.4, round_seconds=30, connect_timeout=1)
    started = time.monotonic()
    report = client.sync_once(box, policy=policy)
    elapsed = time.monotonic() - started
    assert not report.done and report.error_code == "unreachable"
    assert report.requests == policy.attempts  # bounded per round
    assert elapsed < 5  # and the round ends
    store = Store.open(box)
    try:
        assert outbox.summary(store)["events"] > 0  # nothing was lost or marked sent
    finally:
        store.close()


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_the_daemons_sync_loop_backs_off_while_central_is_away(
    box: Path, central: CentralServer
) -> None:
    from edge.sync.loop import SyncLoop

    enroll_through(box, central, central.url)
    repoint(box, "http://127.0.0.1:9")
    store = Store.open(box)
    try:
        with store.transaction():
            store.put_settings(
                store.settings().with_changes(
                    sync_interval_seconds=0.02, sync_backoff_max_seconds=1.0
                )
            )
    finally:
        store.close()
    loop = SyncLoop(box, policy=Policy(attempts=1, base=0.01, cap=0.01, connect_timeout=1))
    loop.start()
    time.sleep(3.0)
    started = time.monotonic()
    loop.stop()
    assert time.monotonic() - started < 2.0 and not loop.thread.is_alive()
    # every 20 ms without backoff would be ~150 rounds; doubling full jitter keeps it few
    assert 2 <= loop.rounds <= 25, loop.rounds
    assert loop.failures == loop.rounds
