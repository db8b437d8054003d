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

import logging
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from edge import __version__
from edge.records import Ledger
from edge.stick import StickDir, StickError, StickMissing, printable
from edge.store import Store
from edge.sync import contract as c
from edge.sync import downlink, outbox
from edge.vault import Keyring

log = logging.getLogger("edge.sync")

ROOT = "commune-edge"
BATCH_NAME = re.compile(r"^(\d{8})-([0-9a-f]{64})\.json$")
STICK_NONCE = "stick.nonce"

MAX_BATCH_FILE = 2 * c.MAX_BATCH_BYTES + (64 << 10)
"""A batch document on the stick: its signed text (at most ``MAX_BATCH_BYTES``) JSON-escaped."""
MAX_DOWNLINK_FILE = 64 << 20
"""``answer/downlink.json``: every item central had for the box, with a clock statement."""
MAX_RECEIPT_FILE = 64 << 10


class StickClock(msgspec.Struct):
    """The clock statement central signs into a stick's answer, read for its ``head``.

    On a stick the box cannot ask central anything, so central's import adds the
    device's head to the clock statement it binds to the stick request's nonce
    (unknown members are allowed in what central signs): signed, and fresh for this
    trip, it tells the box whether central lost events it had acknowledged.
    """

    v: int
    device: str
    nonce: str
    server_time: int
    head: c.Head | None = None


def device_folder(stick: Path, device_id: str) -> Path:
    return stick / ROOT / device_id


def _stick_error(exc: StickError) -> outbox.SyncStateError:
    return outbox.SyncStateError(str(exc))


def _blob_chunks(store: Store, blob_id: str, length: int) -> Iterator[bytes]:
    """A sealed blob from the box's store in bounded slices (a page never sits whole in memory)."""
    offset = 0
    while offset < length:
        block = outbox.read_blob(store, blob_id, offset, min(4 << 20, length - offset))
        if not block:
            raise outbox.SyncStateError(f"sealed blob {blob_id[:12]} is short: run 'edge doctor'")
        offset += len(block)
        yield block


def _intact(folder: StickDir, blob_id: str, length: int) -> bool:
    """The stick already holds this blob, whole and correct (checked without trusting it)."""
    st = folder.lstat(blob_id)
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != length:
        return False
    try:
        digest, size = folder.sha256(blob_id, length)
    except StickError:
        return False
    return size == length and digest == blob_id


def to_dir(
    state: Path, stick: Path, *, policy_events: int = outbox.DEFAULT_BATCH_EVENTS
) -> dict[str, Any]:
    """``edge sync --to-dir``: put every batch central has not acknowledged on the stick.

    The stick is walked through ``edge.stick``: a link or a FIFO where this box
    expects its folders or files is refused with one line, and nothing outside
    ``<stick>/commune-edge/<device id>`` is written or removed.
    """
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        known = outbox.enrollment(store)
        if known is None:
            raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll' first")
        while outbox.build_batch(store, keyring, known.device_id, max_events=policy_events):
            pass
        waiting = outbox.open_batches(store)
        try:
            with StickDir.open_root(stick, create=True) as root:
                written = _write_stick(store, keyring, known, root, waiting)
        except StickError as exc:
            raise _stick_error(exc) from exc
        outbox.mark_sent(store, waiting, "usb")
        return {
            "folder": str(device_folder(stick, known.device_id)),
            "batches": len(waiting),
            "events": sum(b.events for b in waiting),
            **written,
            "pending": outbox.summary(store),
        }
    finally:
        store.close()


def _write_stick(
    store: Store,
    keyring: Keyring,
    known: outbox.Enrollment,
    root: StickDir,
    waiting: list[outbox.OutBatch],
) -> dict[str, int]:
    wanted_batches: set[str] = set()
    wanted_blobs: set[str] = set()
    blob_bytes = 0
    with (
        root.walk(ROOT, known.device_id, create=True) as folder,
        folder.subdir("batches", create=True) as batches,
        folder.subdir("blobs", create=True) as blobs,
    ):
        for batch in waiting:
            name = f"{batch.n:08d}-{batch.batch_id}.json"
            wanted_batches.add(name)
            batches.write(name, batch.body())
            for blob_id in batch.blobs:
                if blob_id in wanted_blobs:
                    continue
                wanted_blobs.add(blob_id)
                length = outbox.blob_length(store, blob_id)
                if _intact(blobs, blob_id, length):
                    continue
                blob_bytes += blobs.write(blob_id, _blob_chunks(store, blob_id, length))
        # Stale entries go (the box's own earlier trips); a link is removed as a link,
        # never followed, and folders are left alone.
        for name, kind in batches.entries():
            if kind != "dir" and name not in wanted_batches and _stale(name):
                batches.remove(name)
        for name, kind in blobs.entries():
            if kind != "dir" and name not in wanted_blobs and _stale(name):
                blobs.remove(name)
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
        folder.write("request.json", c.encode(request))
        for done in (batches, blobs, folder):
            done.sync()
    with store.transaction():
        outbox.put_cursor(store, STICK_NONCE, nonce)
    return {"blobs": len(wanted_blobs), "blob_bytes_written": blob_bytes}


def _stale(name: str) -> bool:
    """Ours to remove: anything but hidden files, except our own interrupted writes."""
    return not name.startswith(".") or name.endswith(".tmp")


def from_dir(state: Path, stick: Path) -> dict[str, Any]:
    """``edge sync --from-dir``: take central's receipts and downlink off the stick.

    Every file is read through ``edge.stick`` (no links, no FIFOs, bounded sizes);
    a file refused there is listed under ``rejected`` and the rest is still taken.
    """
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        known = outbox.enrollment(store)
        if known is None:
            raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll' first")
        where = device_folder(stick, known.device_id) / "answer"
        try:
            with StickDir.open_root(stick) as root:
                answer = root.walk(ROOT, known.device_id, "answer")
        except StickMissing as exc:
            raise outbox.SyncStateError(
                f"no answer from central in {where}: run 'edge central import' on the stick first"
            ) from exc
        except StickError as exc:
            raise _stick_error(exc) from exc
        with answer:
            report: dict[str, Any] = {"receipts": 0, "unmatched_receipts": 0, "rejected": []}
            _take_receipts(store, keyring, known, answer, report)
            report["downlink"] = _take_downlink(store, keyring, known, answer, report)
        done = _settle(store)
        report["pending"] = outbox.summary(store)
        report["done"] = done
        return report
    finally:
        store.close()


def _settle(store: Store) -> bool:
    pending = outbox.summary(store)
    done = not any(pending[k] for k in ("events", "batches", "keys", "keys_waiting_for_clerk"))
    outbox.settle_lost_alert(store, done)
    return done


def _take_receipts(
    store: Store,
    keyring: Keyring,
    known: outbox.Enrollment,
    answer: StickDir,
    report: dict[str, Any],
) -> None:
    try:
        receipts = answer.subdir("receipts")
    except StickMissing:
        return
    except StickError as exc:
        report["rejected"].append({"file": "receipts", "reason": str(exc)})
        return
    with receipts:
        try:
            entries = [(n, kind) for n, kind in receipts.entries() if n.endswith(".json")]
        except StickError as exc:
            report["rejected"].append({"file": "receipts", "reason": str(exc)})
            return
        for name, kind in entries:
            if kind != "file":
                # said, not skipped in silence: someone put a link or a FIFO here
                reason = f"receipts/{printable(name)} is a {kind}, not a plain file: refused"
                report["rejected"].append({"file": printable(name), "reason": reason})
                continue
            try:
                raw = receipts.read(name, MAX_RECEIPT_FILE)
                doc = msgspec.json.decode(raw, type=c.SignedDocument)
                receipt = outbox.verify_receipt(keyring, known.device_id, doc)
            except (
                StickError,
                msgspec.DecodeError,
                msgspec.ValidationError,
                outbox.SyncStateError,
            ) as exc:
                report["rejected"].append({"file": printable(name), "reason": str(exc)})
                continue
            if outbox.record_receipt(store, receipt, doc):
                report["receipts"] += 1
            else:
                report["unmatched_receipts"] += 1


def _take_downlink(
    store: Store,
    keyring: Keyring,
    known: outbox.Enrollment,
    answer: StickDir,
    report: dict[str, Any],
) -> dict[str, int]:
    applied = {"status": 0, "config": 0, "skipped": 0}
    name = "downlink.json"
    try:
        raw = answer.read(name, MAX_DOWNLINK_FILE)
    except StickMissing:
        return applied
    except StickError as exc:
        report["rejected"].append({"file": name, "reason": str(exc)})
        return applied
    try:
        got = msgspec.json.decode(raw, type=c.DownlinkAnswer)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        report["rejected"].append({"file": name, "reason": f"unreadable: {exc}"})
        return applied
    del raw
    nonce = outbox.cursor(store, STICK_NONCE, "")
    try:
        server_time = downlink.verify_clock(keyring, known.device_id, nonce, got.clock)
    except outbox.SyncStateError as exc:
        report["clock"] = f"not used: {exc}"
    else:
        downlink.observe_time(store, server_time)
        _check_head(store, got.clock, report)
    ledger = Ledger(store, keyring.sealer())
    after = int(outbox.cursor(store, downlink.CURSOR, "0") or 0)
    for item in got.items:
        if item.id <= after:
            continue
        try:
            doc = downlink.verify_item(keyring, known.device_id, known.office, item)
        except outbox.SyncStateError as exc:
            report["rejected"].append({"file": name, "item": item.id, "reason": str(exc)})
            break
        kind = downlink.apply(store, ledger, doc)
        applied[kind] = applied.get(kind, 0) + 1
        after = item.id
    return applied


def _check_head(store: Store, clock: c.SignedDocument, report: dict[str, Any]) -> None:
    """Central's head from its verified, nonce-bound clock statement: did central lose data?

    Called only after ``verify_clock`` accepted the statement, so the head is central's
    word for this very trip. A head behind this box's receipts (central was restored
    from an older backup) rewinds the outbox: the next ``--to-dir`` carries again
    everything central lost.
    """
    try:
        head = msgspec.json.decode(clock.signed, type=StickClock).head
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    if head is None:
        return
    acked = outbox.acked_through(store)
    lost = outbox.rewind_to_central(store, head, via="usb")
    if lost:
        log.error(
            "central holds this box's events only up to %d but the box has receipts up to %d: "
            "central lost data (restored from a backup?); the next stick carries %d event(s) "
            "again",
            head.seq,
            acked,
            lost,
        )
        report["central_lost_events"] = lost
