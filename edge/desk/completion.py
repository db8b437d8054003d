"""Completion: the dossier is ready for the agency; and reopening it before the paper leaves."""

from __future__ import annotations

from edge.clock import iso
from edge.desk.base import DeskLedgerBase
from edge.desk.details import missing_fields
from edge.desk.errors import DeskError, DeskReason
from edge.desk.statuses import MERGED
from edge.records import COMPLETE, WAITING_DETAILS


class Completion(DeskLedgerBase):
    def complete(self, dossier_id: str) -> None:
        """Ready for the agency: the code, the procedure and who filed it are known.

        Every missing field is named at once (``details["fields"]``); ``field`` is the
        first, where the form puts the cursor.
        """
        row = self._editable(dossier_id)
        values = dict(self.reader.fields(dossier_id))
        values.update(code=row["code"] or "", procedure=row["procedure_code"] or "")
        missing = missing_fields(values)
        if missing:
            raise DeskError(DeskReason.MISSING, field=missing[0], fields=missing)
        if not self.store.pages(dossier_id):
            raise DeskError(DeskReason.NO_PAGES)
        with self.store.transaction():
            at = iso(self.store.time_ms())
            self.store.update_dossier(dossier_id, status=COMPLETE, completed_at=at)
            self.record(dossier_id, "dossier.completed", {"clerk": self.clerk})
            self.store.delete_draft(dossier_id)

    def reopen(self, dossier_id: str) -> None:
        """A completed dossier goes back to the form, while its paper is still here.

        A mistake noticed after F9 (a digit of the CCCD, the wrong procedure) is fixed
        here rather than at the agency. Once the paper went back (``handed_over_on``),
        the agency holds the dossier and the box no longer changes it. The event
        names the clerk: reopening is audited like every change.
        """
        row = self._dossier(dossier_id)
        if row["status"] == MERGED:
            raise DeskError(DeskReason.DOSSIER_MERGED)
        if row["status"] != COMPLETE:
            raise DeskError(DeskReason.NOT_COMPLETE)
        if row["handed_over_on"]:
            raise DeskError(DeskReason.ALREADY_HANDED_OVER)
        with self.store.transaction():
            self.store.update_dossier(dossier_id, status=WAITING_DETAILS, completed_at=None)
            self.record(
                dossier_id,
                "dossier.reopened",
                {"completed_at": row["completed_at"], "clerk": self.clerk},
            )
