"""Central's blob store: sealed blobs on the filesystem, uploaded in resumable chunks.

Blobs are content-addressed (SHA-256 of the ciphertext), so the bytes at any
offset of a given blob are always the same bytes. That is what makes chunk
writes safe without locks between receiver processes: a chunk is written with
``pwrite`` at its offset, so a duplicated or concurrent chunk rewrites identical
bytes; the database's offset only advances by compare-and-set; and the whole
file is hashed before it becomes a blob. An S3-compatible store would replace
this class (same five methods); multipart uploads map onto ``write_chunk``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from edge.durable import fsync_dir

_ID = re.compile(r"^[0-9a-f]{64}$")
_DEVICE = re.compile(r"^[0-9a-f]{32}$")
_READ = 1 << 20


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.done = root / "blobs"
        self.partial = root / "uploads"
        self.done.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        if not _ID.match(blob_id):
            raise ValueError("not a blob id")
        return self.done / blob_id[:2] / blob_id

    def _part(self, device_id: str, blob_id: str) -> Path:
        if not _ID.match(blob_id) or not _DEVICE.match(device_id):
            raise ValueError("not a blob or device id")
        return self.partial / device_id / f"{blob_id}.part"

    def has(self, blob_id: str) -> bool:
        return self.path(blob_id).is_file()

    def read(self, blob_id: str) -> bytes:
        return self.path(blob_id).read_bytes()

    def write_chunk(self, device_id: str, blob_id: str, offset: int, data: bytes) -> None:
        part = self._part(device_id, blob_id)
        part.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.pwrite(fd, view[written:], offset + written)
            os.fsync(fd)
        finally:
            os.close(fd)

    def finish(self, device_id: str, blob_id: str, length: int) -> bool:
        """Turn a fully uploaded part into a blob if its bytes hash to its id."""
        part = self._part(device_id, blob_id)
        final = self.path(blob_id)
        if final.is_file():
            part.unlink(missing_ok=True)
            return True
        digest = hashlib.sha256()
        try:
            with open(part, "rb") as fh:
                size = 0
                while chunk := fh.read(_READ):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return final.is_file()
        if size != length or digest.hexdigest() != blob_id:
            part.unlink(missing_ok=True)
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(part, final)
        except FileNotFoundError:
            return final.is_file()
        fsync_dir(final.parent)
        return True

    def put(self, blob_id: str, data: bytes) -> bool:
        """Store a whole blob (a USB stick's file) if it hashes to its id."""
        if hashlib.sha256(data).hexdigest() != blob_id:
            return False
        final = self.path(blob_id)
        if final.is_file():
            return True
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{blob_id}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return True

    def put_chunks(self, blob_id: str, chunks: Iterable[bytes]) -> bool:
        """Store a whole blob streamed in chunks (a USB stick's file) if it hashes to its id.

        The streaming twin of ``put``: memory stays at one chunk whatever the blob's size
        (a 1 GiB file on a stick once cost central 1.1 GB of RSS), and nothing becomes a
        blob unless every byte written hashes to its name.
        """
        final = self.path(blob_id)
        if final.is_file():
            return True
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{blob_id}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "xb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if digest.hexdigest() != blob_id:
                tmp.unlink(missing_ok=True)
                return False
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)
        return True

    def discard(self, device_id: str, blob_id: str) -> None:
        self._part(device_id, blob_id).unlink(missing_ok=True)
