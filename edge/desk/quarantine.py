"""Files capture could not read: the clerk retries them or discards them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from edge.desk.base import DeskLedgerBase
from edge.desk.errors import DeskError, DeskReason

RETRY_PREFIX = "lai-"


class Quarantine(DeskLedgerBase):
    def _held(self, quarantine_id: str) -> Any:
        row = self.store.quarantine_entry(quarantine_id)
        if row is None or row["status"] != "held":
            raise DeskError(DeskReason.QUARANTINE_CHANGED)
        return row

    def retry_quarantined(self, quarantine_id: str, inbox: Path) -> Path:
        """Put the original back into the inbox, so capture reads it again.

        For files that failed for a reason that has gone away (a reader fixed by an
        update, a limit raised). The file is written under a partial-download name
        (ignored by capture), made durable, renamed into place, and only then is the
        quarantine record released, so a crash in between leaves the record held
        and the copy is recognised as a duplicate of it.
        """
        row = self._held(quarantine_id)
        if row["key_id"] is None:
            raise DeskError(DeskReason.QUARANTINE_NO_ORIGINAL)
        if not inbox.is_dir():
            raise DeskError(DeskReason.NO_INBOX)
        data = self.reader.quarantined_bytes(quarantine_id)
        name = Path(row["name"]).name or quarantine_id
        target = inbox / name
        if target.exists():
            target = inbox / f"{RETRY_PREFIX}{quarantine_id[-6:]}-{name}"
        # Written in a fresh private folder (hidden, so capture ignores it) with O_EXCL and
        # O_NOFOLLOW, then renamed into place: anyone who can write the inbox (an SMB share)
        # could plant a link at a predictable partial name and have the clerk's retry
        # overwrite the file it points to. A rename replaces a link at the target; it never
        # follows one.
        private = Path(tempfile.mkdtemp(prefix=".edge-retry-", dir=inbox))
        partial = private / "file"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            private.rmdir()
        dir_fd = os.open(inbox, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self.store.transaction():
            self.store.set_quarantine_status(quarantine_id, "retried")
            self.record(
                None,
                "file.retry_requested",
                {"quarantine": quarantine_id, "as": target.name, "clerk": self.clerk},
            )
        return target

    def discard_quarantined(self, quarantine_id: str) -> None:
        """The clerk decided the file is not a scan worth keeping.

        The sealed original stays until retention purges it: the event that
        quarantined it names its blobs, and sync may not have shipped them yet.
        """
        self._held(quarantine_id)
        with self.store.transaction():
            self.store.set_quarantine_status(quarantine_id, "discarded")
            self.record(None, "file.discarded", {"quarantine": quarantine_id, "clerk": self.clerk})
