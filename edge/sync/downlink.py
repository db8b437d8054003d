"""What central sends down, checked and applied on the box.

Every item is signed with central's receipt key and names its target; the box
applies it and advances its cursor in one transaction, so an item is applied
exactly once even if the link drops between the two. Kinds this release
understands:

* ``status``: the national portal's status (1–10) for a dossier code; it shows
  as ``central_status`` in ``edge dossiers --json`` (9 = result ready for pickup).
  An optional ``appointment`` (the agency's return date, portal ``yyyyMMddHHmmss``
  or ``YYYY-MM-DD``) replaces the date the desk computed: the agency's word wins.
  The sealed ``central.status`` event it records (status, note, appointment) is what
  the clerk's tasks are derived from (3, 5, 6 and 8 ask something of the counter:
  edge/desk/tasks.py), so it is recorded for every status, even a repeated one;
* ``config``: settings such as dossier-code patterns; a running daemon picks
  them up without a restart (it watches ``config.rev``).

Unknown kinds are skipped (and the cursor moves on), so central can add kinds
before every box understands them.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from edge.domain import parse_portal_time
from edge.records import Ledger
from edge.store import Store
from edge.sync import contract as c
from edge.sync import outbox
from edge.vault import Keyring

log = logging.getLogger("edge.sync")

CURSOR = "downlink"


def verify_item(
    keyring: Keyring, device_id: str, office: str, item: c.DownlinkItem
) -> c.DownlinkDoc:
    public = keyring.central_receipt_public
    if public is None:
        raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll'")
    try:
        doc = c.open_document(c.DOMAIN_DOWNLINK, item.document, public, c.DownlinkDoc)
    except c.DocumentError as exc:
        raise outbox.SyncStateError(f"a downlink item does not verify ({exc})") from exc
    if doc.id != item.id:
        raise outbox.SyncStateError("a downlink item's id differs from its signed id")
    if doc.device not in (None, device_id) or (
        doc.device is None and doc.office not in (None, office)
    ):
        raise outbox.SyncStateError("a downlink item is addressed to another box")
    return doc


def verify_clock(keyring: Keyring, device_id: str, nonce: str, doc: c.SignedDocument) -> int:
    """Central's time, trusted only when signed and bound to this request's nonce."""
    return verify_statement(keyring, device_id, nonce, doc).server_time


def verify_statement(
    keyring: Keyring, device_id: str, nonce: str, doc: c.SignedDocument
) -> c.Clock:
    """Central's signed statement (time, and its head of this box's chain) for one request."""
    public = keyring.central_receipt_public
    if public is None:
        raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll'")
    try:
        clock = c.open_document(c.DOMAIN_CLOCK, doc, public, c.Clock)
    except c.DocumentError as exc:
        raise outbox.SyncStateError(f"central's clock statement does not verify ({exc})") from exc
    if clock.device != device_id or clock.nonce != nonce:
        raise outbox.SyncStateError("central's clock statement answers another request")
    return clock


def observe_time(store: Store, server_ms: int) -> None:
    """Raise the box's time floor to central's signed time (persisted with the transaction)."""
    with store.transaction():
        store.clock.observe(server_ms)


def apply(store: Store, ledger: Ledger, doc: c.DownlinkDoc) -> str:
    """Apply one verified item and move the cursor, atomically; returns what it was."""
    applied = "skipped"
    with store.transaction():
        if doc.kind == "status":
            applied = _status(store, ledger, doc.body)
        elif doc.kind == "config":
            applied = _config(store, ledger, doc.body)
        else:
            log.info("downlink item %d of unknown kind %r skipped", doc.id, doc.kind)
        outbox.put_cursor(store, CURSOR, str(doc.id))
        store.clock.observe(doc.at)
    return applied


def _status(store: Store, ledger: Ledger, body: dict[str, Any]) -> str:
    code = str(body.get("code") or "")
    status = body.get("status")
    if not isinstance(status, int) or not 1 <= status <= 10:
        log.warning("downlink status for %s ignored: %r is not a portal status", code, status)
        return "skipped"
    row = store.dossier_by_code(code.strip().upper()) if code else None
    if row is None:
        log.warning("downlink status for unknown dossier %s ignored", code)
        return "skipped"
    payload: dict[str, Any] = {"status": status, "note": str(body.get("note") or "")}
    appointment = _appointment(code, body.get("appointment"))
    if appointment is not None:
        payload["appointment"] = appointment
        store.update_dossier(row["id"], appointment=appointment)
    ledger.record(row["id"], "central.status", payload)
    store.conn.execute("UPDATE dossiers SET central_status = ? WHERE id = ?", (status, row["id"]))
    return "status"


def _appointment(code: str, value: object) -> str | None:
    """The agency's return date as the box stores it (ISO), or None when absent or unreadable.

    An unreadable date is dropped, not the status with it: the status is still true.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and len(value.strip()) == 14:
            return parse_portal_time(value).date().isoformat()
        if isinstance(value, str):
            return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        pass  # not a date after all: reported below like any other value
    log.warning("downlink return date for %s ignored: %r is not a date", code, value)
    return None


def _config(store: Store, ledger: Ledger, body: dict[str, Any]) -> str:
    changes = body.get("settings")
    if not isinstance(changes, dict) or not changes:
        return "skipped"
    settings = store.settings()
    known = {k: v for k, v in changes.items() if k in settings.as_dict()}
    try:
        updated = settings.with_changes(**known)
        updated.patterns()
    except ValueError as exc:
        log.warning("downlink configuration refused: %s", exc)
        return "skipped"
    store.put_settings(updated)
    outbox.bump_config(store)
    ledger.record(None, "config.applied", {"settings": known})
    return "config"
