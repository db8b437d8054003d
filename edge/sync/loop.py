"""Background sync for ``edge run``: a thread with its own database connection.

Capture never waits for it: the loop writes only short transactions of its own
(receipts, marks, downlink), and SQLite's WAL lets capture go on meanwhile. A
round starts when records are pending (checked every ``sync_interval_seconds``)
or when the downlink is due (``sync_poll_seconds``). A round that fails makes the
loop back off with full jitter, doubling up to ``sync_backoff_max_seconds``, so
a box whose link is down neither spins nor hammers central, and thousands of
boxes coming back after an outage do not return in step. Settings are re-read
every time, so regional IT can tune them from central.

The thread never ends on an error. Whatever goes wrong outside a round's own
handling (the database unreadable, a disk that fails, a bug) is logged, raises
the ``sync`` alert (on /readyz, /metrics and the summary sent to central), and is
retried with the same backoff, on a freshly opened database; the alert clears at
the first pass that works. ``ensure_running`` restarts a thread that died anyway.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import threading
import time
from pathlib import Path

from edge.observe.health import LIVE_ALERTS
from edge.settings import Settings
from edge.store import Store, StoreError
from edge.sync import outbox
from edge.sync.client import Policy, Round, RoundReport
from edge.vault import Keyring

log = logging.getLogger("edge.sync")

SYNC_ALERT = "sync"
MIN_RETRY_SECONDS = 1.0
"""Full jitter can draw a delay near zero; a failing database must not be hammered."""


class SyncLoop:
    def __init__(self, state: Path, *, policy: Policy | None = None) -> None:
        self.state = state
        self.policy = policy or Policy()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self.rounds = 0
        self.failures = 0
        self.errors = 0
        """Consecutive passes that failed outside a round (database, disk, bugs)."""
        self.last_error: str | None = None

    def start(self) -> None:
        self.thread.start()

    def ensure_running(self) -> bool:
        """Called from the daemon's loop: restart a sync thread that died; True if it had."""
        if self.stop_event.is_set() or self.thread.is_alive() or self.thread.ident is None:
            return False
        log.error("the background sync thread had stopped: starting it again")
        LIVE_ALERTS.raise_(SYNC_ALERT, "background sync had stopped; restarted")
        self.thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self.thread.start()
        return True

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def backoff(self, cap: float, base: float) -> float:
        return random.uniform(0, min(cap, base * 2**self.failures))

    def _run(self) -> None:
        store: Store | None = None
        settings = Settings()
        retry_at = 0.0
        poll_at = 0.0
        try:
            while not self.stop_event.is_set():
                wait = settings.sync_interval_seconds
                try:
                    if store is None:
                        store = Store.open(self.state)
                    settings = store.settings()
                    wait = settings.sync_interval_seconds
                    now = time.monotonic()
                    due = now >= retry_at and (now >= poll_at or self._pending(store))
                    if due and outbox.enrollment(store) is not None:
                        report = self._round(store)
                        if report is None or report.error:
                            self.failures += 1
                            retry_at = time.monotonic() + self.backoff(
                                settings.sync_backoff_max_seconds, settings.sync_interval_seconds
                            )
                        else:
                            self.failures = 0
                            poll_at = time.monotonic() + settings.sync_poll_seconds
                    self._recovered()
                except Exception as exc:
                    wait = self._failed(exc, settings)
                    if isinstance(exc, (sqlite3.Error, StoreError, OSError)) and store is not None:
                        # a connection that met a failing disk is not trusted again
                        with contextlib.suppress(sqlite3.Error):
                            store.close()
                        store = None
                self.stop_event.wait(wait)
        finally:
            if store is not None:
                with contextlib.suppress(sqlite3.Error):
                    store.close()

    def _failed(self, exc: Exception, settings: Settings) -> float:
        """Log, alert and back off after a pass that failed outside a round's own handling."""
        self.errors += 1
        delay = max(
            MIN_RETRY_SECONDS,
            random.uniform(
                0,
                min(
                    settings.sync_backoff_max_seconds,
                    settings.sync_interval_seconds * 2**self.errors,
                ),
            ),
        )
        text = f"{type(exc).__name__}: {exc}"
        # the database or its disk is said in one line; anything else is a bug: its
        # traceback is logged the first time, for the report to regional IT
        bug = not isinstance(exc, (sqlite3.Error, StoreError, OSError))
        log.error(
            "background sync failed (%s); retrying in %.0f s",
            text,
            delay,
            exc_info=exc if bug and text != self.last_error else None,
        )
        self.last_error = text
        LIVE_ALERTS.raise_(
            SYNC_ALERT,
            f"background sync failing ({self.errors} time(s) in a row): {text}; "
            f"retrying in {delay:.0f} s",
        )
        return delay

    def _recovered(self) -> None:
        if self.errors:
            log.warning("background sync works again after %d failed pass(es)", self.errors)
        self.errors = 0
        self.last_error = None
        LIVE_ALERTS.clear(SYNC_ALERT)

    def _pending(self, store: Store) -> bool:
        last = store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        return last > outbox.acked_through(store) or outbox.summary(store)["keys"] > 0

    def _round(self, store: Store) -> RoundReport | None:
        self.rounds += 1
        try:
            report = Round(
                store, Keyring.load(self.state), policy=self.policy, stop=self.stop_event
            ).run()
        except (sqlite3.Error, StoreError):
            raise  # the database or its disk: the loop alerts, backs off, reopens
        except Exception:
            log.exception("sync round failed unexpectedly; backing off")
            return None
        if report.error:
            log.warning("sync: %s", report.error)
        elif report.batches or sum(report.downlink.values()):
            log.info(
                "sync: %d batch(es), %d event(s) acknowledged; %d downlink item(s)",
                report.batches,
                report.events,
                sum(report.downlink.values()),
            )
        return report
