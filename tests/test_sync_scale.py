"""Central past one process: two receivers sharing one PostgreSQL database and blob folder.

Boxes sync through either receiver, switching between rounds (as a load
balancer would send them); the same batch even arrives at both at once. Every
event must be stored exactly once and every chain must continue correctly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.store import Store
from edge.sync import client, outbox
from edge.sync import contract as c
from edge.sync.central.receiver import Central
from edge.vault import Keyring
from tests.pg import Cluster
from tests.syncutil import (
    FAST,
    PASSWORD,
    ServeProcess,
    box_chain,
    box_dossiers,
    central_chain,
    clone_box,
)
from tests.test_sync_security import signed


def repoint(state: Path, url: str) -> None:
    store = Store.open(state)
    try:
        with store.transaction():
            store.conn.execute("UPDATE sync_enrollment SET central_url = ?", (url,))
    finally:
        store.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster) -> Iterator[tuple]:
    """Two ``edge central serve`` processes, one database, one data folder (both tests)."""
    url = pg_cluster.create_database()
    data = tmp_path_factory.mktemp("central")
    with ServeProcess(data, url) as a, ServeProcess(data, url) as b:
        yield data, url, a, b


def test_two_receivers_share_one_database_and_accept_every_batch_once(
    tmp_path: Path, shared: tuple, box_template: Path
) -> None:
    data, url, a, b = shared
    admin = Central(data, url)
    boxes = [clone_box(box_template, tmp_path / f"box-{i}" / "state") for i in range(4)]
    devices = []
    for i, state in enumerate(boxes):
        session = Keyring.load(state).unlock("lan", PASSWORD)
        devices.append(
            client.enroll(state, (a, b)[i % 2].url, admin.issue_token("H29.01"), session=session)[
                "device"
            ]
        )
        session.close()
    small = client.Policy(**{**FAST.__dict__, "batch_events": 3})
    errors: list[str] = []

    def run(i: int, state: Path) -> None:
        for round_no in range(30):
            repoint(state, (a, b)[(i + round_no) % 2].url)
            report = client.sync_once(state, policy=small)
            if report.done:
                return
            if report.error:
                errors.append(report.error)
        errors.append(f"box {i} never finished")

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(boxes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any("never finished" in e for e in errors), errors
    for device, state in zip(devices, boxes, strict=True):
        assert central_chain(admin, device) == box_chain(state)
        assert {d["sync"] for d in box_dossiers(state)} == {"acknowledged"}
    assert len(admin.list_dossiers()) == sum(len(box_dossiers(s)) for s in boxes)
    admin.close()


def test_the_same_batch_at_both_receivers_at_once_is_stored_once(
    tmp_path: Path, shared: tuple, box_template: Path
) -> None:
    data, url, a, b = shared
    admin = Central(data, url)
    state = clone_box(box_template, tmp_path / "box" / "state")
    session = Keyring.load(state).unlock("lan", PASSWORD)
    device = client.enroll(state, a.url, admin.issue_token("H29.01"), session=session)["device"]
    session.close()
    store = Store.open(state)
    keyring = Keyring.load(state)
    try:
        batch = outbox.build_batch(store, keyring, device)
        assert batch is not None
        rnd = client.Round(store, keyring, policy=FAST)
        rnd.ensure_blobs(batch.blobs)
        rnd.link.close()
    finally:
        store.close()
    body = batch.body()
    path = f"/v1/batches/{batch.batch_id}"
    answers: list[httpx.Response] = []
    failures: list[str] = []
    gate = threading.Barrier(2)

    def put(server: ServeProcess) -> None:
        headers = signed(keyring, device, "PUT", path, body)
        gate.wait()
        try:
            answers.append(httpx.put(server.url + path, content=body, headers=headers, timeout=60))
        except httpx.HTTPError as exc:
            failures.append(f"{server.url}: {exc!r}; the receiver said: {server.output()}")

    threads = [threading.Thread(target=put, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not failures, failures
    assert [r.status_code for r in answers] == [200, 200]
    receipts = [
        c.decode_document(c.SignedDocument(**r.json()["receipt"]), c.Receipt) for r in answers
    ]
    assert receipts[0] == receipts[1]
    assert central_chain(admin, device) == box_chain(state)[: batch.last_seq]
    admin.close()
