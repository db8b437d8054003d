"""The box's main loop: watch the inbox, capture, guard the disk, stop cleanly.

``edge run`` calls ``Daemon.run`` (until SIGTERM); ``edge capture --once`` calls
``Daemon.run_once``. Both go through the same ``Capture`` pipeline, one file at
a time in natural name order.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.capture.pipeline import Capture, FileOutcome, Prepared
from edge.capture.watcher import InboxWatcher
from edge.notify import notify, watchdog_period
from edge.observe.health import Vitals
from edge.records import Ledger
from edge.settings import Settings
from edge.store import Store
from edge.vault import Keyring

log = logging.getLogger("edge")

LOOKAHEAD_FILES = 4


@dataclass
class Report:
    """The summary ``edge capture --once --json`` prints."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    codes: dict[str, str | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        stored = [o for o in self.outcomes if o.status in ("stored", "interrupted", "quarantined")]
        dossiers: list[str] = []
        for outcome in self.outcomes:
            for dossier_id in outcome.dossiers:
                if dossier_id not in dossiers:
                    dossiers.append(dossier_id)
        return {
            "files": len(stored),
            "pages": sum(o.pages for o in self.outcomes),
            "dossiers": [self.codes.get(d) for d in dossiers],
            "quarantined": [
                {"file": o.name, "reason": o.reason, "message": o.message}
                for o in self.outcomes
                if o.status == "quarantined"
            ],
            "uncertain": [
                {"file": o.name, **page, "dossier": self.codes.get(page["dossier"])}
                for o in self.outcomes
                for page in o.uncertain
            ],
            "duplicates": [o.name for o in self.outcomes if o.status == "duplicate"],
            "ignored": self.ignored,
            "deferred": self.deferred,
        }


def tune_malloc() -> None:
    """Keep the daemon's memory flat on glibc.

    Page buffers of a few MB are allocated on two analysis threads. By default
    glibc gives each thread its own arena and keeps moving its mmap and trim
    thresholds, so RSS creeps up over a long run. Two arenas and fixed
    thresholds (mmap above 16 MiB, trim above 32 MiB) measured flat with no loss
    of throughput (docs/benchmarks.md); a 1 MiB mmap threshold was flat too but
    cost a third of the throughput in page faults.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_arena_max, 2)
    libc.mallopt(m_mmap_threshold, 16 << 20)
    libc.mallopt(m_trim_threshold, 32 << 20)


class Daemon:
    def __init__(self, state: Path, inbox: Path, overrides: dict[str, Any] | None = None) -> None:
        self.state = state
        self.inbox = inbox
        tune_malloc()
        self.keyring = Keyring.load(state)
        self.store = Store.open(state)
        self.overrides = overrides or {}
        self.settings = self._settings()
        self.stopping = False
        self.capture = Capture(
            self.store,
            Ledger(self.store, self.keyring.sealer()),
            inbox,
            self.settings,
            should_stop=self._between_pages,
        )
        self._disk_alert = bool(self.store.meta("alert.disk"))
        self.on_outcome: Callable[[FileOutcome], None] | None = None
        self.vitals = Vitals()
        self.totals: Counter[str] = Counter()
        self._watchdog = watchdog_period()
        self._last_ping = 0.0
        self._config_rev = self.store.meta("config.rev")

    def _settings(self) -> Settings:
        settings = self.store.settings()
        return settings.with_changes(**self.overrides) if self.overrides else settings

    def _follow_config(self) -> None:
        """Apply settings and central's key that sync changed, without a restart."""
        rev = self.store.meta("config.rev")
        if rev == self._config_rev:
            return
        self._config_rev = rev
        self.settings = self._settings()
        self.capture.apply_settings(self.settings)
        central = Keyring.load(self.state).central_public
        if central is not None:
            self.capture.ledger.use_central_key(central)

    def close(self) -> None:
        self.capture.close()
        self.store.close()

    def request_stop(self, *_args: object) -> None:
        self.stopping = True

    def _between_pages(self) -> bool:
        # A 300-page PDF keeps the main loop busy for minutes: progress between its
        # pages is what proves the daemon alive, so the watchdog is fed from here too.
        self._beat()
        return self.stopping

    def _status(self) -> str:
        return (
            f"STATUS={self.totals['pages']} page(s) from {self.totals['files']} file(s) "
            f"since start, {self.totals['quarantined']} quarantined"
            + (", disk almost full" if self._disk_alert else "")
        )

    def _beat(self) -> None:
        """Record progress; ping systemd's watchdog at half of ``WatchdogSec=``."""
        self.vitals.beat()
        now = time.monotonic()
        if self._watchdog is not None and now - self._last_ping >= self._watchdog:
            self._last_ping = now
            notify("WATCHDOG=1", self._status())

    def disk_ok(self, needed: int = 0) -> bool:
        """The free-space guard: stop taking scans before the disk is full, say so, resume."""
        free = shutil.disk_usage(self.state).free
        ok = free >= self.settings.min_free_mb * 1024 * 1024 + 2 * needed
        if not ok and not self._disk_alert:
            log.error(
                "disk almost full (%d MB free): new scans wait in the inbox; "
                "free space or sync so old pages can be purged",
                free // (1024 * 1024),
            )
            self.store.set_meta("alert.disk", f"{free // (1024 * 1024)} MB free")
        elif ok and self._disk_alert:
            log.warning("disk space is back (%d MB free): taking scans again", free // 2**20)
            self.store.set_meta("alert.disk", "")
        self._disk_alert = not ok
        return ok

    def _handle_batch(
        self, paths: list[Path], report: Report, ready_at: float, watcher: InboxWatcher
    ) -> bool:
        """Process settled files in order, preparing the next few on worker threads.

        Returns False when the disk guard stopped intake.
        """
        window: deque[tuple[Path, Future[Prepared]]] = deque()
        queue = list(paths)
        while queue or window:
            while queue and len(window) < LOOKAHEAD_FILES:
                path = queue.pop(0)
                window.append((path, self.capture.pool.submit(self.capture.prepare, path)))
            path, future = window.popleft()
            if self.stopping:
                break
            if not self._handle(path, report, ready_at, future.result()):
                return False
            watcher.done(path)
        for _path, future in window:
            future.cancel()
        return True

    def _handle(
        self, path: Path, report: Report, settled_at: float, prepared: Prepared | None = None
    ) -> bool:
        try:
            size = path.lstat().st_size
        except FileNotFoundError:
            size = 0
        if not self.disk_ok(size):
            report.deferred.append(str(path.relative_to(self.inbox)))
            return False
        outcome = self.capture.process(path, settled_at, prepared)
        report.outcomes.append(outcome)
        self.totals["files"] += 1
        self.totals["pages"] += outcome.pages
        self.totals["quarantined"] += outcome.status == "quarantined"
        self.vitals.sent_to_review += len(outcome.uncertain)
        for dossier_id in outcome.dossiers:
            row = self.store.dossier(dossier_id)
            report.codes[dossier_id] = row["code"] if row else None
        _log_outcome(outcome, report.codes)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return True

    def run_once(self, *, max_wait: float = 120.0) -> Report:
        """Capture everything in the inbox now, waiting for files still being written."""
        watcher = InboxWatcher(
            self.inbox,
            settle_seconds=self.settings.settle_seconds,
            rescan_seconds=float("inf"),
        )
        watcher.rescan()
        report = Report()
        deadline = time.monotonic() + max_wait
        while not self.stopping:
            batch = watcher.poll()
            ready_at = time.monotonic()
            report.ignored.extend(str(p.relative_to(self.inbox)) for p in batch.ignored)
            if not self._handle_batch(batch.ready, report, ready_at, watcher):
                return report
            if not batch.ready and not batch.waiting:
                break
            if not batch.ready:
                if time.monotonic() > deadline:
                    log.warning(
                        "%d file(s) still being written; left for the next run", batch.waiting
                    )
                    break
                time.sleep(watcher.next_change_in())
        if not self.stopping:
            self.capture.close_idle_jobs(everything=True)
        return report

    def run(self) -> None:
        """Watch until SIGTERM/SIGINT; finish or roll back the page in hand, then exit."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        watcher = InboxWatcher(
            self.inbox,
            settle_seconds=self.settings.settle_seconds,
            rescan_seconds=self.settings.rescan_seconds,
            polling=self.settings.use_polling,
            poll_seconds=self.settings.poll_seconds,
        )
        watcher.start()
        log.info("watching %s (%s)", self.inbox, "polling" if watcher.polling else "inotify")
        self.vitals.polling = watcher.polling
        self.vitals.watching = True
        self._beat()
        notify("READY=1", self._status())
        from edge.update.schedule import UpdateHook

        updates = UpdateHook(self.state, self.settings)
        updates.started()
        from edge.sync.loop import SyncLoop

        sync = SyncLoop(self.state)
        sync.start()
        try:
            while not self.stopping:
                self._beat()
                updates.tick()
                self._follow_config()
                report = Report()
                batch = watcher.poll()
                ready_at = time.monotonic()
                for path in batch.ignored:
                    log.info("ignored %s (not a scan)", path.relative_to(self.inbox))
                self._handle_batch(batch.ready, report, ready_at, watcher)
                if report.outcomes:
                    notify(self._status())
                if not batch.ready and not batch.waiting:
                    # a job's idle time counts only while nothing is arriving or waiting
                    self.capture.close_idle_jobs()
                if not batch.ready:
                    wait = watcher.next_change_in() if batch.waiting else 1.0
                    watcher.wait(min(wait, self._watchdog or wait))
        finally:
            notify("STOPPING=1", "STATUS=stopping: finishing the page in hand")
            self.vitals.watching = False
            watcher.stop()
            sync.stop()
            log.info("stopped")


def _log_outcome(outcome: FileOutcome, codes: dict[str, str | None]) -> None:
    if outcome.status == "quarantined":
        log.warning("quarantined %s: %s", outcome.name, outcome.message)
    elif outcome.status == "duplicate":
        log.info("duplicate %s: already stored, removed from the inbox", outcome.name)
    else:
        names = ", ".join(codes.get(d) or "(unassigned)" for d in outcome.dossiers)
        log.info("%s %s: %d page(s) -> %s", outcome.status, outcome.name, outcome.pages, names)
        for page in outcome.uncertain:
            log.warning(
                "%s page %d: a cover the box could not read for sure; it waits for the clerk "
                "to check it (new dossier, or same as before)",
                outcome.name,
                page["page"],
            )
