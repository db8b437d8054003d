"""Background sync for ``edge run``: a thread with its own database connection.

Capture never waits for it: the loop writes only short transactions of its own
(receipts, marks, downlink), and SQLite's WAL lets capture go on meanwhile. A
round starts when records are pending (checked every ``sync_interval_seconds``)
or when the downlink is due (``sync_poll_seconds``). A round that fails makes the
loop back off with full jitter, doubling up to ``sync_backoff_max_seconds``, so
a box whose link is down neither spins nor hammers central, and thousands of
boxes coming back after an outage do not return in step. Settings are re-read
every time, so regional IT can tune them from central.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

from edge.store import Store
from edge.sync import outbox
from edge.sync.client import Policy, Round, RoundReport
from edge.vault import Keyring

log = logging.getLogger("edge.sync")


class SyncLoop:
    def __init__(self, state: Path, *, policy: Policy | None = None) -> None:
        self.state = state
        self.policy = policy or Policy()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self.rounds = 0
        self.failures = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def backoff(self, cap: float, base: float) -> float:
        return random.uniform(0, min(cap, base * 2**self.failures))

    def _run(self) -> None:
        try:
            store = Store.open(self.state)
        except Exception:
            log.exception("sync cannot open the database; background sync is off")
            return
        retry_at = 0.0
        poll_at = 0.0
        try:
            while not self.stop_event.is_set():
                settings = store.settings()
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
                self.stop_event.wait(settings.sync_interval_seconds)
        finally:
            store.close()

    def _pending(self, store: Store) -> bool:
        last = store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        return last > outbox.acked_through(store) or outbox.summary(store)["keys"] > 0

    def _round(self, store: Store) -> RoundReport | None:
        self.rounds += 1
        try:
            report = Round(
                store, Keyring.load(self.state), policy=self.policy, stop=self.stop_event
            ).run()
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
