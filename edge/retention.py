"""Retention: the box keeps a page's sealed bytes only as long as it needs them.

A box lives for years on one SD card, and central keeps every page anyway. So a
dossier's page bytes leave the box once three things hold, never before:

a. central's signed receipts cover every event of the dossier and the wrap of every
   data key it uses (``dossiers.sync = 'acknowledged'``, kept by edge/sync/outbox.py),
   and each page's blob rode an event those receipts cover: central commits a batch
   only with all its blobs verified, so it holds the bytes;
b. the dossier is complete, or its result was handed back;
c. ``page_retention_days`` have passed since both: since the later of the completion
   (or hand-back, the earlier of the two) and the receipt.

The receipt's time is that of the receipt covering the dossier's last event that
changed what central holds of it: a clerk opening the dossier (``audit.*``) or an
earlier purge does not restart the count, or a dossier looked at once a month would
never leave.

Under disk pressure (free space, counting the room purged pages left inside the
database, under ``purge_floor_mb``) rule c is waived: dossiers that meet a and b go
first, the one that would have been due first before the next, until the floor is met
again. When nothing meets a and b, the box keeps capturing into its reserve and
alarms (``alert.disk_low`` in the health summary, ``edge doctor``) long before intake
stops at ``min_free_mb``. Nothing central has not acknowledged is ever purged.

Metadata, the event chain, the blind index and the page rows stay; a purged page's
row carries ``purged_at``, its blob row keeps its id and size but no bytes, and a read
raises ``PagePurged``. Each dossier is purged in one transaction with its
``pages.purged`` event (page and blob ids, the reason; nothing personal), so a power
cut leaves the bytes with no mark, or the mark, the event and no bytes. The bytes
live in SQLite, so removing them is part of that same commit.
"""

from __future__ import annotations

import bisect
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.clock import iso, parse_iso
from edge.records import Ledger
from edge.settings import Settings
from edge.store import Store
from edge.sync.outbox import acked_through

log = logging.getLogger("edge")

PURGED = "pages.purged"
IGNORED = ("audit.viewed", "audit.searched", PURGED)
"""Events that do not restart the retention count (they change nothing central holds)."""
DAY_MS = 86_400_000
HOURLY_SECONDS = 3600.0
PRESSURE_SECONDS = 60.0
"""Under disk pressure with nothing to purge, how often to look again (a receipt may come)."""
SLICE_SECONDS = 5.0
"""The longest one retention pass holds the daemon's loop; what is left goes on next round."""
PRESSURE_ALERT = "disk_low"
PRESSURE_AT = "retention.pressure_at"
PRESSURE_KEEP_MS = DAY_MS
"""How long ``alert.disk_low`` stays after the box last purged early: an early purge means
the card is small for the office's volume, which regional IT should see on the fleet page."""


@dataclass(frozen=True)
class Candidate:
    dossier_id: str
    received_at: str
    due_ms: int
    """When rules a and b both started to hold: the later of completion and receipt."""


@dataclass
class Purge:
    """What one pass purged."""

    dossiers: int = 0
    pages: int = 0
    bytes: int = 0
    more: bool = False
    """The pass ran out of its time slice with dossiers left: the next one comes soon."""

    def add(self, other: Purge) -> None:
        self.dossiers += other.dossiers
        self.pages += other.pages
        self.bytes += other.bytes
        self.more = self.more or other.more


def _done_ms(row: sqlite3.Row) -> int | None:
    """When the dossier was finished at the counter: completed or handed back, the earlier."""
    times = []
    if row["status"] == "complete" and row["completed_at"]:
        times.append(parse_iso(row["completed_at"]))
    if row["handed_back_at"]:
        times.append(parse_iso(row["handed_back_at"]))
    return min(times) if times else None


def _candidate(row: sqlite3.Row, receipts: list[tuple[int, str]]) -> Candidate | None:
    done = _done_ms(row)
    if done is None or row["last_seq"] is None or not row["keys_acked_at"]:
        return None
    # receipts follow the chain: the first one reaching the event is the one that covered it
    at = bisect.bisect_left(receipts, (int(row["last_seq"]), ""))
    if at == len(receipts):
        return None
    acked = max(parse_iso(receipts[at][1]), parse_iso(row["keys_acked_at"]))
    return Candidate(row["id"], row["received_at"], max(done, acked))


def candidates(store: Store) -> list[Candidate]:
    """Dossiers meeting rules a and b, the one due first first (then by arrival)."""
    receipts = store.receipt_times()
    found = [
        c for r in store.retention_candidates(IGNORED) if (c := _candidate(r, receipts)) is not None
    ]
    return sorted(found, key=lambda c: (c.due_ms, c.received_at, c.dossier_id))


def purge_dossier(
    store: Store, ledger: Ledger, dossier_id: str, *, reason: str, not_after_ms: int | None
) -> Purge:
    """Purge one dossier's held pages if it still meets a and b (and is due by
    ``not_after_ms``, when given); one transaction with its ``pages.purged`` event.

    The rules are checked again inside the transaction: the clerk's UI may have written
    the dossier (reopened it, added a page) since the candidates were listed.
    """
    # The freed pages are not overwritten with zeros (SQLite's default here): that would
    # write every purged byte again into the WAL, on an SD card that is short of space.
    # What stays in them until new pages reuse them is ciphertext, under keys the box
    # keeps anyway for the dossier's metadata and events.
    previous = store.conn.execute("PRAGMA secure_delete").fetchone()[0]
    store.conn.execute("PRAGMA secure_delete=FAST")
    try:
        return _purge(store, ledger, dossier_id, reason=reason, not_after_ms=not_after_ms)
    finally:
        store.conn.execute(f"PRAGMA secure_delete={int(previous)}")


def _purge(
    store: Store, ledger: Ledger, dossier_id: str, *, reason: str, not_after_ms: int | None
) -> Purge:
    with store.transaction():
        rows = store.retention_candidates(IGNORED, dossier_id)
        found = _candidate(rows[0], store.receipt_times()) if rows else None
        if found is None or (not_after_ms is not None and found.due_ms > not_after_ms):
            return Purge()
        pages, blobs = store.purgeable(dossier_id, acked_through(store))
        if not pages and not blobs:
            return Purge()
        freed = store.mark_purged(pages, blobs, iso(store.time_ms()))
        ledger.record(
            dossier_id,
            PURGED,
            {"pages": pages, "blobs": blobs, "reason": reason, "bytes": freed},
        )
    return Purge(1, len(pages), freed)


def purge_due(
    store: Store, ledger: Ledger, settings: Settings, *, slice_seconds: float | None = None
) -> Purge:
    """The scheduled pass: every dossier for which all three rules hold.

    With ``slice_seconds`` it stops after that long (``more`` is then set): the first pass
    on a box upgraded with a year of dossiers must not hold the daemon's loop for minutes.
    """
    now = store.time_ms()
    limit = now - settings.page_retention_days * DAY_MS
    done = Purge()
    until = None if slice_seconds is None else time.monotonic() + slice_seconds
    for candidate in candidates(store):
        if candidate.due_ms > limit:
            break
        if until is not None and time.monotonic() >= until:
            done.more = True
            break
        done.add(
            purge_dossier(
                store, ledger, candidate.dossier_id, reason="retention", not_after_ms=limit
            )
        )
    if done.dossiers:
        log.info(
            "retention: purged %d page(s) of %d dossier(s) central holds (%d MB), "
            "%d days after receipt and completion",
            done.pages,
            done.dossiers,
            done.bytes // 2**20,
            settings.page_retention_days,
        )
    return done


WAL_ROOM = 8 * 2**20
"""Free space on the disk itself the free-space guard always keeps while new pages fill the
room purged pages left in the database: SQLite writes each transaction to the WAL first,
and checkpoints it back at 1,000 pages (4 MB); the file in hand is counted on top."""


def guard_reserve(min_free_mb: int, reusable: int) -> int:
    """The free disk space intake needs (before the file in hand): the reserve, less the
    room purged pages left inside the database, which new pages fill before it grows."""
    kept = min_free_mb * 2**20
    return max(kept - reusable, min(kept, WAL_ROOM))


def room(store: Store, folder: Path) -> int:
    """Free bytes for new pages: the filesystem's, and the database's free pages."""
    return shutil.disk_usage(folder).free + store.reusable_bytes()


def relieve(
    store: Store,
    ledger: Ledger,
    floor: int,
    free: Callable[[], int],
    *,
    slice_seconds: float | None = None,
) -> Purge:
    """Disk pressure: purge dossiers meeting a and b, oldest due first, until ``free()``
    reaches ``floor`` again (or ``slice_seconds`` ran out: ``more`` is then set)."""
    done = Purge()
    until = None if slice_seconds is None else time.monotonic() + slice_seconds
    for candidate in candidates(store):
        if free() >= floor:
            break
        if until is not None and time.monotonic() >= until:
            done.more = True
            break
        done.add(
            purge_dossier(
                store, ledger, candidate.dossier_id, reason="disk_pressure", not_after_ms=None
            )
        )
    if done.pages:
        # the WAL file keeps its largest size until truncated: give that back to the disk
        # too (best effort: a reader in the clerk's UI may hold it for now)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return done


class Keeper:
    """The daemon's retention: the scheduled purge once an hour, and early purges when the
    disk runs low. ``tick`` is cheap (a statvfs and a page count) between passes."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        folder: Path,
        settings: Callable[[], Settings],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.folder = folder
        self.settings = settings
        self.monotonic = monotonic
        self._next_pass = 0.0
        self._next_pressure = 0.0
        self._said = ""

    def tick(self) -> Purge:
        now = self.monotonic()
        settings = self.settings()
        floor = max(settings.purge_floor_mb, settings.min_free_mb) * 2**20
        done = Purge()
        if now >= self._next_pass:
            self._next_pass = now + HOURLY_SECONDS  # a pass that fails waits its hour too
            due = purge_due(self.store, self.ledger, settings, slice_seconds=SLICE_SECONDS)
            if due.more:
                self._next_pass = now + SLICE_SECONDS
            done.add(due)
        free = room(self.store, self.folder)
        if free < floor and now >= self._next_pressure:
            self._next_pressure = now + PRESSURE_SECONDS
            early = relieve(
                self.store,
                self.ledger,
                floor,
                lambda: room(self.store, self.folder),
                slice_seconds=SLICE_SECONDS,
            )
            if early.more:
                self._next_pressure = now
            done.add(early)
            self._pressure(settings, early, room(self.store, self.folder), floor)
        elif free >= floor:
            self._calm()
        return done

    def _pressure(self, settings: Settings, early: Purge, free: int, floor: int) -> None:
        """Say what the low disk led to: in the log (once per change) and the health summary."""
        mb = free // 2**20
        if early.pages:
            text = (
                f"disk low: purged {early.pages} page(s) of {early.dossiers} dossier(s) central "
                f"holds before their {settings.page_retention_days} days, oldest first; "
                f"{mb} MB free now; the card is small for this office: plan a larger one"
            )
            log.warning("%s", text)
        elif free < floor:
            text = (
                f"disk low: {mb} MB free, under the {floor // 2**20} MB floor, and no page "
                f"central has acknowledged can be purged; scans stop at {settings.min_free_mb} "
                "MB free: sync the box (link or stick) so old pages can go"
            )
            if "can be purged" not in self._said:  # logged once, until it changes
                log.warning("%s", text)
        else:
            return
        self._said = text
        with self.store.transaction():
            self.store.put_meta(f"alert.{PRESSURE_ALERT}", text)
            self.store.put_meta(PRESSURE_AT, str(self.store.time_ms()))

    def _calm(self) -> None:
        """Clear the alarm a day after the disk was last low (see ``PRESSURE_KEEP_MS``)."""
        if not self.store.meta(f"alert.{PRESSURE_ALERT}"):
            return
        since = int(self.store.meta(PRESSURE_AT) or 0)
        if self.store.time_ms() - since < PRESSURE_KEEP_MS:
            return
        self._said = ""
        with self.store.transaction():
            self.store.put_meta(f"alert.{PRESSURE_ALERT}", "")
