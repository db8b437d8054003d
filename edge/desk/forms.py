"""The dossier form: a code for an unassigned dossier, the citizen's details, drafts."""

from __future__ import annotations

from typing import Any

from edge import text
from edge.clock import iso
from edge.desk.base import DeskLedgerBase
from edge.desk.details import Details, parse_channel
from edge.desk.errors import DeskError, DeskReason
from edge.domain import Channel
from edge.records import WAITING_DETAILS
from edge.vault import VaultError, field_ad


class Forms(DeskLedgerBase):
    def save_draft(self, dossier_id: str, values: dict[str, str]) -> None:
        """Keep what is typed, sealed, on every pause in typing.

        Drafts are scratch work, replaced on each save, so they are not events:
        the chain (and what sync ships) would otherwise grow with every keystroke.
        """
        clean = {k: text.nfc(v) for k, v in values.items()}
        with self.store.transaction():
            key = self._key(dossier_id)
            sealed = self.sealer.seal_json(key, clean, field_ad(dossier_id, "draft"))
            self.store.put_draft(
                dossier_id,
                clerk=self.clerk,
                key_id=key.key_id,
                payload=sealed,
                updated=iso(self.store.time_ms()),
            )

    def discard_draft(self, dossier_id: str) -> None:
        with self.store.transaction():
            self.store.delete_draft(dossier_id)

    def assign_code(self, dossier_id: str, code: str, patterns: Any) -> str:
        """Give an unassigned dossier (pages scanned before any cover) its code."""
        normal = patterns.match(code)
        if normal is None:
            raise DeskError(DeskReason.CODE_INVALID, field="code")
        row = self._editable(dossier_id)
        if row["code"] == normal:
            return normal
        if row["code"] is not None:
            raise DeskError(DeskReason.CODE_FIXED, field="code")
        other = self.store.dossier_by_code(normal)
        if other is not None:
            raise DeskError(
                DeskReason.CODE_TAKEN, field="code", dossier_id=other["id"], code=normal
            )
        with self.store.transaction():
            self.store.update_dossier(
                dossier_id, code=normal, status=WAITING_DETAILS, needs_review=0
            )
            self.record(dossier_id, "dossier.code_assigned", {"code": normal, "clerk": self.clerk})
        return normal

    def save_details(self, dossier_id: str, details: Details) -> None:
        """Seal the citizen's details, index them for search, and drop the draft."""
        self._editable(dossier_id)
        with self.store.transaction():
            self.set_fields(self.session, dossier_id, details.personal())
            self.store.update_dossier(
                dossier_id,
                procedure_code=details.procedure or None,
                appointment=details.appointment or None,
            )
            self.record(
                dossier_id,
                "dossier.details_set",
                {
                    "procedure": details.procedure or None,
                    "appointment": details.appointment or None,
                    "channel": int(details.channel),
                    "clerk": self.clerk,
                },
            )
            self.store.delete_draft(dossier_id)

    def saved_channel(self, dossier_id: str) -> Channel:
        """The channel saved with the details; dossiers saved before it was asked came in person.

        It travels in the ``dossier.details_set`` event, which sync already ships, so the
        projection needs no column of its own.
        """
        event = self.store.last_event(dossier_id, "dossier.details_set")
        if event is None:
            return Channel.TRUC_TIEP
        try:
            payload = self.reader.event_payload(event)
        except VaultError:
            return Channel.TRUC_TIEP
        return parse_channel(payload.get("channel") or "") or Channel.TRUC_TIEP
