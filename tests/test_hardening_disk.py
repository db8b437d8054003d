"""Issue 11, item 2: a disk that fills up, a card that turns read-only, a damaged database.

Each test gives the box a real small filesystem of its own (a tmpfs, or an ext4 image on
a loop device) and fills it with fallocate, or has the kernel turn it read-only the way
it does when an SD card fails (``errors=remount-ro`` and ext4's ``trigger_fs_error``).
``edge run``, ``edge capture`` and ``edge doctor`` run as real processes on real SQLite
files. What must hold: the daemon stays up, scans wait in the inbox, the alarm is on
/readyz and /metrics, intake resumes by itself when space returns, and ``edge doctor``
names the disk (never "damaged, restore from backup", which would lose what central has
not acknowledged). A damaged database is reported by ``edge doctor`` one line per
problem, and a failing database never silently ends the background sync thread.

Mounting needs root (or CAP_SYS_ADMIN); without it these tests skip and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge import samples
from edge.provision import provision
from edge.samples import DossierSpec
from edge.store import Store
from tests.conftest import PASSWORD

EDGE = [sys.executable, "-m", "edge.cli"]
CODE = "000.00.01.H29-240115-0001"
RESERVE_MB = 4


# -- a filesystem of the test's own ---------------------------------------------------------


def _mount(args: list[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", *args, str(target)], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a test filesystem here (needs root): {result.stderr.strip()}")


def _umount(target: Path) -> None:
    for _ in range(50):
        result = subprocess.run(["umount", str(target)], capture_output=True, timeout=30)
        if result.returncode == 0 or not os.path.ismount(target):
            return
        time.sleep(0.1)  # a process of the test still closing its files
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs(target: Path, size_mb: int = 40) -> Iterator[Path]:
    _mount(["-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs"], target)
    try:
        yield target
    finally:
        _umount(target)


@contextlib.contextmanager
def ext4(target: Path, size_mb: int = 64) -> Iterator[Path]:
    """An ext4 image on a loop device that the kernel turns read-only on its first error."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
    image = target.with_suffix(".img")
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, timeout=60)
    _mount(["-o", "loop,errors=remount-ro", str(image)], target)
    try:
        yield target
    finally:
        _umount(target)
        image.unlink(missing_ok=True)


def fail_card(mountpoint: Path) -> None:
    """What a failing SD card does: an ext4 error, after which the kernel remounts read-only."""
    device = next(
        line.split()[0]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1] == str(mountpoint)
    )
    trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip(f"this kernel has no {trigger} to make the filesystem fail")
    trigger.write_text("edge test: the SD card fails")


def fill(mountpoint: Path) -> Path:
    """Take every free byte with fallocate, as a runaway log or a copied video would."""
    filler = mountpoint / "filler"
    with open(filler, "ab") as fh:
        for _ in range(20):
            free = shutil.disk_usage(mountpoint).free
            if free < 4096:
                break
            try:
                os.posix_fallocate(fh.fileno(), os.fstat(fh.fileno()).st_size, free)
            except OSError:
                os.posix_fallocate(fh.fileno(), os.fstat(fh.fileno()).st_size, free // 2)
    assert shutil.disk_usage(mountpoint).free < RESERVE_MB * 2**20
    return filler


# -- a box on it -------------------------------------------------------------------------


def make_box(state: Path, **settings: object) -> Path:
    provision(state, office="H29.01", clerk="lan", password=PASSWORD)
    store = Store.open(state)
    try:
        with store.transaction():
            store.put_settings(store.settings().with_changes(**settings))
    finally:
        store.close()
    return state


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Box:
    """``edge run`` as a real process, and what a technician would ask of it."""

    def __init__(self, state: Path, inbox: Path, env: dict[str, str]) -> None:
        self.state, self.inbox, self.env = state, inbox, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.logs: list[str] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *EDGE,
                *("run", "--state", str(self.state), "--inbox", str(self.inbox)),
                *("--settle", "0.2", "--idle", "1", "--http-port", str(self.port)),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(self.answers, "the health endpoint to answer", timeout=30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        assert self.alive(), f"edge run exited: {self.stop(check=False)}"
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> tuple[int, dict]:
        response = httpx.get(f"{self.base}/readyz", timeout=10)
        return response.status_code, response.json()

    def alerts(self) -> set[str]:
        """``edge_alert`` names on /metrics."""
        text = httpx.get(f"{self.base}/metrics", timeout=10).text
        return {
            sample.labels["name"]
            for family in text_string_to_metric_families(text)
            if family.name == "edge_alert"
            for sample in family.samples
            if sample.value == 1
        }

    def stop(self, *, check: bool = True) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=30)
        self.logs.append(err)
        code, self.proc = self.proc.returncode, None
        if check:
            assert code == 0, err
        assert "Traceback" not in err, err
        return err


@contextlib.contextmanager
def running(state: Path, inbox: Path, env: dict[str, str]) -> Iterator[Box]:
    box = Box(state, inbox, env)
    try:
        yield box
    finally:
        if box.proc is not None and box.proc.poll() is None:
            box.proc.kill()
            box.proc.communicate(timeout=30)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def drop(inbox: Path, staging: Path, name: str, data: bytes) -> Path:
    """A scanner's complete file appears in the inbox at once (written aside, renamed in)."""
    staging.mkdir(parents=True, exist_ok=True)
    (staging / name).write_bytes(data)
    os.replace(staging / name, inbox / name)
    return inbox / name


def cover(tmp_path: Path) -> bytes:
    job = samples.write_job(tmp_path / "scans", [DossierSpec(CODE, 1)], "jpeg", dpi=100)
    return job.paths[0].read_bytes()


def edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def doctor(state: Path) -> subprocess.CompletedProcess:
    result = edge("doctor", "--state", str(state))
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stdout and all(line.startswith("[") for line in result.stdout.splitlines())
    return result


def problems(result: subprocess.CompletedProcess) -> dict[str, str]:
    """``edge doctor``'s lines that are not ok, by check name."""
    found = {}
    for line in result.stdout.splitlines():
        status, rest = line[1:5].strip(), line[7:]
        if status != "ok":
            name, _sep, text = rest.partition(": ")
            found[name] = f"[{status}] {text}"
    return found


def dossier_codes(state: Path) -> list[str | None]:
    result = edge("dossiers", "--state", str(state), "--json")
    assert result.returncode == 0, result.stderr
    return [d["code"] for d in json.loads(result.stdout)]


# -- a full disk -------------------------------------------------------------------------


def test_a_full_disk_stops_intake_alarms_and_resumes_by_itself(
    tmp_path: Path, inbox: Path, edge_env: dict[str, str]
) -> None:
    with tmpfs(tmp_path / "card") as card:
        state = make_box(card / "state", min_free_mb=RESERVE_MB)
        with running(state, inbox, edge_env) as box:
            box.start()
            wait_for(lambda: box.ready()[0] == 200, "the box to be ready")
            filler = fill(card)
            scan = drop(inbox, tmp_path / "staging", "scan_0001.jpg", cover(tmp_path))

            # stays up, takes nothing, says why: /readyz, /metrics
            wait_for(lambda: "disk" in box.alerts(), "the disk alert on /metrics")
            status, ready = box.ready()
            assert status == 503 and ready["checks"]["storage"]["ok"] is False
            assert "MB free" in ready["alerts"]["disk"]
            time.sleep(3)
            assert box.alive() and scan.exists()

            # doctor names the disk, and does not send anyone to the backup
            report = doctor(state)
            assert report.returncode == 1
            found = problems(report)
            assert found["disk"].startswith("[fail]") and "is full" in found["disk"]
            assert "database" not in found or "not damaged" in found["database"]
            assert "is damaged" not in report.stdout

            # a one-shot capture says the same in one line and leaves the scan
            once = edge(
                "capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0"
            )
            assert once.returncode == 1 and "Traceback" not in once.stderr
            error = once.stderr.strip().splitlines()[-1]
            assert error.startswith("edge: error: scans were left in the inbox: the disk")
            assert scan.exists()

            # a restart on the full disk: up and alarmed, not exiting on its heartbeat
            box.stop()
            box.start()
            time.sleep(3)
            assert box.alive() and scan.exists()
            wait_for(lambda: "disk" in box.ready()[1]["alerts"], "the alert after a restart")

            # space comes back: the scan is taken without anyone touching the box
            filler.unlink()
            wait_for(lambda: not scan.exists(), "the scan to be captured", timeout=30)
            wait_for(lambda: box.ready()[0] == 200, "the box to be ready again")
            assert "disk" not in box.alerts()
            log = box.stop()
        assert dossier_codes(state) == [CODE]
        assert "is full" in box.logs[0] and "taking scans again" in log
        assert "is damaged" not in "".join(box.logs)


def test_a_write_refused_for_space_is_retried_not_fatal(
    tmp_path: Path, inbox: Path, edge_env: dict[str, str]
) -> None:
    """No reserve at all: the guard lets the file through and SQLite's own write fails."""
    with tmpfs(tmp_path / "card") as card:
        state = make_box(card / "state", min_free_mb=0)
        with running(state, inbox, edge_env) as box:
            box.start()
            wait_for(lambda: box.ready()[0] == 200, "the box to be ready")
            time.sleep(2)  # past the daemon's first probe write: the next is a minute away
            # an empty WAL, so the next transaction must grow it on a disk with no room
            conn = sqlite3.connect(state / "edge.db", timeout=30)
            try:
                assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            finally:
                conn.close()
            filler = fill(card)
            empty = drop(inbox, tmp_path / "staging", "empty.jpg", b"")  # passes the guard
            wait_for(lambda: "disk" in box.alerts(), "the disk alert on /metrics")
            time.sleep(2)
            assert box.alive() and empty.exists()
            filler.unlink()
            wait_for(lambda: not empty.exists(), "the file to be taken", timeout=30)
            assert "disk" not in box.alerts()
            log = box.stop()
        assert "is full" in log and "taking scans again" in log
        store = Store.open(state)
        try:
            assert [q["reason"] for q in store.list_quarantine()] == ["empty"]
        finally:
            store.close()


# -- a card that turns read-only ---------------------------------------------------------


def test_a_filesystem_turned_read_only_is_named_and_survived(
    tmp_path: Path, inbox: Path, edge_env: dict[str, str]
) -> None:
    with ext4(tmp_path / "card") as card:
        state = make_box(card / "state", min_free_mb=RESERVE_MB)
        with running(state, inbox, edge_env) as box:
            box.start()
            wait_for(lambda: box.ready()[0] == 200, "the box to be ready")
            fail_card(card)
            scan = drop(inbox, tmp_path / "staging", "scan_0001.jpg", cover(tmp_path))
            wait_for(lambda: "storage" in box.alerts(), "the storage alert on /metrics")
            status, ready = box.ready()
            assert status == 503 and "read-only" in ready["alerts"]["storage"]
            time.sleep(3)
            assert box.alive() and scan.exists()

            report = doctor(state)
            assert report.returncode == 1
            found = problems(report)
            assert found["disk"].startswith("[fail]") and "read-only" in found["disk"]
            assert "is damaged" not in report.stdout

            once = edge(
                "capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0"
            )
            assert once.returncode != 0 and "Traceback" not in once.stderr
            assert "read-only" in once.stderr.strip().splitlines()[-1]
            assert scan.exists()

            # a restart cannot open the database for writing: it waits, alarmed
            box.stop()
            box.start()
            wait_for(lambda: "storage" in box.ready()[1]["alerts"], "the alert after a restart")
            time.sleep(3)
            assert box.alive() and scan.exists()
            box.stop()


# -- a damaged database ------------------------------------------------------------------


def _damage(state: Path, what: str) -> None:
    """Overwrite pages of the database file as a failing card would, at the named spot."""
    db = state / "edge.db"
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        roots = dict(conn.execute("SELECT name, rootpage FROM sqlite_master WHERE rootpage > 0"))
    finally:
        conn.close()
    pages = {"header": [1], "meta": [roots["meta"]], "events": [roots["events"]]}[what]
    with open(db, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * page_size)
            fh.write(b"\x5a" * page_size)


@pytest.mark.parametrize("what", ["header", "meta", "events"])
def test_doctor_reports_a_damaged_database_and_never_crashes(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str], what: str
) -> None:
    for seed in range(2):
        samples.write_job(inbox / f"job{seed}", [DossierSpec(CODE, 2)], "jpeg", dpi=100, seed=seed)
    args = ("--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0")
    assert edge("capture", *args, env=edge_env).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(state, copy)
    _damage(copy, what)

    report = doctor(copy)
    assert report.returncode == 1
    found = problems(report)
    assert list(found) == ["database"], report.stdout  # one line for the one problem
    assert "is damaged" in found["database"] and "keep a copy" in found["database"]

    if what != "events":  # a damaged table no start reads lets the daemon start and alarm
        run = edge("run", "--state", str(copy), "--inbox", str(inbox), "--http-port", "0")
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines()[-1].startswith("edge: error: the database")


def test_doctor_reads_the_database_read_only_when_the_disk_is_full(
    tmp_path: Path, edge_env: dict[str, str]
) -> None:
    """A box stopped cleanly has no WAL files; on a full disk SQLite cannot create them."""
    with tmpfs(tmp_path / "card") as card:
        state = make_box(card / "state", min_free_mb=RESERVE_MB)
        filler = fill(card)
        report = doctor(state)
        assert report.returncode == 1
        found = problems(report)
        assert "is full" in found["disk"]
        assert found["database"].startswith("[warn] integrity ok (checked read-only")
        assert "is damaged" not in report.stdout
        filler.unlink()
        assert doctor(state).returncode == 0


# -- the sync thread ---------------------------------------------------------------------


def test_the_sync_thread_survives_a_database_error_and_says_so(
    state: Path, inbox: Path, edge_env: dict[str, str]
) -> None:
    store = Store.open(state)
    try:
        with store.transaction():
            store.put_settings(
                store.settings().with_changes(
                    sync_interval_seconds=0.2, sync_backoff_max_seconds=1.0
                )
            )
    finally:
        store.close()

    def rename(old: str, new: str) -> None:
        conn = sqlite3.connect(state / "edge.db", timeout=30)
        try:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
            conn.commit()
        finally:
            conn.close()

    with running(state, inbox, edge_env) as box:
        box.start()
        rename("sync_enrollment", "sync_enrollment_away")  # what the sync loop reads first
        wait_for(lambda: "sync" in box.alerts(), "the sync alert on /metrics")
        assert "no such table" in box.ready()[1]["alerts"]["sync"]
        time.sleep(2)
        assert box.alive()
        rename("sync_enrollment_away", "sync_enrollment")
        wait_for(lambda: "sync" not in box.alerts(), "the sync alert to clear", timeout=20)
        log = box.stop()
    assert "background sync failed" in log and "background sync works again" in log
