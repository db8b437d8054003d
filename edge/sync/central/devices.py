"""Devices: one-time tokens, enrollment, what central knows of a box, and revocation."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update

from edge.store import GENESIS
from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.sync.central.core import Core
from edge.sync.central.errors import AdminError
from edge.vault import verify_signature

SettingsFor = Callable[[Connection, str], dict[str, Any]]


class Devices:
    """Enrollment turns a token into a device row; ``settings_for`` gives its configuration."""

    def __init__(self, core: Core, settings_for: SettingsFor) -> None:
        self.core = core
        self.settings_for = settings_for

    def issue_token(self, office: str) -> str:
        """A one-time enrollment token: 160 random bits in base32 (A–Z, 2–7).

        Technicians copy it into edge-enroll.txt or type it after ``--token``; URL-safe
        base64 started with '-' one time in 64, which the command line took for an option.
        """
        token = base64.b32encode(secrets.token_bytes(20)).decode("ascii")
        with self.core.tx() as conn:
            conn.execute(
                st.tokens.insert().values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    office=office,
                    created_ms=self.core.now(),
                )
            )
        return token

    def enroll(self, req: c.EnrollRequest) -> c.EnrollAnswer:
        try:
            public = c.b64d(req.device_public)
            proof = c.b64d(req.proof)
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.MALFORMED, "device_public and proof are base64") from exc
        if len(public) != 32:
            raise c.ProblemError(c.Code.MALFORMED, "device_public is a raw 32-byte Ed25519 key")
        if not verify_signature(
            public, c.enroll_message(req.token, req.device_public, req.office), proof
        ):
            raise c.ProblemError(c.Code.BAD_SIGNATURE, "the enrollment proof does not verify")
        device_id = c.device_id_for(public)
        token_hash = hashlib.sha256(req.token.encode("utf-8")).hexdigest()
        return self.core.write(
            lambda conn: self._enroll(conn, req, public, device_id, token_hash, self.core.now())
        )

    def _enroll(
        self,
        conn: Connection,
        req: c.EnrollRequest,
        public: bytes,
        device_id: str,
        token_hash: str,
        now: int,
    ) -> c.EnrollAnswer:
        token = conn.execute(
            select(st.tokens).where(st.tokens.c.token_hash == token_hash).with_for_update()
        ).first()
        if token is None:
            raise c.ProblemError(c.Code.TOKEN_INVALID, "ask regional IT for a new token")
        if token.office != req.office:
            raise c.ProblemError(c.Code.WRONG_OFFICE, f"this token is for office {token.office}")
        if token.used_by is not None and token.used_by != device_id:
            raise c.ProblemError(c.Code.TOKEN_USED, "ask regional IT for a new token")
        existing = conn.execute(
            select(st.devices).where(st.devices.c.device_id == device_id)
        ).first()
        if existing is None:
            conn.execute(
                st.devices.insert().values(
                    device_id=device_id,
                    public_key=public,
                    office=req.office,
                    enrolled_ms=now,
                    last_contact_ms=now,
                    head_seq=0,
                    head_hash=GENESIS,
                    software=req.software,
                    downlink_cursor=0,
                    revoked=False,
                )
            )
            head = c.Head(seq=0, hash=GENESIS)
        elif existing.office != req.office:
            # Before the token is spent: this box stays what it is, and the token can
            # still enroll the box it was meant for.
            raise c.ProblemError(
                c.Code.ENROLLED_ELSEWHERE,
                f"this box is enrolled for office {existing.office}; to move it to "
                f"{req.office}, provision it again ('edge init') and enroll the new box",
            )
        else:
            head = c.Head(seq=existing.head_seq, hash=existing.head_hash)
        conn.execute(
            update(st.tokens)
            .where(st.tokens.c.token_hash == token_hash)
            .values(used_by=device_id, used_ms=now)
        )
        settings = self.settings_for(conn, req.office)
        update_root = self.core.gate.trusted_root()
        return c.EnrollAnswer(
            device_id=device_id,
            office=req.office,
            recipient_public=c.b64e(self.core.keys.recipient_public),
            receipt_public=c.b64e(self.core.keys.receipt_public),
            server_time=now,
            head=head,
            settings=settings,
            update_root=c.b64e(update_root) if update_root else None,
        )

    def device_info(self, row: Any) -> c.DeviceAnswer:
        return c.DeviceAnswer(
            device_id=row.device_id,
            office=row.office,
            head=c.Head(seq=row.head_seq, hash=row.head_hash),
            downlink_cursor=row.downlink_cursor,
            server_time=self.core.now(),
        )

    def revoke(self, device_id: str) -> None:
        """Refuse a device from now on (a stolen box, a rogue enrollment), in every process."""
        with self.core.tx() as conn:
            done = conn.execute(
                update(st.devices).where(st.devices.c.device_id == device_id).values(revoked=True)
            ).rowcount
        if not done:
            raise AdminError(f"no device {device_id!r} at central: see 'edge central status'")
