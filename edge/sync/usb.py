"""Sync by USB stick, for offices no link reaches: the same batches, carried by hand.

The box writes every pending batch (the exact signed text it would PUT) and the
sealed blobs they reference; central imports them through the same checks as
the network path and writes signed receipts and downlink items back; the box
takes those in. Nothing on the stick is readable without central's or the
office's keys, and nothing on it can be altered unseen: blobs are named by
their SHA-256, batches and the box's request are signed by the device key,
receipts and downlink by central's receipt key. Layout (one folder per box):

    <stick>/commune-edge/<device id>/request.json        the box's signed request
    <stick>/commune-edge/<device id>/batches/<n>-<id>.json
    <stick>/commune-edge/<device id>/blobs/<sha256>
    <stick>/commune-edge/<device id>/answer/receipts/<batch id>.json
    <stick>/commune-edge/<device id>/answer/downlink.json
    <stick>/commune-edge/<device id>/answer/report.json
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

import msgspec

from edge import __version__
from edge.durable import fsync_dir
from edge.records import Ledger
from edge.store import Store
from edge.sync import contract as c
from edge.sync import downlink, outbox
from edge.vault import Keyring

ROOT = "commune-edge"
BATCH_NAME = re.compile(r"^(\d{8})-([0-9a-f]{64})\.json$")
STICK_NONCE = "stick.nonce"


def device_folder(stick: Path, device_id: str) -> Path:
    return stick / ROOT / device_id


def write_file(path: Path, data: bytes) -> None:
    """Write, flush and fsync, then rename: a stick pulled mid-write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        fsync_dir(path)


def _intact(path: Path, blob_id: str) -> bool:
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == blob_id


def to_dir(
    state: Path, stick: Path, *, policy_events: int = outbox.DEFAULT_BATCH_EVENTS
) -> dict[str, Any]:
    """``edge sync --to-dir``: put every batch central has not acknowledged on the stick."""
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        known = outbox.enrollment(store)
        if known is None:
            raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll' first")
        while outbox.build_batch(store, keyring, known.device_id, max_events=policy_events):
            pass
        waiting = outbox.open_batches(store)
        folder = device_folder(stick, known.device_id)
        wanted_batches = set()
        wanted_blobs: set[str] = set()
        blob_bytes = 0
        for batch in waiting:
            name = f"{batch.n:08d}-{batch.batch_id}.json"
            wanted_batches.add(name)
            write_file(folder / "batches" / name, batch.body())
            for blob_id in batch.blobs:
                wanted_blobs.add(blob_id)
                target = folder / "blobs" / blob_id
                if _intact(target, blob_id):
                    continue
                length = outbox.blob_length(store, blob_id)
                write_file(target, outbox.read_blob(store, blob_id, 0, length))
                blob_bytes += length
        for old in (folder / "batches").glob("*.json") if (folder / "batches").is_dir() else []:
            if old.name not in wanted_batches:
                old.unlink()
        for old in (folder / "blobs").iterdir() if (folder / "blobs").is_dir() else []:
            if old.name not in wanted_blobs:
                old.unlink()
        nonce = secrets.token_hex(16)
        request = c.sign_document(
            c.DOMAIN_STICK,
            c.StickRequest(
                v=c.PROTOCOL,
                device=known.device_id,
                nonce=nonce,
                downlink_after=int(outbox.cursor(store, downlink.CURSOR, "0") or 0),
                software=f"commune-edge {__version__}",
            ),
            keyring.sign,
        )
        write_file(folder / "request.json", c.encode(request))
        _fsync_tree(folder)
        with store.transaction():
            outbox.put_cursor(store, STICK_NONCE, nonce)
        outbox.mark_sent(store, waiting, "usb")
        return {
            "folder": str(folder),
            "batches": len(waiting),
            "events": sum(b.events for b in waiting),
            "blobs": len(wanted_blobs),
            "blob_bytes_written": blob_bytes,
            "pending": outbox.summary(store),
        }
    finally:
        store.close()


def from_dir(state: Path, stick: Path) -> dict[str, Any]:
    """``edge sync --from-dir``: take central's receipts and downlink off the stick."""
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        known = outbox.enrollment(store)
        if known is None:
            raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll' first")
        answer = device_folder(stick, known.device_id) / "answer"
        if not answer.is_dir():
            raise outbox.SyncStateError(
                f"no answer from central in {answer}: run 'edge central import' on the stick first"
            )
        report: dict[str, Any] = {"receipts": 0, "unmatched_receipts": 0, "rejected": []}
        for path in sorted((answer / "receipts").glob("*.json")):
            try:
                doc = msgspec.json.decode(path.read_bytes(), type=c.SignedDocument)
                receipt = outbox.verify_receipt(keyring, known.device_id, doc)
            except (msgspec.DecodeError, msgspec.ValidationError, outbox.SyncStateError) as exc:
                report["rejected"].append({"file": path.name, "reason": str(exc)})
                continue
            if outbox.record_receipt(store, receipt, doc):
                report["receipts"] += 1
            else:
                report["unmatched_receipts"] += 1
        report["downlink"] = _take_downlink(store, keyring, known, answer / "downlink.json", report)
        report["pending"] = outbox.summary(store)
        report["done"] = not any(
            report["pending"][k] for k in ("events", "batches", "keys", "keys_waiting_for_clerk")
        )
        return report
    finally:
        store.close()


def _take_downlink(
    store: Store, keyring: Keyring, known: outbox.Enrollment, path: Path, report: dict[str, Any]
) -> dict[str, int]:
    applied = {"status": 0, "config": 0, "skipped": 0}
    if not path.is_file():
        return applied
    try:
        answer = msgspec.json.decode(path.read_bytes(), type=c.DownlinkAnswer)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        report["rejected"].append({"file": path.name, "reason": f"unreadable: {exc}"})
        return applied
    nonce = outbox.cursor(store, STICK_NONCE, "")
    try:
        downlink.observe_time(
            store, downlink.verify_clock(keyring, known.device_id, nonce, answer.clock)
        )
    except outbox.SyncStateError as exc:
        report["clock"] = f"not used: {exc}"
    ledger = Ledger(store, keyring.sealer())
    after = int(outbox.cursor(store, downlink.CURSOR, "0") or 0)
    for item in answer.items:
        if item.id <= after:
            continue
        try:
            doc = downlink.verify_item(keyring, known.device_id, known.office, item)
        except outbox.SyncStateError as exc:
            report["rejected"].append({"file": path.name, "item": item.id, "reason": str(exc)})
            break
        kind = downlink.apply(store, ledger, doc)
        applied[kind] = applied.get(kind, 0) + 1
        after = item.id
    return applied
