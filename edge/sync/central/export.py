"""``edge central export``: central decrypts a dossier and writes the box's BagIt bag.

Central rebuilds the dossier from the events it received (``page.added`` for
pages, the latest ``dossier.fields_set`` for the citizen's details), opening
every payload and page with the data keys wrapped to its recipient key. The
receiver processes never hold that key; whoever runs the export brings it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from edge.archive import ExportDossier, ExportPage, write_bag
from edge.store import StoreError
from edge.sync.central.receiver import Central
from edge.vault import DataKey, RecipientSession, VaultError, event_ad, page_ad


class _Keys:
    def __init__(self, session: RecipientSession, wraps: dict[str, bytes]) -> None:
        self.session = session
        self.wraps = wraps
        self.open: dict[str, DataKey] = {}

    def __call__(self, key_id: str) -> DataKey:
        if key_id not in self.open:
            wrapped = self.wraps.get(key_id)
            if wrapped is None:
                raise VaultError(
                    f"central has no wrap of data key {key_id[:12]} yet: the box sends it "
                    "after a clerk signs in there"
                )
            self.open[key_id] = self.session.open_key(key_id, wrapped)
        return self.open[key_id]


def central_dossier(central: Central, ident: str, recipient_private: bytes) -> ExportDossier:
    rows = central.dossier_rows(ident)
    if not rows:
        raise StoreError(f"central holds no dossier {ident!r}: see 'edge central dossiers'")
    if len(rows) > 1:
        raise StoreError(f"{len(rows)} boxes hold a dossier coded {ident}: give its id instead")
    row = rows[0]
    session = RecipientSession(recipient_private)
    keys = _Keys(session, central.key_wraps(row.device_id))
    office = next(
        (d["office"] for d in central.devices_status() if d["device"] == row.device_id), ""
    )
    pages: list[ExportPage] = []
    fields: dict[str, Any] = {}
    for event in central.events_of(row.device_id):
        if event.dossier_id != row.dossier_id or event.type not in (
            "page.added",
            "dossier.fields_set",
        ):
            continue
        key = keys(event.key_id)
        payload: Any = session.open_json(
            key, bytes(event.payload), event_ad(event.key_id, event.dossier_id, event.type)
        )
        if event.type == "dossier.fields_set":
            fields = dict(payload.get("fields", {}))
            continue
        pages.append(
            ExportPage(
                position=int(payload["position"]),
                media_type=str(payload["media_type"]),
                width=payload.get("width"),
                height=payload.get("height"),
                dpi=payload.get("dpi"),
                flags=list(payload.get("flags", [])),
                read=partial(
                    _page, central, session, key, row.dossier_id, payload["page"], payload["blob"]
                ),
            )
        )
    return ExportDossier(
        id=row.dossier_id,
        code=row.code,
        status=row.status,
        received_at=row.received_at,
        fields=fields,
        pages=pages,
        organization=office or "Commune Edge",
    )


def _page(
    central: Central,
    session: RecipientSession,
    key: DataKey,
    dossier_id: str,
    page_id: str,
    blob_id: str,
) -> bytes:
    try:
        sealed = central.blobs.read(blob_id)
    except FileNotFoundError as exc:
        raise StoreError(f"central is missing blob {blob_id[:12]}: check the blob folder") from exc
    return session.open(key, sealed, page_ad(dossier_id, page_id))


def export(central: Central, ident: str, recipient_private: bytes, out: Path) -> Path:
    return write_bag(central_dossier(central, ident, recipient_private), out)
