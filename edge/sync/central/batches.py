"""Batches: a box's signed events, committed atomically once every blob they name is here.

``check_batch`` needs no database (id, signature, hashes, what the clear metadata may
say), so it runs before a transaction opens; ``accept_batch`` runs in the caller's
transaction with the device row locked, so a device's chain advances one batch at a
time. The USB importer calls both exactly as the HTTP route does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select, update

from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.admission import Admission, Device, Verified
from edge.sync.central.codes import DossierCodes
from edge.sync.central.core import Core


class Batches:
    def __init__(self, core: Core, admission: Admission, codes: DossierCodes) -> None:
        self.core = core
        self.admission = admission
        self.codes = codes

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
        self.codes.claim_codes(conn, device_row, batch)
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
                self.core.insert(conn, st.keys)
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
        now = self.core.now()
        for dossier in batch.dossiers:
            stmt = self.core.insert(conn, st.dossiers).values(
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
            self.core.keys.sign,
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
        self, verified: Verified, batch_id: str, doc: c.SignedDocument
    ) -> c.ReceiptAnswer:
        batch = self.check_batch(verified.device, batch_id, doc)
        receipt = self.core.write(
            lambda conn: self.accept_batch(
                conn, self.admission.admit(conn, verified), batch_id, doc, batch, "http"
            )
        )
        return c.ReceiptAnswer(receipt=receipt, server_time=self.core.now())

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
            server_time=self.core.now(),
        )
