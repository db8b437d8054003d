"""Read-only queries behind the clerk's screens: counts and pages of list rows.

Metadata only (codes, statuses, times, return dates, page flags, scan file names):
nothing here needs the office key. The citizen's name a list shows is opened by
the screen for the rows on screen only (``Unlocked.citizen_name``). Every query
is a single short read, so the capture daemon writing at the same time is never
blocked and the UI never waits long for it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from edge.clock import parse_iso
from edge.desk import MERGED, RESULT_READY, day_bounds
from edge.domain import PortalStatus
from edge.records import COMPLETE, UNASSIGNED, WAITING_DETAILS
from edge.store import Store

OPEN = (UNASSIGNED, WAITING_DETAILS)

RETURNED = int(PortalStatus.DA_TRA_KET_QUA)
OVERDUE = (
    "appointment IS NOT NULL AND appointment != '' AND appointment < ? "
    f"AND handed_back_at IS NULL AND (central_status IS NULL OR central_status != {RETURNED})"
)
"""Rows whose return date (ISO, as the desk stores it) is before a day and not returned."""

SYNC_LAST_OK_KEYS = ("sync.last_ok", "sync.last_success", "sync.last")
SYNC_STALE_MS = 24 * 3_600_000
UPDATE_EVENTS = ("update.applied", "update.checked", "update.failed", "update.refused")


@dataclass(frozen=True)
class SyncState:
    """What sync (edge/sync/) has recorded, read defensively: it may not be set up yet.

    Sync keeps its state in its own tables (migration 3): the enrollment, batches
    with their receipts, cursors; a box that never enrolled simply has none.
    """

    central_url: str | None
    enrolled_at: str | None
    last_ok: str | None
    last_error: str | None
    """For the technician: may quote central's unsigned text (escaped by sync)."""
    last_error_code: str | None
    """The failed round's stable code: what the clerk is told is chosen from it."""
    batches_waiting: int
    events_waiting: int
    cursors: tuple[tuple[str, str], ...]

    @property
    def enrolled(self) -> bool:
        return self.central_url is not None

    def link(self, now_ms: int) -> str:
        """never enrolled, fresh (a receipt within a day), or stale."""
        if not self.enrolled:
            return "not_enrolled"
        if self.last_ok is None:
            return "stale"
        try:
            age = now_ms - parse_iso(self.last_ok)
        except ValueError:
            return "stale"
        return "ok" if age < SYNC_STALE_MS else "stale"


def _tables(store: Store) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def sync_state(store: Store) -> SyncState:
    tables = _tables(store)
    conn = store.conn
    central_url = enrolled_at = last_ok = None
    batches = 0
    acked = 0
    cursors: tuple[tuple[str, str], ...] = ()
    if "sync_enrollment" in tables:
        row = conn.execute("SELECT central_url, enrolled_at FROM sync_enrollment").fetchone()
        if row is not None:
            central_url, enrolled_at = row[0], row[1]
    if "sync_batches" in tables:
        row = conn.execute(
            "SELECT MAX(acknowledged_at), MAX(CASE WHEN receipt IS NOT NULL THEN last_seq END), "
            "SUM(receipt IS NULL) FROM sync_batches"
        ).fetchone()
        last_ok, acked, batches = row[0], int(row[1] or 0), int(row[2] or 0)
    if "sync_cursors" in tables:
        cursors = tuple(
            (r[0], r[1]) for r in conn.execute("SELECT name, value FROM sync_cursors ORDER BY name")
        )
    for key in SYNC_LAST_OK_KEYS:
        last_ok = last_ok or store.meta(key)
    events_waiting = max(0, last_seq(store) - acked)
    return SyncState(
        central_url,
        enrolled_at,
        last_ok,
        store.meta("sync.last_error") or None,
        store.meta("sync.last_error_code") or None,
        batches,
        events_waiting,
        cursors,
    )


def last_update(store: Store, *, window: int | None = None) -> tuple[str, str] | None:
    """(event type, time) of the newest update attempt, from the log's plain event types.

    ``window`` bounds the scan to the newest events (the home screen refreshes often).
    """
    floor = max(0, last_seq(store) - window) if window else 0
    marks = ",".join("?" * len(UPDATE_EVENTS))
    row = store.conn.execute(
        f"SELECT type, at FROM events WHERE seq > ? AND type IN ({marks}) "
        "ORDER BY seq DESC LIMIT 1",
        (floor, *UPDATE_EVENTS),
    ).fetchone()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class Glance:
    """Today at a glance: what the home screen shows."""

    received_today: int
    waiting: int
    unassigned: int
    reviews: int
    """Covers capture could not confirm: the clerk checks these first."""
    quality: int
    pending_sync: int
    sync: SyncState
    results: int
    handover: int
    quarantined: int
    update: tuple[str, str] | None
    free_bytes: int | None
    disk_alert: str | None


def last_seq(store: Store) -> int:
    row = store.conn.execute("SELECT MAX(seq) FROM events").fetchone()
    return int(row[0] or 0)


def glance(store: Store, today: date, free_bytes: Callable[[], int | None]) -> Glance:
    start, end = day_bounds(today)
    conn = store.conn
    row = conn.execute(
        """
        SELECT
          (SELECT COUNT(*) FROM dossiers WHERE received_at >= ? AND received_at < ?),
          (SELECT COUNT(*) FROM dossiers WHERE status IN (?, ?)),
          (SELECT COUNT(*) FROM dossiers WHERE status = ?),
          (SELECT COUNT(*) FROM dossiers WHERE sync IN ('pending', 'sent') AND status != ?),
          (SELECT COUNT(*) FROM dossiers WHERE central_status = ? AND handed_back_at IS NULL),
          (SELECT COUNT(*) FROM dossiers WHERE status = ? AND handed_over_on IS NULL),
          (SELECT COUNT(*) FROM quarantine WHERE status = 'held'),
          (SELECT COUNT(*) FROM dossiers WHERE needs_review = 1 AND status IN (?, ?))
        """,
        (start, end, *OPEN, UNASSIGNED, MERGED, RESULT_READY, COMPLETE, *OPEN),
    ).fetchone()
    quality = conn.execute(
        """
        SELECT COUNT(*) FROM dossiers d
        WHERE d.status IN (?, ?)
          AND EXISTS (SELECT 1 FROM pages p WHERE p.dossier_id = d.id AND p.flags != '[]'
                      AND p.deleted_at IS NULL)
        """,
        OPEN,
    ).fetchone()[0]
    return Glance(
        received_today=row[0],
        waiting=row[1],
        unassigned=row[2],
        reviews=row[7],
        quality=int(quality),
        pending_sync=row[3],
        sync=sync_state(store),
        results=row[4],
        handover=row[5],
        quarantined=row[6],
        update=last_update(store, window=20_000),
        free_bytes=free_bytes(),
        disk_alert=store.meta("alert.disk") or None,
    )


def disk_free(path: Path) -> Callable[[], int | None]:
    def free() -> int | None:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return None

    return free


# -- list sources for the virtualised dossier list -------------------------------------------


class DossierSource:
    """One filtered, ordered view of the dossiers table, fetched a block at a time.

    The list widget asks for the count and for rows by offset, so 100,000
    dossiers cost one block of rows in memory, never the whole table. Orders end
    on rowid, which every index carries, so SQLite walks an index instead of
    sorting; a block past the middle is read walking from the other end.
    """

    where = "status != 'merged'"
    params: tuple[Any, ...] = ()
    order: tuple[tuple[str, str], ...] = (("received_at", "DESC"), ("rowid", "DESC"))

    def __init__(self, store: Store) -> None:
        self.store = store
        self._count: int | None = None

    def count(self) -> int:
        sql = f"SELECT COUNT(*) FROM dossiers WHERE {self.where}"
        self._count = int(self.store.conn.execute(sql, self.params).fetchone()[0])
        return self._count

    def overdue(self, today: date) -> int:
        """How many of these are past their return date on ``today`` and not returned."""
        sql = f"SELECT COUNT(*) FROM dossiers WHERE ({self.where}) AND {OVERDUE}"
        params = (*self.params, today.isoformat())
        return int(self.store.conn.execute(sql, params).fetchone()[0])

    def _order(self, reverse: bool) -> str:
        flip = {"ASC": "DESC", "DESC": "ASC"}
        return ", ".join(f"{c} {flip[d] if reverse else d}" for c, d in self.order)

    def rows(self, offset: int, limit: int) -> list[dict[str, Any]]:
        total = self._count if self._count is not None else self.count()
        reverse = offset > total // 2
        if reverse:
            end = min(total, offset + limit)
            offset, limit = total - end, end - offset
        order = self._order(reverse)
        rows = self.store.conn.execute(
            f"""
            SELECT d.id, d.code, d.status, d.received_at, d.sync, d.central_status,
                   d.procedure_code, d.appointment, d.handed_back_at, d.handed_over_on,
                   d.needs_review,
                   (SELECT COUNT(*) FROM pages p
                     WHERE p.dossier_id = d.id AND p.deleted_at IS NULL) AS pages,
                   (SELECT json_group_array(p.flags) FROM pages p
                     WHERE p.dossier_id = d.id AND p.flags != '[]'
                       AND p.deleted_at IS NULL) AS flags
            FROM (SELECT rowid, id, code, status, received_at, sync, central_status,
                         procedure_code, appointment, handed_back_at, handed_over_on,
                         needs_review
                  FROM dossiers WHERE {self.where}
                  ORDER BY {order} LIMIT ? OFFSET ?) d
            ORDER BY {order}
            """,
            (*self.params, max(0, limit), max(0, offset)),
        ).fetchall()
        out = []
        for r in reversed(rows) if reverse else rows:
            item = dict(r)
            flags: set[str] = set()
            for page_flags in json.loads(r["flags"] or "[]"):
                flags.update(json.loads(page_flags))
            item["flags"] = sorted(flags)
            out.append(item)
        return out


class WaitingSource(DossierSource):
    """Scanned dossiers waiting for the clerk, oldest first: a queue is worked from its head.

    Covers capture could not confirm come before everything else (issue 10): until the
    clerk says "a new dossier" or "same as before", a citizen's pages may be in the
    wrong dossier.
    """

    where = "status IN ('unassigned', 'waiting_details')"
    order = (("needs_review", "DESC"), ("received_at", "ASC"), ("rowid", "ASC"))

    def reviews(self) -> int:
        sql = f"SELECT COUNT(*) FROM dossiers WHERE {self.where} AND needs_review = 1"
        return int(self.store.conn.execute(sql, self.params).fetchone()[0])


class AllSource(DossierSource):
    pass


class ResultsSource(DossierSource):
    """Results central says are ready, not yet handed to the citizen."""

    where = f"central_status = {RESULT_READY} AND handed_back_at IS NULL"
    order = (("appointment", "ASC"), ("received_at", "ASC"), ("rowid", "ASC"))


class HandoverSource(DossierSource):
    """Paper dossiers for one handover date, or those still waiting to go back."""

    order = (("code", "ASC"), ("rowid", "ASC"))

    def __init__(self, store: Store, on: date | None) -> None:
        super().__init__(store)
        if on is None:
            self.where = "status = 'complete' AND handed_over_on IS NULL"
            self.params = ()
        else:
            self.where = "handed_over_on = ?"
            self.params = (on.isoformat(),)


def return_dates(store: Store, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Return date and hand-back of the given dossiers (search results), by id."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = store.conn.execute(
            "SELECT id, appointment, handed_back_at, central_status FROM dossiers "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        out.update({r["id"]: dict(r) for r in rows})
    return out


def new_scans(store: Store, after_seq: int) -> list[tuple[str, int]]:
    """Dossiers capture opened after event ``after_seq``: (scan file name, how many), by file.

    Capture creates a dossier and adds its first page in one transaction, so a new
    dossier with a ``page.added`` beside its ``dossier.created`` came from a scan; one
    the clerk split off has its pages moved, not added. The name is the file of the
    dossier's first page, as the scanner wrote it (outside text: escape it to show it).
    """
    rows = store.conn.execute(
        """
        SELECT s.name AS name, COUNT(*) AS n FROM events e
        JOIN pages p ON p.dossier_id = e.dossier_id
          AND p.position = (SELECT MIN(position) FROM pages WHERE dossier_id = e.dossier_id)
        JOIN sources s ON s.sha256 = p.source_sha
        WHERE e.seq > ? AND e.type = 'dossier.created'
          AND EXISTS (SELECT 1 FROM events a WHERE a.seq > ? AND a.type = 'page.added'
                      AND a.dossier_id = e.dossier_id)
        GROUP BY s.name ORDER BY MIN(e.seq)
        """,
        (after_seq, after_seq),
    ).fetchall()
    return [(str(r["name"]), int(r["n"])) for r in rows]


def quarantine_rows(store: Store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT id, name, reason, message, bytes, at, key_id FROM quarantine "
        "WHERE status = 'held' ORDER BY at DESC"
    ).fetchall()
    return [dict(r) for r in rows]


def sync_counts(store: Store) -> dict[str, int]:
    rows = store.conn.execute(
        "SELECT sync, COUNT(*) FROM dossiers WHERE status != ? GROUP BY sync", (MERGED,)
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def central_counts(store: Store) -> dict[int, int]:
    rows = store.conn.execute(
        "SELECT central_status, COUNT(*) FROM dossiers "
        "WHERE central_status IS NOT NULL GROUP BY central_status"
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def meta_with_prefix(store: Store, *prefixes: str) -> list[tuple[str, str]]:
    rows = store.conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
    return [(r[0], r[1]) for r in rows if r[0].startswith(prefixes)]


def previous_dossier(store: Store, row: Any) -> Any:
    """The dossier "same as before" would add a reviewed dossier's pages to, or None.

    The one open in the scan job before it (``follows``), followed through any merge
    since, as ``DeskLedger.join_previous`` does.
    """
    target_id = row["follows"]
    seen = {row["id"]}
    while target_id is not None and target_id not in seen:
        seen.add(target_id)
        target = store.dossier(target_id)
        if target is None:
            return None
        if target["status"] != MERGED:
            return target
        target_id = target["merged_into"]
    return None


def pages(store: Store, dossier_id: str) -> list[dict[str, Any]]:
    out = []
    for r in store.pages(dossier_id):
        item = dict(r)
        item["flags"] = json.loads(r["flags"] or "[]")
        out.append(item)
    return out
