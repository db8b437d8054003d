"""``edge doctor``: every check a technician would do by hand, with the fix in words."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.clock import TOLERANCE_MS, iso
from edge.durable import check_storage, damaged, storage_problem
from edge.retention import guard_reserve
from edge.settings import Settings
from edge.store import DB_FILE, StorageError, Store, StoreError
from edge.vault import Keyring, VaultError


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_zbar() -> Check:
    try:
        from pyzbar import pyzbar  # noqa: F401
    except (ImportError, OSError) as exc:
        return Check("libzbar", "fail", f"cannot load libzbar ({exc})", "apt-get install libzbar0")
    return Check("libzbar", "ok", "libzbar loads")


def _span(ms: int) -> str:
    """A duration as a technician reads it: seconds, minutes, hours or days."""
    seconds = abs(ms) // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def check_clock(store: Store) -> Check:
    """Whether the wall clock can be believed, and whether it once could not.

    A box without a real-time clock can be wrong both ways. Behind: the wall clock is
    earlier than the newest trusted time (the floor). Ahead now: at the last contact
    central's clock (``clock.offset_ms``) disagreed. Ahead once: the order clock (HLC)
    is still ahead of the time, which only happens when something was recorded while
    the wall clock ran ahead; the box has recovered (times follow the wall clock again,
    sign-in delays run on the monotonic clock), but what was recorded then carries
    wrong times and the technician should know when and why. A year past the floor
    without central's word is also called out: it is a clock that ran ahead or a box
    that has not synced for a year, and both need a visit.
    """
    clock = store.clock
    wall = clock.wall_ms()
    findings: list[tuple[str, str]] = []
    behind = clock.behind_floor_ms()
    if behind > 60_000:
        findings.append(
            (
                f"wall clock is {_span(behind)} behind the newest trusted time "
                f"{iso(clock.floor_ms)}; times are kept from there on",
                "connect to the network so the clock syncs, or set it with 'date -s'",
            )
        )
    row = store.conn.execute(
        "SELECT value FROM sync_cursors WHERE name = 'clock.offset_ms'"
    ).fetchone()
    offset = int(row[0]) if row is not None and str(row[0]).lstrip("-").isdigit() else 0
    if abs(offset) > TOLERANCE_MS:
        side = "ahead of" if offset < 0 else "behind"
        findings.append(
            (
                f"at the last contact with central this box's clock was {_span(offset)} "
                f"{side} central's",
                "turn time sync on ('timedatectl set-ntp true') or set the clock with "
                "'date -s', then sync again",
            )
        )
    ahead = clock.order_ahead_ms()
    if ahead > TOLERANCE_MS:
        findings.append(
            (
                f"the clock ran ahead once: records are ordered up to {iso(clock.last.ms)}, "
                f"{_span(ahead)} after now; those recorded then carry wrong times, their "
                "order is kept and the box has recovered",
                "find out why the clock jumped (a bad time server, a wrong 'date -s') and "
                "keep time sync on; nothing needs repair",
            )
        )
    if clock.floor_ms and wall - clock.floor_ms > 366 * 86_400_000:
        findings.append(
            (
                f"the wall clock says {iso(wall)}, {_span(wall - clock.floor_ms)} past the "
                f"newest trusted time {iso(clock.floor_ms)}",
                "sync with central (online or by stick) so the box learns the right time; "
                "if it has synced lately, set the clock with 'date -s'",
            )
        )
    if not findings:
        return Check("clock", "ok", "wall clock agrees with the newest trusted time")
    return Check(
        "clock", "warn", "; ".join(d for d, _ in findings), "; ".join(f for _, f in findings)
    )


def _reviews(store: Store) -> Check:
    """Covers capture could not read for sure hold their pages out of every dossier until a
    clerk decides, so a box where nobody does so is a box filing nothing."""
    waiting = store.open_reviews()
    if not waiting:
        return Check("reviews", "ok", "no scanned cover waits for the clerk")
    return Check(
        "reviews",
        "warn",
        f"{len(waiting)} scanned cover(s) wait for the clerk, the oldest since "
        f"{waiting[0]['received_at']}",
        "ask the clerk to open the dossiers marked 'Cần kiểm tra bìa' and decide each one",
    )


def check_disk(state: Path) -> Check:
    """Free space against the reserve and the purge floor, and a real write: a filesystem
    the kernel turned read-only after an SD card error still calls itself "rw".

    Room that retention's purges left inside the database counts as free, as it does for
    the daemon's guard. Under the purge floor (``purge_floor_mb``) the box purges pages
    central holds early; when none can go it only alarms, long before intake stops at the
    reserve: that alarm is a warning here, while there is still time to sync.
    """
    reserve_mb, floor_mb, reusable, alert = _disk_state(state)
    problem = check_storage(state, guard_reserve(reserve_mb, reusable), probe=True)
    if problem is not None:
        return Check("disk", "fail", problem.detail, problem.fix)
    free = shutil.disk_usage(state).free
    room = f"{free // 2**20} MB free" + (
        f" and {reusable // 2**20} MB of purged pages' room in the database" if reusable else ""
    )
    if free + reusable < max(floor_mb, reserve_mb) * 2**20:
        return Check(
            "disk",
            "warn",
            f"{room}, under the {floor_mb} MB floor where old pages central holds are purged "
            f"early; scans stop at {reserve_mb} MB" + (f" ({alert})" if alert else ""),
            "sync the box (link or stick) so central acknowledges its pages and old ones can "
            "be purged; if this comes back, the card is small for this office: plan a larger one",
        )
    return Check(
        "disk",
        "ok",
        f"{room} (reserve {reserve_mb} MB, purge floor {floor_mb} MB), writable",
    )


def _disk_state(state: Path) -> tuple[int, int, int, str]:
    """The reserve and the purge floor regional IT set, the database's free room and the
    disk-pressure alarm, read without writing anything."""
    defaults = Settings()
    reserve_mb, floor_mb, reusable, alert = defaults.min_free_mb, defaults.purge_floor_mb, 0, ""
    try:
        conn = _read_only(state)
    except sqlite3.Error:
        return reserve_mb, floor_mb, reusable, alert
    try:
        for key, value in conn.execute(
            "SELECT key, value FROM settings WHERE key IN ('min_free_mb', 'purge_floor_mb')"
        ):
            if key == "min_free_mb":
                reserve_mb = int(json.loads(value))
            else:
                floor_mb = int(json.loads(value))
        pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        reusable = int(pages) * int(conn.execute("PRAGMA page_size").fetchone()[0])
        row = conn.execute("SELECT value FROM meta WHERE key = 'alert.disk_low'").fetchone()
        alert = str(row[0]) if row and row[0] else ""
    except (sqlite3.Error, ValueError, TypeError):
        pass  # what could be read stands; the rest keeps its default
    finally:
        conn.close()
    return reserve_mb, floor_mb, reusable, alert


def _read_only(state: Path) -> sqlite3.Connection:
    """A connection that writes nothing, even on a disk that refuses every write.

    A WAL database normally needs its shared-memory file, which a full or read-only
    disk may not let SQLite create; ``immutable`` then reads the main file alone (what
    was committed but not yet checkpointed stays in the WAL file, untouched).
    """
    uri = (state / DB_FILE).as_uri()
    for mode in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=5)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            if mode.endswith("immutable=1"):
                raise
            continue
        return conn
    raise AssertionError("unreachable")


def _integrity(conn: sqlite3.Connection) -> str | None:
    """None when ``PRAGMA integrity_check`` is happy, else its first findings on one line."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(100)")]
    if rows == ["ok"]:
        return None
    findings = [
        " ".join(line.split())
        for row in rows
        for line in row.splitlines()
        if line.strip() and not line.startswith("***")
    ]
    more = f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
    return f"integrity_check: {'; '.join(findings[:3])}{more}"


def _damaged(state: Path, cause: str) -> Check:
    problem = damaged(state / DB_FILE, cause)
    return Check("database", "fail", problem.detail, problem.fix)


def _database(store: Store, state: Path) -> list[Check]:
    """Integrity and the hash chain; a read that fails says why (damage, or the disk)."""
    try:
        result = _integrity(store.conn)
        if result is not None:
            return [_damaged(state, result)]
        broken = store.verify_chain()
        if broken is not None:
            return [
                Check(
                    "event log",
                    "fail",
                    f"hash chain broken at event {broken}",
                    "report to regional IT: records were altered outside the application",
                )
            ]
        return [Check("database", "ok", f"integrity ok, {store.count('events')} events chained")]
    except sqlite3.Error as exc:
        return [_read_failure(exc, state)]


def _read_failure(exc: sqlite3.Error, state: Path) -> Check:
    """A read that failed: the disk's fault when it is, damage otherwise."""
    problem = storage_problem(exc, state / DB_FILE)
    if problem is None or problem.kind == "damaged":
        return _damaged(state, str(exc))
    return Check("database", "fail", problem.detail, problem.fix)


def _database_read_only(state: Path, error: StorageError) -> Check:
    """The database when its disk refuses writes: checked read-only, never blamed for the disk."""
    try:
        conn = _read_only(state)
    except sqlite3.Error as exc:
        return Check(
            "database",
            "warn",
            f"not checked: it cannot even be read while {error.problem.summary} ({exc})",
            "fix the disk first (see 'disk'), then run 'edge doctor' again; "
            "do not restore the database from backup",
        )
    try:
        result = _integrity(conn)
    except sqlite3.DatabaseError as exc:
        result = f"{exc}"
    finally:
        conn.close()
    if result is not None:
        return _damaged(state, result)
    wal = state / f"{DB_FILE}-wal"
    pending = wal.exists() and wal.stat().st_size > 0
    return Check(
        "database",
        "warn",
        "integrity ok (checked read-only"
        + ("; recent changes wait in the WAL file and are kept" if pending else "")
        + f"), but it cannot take writes: {error.problem.summary}",
        "fix the disk (see 'disk'); the database is not damaged, do not restore it from backup",
    )


def run_checks(state: Path, inbox: str | None = None) -> list[Check]:
    checks = [check_zbar()]
    if not (state / DB_FILE).exists():
        checks.append(
            Check("state", "fail", f"{state} is not a provisioned box", "run 'edge init'")
        )
        return checks
    try:
        keyring = Keyring.load(state)
        keyring.sealer().new_key()
        checks.append(
            Check("keys", "ok", f"office {keyring.office}, {len(keyring.clerks())} clerk(s)")
        )
    except (VaultError, ValueError, KeyError, OSError) as exc:
        checks.append(
            Check("keys", "fail", str(exc), "restore keyring.json from the provisioning backup")
        )
    # the disk before the database: a full or read-only disk explains a database that
    # will not open, and must never read as "damaged, restore from backup"
    checks.append(check_disk(state))
    try:
        store = Store.open(state)
    except StorageError as exc:
        checks.append(_database_read_only(state, exc))
        return checks + _inbox_checks(inbox)
    except StoreError as exc:
        problem = exc.problem
        checks.append(
            Check("database", "fail", problem.detail, problem.fix)
            if problem is not None
            else Check("database", "fail", str(exc))
        )
        return checks + _inbox_checks(inbox)
    try:
        found = _database(store, state)
        checks.extend(found)
        if all(c.name != "database" or c.status == "ok" for c in found):
            checks.append(check_clock(store))
            checks.append(_reviews(store))
    except sqlite3.Error as exc:
        checks.append(_read_failure(exc, state))
    finally:
        with contextlib.suppress(sqlite3.Error):
            store.close()
    return checks + _inbox_checks(inbox)


def _inbox_checks(inbox: str | None) -> list[Check]:
    checks: list[Check] = []
    if inbox is not None:
        path = Path(inbox).expanduser()
        if not path.is_dir():
            checks.append(Check("inbox", "fail", f"{path} does not exist", f"mkdir -p {path}"))
        elif not os.access(path, os.W_OK | os.X_OK):
            checks.append(
                Check("inbox", "fail", f"{path} is not writable", "fix the folder's owner/mode")
            )
        else:
            checks.append(Check("inbox", "ok", f"{path} is writable"))
    return checks
