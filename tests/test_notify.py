"""The daemon speaks systemd's notify protocol: READY, WATCHDOG pings, STATUS, STOPPING.

PID 1 on a test machine is not systemd, so the test plays systemd's part: it binds the
datagram socket, points ``NOTIFY_SOCKET`` at it, starts ``edge run`` as a real process
and reads what arrives. The same daemon is also run under the seccomp rules of
``MemoryDenyWriteExecute=yes`` (tests/mdwe.py) over every page format, because that unit
setting would kill a box whose decoders needed writable code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge import samples
from edge.notify import notify, watchdog_period
from edge.samples import DossierSpec
from tests import badfiles

EDGE = [sys.executable, "-m", "edge.cli"]
MDWE = [sys.executable, str(Path(__file__).with_name("mdwe.py"))]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def received(sock: socket.socket, until: float) -> list[str]:
    messages: list[str] = []
    while time.monotonic() < until:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return messages


def drain_until(sock: socket.socket, want: str, timeout: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if want in messages[-1].splitlines():
            return messages
    raise AssertionError(f"{want} never arrived; got {messages}")


def run_cmd(state: Path, inbox: Path, *extra: str) -> list[str]:
    return [*EDGE, "run", "--state", str(state), "--inbox", str(inbox), *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_notify_reaches_path_and_abstract_sockets(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())
    assert notify("READY=1", "STATUS=hello")
    assert listener.recv(4096) == b"READY=1\nSTATUS=hello"

    name = f"edge-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1")
        assert abstract.recv(4096) == b"WATCHDOG=1"
    finally:
        abstract.close()

    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    assert not notify("READY=1")  # systemd gone: never an exception in the main loop


def test_watchdog_period_is_half_and_only_for_the_watched_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_period() == 60.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period() == 60.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_period() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_period() is None


def test_daemon_is_ready_pings_the_watchdog_and_says_stopping(
    state: Path, inbox: Path, tmp_path: Path, listener: socket.socket, edge_env: dict[str, str]
) -> None:
    env = {
        **edge_env,
        "NOTIFY_SOCKET": listener.getsockname(),
        "WATCHDOG_USEC": "600000",  # ping every 0.3 s
    }
    proc = subprocess.Popen(
        run_cmd(state, inbox, "--settle", "0.3", "--idle", "1", "--http-port", "0"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = drain_until(listener, "READY=1", timeout=30)
        assert any(line.startswith("STATUS=0 page(s)") for line in first[-1].splitlines())
        # an idle loop keeps pinging (one ping per 0.3 s): three within 3 s even when the
        # machine is busy enough to delay a few of them
        idle = received(listener, time.monotonic() + 3.0)
        pings = [m for m in idle if "WATCHDOG=1" in m.splitlines()]
        assert len(pings) >= 3, idle

        code = samples.sample_codes(1, seed=21)[0]
        job = samples.write_job(tmp_path / "s", [DossierSpec(code, 2)], "pdf", seed=21)
        os.replace(job.paths[0], inbox / "job.pdf")
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline and not any("3 page(s)" in s for s in statuses):
            for message in received(listener, time.monotonic() + 0.3):
                statuses += [line for line in message.splitlines() if line.startswith("STATUS=")]
        assert any(s.startswith("STATUS=3 page(s) from 1 file(s)") for s in statuses), statuses

        proc.send_signal(signal.SIGTERM)
        drain_until(listener, "STOPPING=1", timeout=10)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_watchdog_pings_only_when_asked(
    state: Path, inbox: Path, listener: socket.socket, edge_env: dict[str, str]
) -> None:
    env = {**edge_env, "NOTIFY_SOCKET": listener.getsockname()}
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen(
        [*EDGE, "run", "--state", str(state), "--inbox", str(inbox), "--http-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        drain_until(listener, "READY=1", timeout=30)
        later = received(listener, time.monotonic() + 1.5)
        assert not any("WATCHDOG=1" in m.splitlines() for m in later), later
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_mdwe_filter_refuses_writable_code() -> None:
    """The control: without it, a passing run below would prove nothing."""
    probe = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,"
        " ctypes.c_int, ctypes.c_long]\n"
        "address = libc.mmap(None, 4096, 7, 0x22, -1, 0)\n"
        "print(address == ctypes.c_void_p(-1).value, ctypes.get_errno())\n"
    )
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert free.stdout.split() == ["False", "0"]
    filtered = subprocess.run([*MDWE, sys.executable, "-c", probe], capture_output=True, text=True)
    assert filtered.stdout.split() == ["True", "1"], filtered.stderr  # MAP_FAILED, EPERM


def test_daemon_and_every_decoder_work_without_writable_code(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    codes = samples.sample_codes(4, seed=31)
    for index, fmt in enumerate(("jpeg", "pdf", "tiff", "png")):
        symbology = "code128" if index % 2 else "qr"
        samples.write_job(
            inbox / fmt, [DossierSpec(codes[index], 1, symbology=symbology)], fmt, seed=index
        )
    bad = badfiles.write_all(inbox / "bad")
    port = free_port()
    proc = subprocess.Popen(
        [*MDWE, *run_cmd(state, inbox, "--settle", "0.2", "--idle", "1", "--http-port", str(port))],
        env=edge_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(p.is_file() for p in inbox.rglob("*")):
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "edge_pages_captured_total 8.0" in metrics
    listing = subprocess.run(
        [*EDGE, "dossiers", "--state", str(state), "--json"], capture_output=True, text=True
    )
    found = {d["code"]: d["pages"] for d in json.loads(listing.stdout)}
    assert found == {codes[0]: 2, codes[1]: 2, codes[2]: 2, codes[3]: 2}
    assert f'edge_quarantine_files{{status="held"}} {float(len(bad))}' in metrics
    assert "Traceback" not in err
