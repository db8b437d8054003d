"""Signed fleet updates end to end: regional IT publishes, boxes on 1.0 take 1.1.

Everything runs as it would on a box: the admin steps through ``edge admin``,
the update through the box's own installed 1.0 launcher (``current/bin/edge
update``), a real daemon restarted by a restart command and health-checked,
central's own receiver (Litestar under uvicorn) serving /updates, and a folder
for the USB stick. Regional IT publishes to central over HTTP
(``edge admin publish --central URL``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge import samples
from edge.store import Store
from edge.update.selftest import read_heartbeat
from tests.syncutil import CentralServer
from tests.update_support import Box, hanging_release, releases, run_edge

pytestmark = pytest.mark.slow


def _events(state: Path) -> list[str]:
    store = Store.open(state)
    try:
        return [e.type for e in store.events()]
    finally:
        store.close()


def _admin(*args: str) -> None:
    done = run_edge("admin", *args)
    assert done.returncode == 0, done.stderr


def _update(box: Box, source: str, timeout: float = 120, probation: float = 6):
    return box.edge(
        "update",
        "--state",
        str(box.state),
        "--once",
        "--from",
        source,
        "--root",
        str(box.root),
        "--restart",
        " ".join(box.restart),
        "--health-timeout",
        "60",
        "--probation",
        str(probation),
        timeout=timeout,
    )


def _config(box: Box) -> dict:
    done = box.edge("config", "--state", str(box.state), "--json", "--root", str(box.root))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    built = releases()
    repo = tmp_path / "repo"
    _admin("init", "--repo", str(repo), "--threshold", "2", "--root-keys", "3")
    _admin("delegate", "--repo", str(repo), "--province", "H29")
    _admin(
        "release",
        "--repo",
        str(repo),
        "--version",
        "1.1",
        "--wheels",
        str(built["wheels-1.1"]),
        "--allow-incomplete",
    )
    _admin("config", "--repo", str(repo), "--set", "min_dpi=250")
    _admin("config", "--repo", str(repo), "--office", "H29", "--set", "job_idle_seconds=60")
    return repo


def test_boxes_on_1_0_take_release_and_config_over_http_and_from_usb(
    tmp_path: Path, repo: Path
) -> None:
    built = releases()
    trust = repo / "metadata" / "1.root.json"
    stick = tmp_path / "stick"
    stick.mkdir()
    _admin("usb", "--repo", str(repo), "--out", str(stick))

    online = Box(tmp_path / "online", "H29.01", trust, built["1.0"])
    offline = Box(tmp_path / "offline", "H29.07", trust, built["1.0"])
    try:
        for box in (online, offline):
            box.start_daemon("1.0")
            assert _config(box)["version"] == "1.0"
        with CentralServer(tmp_path / "central") as central:
            data = str(central.central.data)
            pinned = run_edge("central", "trust-updates", "--data", data, "--root", str(trust))
            assert pinned.returncode == 0, pinned.stderr
            # regional IT publishes over HTTP; central verifies it as a box would
            _admin("publish", "--repo", str(repo), "--central", central.url)
            done = _update(online, f"{central.url}/updates")
        assert done.returncode == 0, done.stderr
        assert "release 1.1 installed" in done.stdout
        done = _update(offline, str(stick))
        assert done.returncode == 0, done.stderr

        for box in (online, offline):
            config = _config(box)
            assert config["version"] == "1.1"
            assert config["release"]["daemon"] == "1.1"
            assert config["settings"]["min_dpi"] == 250
            assert config["settings"]["job_idle_seconds"] == 60
            assert config["sources"] == {
                "min_dpi": "fleet/config.json",
                "job_idle_seconds": "o/H29/config.json",
            }
            assert config["metadata"]["roles"]["province-H29"] >= 1
            beat = read_heartbeat(box.state)
            assert beat["version"] == "1.1"
            # confirmed only after its daemon kept beating through the probation
            assert beat["beats"] >= 3, beat
            assert not (box.state / "run" / "probation").exists()
            types = _events(box.state)
            assert {"update.applied", "release.installing", "release.installed"} <= set(types)

        # a second check finds nothing new and downloads nothing but the timestamp
        done = _update(offline, str(stick))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("up to date")
        assert _events(offline.state)[-1] == "update.checked"
    finally:
        online.stop()
        offline.stop()


def test_release_failing_its_health_check_is_rolled_back_and_the_box_keeps_capturing(
    tmp_path: Path, repo: Path
) -> None:
    built = releases()
    _admin(
        "release",
        "--repo",
        str(repo),
        "--version",
        "1.2",
        "--wheels",
        str(built["wheels-1.2"]),
        "--allow-incomplete",
    )
    stick = tmp_path / "stick"
    stick.mkdir()
    _admin("usb", "--repo", str(repo), "--out", str(stick))
    box = Box(tmp_path / "box", "H29.01", repo / "metadata" / "1.root.json", built["1.1"])
    try:
        box.start_daemon("1.1")
        done = _update(box, str(stick))
        assert done.returncode == 1
        line = done.stderr.strip().splitlines()[-1]
        assert line.startswith("edge: error: update failed: the self-test of 1.2 failed")
        assert "broken release" in line
        config = _config(box)
        assert config["version"] == "1.1"
        assert config["release"]["bad"] == ["1.2"]
        assert (box.root / "current").resolve() == (box.root / "releases" / "1.1").resolve()
        # the configuration that came with it was verified and applied all the same
        assert config["settings"]["min_dpi"] == 250
        types = _events(box.state)
        assert "release.rolled_back" in types

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and read_heartbeat(box.state)["version"] != "1.1":
            time.sleep(0.1)
        code = samples.sample_codes(1, seed=51)[0]
        samples.save_jpeg(samples.cover_page(code, dpi=200), box.inbox / "after.jpg", dpi=200)
        while time.monotonic() < deadline:
            store = Store.open(box.state)
            try:
                codes = [d["code"] for d in store.list_dossiers()]
            finally:
                store.close()
            if code in codes:
                break
            time.sleep(0.2)
        assert code in codes, (box.log.read_text()[-3000:], codes)

        # the failed release is not retried on the next check
        done = _update(box, str(stick))
        assert done.returncode == 1
        assert "failed on this box before" in done.stderr
        assert _config(box)["version"] == "1.1"
    finally:
        box.stop()


def test_a_release_that_hangs_after_starting_is_rolled_back_during_its_probation(
    tmp_path: Path, repo: Path
) -> None:
    """Issue 16, item 6: 1.3 comes up, beats, passes its self-test, then its main loop
    hangs. It used to be confirmed at once and left hanging (under systemd, restarted by
    the watchdog for ever); now its probation sees the beat go stale and rolls back."""
    built = releases()
    _admin(
        "release",
        "--repo",
        str(repo),
        "--version",
        "1.3",
        "--wheels",
        str(hanging_release("1.3")),
        "--allow-incomplete",
    )
    stick = tmp_path / "stick"
    stick.mkdir()
    _admin("usb", "--repo", str(repo), "--out", str(stick))
    box = Box(tmp_path / "box", "H29.01", repo / "metadata" / "1.root.json", built["1.1"])
    try:
        box.start_daemon("1.1")
        done = _update(box, str(stick), probation=40, timeout=240)
        assert done.returncode == 1, done.stdout + done.stderr
        line = done.stderr.strip().splitlines()[-1]
        assert "the daemon of 1.3 stopped beating" in line, line
        assert "probation" in line
        config = _config(box)
        assert config["version"] == "1.1"
        assert config["release"]["bad"] == ["1.3"]
        assert config["release"]["phase"] == "idle"
        assert "release.rolled_back" in _events(box.state)
        assert read_heartbeat(box.state)["version"] == "1.1"
        assert not (box.state / "run" / "probation").exists()

        # marked bad: the next check does not install it again
        done = _update(box, str(stick))
        assert done.returncode == 1
        assert "failed on this box before" in done.stderr
        assert _config(box)["version"] == "1.1"
    finally:
        box.stop()
