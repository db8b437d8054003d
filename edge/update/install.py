"""Release install: beside the running one, one atomic switch, health check, rollback.

Layout under the release root (``/opt/edge`` on a box)::

    releases/<version>/      complete releases: site/ (unpacked wheels), bin/, release.json
    releases/.<v>.partial-…  a release being unpacked (never pointed at)
    current -> releases/<v>  what systemd runs (``current/bin/edge run …``)
    install-journal.json     the state machine below, replaced atomically
    install.lock             one installer at a time (flock; released by the kernel on death)

The invariant that makes power loss harmless: ``current`` is only ever replaced
by ``rename(2)`` of a fresh symlink, and only ever points at a folder that was
renamed into ``releases/`` after it was complete and synced. So at every instant
the box has the old release or the new one, never neither, and never a mix.

States (``phase`` in the journal), and what recovery does after a power cut:

    idle          nothing in flight
    staging       unpacking to a .partial folder      -> delete it, stay on old
    staged        new release complete, not switched  -> stay on old (folder reused)
    switching     about to swap ``current``           -> old: idle; new: as switched
    switched      on new, restarted, health pending   -> unconfirmed: roll back to old
    probation     healthy once, watched for a while   -> unconfirmed: roll back to old
    rolling-back  swapping ``current`` back to old    -> finish the swap, restart

Healthy once is not confirmed: a release whose main loop hangs a minute after start
passes the health check, and systemd's watchdog would then restart it for ever. So a
release that restarted the daemon stays on probation (``PROBATION_SECONDS``) and is
confirmed only if that same daemon process kept beating all along
(``selftest.watch_probation``).

A release that fails its health check or its probation is marked bad and never
retried automatically; one interrupted ``MAX_ATTEMPTS`` times before confirming is too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.durable import fsync_dir
from edge.update import UpdateError, bundle, version_key
from edge.update.sandbox import self_test_fence
from edge.update.selftest import (
    PROBATION,
    daemon_running,
    read_heartbeat,
    wait_for_daemon,
    watch_probation,
)

log = logging.getLogger("edge.update")

JOURNAL = "install-journal.json"
LOCK = "install.lock"
RELEASES = "releases"
CURRENT = "current"
MAX_ATTEMPTS = 3
DEFAULT_ROOT = Path("/opt/edge")
RESTART_REQUEST = Path("/run/edge-update/restart")
PROBATION_SECONDS = 360.0
"""How long a new release's daemon must keep beating before it is confirmed: longer than
edge.service's WatchdogSec (120 s) plus a restart, so a daemon that hangs soon after
start is seen hung, or restarted by the watchdog, within it."""
PROBATION_STALE_SECONDS = 120.0
"""A daemon on probation whose main loop has not come round for this long is hung: the
same judgement edge.service's WatchdogSec makes."""
MIN_STALE_SECONDS = 5.0


def default_restart() -> list[str]:
    """How to restart the box's services from here.

    Inside edge-update.service (which may not call systemctl itself) the updater
    asks by creating /run/edge-update/restart, which edge-restart.path watches; a
    privileged oneshot then restarts edge.service while the updater keeps running
    to health-check the result. Elsewhere, systemctl directly.
    """
    if RESTART_REQUEST.parent.is_dir():
        return ["touch", str(RESTART_REQUEST)]
    return ["systemctl", "restart", "edge.service"]


def failpoint(name: str) -> None:
    """Power-loss tests: die like a power cut at the named step (only when asked).

    ``EDGE_FAILPOINT=<step>`` in the environment makes the process SIGKILL itself
    there; without it this does nothing.
    """
    if os.environ.get("EDGE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class InstallOutcome:
    status: str  # installed | rolled-back | skipped | recovered
    version: str | None  # what the box runs now
    target: str | None  # the release this was about
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "target": self.target,
            "reason": self.reason,
        }


class Installer:
    """Installs releases under ``root`` and keeps the journal honest."""

    def __init__(
        self,
        root: Path,
        state: Path | None = None,
        *,
        restart: list[str] | None = None,
        health: list[str] | None = None,
        check_daemon: bool = True,
        probe: str | None = None,
        python: str | None = None,
        timeout: float = 120.0,
        probation: float = PROBATION_SECONDS,
    ) -> None:
        self.root = root
        self.state = state
        self.restart_command = restart
        self.health_command = health
        # without a restart no new daemon can appear: only the self-test can judge
        self.check_daemon = check_daemon and state is not None and bool(restart)
        self.probe = probe
        # the base interpreter, not the running release's venv: a new release must not
        # depend on a folder that pruning will delete
        self.python = python or getattr(sys, "_base_executable", None) or sys.executable
        self.timeout = timeout
        self.probation = probation
        self.fence = ""
        """How the last self-test was fenced (``sandbox``), for the journal."""
        # a short probation (tests) judges staleness on the same scale
        self.stale_after = max(MIN_STALE_SECONDS, min(PROBATION_STALE_SECONDS, probation / 2))

    # -- what is installed -----------------------------------------------------------

    @property
    def releases(self) -> Path:
        return self.root / RELEASES

    @property
    def managed(self) -> bool:
        return (self.root / CURRENT).is_symlink()

    def current_version(self) -> str | None:
        """The running release: its release.json, or for a release the image build
        installed as a plain venv (image-build/install-edge.sh), its folder name."""
        try:
            data = json.loads((self.root / CURRENT / bundle.RELEASE_FILE).read_text("utf-8"))
            return data.get("version")
        except FileNotFoundError:
            target = (self.root / CURRENT).resolve()
            if target.parent == self.releases.resolve() and (target / "bin" / "edge").exists():
                return target.name
            return None
        except (OSError, ValueError):
            return None

    def journal(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / JOURNAL).read_text("utf-8"))
        except FileNotFoundError:
            data = {}
        except ValueError as exc:
            raise UpdateError(f"{self.root / JOURNAL} is damaged ({exc})") from exc
        data.setdefault("phase", "idle")
        data.setdefault("attempts", {})
        data.setdefault("bad", [])
        return data

    def _write(self, journal: dict[str, Any], **changes: Any) -> dict[str, Any]:
        journal = {**journal, **changes}
        path = self.root / JOURNAL
        tmp = path.with_name(f".{JOURNAL}.{os.getpid()}")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(journal, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(self.root)
        return journal

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise UpdateError("another install is running on this box") from exc
            yield
        finally:
            os.close(fd)

    # -- steps ---------------------------------------------------------------------------

    def _point(self, version: str) -> None:
        """Swap ``current`` to a release with one rename: old or new, never neither."""
        tmp = self.root / f".{CURRENT}.new"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"{RELEASES}/{version}", tmp)
        os.replace(tmp, self.root / CURRENT)
        fsync_dir(self.root)

    def _stage(self, bundle_path: Path, version: str, journal: dict[str, Any]) -> dict[str, Any]:
        dest = self.releases / version
        if (dest / bundle.RELEASE_FILE).exists():
            return journal
        self.releases.mkdir(parents=True, exist_ok=True)
        partial = self.releases / f".{version}.partial-{secrets.token_hex(4)}"
        journal = self._write(journal, phase="staging", partial=partial.name)
        failpoint("staging")
        if dest.exists():
            self._trash(dest)
        free = shutil.disk_usage(self.root).free
        if free < 3 * bundle_path.stat().st_size:
            raise UpdateError(f"not enough disk space to unpack release {version}")
        try:
            bundle.unpack(bundle_path, partial, self.python)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            self._write(journal, phase="idle", partial=None)
            raise
        failpoint("unpacked")
        os.sync()
        os.rename(partial, dest)
        fsync_dir(self.releases)
        return journal

    def _trash(self, path: Path) -> None:
        trash = path.with_name(f".trash-{path.name}-{secrets.token_hex(4)}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _restart(self) -> None:
        if not self.restart_command:
            return
        try:
            done = subprocess.run(
                self.restart_command, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("restart command failed: %s", exc)
            return
        if done.returncode != 0:
            log.error("restart command exited %d: %s", done.returncode, done.stderr.strip())

    def _health(self, version: str, before: dict[str, Any] | None) -> str | None:
        """None when the new release is healthy; otherwise the reason, in one line."""
        deadline = time.monotonic() + self.timeout
        if self.check_daemon and self.state is not None:
            reason = wait_for_daemon(self.state, version, before, deadline)
            requested = str(RESTART_REQUEST) in (self.restart_command or [])
            if reason and requested and RESTART_REQUEST.exists():
                reason += " (nothing took the restart request: enable edge-restart.path)"
            if reason:
                return reason
        command = self.health_command
        if command is None:
            if self.state is None:
                return None
            command = [str(self.root / CURRENT / "bin" / "edge"), "selftest", "--state"]
            command.append(str(self.state))
            if self.probe:
                command += ["--probe", self.probe]
        remaining = max(1.0, deadline - time.monotonic())
        try:
            done = self._fenced(command, remaining)
        except subprocess.TimeoutExpired:
            return f"the self-test of {version} did not finish in time"
        except OSError as exc:
            return f"the self-test of {version} could not start ({exc})"
        if done.returncode != 0:
            lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
            return f"the self-test of {version} failed: {lines[-1]}"
        return None

    def _fenced(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run the new release's self-test with the least rights that work: it writes the
        box's state and its own scratch folder, never the release root (``sandbox``)."""
        with tempfile.TemporaryDirectory(prefix="edge-selftest-") as scratch:
            fence, self.fence = self_test_fence(self.state, Path(scratch))
            if fence is None:
                log.warning(
                    "the self-test runs %s: a bad release could write %s", self.fence, self.root
                )
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "TMPDIR": scratch},
                preexec_fn=fence,  # safe: the updater runs no threads
            )

    def _mark_probation(self, on: bool) -> None:
        """While the mark is there, the new daemon beats every second (``edge.update.schedule``)."""
        if not self.check_daemon or self.state is None:
            return
        mark = self.state / PROBATION
        if on:
            mark.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            mark.touch()
        else:
            with contextlib.suppress(FileNotFoundError):
                mark.unlink()

    def _probation(self, version: str) -> str | None:
        """None when the daemon that passed the health check is still running, beating,
        at the end of the probation; otherwise why not, in one line."""
        assert self.state is not None
        seen = read_heartbeat(self.state)
        if seen is None or seen.get("version") != version:
            return f"the daemon of {version} was gone right after its health check"
        until = time.monotonic() + self.probation
        return watch_probation(self.state, version, seen, until, self.stale_after)

    def _prune(self, keep: set[str]) -> None:
        for path in self.releases.iterdir():
            if path.name.startswith(".trash-"):
                shutil.rmtree(path, ignore_errors=True)
            elif not path.name.startswith(".") and path.name not in keep:
                self._trash(path)

    # -- the state machine -----------------------------------------------------------

    def bootstrap(self, bundle_path: Path) -> str:
        """First install on a fresh root (image build, tests): no previous release to keep."""
        with self._lock():
            if self.managed:
                raise UpdateError(f"{self.root} already has a current release")
            version = bundle.read_manifest(bundle_path)["version"]
            journal = self._stage(bundle_path, version, self.journal())
            self._point(version)
            self._write(journal, phase="idle", partial=None, current=version)
            return version

    def install(
        self, bundle_path: Path, version: str, *, retry_bad: bool = False
    ) -> InstallOutcome:
        with self._lock():
            self._recover()
            journal = self.journal()
            current = self.current_version()
            if current is None:
                raise UpdateError(f"{self.root} has no current release: this box is not managed")
            if version == current:
                return InstallOutcome("skipped", current, version, f"already on {version}")
            if version_key(version) < version_key(current):
                return InstallOutcome(
                    "skipped", current, version, f"refusing to downgrade {current} to {version}"
                )
            if version in journal["bad"] and not retry_bad:
                return InstallOutcome(
                    "skipped",
                    current,
                    version,
                    f"release {version} failed on this box before: not retried automatically",
                )
            journal = self._write(journal, phase="staging", **{"from": current, "to": version})
            journal = self._stage(bundle_path, version, journal)
            journal = self._write(journal, phase="staged", partial=None)
            failpoint("staged")
            journal = self._write(journal, phase="switching")
            failpoint("switching")
            self._point(version)
            failpoint("switched")
            attempts = {**journal["attempts"], version: journal["attempts"].get(version, 0) + 1}
            journal = self._write(journal, phase="switched", attempts=attempts)
            before = read_heartbeat(self.state) if self.state else None
            self._mark_probation(True)
            try:
                self._restart()
                failpoint("restarted")
                reason = self._health(version, before)
                failpoint("checked")
                if reason is None and self.check_daemon and self.probation > 0:
                    journal = self._write(journal, phase="probation")
                    reason = self._probation(version)
            finally:
                self._mark_probation(False)
            if reason is None:
                self._write(
                    journal,
                    phase="idle",
                    current=version,
                    previous=current,
                    last="installed",
                    bad=[v for v in journal["bad"] if v != version],
                    fence=self.fence,
                )
                failpoint("confirmed")
                self._prune({version, current})
                return InstallOutcome("installed", version, version)
            return self._rollback(journal, current, version, reason, bad=True)

    def _rollback(
        self, journal: dict[str, Any], old: str, new: str, reason: str, *, bad: bool
    ) -> InstallOutcome:
        marked = sorted({*journal["bad"], new}) if bad else journal["bad"]
        journal = self._write(journal, phase="rolling-back", bad=marked, **{"from": old, "to": new})
        failpoint("rolling-back")
        self._point(old)
        failpoint("rolled-back")
        before = read_heartbeat(self.state) if self.state else None
        self._restart()
        if self.check_daemon and self.state is not None and self.restart_command:
            back = wait_for_daemon(self.state, old, before, time.monotonic() + self.timeout)
            if back:
                reason += f"; after rolling back, {back}"
        self._write(
            journal,
            phase="idle",
            current=old,
            last="rolled-back",
            last_reason=reason,
            fence=self.fence,
        )
        return InstallOutcome("rolled-back", old, new, reason)

    def recover(self) -> InstallOutcome | None:
        """Finish or undo whatever a power cut interrupted; None when nothing was."""
        if not (self.root / JOURNAL).exists():
            return None
        with self._lock():
            return self._recover()

    def _recover(self) -> InstallOutcome | None:
        self._mark_probation(False)
        journal = self.journal()
        phase = journal["phase"]
        old, new = journal.get("from"), journal.get("to")
        current = self.current_version()
        if phase == "idle":
            self._sweep()
            return None
        if phase == "switching" and current == old:
            phase = "staged"
        if phase in ("staging", "staged"):
            self._sweep()
            self._write(journal, phase="idle", partial=None)
            return InstallOutcome(
                "recovered", current, new, f"the install of {new} was interrupted before the switch"
            )
        if phase in ("switching", "switched", "probation"):
            if old is None or new is None:
                self._write(journal, phase="idle")
                return None
            bad = journal["attempts"].get(new, 0) >= MAX_ATTEMPTS
            return self._rollback(
                journal,
                old,
                new,
                f"{new} was interrupted before its health check confirmed it",
                bad=bad,
            )
        if phase == "rolling-back" and old is not None:
            self._point(old)
            self._restart()
            self._write(journal, phase="idle", current=old, last="rolled-back")
            return InstallOutcome(
                "recovered", old, new, f"finished rolling back from {new} to {old}"
            )
        raise UpdateError(f"the install journal is in an unknown state {phase!r}")

    def _sweep(self) -> None:
        """Remove leftovers of interrupted unpacks and deletions (called under the lock)."""
        if not self.releases.is_dir():
            return
        for path in self.releases.iterdir():
            if path.name.startswith(".trash-") or ".partial-" in path.name:
                shutil.rmtree(path, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        journal = self.journal() if (self.root / JOURNAL).exists() else {"phase": "idle"}
        beat = daemon_running(self.state) if self.state else None
        return {
            "root": str(self.root),
            "managed": self.managed,
            "version": self.current_version(),
            "phase": journal.get("phase"),
            "previous": journal.get("previous"),
            "bad": journal.get("bad", []),
            "last": journal.get("last"),
            "last_reason": journal.get("last_reason"),
            "self_test_fence": journal.get("fence"),
            "daemon": beat.get("version") if beat else None,
        }
