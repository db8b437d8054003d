"""A release with every dependency wheel, taken by a box with no network and health-checked.

The other update tests bundle only this project's wheel and let the test
virtualenv supply numpy, pdfium and the rest, which keeps them fast. This one
ships what regional IT ships: ``image-build/bundle`` downloads every locked
dependency wheel (checked against uv.lock's hashes), ``edge admin release``
bundles them without ``--allow-incomplete``, and a box on 1.0 takes the release
from a stick inside a network namespace of its own (loopback only), so nothing
can be fetched. The new release's launchers run Python with ``-IS``: the
restarted daemon and the self-test that judge it see the standard library and
the bundle's wheels, never this machine's site-packages.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.update_support import PROJECT, Box, build_wheel, releases, run_edge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every locked dependency wheel for this machine plus this project's wheel at 1.1."""
    out = tmp_path_factory.mktemp("full-bundle")
    done = subprocess.run(
        [str(PROJECT / "image-build" / "bundle"), str(out / "image")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "UV": str(PROJECT / ".tools" / "bin" / "uv")},
    )
    assert done.returncode == 0, f"image-build/bundle failed: {done.stderr[-2000:]}"
    wheels = out / "wheels"
    wheels.mkdir()
    for wheel in (out / "image" / "wheels").glob("*.whl"):
        if not wheel.name.startswith("commune_edge-"):
            shutil.copy2(wheel, wheels / wheel.name)
    shutil.copy2(build_wheel("1.1", out), wheels)
    return wheels


def _offline(*command: str) -> list[str]:
    """``command`` inside a new network namespace whose only interface is loopback."""
    inner = f"ip link set lo up && exec {shlex.join(command)}"
    return ["unshare", "--net", "sh", "-c", inner]


def test_a_complete_release_installs_and_runs_with_no_network(
    tmp_path: Path, full_wheels: Path
) -> None:
    repo = tmp_path / "repo"
    (tmp_path / "stick").mkdir()
    for args in (
        ("init", "--repo", str(repo)),
        ("release", "--repo", str(repo), "--version", "1.1", "--wheels", str(full_wheels)),
        ("usb", "--repo", str(repo), "--out", str(tmp_path / "stick")),
    ):
        done = run_edge("admin", *args)
        assert done.returncode == 0, done.stderr

    # what the release's launchers will run on: this interpreter without any site-packages
    bare = subprocess.run([sys.executable, "-IS", "-c", "import numpy"], capture_output=True)
    assert bare.returncode != 0, "the interpreter must not find numpy by itself for this test"

    box = Box(tmp_path / "box", "H29.01", repo / "metadata" / "1.root.json", releases()["1.0"])
    try:
        box.start_daemon("1.0")
        update = [
            str(box.root / "current" / "bin" / "edge"),
            "update",
            "--state",
            str(box.state),
            "--once",
            "--from",
            str(tmp_path / "stick" / "commune-edge-updates"),
            "--root",
            str(box.root),
            "--restart",
            " ".join(box.restart),
            "--health-timeout",
            "90",
            "--probation",
            "10",
        ]
        done = subprocess.run(
            _offline(*update),
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "EDGE_RELEASE_PYTHON": sys.executable},
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert "release 1.1 installed" in done.stdout

        release = box.root / "releases" / "1.1"
        facts = json.loads((release / "release.json").read_text())
        assert facts["isolated"] is True
        assert facts["wheels"] >= 60
        assert (box.root / "current").resolve() == release.resolve()
        assert (release / "bin" / "edge").read_text().startswith(f"#!{sys.executable} -IS\n")
        for package in ("numpy", "pypdfium2", "zxingcpp", "litestar", "tuf", "textual"):
            assert any((release / "site").glob(f"{package}*")), package

        heartbeat = json.loads((box.state / "run" / "daemon.json").read_text())
        assert heartbeat["version"] == "1.1"
        assert heartbeat["release"] == str(release.resolve())

        # the isolated release captures a generated page and checks its store, offline
        selftest = subprocess.run(
            _offline(
                str(box.root / "current" / "bin" / "edge"), "selftest", "--state", str(box.state)
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert selftest.returncode == 0, selftest.stderr
    finally:
        box.stop()
