"""Pages between dossiers: reorder, split where a missed cover starts, merge; and one page
turned (``page.rotated``), deleted (``page.deleted``) or restored (``page.restored``).

A page's ciphertext is bound to its dossier by the associated data, so a moved
page is opened with the unlocked office and sealed again for its new dossier,
as a new content-addressed blob; ``page.moved`` names the new blob and the one
it replaces. The old blob stays (events not yet synced name it) until
retention purges it.

Turning and deleting never touch the sealed scan. A rotation is how the page is
shown; a deleted page leaves the dossier's list, its page count and its exports, but
keeps its row and its blob (until retention) and can be restored by any clerk: a
slip of a key must never lose a citizen's page. The pages left are numbered 1 to n
again, so page numbers mean the same on screen, on the handover list and in exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.clock import iso
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
        """Re-seal a page under the target dossier's key (inside the caller's transaction).

        A page whose bytes retention already removed cannot be re-sealed: only central
        holds them, so it stays where it is (the whole move is refused, nothing half done).
        """
        if page["purged_at"] is not None:
            raise DeskError(DeskReason.PAGE_PURGED)
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
            # the re-sealed page is a new blob: it travels with this event, as a captured
            # page's blob travels with page.added, or central never receives it
            blobs=[blob_id],
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
        # deleted pages go along, still deleted: restorable where the others are now
        after = position + len(pages)
        for offset, page in enumerate(self.store.deleted_pages(source_id)):
            self._move_page(page, target_id, after + offset)
        self.store.update_dossier(source_id, status=MERGED, merged_into=target_id, needs_review=0)
        self.store.replace_blind_terms(source_id, ())
        self.record(
            source_id,
            "dossier.merged",
            {"into": target_id, "pages": [p["id"] for p in pages], "clerk": self.clerk},
        )
        self.store.delete_draft(source_id)

    # -- one page: turned, deleted, restored -------------------------------------------------

    def _page_of(self, dossier_id: str, page_id: str) -> Any:
        """The page, if it is (still) in this dossier: another desk may have moved it."""
        page = self.store.page(page_id)
        if page is None or page["dossier_id"] != dossier_id:
            raise DeskError(DeskReason.PAGES_CHANGED)
        return page

    def _live_page(self, dossier_id: str, page_id: str) -> Any:
        page = self._page_of(dossier_id, page_id)
        if page["deleted_at"] is not None:
            raise DeskError(DeskReason.PAGE_DELETED)
        return page

    def rotate_page(self, dossier_id: str, page_id: str, degrees: int = 90) -> int:
        """Show a page turned by ``degrees`` clockwise (a multiple of 90); its new rotation.

        The sealed scan stays exactly as captured: ``page.rotated`` records the rotation
        the page is shown at from now on (``degrees``, 0, 90, 180 or 270 clockwise) and
        the turn that led there (``by``).
        """
        if degrees % 90:
            raise ValueError(f"pages turn by quarter turns, not {degrees} degrees")
        self._editable(dossier_id)
        page = self._live_page(dossier_id, page_id)
        rotation = (int(page["rotation"] or 0) + degrees) % 360
        if rotation == int(page["rotation"] or 0):
            return rotation
        with self.store.transaction():
            self.store.set_page_rotation(page_id, rotation)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "page.rotated",
                {"page": page_id, "degrees": rotation, "by": degrees % 360, "clerk": self.clerk},
            )
        return rotation

    def delete_page(self, dossier_id: str, page_id: str) -> None:
        """Take a page out of the dossier; its sealed scan is kept until retention.

        The page leaves the list, the page count, the handover list and exports; the
        pages after it move up one. ``page.deleted`` names the clerk and where the page
        was, and ``restore_page`` puts it back there.
        """
        self._editable(dossier_id)
        page = self._live_page(dossier_id, page_id)
        with self.store.transaction():
            self.store.set_page_deleted(page_id, iso(self.store.time_ms()), self.clerk)
            self._renumber(dossier_id)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "page.deleted",
                {"page": page_id, "position": int(page["position"]), "clerk": self.clerk},
            )

    def restore_page(self, dossier_id: str, page_id: str) -> int:
        """A deleted page back where it was (or at the end, if fewer pages are left); its number."""
        self._editable(dossier_id)
        page = self._page_of(dossier_id, page_id)
        if page["deleted_at"] is None:
            raise DeskError(DeskReason.PAGES_CHANGED)
        live = [p["id"] for p in self.store.pages(dossier_id)]
        position = max(1, min(int(page["position"]), len(live) + 1))
        live.insert(position - 1, page_id)
        with self.store.transaction():
            self.store.set_page_deleted(page_id, None, None)
            for number, each in enumerate(live, 1):
                self.store.set_page_position(each, number)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "page.restored",
                {"page": page_id, "position": position, "clerk": self.clerk},
            )
        return position
