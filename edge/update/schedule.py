"""The daemon's small part in updates: a heartbeat, scheduled checks, inserted sticks, and a
check as soon as central's downlink says it serves something newer.

The daemon never installs anything itself: installing restarts the daemon, so
the update runs as its own process (``edge update --once``) and survives that
restart. Under systemd, whose default is to stop a unit's whole cgroup on
restart, set ``EDGE_UPDATE_COMMAND`` to e.g. ``systemd-run --collect
--unit=edge-update /opt/edge/current/bin/edge`` so the updater runs in its own
unit (docs/updates.md).
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edge.observe.health import read_only
from edge.settings import Settings
from edge.update import UPDATE_HINT
from edge.update.client import update_dir
from edge.update.cycle import usb_sources
from edge.update.selftest import PROBATION, write_heartbeat

log = logging.getLogger("edge.update")

USB_POLL_SECONDS = 5.0
PROBATION_BEAT_SECONDS = 1.0
"""How often a daemon on probation (a release just installed) proves its main loop runs."""
FIRST_CHECK_MAX_DELAY = 600.0


def edge_command() -> list[str]:
    """How to run this box's ``edge``: the stable ``current`` launcher when there is one."""
    override = os.environ.get("EDGE_UPDATE_COMMAND")
    if override:
        return shlex.split(override)
    release = os.environ.get("EDGE_RELEASE")
    if release:
        launcher = Path(release).parent.parent / "current" / "bin" / "edge"
        if launcher.exists():
            return [str(launcher)]
    return [sys.executable, "-m", "edge.cli"]


class UpdateHook:
    """Called from ``Daemon.run``: ``started()`` once watching, ``tick()`` every loop."""

    def __init__(
        self,
        state: Path,
        settings: Settings,
        *,
        spawn: Callable[[list[str]], subprocess.Popen | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.settings = settings
        self.clock = clock
        self._spawn = spawn or self._spawn_process
        self._child: subprocess.Popen | None = None
        self._seen_sticks: dict[Path, float] = {}
        now = clock()
        interval = settings.update_check_minutes * 60
        # spread a fleet's first checks so boxes back from an outage do not arrive at once
        self._next_check = now + random.uniform(0, min(FIRST_CHECK_MAX_DELAY, interval))
        self._next_usb = now
        self._hint_acted = 0
        self._nonce = secrets.token_hex(8)
        self._beats = 0
        self._next_beat = now

    def started(self) -> None:
        write_heartbeat(self.state, nonce=self._nonce, beats=self._beats)

    def tick(self) -> None:
        now = self.clock()
        self._probation_beat(now)
        if self._child is not None and self._child.poll() is None:
            return
        self._child = None
        if now >= self._next_usb:
            self._next_usb = now + USB_POLL_SECONDS
            for stick in usb_sources(tuple(self.settings.update_usb_roots)):
                try:
                    stamp = (stick / "metadata" / "timestamp.json").stat().st_mtime
                except OSError:
                    continue
                if self._seen_sticks.get(stick) != stamp:
                    self._seen_sticks[stick] = stamp
                    log.info("update stick found at %s: checking it", stick)
                    self._child = self._spawn(["--from", str(stick)])
                    return
            if self._hinted():
                log.info("central serves newer update metadata: checking now")
                if not self._request():
                    self._child = self._spawn([])
                return
        if self.settings.update_url and now >= self._next_check:
            self._next_check = now + self.settings.update_check_minutes * 60
            self._child = self._spawn(["--from", self.settings.update_url])

    def _probation_beat(self, now: float) -> None:
        """Beat from the main loop while the installer judges this release; otherwise the
        heartbeat is written once per start, sparing the SD card a write a second."""
        if now < self._next_beat:
            return
        self._next_beat = now + PROBATION_BEAT_SECONDS
        if not (self.state / PROBATION).exists():
            return
        self._beats += 1
        try:
            write_heartbeat(self.state, nonce=self._nonce, beats=self._beats)
        except OSError as exc:
            # a disk that takes no writes: the beat goes stale and the installer judges that
            log.warning("probation heartbeat not written: %s", exc)

    def _request(self) -> bool:
        """Under systemd the daemon cannot install (it sees /opt read-only): it leaves a
        request file that edge-update-request.path answers by starting edge-update.service.
        """
        request = os.environ.get("EDGE_UPDATE_REQUEST")
        if not request:
            return False
        try:
            Path(request).parent.mkdir(parents=True, exist_ok=True)
            Path(request).touch()
        except OSError as exc:
            log.error("cannot ask for an update run at %s: %s", request, exc)
            return False
        return True

    def _hinted(self) -> bool:
        """Central's downlink said it serves a newer timestamp than this box verified.

        One check per hint: a check that fails (or finds nothing for this office) is not
        repeated until central publishes again or the schedule comes round.
        """
        try:
            conn = read_only(self.state)
            try:
                rows = dict(
                    conn.execute(
                        "SELECT key, value FROM meta WHERE key IN (?, ?)",
                        (UPDATE_HINT, "update.metadata"),
                    ).fetchall()
                )
            finally:
                conn.close()
            hint = int(rows.get(UPDATE_HINT) or 0)
            verified = json.loads(rows.get("update.metadata") or "{}")
            known = int(verified.get("roles", {}).get("timestamp", 0))
        except (sqlite3.Error, OSError, ValueError, TypeError):
            return False
        if hint <= known or hint == self._hint_acted:
            return False
        self._hint_acted = hint
        return True

    def _spawn_process(self, args: list[str]) -> subprocess.Popen | None:
        command = [*edge_command(), "update", "--state", str(self.state), "--once", *args]
        folder = update_dir(self.state)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with (folder / "last-run.log").open("ab") as out:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            log.error("cannot start the updater (%s): %s", shlex.join(command), exc)
            return None
