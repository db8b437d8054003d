"""Shared pieces of the update tests: real wheels of this project, boxes, a served repository.

Releases are real wheels of this very project with the version changed (built with
``uv build`` when uv is at hand, else written by a small PEP 427 writer), bundled
without their dependency wheels (``allow_incomplete``): the launcher's interpreter
is this virtualenv's, which has them, so a test install takes a second, not minutes.
"""

from __future__ import annotations

import atexit
import base64
import csv
import functools
import hashlib
import http.server
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from edge.provision import provision
from edge.update import bundle
from edge.update.install import Installer
from edge.update.selftest import read_heartbeat

PROJECT = Path(__file__).resolve().parent.parent
PASSWORD = "mat-khau-thu-nghiem"
RESTART = Path(__file__).resolve().parent / "update_restart.py"
SABOTAGE = '\n\ndef cover_page(*args, **kwargs):\n    raise RuntimeError("broken release")\n'
HANG = """

import time as _hang_time

_hang_from = _hang_time.monotonic() + {after}
_tick_before_the_hang = Daemon._tick


def _tick_that_hangs(self, updates):
    # the main loop of a release that starts well and hangs soon after (issue 16, item 6)
    if _hang_time.monotonic() > _hang_from:
        _hang_time.sleep(3600)
    return _tick_before_the_hang(self, updates)


Daemon._tick = _tick_that_hangs
"""


def _uv() -> str | None:
    for candidate in (
        PROJECT / ".tools" / "bin" / "uv",
        Path(shutil.which("uv") or "/nonexistent"),
        Path("/tmp/uvb/v/bin/uv"),
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def build_wheel(
    version: str, out: Path, *, sabotage: bool = False, hang_after: float | None = None
) -> Path:
    """A wheel of this project at ``version`` (optionally with a broken capture, or a
    daemon whose main loop hangs ``hang_after`` seconds after it starts)."""
    src = out / f"src-{version}"
    shutil.copytree(
        PROJECT / "edge", src / "edge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    pyproject = (PROJECT / "pyproject.toml").read_text("utf-8")
    pyproject = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject, count=1)
    (src / "pyproject.toml").write_text(pyproject, "utf-8")
    shutil.copy(PROJECT / "README.md", src / "README.md")
    init = src / "edge" / "__init__.py"
    init.write_text(
        re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text("utf-8")),
        "utf-8",
    )
    if sabotage:
        with (src / "edge" / "samples.py").open("a", encoding="utf-8") as fh:
            fh.write(SABOTAGE)
    if hang_after is not None:
        with (src / "edge" / "daemon.py").open("a", encoding="utf-8") as fh:
            fh.write(HANG.format(after=hang_after))
    wheels = out / f"wheels-{version}"
    uv = _uv()
    if uv is not None:
        for extra in (["--offline"], []):
            done = subprocess.run(
                [uv, "build", "--wheel", *extra, "-o", str(wheels), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                return next(wheels.glob("*.whl"))
    return _write_wheel(src, version, wheels)


def _write_wheel(src: Path, version: str, out: Path) -> Path:
    """PEP 427 by hand, for machines without uv: the same files hatchling would write."""
    meta = tomllib.loads((src / "pyproject.toml").read_text("utf-8"))["project"]
    info = f"commune_edge-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((src / "edge").rglob("*")):
        if path.is_file():
            files[path.relative_to(src).as_posix()] = path.read_bytes()
    metadata = [f"Metadata-Version: 2.1\nName: commune-edge\nVersion: {version}"]
    metadata += [f"Requires-Dist: {dep}" for dep in meta["dependencies"]]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
    files[f"{info}/WHEEL"] += b"Tag: py3-none-any\n"
    scripts = "".join(f"{k} = {v}\n" for k, v in meta["scripts"].items())
    files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = record.getvalue().encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"commune_edge-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@functools.cache
def releases() -> dict[str, Path]:
    """Wheels and bundles of 1.0, 1.1 and a broken 1.2, built once per test run."""
    out = Path(tempfile.mkdtemp(prefix="edge-releases-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    built: dict[str, Path] = {}
    for version, broken in (("1.0", False), ("1.1", False), ("1.2", True)):
        wheel = build_wheel(version, out, sabotage=broken)
        built[f"wheels-{version}"] = wheel.parent
        built[version] = bundle_for(wheel, out)
    return built


@functools.cache
def hanging_release(version: str = "1.3", after: float = 4.0) -> Path:
    """Wheels of a release whose daemon comes up, passes its self-test, then hangs."""
    out = Path(tempfile.mkdtemp(prefix="edge-hanging-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return build_wheel(version, out, hang_after=after).parent


def bundle_for(wheel: Path, out: Path) -> Path:
    version = bundle.Wheel.parse(wheel).version
    target = out / f"commune-edge-{version}.tar"
    bundle.build(wheel.parent, version, target, allow_incomplete=True)
    return target


def provisioned(base: Path, trust_root: Path, office: str = "H29.01") -> Path:
    """A box's state folder (no release root, no daemon) that trusts ``trust_root``."""
    state = base / f"box-{office}"
    provision(state, office=office, clerk="lan", password=PASSWORD, trust_root=trust_root)
    return state


def edge_cmd() -> list[str]:
    return [sys.executable, "-m", "edge.cli"]


def run_edge(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    full_env = {**os.environ, "EDGE_PASSWORD": PASSWORD, **(env or {})}
    return subprocess.run(
        [*edge_cmd(), *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


class Box:
    """A provisioned box with an install root, an inbox and (once started) a daemon."""

    def __init__(self, base: Path, office: str, trust_root: Path, first: Path) -> None:
        self.base = base
        self.state = base / "state"
        self.inbox = base / "inbox"
        self.root = base / "opt"
        self.inbox.mkdir(parents=True)
        provision(self.state, office=office, clerk="lan", password=PASSWORD, trust_root=trust_root)
        Installer(self.root, python=sys.executable).bootstrap(first)
        self.log = base / "daemon.log"

    @property
    def restart(self) -> list[str]:
        return [
            sys.executable,
            str(RESTART),
            "--state",
            str(self.state),
            "--inbox",
            str(self.inbox),
            "--root",
            str(self.root),
            "--log",
            str(self.log),
        ]

    def start_daemon(self, version: str, timeout: float = 60) -> None:
        subprocess.run(self.restart, check=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            beat = read_heartbeat(self.state)
            if beat and beat.get("version") == version:
                return
            time.sleep(0.1)
        raise AssertionError(f"daemon {version} did not start: {self.log.read_text()[-2000:]}")

    def edge(self, *args: str, timeout: float = 180):
        """Run this box's own installed release, as systemd would."""
        return subprocess.run(
            [str(self.root / "current" / "bin" / "edge"), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "EDGE_PASSWORD": PASSWORD, "EDGE_RELEASE_PYTHON": sys.executable},
            timeout=timeout,
        )

    def stop(self) -> None:
        pids = self.root / "daemons.pids"
        if not pids.exists():
            return
        for line in pids.read_text().split():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(line), signal.SIGKILL)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``folder`` (what central does for /updates)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
