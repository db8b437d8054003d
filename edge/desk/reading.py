"""Reading sealed dossier data for the signed-in clerk: drafts, the form, covers, search."""

from __future__ import annotations

from datetime import date
from typing import Any

from edge.desk.errors import DeskError, DeskReason
from edge.desk.search import Search
from edge.vault import VaultError, field_ad, json_object


class DeskReader(Search):
    """Reads sealed dossier data for the signed-in clerk."""

    def forget(self) -> None:
        """Drop the opened data keys (at lock and sign-out)."""
        self._keys.clear()

    def draft(self, dossier_id: str) -> dict[str, Any] | None:
        row = self.store.draft(dossier_id)
        if row is None:
            return None
        try:
            values = json_object(
                self.session.open_json(
                    self.key(row["key_id"]), bytes(row["payload"]), field_ad(dossier_id, "draft")
                )
            )
        except VaultError:
            return None
        return {"values": values, "clerk": row["clerk"], "updated": row["updated"]}

    def details(self, dossier_id: str) -> dict[str, str]:
        """The form's saved values: sealed personal fields plus procedure and appointment."""
        row = self.store.dossier(dossier_id)
        if row is None:
            raise DeskError(DeskReason.DOSSIER_MISSING)
        values = {k: str(v) for k, v in self.fields(dossier_id).items()}
        if not values.get("full_name"):
            values["full_name"] = " ".join(
                values.get(k, "") for k in ("family", "middle", "given") if values.get(k)
            )
        values["procedure"] = row["procedure_code"] or ""
        values["appointment"] = row["appointment"] or ""
        values["code"] = row["code"] or ""
        return values

    def review(self, dossier_id: str) -> dict[str, Any] | None:
        """What capture saw on a cover it could not confirm, or None (issue 10).

        The candidates travel sealed in the dossier's ``dossier.created`` event (they
        can be a portal URL carrying a citizen's ID number): ``review`` (text,
        symbology, code, alternatives, why, personal) and ``follows``.
        """
        event = self.store.first_event(dossier_id, "dossier.created")
        if event is None:
            return None
        try:
            payload = self.event_payload(event)
        except VaultError:
            return None
        if not payload.get("needs_review"):
            return None
        return payload

    def page_symbols(self, page: Any) -> list[dict[str, Any]]:
        """The symbols capture read on a page (sealed with it): text, symbology, kind, ..."""
        if page["attrs"] is None:
            return []
        try:
            value = self.session.open_json(
                self.key(page["key_id"]),
                bytes(page["attrs"]),
                field_ad(page["dossier_id"], f"symbols:{page['id']}"),
            )
        except VaultError:
            return []
        if not isinstance(value, list):
            return []
        return [dict(item) for item in value if isinstance(item, dict)]

    def handovers(self, on: date) -> list[list[str]]:
        """The batches of paper handed over on ``on``, oldest first: each a list of dossier ids.

        A date may see several handovers (the agency's courier comes twice); each one's
        list must name exactly its own dossiers, and its batch number tells them apart.
        The events are sealed, so this needs the signed-in clerk.
        """
        batches = []
        for event in self.store.events_of_type("handover.recorded"):
            try:
                payload = self.event_payload(event)
            except VaultError:
                continue
            if payload.get("date") == on.isoformat():
                batches.append([str(d) for d in payload.get("dossiers", [])])
        return batches
