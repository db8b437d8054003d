"""The box's main loop: watch the inbox, capture, guard the disk, stop cleanly.

``edge run`` calls ``Daemon.run`` (until SIGTERM); ``edge capture --once`` calls
``Daemon.run_once``. Both go through the same ``Capture`` pipeline, one file at
a time in natural name order.

Nothing a file or the disk does ends the daemon. A file that fails for a reason
nobody foresaw is logged and left in the inbox; a disk that fills up, turns
read-only or returns I/O errors stops intake (scans wait in the inbox), raises an
alert that /readyz, /metrics and the summary sync sends all show, and intake
resumes by itself once a real write succeeds again. Under systemd, a daemon that
exited instead would be restarted into the same disk until its start limit, and
then nobody would be watching the inbox at all.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge.capture.names import display_name
from edge.capture.pipeline import Capture, FileOutcome, Outcome, Prepared, _signature
from edge.capture.watcher import InboxWatcher
from edge.durable import StorageProblem, check_storage, free_bytes, storage_problem
from edge.notify import notify, watchdog_period
from edge.observe.health import LIVE_ALERTS, STORAGE_ALERTS, Vitals
from edge.records import Ledger
from edge.retention import Keeper, guard_reserve
from edge.settings import Settings
from edge.store import StorageError, Store, store_error
from edge.vault import Keyring

log = logging.getLogger("edge")

LOOKAHEAD_FILES = 4
LOOKAHEAD_WINDOW_BYTES = 48 * 2**20
"""Files prepared ahead hold their pages' bytes: four 30 MB PNGs would be 120 MB outside the
decode budget, so big files are prepared one at a time while small ones still overlap."""
BATCH_SLICE_SECONDS = 5.0
"""The longest ``edge run`` spends in one batch before going round its loop again (update
checks, the disk probe, the heartbeat, settings); the rest of the batch waits in the watcher.
The watchdog and /readyz are fed after every file whatever the slice."""
FAULT_RETRY_SECONDS = 2.0
"""While intake is stopped for the disk, how often it looks again: cheap (a statvfs,
and a 4 KiB probe write after a failed write), and short enough that scans resume
within seconds of space coming back."""
PROBE_SECONDS = 60.0
"""How often a healthy daemon proves the disk with a real write, scans or not: a card the
kernel turned read-only still reports free space, and the alarm should not wait for the
next scan to fail."""
DAMAGED_RETRY_SECONDS = 60.0
"""A damaged database is retried rarely: each retry that fails again logs again."""
FILE_RETRY_SECONDS = 600.0
"""A file that failed for an unforeseen reason is tried again after this, or as soon
as it changes: a fix may have landed, and a loop of failures must not fill the log."""


@dataclass
class Report:
    """The summary ``edge capture --once --json`` prints."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    codes: dict[str, str | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        stored = [
            o
            for o in self.outcomes
            if o.status in (Outcome.STORED, Outcome.INTERRUPTED, Outcome.QUARANTINED)
        ]
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
                if o.status == Outcome.QUARANTINED
            ],
            "uncertain": [
                {"file": o.name, **page, "dossier": self.codes.get(page["dossier"])}
                for o in self.outcomes
                for page in o.uncertain
            ],
            "duplicates": [o.name for o in self.outcomes if o.status == Outcome.DUPLICATE],
            "failed": [
                {"file": o.name, "reason": o.reason, "message": o.message}
                for o in self.outcomes
                if o.status == Outcome.FAILED
            ],
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


TRIM_AFTER_BYTES = 4 * 2**20
"""A file at least this big is followed by ``malloc_trim``."""


def release_memory() -> None:
    """Hand the heap's free pages back to the system after a big file.

    Sealing and storing a 30 MB page leaves tens of MB of SQLite pages and buffers free
    in the middle of the heap, where the trim threshold never reaches: measured, RSS
    crept by 40 MB a file over three 600-dpi PNGs, and the next page's decode stacked on
    top. ``malloc_trim(0)`` returns them (it takes about a millisecond).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


class Daemon:
    def __init__(
        self,
        state: Path,
        inbox: Path,
        overrides: dict[str, Any] | None = None,
        *,
        vitals: Vitals | None = None,
    ) -> None:
        self.state = state
        self.inbox = inbox
        tune_malloc()
        self.keyring = Keyring.load(state)
        self.store = Store.open(state)
        try:
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
            self._stored_alerts = {
                name: text for name in STORAGE_ALERTS if (text := self.store.meta(f"alert.{name}"))
            }
            self._config_rev = self.store.meta("config.rev")
            self.retention = Keeper(self.store, self.capture.ledger, state, lambda: self.settings)
        except sqlite3.Error as exc:
            self.store.close()
            raise store_error(exc, self.store.path) from exc
        self._fault: StorageProblem | None = None
        self._fault_retry_at = 0.0
        self._next_probe = 0.0
        self._failed: dict[Path, tuple[tuple[int, int, int] | None, float]] = {}
        self._heartbeat_due = False
        self._heartbeat_warned = False
        self._tick_error = ""
        self.on_outcome: Callable[[FileOutcome], None] | None = None
        self.vitals = vitals or Vitals()
        self.totals: Counter[str] = Counter()
        self._watchdog = watchdog_period()
        self._last_ping = 0.0

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
        # live alerts are this daemon's word about its disk: they go with it (the stored
        # ones stay, for the next start to clear once it has seen the disk take writes)
        for name in STORAGE_ALERTS:
            LIVE_ALERTS.clear(name)
        self.capture.close()
        try:
            self.store.close()
        except sqlite3.Error as exc:  # a full disk can refuse the last checkpoint; WAL keeps it
            log.warning("database closed with an error (%s): nothing committed is lost", exc)

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
            + (f"; scans wait: {self._fault.summary}" if self._fault else "")
        )

    def _beat(self) -> None:
        """Record progress; ping systemd's watchdog at half of ``WatchdogSec=``."""
        self.vitals.beat()
        now = time.monotonic()
        if self._watchdog is not None and now - self._last_ping >= self._watchdog:
            self._last_ping = now
            notify("WATCHDOG=1", self._status())

    # -- the disk ---------------------------------------------------------------------

    def storage_ok(self, needed: int = 0) -> bool:
        """The free-space guard and the storage latch in one: False stops intake.

        Below the reserve (``min_free_mb``, less the room purged pages left inside the
        database, plus twice the file in hand) scans wait in the inbox. Once a write has
        failed (a disk full past the reserve, a filesystem turned read-only, I/O errors)
        nothing is tried for ``FAULT_RETRY_SECONDS``; then the disk is probed with a real
        write, and intake resumes only once the database takes a write too.
        """
        now = time.monotonic()
        if self._fault is not None and now < self._fault_retry_at:
            return False
        reserve = guard_reserve(self.settings.min_free_mb, self._reusable()) + 2 * needed
        probe = self._fault is not None or now >= self._next_probe
        if probe:
            self._next_probe = now + PROBE_SECONDS
        problem = check_storage(self.state, reserve, probe=probe)
        if problem is None and self._fault is not None:
            problem = self._prove_writable()
        self._set_fault(problem)
        return problem is None

    def _reusable(self) -> int:
        try:
            return self.store.reusable_bytes()
        except sqlite3.Error:
            return 0

    def _keep(self) -> None:
        """Retention's turn (edge/retention.py): hourly, and at once when the disk runs low.

        Runs before the free-space guard, so intake resumes in the same round that an early
        purge made room. A failure is logged and capture goes on: pages kept a while
        longer are never a reason to stop taking scans.
        """
        try:
            self.retention.tick()
        except Exception as exc:
            log.warning("retention pass skipped (%s: %s)", type(exc).__name__, exc)

    def disk_ok(self, needed: int = 0) -> bool:
        """The name tests and older callers know ``storage_ok`` by."""
        return self.storage_ok(needed)

    def _prove_writable(self) -> StorageProblem | None:
        """Clear the stored storage alerts: the write that proves the database takes writes."""
        try:
            with self.store.transaction():
                for name in STORAGE_ALERTS:
                    self.store.put_meta(f"alert.{name}", "")
        except (sqlite3.Error, OSError) as exc:
            return storage_problem(exc, self.store.path) or StorageProblem(
                "io_error",
                f"the database refuses writes ({exc})",
                f"the database refuses writes ({exc})",
                "run 'edge doctor'",
            )
        self._stored_alerts.clear()
        return None

    def _set_fault(self, problem: StorageProblem | None) -> None:
        """Raise or clear the storage alert: in memory always, in the database when it can."""
        previous, self._fault = self._fault, problem
        if problem is not None:
            retry = DAMAGED_RETRY_SECONDS if problem.kind == "damaged" else FAULT_RETRY_SECONDS
            self._fault_retry_at = time.monotonic() + retry
            if previous is None or previous.kind != problem.kind:
                log.error("%s: %s", problem.detail, problem.fix)
                notify(self._status())
            LIVE_ALERTS.raise_(problem.alert, problem.summary)
            for name in STORAGE_ALERTS:
                if name != problem.alert:
                    LIVE_ALERTS.clear(name)
            if self._stored_alerts.get(problem.alert) != problem.summary:
                self._store_alert(problem.alert, problem.summary)
            return
        if previous is not None:
            log.warning(
                "the disk takes writes again (%d MB free): taking scans again",
                free_bytes(self.state) // 2**20,
            )
            notify(self._status())
        for name in STORAGE_ALERTS:
            LIVE_ALERTS.clear(name)
        for name in list(self._stored_alerts):
            self._store_alert(name, "")

    def _store_alert(self, name: str, text: str) -> None:
        """Best effort: the clerk's UI reads ``alert.disk``; a full disk may refuse it."""
        try:
            self.store.set_meta(f"alert.{name}", text)
        except (sqlite3.Error, OSError) as exc:
            log.debug("alert.%s not stored (%s); the live alert stands", name, exc)
            return
        if text:
            self._stored_alerts[name] = text
        else:
            self._stored_alerts.pop(name, None)

    # -- files --------------------------------------------------------------------------

    def _handle_batch(
        self,
        paths: list[Path],
        report: Report,
        ready_at: float,
        watcher: InboxWatcher,
        *,
        slice_seconds: float | None = None,
    ) -> bool:
        """Process settled files in order, preparing the next few on worker threads.

        Returns False when the disk stopped intake; the files not handled stay queued
        in the watcher and wait in the inbox. With ``slice_seconds`` the batch stops
        after that long and the rest waits in the watcher for the loop's next round.
        Every file beats: a hundred thousand bad files are minutes of work with no page
        boundary in them, and a silent loop would be killed by the watchdog mid-batch.
        """
        if paths and self._fault is not None and not self.storage_ok():
            # still stopped: no hashing and decoding ahead for files that must wait
            report.deferred.append(display_name(paths[0].relative_to(self.inbox)))
            return False
        window: deque[tuple[Path, int, Future[Prepared]]] = deque()
        queue = deque(paths)
        held = 0
        until = None if slice_seconds is None else time.monotonic() + slice_seconds
        while queue or window:
            while queue and len(window) < LOOKAHEAD_FILES:
                size = _size(queue[0])
                if window and held + size > LOOKAHEAD_WINDOW_BYTES:
                    break
                path = queue.popleft()
                held += size
                window.append((path, size, self.capture.pool.submit(self.capture.prepare, path)))
            path, size, future = window.popleft()
            held -= size
            if self.stopping:
                break
            handled = self._handle(path, report, ready_at, future)
            del future  # its pages' bytes go now, not when the next file's are read
            if size >= TRIM_AFTER_BYTES:
                release_memory()
            if not handled:
                for _left, _size_left, pending in window:
                    pending.cancel()
                return False
            watcher.done(path)
            self._beat()
            if until is not None and time.monotonic() >= until:
                break
        for _path, _size_left, future in window:
            future.cancel()
        return True

    def _handle(
        self,
        path: Path,
        report: Report,
        settled_at: float,
        prepared: Future[Prepared] | Prepared | None = None,
    ) -> bool:
        """One file; False when the disk stopped intake (the file stays in the inbox).

        Whatever else goes wrong with this one file is logged and the file is left
        where it is, to be tried again later: the daemon never exits for a file.
        """
        name = display_name(path.relative_to(self.inbox))
        try:
            size = path.lstat().st_size
        except OSError:
            size = 0
        if not self.storage_ok(size):
            report.deferred.append(name)
            return False
        if self._still_failing(path):
            return True
        try:
            ready = prepared.result() if isinstance(prepared, Future) else prepared
            outcome = self.capture.process(path, settled_at, ready)
        except Exception as exc:
            problem = storage_problem(exc, self.store.path)
            if problem is not None:
                self._set_fault(problem)
                report.deferred.append(name)
                return False
            outcome = self._failed_file(path, name, exc)
        report.outcomes.append(outcome)
        if outcome.status == Outcome.FAILED:
            return True
        self.totals["files"] += 1
        self.totals["pages"] += outcome.pages
        self.totals["quarantined"] += outcome.status == Outcome.QUARANTINED
        self.vitals.sent_to_review += len(outcome.uncertain)
        for dossier_id in outcome.dossiers:
            row = self.store.dossier(dossier_id)
            report.codes[dossier_id] = row["code"] if row else None
        _log_outcome(outcome, report.codes)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return True

    def _still_failing(self, path: Path) -> bool:
        """A file that failed unexpectedly waits, unchanged, for ``FILE_RETRY_SECONDS``."""
        held = self._failed.get(path)
        if held is None:
            return False
        signature, until = held
        if signature == _signature(path) and time.monotonic() < until:
            return True
        del self._failed[path]
        return False

    def _failed_file(self, path: Path, name: str, exc: Exception) -> FileOutcome:
        self._failed[path] = (_signature(path), time.monotonic() + FILE_RETRY_SECONDS)
        log.error(
            "could not capture %s (%s: %s): it stays in the inbox and is tried again in "
            "%d min or when it changes; run 'edge doctor' and report this if it repeats",
            name,
            type(exc).__name__,
            exc,
            FILE_RETRY_SECONDS // 60,
            exc_info=exc,
        )
        return FileOutcome(
            name,
            Outcome.FAILED,
            reason="internal_error",
            message=f"The box could not process this file ({type(exc).__name__}); "
            "it stays in the scanner folder and is tried again later.",
        )

    def run_once(self, *, max_wait: float = 120.0) -> Report:
        """Capture everything in the inbox now, waiting for files still being written."""
        watcher = InboxWatcher(
            self.inbox,
            settle_seconds=self.settings.settle_seconds,
            rescan_seconds=float("inf"),
        )
        watcher.rescan()
        report = Report()
        self._keep()
        deadline = time.monotonic() + max_wait
        while not self.stopping:
            batch = watcher.poll()
            ready_at = time.monotonic()
            report.ignored.extend(display_name(p.relative_to(self.inbox)) for p in batch.ignored)
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
            self._close_idle_jobs(everything=True)
        return report

    @property
    def fault(self) -> StorageProblem | None:
        """Why intake is stopped for the disk, or None while it takes scans."""
        return self._fault

    def _close_idle_jobs(self, *, everything: bool = False) -> None:
        """Close quiet jobs; a disk that refuses the write only delays it to a later pass."""
        try:
            self.capture.close_idle_jobs(everything=everything)
        except (sqlite3.Error, OSError) as exc:
            problem = storage_problem(exc, self.store.path)
            if problem is None:
                raise
            self._set_fault(problem)

    def run(self, updates: UpdateHooks | None = None) -> None:
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
        updates = updates or _NoUpdates()
        self._heartbeat_due = True
        self._write_heartbeat(updates)
        from edge.sync.loop import SyncLoop

        sync = SyncLoop(self.state)
        sync.start()
        try:
            while not self.stopping:
                self._beat()
                self._tick(updates)
                sync.ensure_running()
                taking = True
                batch = None
                try:
                    # the guard runs with or without scans waiting: a full disk alarms
                    # before the clerk scans into it, and clears when space returns
                    self._keep()
                    if self.storage_ok():
                        self._write_heartbeat(updates)
                    self._follow_config()
                    report = Report()
                    batch = watcher.poll()
                    ready_at = time.monotonic()
                    for path in batch.ignored:
                        name = display_name(path.relative_to(self.inbox))
                        log.info("ignored %s (not a scan)", name)
                    taking = self._handle_batch(
                        batch.ready, report, ready_at, watcher, slice_seconds=BATCH_SLICE_SECONDS
                    )
                    if report.outcomes:
                        notify(self._status())
                    if taking and not batch.ready and not batch.waiting:
                        # a job's idle time counts only while nothing is arriving or waiting
                        self._close_idle_jobs()
                except (sqlite3.Error, OSError) as exc:
                    problem = storage_problem(exc, self.store.path)
                    if problem is None:
                        raise
                    self._set_fault(problem)
                    taking = False
                if not taking or self._fault is not None:
                    # scans wait in the inbox; look at the disk again in a moment
                    watcher.wait(min(FAULT_RETRY_SECONDS, self._watchdog or FAULT_RETRY_SECONDS))
                elif batch is not None and not batch.ready:
                    wait = watcher.next_change_in() if batch.waiting else 1.0
                    watcher.wait(min(wait, self._watchdog or wait))
        finally:
            notify("STOPPING=1", "STATUS=stopping: finishing the page in hand")
            self.vitals.watching = False
            watcher.stop()
            sync.stop()
            log.info("stopped")

    def _write_heartbeat(self, updates: UpdateHooks) -> None:
        """The updater's sign that this daemon runs; a full or read-only disk only delays it."""
        if not self._heartbeat_due:
            return
        try:
            updates.started()
        except OSError as exc:
            if not self._heartbeat_warned:
                log.warning("heartbeat not written (%s): written once the disk takes writes", exc)
            self._heartbeat_warned = True
            return
        self._heartbeat_due = False

    def _tick(self, updates: UpdateHooks) -> None:
        """Scheduled update checks; their failure is logged once, never ends capture."""
        try:
            updates.tick()
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if text != self._tick_error:
                log.warning("update check skipped (%s)", text)
            self._tick_error = text
        else:
            self._tick_error = ""


class UpdateHooks(Protocol):
    """What the daemon's loop does for updates: ``edge run`` hands it the updater's
    (``edge.update.schedule.UpdateHook``), so capture never imports the update package,
    which itself runs a daemon in its self-test."""

    def started(self) -> None:
        """This daemon runs: the sign the updater waits for after installing a release."""

    def tick(self) -> None:
        """Called on every round of the loop; checks for updates when one is due."""


class _NoUpdates:
    """A daemon run without an updater (``edge capture --once``, tests, the demo)."""

    def started(self) -> None:
        return None

    def tick(self) -> None:
        return None


def open_when_writable(make: Callable[[], Daemon]) -> Daemon | None:
    """``edge run``'s start on a disk that cannot take writes: wait, alarmed, do not exit.

    A database whose disk is full, read-only or failing cannot even be opened (SQLite
    must create its shared-memory file). Exiting would have systemd restart the daemon
    into the same disk until its start limit, and then nothing watches the inbox when
    space returns. So the open is retried every ``FAULT_RETRY_SECONDS``, the alert is up
    on /readyz and /metrics meanwhile, and systemd is told the service runs (its
    watchdog fed). None when SIGTERM or SIGINT comes first. A damaged database still
    ends the command: waiting does not repair it, and ``edge doctor`` says what does.
    """
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_args: stop.set()) for sig in signals}
    told: StorageProblem | None = None
    try:
        while True:
            try:
                return make()
            except StorageError as exc:
                problem = exc.problem
            if told is None or told.kind != problem.kind:
                log.error("cannot open the database: %s: %s", problem.detail, problem.fix)
                notify("READY=1", f"STATUS=scans wait in the inbox: {problem.summary}")
            told = problem
            LIVE_ALERTS.raise_(problem.alert, problem.summary)
            notify("WATCHDOG=1")
            if stop.wait(FAULT_RETRY_SECONDS):
                return None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _log_outcome(outcome: FileOutcome, codes: dict[str, str | None]) -> None:
    if outcome.status == Outcome.QUARANTINED:
        log.warning("quarantined %s: %s", outcome.name, outcome.message)
    elif outcome.status == Outcome.DUPLICATE:
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
