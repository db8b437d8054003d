"""Blob uploads: which blobs central has, and tus-style chunks that resume from its offset.

A chunk is written to the part file first and the offset advances after, by
compare-and-set, so the database never claims bytes the disk does not hold. When
the offset reaches the length, the part is hashed and becomes a blob in a second
step (``complete``); that step may never happen (the receiver killed while hashing,
the database gone just then), so any later status request or chunk that finds every
byte recorded and no blob completes it again: completing is idempotent.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import Connection, and_, select, update

from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.admission import Admission, Verified
from edge.sync.central.core import Core


def failpoint(name: str) -> None:
    """Crash tests stop a receiver at a named step of completing a blob (only when asked).

    ``EDGE_FAILPOINT=<name>`` SIGKILLs the process there, like the box's update
    failpoints; with ``EDGE_FAILPOINT_HOLD=<folder>`` it instead creates
    ``<folder>/<name>.reached`` and waits for ``<folder>/<name>.go``, so that a test
    can stop the database at exactly that instant and then let the step go on.
    """
    if os.environ.get("EDGE_FAILPOINT") != name:
        return
    hold = os.environ.get("EDGE_FAILPOINT_HOLD")
    if not hold:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    folder = Path(hold)
    (folder / f"{name}.reached").touch()
    deadline = time.monotonic() + 300
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _stalled(state: c.BlobState) -> bool:
    """Every byte recorded, no blob yet: the completion step did not happen."""
    return not state.complete and state.length is not None and state.offset == state.length


class Uploads:
    def __init__(self, core: Core, admission: Admission) -> None:
        self.core = core
        self.admission = admission

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

    def status_request(self, verified: Verified, ids: list[str]) -> c.BlobStatusAnswer:
        """``POST /blobs/status``: the states, with stalled uploads completed first."""
        answer = self.admission.handle(
            verified, lambda conn, row: self.blob_status(conn, row.device_id, ids)
        )
        return c.BlobStatusAnswer(blobs=[self.settle(verified.device_id, s) for s in answer.blobs])

    def offset_request(self, verified: Verified, blob_id: str) -> c.BlobState:
        """``HEAD /blobs/{id}``: where to resume, with a stalled upload completed first."""
        state = self.admission.handle(
            verified, lambda conn, row: self.upload_state(conn, row.device_id, blob_id)
        )
        return self.settle(verified.device_id, state)

    def settle(self, device_id: str, state: c.BlobState) -> c.BlobState:
        """A stalled upload's state after completing it: complete, or reset to 0 when its
        bytes do not hash to its id (the box then sends it again)."""
        if not _stalled(state) or state.length is None:
            return state
        try:
            return self.complete(device_id, state.id, state.length)
        except c.ProblemError as exc:
            if exc.code != c.Code.CHECKSUM_MISMATCH:
                raise
            return c.BlobState(state.id, 0, False, None)

    def check_chunk(
        self, conn: Connection, device_id: str, blob_id: str, offset: int, length: int, data: bytes
    ) -> c.BlobState | None:
        """Validate a chunk against the upload row; None means 'write it'.

        A state that is not complete with every byte recorded means 'complete it': the
        chunk repeats bytes central already holds, and only the completion is missing.
        """
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
                self.core.insert(conn, st.uploads)
                .values(
                    device_id=device_id,
                    blob_id=blob_id,
                    length=length,
                    stored=0,
                    updated_ms=self.core.now(),
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
        if row.stored == row.length:
            return c.BlobState(blob_id, row.stored, False, row.length)
        if row.stored != offset:
            raise c.ProblemError(
                c.Code.OFFSET_MISMATCH, f"resume at offset {row.stored}", offset=row.stored
            )
        return None

    def upload_chunk(
        self,
        verified: Verified,
        blob_id: str,
        offset: int,
        length: int,
        checksum: str | None,
        data: bytes,
    ) -> c.BlobState:
        """One tus-style chunk: checked, written at its offset, then the offset advances."""
        device = verified.device
        if checksum is not None and checksum != c.chunk_checksum(data):
            raise c.ProblemError(c.Code.CHECKSUM_MISMATCH, "the chunk does not match its checksum")

        def check(conn: Connection) -> c.BlobState | None:
            self.admission.admit(conn, verified)
            return self.check_chunk(conn, device.device_id, blob_id, offset, length, data)

        state = self.core.write(check)
        if state is not None:
            if _stalled(state) and state.length is not None:
                return self.complete(device.device_id, blob_id, state.length)
            return state
        self.core.blobs.write_chunk(device.device_id, blob_id, offset, data)
        end = offset + len(data)
        moved = self.core.write(
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
                    .values(stored=end, updated_ms=self.core.now())
                ).rowcount
            )
        )
        if not moved:
            with self.core.tx() as conn:
                current = self.upload_state(conn, device.device_id, blob_id)
            if current.complete:
                return current
            if _stalled(current):  # another request moved it to the end first
                return self.complete(device.device_id, blob_id, length)
            raise c.ProblemError(
                c.Code.OFFSET_MISMATCH, f"resume at offset {current.offset}", offset=current.offset
            )
        if end < length:
            return c.BlobState(blob_id, end, False, length)
        return self.complete(device.device_id, blob_id, length)

    def complete(self, device_id: str, blob_id: str, length: int) -> c.BlobState:
        """Hash an upload whose bytes have all arrived and record it as a blob; repeatable.

        Every state a crash can leave is completed by running this again: part file
        whole (killed before or while hashing), or already renamed to the blob (killed,
        or the database gone, before the blob was recorded). Only the finished upload's
        row is removed, never one the box started again from 0 meanwhile.
        """
        failpoint("blob.verify")
        ok = self.core.blobs.finish(device_id, blob_id, length)
        failpoint("blob.record")
        u = st.uploads.c

        def record(conn: Connection) -> None:
            conn.execute(
                st.uploads.delete().where(
                    and_(
                        u.device_id == device_id,
                        u.blob_id == blob_id,
                        u.length == length,
                        u.stored == length,
                    )
                )
            )
            if ok:
                self.record_blob(conn, blob_id, length)

        self.core.write(record)
        if not ok:
            raise c.ProblemError(
                c.Code.CHECKSUM_MISMATCH,
                "the uploaded bytes do not hash to the blob id: upload it again from 0",
                offset=0,
            )
        return c.BlobState(blob_id, length, True, length)

    def record_blob(self, conn: Connection, blob_id: str, length: int) -> None:
        conn.execute(
            self.core.insert(conn, st.blobs)
            .values(blob_id=blob_id, length=length, stored_ms=self.core.now())
            .on_conflict_do_nothing()
        )
