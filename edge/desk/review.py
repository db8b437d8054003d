"""Boundaries capture was not sure of (issue 10): the clerk says "new dossier" or "same as before".

Each decision is a sealed ``dossier.reviewed`` event that syncs like every other change.
"""

from __future__ import annotations

from typing import Any

from edge.desk.errors import DeskError, DeskReason
from edge.desk.pages import PageMoves
from edge.desk.statuses import MERGED
from edge.records import UNASSIGNED, WAITING_DETAILS


class Review(PageMoves):
    def _under_review(self, dossier_id: str) -> Any:
        row = self._editable(dossier_id)
        if not row["needs_review"]:
            raise DeskError(DeskReason.REVIEW_DONE)
        return row

    def confirm_new_dossier(self, dossier_id: str, code: str, patterns: Any) -> str:
        """The clerk said "a new dossier", typing or confirming the code on the cover.

        A code the box already knows means the pages continue that dossier (a second
        part, a rescan), exactly as capture files a confirmed code it knows; the id of
        the dossier that now holds the pages is returned.
        """
        row = self._under_review(dossier_id)
        normal = patterns.match(code)
        if normal is None:
            raise DeskError(DeskReason.CODE_INVALID, field="code")
        other = self.store.dossier_by_code(normal)
        if other is not None and other["id"] != dossier_id:
            target = self._editable(other["id"])
            with self.store.transaction():
                self.record(
                    dossier_id,
                    "dossier.reviewed",
                    {"decision": "known_code", "code": normal, "into": target["id"],
                     "clerk": self.clerk},
                )  # fmt: skip
                self._merge(dossier_id, target["id"])
            return str(target["id"])
        status = WAITING_DETAILS if row["status"] == UNASSIGNED else row["status"]
        with self.store.transaction():
            self.store.update_dossier(dossier_id, code=normal, status=status, needs_review=0)
            self.record(
                dossier_id,
                "dossier.reviewed",
                {"decision": "new", "code": normal, "clerk": self.clerk},
            )
        return dossier_id

    def join_previous(self, dossier_id: str) -> str:
        """The clerk said "same as before": not a cover; its pages go back where they belong.

        "Before" is the dossier that was open in the same scan job when capture met
        the page (followed through any merge since); the id of the dossier that now
        holds the pages is returned.
        """
        row = self._under_review(dossier_id)
        target_id = row["follows"]
        seen = {dossier_id}
        while target_id is not None and target_id not in seen:
            seen.add(target_id)
            target = self._dossier(target_id)
            if target["status"] != MERGED:
                break
            target_id = target["merged_into"]
        if target_id is None or target_id == dossier_id:
            raise DeskError(DeskReason.REVIEW_NO_PREVIOUS)
        target = self._editable(target_id)
        with self.store.transaction():
            self.record(
                dossier_id,
                "dossier.reviewed",
                {"decision": "previous", "into": target["id"], "clerk": self.clerk},
            )
            self._merge(dossier_id, target["id"])
        return str(target["id"])
