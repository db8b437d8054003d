"""Reading sealed dossier data for the signed-in clerk: drafts, the form, covers, search."""

from __future__ import annotations

from datetime import date
from typing import Any

from edge.desk.errors import DeskError, DeskReason
from edge.desk.search import Search
from edge.desk.tasks import TaskReading
from edge.vault import VaultError, field_ad, json_object


class DeskReader(Search, TaskReading):
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

    def cover_pages(self, dossier_id: str) -> set[str]:
        """The pages of a dossier that capture opened a dossier on by the code read there.

        Capture keeps no symbol for a code it confirmed (the code is the dossier's), so
        the cover is found in the log: the first ``page.added`` of a dossier whose
        ``dossier.created`` carried a code, for this dossier and those merged into it.
        A cover whose symbol was kept (a portal URL, one the clerk checked) is seen in
        ``page_symbols``; a rescan's cover joining a known dossier is in neither.
        """
        found: set[str] = set()
        origins, seen = [dossier_id], {dossier_id}
        while origins:
            origin = origins.pop()
            for merged in self.store.merged_sources(origin):
                if merged not in seen:
                    seen.add(merged)
                    origins.append(merged)
            created = self.store.first_event(origin, "dossier.created")
            first = self.store.first_event(origin, "page.added")
            if created is None or first is None:
                continue
            try:
                if self.event_payload(created).get("code"):
                    found.add(str(self.event_payload(first).get("page")))
            except VaultError:
                continue
        return found

    def documents(self, dossier_id: str, catalogue: Any = None) -> list[dict[str, Any]]:
        """The dossier's papers (thành phần hồ sơ) as its pages are tagged, in catalogue order.

        For each document the dossier's procedure requires, in the catalogue's order: one
        ``{"name", "kind", "pages"}`` per kind it is tagged with (``kind`` is "original",
        "certified_copy", "copy" or "electronic"; ``pages`` the page numbers, ascending),
        or, when no page carries it, one with ``"pages": []`` and the kind the catalogue
        asks for (original if it asks for one, else copy). Tags naming a document the
        catalogue does not list (the procedure was changed, an update renamed it) follow,
        by their first page. Deleted pages count for nothing. ``catalogue`` defaults to
        the one the box uses now (``edge.catalogue.load``).
        """
        if catalogue is None:
            from edge.catalogue import load as load_catalogue

            catalogue = load_catalogue(self.store.path.parent, self.store)
        row = self.store.dossier(dossier_id)
        if row is None:
            raise DeskError(DeskReason.DOSSIER_MISSING)
        procedure = catalogue.get(row["procedure_code"]) if row["procedure_code"] else None
        required = list(procedure.documents) if procedure is not None else []
        kinds = ("original", "certified_copy", "copy", "electronic")
        tagged: dict[str, dict[str, list[int]]] = {}
        for page in self.store.pages(dossier_id):
            if page["document"] and page["document_kind"] in kinds:
                by_kind = tagged.setdefault(str(page["document"]), {})
                by_kind.setdefault(str(page["document_kind"]), []).append(int(page["position"]))
        out: list[dict[str, Any]] = []
        for document in required:
            if document.name not in tagged:
                kind = "original" if document.originals or not document.copies else "copy"
                out.append({"name": document.name, "kind": kind, "pages": []})
                continue
            by_kind = tagged.pop(document.name)
            for kind in kinds:
                if kind in by_kind:
                    out.append({"name": document.name, "kind": kind, "pages": by_kind[kind]})
        extra = sorted(
            (
                (pages, name, kind)
                for name, by_kind in tagged.items()
                for kind, pages in by_kind.items()
            ),
            key=lambda found: found[0][0],
        )
        return out + [{"name": name, "kind": kind, "pages": pages} for pages, name, kind in extra]

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

    def last_central_status(self, dossier_id: str) -> dict[str, Any] | None:
        """Central's last word on a dossier (its ``central.status`` event), or None.

        ``status`` (the portal's 1-10) and ``note`` as the agency wrote it; 6 asks the
        citizen to pay (nghĩa vụ tài chính), which the fee dialog shows. The event is
        sealed, so this needs the signed-in clerk.
        """
        event = self.store.last_event(dossier_id, "central.status")
        if event is None:
            return None
        try:
            payload = self.event_payload(event)
        except VaultError:
            return None
        status = payload.get("status")
        if isinstance(status, bool) or not isinstance(status, int):
            return None
        return {"status": status, "note": str(payload.get("note") or "")}
