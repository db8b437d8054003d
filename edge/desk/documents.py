"""Which required document (thành phần hồ sơ) each page is, and in what form it was given.

The clerk tags a page, or a run of pages, with one of the documents the dossier's
procedure asks for (the catalogue's ``Procedure.documents``) and how the citizen gave
it: the original (bản chính), a certified copy (bản sao có chứng thực), a plain copy
(bản sao) or an electronic copy (bản điện tử). The handover list of Circular
17/2017/TT-BTTTT names each dossier's documents with originals and copies from these
tags (``DeskReader.documents``). Each tagging is one ``page.tagged`` event naming the
pages, the document, its kind and the clerk; the ``pages`` table keeps the projection
(``document``, ``document_kind``).

The ledger takes the document's name as the catalogue wrote it; the dossier screen
offers only the procedure's own documents. A name the catalogue stops listing (an
update renamed it, the procedure was changed) stays on its pages and in the list.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge import text
from edge.desk.base import DeskLedgerBase
from edge.desk.errors import DeskError, DeskReason

KINDS = ("original", "certified_copy", "copy", "electronic")
"""How a document was given, in the order the handover list and the dialog name them."""
MAX_DOCUMENT = 400
"""The longest document name the catalogue accepts (``edge.catalogue.MAX_TEXT``)."""


def clean_document(name: str) -> str:
    """A document's name as it is stored: NFC, one line, no control characters."""
    name = " ".join(text.nfc(name).split())
    if not name or len(name) > MAX_DOCUMENT or not name.isprintable():
        raise DeskError(DeskReason.DOCUMENT_INVALID)
    return name


class DocumentTags(DeskLedgerBase):
    def tag_pages(
        self,
        dossier_id: str,
        page_ids: Sequence[str],
        document: str | None,
        kind: str | None = None,
    ) -> None:
        """Tag pages with the document they belong to and its kind; None clears their tag.

        All pages must be live pages of the dossier, and the dossier open to changes.
        Pages already tagged exactly so are left as they are; if all are, nothing is
        recorded.
        """
        self._editable(dossier_id)
        if not page_ids:
            raise DeskError(DeskReason.PAGES_CHANGED)
        if document is None:
            name, how = None, None
        else:
            name = clean_document(document)
            if kind not in KINDS:
                raise DeskError(DeskReason.DOCUMENT_INVALID)
            how = kind
        pages = []
        for page_id in dict.fromkeys(page_ids):
            page = self.store.page(page_id)
            if page is None or page["dossier_id"] != dossier_id:
                raise DeskError(DeskReason.PAGES_CHANGED)
            if page["deleted_at"] is not None:
                raise DeskError(DeskReason.PAGE_DELETED)
            pages.append(page)
        changed = [p["id"] for p in pages if (p["document"], p["document_kind"]) != (name, how)]
        if not changed:
            return
        with self.store.transaction():
            for page_id in changed:
                self.store.set_page_document(page_id, name, how)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "page.tagged",
                {"pages": changed, "document": name, "kind": how, "clerk": self.clerk},
            )
