"""The dossier ledger: every change is a sealed event plus its projection.

Capture, the clerk UI and sync never write dossier tables directly; they call
this module, which seals with ``edge.vault`` and writes with ``edge.store`` in
the caller's transaction, so the event log and the tables can never disagree.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from edge import text
from edge.clock import Hlc
from edge.store import Event, Store, StoreError
from edge.vault import (
    DataKey,
    OfficeSession,
    Sealer,
    ciphertext_id,
    event_ad,
    field_ad,
    json_object,
    open_chunks,
    page_ad,
    seal_chunks,
)

UNASSIGNED = "unassigned"
WAITING_DETAILS = "waiting_details"
COMPLETE = "complete"

PERSONAL_FIELDS = (
    "family", "middle", "given", "full_name", "cccd", "phone", "address", "birth_year", "note",
)  # fmt: skip


def new_id(prefix: str, stamp: Hlc) -> str:
    """Time-ordered ids so a listing by id is also a listing by arrival."""
    return f"{prefix}{stamp.ms:012x}{secrets.token_hex(5)}"


@dataclass(frozen=True)
class PageRecord:
    page_id: str
    dossier_id: str
    position: int
    blob_id: str


class Ledger:
    """Writes dossier changes. Holds public keys only unless given a session."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer
        self._keys: dict[str | None, DataKey] = {}

    def _key(self, dossier_id: str | None) -> DataKey:
        """This process's data key for a dossier (or for box-level records).

        A restarted daemon cannot unwrap earlier keys, so a dossier that grows
        across restarts simply has several keys; each page names its own.
        """
        key = self._keys.get(dossier_id)
        if key is None:
            key = self.sealer.new_key()
            self._keys[dossier_id] = key
        self.store.put_key(key.key_id, dossier_id, key.wrapped_office, key.wrapped_central)
        return key

    def record(
        self,
        dossier_id: str | None,
        event_type: str,
        payload: dict[str, Any],
        blobs: Sequence[str] = (),
    ) -> Event:
        key = self._key(dossier_id)
        sealed = self.sealer.seal_json(key, payload, event_ad(key.key_id, dossier_id, event_type))
        return self.store.append_event(dossier_id, event_type, key.key_id, sealed, blobs)

    def use_central_key(self, central_public: bytes) -> None:
        """Wrap new data keys to central from now on (the box has just enrolled).

        Keys already made by this process stay without a central wrap; sync
        re-wraps them the next time a clerk signs in.
        """
        if self.sealer.central_public != central_public:
            self.sealer.central_public = central_public
            self._keys.clear()

    def create_dossier(
        self,
        code: str | None,
        *,
        job_id: int | None = None,
        review: Sequence[dict[str, str]] = (),
        follows: str | None = None,
    ) -> str:
        """A new dossier; with ``review``, one the clerk must confirm before it counts.

        ``review`` lists why capture was unsure (the candidate texts of the symbol it
        could not confirm); it travels sealed in the event, as candidates may be a
        portal URL carrying a citizen's ID number.
        """
        dossier_id = new_id("d", self.store.now())
        key = self._key(dossier_id)
        status = WAITING_DETAILS if code else UNASSIGNED
        self.store.insert_dossier(
            dossier_id, code, key.key_id, status, needs_review=bool(review), follows=follows
        )
        payload: dict[str, Any] = {"code": code, "status": status, "job": job_id}
        if review:
            payload.update(needs_review=True, review=list(review), follows=follows)
        self.record(dossier_id, "dossier.created", payload)
        return dossier_id

    def add_page(
        self,
        dossier_id: str,
        data: bytes,
        *,
        media_type: str,
        sha256: str,
        source_sha: str,
        source_name: str,
        source_index: int,
        width: int | None,
        height: int | None,
        dpi: float | None,
        flags: list[str],
        symbols: list[dict[str, str]],
    ) -> PageRecord:
        key = self._key(dossier_id)
        page_id = new_id("p", self.store.now())
        sealed = self.sealer.seal(key, data, page_ad(dossier_id, page_id))
        blob_id = ciphertext_id(sealed)
        self.store.put_blob(blob_id, sealed)
        attrs = (
            self.sealer.seal_json(key, symbols, field_ad(dossier_id, f"symbols:{page_id}"))
            if symbols
            else None
        )
        position = self.store.next_position(dossier_id)
        self.store.insert_page(
            id=page_id,
            dossier_id=dossier_id,
            position=position,
            blob_id=blob_id,
            key_id=key.key_id,
            media_type=media_type,
            bytes=len(data),
            width=width,
            height=height,
            dpi=dpi,
            flags=flags,
            attrs=attrs,
            source_sha=source_sha,
            source_index=source_index,
        )
        self.record(
            dossier_id,
            "page.added",
            {
                "page": page_id,
                "position": position,
                "blob": blob_id,
                "media_type": media_type,
                "bytes": len(data),
                "sha256": sha256,
                "width": width,
                "height": height,
                "dpi": dpi,
                "flags": flags,
                "symbols": symbols,
                "source": {"sha256": source_sha, "name": source_name, "index": source_index},
            },
            blobs=[blob_id],
        )
        return PageRecord(page_id, dossier_id, position, blob_id)

    def quarantine(
        self,
        *,
        name: str,
        reason: str,
        message: str,
        sha256: str | None = None,
        size: int | None = None,
        stream: BinaryIO | None = None,
    ) -> str:
        """Record a file that could not become pages, its original sealed in chunks.

        Each quarantined file gets its own data key, so one can be released to a
        clerk (retry, discard) without touching any other.
        """
        quarantine_id = new_id("q", self.store.now())
        blob_ids: list[str] = []
        key: DataKey | None = None
        if stream is not None:
            key = self.sealer.new_key()
            self.store.put_key(key.key_id, None, key.wrapped_office, key.wrapped_central)
            for sealed in seal_chunks(self.sealer, key, f"quarantine:{quarantine_id}", stream):
                blob_id = ciphertext_id(sealed)
                self.store.put_blob(blob_id, sealed)
                blob_ids.append(blob_id)
        self.store.insert_quarantine(
            id=quarantine_id,
            name=name,
            reason=reason,
            message=message,
            sha256=sha256,
            bytes=size,
            key_id=key.key_id if key else None,
            blob_ids=blob_ids,
        )
        self.record(
            None,
            "file.quarantined",
            {
                "quarantine": quarantine_id,
                "name": name,
                "reason": reason,
                "message": message,
                "sha256": sha256,
                "bytes": size,
                "blobs": blob_ids,
                "key": key.key_id if key else None,
            },
            blobs=blob_ids,
        )
        return quarantine_id

    # -- with an unlocked office -------------------------------------------------

    def set_fields(self, session: OfficeSession, dossier_id: str, fields: dict[str, str]) -> None:
        """Seal the citizen's details and rebuild the dossier's blind-index terms."""
        clean = {k: text.nfc(v) for k, v in fields.items() if k in PERSONAL_FIELDS and v}
        if "full_name" in clean and not {"family", "given"} & clean.keys():
            family, middle, given = text.split_name(clean["full_name"])
            clean.update({"family": family, "middle": middle, "given": given})
        key = self._key(dossier_id)
        sealed = self.sealer.seal_json(key, clean, field_ad(dossier_id, "fields"))
        self.store.update_dossier(dossier_id, fields=sealed, fields_key_id=key.key_id)
        self.store.replace_blind_terms(dossier_id, index_terms(session, clean))
        self.record(dossier_id, "dossier.fields_set", {"fields": clean, "by": session.clerk})


NUMBER_END_MIN = 4
"""Shortest end of a CCCD or phone number that is indexed (and searched): the receipt and the
citizen's memory give the last digits; fewer than 4 would match a thousandth of all dossiers."""

CCCD_START_MIN = 6
"""Shortest start of a CCCD number that is indexed: its first six digits are the province, the
century and sex, and the year of birth, the part a clerk reads off an ID card first."""

NUMBER_PART_MAX = 15
"""No partial terms are made from the part of a number beyond this many digits (E.164's
longest), so a pasted run of digits cannot blow up the index."""


def number_tokens(field_name: str, value: str) -> dict[str, list[str]]:
    """Blind-index scope -> tokens for one CCCD or phone number, as the index stores them.

    A number is indexed whole (scopes ``cccd`` and ``phone``, as before issue 12, so a whole
    number is found even in an index not yet rebuilt), by every end from ``NUMBER_END_MIN``
    digits (``cccd-end``, ``phone-end``) and, for a CCCD, by every start from
    ``CCCD_START_MIN`` digits (``cccd-start``): what clerks type is the last digits or the
    first six, not a run from the middle. A phone's start is its carrier's prefix, which
    nobody searches by, so it is not indexed. That is 15 terms for a CCCD and 7 for a
    mobile number, against 45 for every run of 4 or more digits and 9 for fixed 4-digit
    n-grams; n-grams would also match a query's digits found anywhere in anyone's number
    (about 9 times as many false hits for a 4-digit query) and say which dossiers share
    any 4 digits. Measured on sample dossiers (name, CCCD, mobile): 10.9 index rows and
    1.3 KB each before, 30.9 rows and 3.8 KB after, small beside one scanned page.

    Every token is a keyed HMAC like any other term: without the index key, the index shows
    only which dossiers share an end or a start (the same birth province, sex and year for a
    6-digit start), never the digits. With the index key, ends let someone extend a number
    digit by digit with ten guesses each; but that key is only ever unwrapped with the office
    key, which opens the sealed numbers themselves, so this costs nothing further.
    """
    if field_name == "phone":
        whole = text.phone_digits(value)
        starts: list[str] = []
    else:
        whole = text.number_digits(value)
        head = whole[:NUMBER_PART_MAX]
        starts = [head[:n] for n in range(CCCD_START_MIN, min(len(head), len(whole) - 1) + 1)]
    if not whole:
        return {}
    tail = whole[-NUMBER_PART_MAX:]
    ends = [tail[-n:] for n in range(NUMBER_END_MIN, min(len(tail), len(whole) - 1) + 1)]
    tokens = {field_name: [whole], f"{field_name}-end": ends}
    if starts:
        tokens[f"{field_name}-start"] = starts
    return tokens


def index_terms(session: OfficeSession, fields: dict[str, str]) -> list[str]:
    """A dossier's blind-index terms from its clean (sealed) fields.

    Shared by saving the fields and by re-indexing dossiers indexed by an older release
    (``edge.desk.search.Search.reindex``), so both give exactly the same terms.
    """
    terms: set[str] = set()
    name = " ".join(str(fields.get(k, "")) for k in ("family", "middle", "given")).strip()
    name = name or str(fields.get("full_name", ""))
    terms.update(session.blind_terms(text.prefix_tokens(name), "name"))
    for field_name in ("cccd", "phone"):
        for scope, tokens in number_tokens(field_name, str(fields.get(field_name, ""))).items():
            terms.update(session.blind_terms(tokens, scope))
    return sorted(terms)


class Reader:
    """Opens sealed dossier data for a signed-in clerk."""

    def __init__(self, store: Store, session: OfficeSession) -> None:
        self.store = store
        self.session = session
        self._keys: dict[str, DataKey] = {}

    def key(self, key_id: str) -> DataKey:
        if key_id not in self._keys:
            row = self.store.key(key_id)
            self._keys[key_id] = self.session.open_key(key_id, bytes(row["wrapped_office"]))
        return self._keys[key_id]

    def page_bytes(self, page: Any) -> bytes:
        sealed = self.store.blob(page["blob_id"])
        return self.session.open(
            self.key(page["key_id"]), sealed, page_ad(page["dossier_id"], page["id"])
        )

    def fields(self, dossier_id: str) -> dict[str, str]:
        row = self.store.dossier(dossier_id)
        if row is None:
            raise StoreError(f"no dossier {dossier_id}")
        if row["fields"] is None:
            return {}
        value = self.session.open_json(
            self.key(row["fields_key_id"]), bytes(row["fields"]), field_ad(dossier_id, "fields")
        )
        return json_object(value)

    def event_payload(self, event: Event) -> dict[str, Any]:
        value = self.session.open_json(
            self.key(event.key_id),
            event.payload,
            event_ad(event.key_id, event.dossier_id, event.type),
        )
        return json_object(value)

    def quarantined_bytes(self, quarantine_id: str) -> bytes:
        row = self.store.quarantine_entry(quarantine_id)
        if row is None or row["key_id"] is None:
            raise StoreError(f"no stored original for quarantined file {quarantine_id}")
        blobs = [self.store.blob(b) for b in json.loads(row["blob_ids"])]
        return open_chunks(
            self.session, self.key(row["key_id"]), f"quarantine:{quarantine_id}", blobs
        )
