"""Results and paper: results handed back to citizens, paper handed over to the agency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from edge import text
from edge.clock import iso
from edge.desk.base import DeskLedgerBase
from edge.desk.errors import DeskError, DeskReason
from edge.desk.fees import fee_state
from edge.desk.statuses import RESULT_READY
from edge.domain import PortalStatus
from edge.records import COMPLETE

PAPER_RETURNED = (int(PortalStatus.KHONG_DUOC_TIEP_NHAN), int(PortalStatus.DUNG_XU_LY))
"""Central statuses after which the citizen takes the paper back instead of a result."""


class Handover(DeskLedgerBase):
    def hand_back(self, dossier_id: str, receiver: str, receiver_id: str) -> None:
        """The result, or the paper of a dossier the agency refused or stopped, left the
        counter: who took it and which ID paper they showed.

        A fee left for the hand-back (``after``) must be collected first
        (``collect_fee``): raises DeskError ``fee_unpaid`` with its ``amount`` until then.
        Paper returned because the agency did not accept the dossier (status 3) or stopped
        processing it (8) owes no fee for a result that never came.
        """
        row = self._dossier(dossier_id)
        if row["handed_back_at"]:
            raise DeskError(DeskReason.ALREADY_HANDED_BACK)
        returned = row["central_status"] in PAPER_RETURNED
        if row["central_status"] != RESULT_READY and not returned:
            raise DeskError(DeskReason.NO_RESULT)
        if not returned:
            self._fee_settled(dossier_id)
        receiver = text.nfc(receiver)
        receiver_id = text.nfc(receiver_id)
        if not receiver or not any(ch.isalpha() for ch in receiver):
            raise DeskError(DeskReason.MISSING, field="receiver")
        if len(receiver_id) < 6:
            raise DeskError(DeskReason.MISSING, field="receiver_id")
        with self.store.transaction():
            if not returned:
                self._fee_settled(dossier_id)  # again, inside: the fee may have changed
            at = iso(self.store.time_ms())
            self.store.update_dossier(dossier_id, handed_back_at=at)
            payload = {"receiver": receiver, "receiver_id": receiver_id, "clerk": self.clerk}
            if returned:
                payload["status"] = row["central_status"]
            self.record(
                dossier_id, "dossier.handed_back" if returned else "result.handed_back", payload
            )

    def _fee_settled(self, dossier_id: str) -> None:
        fee = fee_state(self.store, dossier_id)
        if fee is not None and fee.due_at_hand_back:
            raise DeskError(DeskReason.FEE_UNPAID, amount=fee.amount)

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
