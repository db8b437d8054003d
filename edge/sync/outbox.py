"""The box's sync state: enrollment, batches in flight, receipts, cursors, dossier marks.

A batch is built once, signed, and stored with its exact text before it is
sent, so every re-send (after a cut, a crash, or on a USB stick) is the same
bytes with the same id, and central answers it with the same receipt. Batches
follow each other on the hash chain; a receipt for one means central holds
every event up to its ``last_seq``.

Dossier marks in ``dossiers.sync``:

* ``pending``: some of its events have not left the box yet;
* ``sent``: every event has left in a batch (over the network or on a stick)
  but central's receipt for all of them, or for the wraps of all its data
  keys, is not here yet;
* ``acknowledged``: signed receipts cover every event of the dossier and a
  central wrap of every data key it uses, so central can read all of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.clock import iso
from edge.store import GENESIS, Event, Store
from edge.sync import SyncError
from edge.sync import contract as c
from edge.vault import Keyring, OfficeSession

DEFAULT_BATCH_EVENTS = 200
DEFAULT_BATCH_BYTES = 8 << 20
MAX_KEYS_PER_BATCH = 1000


class SyncStateError(SyncError):
    """Sync cannot go on until a person acts; the message says what to do."""


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    central_url: str
    office: str
    enrolled_at: str


@dataclass(frozen=True)
class OutBatch:
    n: int
    batch_id: str
    after_seq: int
    last_seq: int
    events: int
    blobs: list[str]
    document: c.SignedDocument | None
    receipt: str | None

    @classmethod
    def from_row(cls, row: Any) -> OutBatch:
        doc = json.loads(row["document"]) if row["document"] else None
        return cls(
            n=row["n"],
            batch_id=row["batch_id"],
            after_seq=row["after_seq"],
            last_seq=row["last_seq"],
            events=row["events"],
            blobs=json.loads(row["blobs"]),
            document=c.SignedDocument(**doc) if doc else None,
            receipt=row["receipt"],
        )

    def body(self) -> bytes:
        if self.document is None:
            raise SyncStateError(f"batch {self.batch_id[:12]} was acknowledged already")
        return c.encode(self.document)


def enrollment(store: Store) -> Enrollment | None:
    row = store.conn.execute("SELECT * FROM sync_enrollment WHERE id = 1").fetchone()
    if row is None:
        return None
    return Enrollment(row["device_id"], row["central_url"], row["office"], row["enrolled_at"])


def save_enrollment(store: Store, device_id: str, central_url: str, office: str) -> None:
    """Inside the caller's transaction."""
    store.conn.execute(
        "INSERT INTO sync_enrollment(id, device_id, central_url, office, enrolled_at) "
        "VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        "device_id=excluded.device_id, central_url=excluded.central_url, office=excluded.office",
        (device_id, central_url, office, iso(store.time_ms())),
    )


def cursor(store: Store, name: str, default: str = "") -> str:
    row = store.conn.execute("SELECT value FROM sync_cursors WHERE name = ?", (name,)).fetchone()
    return row[0] if row else default


def put_cursor(store: Store, name: str, value: str) -> None:
    """Inside the caller's transaction."""
    store.conn.execute(
        "INSERT INTO sync_cursors(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
        (name, value),
    )


def bump_config(store: Store) -> None:
    """Tell a running daemon to re-read settings and keys (it polls this cheap value)."""
    rev = int(store.meta("config.rev") or 0) + 1
    store.put_meta("config.rev", str(rev))


# -- batches ---------------------------------------------------------------------


def open_batches(store: Store) -> list[OutBatch]:
    rows = store.conn.execute(
        "SELECT * FROM sync_batches WHERE receipt IS NULL ORDER BY n"
    ).fetchall()
    return [OutBatch.from_row(r) for r in rows]


def batch(store: Store, batch_id: str) -> OutBatch | None:
    row = store.conn.execute(
        "SELECT * FROM sync_batches WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    return OutBatch.from_row(row) if row else None


def _event_hash(store: Store, seq: int) -> str:
    if seq == 0:
        return GENESIS
    row = store.conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
    if row is None:
        raise SyncStateError(f"event {seq} is missing from this box: run 'edge doctor'")
    return row[0]


def built_through(store: Store) -> int:
    row = store.conn.execute("SELECT MAX(last_seq) FROM sync_batches").fetchone()
    return int(row[0] or 0)


def acked_through(store: Store) -> int:
    row = store.conn.execute(
        "SELECT MAX(last_seq) FROM sync_batches WHERE receipt IS NOT NULL"
    ).fetchone()
    return int(row[0] or 0)


def build_batch(
    store: Store,
    keyring: Keyring,
    device_id: str,
    *,
    max_events: int = DEFAULT_BATCH_EVENTS,
    max_bytes: int = DEFAULT_BATCH_BYTES,
) -> OutBatch | None:
    """Sign and keep the next batch: events after the last built one, and new key wraps.

    A batch stops before the blobs it references pass ``max_bytes`` (but always
    holds at least one event), so on a slow link receipts keep coming and a cut
    never costs more than one batch's worth of waiting.
    """
    with store.transaction():
        after_seq = built_through(store)
        after_hash = _event_hash(store, after_seq)
        events = store.events(after_seq, limit=max_events)
        refs: dict[int, list[str]] = {}
        sizes: dict[str, int] = {}
        if events:
            for seq, blob_id, size in store.conn.execute(
                "SELECT l.seq, l.blob_id, b.size FROM event_blobs l "
                "JOIN blobs b ON b.id = l.blob_id WHERE l.seq > ? AND l.seq <= ? ORDER BY l.seq",
                (after_seq, events[-1].seq),
            ):
                refs.setdefault(seq, []).append(blob_id)
                sizes[blob_id] = size
        chosen: list[Event] = []
        total = 0
        seen: set[str] = set()
        for event in events:
            extra = sum(sizes[b] for b in refs.get(event.seq, []) if b not in seen)
            if chosen and total + extra > max_bytes:
                break
            chosen.append(event)
            total += extra
            seen.update(refs.get(event.seq, []))
        keys = store.conn.execute(
            "SELECT k.key_id, k.dossier_id, k.wrapped_central FROM data_keys k "
            "WHERE k.wrapped_central IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM sync_keys s WHERE s.key_id = k.key_id) "
            "ORDER BY k.created, k.key_id LIMIT ?",
            (MAX_KEYS_PER_BATCH,),
        ).fetchall()
        if not chosen and not keys:
            return None
        dossier_ids = sorted({e.dossier_id for e in chosen if e.dossier_id})
        dossiers = []
        for start in range(0, len(dossier_ids), 500):
            part = dossier_ids[start : start + 500]
            marks = ",".join("?" for _ in part)
            dossiers.extend(
                store.conn.execute(
                    f"SELECT id, code, status, received_at FROM dossiers WHERE id IN ({marks}) "
                    "ORDER BY id",
                    part,
                ).fetchall()
            )
        wire = c.Batch(
            v=c.PROTOCOL,
            device=device_id,
            after_seq=after_seq,
            after_hash=after_hash,
            events=[c.event_to_wire(e, refs.get(e.seq, [])) for e in chosen],
            keys=[
                c.WireKey(
                    key_id=k["key_id"],
                    dossier_id=k["dossier_id"],
                    wrapped=c.b64e(bytes(k["wrapped_central"])),
                )
                for k in keys
            ],
            dossiers=[
                c.WireDossier(
                    id=d["id"], code=d["code"], status=d["status"], received_at=d["received_at"]
                )
                for d in dossiers
            ],
            software=f"commune-edge {__version__}",
        )
        doc = c.sign_document(c.DOMAIN_BATCH, wire, keyring.sign)
        batch_id = c.document_id(doc)
        last_seq = chosen[-1].seq if chosen else after_seq
        blob_ids = sorted(seen)
        cur = store.conn.execute(
            "INSERT INTO sync_batches(batch_id, after_seq, last_seq, events, blobs, document, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                batch_id,
                after_seq,
                last_seq,
                len(chosen),
                json.dumps(blob_ids),
                json.dumps({"signed": doc.signed, "signature": doc.signature}),
                iso(store.time_ms()),
            ),
        )
        n = int(cur.lastrowid or 0)
        store.conn.executemany(
            "INSERT OR IGNORE INTO sync_keys(key_id, batch_n) VALUES (?, ?)",
            [(k["key_id"], n) for k in keys],
        )
    return OutBatch(n, batch_id, after_seq, last_seq, len(chosen), blob_ids, doc, None)


def mark_sent(store: Store, batches: list[OutBatch], via: str) -> None:
    with store.transaction():
        store.conn.executemany(
            "UPDATE sync_batches SET sent_via = ? WHERE n = ? AND sent_via IS NULL",
            [(via, b.n) for b in batches],
        )
        refresh_marks(store)


def verify_receipt(keyring: Keyring, device_id: str, doc: c.SignedDocument) -> c.Receipt:
    public = keyring.central_receipt_public
    if public is None:
        raise SyncStateError("this box is not enrolled: run 'edge enroll'")
    try:
        receipt = c.open_document(c.DOMAIN_RECEIPT, doc, public, c.Receipt)
    except c.DocumentError as exc:
        raise SyncStateError(f"a receipt from central does not verify ({exc})") from exc
    if receipt.device != device_id:
        raise SyncStateError("a receipt from central names another device")
    return receipt


def record_receipt(store: Store, receipt: c.Receipt, doc: c.SignedDocument) -> bool:
    """Keep a verified receipt; returns False when no batch of this box matches it."""
    with store.transaction():
        row = store.conn.execute(
            "SELECT n, last_seq, receipt FROM sync_batches WHERE batch_id = ?", (receipt.batch,)
        ).fetchone()
        if row is None or row["last_seq"] != receipt.last_seq:
            return False
        if row["receipt"] is None:
            store.conn.execute(
                "UPDATE sync_batches SET receipt = ?, acknowledged_at = ?, document = NULL, "
                "sent_via = COALESCE(sent_via, 'http') WHERE n = ?",
                (
                    json.dumps({"signed": doc.signed, "signature": doc.signature}),
                    iso(store.time_ms()),
                    row["n"],
                ),
            )
        store.clock.observe(receipt.accepted_at)
        refresh_marks(store)
    return True


def adopt_receipts(store: Store, receipts: list[tuple[c.Receipt, c.SignedDocument]]) -> int:
    """Take central's word (signed) for batches this box lost track of, e.g. after a restore.

    Open batches that those receipts overtake are dropped; their events and
    keys go out again in new batches that continue from central's head.
    """
    adopted = 0
    with store.transaction():
        for receipt, doc in receipts:
            known = store.conn.execute(
                "SELECT n FROM sync_batches WHERE batch_id = ?", (receipt.batch,)
            ).fetchone()
            if known is not None:
                continue
            if _event_hash(store, receipt.last_seq) != receipt.head:
                raise SyncStateError(
                    f"central holds a different history for event {receipt.last_seq}: "
                    "call regional IT before syncing this box again"
                )
            overtaken = store.conn.execute(
                "SELECT n FROM sync_batches WHERE receipt IS NULL AND after_seq < ?",
                (receipt.last_seq,),
            ).fetchall()
            for row in overtaken:
                store.conn.execute("DELETE FROM sync_keys WHERE batch_n = ?", (row["n"],))
                store.conn.execute("DELETE FROM sync_batches WHERE n = ?", (row["n"],))
            cur = store.conn.execute(
                "INSERT INTO sync_batches(batch_id, after_seq, last_seq, events, blobs, document, "
                "created, sent_via, receipt, acknowledged_at) "
                "VALUES (?, ?, ?, ?, '[]', NULL, ?, 'http', ?, ?)",
                (
                    receipt.batch,
                    receipt.after_seq,
                    receipt.last_seq,
                    receipt.events,
                    iso(store.time_ms()),
                    json.dumps({"signed": doc.signed, "signature": doc.signature}),
                    iso(store.time_ms()),
                ),
            )
            store.conn.executemany(
                "INSERT OR IGNORE INTO sync_keys(key_id, batch_n) VALUES (?, ?)",
                [(k, int(cur.lastrowid or 0)) for k in receipt.keys],
            )
            store.clock.observe(receipt.accepted_at)
            adopted += 1
        refresh_marks(store)
    return adopted


LOST_ALERT = "alert.central_lost_data"
"""Meta key of the health alert raised when central lost acknowledged events: the box's
health summary carries it (``alerts.central_lost_data``), so the fleet page flags the box."""
LOST_SINCE = "sync.central_lost_at"
"""Cursor: when (ms) the box last found central behind its receipts."""
LOST_ALERT_KEEP_MS = 7 * 24 * 3600 * 1000
"""How long the alert stays once everything is back: long enough for regional IT's weekly look."""


def rewind_to_central(store: Store, head: c.Head, *, via: str) -> int:
    """Central holds fewer of this box's events than its receipts say: send them again.

    Why: after central is restored from an older backup, its head for this device is
    behind the box's receipts and every dossier past it is lost at central while the
    box shows it "acknowledged" (issue 11, item 6). The box still holds every event
    and blob sealed, so it forgets the batches (and their receipts) past central's
    head; the events, blobs and key wraps then go out again in new batches that
    continue the chain from central's last accepted event. Refused, with a line to
    act on, when central's head is not an event of this box's own chain (a different
    history, not a loss). Returns how many acknowledged events central had lost
    (0: nothing to do); raises the ``central_lost_data`` health alert when > 0.
    """
    last = store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    if head.seq <= int(last) and _event_hash(store, head.seq) != head.hash:
        raise SyncStateError(
            f"central's last event for this box ({head.seq}) is not this box's event "
            f"{head.seq}: central holds a different history; call regional IT before "
            "syncing this box again"
        )
    acked = acked_through(store)
    if head.seq >= acked:
        # not a loss: central is level or ahead (the chain_broken path adopts its receipts)
        return 0
    lost = acked - head.seq
    now_ms = store.time_ms()
    with store.transaction():
        dropped = [
            r["n"]
            for r in store.conn.execute(
                "SELECT n FROM sync_batches WHERE last_seq > ?", (head.seq,)
            ).fetchall()
        ]
        store.conn.executemany("DELETE FROM sync_keys WHERE batch_n = ?", [(n,) for n in dropped])
        store.conn.executemany("DELETE FROM sync_batches WHERE n = ?", [(n,) for n in dropped])
        # marks are recomputed only for dossiers not acknowledged: look at all again
        store.conn.execute("UPDATE dossiers SET sync = 'pending' WHERE sync = 'acknowledged'")
        put_cursor(store, LOST_SINCE, str(now_ms))
        store.put_meta(
            LOST_ALERT,
            f"{iso(now_ms)} central had lost events {head.seq + 1}-{acked} of this box "
            f"(restored from an older backup?); the box is sending them again ({via}); "
            "check that central's backups run",
        )
        refresh_marks(store)
    return lost


def settle_lost_alert(store: Store, done: bool) -> None:
    """Once everything central lost is back, say so; drop the alert a week after."""
    text = store.meta(LOST_ALERT) or ""
    if not text or not done:
        return
    since = int(cursor(store, LOST_SINCE, "0") or 0)
    with store.transaction():
        if store.time_ms() - since > LOST_ALERT_KEEP_MS:
            store.put_meta(LOST_ALERT, "")
        elif "sending them again" in text:
            store.put_meta(
                LOST_ALERT,
                text.replace("the box is sending them again", "the box sent them again")
                + f"; all back at central since {iso(store.time_ms())}",
            )


def refresh_marks(store: Store) -> None:
    """Recompute pending/sent/acknowledged for dossiers not yet acknowledged.

    Runs inside the caller's transaction. ``append_event`` puts a dossier back
    to pending whenever it changes, so acknowledged dossiers need no look.
    """
    sent = store.conn.execute(
        "SELECT COALESCE(MAX(last_seq), 0) FROM sync_batches WHERE sent_via IS NOT NULL"
    ).fetchone()[0]
    acked = acked_through(store)
    store.conn.execute(
        """
        UPDATE dossiers SET sync = CASE
            WHEN (SELECT MAX(seq) FROM events e WHERE e.dossier_id = dossiers.id) <= :acked
             AND NOT EXISTS (
                SELECT 1 FROM events e WHERE e.dossier_id = dossiers.id AND NOT EXISTS (
                    SELECT 1 FROM sync_keys k JOIN sync_batches b ON b.n = k.batch_n
                    WHERE k.key_id = e.key_id AND b.receipt IS NOT NULL))
            THEN 'acknowledged'
            WHEN (SELECT MAX(seq) FROM events e WHERE e.dossier_id = dossiers.id) <= :sent
            THEN 'sent'
            ELSE 'pending' END
        WHERE sync <> 'acknowledged'
        """,
        {"acked": acked, "sent": sent},
    )


# -- blobs -----------------------------------------------------------------------


def blob_length(store: Store, blob_id: str) -> int:
    row = store.conn.execute("SELECT size FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    if row is None:
        raise SyncStateError(f"sealed blob {blob_id[:12]} is missing: run 'edge doctor'")
    return int(row[0])


def read_blob(store: Store, blob_id: str, offset: int, size: int) -> bytes:
    """A slice of a sealed blob, read incrementally so a large page never sits whole in memory."""
    row = store.conn.execute("SELECT rowid FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    if row is None:
        raise SyncStateError(f"sealed blob {blob_id[:12]} is missing: run 'edge doctor'")
    with store.conn.blobopen("blobs", "data", row[0], readonly=True) as blob:
        blob.seek(offset)
        return blob.read(size)


def note_upload(store: Store, blob_id: str, confirmed: int, length: int) -> None:
    """Remember how far central confirmed an upload (for reports; central's word wins)."""
    with store.transaction():
        if confirmed >= length:
            store.conn.execute("DELETE FROM sync_uploads WHERE blob_id = ?", (blob_id,))
        else:
            store.conn.execute(
                "INSERT INTO sync_uploads(blob_id, confirmed, length, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(blob_id) DO UPDATE SET confirmed=excluded.confirmed, "
                "updated=excluded.updated",
                (blob_id, confirmed, length, iso(store.time_ms())),
            )


# -- keys ------------------------------------------------------------------------


def keys_waiting(store: Store) -> int:
    """Data keys central cannot open yet: made before this box knew central's key."""
    return int(
        store.conn.execute(
            "SELECT COUNT(*) FROM data_keys WHERE wrapped_central IS NULL"
        ).fetchone()[0]
    )


def rewrap_for_central(store: Store, keyring: Keyring, session: OfficeSession) -> int:
    """Wrap to central every data key made before enrollment; needs a signed-in clerk.

    The capture daemon holds public keys only, so it cannot do this itself: a
    key made before the box knew central's recipient key is wrapped to the
    office key alone. Whoever holds an unlocked session (``edge enroll`` or
    ``edge sync`` with ``--clerk``, or the clerk UI at sign-in) calls this; the
    new wraps then ship in the next batch.
    """
    central = keyring.central_public
    if central is None:
        return 0
    rows = store.conn.execute(
        "SELECT key_id, wrapped_office FROM data_keys WHERE wrapped_central IS NULL"
    ).fetchall()
    wraps = [
        (session.rewrap_for(central, r["key_id"], bytes(r["wrapped_office"])), r["key_id"])
        for r in rows
    ]
    with store.transaction():
        store.conn.executemany(
            "UPDATE data_keys SET wrapped_central = ? WHERE key_id = ? AND wrapped_central IS NULL",
            wraps,
        )
        refresh_marks(store)
    return len(wraps)


def summary(store: Store) -> dict[str, int]:
    acked = acked_through(store)
    last = store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    waiting_batches = store.conn.execute(
        "SELECT COUNT(*) FROM sync_batches WHERE receipt IS NULL"
    ).fetchone()[0]
    unsent_keys = store.conn.execute(
        "SELECT COUNT(*) FROM data_keys k WHERE wrapped_central IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM sync_keys s JOIN sync_batches b ON b.n = s.batch_n "
        "WHERE s.key_id = k.key_id AND b.receipt IS NOT NULL)"
    ).fetchone()[0]
    return {
        "events": int(last) - acked,
        "batches": int(waiting_batches),
        "keys": int(unsent_keys),
        "keys_waiting_for_clerk": keys_waiting(store),
    }
