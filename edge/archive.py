"""Exporting a dossier as a BagIt bag (RFC 8493) that any archive can validate.

The bag is built from an ``ExportDossier``, so the box (opening pages with a
clerk's session) and central (opening them with its recipient key) write the
same bag. The bag holds one PDF of every page at its original resolution and 100% scale
(Decree 30/2020: PDF 1.4 or later), the page files exactly as scanned, and a
``dossier.json`` describing them. JPEG pages are embedded in the PDF as they
are (no re-encoding); PDF pages are imported with their own content.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import bagit
import pypdfium2 as pdfium
from PIL import Image

from edge import __version__
from edge.records import Reader
from edge.store import Store, StoreError
from edge.vault import OfficeSession

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "application/pdf": "pdf",
}
DEFAULT_DPI = 300.0


def find_dossier(store: Store, ident: str) -> Any:
    row = store.dossier(ident) or store.dossier_by_code(ident.strip().upper())
    if row is None:
        raise StoreError(f"no dossier {ident!r} on this box: see 'edge dossiers'")
    return row


def _add_page(pdf: pdfium.PdfDocument, data: bytes, media_type: str, dpi: float | None) -> None:
    if media_type == "application/pdf":
        source = pdfium.PdfDocument(data)
        try:
            pdf.import_pages(source)
        finally:
            source.close()
        return
    dpi = dpi or DEFAULT_DPI
    with Image.open(io.BytesIO(data)) as probe:
        width_px, height_px = probe.size
        mode = probe.mode
        bitmap_source = (
            None
            if media_type == "image/jpeg"
            else probe.convert("RGB" if mode not in ("L", "1") else "L")
        )
    width, height = width_px / dpi * 72, height_px / dpi * 72
    page = pdf.new_page(width, height)
    image = pdfium.PdfImage.new(pdf)
    if bitmap_source is None:
        image.load_jpeg(io.BytesIO(data), inline=False, autoclose=True)
    else:
        image.set_bitmap(pdfium.PdfBitmap.from_pil(bitmap_source))
    image.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(image)
    page.gen_content()
    page.close()


@dataclass(frozen=True)
class ExportPage:
    """One page as a bag needs it; ``read`` decrypts it only when the bag is written."""

    position: int
    media_type: str
    width: int | None
    height: int | None
    dpi: float | None
    flags: list[str]
    read: Callable[[], bytes]


@dataclass(frozen=True)
class ExportDossier:
    """Everything a bag says about a dossier, whoever decrypted it (box or central)."""

    id: str
    code: str | None
    status: str
    received_at: str
    fields: dict[str, Any]
    pages: list[ExportPage]
    organization: str


def box_dossier(store: Store, session: OfficeSession, ident: str) -> ExportDossier:
    """The box's view: pages from its tables, opened with the clerk's session."""
    dossier = find_dossier(store, ident)
    reader = Reader(store, session)
    pages = [
        ExportPage(
            position=page["position"],
            media_type=page["media_type"],
            width=page["width"],
            height=page["height"],
            dpi=page["dpi"],
            flags=json.loads(page["flags"]),
            read=partial(reader.page_bytes, page),
        )
        for page in store.pages(dossier["id"])
    ]
    return ExportDossier(
        id=dossier["id"],
        code=dossier["code"],
        status=dossier["status"],
        received_at=dossier["received_at"],
        fields=reader.fields(dossier["id"]),
        pages=pages,
        organization=store.meta("office") or "Commune Edge",
    )


def export_bag(store: Store, session: OfficeSession, ident: str, out: Path) -> Path:
    """Decrypt one dossier into a new bag folder under ``out``; returns the bag's path."""
    return write_bag(box_dossier(store, session, ident), out)


def write_bag(dossier: ExportDossier, out: Path) -> Path:
    """Write the bag; the same code serves ``edge export`` and ``edge central export``."""
    pages = sorted(dossier.pages, key=lambda p: p.position)
    name = dossier.code or dossier.id
    bag_dir = out / name
    if bag_dir.exists():
        raise StoreError(f"{bag_dir} exists already: choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    # A bag holds a citizen's pages and details in clear: only its owner may read it
    # (exports used to be world-readable, 0644, on a shared machine or stick).
    work.mkdir(mode=0o700)
    (work / "pages").mkdir(mode=0o700)
    pdf = pdfium.PdfDocument.new()
    listing = []
    for page in pages:
        data = page.read()
        filename = f"pages/{page.position:04d}.{EXTENSIONS.get(page.media_type, 'bin')}"
        (work / filename).write_bytes(data)
        _add_page(pdf, data, page.media_type, page.dpi)
        listing.append(
            {
                "file": filename,
                "position": page.position,
                "media_type": page.media_type,
                "width": page.width,
                "height": page.height,
                "dpi": page.dpi,
                "flags": page.flags,
            }
        )
    with open(work / "dossier.pdf", "wb") as fh:
        pdf.save(fh, version=17)
    pdf.close()
    description = {
        "id": dossier.id,
        "code": dossier.code,
        "status": dossier.status,
        "received_at": dossier.received_at,
        "fields": dossier.fields,
        "pages": listing,
    }
    (work / "dossier.json").write_text(
        json.dumps(description, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    bagit.make_bag(
        str(work),
        bag_info={
            "Source-Organization": dossier.organization,
            "External-Identifier": name,
            "External-Description": f"Dossier {name}, {len(pages)} page(s)",
            "Bag-Software-Agent": f"commune-edge {__version__}",
        },
        checksums=["sha256"],
    )
    _owner_only(work)
    work.rename(bag_dir)
    return bag_dir


def _owner_only(root: Path) -> None:
    """Folders 0700 and files 0600 under ``root`` (bagit writes its files with the umask)."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)
