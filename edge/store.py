"""The box's database: schema, migrations, the event log and the queries.

SQLite in WAL mode with ``synchronous=FULL``: a power cut may lose the moment in
hand, never a committed dossier and never the database. Writers take short
``BEGIN IMMEDIATE`` transactions; readers (the clerk UI, ``edge dossiers``) never
block the daemon. The store only ever sees ciphertext for page bytes, personal
fields and event payloads: sealing happens in ``edge.vault`` before bytes get here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.clock import Clock, Hlc, iso
from edge.durable import StorageProblem, damaged, storage_problem
from edge.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import sqlite_utils

DB_FILE = "edge.db"
GENESIS = "0" * 64


class StoreError(Exception):
    """The database cannot be used; the message says what to do.

    ``problem``, when known, splits it into what happened and what to do (``edge doctor``
    shows them apart).
    """

    def __init__(self, message: str, *, problem: StorageProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


class PagePurged(StoreError):
    """The page's sealed bytes were purged from this box by retention; central keeps them."""


class StorageError(StoreError):
    """The database is fine as far as anyone knows, but its disk cannot take writes now
    (full, turned read-only, I/O errors): wait or fix the disk, never restore a backup."""

    problem: StorageProblem

    def __init__(self, problem: StorageProblem) -> None:
        super().__init__(problem.message, problem=problem)


def store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """The one-line error for a database that failed: its disk when it is the disk's fault."""
    problem = storage_problem(exc, path)
    if problem is not None and problem.kind != "damaged":
        return StorageError(problem)
    problem = problem or damaged(path, str(exc))
    return StoreError(problem.message, problem=problem)


MIGRATIONS: list[str] = [
    # 1: the appliance core.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE data_keys (
        key_id TEXT PRIMARY KEY,
        dossier_id TEXT,
        wrapped_office BLOB NOT NULL,
        wrapped_central BLOB,
        created TEXT NOT NULL
    );
    CREATE INDEX data_keys_dossier ON data_keys(dossier_id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        dossier_id TEXT,
        type TEXT NOT NULL,
        key_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        at TEXT NOT NULL,
        hlc TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    );
    CREATE INDEX events_dossier ON events(dossier_id);
    CREATE TABLE blobs (id TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL);
    CREATE TABLE dossiers (
        id TEXT PRIMARY KEY,
        code TEXT UNIQUE,
        status TEXT NOT NULL,
        received_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        key_id TEXT NOT NULL,
        fields BLOB,
        fields_key_id TEXT,
        sync TEXT NOT NULL DEFAULT 'pending',
        central_status INTEGER
    );
    CREATE INDEX dossiers_status ON dossiers(status);
    CREATE TABLE pages (
        id TEXT PRIMARY KEY,
        dossier_id TEXT NOT NULL REFERENCES dossiers(id),
        position INTEGER NOT NULL,
        blob_id TEXT NOT NULL REFERENCES blobs(id),
        key_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        width INTEGER,
        height INTEGER,
        dpi REAL,
        flags TEXT NOT NULL DEFAULT '[]',
        attrs BLOB,
        source_sha TEXT NOT NULL,
        source_index INTEGER NOT NULL,
        created TEXT NOT NULL,
        UNIQUE (source_sha, source_index)
    );
    CREATE INDEX pages_dossier ON pages(dossier_id, position);
    CREATE TABLE sources (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        job_id INTEGER,
        pages_done INTEGER NOT NULL DEFAULT 0,
        complete INTEGER NOT NULL DEFAULT 0,
        received TEXT NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        open_dossier_id TEXT,
        closed INTEGER NOT NULL DEFAULT 0,
        opened TEXT NOT NULL
    );
    CREATE INDEX jobs_open ON jobs(key, closed);
    CREATE TABLE quarantine (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        sha256 TEXT,
        bytes INTEGER,
        key_id TEXT,
        blob_ids TEXT NOT NULL DEFAULT '[]',
        at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'held'
    );
    CREATE INDEX quarantine_sha ON quarantine(sha256);
    CREATE TABLE blind_index (
        term TEXT NOT NULL,
        dossier_id TEXT NOT NULL,
        PRIMARY KEY (term, dossier_id)
    ) WITHOUT ROWID;
    """,
    # 2: the clerk's desk (edge/desk.py): sign-in throttling, drafts, dossier details.
    """
    CREATE TABLE clerk_logins (
        login TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        lockouts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL DEFAULT 0,
        locked_until_ms INTEGER NOT NULL DEFAULT 0,
        updated TEXT NOT NULL
    );
    CREATE TABLE drafts (
        dossier_id TEXT PRIMARY KEY REFERENCES dossiers(id),
        clerk TEXT NOT NULL,
        key_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        updated TEXT NOT NULL
    );
    ALTER TABLE dossiers ADD COLUMN procedure_code TEXT;
    ALTER TABLE dossiers ADD COLUMN appointment TEXT;
    ALTER TABLE dossiers ADD COLUMN completed_at TEXT;
    ALTER TABLE dossiers ADD COLUMN merged_into TEXT;
    ALTER TABLE dossiers ADD COLUMN handed_back_at TEXT;
    ALTER TABLE dossiers ADD COLUMN handed_over_on TEXT;
    CREATE INDEX dossiers_received ON dossiers(received_at);
    CREATE INDEX dossiers_status_received ON dossiers(status, received_at);
    """,
    # 3: sync with central (issue 3). Which blobs each event references (the
    # box cannot read sealed payloads unattended, so the link is kept in clear),
    # back-filled for events written before this migration: records writes a
    # page row then its page.added event, and a quarantine row then its
    # file.quarantined event, so the k-th of each pair matches.
    """
    CREATE TABLE event_blobs (
        seq INTEGER NOT NULL,
        blob_id TEXT NOT NULL,
        PRIMARY KEY (seq, blob_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO event_blobs(seq, blob_id)
        SELECT e.seq, p.blob_id FROM
            (SELECT seq, dossier_id,
                    ROW_NUMBER() OVER (PARTITION BY dossier_id ORDER BY seq) AS n
             FROM events WHERE type = 'page.added') e
        JOIN
            (SELECT blob_id, dossier_id,
                    ROW_NUMBER() OVER (PARTITION BY dossier_id ORDER BY rowid) AS n
             FROM pages) p
        ON p.dossier_id = e.dossier_id AND p.n = e.n;
    INSERT OR IGNORE INTO event_blobs(seq, blob_id)
        SELECT e.seq, j.value FROM
            (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) AS n
             FROM events WHERE type = 'file.quarantined') e
        JOIN
            (SELECT blob_ids, ROW_NUMBER() OVER (ORDER BY rowid) AS n FROM quarantine) q
        ON q.n = e.n, json_each(q.blob_ids) j;
    CREATE TABLE sync_enrollment (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        device_id TEXT NOT NULL,
        central_url TEXT NOT NULL,
        office TEXT NOT NULL,
        enrolled_at TEXT NOT NULL
    );
    CREATE TABLE sync_cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sync_batches (
        n INTEGER PRIMARY KEY,
        batch_id TEXT NOT NULL UNIQUE,
        after_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        events INTEGER NOT NULL,
        blobs TEXT NOT NULL,
        document TEXT,
        created TEXT NOT NULL,
        sent_via TEXT,
        receipt TEXT,
        acknowledged_at TEXT
    );
    CREATE INDEX sync_batches_open ON sync_batches(receipt) WHERE receipt IS NULL;
    CREATE TABLE sync_keys (
        key_id TEXT PRIMARY KEY,
        batch_n INTEGER NOT NULL REFERENCES sync_batches(n)
    );
    CREATE TABLE sync_uploads (
        blob_id TEXT PRIMARY KEY,
        confirmed INTEGER NOT NULL,
        length INTEGER NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE INDEX events_key ON events(key_id);
    """,
    # 4: signed fleet updates (issue 5, edge/update/): reference data regional IT
    # publishes, and clerk account changes waiting for a signed-in clerk (the office
    # key they need is only unwrapped then; see docs/updates.md).
    """
    CREATE TABLE reference_data (
        name TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        source TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE clerk_changes (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        op TEXT NOT NULL,
        sealed BLOB,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        received TEXT NOT NULL,
        done TEXT
    );
    CREATE INDEX clerk_changes_status ON clerk_changes(status, seq);
    """,
    # 5: the clerk's desk again: records.set_fields replaces a dossier's blind-index
    # terms on every save, and without this index each save scanned the whole index
    # (quadratic when many dossiers are written, ~0.3 s a save at 100,000 dossiers).
    """
    CREATE INDEX blind_index_dossier ON blind_index(dossier_id);
    """,
    # 6: the clerk's desk: find a dossier by any part of its code (clerks type the
    # end of it) without scanning every code; a LIKE '%...%' over 100,000 codes took
    # 20-80 ms. A trigram index kept by triggers, whoever writes the dossier row.
    """
    CREATE VIRTUAL TABLE dossier_codes USING fts5(
        code, dossier_id UNINDEXED, tokenize = 'trigram'
    );
    INSERT INTO dossier_codes(code, dossier_id)
        SELECT code, id FROM dossiers WHERE code IS NOT NULL;
    CREATE TRIGGER dossier_codes_insert AFTER INSERT ON dossiers
    WHEN new.code IS NOT NULL BEGIN
        INSERT INTO dossier_codes(code, dossier_id) VALUES (new.code, new.id);
    END;
    CREATE TRIGGER dossier_codes_update AFTER UPDATE OF code ON dossiers
    WHEN new.code IS NOT old.code BEGIN
        DELETE FROM dossier_codes WHERE old.code IS NOT NULL AND dossier_id = old.id;
        INSERT INTO dossier_codes(code, dossier_id)
            SELECT new.code, new.id WHERE new.code IS NOT NULL;
    END;
    CREATE TRIGGER dossier_codes_delete AFTER DELETE ON dossiers
    WHEN old.code IS NOT NULL BEGIN
        DELETE FROM dossier_codes WHERE dossier_id = old.id;
    END;
    """,
    # 7: the clerk's home screen counts what waits for sync, results and paper
    # handover every time the database changes; at 100,000 dossiers each count was a
    # 30-45 ms table scan without these.
    """
    CREATE INDEX dossiers_sync ON dossiers(sync, status);
    CREATE INDEX dossiers_central ON dossiers(central_status, handed_back_at)
        WHERE central_status IS NOT NULL;
    CREATE INDEX dossiers_handover ON dossiers(status, handed_over_on);
    """,
    # 8: every page in the right dossier (issue 10). A cover whose code capture could
    # not confirm opens a dossier that waits for the clerk: `needs_review` until they
    # say "a new dossier" or "same as before"; `follows` is the dossier that was open
    # in the job before it, the one "same as before" merges into.
    """
    ALTER TABLE dossiers ADD COLUMN needs_review INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dossiers ADD COLUMN follows TEXT;
    CREATE INDEX dossiers_review ON dossiers(needs_review) WHERE needs_review = 1;
    """,
    # 9: sign-in throttling that a wall clock cannot freeze (issue 11). A delay is kept
    # as what is left of it at an instant (boot, monotonic ms, time; edge/clock.py),
    # not as a wall-clock deadline: one event stamped in 2031 had made every deadline
    # unreachable. Deadlines already stored become what is left of them now when that
    # is plausible (at most a day), else nothing. The unsalted SHA-256 prefixes that
    # stood for unknown user names (a password typed into the name field) are dropped.
    """
    ALTER TABLE clerk_logins ADD COLUMN wait_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE clerk_logins ADD COLUMN lock_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE clerk_logins ADD COLUMN since TEXT NOT NULL DEFAULT '';
    DELETE FROM clerk_logins WHERE login LIKE '?%';
    UPDATE clerk_logins SET
        wait_ms = MAX(0, next_attempt_ms - strftime('%s', 'now') * 1000),
        lock_ms = MAX(0, locked_until_ms - strftime('%s', 'now') * 1000),
        since = '- 0 ' || (strftime('%s', 'now') * 1000),
        next_attempt_ms = 0,
        locked_until_ms = 0;
    UPDATE clerk_logins SET wait_ms = 0 WHERE wait_ms > 86400000;
    UPDATE clerk_logins SET lock_ms = 0 WHERE lock_ms > 86400000;
    """,
    # 10: search by part of a CCCD or phone number and by any written form of a phone
    # (issue 12). Terms are HMACs under the index key, which only a signed-in clerk
    # holds, so this only marks a store that has indexed dossiers; the desk rebuilds
    # their terms and drops the mark (edge/desk/search.py, Search.reindex). The value
    # is the last dossier id rebuilt, so a rebuild cut short resumes.
    """
    INSERT OR REPLACE INTO meta(key, value)
        SELECT 'search_reindex', '' WHERE EXISTS (SELECT 1 FROM dossiers WHERE fields IS NOT NULL);
    """,
    # 11: what the clerk does to one page (issue 12, edge/desk/pages.py, edge/desk/documents.py),
    # projected from its events. `rotation` (page.rotated) is how far the page is shown turned
    # clockwise, 0/90/180/270: the sealed scan never changes. `deleted_at`/`deleted_by`
    # (page.deleted, page.restored) take a page out of its dossier's list, counts and exports
    # while its sealed blob stays until retention, so it can be restored. `document` is the
    # catalogue's name of the required document the page belongs to and `document_kind` how
    # it was given: original, certified_copy, copy or electronic (page.tagged).
    """
    ALTER TABLE pages ADD COLUMN rotation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pages ADD COLUMN deleted_at TEXT;
    ALTER TABLE pages ADD COLUMN deleted_by TEXT;
    ALTER TABLE pages ADD COLUMN document TEXT;
    ALTER TABLE pages ADD COLUMN document_kind TEXT;
    """,
    # 12: fees (issue 12, edge/desk/fees.py): how each dossier's fee is settled (before,
    # after, exempt), projected from dossier.fee_set/fee_paid; no payer's name here. The
    # receipt numbers' counter per office and year moves only with a recorded payment.
    """
    CREATE TABLE fees (
        dossier_id TEXT PRIMARY KEY REFERENCES dossiers(id),
        mode TEXT NOT NULL CHECK (mode IN ('before', 'after', 'exempt')),
        kind TEXT NOT NULL CHECK (kind IN ('fee', 'charge')),
        amount INTEGER NOT NULL CHECK (amount >= 0),
        reason TEXT,
        receipt TEXT UNIQUE,
        paid_at TEXT,
        updated TEXT NOT NULL
    );
    CREATE TABLE receipt_numbers (
        office TEXT NOT NULL,
        year INTEGER NOT NULL,
        last INTEGER NOT NULL,
        PRIMARY KEY (office, year)
    );
    """,
    # 13: central's statuses as the clerk's tasks (issue 12, edge/desk/tasks.py). A task is
    # derived from the log on every read: a dossier's latest `central.status` event and
    # whether an event that settles it (a supplement, `task.done`, a hand-back) followed.
    # Through events_dossier, each dossier's events were read one by one for their type (a
    # clerk's every look at a dossier is an event): 3-5 times slower than a seek by type.
    """
    CREATE INDEX events_dossier_type ON events(dossier_id, type);
    """,
    # 14: retention (issue 13, edge/retention.py). A page whose sealed bytes left the box
    # after central's receipt keeps its row, marked `purged_at`; its blob row stays (events
    # and pages name it) with no bytes, marked too, so a read says "kept at central".
    """
    ALTER TABLE pages ADD COLUMN purged_at TEXT;
    ALTER TABLE blobs ADD COLUMN purged_at TEXT;
    """,
]


@dataclass(frozen=True)
class Event:
    seq: int
    dossier_id: str | None
    type: str
    key_id: str
    payload: bytes
    at: str
    hlc: str
    prev_hash: str
    hash: str


def event_hash(
    prev_hash: str,
    seq: int,
    dossier_id: str | None,
    event_type: str,
    key_id: str,
    payload: bytes,
    at: str,
    hlc: str,
) -> str:
    """The chain link: anyone holding the log can recompute it; nobody can edit history unseen."""
    h = hashlib.sha256()
    for part in (prev_hash, str(seq), dossier_id or "", event_type, key_id, at, hlc):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    h.update(hashlib.sha256(payload).digest())
    return h.hexdigest()


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class Store:
    """One open database. Not shared between threads: each thread opens its own."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.exists():
            raise StoreError(f"no database at {path}: run 'edge init' first")
        self.path = path
        try:
            self.conn = connect(path)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            raise store_error(exc, path) from exc
        self.clock = Clock(int(self.meta("floor_ms") or 0), Hlc.parse(self.meta("hlc") or "0"))

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, imported on first use.

        Importing it pulls in numpy, click and dateutil: a quarter of a second at
        every start of every ``edge`` command (the clerk UI's cold start included).
        """
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    @classmethod
    def open(cls, state: Path, *, create: bool = False) -> Store:
        try:
            return cls(state / DB_FILE, create=create)
        except sqlite3.DatabaseError as exc:  # a damaged file can fail past the first reads
            raise store_error(exc, state / DB_FILE) from exc

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the database is from a newer release (schema {version}): update this box"
            )
        for number in range(version, len(MIGRATIONS)):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number + 1}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A short write transaction; the clock state commits with it.

        The daemon and the clerk UI write the same database from two processes,
        each with its own clock: the clock persisted by the other is merged in
        first, so event times never run backwards across writers.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._merge_clock()
            yield
            self.put_meta("hlc", str(self.clock.last))
            self.put_meta("floor_ms", str(self.clock.floor_ms))
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._reload_clock()
            raise

    def _merge_clock(self) -> None:
        self.clock.last = max(self.clock.last, Hlc.parse(self.meta("hlc") or "0"))
        self.clock.floor_ms = max(self.clock.floor_ms, int(self.meta("floor_ms") or 0))

    def _reload_clock(self) -> None:
        self.clock.last = Hlc.parse(self.meta("hlc") or "0")
        self.clock.floor_ms = int(self.meta("floor_ms") or 0)

    # -- meta and settings -------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.put_meta(key, value)

    def settings(self) -> Settings:
        rows = self.conn.execute("SELECT key, value FROM settings").fetchall()
        return Settings.from_mapping(
            {r["key"]: json.loads(r["value"]) for r in rows}, on_invalid=_stored_setting_refused
        )

    def put_settings(self, settings: Settings) -> None:
        """Replace all settings at once (inside the caller's transaction)."""
        for key, value in settings.as_dict().items():
            self.conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value, ensure_ascii=False)),
            )

    def now(self) -> Hlc:
        """The next order stamp: for ids and the event log's order, not to show as a time."""
        return self.clock.now()

    def time_ms(self) -> int:
        """What time it is, to record and to show: the wall clock, never before the floor.

        Order stamps (``now``) stay where a clock that once ran ahead left them, so a
        date written from one would say 2031 for weeks after the clock was put right.
        """
        return self.clock.time_ms()

    # -- keys, blobs, events -------------------------------------------------

    def put_key(
        self,
        key_id: str,
        dossier_id: str | None,
        wrapped_office: bytes,
        wrapped_central: bytes | None,
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO data_keys VALUES (?, ?, ?, ?, ?)",
            (key_id, dossier_id, wrapped_office, wrapped_central, iso(self.clock.time_ms())),
        )

    def key(self, key_id: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM data_keys WHERE key_id=?", (key_id,)).fetchone()
        if row is None:
            raise StoreError(f"data key {key_id} is missing: run 'edge doctor'")
        return row

    def put_blob(self, blob_id: str, sealed: bytes) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO blobs(id, size, data) VALUES (?, ?, ?)",
            (blob_id, len(sealed), sealed),
        )

    def blob(self, blob_id: str) -> bytes:
        row = self.conn.execute(
            "SELECT data, purged_at FROM blobs WHERE id=?", (blob_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"page data {blob_id[:12]} is missing: run 'edge doctor'")
        if row[1] is not None:
            raise PagePurged(
                f"page data {blob_id[:12]} was purged from this box on {row[1][:10]} after "
                "central acknowledged it: open it at central, or ask regional IT for a copy"
            )
        return bytes(row[0])

    def append_event(
        self,
        dossier_id: str | None,
        event_type: str,
        key_id: str,
        payload: bytes,
        blobs: Sequence[str] = (),
    ) -> Event:
        """Append to the hash-chained log; must run inside ``transaction()``.

        ``blobs`` names the sealed blobs the event refers to, so sync can ship
        them with it without opening the payload. A new event means central has
        not seen the dossier as it now is, so its sync mark goes back to pending.
        """
        last = self.conn.execute(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq = (last["seq"] + 1) if last else 1
        prev = last["hash"] if last else GENESIS
        stamp, at_ms = self.clock.tick()
        at = iso(at_ms)
        digest = event_hash(prev, seq, dossier_id, event_type, key_id, payload, at, str(stamp))
        self.conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, dossier_id, event_type, key_id, payload, at, str(stamp), prev, digest),
        )
        if blobs:
            self.conn.executemany(
                "INSERT OR IGNORE INTO event_blobs(seq, blob_id) VALUES (?, ?)",
                [(seq, blob_id) for blob_id in blobs],
            )
        if dossier_id is not None:
            self.conn.execute(
                "UPDATE dossiers SET sync='pending' WHERE id=? AND sync<>'pending'", (dossier_id,)
            )
        return Event(seq, dossier_id, event_type, key_id, payload, at, str(stamp), prev, digest)

    def events(self, after: int = 0, limit: int | None = None) -> list[Event]:
        sql = "SELECT * FROM events WHERE seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            params = (after, limit)
        return [Event(**dict(r)) for r in self.conn.execute(sql, params)]

    def verify_chain(self) -> int | None:
        """The first sequence number whose link is broken, or None when the chain holds."""
        prev = GENESIS
        expected_seq = 1
        for row in self.conn.execute("SELECT * FROM events ORDER BY seq"):
            ev = Event(**dict(row))
            digest = event_hash(
                prev, ev.seq, ev.dossier_id, ev.type, ev.key_id, ev.payload, ev.at, ev.hlc
            )
            if ev.seq != expected_seq or ev.prev_hash != prev or ev.hash != digest:
                return ev.seq
            prev = ev.hash
            expected_seq += 1
        return None

    # -- dossiers and pages ----------------------------------------------------

    def dossier(self, dossier_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM dossiers WHERE id=?", (dossier_id,)).fetchone()

    def dossier_by_code(self, code: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM dossiers WHERE code=?", (code,)).fetchone()

    def insert_dossier(
        self,
        dossier_id: str,
        code: str | None,
        key_id: str,
        status: str,
        *,
        needs_review: bool = False,
        follows: str | None = None,
    ) -> None:
        at = iso(self.clock.time_ms())
        self.conn.execute(
            "INSERT INTO dossiers(id, code, status, received_at, updated_at, key_id, "
            "needs_review, follows) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (dossier_id, code, status, at, at, key_id, int(needs_review), follows),
        )

    def open_reviews(self) -> list[sqlite3.Row]:
        """Dossiers whose first page capture could not place for sure, oldest first."""
        return self.conn.execute(
            "SELECT * FROM dossiers WHERE needs_review = 1 ORDER BY received_at, rowid"
        ).fetchall()

    def review_count(self) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM dossiers WHERE needs_review = 1").fetchone()
        return int(row[0])

    def update_dossier(self, dossier_id: str, **values: Any) -> None:
        values["updated_at"] = iso(self.clock.time_ms())
        columns = ", ".join(f"{name}=?" for name in values)
        self.conn.execute(
            f"UPDATE dossiers SET {columns} WHERE id=?", (*values.values(), dossier_id)
        )

    def next_position(self, dossier_id: str) -> int:
        """After the dossier's last page; deleted pages have left the numbering."""
        row = self.conn.execute(
            "SELECT COALESCE(MAX(position), 0) FROM pages WHERE dossier_id=? "
            "AND deleted_at IS NULL",
            (dossier_id,),
        ).fetchone()
        return int(row[0]) + 1

    def insert_page(self, **row: Any) -> None:
        row.setdefault("created", iso(self.clock.time_ms()))
        row["flags"] = json.dumps(row.get("flags", []))
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(f"INSERT INTO pages({columns}) VALUES ({marks})", tuple(row.values()))

    def pages(self, dossier_id: str) -> list[sqlite3.Row]:
        """The dossier's pages in order; one the clerk deleted is not among them."""
        return self.conn.execute(
            "SELECT * FROM pages WHERE dossier_id=? AND deleted_at IS NULL ORDER BY position",
            (dossier_id,),
        ).fetchall()

    # -- one page as the clerk handles it (issue 12, edge/desk/pages.py, documents.py) ----------

    def page(self, page_id: str) -> sqlite3.Row | None:
        """One page, deleted or not."""
        return self.conn.execute("SELECT * FROM pages WHERE id=?", (page_id,)).fetchone()

    def deleted_pages(self, dossier_id: str) -> list[sqlite3.Row]:
        """The pages the clerk deleted from a dossier, kept until retention; where they were."""
        return self.conn.execute(
            "SELECT * FROM pages WHERE dossier_id=? AND deleted_at IS NOT NULL "
            "ORDER BY position, deleted_at",
            (dossier_id,),
        ).fetchall()

    def set_page_rotation(self, page_id: str, rotation: int) -> None:
        self.conn.execute("UPDATE pages SET rotation=? WHERE id=?", (rotation, page_id))

    def set_page_deleted(self, page_id: str, at: str | None, clerk: str | None) -> None:
        """Mark a page deleted (``at``, by ``clerk``) or, with None, back in its dossier."""
        self.conn.execute(
            "UPDATE pages SET deleted_at=?, deleted_by=? WHERE id=?", (at, clerk, page_id)
        )

    def set_page_document(self, page_id: str, document: str | None, kind: str | None) -> None:
        self.conn.execute(
            "UPDATE pages SET document=?, document_kind=? WHERE id=?", (document, kind, page_id)
        )

    def merged_sources(self, dossier_id: str) -> list[str]:
        """The dossiers merged straight into this one (their pages live here now)."""
        rows = self.conn.execute(
            "SELECT id FROM dossiers WHERE merged_into=? ORDER BY rowid", (dossier_id,)
        )
        return [str(r[0]) for r in rows]

    def list_dossiers(self) -> list[dict[str, Any]]:
        """Metadata only: what anyone at the box may see without a password."""
        rows = self.conn.execute(
            """
            SELECT d.id, d.code, d.status, d.received_at, d.sync, d.central_status,
                   d.needs_review,
                   COUNT(p.id) AS pages,
                   json_group_array(p.flags) AS page_flags,
                   (SELECT json_group_array(name) FROM (
                        SELECT DISTINCT s.name FROM pages p2
                        JOIN sources s ON s.sha256 = p2.source_sha
                        WHERE p2.dossier_id = d.id ORDER BY s.received, s.name)) AS sources
            FROM dossiers d LEFT JOIN pages p ON p.dossier_id = d.id AND p.deleted_at IS NULL
            GROUP BY d.id ORDER BY d.received_at, d.rowid
            """
        ).fetchall()
        result = []
        for r in rows:
            flags: set[str] = set()
            for page_flags in json.loads(r["page_flags"]):
                if page_flags:
                    flags.update(json.loads(page_flags))
            if r["needs_review"]:
                flags.add("needs_review")
            result.append(
                {
                    "id": r["id"],
                    "code": r["code"],
                    "status": r["status"],
                    "pages": r["pages"],
                    "flags": sorted(flags),
                    "sources": json.loads(r["sources"]),
                    "received_at": r["received_at"],
                    "sync": r["sync"],
                    "central_status": r["central_status"],
                }
            )
        return result

    # -- sources and jobs ------------------------------------------------------

    def source(self, sha256: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM sources WHERE sha256=?", (sha256,)).fetchone()

    def upsert_source(self, sha256: str, name: str, job_id: int | None) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO sources(sha256, name, job_id, received) VALUES (?, ?, ?, ?)",
            (sha256, name, job_id, iso(self.clock.time_ms())),
        )

    def source_progress(self, sha256: str, pages_done: int, complete: bool) -> None:
        self.conn.execute(
            "UPDATE sources SET pages_done=?, complete=? WHERE sha256=?",
            (pages_done, int(complete), sha256),
        )

    def source_complete(self, sha256: str) -> None:
        """A source taken whole (stored, or its original sealed in quarantine): a second copy
        of the same bytes is a duplicate from now on."""
        self.conn.execute("UPDATE sources SET complete=1 WHERE sha256=?", (sha256,))

    def job_dossier(self, job_id: int) -> str | None:
        """The dossier a scan job's next cover-less page joins, if the job has one open."""
        row = self.conn.execute("SELECT open_dossier_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else row["open_dossier_id"]

    def open_job(self, key: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM jobs WHERE key=? AND closed=0 ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()

    def new_job(self, kind: str, key: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO jobs(kind, key, opened) VALUES (?, ?, ?)",
            (kind, key, iso(self.clock.time_ms())),
        )
        return int(cur.lastrowid or 0)

    def set_job_dossier(self, job_id: int, dossier_id: str) -> None:
        self.conn.execute("UPDATE jobs SET open_dossier_id=? WHERE id=?", (dossier_id, job_id))

    def close_job(self, job_id: int) -> None:
        self.conn.execute("UPDATE jobs SET closed=1 WHERE id=?", (job_id,))

    def open_jobs(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM jobs WHERE closed=0").fetchall()

    # -- quarantine --------------------------------------------------------------

    def insert_quarantine(self, **row: Any) -> None:
        row["blob_ids"] = json.dumps(row.get("blob_ids", []))
        row.setdefault("at", iso(self.clock.time_ms()))
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(
            f"INSERT INTO quarantine({columns}) VALUES ({marks})", tuple(row.values())
        )

    def quarantined(self, sha256: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM quarantine WHERE sha256=? AND status='held'", (sha256,)
        ).fetchone()

    def list_quarantine(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, name, reason, message, bytes, at, status FROM quarantine ORDER BY at"
        ).fetchall()
        return [dict(r) for r in rows]

    # -- the clerk's desk (edge/desk/): sign-in throttling, drafts, page moves, search ----------
    # Each table has one owner: the desk says what it means ("forget this draft"), the
    # store knows how that is written. Writers run inside the caller's transaction.

    def clerk_login(self, login: str) -> sqlite3.Row | None:
        """The throttle of one name (a clerk's, or ``?``+tag for a name that is no clerk)."""
        return self.conn.execute("SELECT * FROM clerk_logins WHERE login=?", (login,)).fetchone()

    def unknown_logins(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM clerk_logins WHERE login LIKE '?%'").fetchall()

    def forget_logins(self, logins: Sequence[str]) -> None:
        self.conn.executemany("DELETE FROM clerk_logins WHERE login=?", [(k,) for k in logins])

    def forget_login_and_unknowns(self, login: str) -> None:
        """A clerk signed in: their count starts again, and guesses under other names go."""
        self.conn.execute("DELETE FROM clerk_logins WHERE login=? OR login LIKE '?%'", (login,))

    def hold_login(self, login: str, wait_ms: int, lock_ms: int, since: str) -> None:
        """Store what is left of a delay and a lockout as of the instant ``since``."""
        self.conn.execute(
            "UPDATE clerk_logins SET wait_ms=?, lock_ms=?, since=? WHERE login=?",
            (wait_ms, lock_ms, since, login),
        )

    def put_login_failure(
        self,
        login: str,
        *,
        failures: int,
        lockouts: int,
        wait_ms: int,
        lock_ms: int,
        since: str,
        updated: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO clerk_logins(login, failures, lockouts, wait_ms, lock_ms, since, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(login) DO UPDATE SET failures=excluded.failures, "
            "lockouts=excluded.lockouts, wait_ms=excluded.wait_ms, "
            "lock_ms=excluded.lock_ms, since=excluded.since, updated=excluded.updated",
            (login, failures, lockouts, wait_ms, lock_ms, since, updated),
        )

    def draft(self, dossier_id: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM drafts WHERE dossier_id=?", (dossier_id,)
        ).fetchone()

    def put_draft(
        self, dossier_id: str, *, clerk: str, key_id: str, payload: bytes, updated: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO drafts(dossier_id, clerk, key_id, payload, updated) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(dossier_id) DO UPDATE SET "
            "clerk=excluded.clerk, key_id=excluded.key_id, payload=excluded.payload, "
            "updated=excluded.updated",
            (dossier_id, clerk, key_id, payload, updated),
        )

    def delete_draft(self, dossier_id: str) -> None:
        self.conn.execute("DELETE FROM drafts WHERE dossier_id=?", (dossier_id,))

    def set_page_position(self, page_id: str, position: int) -> None:
        self.conn.execute("UPDATE pages SET position=? WHERE id=?", (position, page_id))

    def move_page(
        self,
        page_id: str,
        *,
        dossier_id: str,
        position: int,
        blob_id: str,
        key_id: str,
        attrs: bytes | None,
    ) -> None:
        """Point a page at its new dossier and at the blob sealed for it there."""
        self.conn.execute(
            "UPDATE pages SET dossier_id=?, position=?, blob_id=?, key_id=?, attrs=? WHERE id=?",
            (dossier_id, position, blob_id, key_id, attrs, page_id),
        )

    def replace_blind_terms(self, dossier_id: str, terms: Sequence[str]) -> None:
        """A dossier's search terms become exactly ``terms`` (none: it is found by code only)."""
        self.conn.execute("DELETE FROM blind_index WHERE dossier_id=?", (dossier_id,))
        self.conn.executemany(
            "INSERT OR IGNORE INTO blind_index(term, dossier_id) VALUES (?, ?)",
            [(t, dossier_id) for t in terms],
        )

    def blind_term_count(self, term: str) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM blind_index WHERE term = ?", (term,))
        return int(row.fetchone()[0])

    def first_event(self, dossier_id: str, event_type: str) -> Event | None:
        row = self.conn.execute(
            "SELECT * FROM events WHERE dossier_id=? AND type=? ORDER BY seq LIMIT 1",
            (dossier_id, event_type),
        ).fetchone()
        return Event(**dict(row)) if row is not None else None

    def events_of_type(self, event_type: str) -> list[Event]:
        """Every event of one type, oldest first (handovers, for a date's batches)."""
        rows = self.conn.execute("SELECT * FROM events WHERE type=? ORDER BY seq", (event_type,))
        return [Event(**dict(r)) for r in rows]

    def search_dossiers(
        self,
        *,
        code_trigram: str | None = None,
        code_like: str | None = None,
        number_terms: Sequence[str] = (),
        name_terms: Sequence[str] = (),
        limit: int = 100,
    ) -> tuple[int, list[str]]:
        """How many dossiers match any of the kinds given, and the ids of the newest ``limit``.

        ``code_trigram`` is an FTS5 phrase for the trigram index of codes, ``code_like`` a
        LIKE pattern (escaped with ``\\``) for needles too short for trigrams. A number
        matches any of its blind terms; a name must match every one of ``name_terms``,
        given rarest first: the rarest word's dossiers are walked and the others looked up
        by key, instead of intersecting sets of 40,000 "nguyen"s. Ids are time-ordered
        (``records.new_id``), so the newest are the largest.
        """
        parts: list[str] = []
        params: list[str] = []
        if code_trigram is not None:
            parts.append("SELECT dossier_id AS id FROM dossier_codes WHERE dossier_codes MATCH ?")
            params.append(code_trigram)
        if code_like is not None:
            parts.append("SELECT id FROM dossiers WHERE code LIKE ? ESCAPE '\\'")
            params.append(code_like)
        if number_terms:
            marks = ",".join("?" * len(number_terms))
            parts.append(f"SELECT dossier_id AS id FROM blind_index WHERE term IN ({marks})")
            params.extend(number_terms)
        if name_terms:
            others = "".join(
                " AND EXISTS (SELECT 1 FROM blind_index o WHERE o.term = ?"
                " AND o.dossier_id = b.dossier_id)"
                for _ in name_terms[1:]
            )
            parts.append(f"SELECT b.dossier_id AS id FROM blind_index b WHERE b.term = ?{others}")
            params.extend(name_terms)
        if not parts:
            return 0, []
        matches = " UNION ".join(f"SELECT id FROM ({p})" for p in parts)
        total = int(self.conn.execute(f"SELECT COUNT(*) FROM ({matches})", params).fetchone()[0])
        if not total:
            return 0, []
        newest = [
            r[0]
            for r in self.conn.execute(
                f"SELECT id FROM ({matches}) ORDER BY id DESC LIMIT ?", (*params, limit)
            )
        ]
        return total, newest

    def dossier_summaries(self, ids: Sequence[str]) -> list[sqlite3.Row]:
        """Code, status, times and sealed fields of the given dossiers, in no order."""
        out: list[sqlite3.Row] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            out.extend(
                self.conn.execute(
                    "SELECT id, code, status, received_at, appointment, fields, fields_key_id "
                    f"FROM dossiers WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        return out

    def quarantine_entry(self, quarantine_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM quarantine WHERE id=?", (quarantine_id,)).fetchone()

    def set_quarantine_status(self, quarantine_id: str, status: str) -> None:
        self.conn.execute("UPDATE quarantine SET status=? WHERE id=?", (status, quarantine_id))

    # -- health ------------------------------------------------------------------

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # -- the search re-index of migration 10 ---------------------------------------

    def search_reindex_cursor(self) -> str | None:
        """The last dossier id re-indexed ('' before the first), or None: nothing pending."""
        return self.meta("search_reindex")

    def search_reindex_batch(self, after: str, limit: int) -> list[sqlite3.Row]:
        """The next dossiers with sealed fields after ``after``, in id order."""
        return self.conn.execute(
            "SELECT id, status, fields, fields_key_id FROM dossiers "
            "WHERE fields IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()

    def search_reindex_advance(self, cursor: str | None) -> None:
        """Record how far the re-index got (in the caller's transaction); None: finished."""
        if cursor is None:
            self.conn.execute("DELETE FROM meta WHERE key = 'search_reindex'")
        else:
            self.put_meta("search_reindex", cursor)

    # -- the desk's reference data and details (issue 12) ---------------------------

    def reference_data(self, name: str) -> Any | None:
        """One reference data set regional IT published (procedures, holidays), or None."""
        try:
            row = self.conn.execute(
                "SELECT data FROM reference_data WHERE name = ?", (name,)
            ).fetchone()
        except sqlite3.OperationalError:  # a database from before signed updates
            return None
        return json.loads(row[0]) if row is not None else None

    def last_event(self, dossier_id: str, event_type: str) -> Event | None:
        row = self.conn.execute(
            "SELECT * FROM events WHERE dossier_id=? AND type=? ORDER BY seq DESC LIMIT 1",
            (dossier_id, event_type),
        ).fetchone()
        return Event(**dict(row)) if row is not None else None

    # -- central's statuses as the clerk's tasks (issue 12, edge/desk/tasks.py) ----------------

    def central_requests(
        self,
        settled_by: dict[int, Sequence[str]],
        *,
        handed_back: Sequence[int] = (),
        dossier_id: str | None = None,
    ) -> list[sqlite3.Row]:
        """Dossiers whose latest central status asks something of the counter, not yet done.

        ``settled_by`` maps each such status to the event types that settle it when one
        follows the status's ``central.status`` event; a status in ``handed_back`` is also
        settled once the dossier was handed back (``handed_back_at``), whenever that was.
        Each row is the ``central.status`` event (its columns, sealed payload included)
        with the dossier's ``code``, ``central_status`` and ``appointment``, oldest first.
        Plain columns and event types only: counting tasks needs no key.
        """
        statuses = list(settled_by)
        if not statuses:
            return []
        marks = ",".join("?" * len(statuses))
        params: list[Any] = list(statuses)
        where = f"central_status IN ({marks}) AND status != 'merged'"
        if handed_back:
            where += (
                f" AND NOT (central_status IN ({','.join('?' * len(handed_back))})"
                " AND handed_back_at IS NOT NULL)"
            )
            params.extend(handed_back)
        if dossier_id is not None:
            where += " AND id = ?"
            params.append(dossier_id)
        every = sorted({t for types in settled_by.values() for t in types})
        params.extend(every)
        settles = []
        for status, types in settled_by.items():
            settles.append(f"(c.central_status = ? AND x.type IN ({','.join('?' * len(types))}))")
            params.extend([status, *types])
        # the settling types also stand alone, so each is one seek in events_dossier_type
        return self.conn.execute(
            f"""
            SELECT e.*, c.code, c.central_status, c.appointment
            FROM (SELECT id, code, central_status, appointment FROM dossiers WHERE {where}) c
            JOIN events e ON e.seq = (SELECT MAX(s.seq) FROM events s
                                      WHERE s.dossier_id = c.id AND s.type = 'central.status')
            WHERE NOT EXISTS (SELECT 1 FROM events x
                              WHERE x.dossier_id = c.id
                                AND x.type IN ({",".join("?" * len(every)) or "NULL"})
                                AND x.seq > e.seq AND ({" OR ".join(settles) or "0"}))
            ORDER BY e.seq
            """,
            params,
        ).fetchall()

    def central_request(self, dossier_id: str, status: int) -> int | None:
        """The seq of the dossier's latest ``central.status`` event when it said ``status``.

        Capture asks with 5 (more documents requested): a page scanned into such a dossier
        is a supplement answering that request (``dossier.supplement_added``).
        """
        row = self.conn.execute(
            "SELECT (SELECT MAX(seq) FROM events"
            " WHERE dossier_id = d.id AND type = 'central.status')"
            " FROM dossiers d WHERE d.id = ? AND d.central_status = ?",
            (dossier_id, status),
        ).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else None

    def dossier_events(self, dossier_id: str, event_type: str) -> list[Event]:
        """One dossier's events of one type, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM events WHERE dossier_id=? AND type=? ORDER BY seq",
            (dossier_id, event_type),
        )
        return [Event(**dict(r)) for r in rows]

    # -- fees and receipt numbers (issue 12, edge/desk/fees.py) ---------------------------

    def fee(self, dossier_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM fees WHERE dossier_id=?", (dossier_id,)).fetchone()

    def fees_of(self, dossier_ids: Sequence[str]) -> list[sqlite3.Row]:
        """The recorded fees of the given dossiers, in no order (absent: none recorded)."""
        out: list[sqlite3.Row] = []
        for start in range(0, len(dossier_ids), 500):
            chunk = list(dossier_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            out.extend(
                self.conn.execute(f"SELECT * FROM fees WHERE dossier_id IN ({marks})", chunk)
            )
        return out

    def put_fee(
        self,
        dossier_id: str,
        *,
        mode: str,
        kind: str,
        amount: int,
        reason: str | None,
        updated: str,
    ) -> None:
        """How a dossier's fee is settled, replacing what was recorded (not yet paid)."""
        self.conn.execute(
            "INSERT INTO fees(dossier_id, mode, kind, amount, reason, updated) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(dossier_id) DO UPDATE SET "
            "mode=excluded.mode, kind=excluded.kind, amount=excluded.amount, "
            "reason=excluded.reason, updated=excluded.updated",
            (dossier_id, mode, kind, amount, reason, updated),
        )

    def mark_fee_paid(self, dossier_id: str, *, receipt: str, paid_at: str) -> None:
        self.conn.execute(
            "UPDATE fees SET receipt=?, paid_at=?, updated=? WHERE dossier_id=?",
            (receipt, paid_at, paid_at, dossier_id),
        )

    def next_receipt_number(self, office: str, year: int) -> int:
        """The office's next receipt number for ``year``, counted inside the caller's
        transaction: it is taken only if that transaction commits, and never again."""
        self.conn.execute(
            "INSERT INTO receipt_numbers(office, year, last) VALUES (?, ?, 1) "
            "ON CONFLICT(office, year) DO UPDATE SET last = last + 1",
            (office, year),
        )
        row = self.conn.execute(
            "SELECT last FROM receipt_numbers WHERE office=? AND year=?", (office, year)
        ).fetchone()
        return int(row[0])

    # -- retention (issue 13, edge/retention.py) ------------------------------------------

    def retention_candidates(
        self, ignored: Sequence[str], dossier_id: str | None = None
    ) -> list[sqlite3.Row]:
        """Dossiers central acknowledged, complete or handed back, with a page not purged.

        Each row has ``id``, ``received_at``, ``status``, ``completed_at``,
        ``handed_back_at``, ``last_seq`` (its last event not of an ``ignored`` type) and
        ``keys_acked_at`` (when the receipt for the last of its data keys' wraps came).
        """
        marks = ",".join("?" * len(ignored)) or "''"
        where = "AND d.id = ?" if dossier_id is not None else ""
        live = f"e.dossier_id = d.id AND e.type NOT IN ({marks})"
        return self.conn.execute(
            f"""
            SELECT d.id, d.received_at, d.status, d.completed_at, d.handed_back_at,
                (SELECT MAX(e.seq) FROM events e WHERE {live}) AS last_seq,
                (SELECT MAX(b.acknowledged_at) FROM events e
                 JOIN sync_keys k ON k.key_id = e.key_id JOIN sync_batches b ON b.n = k.batch_n
                 WHERE {live} AND b.receipt IS NOT NULL) AS keys_acked_at
            FROM dossiers d
            WHERE d.sync = 'acknowledged'
              AND (d.status = 'complete' OR d.handed_back_at IS NOT NULL)
              AND EXISTS (SELECT 1 FROM pages p WHERE p.dossier_id = d.id AND p.purged_at IS NULL)
              {where}
            """,
            (*ignored, *ignored, *([dossier_id] if dossier_id is not None else [])),
        ).fetchall()

    def receipt_times(self) -> list[tuple[int, str]]:
        """``(last_seq, acknowledged_at)`` of every batch central signed a receipt for, in
        chain order: an event's receipt is the first whose ``last_seq`` reaches it."""
        rows = self.conn.execute(
            "SELECT last_seq, acknowledged_at FROM sync_batches "
            "WHERE receipt IS NOT NULL ORDER BY last_seq"
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def purgeable(self, dossier_id: str, acked_seq: int) -> tuple[list[str], list[str]]:
        """The dossier's pages (deleted ones too) and blobs central holds, not yet purged.

        A blob counts as held when an event central's receipts cover (``acked_seq``) carried
        it: central committed that batch only with every blob verified. Blobs an event of
        the dossier carried that no other dossier's live page still shows go too (the old
        copy of a page moved away).
        """
        pages = self.conn.execute(
            "SELECT p.id, p.blob_id FROM pages p WHERE p.dossier_id = ? AND p.purged_at IS NULL "
            "AND EXISTS (SELECT 1 FROM event_blobs l WHERE l.blob_id = p.blob_id AND l.seq <= ?) "
            "ORDER BY p.position, p.id",
            (dossier_id, acked_seq),
        ).fetchall()
        blobs = {r["blob_id"] for r in pages}
        others = self.conn.execute(
            "SELECT DISTINCT l.blob_id FROM event_blobs l JOIN events e ON e.seq = l.seq "
            "WHERE e.dossier_id = ? AND l.seq <= ? AND NOT EXISTS (SELECT 1 FROM pages p "
            "WHERE p.blob_id = l.blob_id AND p.purged_at IS NULL AND p.dossier_id <> ?)",
            (dossier_id, acked_seq, dossier_id),
        )
        blobs.update(r[0] for r in others)
        live = {
            r[0]
            for r in self.conn.execute(
                "SELECT blob_id FROM pages WHERE dossier_id = ? AND purged_at IS NULL",
                (dossier_id,),
            )
        } - {r["blob_id"] for r in pages}
        held = [
            b
            for b in sorted(blobs - live)
            if self.conn.execute(
                "SELECT 1 FROM blobs WHERE id = ? AND purged_at IS NULL", (b,)
            ).fetchone()
        ]
        return [r["id"] for r in pages], held

    def mark_purged(self, page_ids: Sequence[str], blob_ids: Sequence[str], at: str) -> int:
        """Drop the blobs' bytes and mark them and the pages purged; returns the bytes freed.

        Inside the caller's transaction, with the event that records it: a power cut leaves
        the bytes and no mark, or the mark, the event and no bytes.
        """
        freed = 0
        for blob_id in blob_ids:
            row = self.conn.execute(
                "SELECT LENGTH(data) FROM blobs WHERE id = ? AND purged_at IS NULL", (blob_id,)
            ).fetchone()
            freed += int(row[0] or 0) if row else 0
        self.conn.executemany(
            "UPDATE blobs SET data = zeroblob(0), purged_at = ? WHERE id = ? AND purged_at IS NULL",
            [(at, b) for b in blob_ids],
        )
        self.conn.executemany(
            "UPDATE pages SET purged_at = ? WHERE id = ? AND purged_at IS NULL",
            [(at, p) for p in page_ids],
        )
        return freed

    def purged_pages(self) -> dict[str, int]:
        """How many of each dossier's pages (of those it shows) left the box by retention."""
        rows = self.conn.execute(
            "SELECT dossier_id, COUNT(*) FROM pages WHERE purged_at IS NOT NULL "
            "AND deleted_at IS NULL GROUP BY dossier_id"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def reusable_bytes(self) -> int:
        """Free pages inside the database file: room new pages fill before the file grows."""
        count = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int(count) * int(size)


def _statements(script: str) -> list[str]:
    """Split a migration into statements; a trigger's body keeps its own semicolons."""
    statements: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip())
    return statements


def _stored_setting_refused(exc: ValueError) -> None:
    log.warning("stored %s; using its default until regional IT sends a valid value", exc)
