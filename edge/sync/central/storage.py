"""Central's database: SQLAlchemy Core tables that work on SQLite and PostgreSQL.

SQLite (one file under the data folder) is the zero-set-up default for one
machine; PostgreSQL is for a province, where several receiver processes share
one database. What keeps them correct together:

* a device's chain advances under a row lock on its ``devices`` row (``SELECT …
  FOR UPDATE``; SQLite takes the whole database with ``BEGIN IMMEDIATE``), and
  the primary key ``(device_id, seq)`` refuses a second copy of any event even
  if that lock were ever bypassed;
* request nonces are a primary key, so two processes cannot both accept one;
* downlink ids come from a sequence, which can commit out of order across
  processes; inserts take a table lock so a reader's cursor never skips an id
  that commits late.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    select,
    text,
)

SCHEMA_VERSION = 1
DB_FILE = "central.db"

metadata = MetaData()

schema = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("office", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("used_by", String(32)),
    Column("used_ms", BigInteger),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("office", String(64), nullable=False),
    Column("enrolled_ms", BigInteger, nullable=False),
    Column("last_contact_ms", BigInteger),
    Column("head_seq", BigInteger, nullable=False, default=0),
    Column("head_hash", String(64), nullable=False),
    Column("software", String(64), nullable=False, default=""),
    Column("downlink_cursor", BigInteger, nullable=False, default=0),
    Column("revoked", Boolean, nullable=False, default=False),
)

# The latest health summary each box sent (POST /v1/device/health), for the fleet page.
# Only the newest is kept: history belongs to a metrics system, not to the receiver.
# A table added to schema 1: create_all adds it to an existing database, and older
# receivers simply never read it.
device_health = Table(
    "device_health",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
)

nonces = Table(
    "nonces",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("nonce", String(32), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Index("nonces_expiry", "expires_ms"),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("device_id", String(32), nullable=False),
    Column("after_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("signature", String(200), nullable=False),
    Column("receipt", Text, nullable=False),
    Column("receipt_signature", String(200), nullable=False),
    Column("accepted_ms", BigInteger, nullable=False),
    Column("via", String(16), nullable=False),
    Index("batches_device", "device_id", "last_seq"),
)

events = Table(
    "events",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("dossier_id", String(64)),
    Column("type", String(128), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("at", String(40), nullable=False),
    Column("hlc", String(40), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Index("events_dossier", "device_id", "dossier_id"),
)

event_blobs = Table(
    "event_blobs",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("blob_id", String(64), primary_key=True),
)

keys = Table(
    "data_keys",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("dossier_id", String(64)),
    Column("wrapped", LargeBinary, nullable=False),
    Column("batch_id", String(64), nullable=False),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("dossier_id", String(64), primary_key=True),
    Column("code", String(128)),
    Column("status", String(64), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("first_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("central_status", Integer),
    Index("dossiers_code", "code"),
)

# Who owns a dossier code: the office of the first device that sent it. Other boxes of
# that office may hold the same code (several desks, a replaced box); a box of another
# office naming it is refused (``dossier_claimed``), and statuses for the code go only to
# the owning office's boxes. Added to schema 1 like device_health; ``create_schema``
# fills it from the dossiers an existing database already holds.
dossier_codes = Table(
    "dossier_codes",
    metadata,
    Column("code", String(128), primary_key=True),
    Column("office", String(64), nullable=False),
    Column("device_id", String(32), nullable=False),
    Column("first_ms", BigInteger, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("blob_id", String(64), primary_key=True),
    Column("length", BigInteger, nullable=False),
    Column("stored_ms", BigInteger, nullable=False),
)

uploads = Table(
    "uploads",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Column("length", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

downlink = Table(
    "downlink",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("device_id", String(32)),
    Column("office", String(64)),
    Column("kind", String(32), nullable=False),
    Column("document", Text, nullable=False),
    Column("signature", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("downlink_device", "device_id", "id"),
)

# Every push of settings (``edge central config``), with its office scope: '' for every
# box, else an office code, which covers that office and those under it ('H29' covers
# 'H29.01'), as update scopes do. A box's settings are the pushes whose scope covers its
# office, the more specific scope winning, then the later push. Enrolled boxes get a push
# as downlink items addressed to their exact office; a box enrolled later gets the merged
# settings in its enrollment answer. Added to schema 1 like device_health;
# ``create_schema`` fills it from the config items an existing database already holds.
config_pushes = Table(
    "config_pushes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


class StorageError(Exception):
    """The database URL or folder cannot be used; the message says what to do."""


def database_url(data: Path, url: str | None) -> str:
    """SQLite under the data folder unless a URL is given; ``postgresql://`` means psycopg 3."""
    if not url:
        return f"sqlite:///{data / DB_FILE}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    raise StorageError(f"unsupported database URL {url!r}: use postgresql://… or leave it out")


def open_engine(data: Path, url: str | None = None, *, pool_size: int = 8) -> Engine:
    """An engine whose transactions are safe for concurrent writers on either backend."""
    resolved = database_url(data, url)
    if resolved.startswith("sqlite"):
        data.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            resolved,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size * 4,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Take the write lock up front: a deferred transaction that reads then
            # writes can fail to upgrade under concurrency instead of waiting.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        engine = create_engine(
            resolved,
            pool_size=pool_size,
            max_overflow=pool_size * 4,
            pool_pre_ping=True,
        )
    return engine


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def create_schema(engine: Engine) -> None:
    """Create the tables once; several processes starting together take turns."""
    with engine.begin() as conn:
        if is_postgres(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(7130001)"))
        metadata.create_all(conn, checkfirst=True)
        _claim_existing_codes(conn)
        _record_existing_pushes(conn)
        found = conn.execute(schema.select()).scalar()
        if found is None:
            conn.execute(schema.insert().values(version=SCHEMA_VERSION))
        elif found > SCHEMA_VERSION:
            raise StorageError(
                f"central's database is from a newer release (schema {found}): update this receiver"
            )


def _claim_existing_codes(conn: Connection) -> None:
    """Give each code already held an owner (the first device that sent it), once."""
    if conn.execute(select(dossier_codes.c.code).limit(1)).first() is not None:
        return
    rows = conn.execute(
        select(dossiers.c.code, devices.c.office, dossiers.c.device_id, dossiers.c.first_ms)
        .join(devices, devices.c.device_id == dossiers.c.device_id)
        .where(dossiers.c.code.is_not(None))
        .order_by(dossiers.c.first_ms, dossiers.c.device_id)
    ).all()
    owners: dict[str, dict[str, object]] = {}
    for row in rows:
        owners.setdefault(
            row.code,
            {
                "code": row.code,
                "office": row.office,
                "device_id": row.device_id,
                "first_ms": row.first_ms,
            },
        )
    if owners:
        conn.execute(dossier_codes.insert(), list(owners.values()))


def _record_existing_pushes(conn: Connection) -> None:
    """Turn config items posted before ``config_pushes`` existed into pushes, once: an item
    for every box is scope '', one for an office is that office's scope."""
    if conn.execute(select(config_pushes.c.id).limit(1)).first() is not None:
        return
    d = downlink.c
    rows = conn.execute(
        select(d.office, d.document, d.created_ms)
        .where(and_(d.kind == "config", d.device_id.is_(None)))
        .order_by(d.id)
    ).all()
    pushes = []
    for row in rows:
        try:
            body = json.loads(row.document).get("body", {})
        except (ValueError, AttributeError):
            continue
        settings = body.get("settings") if isinstance(body, dict) else None
        if isinstance(settings, dict) and settings:
            pushes.append(
                {
                    "scope": row.office or "",
                    "settings": json.dumps(settings),
                    "created_ms": row.created_ms,
                }
            )
    if pushes:
        conn.execute(config_pushes.insert(), pushes)


@contextmanager
def lock_downlink(conn: Connection, *, shared: bool = False) -> Iterator[None]:
    """Serialise downlink inserts so ids become visible in order (see module doc).

    ``shared``: only wait for inserts in flight and hold off new ones, for a reader that
    must see either all of a configuration push or none of it (enrollment).
    """
    if is_postgres(conn):
        mode = "SHARE" if shared else "EXCLUSIVE"
        conn.execute(text(f"LOCK TABLE downlink IN {mode} MODE"))
    yield


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        path.chmod(0o700)
