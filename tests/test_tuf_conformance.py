"""The update client against the TUF project's own conformance suite (tuf-conformance).

The suite is data shared beside the project (``../shared/tuf-conformance``, unchanged,
MIT; its ORIGIN.md): it is installed into a throwaway virtual environment with its own
pinned dependencies from PyPI (uv, kept under ``.tools/`` and reused while the suite's
``pyproject.toml`` is unchanged) and runs against ``tests/tuf_conformance/edge-client``,
which drives ``edge.update.client`` the way a box does. A change to the time floor, the
cache or delegations that breaks conformance fails here; a test the client is expected
to fail is listed, with its reason, in ``edge-client.xfails``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT.parent / "shared" / "tuf-conformance"
HERE = ROOT / "tests" / "tuf_conformance"
ENTRYPOINT = HERE / "edge-client"
UV = ROOT / ".tools" / "bin" / "uv"
VENV = ROOT / ".tools" / "tuf-conformance"
SETUP = b"2"
"""Bumped when the way the environment is made changes, so existing ones are made again."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _suite_venv() -> Path:
    """The suite's throwaway environment, made again only when the suite's pins change."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run 'make setup' (the suite's environment is made with uv)")
    pins = (SUITE / "pyproject.toml").read_bytes()
    stamp = hashlib.sha256(SETUP + pins).hexdigest()
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(exist_ok=True)
    with open(VENV.parent / ".tuf-conformance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once make it once
        marker = VENV / ".installed"
        if python.exists() and marker.exists() and marker.read_text() == stamp:
            return python
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        base = getattr(sys, "_base_executable", sys.executable)
        # compiled now: the suite runs with -B, so nothing would ever be cached later
        install = ["pip", "install", "-q", "--compile-bytecode", "--python", str(python)]
        steps = [
            [str(UV), "venv", "-q", "--clear", "--python", base, str(VENV)],
            [str(UV), *install, str(SUITE)],
        ]
        for step in steps:
            done = subprocess.run(step, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(
                    f"could not set up the suite's environment ({' '.join(step[:3])}): "
                    f"{done.stderr.strip()[-2000:]}"
                )
        marker.write_text(stamp)
    return python


@contextlib.contextmanager
def _forkserver(socket_path: Path) -> Iterator[None]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "forkserver.py"), "serve", str(socket_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", "the client's fork server did not start"
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_update_client_passes_tuf_conformance(tmp_path: Path) -> None:
    if not SUITE.is_dir():
        pytest.skip(
            f"tuf-conformance is not at {SUITE} (../shared/tuf-conformance from the project "
            "root): the conformance run needs that checkout"
        )
    python = _suite_venv()
    report = tmp_path / "report.json"
    socket_path = tmp_path / "client.sock"
    env = {
        **os.environ,
        "PATH": f"{HERE / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "EDGE_CONFORMANCE_PYTHON": sys.executable,
        "EDGE_CONFORMANCE_SOCKET": str(socket_path),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [
        str(python),
        "-B",  # the suite is shared and stays unchanged: no bytecode or cache written into it
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        f"--rootdir={tmp_path}",
        str(SUITE / "tuf_conformance"),
        # one token: pytest would otherwise take the path for a test folder, and load
        # this project's conftest.py while looking for the suite's
        f"--entrypoint={ENTRYPOINT}",
        "--json-report",
        f"--json-report-file={report}",
    ]
    started = time.monotonic()
    with _forkserver(socket_path):
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
    elapsed = time.monotonic() - started
    output = (done.stdout + done.stderr)[-6000:]
    assert report.exists(), f"the suite did not run:\n{output}"
    summary = json.loads(report.read_text())["summary"]
    print(f"tuf-conformance: {summary} in {elapsed:.0f} s")
    assert done.returncode == 0, f"tuf-conformance failed: {summary}\n{output}"
    assert summary.get("passed", 0) + summary.get("xfailed", 0) == summary["total"], summary
    assert summary["total"] >= 100, f"the suite collected only {summary['total']} tests"
