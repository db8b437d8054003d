"""Request admission: who signed a request, whether it may come in, and its one transaction.

Heavy checks (the signature over the body) run before a transaction opens; the
transaction itself only spends the nonce, checks revocation and notes the contact.
The gateway (app.Gateway) calls ``check_headers`` before it reads a body, so an
unsigned, unknown or stale sender never gets central to buffer one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.core import Core
from edge.vault import verify_signature

_PURGE_EVERY_MS = 60_000
T = TypeVar("T")


@dataclass(frozen=True)
class Device:
    device_id: str
    public_key: bytes
    office: str


@dataclass(frozen=True)
class Auth:
    """The four headers every signed request carries."""

    device: str
    time_ms: int
    nonce: str
    signature: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Auth:
        device = headers.get(c.H_DEVICE)
        stamp = headers.get(c.H_TIME)
        nonce = headers.get(c.H_NONCE)
        signature = headers.get(c.H_SIGNATURE)
        if not (device and stamp and nonce and signature):
            raise c.ProblemError(
                c.Code.UNAUTHENTICATED,
                f"sign the request: {c.H_DEVICE}, {c.H_TIME}, {c.H_NONCE}, {c.H_SIGNATURE}",
            )
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
            raise c.ProblemError(c.Code.MALFORMED, f"{c.H_TIME} is not an integer")
        if len(device) != 32 or len(nonce) != 32 or not _is_hex(device + nonce):
            raise c.ProblemError(c.Code.MALFORMED, "device id and nonce are 32 hex digits")
        if len(signature) > 200:
            raise c.ProblemError(c.Code.MALFORMED, f"{c.H_SIGNATURE} is too long")
        return cls(device, int(stamp), nonce, signature)


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in text)


def _not_enrolled() -> c.ProblemError:
    return c.ProblemError(c.Code.UNKNOWN_DEVICE, "enroll this box first ('edge enroll')")


def _revoked() -> c.ProblemError:
    return c.ProblemError(c.Code.DEVICE_REVOKED, "ask regional IT to re-enroll this box")


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out: the device that signed it and what it signed.

    Made once per request (by the app's ``verified`` dependency, or ``verify_request``)
    and handed to every part that works for the device; its nonce is spent and the
    device's revocation checked inside the transaction that does the work (``admit``).
    """

    device: Device
    auth: Auth

    @property
    def device_id(self) -> str:
        return self.device.device_id


class Admission:
    """Signed requests in: device keys (cached per process), time window, nonces."""

    def __init__(self, core: Core, window_ms: int = c.TIME_WINDOW_MS) -> None:
        self.core = core
        self.window_ms = window_ms
        self._publics: dict[str, Device] = {}
        self._purged_at = 0

    def device(self, device_id: str) -> Device | None:
        """An enrolled device's key and office; a device never changes either, so cached."""
        known = self._publics.get(device_id)
        if known is not None:
            return known
        with self.core.tx() as conn:
            row = conn.execute(
                select(st.devices.c.public_key, st.devices.c.office).where(
                    st.devices.c.device_id == device_id
                )
            ).first()
        if row is None:
            return None
        device = Device(device_id, bytes(row.public_key), row.office)
        self._publics[device_id] = device
        return device

    def cached_device(self, device_id: str) -> Device | None:
        """An enrolled device already looked up by this process (no database read)."""
        return self._publics.get(device_id)

    def check_headers(self, headers: Mapping[str, str]) -> tuple[Device, Auth]:
        """What can be judged before a byte of the body is read: the signature headers are
        there and well-formed, name an enrolled device, and carry a time in the window.

        The signature itself covers the body's digest and waits for it (``verify_request``).
        """
        auth = Auth.from_headers(headers)
        device = self.device(auth.device)
        if device is None:
            raise _not_enrolled()
        now = self.core.now()
        if abs(auth.time_ms - now) > self.window_ms:
            raise c.ProblemError(
                c.Code.STALE_TIME,
                "the box's clock is off: sign again with central's time",
                server_time=now,
            )
        return device, auth

    def verify_request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Verified:
        """Everything about a request that needs no write: who, when, signature."""
        device, auth = self.check_headers(headers)
        try:
            signature = c.b64d(auth.signature)
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the signature is not base64") from exc
        message = c.request_message(method, target, auth.device, auth.time_ms, auth.nonce, body)
        if not verify_signature(device.public_key, message, signature):
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the device signature does not verify")
        return Verified(device, auth)

    def admit(self, conn: Connection, verified: Verified) -> Row[Any]:
        """Inside the request's transaction: spend the nonce, check revocation, note contact."""
        device, auth = verified.device, verified.auth
        now = self.core.now()
        try:
            conn.execute(
                st.nonces.insert().values(
                    device_id=device.device_id,
                    nonce=auth.nonce,
                    expires_ms=max(auth.time_ms, now) + self.window_ms,
                )
            )
        except IntegrityError as exc:
            raise c.ProblemError(c.Code.REPLAYED, "sign every request with a fresh nonce") from exc
        # One statement both notes the contact and locks the row for this transaction.
        row = conn.execute(
            update(st.devices)
            .where(st.devices.c.device_id == device.device_id)
            .values(last_contact_ms=now)
            .returning(*st.devices.c)
        ).first()
        if row is None:
            raise _not_enrolled()
        if row.revoked:
            raise _revoked()
        if now - self._purged_at > _PURGE_EVERY_MS:
            self._purged_at = now
            conn.execute(st.nonces.delete().where(st.nonces.c.expires_ms < now))
        return row

    def lock_device(self, conn: Connection, device_id: str) -> Any:
        """The device row, locked for this transaction: a device's chain advances one at a time."""
        row = conn.execute(
            select(st.devices).where(st.devices.c.device_id == device_id).with_for_update()
        ).first()
        if row is None:
            raise _not_enrolled()
        if row.revoked:
            raise _revoked()
        return row

    def handle(self, verified: Verified, work: Callable[[Connection, Row[Any]], T]) -> T:
        """Run ``work`` for a verified request in its one transaction, with the device's row."""
        return self.core.write(lambda conn: work(conn, self.admit(conn, verified)))
