"""Power loss at every step of a release install: the box is on the old or the new, never neither.

Each case starts an install of 1.1 over 1.0 in a child process that SIGKILLs itself
at one named step (``EDGE_FAILPOINT``), exactly like a power cut there. Straight
after the kill, ``current`` must name a complete, runnable release; after the
recovery any later ``edge update`` runs first, the journal is idle, nothing half
made is left, and the next install works (unless the release was marked bad).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.update import UpdateError, bundle, sandbox
from edge.update.install import Installer
from tests.update_support import releases

pytestmark = pytest.mark.slow

OK = [sys.executable, "-c", "pass"]
FAIL = [sys.executable, "-c", "import sys; sys.exit('health check says no')"]

# step -> (health check passes?, release right after the kill, release after recovery)
STEPS = {
    "staging": (True, "1.0", "1.0"),
    "unpacked": (True, "1.0", "1.0"),
    "staged": (True, "1.0", "1.0"),
    "switching": (True, "1.0", "1.0"),
    "switched": (True, "1.1", "1.0"),
    "restarted": (True, "1.1", "1.0"),
    "checked": (True, "1.1", "1.0"),
    "confirmed": (True, "1.1", "1.1"),
    "rolling-back": (False, "1.1", "1.0"),
    "rolled-back": (False, "1.0", "1.0"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "opt"
    Installer(root, python=sys.executable).bootstrap(releases()["1.0"])
    return root


def _installer(root: Path, healthy: bool = True) -> Installer:
    return Installer(root, restart=OK, health=OK if healthy else FAIL, python=sys.executable)


def _current(root: Path) -> str:
    """The release ``current`` names, checked complete and runnable."""
    target = (root / "current").resolve(strict=True)
    assert target.parent == (root / "releases").resolve()
    release = json.loads((target / bundle.RELEASE_FILE).read_text())
    done = subprocess.run(
        [str(root / "current" / "bin" / "edge"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"edge {release['version']}"
    return release["version"]


@pytest.mark.parametrize("step", list(STEPS))
def test_power_loss_at_every_install_step_leaves_old_or_new(
    tmp_path: Path, template: Path, step: str
) -> None:
    healthy, after_kill, after_recovery = STEPS[step]
    root = tmp_path / "opt"
    shutil.copytree(template, root, symlinks=True)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from edge.update.install import Installer\n"
        f"installer = Installer(Path({str(root)!r}), restart={OK!r}, "
        f"health={(OK if healthy else FAIL)!r}, python=sys.executable)\n"
        f"print(installer.install(Path({str(releases()['1.1'])!r}), '1.1').status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "EDGE_FAILPOINT": step},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, (done.stdout, done.stderr)
    assert _current(root) == after_kill

    _installer(root, healthy).recover()
    assert _current(root) == after_recovery
    journal = json.loads((root / "install-journal.json").read_text())
    assert journal["phase"] == "idle"
    leftovers = [p.name for p in (root / "releases").iterdir() if p.name.startswith(".")]
    assert leftovers == []

    outcome = _installer(root).install(releases()["1.1"], "1.1")
    if "1.1" in journal["bad"]:
        assert outcome.status == "skipped" and "failed on this box before" in outcome.reason
        assert _current(root) == "1.0"
    else:
        assert outcome.status in ("installed", "skipped"), outcome
        assert _current(root) == "1.1"


def test_a_failed_health_check_rolls_back_and_marks_the_release_bad(
    tmp_path: Path, template: Path
) -> None:
    root = tmp_path / "opt"
    shutil.copytree(template, root, symlinks=True)
    outcome = _installer(root, healthy=False).install(releases()["1.1"], "1.1")
    assert outcome.status == "rolled-back"
    assert "health check says no" in outcome.reason
    assert _current(root) == "1.0"
    assert _installer(root).install(releases()["1.1"], "1.1").status == "skipped"
    retried = Installer(root, restart=OK, health=OK, python=sys.executable).install(
        releases()["1.1"], "1.1", retry_bad=True
    )
    assert retried.status == "installed"
    assert _current(root) == "1.1"
    # a downgrade is never installed, and only current and previous are kept
    assert _installer(root).install(releases()["1.0"], "1.0").status == "skipped"
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["1.0", "1.1"]


def test_install_is_refused_on_a_root_that_is_not_managed(tmp_path: Path) -> None:
    with pytest.raises(UpdateError, match="not managed"):
        _installer(tmp_path / "empty").install(releases()["1.1"], "1.1")


TAMPER = """
import json, sys
from pathlib import Path
root, state = Path(sys.argv[1]), Path(sys.argv[2])
tries = {
    "journal": lambda: (root / "install-journal.json").write_text("{}"),
    "previous release": lambda: (root / "releases" / "1.0" / "planted.py").write_text("x"),
    "own files": lambda: (root / "releases" / "1.1" / "release.json").write_text("{}"),
    "current": lambda: (root / "current").unlink(),
}
outcome = {}
for name, attempt in tries.items():
    try:
        attempt()
        outcome[name] = "written"
    except OSError as exc:
        outcome[name] = type(exc).__name__
(state / "tamper.json").write_text(json.dumps(outcome))
"""


def test_the_self_test_cannot_write_the_release_root(tmp_path: Path, template: Path) -> None:
    """Issue 16, item 10: the self-test is the new release's code (a .pth in one of its
    wheels runs in it); it may write the box's state, never the previous release, the
    journal or its own files."""
    try:
        sandbox.abi()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(f"this kernel has no Landlock, so the self-test runs unfenced: {exc}")
    root = tmp_path / "opt"
    shutil.copytree(template, root, symlinks=True)
    state = tmp_path / "state"
    state.mkdir()
    journal = (root / "install-journal.json").read_text()
    tamper = [sys.executable, "-c", TAMPER, str(root), str(state)]
    installer = Installer(root, state, health=tamper, python=sys.executable)
    outcome = installer.install(releases()["1.1"], "1.1")
    assert outcome.status == "installed", outcome
    assert json.loads((state / "tamper.json").read_text()) == {
        "journal": "PermissionError",
        "previous release": "PermissionError",
        "own files": "PermissionError",
        "current": "PermissionError",
    }
    assert not (root / "releases" / "1.0" / "planted.py").exists()
    assert json.loads((root / "releases" / "1.1" / "release.json").read_text())["version"] == "1.1"
    after = json.loads((root / "install-journal.json").read_text())
    assert after != json.loads(journal) and after["current"] == "1.1"
    assert after["fence"].startswith("Landlock ABI")
    assert _current(root) == "1.1"


@pytest.mark.parametrize("unit", ["edge-update.service", "edge-update-usb.service"])
def test_updater_units_let_the_fence_be_built(unit: str) -> None:
    text = (Path(__file__).resolve().parent.parent / "systemd" / unit).read_text()
    assert "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self" in (
        text
    )
