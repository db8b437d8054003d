"""A thief copies the state folder: nothing personal and no page can be read from it.

The test captures pages in every format, quarantines a file whose content is
known, types a citizen's details through the clerk's path, then copies the
state folder as a thief would (database, WAL, keyring, everything) while the
database is still open, and searches every byte for what must not be there.
"""

from __future__ import annotations

import io
import shutil
import unicodedata
from pathlib import Path

from PIL import Image

from edge import samples, text
from edge.daemon import Daemon
from edge.desk.search import Search
from edge.records import Ledger, Reader
from edge.samples import DossierSpec
from edge.store import Store
from edge.vault import Keyring
from tests.conftest import PASSWORD

PERSON = {
    "full_name": "Nguyễn Văn Đức",
    "cccd": "036085012345",
    "phone": "0912345678",
    "address": "Thôn Đông Hải, xã Hải Hậu, tỉnh Nam Định",
}
SECRET_NOTE = "Ghi chú mật: Trần Thị Bích Hằng, số CCCD 001190023456"


def _needles(originals: list[bytes]) -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    for value in PERSON.values():
        needles[value] = value.encode("utf-8")
        needles[value + " (NFD)"] = unicodedata.normalize("NFD", value).encode("utf-8")
        needles[value + " (folded)"] = text.fold(value).encode("utf-8")
        needles[value + " (utf-16)"] = value.encode("utf-16-le")
    needles["quarantined note"] = "Trần Thị Bích Hằng".encode()
    needles["quarantined cccd"] = b"001190023456"
    for n, data in enumerate(originals):
        needles[f"file {n} header"] = data[:16]
        middle = len(data) // 2
        needles[f"file {n} content"] = data[middle : middle + 48]
    needles["jpeg/jfif"] = b"\xff\xd8\xff\xe0\x00\x10JFIF"
    needles["png"] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    needles["pdf"] = b"%PDF-1."
    return needles


def test_a_copied_state_folder_reveals_nothing(state: Path, inbox: Path, tmp_path: Path) -> None:
    codes = samples.sample_codes(4, seed=21)
    originals: list[bytes] = []
    jpeg = samples.write_job(inbox, [DossierSpec(codes[0], 1)], "jpeg", seed=21, dpi=150)
    png = samples.write_job(inbox / "job", [DossierSpec(codes[1], 0)], "png", seed=22, dpi=100)
    pdf = samples.write_job(inbox, [DossierSpec(codes[2], 1)], "pdf", seed=23, dpi=150)
    raw_page = Image.new("RGB", (800, 1100), (250, 250, 250))
    for y in range(0, 1100, 7):
        raw_page.paste((y % 251, 40, 90), (50, y, 750, y + 2))
    buf = io.BytesIO()
    raw_page.save(buf, "TIFF", dpi=(100, 100))
    (inbox / "raw.tif").write_bytes(buf.getvalue())
    (inbox / "ghi-chu.jpg").write_text(SECRET_NOTE, encoding="utf-8")
    for path in [*jpeg.paths, *png.paths, *pdf.paths, inbox / "raw.tif"]:
        originals.append(path.read_bytes())
    raw_pixels = raw_page.tobytes()
    originals.append(raw_pixels[len(raw_pixels) // 3 : len(raw_pixels) // 3 + 4096])

    daemon = Daemon(state, inbox, {"settle_seconds": 0})
    report = daemon.run_once().as_json()
    daemon.close()
    assert report["quarantined"][0]["reason"] == "not_an_image"

    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    ledger = Ledger(store, Keyring.load(state).sealer())
    dossier = store.dossier_by_code(codes[0])
    with store.transaction():
        ledger.set_fields(session, dossier["id"], PERSON)
    # the clerk can read it all back
    reader = Reader(store, session)
    assert reader.fields(dossier["id"])["full_name"] == PERSON["full_name"]
    search = Search(store, session)
    for query in ("nguyen van duc", "036085012345", "012345"):  # name, CCCD, its end
        assert [f.dossier_id for f in search.find(query).rows] == [dossier["id"]], query
    q = store.list_quarantine()[0]
    assert reader.quarantined_bytes(q["id"]).decode("utf-8") == SECRET_NOTE

    stolen = tmp_path / "stolen"
    shutil.copytree(state, stolen)
    session.close()
    store.close()

    haystacks = {p: p.read_bytes() for p in stolen.rglob("*") if p.is_file()}
    assert any(p.name == "edge.db-wal" or p.name == "edge.db" for p in haystacks)
    for label, needle in _needles(originals).items():
        assert len(needle) >= 7, label
        for path, data in haystacks.items():
            assert needle not in data, f"{label} found in {path.name}"
