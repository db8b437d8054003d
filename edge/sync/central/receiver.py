"""Central's receiver logic, shared by the HTTP app, the USB importer and the commands.

Every protocol operation is a plain method of ``Central``, so the Litestar
controllers stay thin and ``edge central import`` applies exactly the same checks
to a stick as the network path applies to a request. ``Central`` is only the front:
the work lives in one module per concern, all sharing one ``Core`` (database, blob
folder, keys, clock):

* ``admission``: signed requests, nonces, revocation, the request's transaction;
* ``devices``: tokens, enrollment, revocation;
* ``uploads``: blob status and resumable chunks;
* ``batches``: checking and committing signed batches, receipts;
* ``downlink``: the signed feed to boxes, portal statuses;
* ``configuration``: settings pushed to an office scope;
* ``codes``: dossier-code patterns and which office owns a code;
* ``holdings``: what central holds, for the commands and the export.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Row
from sqlalchemy.exc import DBAPIError

from edge.sync import contract as c
from edge.sync.central.admission import Admission, Auth, Device, Verified
from edge.sync.central.batches import Batches
from edge.sync.central.codes import DossierCodes
from edge.sync.central.configuration import Configuration, Pushed
from edge.sync.central.core import Core
from edge.sync.central.devices import Devices
from edge.sync.central.downlink import Downlink
from edge.sync.central.holdings import Holdings
from edge.sync.central.uploads import Uploads

__all__ = ["Auth", "Central", "Device", "Verified", "storage_unavailable"]

log = logging.getLogger("edge.central")

T = TypeVar("T")


class Central:
    """One receiver's view of central; each method hands over to the part that does it."""

    def __init__(
        self,
        data: Path,
        db_url: str | None = None,
        *,
        window_ms: int = c.TIME_WINDOW_MS,
        now: Callable[[], int] | None = None,
        pool_size: int = 8,
    ) -> None:
        self.core = Core(data, db_url, now=now, pool_size=pool_size)
        self.data = self.core.data
        self.engine = self.core.engine
        self.blobs = self.core.blobs
        self.keys = self.core.keys
        self.gate = self.core.gate
        self.window_ms = window_ms
        self.admission = Admission(self.core, window_ms)
        self.codes = DossierCodes(self.core)
        self.feed = Downlink(self.core)
        self.config = Configuration(self.core, self.feed, self.codes)
        self.devices = Devices(self.core, self.config.effective_settings)
        self.uploads = Uploads(self.core, self.admission)
        self.batches = Batches(self.core, self.admission, self.codes)
        self.holdings = Holdings(self.core, self.feed)

    def close(self) -> None:
        self.core.close()

    def now(self) -> int:
        return self.core.now()

    def write(self, work: Callable[[Connection], T]) -> T:
        return self.core.write(work)

    # -- admission -------------------------------------------------------------

    def check_headers(self, headers: Mapping[str, str]) -> tuple[Device, Auth]:
        return self.admission.check_headers(headers)

    def cached_device(self, device_id: str) -> Device | None:
        return self.admission.cached_device(device_id)

    def known_device(self, device_id: str) -> Device | None:
        return self.admission.device(device_id)

    def verify_request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Verified:
        return self.admission.verify_request(method, target, headers, body)

    def admit(self, conn: Connection, verified: Verified) -> Row[Any]:
        return self.admission.admit(conn, verified)

    def lock_device(self, conn: Connection, device_id: str) -> Any:
        return self.admission.lock_device(conn, device_id)

    def handle(self, verified: Verified, work: Callable[[Connection, Row[Any]], T]) -> T:
        return self.admission.handle(verified, work)

    # -- devices ---------------------------------------------------------------

    def issue_token(self, office: str) -> str:
        return self.devices.issue_token(office)

    def enroll(self, req: c.EnrollRequest) -> c.EnrollAnswer:
        return self.devices.enroll(req)

    def device_info(self, row: Any) -> c.DeviceAnswer:
        return self.devices.device_info(row)

    def revoke(self, device_id: str) -> None:
        self.devices.revoke(device_id)

    # -- blobs -----------------------------------------------------------------

    def blob_status(self, conn: Connection, device_id: str, ids: list[str]) -> c.BlobStatusAnswer:
        return self.uploads.blob_status(conn, device_id, ids)

    def upload_state(self, conn: Connection, device_id: str, blob_id: str) -> c.BlobState:
        return self.uploads.upload_state(conn, device_id, blob_id)

    def blob_status_request(self, verified: Verified, ids: list[str]) -> c.BlobStatusAnswer:
        return self.uploads.status_request(verified, ids)

    def upload_state_request(self, verified: Verified, blob_id: str) -> c.BlobState:
        return self.uploads.offset_request(verified, blob_id)

    def upload_chunk(
        self,
        verified: Verified,
        blob_id: str,
        offset: int,
        length: int,
        checksum: str | None,
        data: bytes,
    ) -> c.BlobState:
        return self.uploads.upload_chunk(verified, blob_id, offset, length, checksum, data)

    def record_blob(self, conn: Connection, blob_id: str, length: int) -> None:
        self.uploads.record_blob(conn, blob_id, length)

    # -- batches ---------------------------------------------------------------

    def check_batch(self, device: Device, batch_id: str, doc: c.SignedDocument) -> c.Batch:
        return self.batches.check_batch(device, batch_id, doc)

    def stored_receipt(
        self, conn: Connection, device_id: str, batch_id: str
    ) -> c.SignedDocument | None:
        return self.batches.stored_receipt(conn, device_id, batch_id)

    def accept_batch(
        self,
        conn: Connection,
        device_row: Any,
        batch_id: str,
        doc: c.SignedDocument,
        batch: c.Batch,
        via: str,
    ) -> c.SignedDocument:
        return self.batches.accept_batch(conn, device_row, batch_id, doc, batch, via)

    def put_batch(
        self, verified: Verified, batch_id: str, doc: c.SignedDocument
    ) -> c.ReceiptAnswer:
        return self.batches.put_batch(verified, batch_id, doc)

    def receipts(
        self, conn: Connection, device_id: str, after_seq: int, limit: int
    ) -> c.ReceiptsAnswer:
        return self.batches.receipts(conn, device_id, after_seq, limit)

    # -- downlink, configuration, codes ----------------------------------------

    def downlink(
        self, conn: Connection, row: Any, after: int, limit: int, nonce: str
    ) -> c.DownlinkAnswer:
        return self.feed.downlink(conn, row, after, limit, nonce)

    def notify(
        self, code: str, status: int, note: str = "", appointment: str | None = None
    ) -> list[int]:
        return self.feed.notify(code, status, note, appointment)

    def configure(self, settings: dict[str, Any], office: str | None = None) -> Pushed:
        return self.config.configure(settings, office)

    def assign_code(self, code: str, office: str) -> str | None:
        return self.codes.assign_code(code, office)

    def published_code_patterns(self) -> list[str]:
        return self.codes.published_code_patterns()

    # -- what central holds ----------------------------------------------------

    def list_dossiers(self) -> list[dict[str, Any]]:
        return self.holdings.list_dossiers()

    def devices_status(self) -> list[dict[str, Any]]:
        return self.holdings.devices_status()

    def events_of(self, device_id: str) -> list[Any]:
        return self.holdings.events_of(device_id)

    def key_wraps(self, device_id: str) -> dict[str, bytes]:
        return self.holdings.key_wraps(device_id)

    def dossier_rows(self, ident: str) -> list[Any]:
        return self.holdings.dossier_rows(ident)


def storage_unavailable(exc: DBAPIError) -> c.ProblemError:
    log.warning("database unavailable: %s", exc)
    return c.ProblemError(c.Code.UNAVAILABLE, "central's database is busy: retry", retry_after=1.0)
