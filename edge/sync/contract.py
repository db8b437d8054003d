"""The wire contract between a box and central; docs/protocol.md is its prose twin.

Both ends import this module, so a change here is a protocol change: bump
``PROTOCOL`` and say so in docs/protocol.md. It holds names, limits, shapes and
the exact bytes that get signed; the signing itself goes through ``edge.vault``.

Signed documents (batches, receipts, downlink items, clock statements) carry
the exact JSON text that was signed as a string, so no receiver ever has to
re-create a canonical serialisation to check a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec

from edge import vault
from edge.store import Event, event_hash

PROTOCOL = 1
API = "/v1"

H_DEVICE = "Edge-Device"
H_TIME = "Edge-Time"
H_NONCE = "Edge-Nonce"
H_SIGNATURE = "Edge-Signature"
H_SERVER_TIME = "Edge-Server-Time"
H_OFFSET = "Upload-Offset"
H_LENGTH = "Upload-Length"
H_CHECKSUM = "Upload-Checksum"
H_RETRY_AFTER = "Retry-After"
PROBLEM_JSON = "application/problem+json"
CHUNK_MEDIA = "application/offset+octet-stream"

TIME_WINDOW_MS = 5 * 60 * 1000
MAX_CHUNK = 8 << 20
MAX_BLOB = 1 << 30
MAX_BATCH_BYTES = 16 << 20
MAX_BATCH_EVENTS = 2000
MAX_STATUS_IDS = 1000
MAX_UPDATE_OFFER = 8 << 20
MAX_UPDATE_TARGET = 2 << 30
DOWNLINK_PAGE = 200
# Deepest JSON nesting any body or signed document of this protocol has is 5 (a health
# summary's map, a batch's event blobs); decoders recurse, so anything past this limit
# is refused as malformed before it reaches one (1,000 levels used to end in a 500).
MAX_JSON_DEPTH = 32
# Per-route body limits, checked on Content-Length before a byte of the body is read.
MAX_ENROLL_BYTES = 16 << 10
MAX_STATUS_BYTES = 128 << 10
MAX_BATCH_BODY = MAX_BATCH_BYTES + (64 << 10)

HEX32 = "^[0-9a-f]{32}$"
HEX64 = "^[0-9a-f]{64}$"
# Shapes of what a box names in a batch, as narrow as the box's own values allow; each
# length also fits the column central stores it in (a longer value used to reach
# PostgreSQL and come back as 503 on every retry).
DOSSIER_ID = "^[a-z][0-9a-z]{1,63}$"
KEY_ID = "^[0-9A-Za-z][0-9A-Za-z._:-]{0,63}$"
EVENT_TYPE = "^[a-z][0-9a-z_.-]{0,127}$"
STATUS_NAME = "^[a-z][0-9a-z_]{0,63}$"
WIRE_TIME = "^[0-9][0-9TZ:.+-]{0,39}$"
HLC = "^[0-9]{1,20}(?:[.][0-9]{1,10})?$"
# A dossier code as boxes store it: stripped, upper-cased, what a pattern of regional
# IT's matched (edge.domain.CodePatterns; codes are at most MAX_CODE_LENGTH long).
DOSSIER_CODE = "^[0-9A-Z](?:[0-9A-Z._/-]{0,98}[0-9A-Z])?$"
OFFICE = "^[A-Z0-9][A-Z0-9.-]{1,31}$"
PRINTABLE_64 = "^[ -~]{0,64}$"

DOMAIN_REQUEST = "commune-edge/request/v1"
DOMAIN_ENROLL = "commune-edge/enroll/v1"
DOMAIN_BATCH = "commune-edge/batch/v1"
DOMAIN_RECEIPT = "commune-edge/receipt/v1"
DOMAIN_DOWNLINK = "commune-edge/downlink/v1"
DOMAIN_CLOCK = "commune-edge/clock/v1"
DOMAIN_STICK = "commune-edge/stick-request/v1"

Hex32 = Annotated[str, msgspec.Meta(pattern=HEX32)]
Hex64 = Annotated[str, msgspec.Meta(pattern=HEX64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Text = Annotated[str, msgspec.Meta(max_length=4096)]
B64 = Annotated[str, msgspec.Meta(max_length=MAX_BATCH_BYTES * 2)]


class Code(StrEnum):
    """Stable problem codes: clients branch on these, never on the wording."""

    MALFORMED = "malformed"
    UNAUTHENTICATED = "unauthenticated"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIME = "stale_time"
    DEVICE_REVOKED = "device_revoked"
    TOKEN_INVALID = "token_invalid"
    WRONG_OFFICE = "wrong_office"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REPLAYED = "replayed"
    TOKEN_USED = "token_used"
    ENROLLED_ELSEWHERE = "enrolled_elsewhere"
    CHAIN_BROKEN = "chain_broken"
    BLOBS_MISSING = "blobs_missing"
    OFFSET_MISMATCH = "offset_mismatch"
    LENGTH_MISMATCH = "length_mismatch"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_SLOW = "too_slow"
    TAMPERED_BATCH = "tampered_batch"
    DOSSIER_CLAIMED = "dossier_claimed"
    INVALID_FIELD = "invalid_field"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    UPDATE_REFUSED = "update_refused"
    UPDATES_NOT_SET_UP = "updates_not_set_up"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


STATUS: dict[Code, tuple[int, str]] = {
    Code.MALFORMED: (400, "The request is not what the protocol expects"),
    Code.UNAUTHENTICATED: (401, "The request is not signed"),
    Code.UNKNOWN_DEVICE: (401, "No enrolled device has this id"),
    Code.BAD_SIGNATURE: (401, "The request signature does not verify"),
    Code.STALE_TIME: (401, "The request time is outside the accepted window"),
    Code.DEVICE_REVOKED: (403, "This device has been revoked"),
    Code.TOKEN_INVALID: (403, "The enrollment token is not valid"),
    Code.WRONG_OFFICE: (403, "The enrollment token belongs to another office"),
    Code.NOT_FOUND: (404, "Nothing here"),
    Code.METHOD_NOT_ALLOWED: (405, "This method is not allowed here"),
    Code.REPLAYED: (409, "This request nonce was already used"),
    Code.TOKEN_USED: (409, "The enrollment token was already used by another device"),
    Code.ENROLLED_ELSEWHERE: (409, "This device is already enrolled for another office"),
    Code.CHAIN_BROKEN: (409, "The batch does not continue the accepted hash chain"),
    Code.BLOBS_MISSING: (409, "Blobs the batch references are not uploaded yet"),
    Code.OFFSET_MISMATCH: (409, "The chunk does not start at the upload's offset"),
    Code.LENGTH_MISMATCH: (409, "The upload length differs from the one first declared"),
    Code.TOO_LARGE: (413, "The request body is too large"),
    Code.UNSUPPORTED_MEDIA_TYPE: (415, "Unsupported media type"),
    Code.TOO_SLOW: (408, "The request body arrived too slowly"),
    Code.DOSSIER_CLAIMED: (409, "Another office's box holds this dossier code"),
    Code.INVALID_FIELD: (422, "A value in the batch is not what a box sends"),
    Code.TAMPERED_BATCH: (422, "The batch does not match its id, signature or hashes"),
    Code.CHECKSUM_MISMATCH: (422, "The data does not match its checksum"),
    Code.UPDATE_REFUSED: (422, "The update does not verify as a box would verify it"),
    Code.UPDATES_NOT_SET_UP: (409, "Central has no trusted update root yet"),
    Code.RATE_LIMITED: (429, "Too many requests: retry later"),
    Code.BUSY: (503, "Central is busy: retry later"),
    Code.UNAVAILABLE: (503, "Central's storage is unavailable: retry later"),
    Code.INTERNAL: (500, "Internal error"),
}


class Head(msgspec.Struct):
    """The last event central accepted from a device (seq 0 and the genesis hash at first)."""

    seq: Seq
    hash: Hex64


class Problem(msgspec.Struct, omit_defaults=True):
    """Every error body (RFC 9457 style, with a stable ``code``)."""

    code: str
    title: str
    status: int
    detail: str = ""
    server_time: int | None = None
    head: Head | None = None
    missing: list[str] | None = None
    offset: int | None = None


class ProblemError(Exception):
    """A protocol-level refusal; central turns it into a problem body."""

    def __init__(self, code: Code, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{code}: {detail}" if detail else str(code))
        self.code = code
        self.detail = detail
        self.extra = extra
        self.retry_after: float | None = extra.pop("retry_after", None)

    @property
    def status(self) -> int:
        return STATUS[self.code][0]

    def problem(self) -> Problem:
        return Problem(
            code=str(self.code),
            title=STATUS[self.code][1],
            status=self.status,
            detail=self.detail,
            **self.extra,
        )


# -- HTTP bodies ---------------------------------------------------------------


class SignedDocument(msgspec.Struct, forbid_unknown_fields=True):
    """Exact JSON text plus an Ed25519 signature over ``domain + "\\n" + text``."""

    signed: Annotated[str, msgspec.Meta(max_length=MAX_BATCH_BYTES)]
    signature: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    device_public: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    office: Annotated[str, msgspec.Meta(pattern=OFFICE)]
    software: Annotated[str, msgspec.Meta(pattern=PRINTABLE_64)]
    proof: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class EnrollAnswer(msgspec.Struct):
    device_id: str
    office: str
    recipient_public: str
    receipt_public: str
    server_time: int
    head: Head
    settings: dict[str, Any]
    # regional IT's update root (TUF root.json, base64) once central trusts one: a box
    # provisioned without --trust-root pins it (docs/updates.md)
    update_root: str | None = None


class DeviceAnswer(msgspec.Struct):
    device_id: str
    office: str
    head: Head
    downlink_cursor: int
    server_time: int


class BlobStatusRequest(msgspec.Struct, forbid_unknown_fields=True):
    ids: Annotated[list[Hex64], msgspec.Meta(max_length=MAX_STATUS_IDS)]


class BlobState(msgspec.Struct):
    """Where an upload stands: ``offset`` bytes are stored; ``complete`` once verified."""

    id: str
    offset: int
    complete: bool
    length: int | None = None


class BlobStatusAnswer(msgspec.Struct):
    blobs: list[BlobState]


class ReceiptAnswer(msgspec.Struct):
    receipt: SignedDocument
    server_time: int


class ReceiptsAnswer(msgspec.Struct):
    receipts: list[SignedDocument]
    server_time: int


class DownlinkItem(msgspec.Struct):
    id: int
    document: SignedDocument


class DownlinkAnswer(msgspec.Struct):
    items: list[DownlinkItem]
    next: int
    more: bool
    clock: SignedDocument
    server_time: int
    # the version of the update timestamp central serves: a hint, unsigned, that makes a
    # box check for updates now rather than at its next scheduled check (TUF verifies)
    updates: int | None = None


class Health(msgspec.Struct):
    status: str
    protocol: int
    server_time: int


# -- the box's health summary (POST /v1/device/health) -------------------------------

MAX_HEALTH_BYTES = 64 << 10
MAX_ALERT_TEXT = 500

Short = Annotated[str, msgspec.Meta(max_length=64)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Seconds = Annotated[float, msgspec.Meta(ge=-(2.0**40), le=2.0**40)]
Counts = Annotated[dict[Short, Count], msgspec.Meta(max_length=32)]


class OutboxHealth(msgspec.Struct):
    """What central has not acknowledged yet, as the box counts it."""

    dossiers: Count = 0
    events: Count = 0
    bytes: Count = 0
    batches_in_flight: Count = 0
    acked_seq: Count = 0


class SyncHealth(msgspec.Struct):
    last_ok: Short = "never"
    age_seconds: Seconds | None = None
    errors: Counts = {}
    last_error: Annotated[str, msgspec.Meta(max_length=MAX_ALERT_TEXT)] | None = None


class DiskHealth(msgspec.Struct):
    free_bytes: Count | None = None
    total_bytes: Count | None = None
    min_free_bytes: Count | None = None


class ClockHealth(msgspec.Struct):
    wall: Short | None = None
    floor: Short | None = None
    offset_seconds: Seconds | None = None
    behind_floor_seconds: Seconds = 0.0
    central_offset_seconds: Seconds | None = None


class HealthSummary(msgspec.Struct):
    """``edge.observe.health.health_summary`` as the contract fixes it.

    Unknown members are ignored rather than refused, so a newer box can say more
    to an older central without either side failing.
    """

    version: Short = ""
    office: Short | None = None
    at: Short = ""
    last_capture: Short | None = None
    pages: Count = 0
    events: Count = 0
    dossiers: Counts = {}
    open_reviews: Count | None = None  # covers waiting for the clerk; None: an older box
    quarantine: Counts = {}
    outbox: OutboxHealth = msgspec.field(default_factory=OutboxHealth)
    sync: SyncHealth = msgspec.field(default_factory=SyncHealth)
    disk: DiskHealth = msgspec.field(default_factory=DiskHealth)
    clock: ClockHealth = msgspec.field(default_factory=ClockHealth)
    alerts: Annotated[
        dict[Short, Annotated[str, msgspec.Meta(max_length=MAX_ALERT_TEXT)]],
        msgspec.Meta(max_length=32),
    ] = {}


class HealthReport(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/device/health``; the request signature covers it."""

    v: int
    summary: HealthSummary


class HealthAnswer(msgspec.Struct):
    received_at: int
    server_time: int


# -- what signed documents say -------------------------------------------------


DossierId = Annotated[str, msgspec.Meta(pattern=DOSSIER_ID)]
KeyId = Annotated[str, msgspec.Meta(pattern=KEY_ID)]
WireTime = Annotated[str, msgspec.Meta(pattern=WIRE_TIME)]
DossierCode = Annotated[str, msgspec.Meta(pattern=DOSSIER_CODE)]


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    seq: Seq
    dossier_id: DossierId | None
    type: Annotated[str, msgspec.Meta(pattern=EVENT_TYPE)]
    key_id: KeyId
    payload: B64
    at: WireTime
    hlc: Annotated[str, msgspec.Meta(pattern=HLC)]
    prev_hash: Hex64
    hash: Hex64
    blobs: Annotated[list[Hex64], msgspec.Meta(max_length=MAX_STATUS_IDS)] = []


class WireKey(msgspec.Struct, forbid_unknown_fields=True):
    key_id: KeyId
    dossier_id: DossierId | None
    wrapped: Annotated[str, msgspec.Meta(max_length=400)]


class WireDossier(msgspec.Struct, forbid_unknown_fields=True):
    """What anyone at the box may see of a dossier; central lists and routes by it.

    Central checks more than the shape (receiver.Central.check_dossiers): the code
    must match a pattern regional IT published, agree with the box's office where
    the pattern names it, and belong to no other office's box.
    """

    id: DossierId
    code: DossierCode | None
    status: Annotated[str, msgspec.Meta(pattern=STATUS_NAME)]
    received_at: WireTime


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    device: Hex32
    after_seq: Seq
    after_hash: Hex64
    events: Annotated[list[WireEvent], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
    keys: Annotated[list[WireKey], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
    dossiers: Annotated[list[WireDossier], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
    software: Annotated[str, msgspec.Meta(pattern=PRINTABLE_64)] = ""


class Receipt(msgspec.Struct):
    v: int
    batch: str
    device: str
    after_seq: int
    last_seq: int
    head: str
    events: int
    keys: list[str]
    blobs: int
    accepted_at: int


class DownlinkDoc(msgspec.Struct):
    v: int
    id: int
    device: str | None
    office: str | None
    kind: str
    body: dict[str, Any]
    at: int


class Clock(msgspec.Struct):
    """Central's signed answer to one request: its time and how far it holds this box's chain.

    ``head`` is what the box trusts when it decides that central lost events (a restore from
    an older backup) and sends them again; unsigned, a man in the middle could make every box
    resend its history and raise a false alarm. None from a central older than the field.
    """

    v: int
    device: str
    nonce: str
    server_time: int
    head: Head | None = None


class StickRequest(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    device: Hex32
    nonce: Hex32
    downlink_after: Seq
    software: Text = ""


# -- encoding and signing --------------------------------------------------------


class DocumentError(ValueError):
    """A signed document is malformed or its signature does not verify."""


T = TypeVar("T")


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Strict base64: anything else is a malformed request, not a crash."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise DocumentError("not valid base64") from exc


def signing_input(domain: str, text: str) -> bytes:
    return domain.encode("ascii") + b"\n" + text.encode("utf-8")


def sign_document(
    domain: str, value: msgspec.Struct, sign: Callable[[bytes], bytes]
) -> SignedDocument:
    text = msgspec.json.encode(value).decode("utf-8")
    return SignedDocument(signed=text, signature=b64e(sign(signing_input(domain, text))))


def open_document(domain: str, doc: SignedDocument, public: bytes, kind: type[T]) -> T:
    """Verify then decode; the decode happens only on text the signer vouched for."""
    verify_document(domain, doc, public)
    return decode_document(doc, kind)


def verify_document(domain: str, doc: SignedDocument, public: bytes) -> None:
    """The signature alone, for a receiver that tells a forgery from a bad value."""
    try:
        signature = b64d(doc.signature)
    except DocumentError as exc:
        raise DocumentError("the signature is not base64") from exc
    if not vault.verify_signature(public, signing_input(domain, doc.signed), signature):
        raise DocumentError("the signature does not verify")


def decode_document(doc: SignedDocument, kind: type[T]) -> T:
    data = doc.signed.encode("utf-8")
    if json_too_deep(data):
        raise DocumentError(f"the signed document nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise DocumentError(f"the signed document is malformed: {exc}") from exc


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON text nests arrays/objects deeper than ``limit`` (or is unbalanced).

    Decoders (msgspec, json) recurse once per level and end in RecursionError, a 500,
    on deep input; this answers first, in C-speed passes over the bytes: escaped
    backslashes and quotes go, the text splits on the remaining quotes so strings
    drop out, and matched ``[]`` pairs are peeled a level at a time. Unbalanced text
    counts as too deep: it is not JSON either way, and the caller refuses it.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    outside = b"".join(data.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return True
        brackets = peeled
    return bool(brackets)


def document_id(doc: SignedDocument) -> str:
    """A batch's id: SHA-256 of the exact signed text."""
    return hashlib.sha256(doc.signed.encode("utf-8")).hexdigest()


def encode(value: msgspec.Struct) -> bytes:
    return msgspec.json.encode(value)


def request_message(
    method: str, target: str, device: str, time_ms: int, nonce: str, body: bytes
) -> bytes:
    """What a device signs for every request: replaying or editing any part breaks it."""
    return "\n".join(
        (
            DOMAIN_REQUEST,
            method.upper(),
            target,
            device,
            str(time_ms),
            nonce,
            hashlib.sha256(body).hexdigest(),
        )
    ).encode("utf-8")


def enroll_message(token: str, device_public: str, office: str) -> bytes:
    return "\n".join((DOMAIN_ENROLL, token, device_public, office)).encode("utf-8")


def device_id_for(public: bytes) -> str:
    """Derived from the key, so a device id can never be re-pointed at another key."""
    return hashlib.sha256(public).hexdigest()[:32]


def chunk_checksum(data: bytes) -> str:
    """The tus checksum header value for one chunk."""
    return "sha256 " + b64e(hashlib.sha256(data).digest())


def event_to_wire(event: Event, blobs: list[str]) -> WireEvent:
    return WireEvent(
        seq=event.seq,
        dossier_id=event.dossier_id,
        type=event.type,
        key_id=event.key_id,
        payload=b64e(event.payload),
        at=event.at,
        hlc=event.hlc,
        prev_hash=event.prev_hash,
        hash=event.hash,
        blobs=sorted(blobs),
    )


def wire_event_hash(event: WireEvent, payload: bytes) -> str:
    return event_hash(
        event.prev_hash,
        event.seq,
        event.dossier_id,
        event.type,
        event.key_id,
        payload,
        event.at,
        event.hlc,
    )


# -- publishing updates: regional IT to central (docs/updates.md) ---------------------


class UpdateOffer(msgspec.Struct, forbid_unknown_fields=True):
    """TUF metadata files by name, each the base64 of its exact bytes (hashes cover them);
    or, once central answered with missing targets, ``resume``: the SHA-256 of that offer's
    timestamp.json, so the same metadata need not travel twice."""

    metadata: dict[Annotated[str, msgspec.Meta(max_length=120)], B64] = {}
    resume: Hex64 | None = None


class MissingTarget(msgspec.Struct):
    path: str
    length: int
    sha256: Hex64


class UpdateAnswer(msgspec.Struct):
    """``published`` once every target the offer names is held; else what to upload first."""

    published: bool
    timestamp: int
    missing: list[MissingTarget]
    new_files: int


class TargetReceived(msgspec.Struct):
    """``offset``: the bytes central now holds; ``complete`` once verified and published."""

    path: str
    offset: int
    complete: bool
