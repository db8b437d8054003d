"""``edge central import``: accept a USB stick exactly as the network would.

Each box folder on the stick (layout in ``edge.sync.usb``) is checked with the
receiver's own methods: the device must be enrolled and not revoked, its
request and batches must carry its signature, each blob must hash to its name,
and each batch must continue the chain with every blob it references present.
A batch already accepted returns its stored receipt, so a stick carried twice
changes nothing. Receipts and downlink items are written back to the stick.

The stick is hostile (issue 11, items 5 and 8). Everything on it is read and
written through ``edge.stick``: no link is followed, no FIFO or device opened,
every size is bounded before reading and blobs stream in chunks. Blobs are taken
only when a batch signed by the device names them and central lacks them, so a
stick cannot fill central's disk with files no box sent, and a revoked or
unknown device's folder stores nothing. One device's refusal is reported and the
import goes on with the next folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from edge.stick import MAX_SMALL, StickDir, StickError, StickMissing, printable
from edge.sync import contract as c
from edge.sync.central.errors import AdminError
from edge.sync.central.receiver import Central, Device
from edge.sync.usb import BATCH_NAME, MAX_BATCH_FILE, ROOT, StickClock

_DEVICE_ID = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def import_stick(central: Central, stick: Path) -> dict[str, Any]:
    """Import every box folder on the stick; a refused folder never stops the others."""
    report: dict[str, Any] = {"devices": [], "accepted": 0, "already": 0, "rejected": []}
    try:
        with StickDir.open_root(stick) as root:
            top = root.subdir(ROOT)
    except StickMissing as exc:
        raise AdminError(
            f"{stick} holds no '{ROOT}' folder: is this a Commune Edge stick?"
        ) from exc
    with top:
        try:
            entries = top.entries()
        except StickError as exc:
            raise AdminError(str(exc)) from exc
        for name, kind in entries:
            label = printable(name)
            if kind == "file" or name.startswith("."):
                continue  # stray files (a desktop's index, a note) are nobody's batches
            report["devices"].append(label)
            if kind != "dir":
                _reject(report, label, "", c.Code.MALFORMED, f"{ROOT}/{label} is not a folder")
                continue
            try:
                _import_device(central, top, name, report)
            except c.ProblemError as exc:
                _reject(report, label, "", exc.code, exc.detail)
            except StickError as exc:
                _reject(report, label, "", c.Code.MALFORMED, str(exc))
    return report


def _reject(
    report: dict[str, Any], device: str, file: str, code: c.Code | str, detail: str | None
) -> None:
    report["rejected"].append(
        {"device": device, "file": file, "code": str(code), "detail": detail or ""}
    )


def _device(central: Central, device_id: str) -> Device:
    """The enrolled, not revoked device: checked before anything of its folder is read."""
    device = central.known_device(device_id) if _DEVICE_ID.match(device_id) else None
    if device is None:
        raise c.ProblemError(c.Code.UNKNOWN_DEVICE, "enroll this box first")
    with central.engine.begin() as conn:
        central.lock_device(conn, device_id)  # raises device_revoked
    return device


def _import_device(central: Central, top: StickDir, name: str, report: dict[str, Any]) -> None:
    try:
        device = _device(central, name)
    except c.ProblemError as exc:
        _reject(report, printable(name), "", exc.code, exc.detail)
        if exc.code == c.Code.DEVICE_REVOKED:
            # tell the box why nothing comes back (its folder is a real box's, by its id)
            _answer_report(top, name, report)
        return
    device_id = device.device_id
    with top.subdir(device_id) as folder:
        try:
            request = c.open_document(
                c.DOMAIN_STICK,
                msgspec.json.decode(folder.read("request.json", MAX_SMALL), type=c.SignedDocument),
                device.public_key,
                c.StickRequest,
            )
        except (StickError, msgspec.DecodeError, msgspec.ValidationError, c.DocumentError) as exc:
            _reject(report, device_id, "request.json", c.Code.BAD_SIGNATURE, str(exc))
            return
        if request.device != device_id:
            _reject(report, device_id, "request.json", c.Code.BAD_SIGNATURE, "names another device")
            return
        # the answer folder first: if it is not a plain folder on the stick, nothing is taken
        with folder.walk("answer", create=True) as answer:
            receipts = answer.subdir("receipts", create=True)
            with receipts:
                _import_batches(central, device, folder, receipts, report)
            answer.write("downlink.json", _downlink(central, device_id, request))
            mine = [r for r in report["rejected"] if r["device"] == device_id]
            answer.write("report.json", msgspec.json.encode({"rejected": mine}))
            answer.sync()


def _answer_report(top: StickDir, name: str, report: dict[str, Any]) -> None:
    try:
        with top.walk(name, "answer", create=True) as answer:
            mine = [r for r in report["rejected"] if r["device"] == name]
            answer.write("report.json", msgspec.json.encode({"rejected": mine}))
    except StickError:
        pass  # the refusal is in central's own report either way


def _import_batches(
    central: Central,
    device: Device,
    folder: StickDir,
    receipts: StickDir,
    report: dict[str, Any],
) -> None:
    device_id = device.device_id
    try:
        batches = folder.subdir("batches")
    except StickMissing:
        return
    except StickError as exc:
        _reject(report, device_id, "batches", c.Code.MALFORMED, str(exc))
        return
    blobs: StickDir | None
    try:
        blobs = folder.subdir("blobs")
    except StickMissing:
        blobs = None
    except StickError as exc:
        _reject(report, device_id, "blobs", c.Code.MALFORMED, str(exc))
        blobs = None
    refused: set[str] = set()
    try:
        for name in batches.files():
            match = BATCH_NAME.match(name)
            if match is None:
                continue
            batch_id = match.group(2)
            file = f"batches/{name}"
            try:
                doc = msgspec.json.decode(batches.read(name, MAX_BATCH_FILE), type=c.SignedDocument)
                batch = central.check_batch(device, batch_id, doc)
                with central.engine.begin() as conn:
                    before = central.stored_receipt(conn, device_id, batch_id)
                if before is None and blobs is not None:
                    _take_blobs(central, device_id, batch, blobs, refused, report)
                with central.engine.begin() as conn:
                    row = central.lock_device(conn, device_id)
                    before = central.stored_receipt(conn, device_id, batch_id)
                    receipt = central.accept_batch(conn, row, batch_id, doc, batch, "usb")
            except StickError as exc:
                _reject(report, device_id, file, c.Code.MALFORMED, str(exc))
                continue
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                _reject(report, device_id, file, c.Code.MALFORMED, str(exc))
                continue
            except c.ProblemError as exc:
                _reject(report, device_id, file, exc.code, exc.detail)
                if exc.code == c.Code.DEVICE_REVOKED:
                    return
                continue
            report["already" if before is not None else "accepted"] += 1
            receipts.write(f"{batch_id}.json", c.encode(receipt))
        receipts.sync()
    finally:
        batches.close()
        if blobs is not None:
            blobs.close()


def _take_blobs(
    central: Central,
    device_id: str,
    batch: c.Batch,
    blobs: StickDir,
    refused: set[str],
    report: dict[str, Any],
) -> None:
    """Store the blobs this signed batch names that central lacks, streamed off the stick.

    A file is hashed first without writing anything (a bogus 1 GiB file costs central
    a read, not a copy), then copied while hashed again (the stick may change under
    us), and only a copy that hashes to its name becomes a blob.
    """
    wanted = sorted({b for ev in batch.events for b in ev.blobs if _HEX64.match(b)})
    if not wanted:
        return
    with central.engine.begin() as conn:
        row = central.lock_device(conn, device_id)
        if (row.head_seq, row.head_hash) != (batch.after_seq, batch.after_hash):
            return  # the batch cannot be accepted now (chain_broken): no use for its blobs
        states = central.blob_status(conn, device_id, wanted).blobs
    for blob_id in (s.id for s in states if not s.complete):
        if blob_id in refused:
            continue
        file = f"blobs/{blob_id}"
        try:
            digest, length = blobs.sha256(blob_id, c.MAX_BLOB)
            good = digest == blob_id and central.blobs.put_chunks(
                blob_id, blobs.chunks(blob_id, length)
            )
        except StickMissing:
            continue  # accept_batch names it in blobs_missing
        except StickError as exc:
            refused.add(blob_id)
            _reject(report, device_id, file, c.Code.MALFORMED, str(exc))
            continue
        if not good:
            refused.add(blob_id)
            _reject(
                report,
                device_id,
                file,
                c.Code.CHECKSUM_MISMATCH,
                "the file does not hash to its name (damaged stick?)",
            )
            continue
        with central.engine.begin() as conn:
            central.record_blob(conn, blob_id, length)


def _downlink(central: Central, device_id: str, request: c.StickRequest) -> bytes:
    """Every downlink item for the box, with a clock statement bound to its request's nonce.

    The statement also carries the device's head (``edge.sync.usb.StickClock``), so a box
    whose receipts run past it learns that central lost data (restored from a backup).
    """
    with central.engine.begin() as conn:
        row = central.lock_device(conn, device_id)
        items: list[c.DownlinkItem] = []
        after = request.downlink_after
        while True:
            page = central.downlink(conn, row, after, c.DOWNLINK_PAGE, request.nonce)
            items.extend(page.items)
            after = page.next
            if not page.more:
                break
        row = central.lock_device(conn, device_id)
        clock = c.sign_document(
            c.DOMAIN_CLOCK,
            StickClock(
                v=c.PROTOCOL,
                device=device_id,
                nonce=request.nonce,
                server_time=page.server_time,
                head=c.Head(seq=row.head_seq, hash=row.head_hash),
            ),
            central.keys.sign,
        )
        final = c.DownlinkAnswer(
            items=items, next=after, more=False, clock=clock, server_time=page.server_time
        )
    return c.encode(final)
