"""A blob upload survives its receiver or PostgreSQL dying right after the last chunk
(issue 16, item 1).

On the last chunk central records that every byte arrived, then hashes the part file
and records the blob in a second step. When that second step never happened (the
receiver killed while hashing, PostgreSQL stopped just then) the upload stayed at
``stored = length`` for ever: the last chunk again got ``offset_mismatch``, the batch
``blobs_missing``, the box's upload did nothing because its offset equalled the length,
and the box reported central "unreachable or busy". Here a real ``edge central serve``
process is stopped at exactly that step by a failpoint (``EDGE_FAILPOINT``), and the
box's own sync client must then finish on its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from edge.store import Store
from edge.sync import client
from edge.sync.central import storage as st
from edge.sync.central.receiver import Central
from edge.sync.client import Policy
from edge.vault import Keyring
from tests.pg import Cluster, find_bindir
from tests.syncutil import PASSWORD, box_chain, central_chain

QUICK = Policy(
    attempts=4,
    base=0.01,
    cap=0.05,
    max_retry_after=0.2,
    round_seconds=90,
    read_timeout=60,
    chunk_start=64 << 10,
)


class Receiver:
    """``edge central serve`` in its own process, with extra environment; output to a file."""

    def __init__(self, data: Path, db_url: str | None, log: Path, **env: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        command = [sys.executable, "-m", "edge.cli", "central", "serve", "--data", str(data)]
        command += ["--port", str(self.port), *(["--db", db_url] if db_url else [])]
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"central exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("central did not start")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


def start(started: list[Receiver], tmp_path: Path, db_url: str | None, **env: str) -> Receiver:
    log = tmp_path / f"serve-{len(started)}.log"
    receiver = Receiver(tmp_path / "central", db_url, log, **env)
    started.append(receiver)
    return receiver


def enroll(state: Path, data: Path, db_url: str | None, url: str) -> str:
    admin = Central(data, db_url)
    try:
        token = admin.issue_token("H29.01")
    finally:
        admin.close()
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        return client.enroll(state, url, token, session=session)["device"]
    finally:
        session.close()


def repoint(state: Path, url: str) -> None:
    store = Store.open(state)
    try:
        with store.transaction():
            store.conn.execute("UPDATE sync_enrollment SET central_url = ?", (url,))
    finally:
        store.close()


def jammed(data: Path, db_url: str | None) -> list[tuple[str, int]]:
    """Uploads whose every byte is recorded but which never became a blob."""
    engine = st.open_engine(data, db_url, pool_size=1)
    try:
        with engine.begin() as conn:
            done = set(conn.execute(select(st.blobs.c.blob_id)).scalars())
            return [
                (row.blob_id, row.length)
                for row in conn.execute(select(st.uploads))
                if row.stored == row.length and row.blob_id not in done
            ]
    finally:
        engine.dispose()


def until_done(state: Path, rounds: int = 3) -> list[client.RoundReport]:
    reports = []
    for _ in range(rounds):
        reports.append(client.sync_once(state, policy=QUICK))
        if reports[-1].done:
            return reports
    raise AssertionError(f"not done after {rounds} rounds: {reports[-1].error}")


def assert_everything_at_central(state: Path, data: Path, db_url: str | None, device: str) -> None:
    admin = Central(data, db_url)
    try:
        assert central_chain(admin, device) == box_chain(state)
        with admin.engine.begin() as conn:
            blobs = list(conn.execute(select(st.blobs.c.blob_id)).scalars())
            leftover = conn.execute(select(st.uploads)).all()
        assert blobs and all(admin.blobs.has(b) for b in blobs)
        assert leftover == []
        assert {d["readable"] for d in admin.list_dossiers()} == {True}
    finally:
        admin.close()


def test_a_receiver_killed_while_completing_a_blob_does_not_jam_the_upload(
    tmp_path: Path, box: Path, central_db: str | None, receivers: list[Receiver]
) -> None:
    data = tmp_path / "central"
    doomed = start(receivers, tmp_path, central_db, EDGE_FAILPOINT="blob.verify")
    device = enroll(box, data, central_db, doomed.url)
    report = client.sync_once(box, policy=QUICK)
    assert doomed.proc.wait(30) == -signal.SIGKILL  # died inside the completion
    assert report.error_code == "unreachable"
    [(blob_id, length)] = jammed(data, central_db)

    fresh = start(receivers, tmp_path, central_db)
    repoint(box, fresh.url)
    # The box's upload starting at central's offset, which is the whole length: it must
    # have central finish the blob instead of taking it as sent.
    store = Store.open(box)
    try:
        sync_round = client.Round(store, Keyring.load(box), policy=QUICK)
        try:
            sync_round.upload(blob_id, length)
        finally:
            sync_round.link.close()
    finally:
        store.close()
    assert jammed(data, central_db) == []
    until_done(box)
    assert_everything_at_central(box, data, central_db, device)


def _pg_ctl(cluster: Cluster, *args: str) -> None:
    assert cluster.folder is not None and cluster.bindir is not None
    command = [
        *(["runuser", "-u", cluster.user, "--"] if cluster.user else []),
        str(cluster.bindir / "pg_ctl"),
        "-D",
        str(cluster.folder / "data"),
        *args,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=90)


def _restart(cluster: Cluster) -> None:
    assert cluster.folder is not None
    options = (
        f"-p {urlsplit(cluster.admin_url).port} -k {cluster.folder} "
        "-c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on"
    )
    log = str(cluster.folder / "log")
    _pg_ctl(cluster, "-l", log, "-o", options, "-w", "-t", "60", "start")


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A PostgreSQL of this test's own: it is stopped mid-test, so not the shared one."""
    if find_bindir() is None:
        message = "PostgreSQL server binaries are missing (make system-deps installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Commits durable as in production: the stop below must not lose what was acknowledged.
    cluster = Cluster.start(fsync=True)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_postgresql_stopping_while_a_blob_completes_does_not_jam_the_upload(
    tmp_path: Path, box: Path, own_cluster: Cluster, receivers: list[Receiver]
) -> None:
    db_url = own_cluster.create_database()
    data = tmp_path / "central"
    hold = tmp_path / "hold"
    hold.mkdir()
    receiver = start(
        receivers,
        tmp_path,
        db_url,
        EDGE_FAILPOINT="blob.record",
        EDGE_FAILPOINT_HOLD=str(hold),
    )
    device = enroll(box, data, db_url, receiver.url)
    reports: list[client.RoundReport] = []
    sync_round = threading.Thread(
        target=lambda: reports.append(client.sync_once(box, policy=QUICK)), daemon=True
    )
    sync_round.start()
    deadline = time.monotonic() + 60
    while not (hold / "blob.record.reached").exists():
        assert time.monotonic() < deadline, receiver.log.read_text()[-2000:]
        time.sleep(0.05)
    # The blob's bytes are verified and in place; PostgreSQL goes before central records it.
    _pg_ctl(own_cluster, "-m", "immediate", "-w", "stop")
    (hold / "blob.record.go").touch()
    sync_round.join(120)
    assert reports and reports[0].error_code == "unreachable", reports
    _restart(own_cluster)
    assert len(jammed(data, db_url)) == 1

    until_done(box)  # the same receiver, the database back: nobody touches anything
    assert receiver.proc.poll() is None
    assert_everything_at_central(box, data, db_url, device)
