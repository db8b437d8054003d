"""Helpers for the sync tests and benchmark: a central on loopback, boxes with scans."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from edge import samples
from edge.daemon import Daemon
from edge.provision import provision
from edge.store import Store
from edge.sync.central.app import asgi
from edge.sync.central.receiver import Central
from edge.sync.client import Policy

PASSWORD = "mat-khau-thu-nghiem"
FAST = Policy(attempts=8, base=0.01, cap=0.05, round_seconds=120, chunk_start=64 << 10)


class CentralServer:
    """``Central`` served by uvicorn on a free 127.0.0.1 port, in a thread."""

    def __init__(
        self,
        data: Path,
        db_url: str | None = None,
        *,
        central: Central | None = None,
        limit: int = 256,
    ) -> None:
        self.central = central or Central(data, db_url)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            asgi(self.central, limit),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CentralServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("central did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.central.close()


def make_box(
    folder: Path,
    *,
    dossiers: int = 2,
    pages: int = 1,
    seed: int = 1,
    fmt: str = "jpeg",
    central_key: Path | None = None,
    office: str = "H29.01",
) -> Path:
    """A provisioned box with ``dossiers`` captured dossiers (cover + ``pages`` pages each)."""
    state = folder / "state"
    provision(state, office=office, clerk="lan", password=PASSWORD, central_key=central_key)
    capture(state, folder / "inbox", dossiers=dossiers, pages=pages, seed=seed, fmt=fmt)
    return state


def capture(
    state: Path,
    inbox: Path,
    *,
    dossiers: int = 1,
    pages: int = 1,
    seed: int = 2,
    fmt: str = "jpeg",
    name: str = "scan",
) -> list[str]:
    inbox.mkdir(parents=True, exist_ok=True)
    codes = samples.sample_codes(dossiers, seed=seed)
    samples.write_job(
        inbox,
        [samples.DossierSpec(c, pages) for c in codes],
        fmt,
        seed=seed,
        name=name,  # type: ignore[arg-type]
    )
    daemon = Daemon(state, inbox, {"settle_seconds": 0})
    try:
        daemon.run_once()
    finally:
        daemon.close()
    return codes


def box_dossiers(state: Path) -> list[dict]:
    store = Store.open(state)
    try:
        return store.list_dossiers()
    finally:
        store.close()


def box_chain(state: Path) -> list[tuple[int, str]]:
    store = Store.open(state)
    try:
        return [(e.seq, e.hash) for e in store.events()]
    finally:
        store.close()


def central_chain(central: Central, device_id: str) -> list[tuple[int, str]]:
    return [(e.seq, e.hash) for e in central.events_of(device_id)]


def clone_box(template: Path, target: Path) -> Path:
    """A copy of a box with its own device key: another device holding the same records."""
    import base64
    import json
    import shutil

    from edge.vault import new_signing_keypair

    shutil.copytree(template, target)
    ring = json.loads((target / "keyring.json").read_text())
    private, public = new_signing_keypair()
    ring["device_private"] = base64.b64encode(private).decode()
    ring["device_public"] = base64.b64encode(public).decode()
    (target / "keyring.json").write_text(json.dumps(ring))
    return target


class ServeProcess:
    """``edge central serve`` as its own process (the way production runs it)."""

    def __init__(self, data: Path, db_url: str | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        command = [
            sys.executable,
            "-m",
            "edge.cli",
            "central",
            "serve",
            "--data",
            str(data),
            "--port",
            str(self.port),
        ]
        if db_url:
            command += ["--db", db_url]
        # Output goes to a file, not a pipe nobody reads: a busy receiver's log lines would
        # fill a pipe and stall it. ``output()`` shows it when a test needs to say why.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        """What the receiver printed so far, and how it ended if it did."""
        self.log.flush()
        self.log.seek(0)
        ended = self.proc.poll()
        return (f"[exited {ended}] " if ended is not None else "") + self.log.read()[-4000:]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeProcess:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"central exited: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("central did not start")

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.log.close()
