"""Results and paper: results handed back to citizens, paper handed over to the agency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from edge import text
from edge.clock import iso
from edge.desk.base import DeskLedgerBase
from edge.desk.errors import DeskError, DeskReason
from edge.desk.statuses import RESULT_READY
from edge.records import COMPLETE


class Handover(DeskLedgerBase):
    def hand_back(self, dossier_id: str, receiver: str, receiver_id: str) -> None:
        """The result left the counter: who took it and which ID paper they showed."""
        row = self._dossier(dossier_id)
        if row["handed_back_at"]:
            raise DeskError(DeskReason.ALREADY_HANDED_BACK)
        if row["central_status"] != RESULT_READY:
            raise DeskError(DeskReason.NO_RESULT)
        receiver = text.nfc(receiver)
        receiver_id = text.nfc(receiver_id)
        if not receiver or not any(ch.isalpha() for ch in receiver):
            raise DeskError(DeskReason.MISSING, field="receiver")
        if len(receiver_id) < 6:
            raise DeskError(DeskReason.MISSING, field="receiver_id")
        with self.store.transaction():
            at = iso(self.store.time_ms())
            self.store.update_dossier(dossier_id, handed_back_at=at)
            self.record(
                dossier_id,
                "result.handed_back",
                {"receiver": receiver, "receiver_id": receiver_id, "clerk": self.clerk},
            )

    def record_handover(self, dossier_ids: Sequence[str], on: date) -> list[str]:
        """The paper dossiers went back to the agency on ``on``: returns their codes."""
        if not dossier_ids:
            raise DeskError(DeskReason.NOTHING_TO_HAND_OVER)
        codes = []
        with self.store.transaction():
            for dossier_id in dossier_ids:
                row = self._dossier(dossier_id)
                if row["status"] != COMPLETE or row["handed_over_on"]:
                    raise DeskError(DeskReason.HANDOVER_CHANGED)
                self.store.update_dossier(dossier_id, handed_over_on=on.isoformat())
                codes.append(row["code"])
            self.record(
                None,
                "handover.recorded",
                {"date": on.isoformat(), "dossiers": list(dossier_ids), "clerk": self.clerk},
            )
        return codes
