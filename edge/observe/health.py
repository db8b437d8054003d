"""The box's health in one JSON-able dict, and whether it is ready to take scans.

One reading (``snapshot``) feeds three consumers: ``/readyz`` and ``/metrics`` on the
box, and ``health_summary``, which the sync client sends at the end of every round
(``POST /v1/device/health``) so central's fleet page shows each box without ever
connecting to it (boxes sit behind carrier NAT).

Sync state is read defensively, so this works on a box that never enrolled and on
databases from before the sync tables existed:

* ``sync_batches`` (edge/sync/outbox.py): events up to the highest ``last_seq`` with a
  receipt are acknowledged; the newest ``acknowledged_at`` is the last good sync;
  batches without a receipt are in flight; ``event_blobs`` names the sealed blobs the
  unacknowledged events still have to carry;
* ``sync_cursors``: ``clock.offset_ms`` (central's clock minus ours, measured at the
  last contact) and ``errors.<kind>`` counters;
* ``meta``: ``sync.last_ok`` (ISO-8601 or epoch ms), ``sync.acked_seq``,
  ``sync.errors.<kind>`` and ``sync.last_error``, for a sync side that keeps its
  state there instead;
* ``dossiers.sync`` (pending/sent/acknowledged): dossiers not yet acknowledged.

Covers capture could not confirm (``dossiers.needs_review``, schema 8) are counted as
``open_reviews``, with the oldest one's arrival; when it has waited longer than
``REVIEW_OVERDUE_SECONDS`` the summary carries a ``review`` alert, so the fleet page,
``edge_alert`` and older centrals that only know alerts all flag it. A database from
before that column has no reviews.

Missing tables and keys mean "never synced" and "nothing acknowledged", which is the
truth on a box that has not enrolled yet.

Some alerts cannot wait for the database: a full disk or a filesystem turned read-only
is exactly when ``alert.*`` cannot be written, and the sync thread's own failures may
be the database's. The running process keeps those in ``LIVE_ALERTS``; every snapshot
taken in that process (``/readyz``, ``/metrics``, the summary sync sends) shows them
beside the stored ones.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import __version__
from edge.clock import iso, parse_iso
from edge.settings import Settings
from edge.store import DB_FILE, Store

LAST_SYNC_KEYS = ("sync.last_ok", "sync.last_success", "sync.last")
ACKED_SEQ_KEY = "sync.acked_seq"
SYNC_ERROR_PREFIX = "sync.errors."
ACKNOWLEDGED = "acknowledged"
SYNC_STALE_SECONDS = 24 * 3600
BEAT_STALE_SECONDS = 180.0
# A cover waiting for the clerk is normal for minutes or hours (they check it at the
# desk later that day); one still waiting the next day means nobody is checking them.
REVIEW_OVERDUE_SECONDS = 24 * 3600
REVIEW_ALERT = "review"


@dataclass
class Vitals:
    """What only the running daemon knows; the HTTP thread reads it, the main loop writes it.

    Plain attribute writes are atomic under the GIL, so no lock is needed for a reader
    that only wants a recent value.
    """

    watching: bool = False
    polling: bool = False
    started: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    stale_after: float = BEAT_STALE_SECONDS
    # pages capture sent to the clerk's review since start (one per ``FileOutcome.uncertain``)
    sent_to_review: int = 0

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def beat_age(self) -> float:
        return time.monotonic() - self.last_beat

    def alive(self) -> bool:
        return self.watching and self.beat_age() < self.stale_after


class LiveAlerts:
    """Alerts this process raises and clears without the database: its disk may be the
    trouble. Thread-safe: the daemon's loop and the sync thread write, HTTP threads read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[str, str] = {}

    def raise_(self, name: str, text: str) -> None:
        with self._lock:
            self._alerts[name] = text

    def clear(self, name: str) -> None:
        with self._lock:
            self._alerts.pop(name, None)

    def all(self) -> dict[str, str]:
        with self._lock:
            return dict(self._alerts)


LIVE_ALERTS = LiveAlerts()
STORAGE_ALERTS = ("disk", "storage")
"""Live alerts that mean the box cannot store scans now: /readyz says not ready."""


def read_only(state: Path) -> sqlite3.Connection:
    """A connection of the caller's own that cannot write, for one scrape or one probe."""
    path = state / DB_FILE
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def _meta_prefixed(conn: sqlite3.Connection, prefix: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
    )
    return {key[len(prefix) :]: value for key, value in rows}


def _time_ms(value: str | None) -> int | None:
    """Meta times are written as ISO-8601 or epoch milliseconds; tolerate both."""
    if not value:
        return None
    text = value.strip()
    try:
        return int(text) if text.isdigit() else parse_iso(text)
    except ValueError:
        return None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _min_free_bytes(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM settings WHERE key='min_free_mb'").fetchone()
    mb = json.loads(row[0]) if row else Settings().min_free_mb
    return int(mb) * 1024 * 1024


def _cursors(conn: sqlite3.Connection, tables: set[str], prefix: str) -> dict[str, str]:
    if "sync_cursors" not in tables:
        return {}
    rows = conn.execute(
        "SELECT name, value FROM sync_cursors WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
    )
    return {name[len(prefix) :]: value for name, value in rows}


def _acked_seq(conn: sqlite3.Connection, tables: set[str]) -> int:
    acked = _int(_meta(conn, ACKED_SEQ_KEY))
    if "sync_batches" in tables:
        row = conn.execute(
            "SELECT MAX(last_seq) FROM sync_batches WHERE receipt IS NOT NULL"
        ).fetchone()
        acked = max(acked, int(row[0] or 0))
    return acked


def _last_sync_ms(conn: sqlite3.Connection, tables: set[str]) -> int | None:
    times = [_time_ms(_meta(conn, key)) for key in LAST_SYNC_KEYS]
    if "sync_batches" in tables:
        row = conn.execute(
            "SELECT MAX(acknowledged_at) FROM sync_batches WHERE receipt IS NOT NULL"
        ).fetchone()
        times.append(_time_ms(row[0]))
    known = [ms for ms in times if ms is not None]
    return max(known) if known else None


def _outbox(conn: sqlite3.Connection, tables: set[str]) -> dict[str, int]:
    """What central has not acknowledged yet: events, the sealed bytes they carry, dossiers."""
    acked_seq = _acked_seq(conn, tables)
    events, event_bytes = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM events WHERE seq > ?",
        (acked_seq,),
    ).fetchone()
    dossiers = blob_bytes = 0
    has_marks = "sync" in _columns(conn, "dossiers")
    if has_marks:
        dossiers = conn.execute(
            "SELECT COUNT(*) FROM dossiers WHERE sync != ?", (ACKNOWLEDGED,)
        ).fetchone()[0]
    if "event_blobs" in tables:
        blob_bytes = conn.execute(
            "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE id IN "
            "(SELECT blob_id FROM event_blobs WHERE seq > ?)",
            (acked_seq,),
        ).fetchone()[0]
    elif has_marks:
        blob_bytes = conn.execute(
            """
            SELECT COALESCE(SUM(size), 0) FROM blobs WHERE id IN (
                SELECT p.blob_id FROM pages p JOIN dossiers d ON d.id = p.dossier_id
                WHERE d.sync != ?)
            """,
            (ACKNOWLEDGED,),
        ).fetchone()[0]
    batches = 0
    if "sync_batches" in tables:
        batches = conn.execute(
            "SELECT COUNT(*) FROM sync_batches WHERE receipt IS NULL"
        ).fetchone()[0]
    return {
        "dossiers": int(dossiers),
        "events": int(events),
        "bytes": int(event_bytes) + int(blob_bytes),
        "batches_in_flight": int(batches),
        "acked_seq": acked_seq,
    }


def _reference_alerts(conn: sqlite3.Connection, tables: set[str]) -> dict[str, str]:
    """A published catalogue or holiday calendar the box refuses, as an alert.

    The box then works from the next source (a hand-set file or the shipped sample), so
    the clerk sees procedures and return dates that may be a release old; regional IT must
    hear of it on the fleet page, not from a citizen given the wrong date (issue 12).
    """
    if "reference_data" not in tables:
        return {}
    from edge.catalogue import Calendar, parse

    checks = {"procedures": ("catalogue", parse), "holidays": ("holidays", Calendar.from_data)}
    alerts: dict[str, str] = {}
    for name, data in conn.execute(
        "SELECT name, data FROM reference_data WHERE name IN ('procedures', 'holidays')"
    ):
        what, check = checks[name]
        try:
            check(json.loads(data))
        except (ValueError, TypeError, KeyError) as exc:
            reason = " ".join(str(exc).split())[:160]
            alerts[f"reference.{name}"] = (
                f"published {what} not used ({reason}): publish a corrected one"
            )
    return alerts


def _reviews(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Dossiers waiting for the clerk to check their cover, and when the oldest arrived.

    The same rule as ``Store.review_count``: flagged until the clerk decides.
    """
    if "needs_review" not in _columns(conn, "dossiers"):
        return 0, None
    count, oldest = conn.execute(
        "SELECT COUNT(*), MIN(received_at) FROM dossiers WHERE needs_review = 1"
    ).fetchone()
    since = _time_ms(oldest)
    return int(count), iso(since) if since is not None else None


def _review_alert(count: int, oldest: str | None, now_ms: int) -> str | None:
    """The ``review`` alert's text once the oldest open review has waited too long."""
    if not count or oldest is None or now_ms - parse_iso(oldest) <= REVIEW_OVERDUE_SECONDS * 1000:
        return None
    return f"{count} dossier(s) waiting for the clerk to check the cover since {oldest}"


def snapshot(conn: sqlite3.Connection, state: Path, *, now_ms: int | None = None) -> dict[str, Any]:
    """Everything the box can say about itself from its database and disk, as plain data."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    tables = _tables(conn)
    dossiers = {
        status: int(n)
        for status, n in conn.execute("SELECT status, COUNT(*) FROM dossiers GROUP BY status")
    }
    quarantine = {
        status: int(n)
        for status, n in conn.execute("SELECT status, COUNT(*) FROM quarantine GROUP BY status")
    }
    last_sync_ms = _last_sync_ms(conn, tables)
    central_offset = _cursors(conn, tables, "clock.").get("offset_ms")
    floor_ms = _int(_meta(conn, "floor_ms"))
    usage = shutil.disk_usage(state)
    errors = {kind: _int(value) for kind, value in _meta_prefixed(conn, SYNC_ERROR_PREFIX).items()}
    for kind, value in _cursors(conn, tables, "errors.").items():
        errors[kind] = errors.get(kind, 0) + _int(value)
    alerts = {name: value for name, value in _meta_prefixed(conn, "alert.").items() if value}
    alerts.update(LIVE_ALERTS.all())
    alerts.update(_reference_alerts(conn, tables))
    open_reviews, oldest_review = _reviews(conn)
    overdue = _review_alert(open_reviews, oldest_review, now_ms)
    if overdue is not None:
        alerts[REVIEW_ALERT] = overdue
    return {
        "version": __version__,
        "office": _meta(conn, "office"),
        "schema": int(conn.execute("PRAGMA user_version").fetchone()[0]),
        "at": iso(now_ms),
        "pages": int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]),
        "last_capture": conn.execute("SELECT MAX(created) FROM pages").fetchone()[0],
        "events": int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]),
        "dossiers": dossiers,
        "open_reviews": open_reviews,
        "oldest_review": oldest_review,
        "quarantine": quarantine,
        "outbox": _outbox(conn, tables),
        "sync": {
            "last_ok": iso(last_sync_ms) if last_sync_ms is not None else "never",
            "age_seconds": (now_ms - last_sync_ms) / 1000 if last_sync_ms is not None else None,
            "errors": errors,
            "last_error": _meta(conn, "sync.last_error") or None,
        },
        "disk": {
            "free_bytes": int(usage.free),
            "total_bytes": int(usage.total),
            "min_free_bytes": _min_free_bytes(conn),
        },
        "clock": {
            "wall": iso(now_ms),
            "floor": iso(floor_ms),
            "offset_seconds": (now_ms - floor_ms) / 1000,
            "behind_floor_seconds": max(0, floor_ms - now_ms) / 1000,
            "central_offset_seconds": _int(central_offset) / 1000
            if central_offset is not None
            else None,
        },
        "alerts": alerts,
    }


def health_summary(store: Store, state: Path) -> dict[str, Any]:
    """The summary that rides every sync round to central's fleet page.

    Takes the caller's own ``Store`` (the sync thread's), so it is safe to call from the
    thread that already holds that connection; it only reads.
    """
    return snapshot(store.conn, state)


def readiness(state: Path, vitals: Vitals | None) -> dict[str, Any]:
    """Can this box take scans right now? Database, disk and watcher decide; sync only informs.

    A box that has not synced for a week still captures safely, so sync age is reported
    (and flagged ``stale``) but never makes the box unready.
    """
    checks: dict[str, dict[str, Any]] = {}
    data: dict[str, Any] | None = None
    try:
        conn = read_only(state)
        try:
            data = snapshot(conn, state)
        finally:
            conn.close()
        checks["database"] = {"ok": True, "detail": f"schema {data['schema']}"}
    except (sqlite3.Error, OSError) as exc:
        checks["database"] = {"ok": False, "detail": str(exc)}
        if any(name in LIVE_ALERTS.all() for name in STORAGE_ALERTS):
            checks["database"]["detail"] += " (the disk's fault, see 'storage')"
    if data is not None:
        disk = data["disk"]
        checks["disk"] = {
            "ok": disk["free_bytes"] >= disk["min_free_bytes"],
            "detail": f"{disk['free_bytes'] // 2**20} MB free, "
            f"{disk['min_free_bytes'] // 2**20} MB kept in reserve",
        }
        sync = data["sync"]
        age = sync["age_seconds"]
        checks["sync"] = {
            "ok": True,
            "last_ok": sync["last_ok"],
            "age_seconds": age,
            "stale": age is None or age > SYNC_STALE_SECONDS,
        }
        # Like sync, covers waiting for the clerk never stop the box from taking scans.
        count, oldest = data["open_reviews"], data["oldest_review"]
        checks["review"] = {
            "ok": True,
            "open": count,
            "oldest": oldest,
            "overdue": _review_alert(count, oldest, parse_iso(data["at"])) is not None,
        }
    live = LIVE_ALERTS.all()
    faults = [live[name] for name in STORAGE_ALERTS if name in live]
    checks["storage"] = {
        "ok": not faults,
        "detail": "; ".join(faults) if faults else "the state takes writes",
    }
    if vitals is None:
        checks["watcher"] = {"ok": False, "detail": "no daemon in this process"}
    else:
        checks["watcher"] = {
            "ok": vitals.alive(),
            "detail": ("polling" if vitals.polling else "inotify")
            if vitals.watching
            else "not watching",
            "beat_age_seconds": round(vitals.beat_age(), 3),
        }
    ready = all(c["ok"] for c in checks.values()) and {"database", "disk"} <= checks.keys()
    alerts = dict(data["alerts"]) if data is not None else live
    return {"ready": ready, "checks": checks, "alerts": alerts}
