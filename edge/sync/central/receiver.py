"""Central's receiver logic, shared by the HTTP app, the USB importer and the commands.

Every protocol operation is a plain method here, so the Litestar controllers
stay thin and ``edge central import`` applies exactly the same checks to a
stick as the network path applies to a request. Heavy checks (signatures,
hashes) run before a transaction opens; the transaction itself only checks
what depends on shared state (nonce, chain head, blobs present) and writes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

from edge import __version__
from edge.clock import iso
from edge.domain import DEFAULT_CODE_PATTERNS, CodePatterns
from edge.settings import Settings
from edge.store import GENESIS
from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.blobs import BlobStore
from edge.sync.central.committer import GroupCommitter
from edge.sync.central.keys import CentralKeys
from edge.update import office_prefixes
from edge.update.gate import Gate
from edge.vault import verify_signature

log = logging.getLogger("edge.central")

_PURGE_EVERY_MS = 60_000
T = TypeVar("T")


@dataclass(frozen=True)
class Device:
    device_id: str
    public_key: bytes
    office: str


@dataclass(frozen=True)
class Auth:
    """The four headers every signed request carries."""

    device: str
    time_ms: int
    nonce: str
    signature: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Auth:
        device = headers.get(c.H_DEVICE)
        stamp = headers.get(c.H_TIME)
        nonce = headers.get(c.H_NONCE)
        signature = headers.get(c.H_SIGNATURE)
        if not (device and stamp and nonce and signature):
            raise c.ProblemError(
                c.Code.UNAUTHENTICATED,
                f"sign the request: {c.H_DEVICE}, {c.H_TIME}, {c.H_NONCE}, {c.H_SIGNATURE}",
            )
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
            raise c.ProblemError(c.Code.MALFORMED, f"{c.H_TIME} is not an integer")
        if len(device) != 32 or len(nonce) != 32 or not _is_hex(device + nonce):
            raise c.ProblemError(c.Code.MALFORMED, "device id and nonce are 32 hex digits")
        if len(signature) > 200:
            raise c.ProblemError(c.Code.MALFORMED, f"{c.H_SIGNATURE} is too long")
        return cls(device, int(stamp), nonce, signature)


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in text)


class Central:
    """One receiver's view of central: database, blob folder and keys."""

    def __init__(
        self,
        data: Path,
        db_url: str | None = None,
        *,
        window_ms: int = c.TIME_WINDOW_MS,
        now: Callable[[], int] | None = None,
        pool_size: int = 8,
    ) -> None:
        self.data = data
        st.ensure_private_dir(data)
        self.engine = st.open_engine(data, db_url, pool_size=pool_size)
        st.create_schema(self.engine)
        self.blobs = BlobStore(data)
        self.keys = CentralKeys.load_or_create(data)
        self.gate = Gate(data)
        self.window_ms = window_ms
        self._now = now or (lambda: int(time.time() * 1000))
        self._publics: dict[str, Device] = {}
        self._purged_at = 0
        self._committer = None if st.is_postgres(self.engine) else GroupCommitter(self.engine)
        self.codes = KnownPatterns(self)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
        self.engine.dispose()

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run a request's writes in one transaction (grouped with others on SQLite)."""
        if self._committer is not None:
            return self._committer.submit(work)
        with self._tx() as conn:
            return work(conn)

    def now(self) -> int:
        return self._now()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _insert(self, conn: Connection, table: Any) -> Any:
        dialect = pg_dialect if st.is_postgres(conn) else sqlite_dialect
        return dialect.insert(table)

    # -- authentication ------------------------------------------------------

    def _device(self, device_id: str) -> Device | None:
        known = self._publics.get(device_id)
        if known is not None:
            return known
        with self._tx() as conn:
            row = conn.execute(
                select(st.devices.c.public_key, st.devices.c.office).where(
                    st.devices.c.device_id == device_id
                )
            ).first()
        if row is None:
            return None
        device = Device(device_id, bytes(row.public_key), row.office)
        self._publics[device_id] = device
        return device

    def check_headers(self, headers: Mapping[str, str]) -> tuple[Device, Auth]:
        """What can be judged before a byte of the body is read: the signature headers are
        there and well-formed, name an enrolled device, and carry a time in the window.

        The gateway (app.Gateway) calls this first, so an unsigned or unknown sender never
        gets central to buffer or parse a body; the signature itself covers the body's
        digest and waits for it (``verify_request``).
        """
        auth = Auth.from_headers(headers)
        device = self._device(auth.device)
        if device is None:
            raise c.ProblemError(c.Code.UNKNOWN_DEVICE, "enroll this box first ('edge enroll')")
        now = self.now()
        if abs(auth.time_ms - now) > self.window_ms:
            raise c.ProblemError(
                c.Code.STALE_TIME,
                "the box's clock is off: sign again with central's time",
                server_time=now,
            )
        return device, auth

    def cached_device(self, device_id: str) -> Device | None:
        """An enrolled device already looked up by this process (no database read)."""
        return self._publics.get(device_id)

    def verify_request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Device, Auth]:
        """Everything about a request that needs no write: who, when, signature."""
        device, auth = self.check_headers(headers)
        try:
            signature = c.b64d(auth.signature)
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the signature is not base64") from exc
        message = c.request_message(method, target, auth.device, auth.time_ms, auth.nonce, body)
        if not verify_signature(device.public_key, message, signature):
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the device signature does not verify")
        return device, auth

    def admit(self, conn: Connection, device: Device, auth: Auth) -> Any:
        """Inside the request's transaction: spend the nonce, check revocation, note contact."""
        now = self.now()
        try:
            conn.execute(
                st.nonces.insert().values(
                    device_id=device.device_id,
                    nonce=auth.nonce,
                    expires_ms=max(auth.time_ms, now) + self.window_ms,
                )
            )
        except IntegrityError as exc:
            raise c.ProblemError(c.Code.REPLAYED, "sign every request with a fresh nonce") from exc
        # One statement both notes the contact and locks the row for this transaction.
        row = conn.execute(
            update(st.devices)
            .where(st.devices.c.device_id == device.device_id)
            .values(last_contact_ms=now)
            .returning(*st.devices.c)
        ).first()
        if row is None:
            raise c.ProblemError(c.Code.UNKNOWN_DEVICE, "enroll this box first ('edge enroll')")
        if row.revoked:
            raise c.ProblemError(c.Code.DEVICE_REVOKED, "ask regional IT to re-enroll this box")
        if now - self._purged_at > _PURGE_EVERY_MS:
            self._purged_at = now
            conn.execute(st.nonces.delete().where(st.nonces.c.expires_ms < now))
        return row

    def lock_device(self, conn: Connection, device_id: str) -> Any:
        """The device row, locked for this transaction: a device's chain advances one at a time."""
        row = conn.execute(
            select(st.devices).where(st.devices.c.device_id == device_id).with_for_update()
        ).first()
        if row is None:
            raise c.ProblemError(c.Code.UNKNOWN_DEVICE, "enroll this box first ('edge enroll')")
        if row.revoked:
            raise c.ProblemError(c.Code.DEVICE_REVOKED, "ask regional IT to re-enroll this box")
        return row

    def known_device(self, device_id: str) -> Device | None:
        return self._device(device_id)

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        work: Callable[[Connection, Any], T],
    ) -> T:
        """Verify a signed request, then run ``work`` in its one transaction."""
        device, auth = self.verify_request(method, target, headers, body)
        return self.write(lambda conn: work(conn, self.admit(conn, device, auth)))

    # -- enrollment ------------------------------------------------------------

    def issue_token(self, office: str) -> str:
        """A one-time enrollment token: 160 random bits in base32 (A–Z, 2–7).

        Technicians copy it into edge-enroll.txt or type it after ``--token``; URL-safe
        base64 started with '-' one time in 64, which the command line took for an option.
        """
        token = base64.b32encode(secrets.token_bytes(20)).decode("ascii")
        with self._tx() as conn:
            conn.execute(
                st.tokens.insert().values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    office=office,
                    created_ms=self.now(),
                )
            )
        return token

    def enroll(self, req: c.EnrollRequest) -> c.EnrollAnswer:
        try:
            public = c.b64d(req.device_public)
            proof = c.b64d(req.proof)
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.MALFORMED, "device_public and proof are base64") from exc
        if len(public) != 32:
            raise c.ProblemError(c.Code.MALFORMED, "device_public is a raw 32-byte Ed25519 key")
        if not verify_signature(
            public, c.enroll_message(req.token, req.device_public, req.office), proof
        ):
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the enrollment proof does not verify")
        device_id = c.device_id_for(public)
        token_hash = hashlib.sha256(req.token.encode("utf-8")).hexdigest()
        return self.write(
            lambda conn: self._enroll(conn, req, public, device_id, token_hash, self.now())
        )

    def _enroll(
        self,
        conn: Connection,
        req: c.EnrollRequest,
        public: bytes,
        device_id: str,
        token_hash: str,
        now: int,
    ) -> c.EnrollAnswer:
        token = conn.execute(
            select(st.tokens).where(st.tokens.c.token_hash == token_hash).with_for_update()
        ).first()
        if token is None:
            raise c.ProblemError(c.Code.TOKEN_INVALID, "ask regional IT for a new token")
        if token.office != req.office:
            raise c.ProblemError(c.Code.WRONG_OFFICE, f"this token is for office {token.office}")
        if token.used_by is not None and token.used_by != device_id:
            raise c.ProblemError(c.Code.TOKEN_USED, "ask regional IT for a new token")
        existing = conn.execute(
            select(st.devices).where(st.devices.c.device_id == device_id)
        ).first()
        if existing is None:
            conn.execute(
                st.devices.insert().values(
                    device_id=device_id,
                    public_key=public,
                    office=req.office,
                    enrolled_ms=now,
                    last_contact_ms=now,
                    head_seq=0,
                    head_hash=GENESIS,
                    software=req.software,
                    downlink_cursor=0,
                    revoked=False,
                )
            )
            head = c.Head(seq=0, hash=GENESIS)
        else:
            head = c.Head(seq=existing.head_seq, hash=existing.head_hash)
        conn.execute(
            update(st.tokens)
            .where(st.tokens.c.token_hash == token_hash)
            .values(used_by=device_id, used_ms=now)
        )
        settings = self._effective_settings(conn, req.office)
        update_root = self.gate.trusted_root()
        return c.EnrollAnswer(
            device_id=device_id,
            office=req.office,
            recipient_public=c.b64e(self.keys.recipient_public),
            receipt_public=c.b64e(self.keys.receipt_public),
            server_time=now,
            head=head,
            settings=settings,
            update_root=c.b64e(update_root) if update_root else None,
        )

    def device_info(self, row: Any) -> c.DeviceAnswer:
        return c.DeviceAnswer(
            device_id=row.device_id,
            office=row.office,
            head=c.Head(seq=row.head_seq, hash=row.head_hash),
            downlink_cursor=row.downlink_cursor,
            server_time=self.now(),
        )

    # -- blobs -------------------------------------------------------------------

    def blob_status(self, conn: Connection, device_id: str, ids: list[str]) -> c.BlobStatusAnswer:
        wanted = sorted(set(ids))
        done = {
            r.blob_id: r.length
            for r in conn.execute(
                select(st.blobs.c.blob_id, st.blobs.c.length).where(st.blobs.c.blob_id.in_(wanted))
            )
        }
        partial = {
            r.blob_id: (r.stored, r.length)
            for r in conn.execute(
                select(st.uploads).where(
                    and_(st.uploads.c.device_id == device_id, st.uploads.c.blob_id.in_(wanted))
                )
            )
        }
        states = []
        for blob_id in ids:
            if blob_id in done:
                states.append(c.BlobState(blob_id, done[blob_id], True, done[blob_id]))
            elif blob_id in partial:
                stored, length = partial[blob_id]
                states.append(c.BlobState(blob_id, stored, False, length))
            else:
                states.append(c.BlobState(blob_id, 0, False, None))
        return c.BlobStatusAnswer(blobs=states)

    def upload_state(self, conn: Connection, device_id: str, blob_id: str) -> c.BlobState:
        return self.blob_status(conn, device_id, [blob_id]).blobs[0]

    def check_chunk(
        self, conn: Connection, device_id: str, blob_id: str, offset: int, length: int, data: bytes
    ) -> c.BlobState | None:
        """Validate a chunk against the upload row; None means 'write it'."""
        if length < 1 or length > c.MAX_BLOB:
            raise c.ProblemError(c.Code.TOO_LARGE, f"a blob is 1 to {c.MAX_BLOB} bytes")
        if not data:
            raise c.ProblemError(c.Code.MALFORMED, "a chunk carries at least one byte")
        if offset < 0 or offset + len(data) > length:
            raise c.ProblemError(c.Code.MALFORMED, "the chunk runs past Upload-Length")
        done = conn.execute(select(st.blobs.c.length).where(st.blobs.c.blob_id == blob_id)).scalar()
        if done is not None:
            return c.BlobState(blob_id, done, True, done)
        if offset == 0:
            conn.execute(
                self._insert(conn, st.uploads)
                .values(
                    device_id=device_id,
                    blob_id=blob_id,
                    length=length,
                    stored=0,
                    updated_ms=self.now(),
                )
                .on_conflict_do_nothing()
            )
        row = conn.execute(
            select(st.uploads).where(
                and_(st.uploads.c.device_id == device_id, st.uploads.c.blob_id == blob_id)
            )
        ).first()
        if row is None:
            raise c.ProblemError(
                c.Code.OFFSET_MISMATCH, "no upload of this blob yet: start at 0", offset=0
            )
        if row.length != length:
            raise c.ProblemError(
                c.Code.LENGTH_MISMATCH, f"this upload is {row.length} bytes long", offset=row.stored
            )
        if row.stored != offset:
            raise c.ProblemError(
                c.Code.OFFSET_MISMATCH, f"resume at offset {row.stored}", offset=row.stored
            )
        return None

    def upload_chunk(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        blob_id: str,
        offset: int,
        length: int,
        checksum: str | None,
        data: bytes,
    ) -> c.BlobState:
        """One tus-style chunk: checked, written at its offset, then the offset advances."""
        device, auth = self.verify_request(method, target, headers, data)
        if checksum is not None and checksum != c.chunk_checksum(data):
            raise c.ProblemError(c.Code.CHECKSUM_MISMATCH, "the chunk does not match its checksum")

        def check(conn: Connection) -> c.BlobState | None:
            self.admit(conn, device, auth)
            return self.check_chunk(conn, device.device_id, blob_id, offset, length, data)

        state = self.write(check)
        if state is not None:
            return state
        self.blobs.write_chunk(device.device_id, blob_id, offset, data)
        end = offset + len(data)
        moved = self.write(
            lambda conn: (
                conn.execute(
                    update(st.uploads)
                    .where(
                        and_(
                            st.uploads.c.device_id == device.device_id,
                            st.uploads.c.blob_id == blob_id,
                            st.uploads.c.stored == offset,
                        )
                    )
                    .values(stored=end, updated_ms=self.now())
                ).rowcount
            )
        )
        if not moved:
            with self._tx() as conn:
                current = self.upload_state(conn, device.device_id, blob_id)
            if current.complete:
                return current
            raise c.ProblemError(
                c.Code.OFFSET_MISMATCH, f"resume at offset {current.offset}", offset=current.offset
            )
        if end < length:
            return c.BlobState(blob_id, end, False, length)
        return self._complete(device.device_id, blob_id, length)

    def _complete(self, device_id: str, blob_id: str, length: int) -> c.BlobState:
        ok = self.blobs.finish(device_id, blob_id, length)

        def settle(conn: Connection) -> None:
            conn.execute(
                st.uploads.delete().where(
                    and_(st.uploads.c.device_id == device_id, st.uploads.c.blob_id == blob_id)
                )
            )
            if ok:
                self.record_blob(conn, blob_id, length)

        self.write(settle)
        if not ok:
            raise c.ProblemError(
                c.Code.CHECKSUM_MISMATCH,
                "the uploaded bytes do not hash to the blob id: upload it again from 0",
                offset=0,
            )
        return c.BlobState(blob_id, length, True, length)

    def record_blob(self, conn: Connection, blob_id: str, length: int) -> None:
        conn.execute(
            self._insert(conn, st.blobs)
            .values(blob_id=blob_id, length=length, stored_ms=self.now())
            .on_conflict_do_nothing()
        )

    # -- batches -------------------------------------------------------------------

    def check_batch(self, device: Device, batch_id: str, doc: c.SignedDocument) -> c.Batch:
        """Everything about a batch that needs no database: id, signature, hashes."""
        if c.document_id(doc) != batch_id:
            raise c.ProblemError(c.Code.TAMPERED_BATCH, "the batch id is not the SHA-256 of it")
        try:
            c.verify_document(c.DOMAIN_BATCH, doc, device.public_key)
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.TAMPERED_BATCH, str(exc)) from exc
        try:
            batch = c.decode_document(doc, c.Batch)
        except c.DocumentError as exc:
            # signed by the device, so not a forgery: a value no box sends
            raise c.ProblemError(c.Code.INVALID_FIELD, str(exc)[:500]) from exc
        if batch.device != device.device_id:
            raise c.ProblemError(c.Code.TAMPERED_BATCH, "the batch names another device")
        if batch.v != c.PROTOCOL:
            raise c.ProblemError(c.Code.MALFORMED, f"batch version {batch.v} is not supported")
        prev_seq, prev_hash = batch.after_seq, batch.after_hash
        for ev in batch.events:
            if ev.seq != prev_seq + 1 or ev.prev_hash != prev_hash:
                raise c.ProblemError(
                    c.Code.CHAIN_BROKEN, f"event {ev.seq} does not follow event {prev_seq}"
                )
            try:
                payload = c.b64d(ev.payload)
            except c.DocumentError as exc:
                raise c.ProblemError(c.Code.MALFORMED, f"event {ev.seq}: payload") from exc
            if c.wire_event_hash(ev, payload) != ev.hash:
                raise c.ProblemError(
                    c.Code.TAMPERED_BATCH, f"event {ev.seq} does not match its hash"
                )
            prev_seq, prev_hash = ev.seq, ev.hash
        for key in batch.keys:
            try:
                c.b64d(key.wrapped)
            except c.DocumentError as exc:
                raise c.ProblemError(c.Code.MALFORMED, f"key {key.key_id}: wrapped") from exc
        self.check_dossiers(device, batch)
        return batch

    def check_dossiers(self, device: Device, batch: c.Batch) -> None:
        """The clear metadata a batch carries is what central lists and routes statuses by,
        so each entry must be one the box could have sent: about a dossier the batch's events
        touch, once, with a code some pattern of regional IT's accepts and, where that
        pattern names the office (``(?P<office>…)``) or province (``(?P<province>…)``), this
        box's. Ownership against other boxes is settled in the transaction (``claim_codes``).
        """
        touched = {ev.dossier_id for ev in batch.events if ev.dossier_id}
        seen: set[str] = set()
        for dossier in batch.dossiers:
            if dossier.id in seen:
                raise c.ProblemError(c.Code.INVALID_FIELD, f"dossier {dossier.id} is listed twice")
            seen.add(dossier.id)
            if dossier.id not in touched:
                raise c.ProblemError(
                    c.Code.INVALID_FIELD,
                    f"dossier {dossier.id}: no event of this batch is about it",
                )
            if dossier.code is not None:
                problem = self.codes.judge(dossier.code, device.office)
                if problem is not None:
                    raise c.ProblemError(
                        c.Code.INVALID_FIELD, f"dossier {dossier.id}: {problem}"[:500]
                    )

    def claim_codes(self, conn: Connection, device_row: Any, batch: c.Batch) -> None:
        """First writer owns a code: its office's boxes may hold it, no other office's may.

        The primary key on ``dossier_codes.code`` settles two offices racing for a new
        code (on PostgreSQL the second insert waits for the first to commit, then conflicts).
        """
        now = self.now()
        for dossier in batch.dossiers:
            if dossier.code is None:
                continue
            conn.execute(
                self._insert(conn, st.dossier_codes)
                .values(
                    code=dossier.code,
                    office=device_row.office,
                    device_id=device_row.device_id,
                    first_ms=now,
                )
                .on_conflict_do_nothing()
            )
            owner = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == dossier.code)
            ).scalar_one()
            if owner != device_row.office:
                raise c.ProblemError(
                    c.Code.DOSSIER_CLAIMED,
                    f"dossier code {dossier.code} belongs to a box of another office: "
                    "check the code on the cover, or ask regional IT",
                )

    def stored_receipt(
        self, conn: Connection, device_id: str, batch_id: str
    ) -> c.SignedDocument | None:
        row = conn.execute(
            select(
                st.batches.c.device_id, st.batches.c.receipt, st.batches.c.receipt_signature
            ).where(st.batches.c.batch_id == batch_id)
        ).first()
        if row is None:
            return None
        if row.device_id != device_id:
            raise c.ProblemError(c.Code.TAMPERED_BATCH, "this batch belongs to another device")
        return c.SignedDocument(signed=row.receipt, signature=row.receipt_signature)

    def accept_batch(
        self,
        conn: Connection,
        device_row: Any,
        batch_id: str,
        doc: c.SignedDocument,
        batch: c.Batch,
        via: str,
    ) -> c.SignedDocument:
        """Commit a checked batch in the caller's transaction (device row already locked)."""
        device_id = device_row.device_id
        head = c.Head(seq=device_row.head_seq, hash=device_row.head_hash)
        continues = batch.after_seq == head.seq and batch.after_hash == head.hash
        # A batch with events that continues the head cannot have been accepted before
        # (accepting it moved the head), so only the other cases look for a stored receipt.
        if not (continues and batch.events):
            stored = self.stored_receipt(conn, device_id, batch_id)
            if stored is not None:
                return stored
        if not continues:
            raise c.ProblemError(
                c.Code.CHAIN_BROKEN,
                f"central holds events up to {head.seq}; this batch follows {batch.after_seq}",
                head=head,
            )
        referenced = sorted({b for ev in batch.events for b in ev.blobs})
        present: set[str] = set()
        for start in range(0, len(referenced), 500):
            part = referenced[start : start + 500]
            present.update(
                conn.execute(
                    select(st.blobs.c.blob_id).where(st.blobs.c.blob_id.in_(part))
                ).scalars()
            )
        missing = [b for b in referenced if b not in present]
        self.claim_codes(conn, device_row, batch)
        if missing:
            raise c.ProblemError(
                c.Code.BLOBS_MISSING, f"{len(missing)} blob(s) not uploaded yet", missing=missing
            )
        if batch.events:
            conn.execute(
                st.events.insert(),
                [
                    {
                        "device_id": device_id,
                        "seq": ev.seq,
                        "dossier_id": ev.dossier_id,
                        "type": ev.type,
                        "key_id": ev.key_id,
                        "payload": c.b64d(ev.payload),
                        "at": ev.at,
                        "hlc": ev.hlc,
                        "prev_hash": ev.prev_hash,
                        "hash": ev.hash,
                        "batch_id": batch_id,
                    }
                    for ev in batch.events
                ],
            )
            links = [
                {"device_id": device_id, "seq": ev.seq, "blob_id": b}
                for ev in batch.events
                for b in sorted(set(ev.blobs))
            ]
            if links:
                conn.execute(st.event_blobs.insert(), links)
        if batch.keys:
            conn.execute(
                self._insert(conn, st.keys)
                .values(
                    [
                        {
                            "device_id": device_id,
                            "key_id": k.key_id,
                            "dossier_id": k.dossier_id,
                            "wrapped": c.b64d(k.wrapped),
                            "batch_id": batch_id,
                        }
                        for k in batch.keys
                    ]
                )
                .on_conflict_do_nothing()
            )
        now = self.now()
        for dossier in batch.dossiers:
            stmt = self._insert(conn, st.dossiers).values(
                device_id=device_id,
                dossier_id=dossier.id,
                code=dossier.code,
                status=dossier.status,
                received_at=dossier.received_at,
                first_ms=now,
                updated_ms=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["device_id", "dossier_id"],
                    set_={"code": dossier.code, "status": dossier.status, "updated_ms": now},
                )
            )
        last_seq = batch.events[-1].seq if batch.events else batch.after_seq
        last_hash = batch.events[-1].hash if batch.events else batch.after_hash
        conn.execute(
            update(st.devices)
            .where(st.devices.c.device_id == device_id)
            .values(head_seq=last_seq, head_hash=last_hash, software=batch.software or "")
        )
        receipt = c.sign_document(
            c.DOMAIN_RECEIPT,
            c.Receipt(
                v=c.PROTOCOL,
                batch=batch_id,
                device=device_id,
                after_seq=batch.after_seq,
                last_seq=last_seq,
                head=last_hash,
                events=len(batch.events),
                keys=sorted(k.key_id for k in batch.keys),
                blobs=len(referenced),
                accepted_at=now,
            ),
            self.keys.sign,
        )
        conn.execute(
            st.batches.insert().values(
                batch_id=batch_id,
                device_id=device_id,
                after_seq=batch.after_seq,
                last_seq=last_seq,
                document=doc.signed,
                signature=doc.signature,
                receipt=receipt.signed,
                receipt_signature=receipt.signature,
                accepted_ms=now,
                via=via,
            )
        )
        return receipt

    def put_batch(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        batch_id: str,
        body: bytes,
        doc: c.SignedDocument,
    ) -> c.ReceiptAnswer:
        device, auth = self.verify_request(method, target, headers, body)
        batch = self.check_batch(device, batch_id, doc)
        receipt = self.write(
            lambda conn: self.accept_batch(
                conn, self.admit(conn, device, auth), batch_id, doc, batch, "http"
            )
        )
        return c.ReceiptAnswer(receipt=receipt, server_time=self.now())

    def receipts(
        self, conn: Connection, device_id: str, after_seq: int, limit: int
    ) -> c.ReceiptsAnswer:
        rows = conn.execute(
            select(st.batches.c.receipt, st.batches.c.receipt_signature)
            .where(and_(st.batches.c.device_id == device_id, st.batches.c.last_seq > after_seq))
            .order_by(st.batches.c.last_seq, st.batches.c.accepted_ms)
            .limit(limit)
        )
        return c.ReceiptsAnswer(
            receipts=[
                c.SignedDocument(signed=r.receipt, signature=r.receipt_signature) for r in rows
            ],
            server_time=self.now(),
        )

    # -- downlink ------------------------------------------------------------------

    def _targets(self, device_id: str, office: str) -> Any:
        d = st.downlink.c
        return or_(
            d.device_id == device_id,
            and_(d.device_id.is_(None), or_(d.office.is_(None), d.office == office)),
        )

    def downlink(
        self, conn: Connection, row: Any, after: int, limit: int, nonce: str
    ) -> c.DownlinkAnswer:
        if after > row.downlink_cursor:
            conn.execute(
                update(st.devices)
                .where(st.devices.c.device_id == row.device_id)
                .values(downlink_cursor=after)
            )
        return self.downlink_items(conn, row.device_id, row.office, after, limit, nonce)

    def downlink_items(
        self, conn: Connection, device_id: str, office: str, after: int, limit: int, nonce: str
    ) -> c.DownlinkAnswer:
        rows = conn.execute(
            select(st.downlink.c.id, st.downlink.c.document, st.downlink.c.signature)
            .where(and_(st.downlink.c.id > after, self._targets(device_id, office)))
            .order_by(st.downlink.c.id)
            .limit(limit + 1)
        ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        now = self.now()
        clock = c.sign_document(
            c.DOMAIN_CLOCK,
            c.Clock(v=c.PROTOCOL, device=device_id, nonce=nonce, server_time=now),
            self.keys.sign,
        )
        return c.DownlinkAnswer(
            items=[
                c.DownlinkItem(
                    id=r.id, document=c.SignedDocument(signed=r.document, signature=r.signature)
                )
                for r in rows
            ],
            next=rows[-1].id if rows else after,
            more=more,
            clock=clock,
            server_time=now,
            updates=self.gate.served_version(),
        )

    def _post(
        self,
        conn: Connection,
        device_id: str | None,
        office: str | None,
        kind: str,
        body: dict[str, Any],
    ) -> int:
        with st.lock_downlink(conn):
            now = self.now()
            new_id = conn.execute(
                st.downlink.insert()
                .values(
                    device_id=device_id,
                    office=office,
                    kind=kind,
                    document="",
                    signature="",
                    created_ms=now,
                )
                .returning(st.downlink.c.id)
            ).scalar_one()
            doc = c.sign_document(
                c.DOMAIN_DOWNLINK,
                c.DownlinkDoc(
                    v=c.PROTOCOL,
                    id=new_id,
                    device=device_id,
                    office=office,
                    kind=kind,
                    body=body,
                    at=now,
                ),
                self.keys.sign,
            )
            conn.execute(
                update(st.downlink)
                .where(st.downlink.c.id == new_id)
                .values(document=doc.signed, signature=doc.signature)
            )
        return int(new_id)

    def notify(self, code: str, status: int, note: str = "") -> list[int]:
        """Tell the box(es) holding a dossier its portal status (1–10)."""
        if not 1 <= status <= 10:
            raise ValueError("a portal status is a number from 1 to 10 (DESIGN.md section 9)")
        code = code.strip().upper()
        with self._tx() as conn:
            owner = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == code)
            ).scalar()
            query = (
                select(st.dossiers.c.device_id, st.dossiers.c.dossier_id)
                .join(st.devices, st.devices.c.device_id == st.dossiers.c.device_id)
                .where(st.dossiers.c.code == code)
            )
            if owner is not None:
                # only the owning office's boxes: a box elsewhere that named the code
                # (before central refused such claims) gets nothing about it
                query = query.where(st.devices.c.office == owner)
            holders = conn.execute(query).all()
            if not holders:
                raise ValueError(f"central holds no dossier with code {code}: check the code")
            ids = []
            for holder in holders:
                ids.append(
                    self._post(
                        conn,
                        holder.device_id,
                        None,
                        "status",
                        {
                            "code": code,
                            "dossier_id": holder.dossier_id,
                            "status": status,
                            "note": note,
                        },
                    )
                )
                conn.execute(
                    update(st.dossiers)
                    .where(
                        and_(
                            st.dossiers.c.device_id == holder.device_id,
                            st.dossiers.c.dossier_id == holder.dossier_id,
                        )
                    )
                    .values(central_status=status)
                )
        return ids

    def assign_code(self, code: str, office: str) -> str | None:
        """Regional IT settles who owns a dossier code (``edge central assign-code``): boxes
        of ``office`` may then send it and get its statuses; returns the previous owner."""
        code = code.strip().upper()
        office = office.strip().upper()
        with self._tx() as conn:
            previous = conn.execute(
                select(st.dossier_codes.c.office).where(st.dossier_codes.c.code == code)
            ).scalar()
            holder = conn.execute(
                select(st.devices.c.device_id).where(st.devices.c.office == office).limit(1)
            ).scalar()
            if holder is None:
                raise ValueError(f"no box of office {office} is enrolled: check the office code")
            if previous is None:
                conn.execute(
                    st.dossier_codes.insert().values(
                        code=code, office=office, device_id=holder, first_ms=self.now()
                    )
                )
            else:
                conn.execute(
                    update(st.dossier_codes)
                    .where(st.dossier_codes.c.code == code)
                    .values(office=office, device_id=holder)
                )
        return previous

    def revoke(self, device_id: str) -> None:
        """Refuse a device from now on (a stolen box, a rogue enrollment), in every process."""
        with self._tx() as conn:
            done = conn.execute(
                update(st.devices).where(st.devices.c.device_id == device_id).values(revoked=True)
            ).rowcount
        if not done:
            raise ValueError(f"no device {device_id!r} at central: see 'edge central status'")

    def configure(self, settings: dict[str, Any], office: str | None = None) -> int:
        """Push settings (e.g. dossier-code patterns) to every box, or one office's."""
        checked = Settings().with_changes(**settings)
        checked.patterns()
        body = {k: v for k, v in checked.as_dict().items() if k in settings}
        with self._tx() as conn:
            posted = self._post(conn, None, office, "config", {"settings": body})
        self.codes.forget()
        return posted

    def published_code_patterns(self) -> list[str]:
        """Every dossier-code pattern regional IT ever gave a box: pushed through the
        downlink (any office, any time: a box may still send codes an older pattern
        accepted) or in a configuration file of the signed update repository central
        serves (docs/updates.md)."""
        found: list[str] = []
        with self._tx() as conn:
            for row in conn.execute(
                select(st.downlink.c.document).where(st.downlink.c.kind == "config")
            ):
                try:
                    doc = c.decode_document(
                        c.SignedDocument(signed=row.document, signature="-"), c.DownlinkDoc
                    )
                except c.DocumentError:
                    continue
                found.extend(_patterns_in(doc.body.get("settings")))
        targets = self.data / "updates" / "targets"
        for path in sorted(targets.glob("**/*.config.json")) if targets.is_dir() else ():
            try:
                if path.is_symlink() or path.stat().st_size > (1 << 20):
                    continue
                document = json.loads(path.read_bytes())
            except (OSError, ValueError, RecursionError):
                continue
            if isinstance(document, dict):
                found.extend(_patterns_in(document.get("settings")))
        return found

    def _effective_settings(self, conn: Connection, office: str) -> dict[str, Any]:
        d = st.downlink.c
        merged: dict[str, Any] = {}
        for row in conn.execute(
            select(st.downlink.c.document)
            .where(
                and_(
                    d.kind == "config",
                    d.device_id.is_(None),
                    or_(d.office.is_(None), d.office == office),
                )
            )
            .order_by(d.id)
        ):
            doc = c.decode_document(
                c.SignedDocument(signed=row.document, signature=""), c.DownlinkDoc
            )
            merged.update(doc.body.get("settings", {}))
        return merged

    # -- what central holds ------------------------------------------------------

    def list_dossiers(self) -> list[dict[str, Any]]:
        e = st.events.c
        d = st.dossiers.c
        k = st.keys.c
        events = (
            select(func.count())
            .where(and_(e.device_id == d.device_id, e.dossier_id == d.dossier_id))
            .scalar_subquery()
        )
        pages = (
            select(func.count())
            .where(
                and_(
                    e.device_id == d.device_id, e.dossier_id == d.dossier_id, e.type == "page.added"
                )
            )
            .scalar_subquery()
        )
        unreadable = (
            select(func.count())
            .where(
                and_(
                    e.device_id == d.device_id,
                    e.dossier_id == d.dossier_id,
                    ~select(k.key_id)
                    .where(and_(k.device_id == e.device_id, k.key_id == e.key_id))
                    .exists(),
                )
            )
            .scalar_subquery()
        )
        with self._tx() as conn:
            rows = conn.execute(
                select(
                    d.device_id,
                    d.dossier_id,
                    d.code,
                    d.status,
                    d.received_at,
                    d.central_status,
                    events.label("events"),
                    pages.label("pages"),
                    unreadable.label("unreadable"),
                ).order_by(d.received_at, d.device_id, d.dossier_id)
            ).all()
        return [
            {
                "device": r.device_id,
                "id": r.dossier_id,
                "code": r.code,
                "status": r.status,
                "pages": r.pages,
                "events": r.events,
                "received_at": r.received_at,
                "central_status": r.central_status,
                "readable": r.unreadable == 0,
            }
            for r in rows
        ]

    def devices_status(self) -> list[dict[str, Any]]:
        d = st.devices.c
        dl = st.downlink.c
        with self._tx() as conn:
            rows = conn.execute(select(st.devices).order_by(d.office, d.device_id)).all()
            result = []
            for r in rows:
                pending = conn.execute(
                    select(func.count()).where(
                        and_(dl.id > r.downlink_cursor, self._targets(r.device_id, r.office))
                    )
                ).scalar_one()
                result.append(
                    {
                        "device": r.device_id,
                        "office": r.office,
                        "enrolled": iso(r.enrolled_ms),
                        "last_contact": iso(r.last_contact_ms) if r.last_contact_ms else None,
                        "last_seq": r.head_seq,
                        "pending_downlink": pending,
                        "software": r.software,
                        "revoked": bool(r.revoked),
                    }
                )
        return result

    def events_of(self, device_id: str) -> list[Any]:
        with self._tx() as conn:
            return conn.execute(
                select(st.events)
                .where(st.events.c.device_id == device_id)
                .order_by(st.events.c.seq)
            ).all()

    def key_wraps(self, device_id: str) -> dict[str, bytes]:
        with self._tx() as conn:
            return {
                r.key_id: bytes(r.wrapped)
                for r in conn.execute(select(st.keys).where(st.keys.c.device_id == device_id))
            }

    def dossier_rows(self, ident: str) -> list[Any]:
        d = st.dossiers.c
        with self._tx() as conn:
            return conn.execute(
                select(st.dossiers).where(
                    or_(d.dossier_id == ident, d.code == ident.strip().upper())
                )
            ).all()


def _patterns_in(settings: Any) -> list[str]:
    if not isinstance(settings, dict):
        return []
    patterns = settings.get("code_patterns")
    if not isinstance(patterns, list):
        return []
    return [p for p in patterns if isinstance(p, str) and len(p) <= 1000]


class KnownPatterns:
    """The dossier-code patterns central accepts codes by, compiled, refreshed on a miss.

    Built-in defaults plus ``Central.published_code_patterns``. A code no known pattern
    takes makes one refresh (another receiver process may have pushed a pattern just
    now), at most every few seconds, before the batch is refused.
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, central: Central) -> None:
        self.central = central
        self._patterns: list[re.Pattern[str]] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def forget(self) -> None:
        self._patterns = None

    def _load(self, force: bool) -> list[re.Pattern[str]]:
        with self._lock:
            stale = time.monotonic() - self._loaded > self.REFRESH_SECONDS
            if self._patterns is None or (force and stale):
                compiled: dict[str, re.Pattern[str]] = {}
                for source in [*DEFAULT_CODE_PATTERNS, *self.central.published_code_patterns()]:
                    if source in compiled:
                        continue
                    try:
                        pattern = re.compile(source, re.ASCII)
                    except re.error:
                        continue
                    if "date" in pattern.groupindex:
                        compiled[source] = pattern
                self._patterns = list(compiled.values())
                self._loaded = time.monotonic()
            return self._patterns

    def judge(self, code: str, office: str) -> str | None:
        """None when the code is one this office's box may send; else what is wrong."""
        for force in (False, True):
            matched = [p for p in self._load(force) if _code_fits(p, code)]
            if matched:
                break
        else:
            return f"code {code} matches no dossier-code pattern regional IT published"
        province = office_prefixes(office)[0]
        for pattern in matched:
            groups = pattern.fullmatch(code).groupdict()  # type: ignore[union-attr]
            if groups.get("office") not in (None, office):
                continue
            if groups.get("province") not in (None, province):
                continue
            return None
        return f"code {code} names another office than this box's {office}"


def _code_fits(pattern: re.Pattern[str], code: str) -> bool:
    """The box's own rule (edge.domain.CodePatterns): a full match with a real date."""
    return CodePatterns((pattern,)).match(code) == code


def software() -> str:
    return f"commune-edge {__version__}"


def storage_unavailable(exc: DBAPIError) -> c.ProblemError:
    log.warning("database unavailable: %s", exc)
    return c.ProblemError(c.Code.UNAVAILABLE, "central's database is busy: retry", retry_after=1.0)
