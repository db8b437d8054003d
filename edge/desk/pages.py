"""Pages between dossiers: reorder, split where a missed cover starts, merge.

A page's ciphertext is bound to its dossier by the associated data, so a moved
page is opened with the unlocked office and sealed again for its new dossier,
as a new content-addressed blob; ``page.moved`` names the new blob and the one
it replaces. The old blob stays (events not yet synced name it) until
retention purges it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.desk.base import DeskLedgerBase
from edge.desk.errors import DeskError, DeskReason
from edge.desk.statuses import MERGED
from edge.vault import ciphertext_id, field_ad, page_ad


class PageMoves(DeskLedgerBase):
    def reorder(self, dossier_id: str, page_ids: Sequence[str]) -> None:
        self._editable(dossier_id)
        current = [p["id"] for p in self.store.pages(dossier_id)]
        if sorted(current) != sorted(page_ids):
            raise DeskError(DeskReason.PAGES_CHANGED)
        if list(page_ids) == current:
            return
        with self.store.transaction():
            for position, page_id in enumerate(page_ids, 1):
                self.store.set_page_position(page_id, position)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id, "pages.reordered", {"order": list(page_ids), "clerk": self.clerk}
            )

    def _move_page(self, page: Any, target_id: str, position: int) -> None:
        """Re-seal a page under the target dossier's key (inside the caller's transaction)."""
        data = self.reader.page_bytes(page)
        key = self._key(target_id)
        sealed = self.sealer.seal(key, data, page_ad(target_id, page["id"]))
        blob_id = ciphertext_id(sealed)
        self.store.put_blob(blob_id, sealed)
        attrs = None
        if page["attrs"] is not None:
            symbols = self.session.open_json(
                self.reader.key(page["key_id"]),
                bytes(page["attrs"]),
                field_ad(page["dossier_id"], f"symbols:{page['id']}"),
            )
            attrs = self.sealer.seal_json(
                key, symbols, field_ad(target_id, f"symbols:{page['id']}")
            )
        self.store.move_page(
            page["id"],
            dossier_id=target_id,
            position=position,
            blob_id=blob_id,
            key_id=key.key_id,
            attrs=attrs,
        )
        self.record(
            target_id,
            "page.moved",
            {
                "page": page["id"],
                "from": page["dossier_id"],
                "position": position,
                "blob": blob_id,
                "replaces_blob": page["blob_id"],
                "clerk": self.clerk,
            },
        )

    def _renumber(self, dossier_id: str) -> None:
        for position, page in enumerate(self.store.pages(dossier_id), 1):
            self.store.set_page_position(page["id"], position)

    def split(self, dossier_id: str, first_page_id: str) -> str:
        """Pages from ``first_page_id`` on become a new, unassigned dossier.

        For the cover sheet that capture missed: the clerk cuts the dossier where
        the second one starts, then gives it its code.
        """
        self._editable(dossier_id)
        pages = self.store.pages(dossier_id)
        ids = [p["id"] for p in pages]
        if first_page_id not in ids:
            raise DeskError(DeskReason.PAGES_CHANGED)
        start = ids.index(first_page_id)
        if start == 0:
            raise DeskError(DeskReason.SPLIT_FIRST_PAGE)
        with self.store.transaction():
            new_id = self.create_dossier(None)
            for position, page in enumerate(pages[start:], 1):
                self._move_page(page, new_id, position)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "dossier.split",
                {"new": new_id, "pages": ids[start:], "clerk": self.clerk},
            )
        return new_id

    def merge(self, source_id: str, target_id: str) -> None:
        """All pages of ``source_id`` go to the end of ``target_id``; the source is kept."""
        if source_id == target_id:
            raise DeskError(DeskReason.SAME_DOSSIER)
        self._editable(source_id)
        target = self._merge_target(target_id)
        with self.store.transaction():
            self._merge(source_id, target["id"])

    def _merge_target(self, target_id: str) -> Any:
        """A dossier pages may join: any that is not itself merged away.

        A completed dossier takes pages too, as capture adds a rescan to a known code:
        pages split off by mistake must be able to go back where they came from. The
        errors name the target, so the clerk is not told the dossier in hand is at fault.
        """
        target = self.store.dossier(target_id)
        if target is None:
            raise DeskError(DeskReason.TARGET_MISSING)
        if target["status"] == MERGED:
            raise DeskError(DeskReason.TARGET_MERGED, code=target["code"] or "")
        return target

    def _merge(self, source_id: str, target_id: str) -> None:
        """The body of ``merge``, inside the caller's transaction."""
        pages = self.store.pages(source_id)
        position = self.store.next_position(target_id)
        for offset, page in enumerate(pages):
            self._move_page(page, target_id, position + offset)
        self.store.update_dossier(source_id, status=MERGED, merged_into=target_id, needs_review=0)
        self.store.replace_blind_terms(source_id, ())
        self.record(
            source_id,
            "dossier.merged",
            {"into": target_id, "pages": [p["id"] for p in pages], "clerk": self.clerk},
        )
        self.store.delete_draft(source_id)
