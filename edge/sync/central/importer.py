"""``edge central import``: accept a USB stick exactly as the network would.

Each box folder on the stick (layout in ``edge.sync.usb``) is checked with the
receiver's own methods: the device must be enrolled and not revoked, its
request and batches must carry its signature, each blob must hash to its name,
and each batch must continue the chain with every blob it references present.
A batch already accepted returns its stored receipt, so a stick carried twice
changes nothing. Receipts and downlink items are written back to the stick.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from edge.sync import contract as c
from edge.sync.central.receiver import Central
from edge.sync.usb import BATCH_NAME, ROOT, write_file

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def import_stick(central: Central, stick: Path) -> dict[str, Any]:
    root = stick / ROOT
    if not root.is_dir():
        raise ValueError(f"{stick} holds no '{ROOT}' folder: is this a Commune Edge stick?")
    report: dict[str, Any] = {"devices": [], "accepted": 0, "already": 0, "rejected": []}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        report["devices"].append(_import_device(central, folder, report))
    return report


def _reject(
    report: dict[str, Any], device: str, file: str, code: c.Code | str, detail: str
) -> None:
    report["rejected"].append({"device": device, "file": file, "code": str(code), "detail": detail})


def _import_device(central: Central, folder: Path, report: dict[str, Any]) -> str:
    device_id = folder.name
    device = central.known_device(device_id) if re.fullmatch(r"[0-9a-f]{32}", device_id) else None
    if device is None:
        _reject(report, device_id, "", c.Code.UNKNOWN_DEVICE, "enroll this box first")
        return device_id
    try:
        request = c.open_document(
            c.DOMAIN_STICK,
            msgspec.json.decode((folder / "request.json").read_bytes(), type=c.SignedDocument),
            device.public_key,
            c.StickRequest,
        )
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, c.DocumentError) as exc:
        _reject(report, device_id, "request.json", c.Code.BAD_SIGNATURE, str(exc))
        return device_id
    if request.device != device_id:
        _reject(report, device_id, "request.json", c.Code.BAD_SIGNATURE, "names another device")
        return device_id

    blobs = folder / "blobs"
    for path in sorted(blobs.iterdir()) if blobs.is_dir() else []:
        if not _HEX64.match(path.name):
            continue
        data = path.read_bytes()
        if not central.blobs.put(path.name, data):
            _reject(
                report,
                device_id,
                f"blobs/{path.name}",
                c.Code.CHECKSUM_MISMATCH,
                "the file does not hash to its name (damaged stick?)",
            )
            continue
        with central.engine.begin() as conn:
            central.record_blob(conn, path.name, len(data))

    answer = folder / "answer"
    batches = folder / "batches"
    for path in sorted(batches.glob("*.json")) if batches.is_dir() else []:
        match = BATCH_NAME.match(path.name)
        if match is None:
            continue
        batch_id = match.group(2)
        try:
            doc = msgspec.json.decode(path.read_bytes(), type=c.SignedDocument)
            batch = central.check_batch(device, batch_id, doc)
            with central.engine.begin() as conn:
                row = central.lock_device(conn, device_id)
                before = central.stored_receipt(conn, device_id, batch_id)
                receipt = central.accept_batch(conn, row, batch_id, doc, batch, "usb")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _reject(report, device_id, f"batches/{path.name}", c.Code.MALFORMED, str(exc))
            continue
        except c.ProblemError as exc:
            _reject(report, device_id, f"batches/{path.name}", exc.code, exc.detail)
            continue
        report["already" if before is not None else "accepted"] += 1
        write_file(answer / "receipts" / f"{batch_id}.json", c.encode(receipt))

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
        final = c.DownlinkAnswer(
            items=items, next=after, more=False, clock=page.clock, server_time=page.server_time
        )
    write_file(answer / "downlink.json", c.encode(final))
    mine = [r for r in report["rejected"] if r["device"] == device_id]
    write_file(answer / "report.json", msgspec.json.encode({"rejected": mine}))
    return device_id
