"""The synthetic scans must be faithful enough that capture tests passing on them mean something:
right sizes and resolutions on disk, readable symbols, consistent citizens, and fast enough for
the benchmark to generate its thousand pages."""

from __future__ import annotations

import io
import re
import statistics
import time
import unicodedata
from datetime import date
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from edge import samples
from edge.samples import DossierSpec

CODE = "000.00.01.H29-240115-0001"

STYLE_PATTERNS = {
    "agency4": re.compile(r"^000\.\d{2}\.\d{2}\.H\d{2}-(\d{6})-(\d{4})$"),
    "agency3": re.compile(r"^\d{2}\.\d{2}\.H\d{2}-(\d{6})-(\d{4})$"),
    "province_first": re.compile(r"^H\d{2}\.\d{2}\.\d{2}-(\d{6})-(\d{4})$"),
    "extended": re.compile(r"^G\d{2}\.\d{2}-(\d{8})-(\d{7})$"),
}


def _ink_fraction(image: Image.Image) -> float:
    return float((np.asarray(image.convert("L")) < 128).mean())


def _decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image)


def _glyph(font: samples.Font, text: str) -> np.ndarray:
    canvas = Image.new("L", (120, 120), 0)
    ImageDraw.Draw(canvas).text((20, 20), text, font=font, fill=255)
    return np.asarray(canvas)


def _dejavu_present() -> bool:
    return any(Path(p).is_file() for p in samples.FONT_PATHS)


def test_a4_pixel_sizes() -> None:
    assert samples.a4() == (2480, 3508)
    assert samples.a4(200) == (1654, 2339)
    assert samples.a4(150) == (1240, 1754)


@pytest.mark.parametrize("dpi", [150, 200, 300])
def test_pages_have_a4_size_at_every_resolution(dpi: int) -> None:
    size = samples.a4(dpi)
    assert samples.text_page(1, dpi).size == size
    assert samples.cover_page(CODE, 1, dpi).size == size
    assert samples.blank_page(1, dpi, bleed=True).size == size
    assert samples.separator_page(CODE, dpi).size == size


def test_pages_are_deterministic_per_seed() -> None:
    first = samples.text_page(7).tobytes()
    samples.text_page(8)
    samples.cover_page(CODE, 3, symbology="code128")
    assert samples.text_page(7).tobytes() == first
    assert samples.text_page(8).tobytes() != first
    assert samples.cover_page(CODE, 2).tobytes() == samples.cover_page(CODE, 2).tobytes()
    assert (
        samples.blank_page(4, bleed=True).tobytes() == samples.blank_page(4, bleed=True).tobytes()
    )
    assert samples.separator_page(CODE).tobytes() == samples.separator_page(CODE).tobytes()


def test_text_page_looks_like_a_scanned_document() -> None:
    page = samples.text_page(11)
    assert page.mode == "RGB"
    pixels = np.asarray(page)
    paper = pixels[:150, :150].reshape(-1, 3)
    assert 235 < paper.mean() < 252, "off-white paper, not pure white"
    assert paper.std() > 0.5, "scanner noise"
    assert paper[:, 0].mean() > paper[:, 2].mean(), "warm paper tone"
    assert 0.01 < _ink_fraction(page) < 0.15
    margin = samples._px(15, 300)
    assert _ink_fraction(page.crop((0, 0, margin, page.height))) < 0.001
    grey = samples.text_page(11, colour=False)
    assert grey.mode == "L"


def test_font_is_dejavu_and_renders_vietnamese() -> None:
    font = samples.load_font(40)
    assert samples.load_font(40) is font, "fonts are cached"
    if not _dejavu_present():
        pytest.skip("DejaVu Sans not installed")
    assert font.getname()[0] == "DejaVu Sans"
    assert samples.load_font(40, bold=True).getname() == ("DejaVu Sans", "Bold")
    missing = _glyph(font, "\U0010fffd")
    letters = "ăâđêôơưáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
    for letter in letters + letters.upper():
        glyph = _glyph(font, letter)
        assert glyph.any(), letter
        assert not np.array_equal(glyph, missing), f"{letter} has no glyph"
    assert _glyph(font, "Ộ").sum() > _glyph(font, "O").sum()


def test_pages_render_without_dejavu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samples, "FONT_PATHS", ("/nonexistent/NoSuchFont.ttf",))
    samples.clear_caches()
    try:
        assert samples.load_font(20).getname()[0] != "DejaVu Sans"
        assert samples.text_page(1, 72).size == samples.a4(72)
        assert samples.cover_page(CODE, 1, 150).size == samples.a4(150)
    finally:
        monkeypatch.undo()
        samples.clear_caches()
    if _dejavu_present():
        assert samples.load_font(20).getname()[0] == "DejaVu Sans"


def test_jpeg_and_png_carry_their_resolution(tmp_path: Path) -> None:
    page = samples.text_page(2)
    samples.save_jpeg(page, tmp_path / "p.jpg")
    samples.save_png(page, tmp_path / "p.png", dpi=300)
    with Image.open(tmp_path / "p.jpg") as jpeg:
        assert jpeg.info["dpi"] == (300, 300)
        assert jpeg.info.get("jfif_unit") == 1
        assert jpeg.size == (2480, 3508)
    with Image.open(tmp_path / "p.png") as png:
        assert png.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        assert np.array_equal(np.asarray(png), np.asarray(page))


def test_tiff_is_multipage_lossless(tmp_path: Path) -> None:
    pages = [samples.text_page(1, 150), samples.blank_page(1, 150), samples.text_page(2, 150)]
    assert samples.save_tiff(iter(pages), tmp_path / "job.tif", dpi=150) == 3
    with Image.open(tmp_path / "job.tif") as tiff:
        assert tiff.n_frames == 3
        for index, page in enumerate(pages):
            tiff.seek(index)
            assert tiff.info["dpi"] == pytest.approx((150, 150))
            assert tiff.info["compression"] == samples._TIFF_COMPRESSION
            assert np.array_equal(np.asarray(tiff.convert("RGB")), np.asarray(page))


def test_pdf_pages_are_at_full_scale(tmp_path: Path) -> None:
    pages = [samples.cover_page(CODE, 1), samples.text_page(1), samples.text_page(2, 200)]
    path = tmp_path / "job.pdf"
    assert samples.save_pdf(pages, path, dpi=300) == 3
    assert path.read_bytes().startswith(b"%PDF-1.4")
    pdf = pypdfium2.PdfDocument(path)
    try:
        assert len(pdf) == 3
        for page, image in zip(pdf, pages, strict=True):
            width, height = page.get_size()
            assert width == pytest.approx(image.width / 300 * 72, abs=0.01)
            assert height == pytest.approx(image.height / 300 * 72, abs=0.01)
        rendered = pdf[0].render(scale=300 / 72).to_pil()
        assert rendered.size == pytest.approx(pages[0].size, abs=1), "pdfium rounds up"
        assert any(b.text == CODE for b in _decode(rendered))
    finally:
        pdf.close()


def test_pdf_written_twice_is_byte_identical(tmp_path: Path) -> None:
    samples.save_pdf([samples.text_page(3, 100)], tmp_path / "a.pdf", dpi=100)
    samples.save_pdf([samples.text_page(3, 100)], tmp_path / "b.pdf", dpi=100)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


@pytest.mark.parametrize("position", ["top", "bottom"])
@pytest.mark.parametrize("dpi", [200, 300])
def test_cover_qr_decodes_to_the_code(position: str, dpi: int) -> None:
    page = samples.cover_page(CODE, 5, dpi, position=position)
    found = [b for b in _decode(page) if b.format == zxingcpp.BarcodeFormat.QRCode]
    assert [b.text for b in found] == [CODE]
    top = found[0].position.top_left.y
    if position == "top":
        assert top < page.height * 0.3
    else:
        assert top > page.height * 0.7
    side = found[0].position.top_right.x - found[0].position.top_left.x
    assert 18 <= side / dpi * 25.4 <= 25, "about 2.5 cm with the quiet zone"


def test_cover_qr_survives_jpeg() -> None:
    buffer = io.BytesIO()
    samples.save_jpeg(samples.cover_page(CODE, 6), buffer)
    with Image.open(buffer) as reread:
        assert CODE in [b.text for b in _decode(reread)]


@pytest.mark.parametrize("code", list(samples.CODE_STYLES.values()))
@pytest.mark.parametrize("position", ["top", "bottom"])
def test_cover_code128_decodes_at_full_resolution(code: str, position: str) -> None:
    page = samples.cover_page(code, 1, symbology="code128", position=position)
    found = [b for b in _decode(page) if b.format == zxingcpp.BarcodeFormat.Code128]
    assert [b.text for b in found] == [code]
    bar_width = found[0].position.top_right.x - found[0].position.top_left.x
    assert bar_width / 300 * 25.4 < 100


def test_cover_prints_the_code_and_the_slip_title() -> None:
    page = samples.cover_page(CODE, 1)
    assert 0.005 < _ink_fraction(page) < 0.1
    with pytest.raises(ValueError, match="symbology"):
        samples.cover_page(CODE, symbology="datamatrix")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position"):
        samples.cover_page(CODE, position="left")  # type: ignore[arg-type]


def test_separator_page_has_a_big_qr() -> None:
    code = "G09.20-20260609-0092637"
    page = samples.separator_page(code)
    found = _decode(page)
    assert [b.text for b in found] == [code]
    side = found[0].position.top_right.x - found[0].position.top_left.x
    assert side / 300 * 25.4 > 50


def test_blank_backs_stay_blank_even_with_bleed_through() -> None:
    for bleed in (False, True):
        page = samples.blank_page(3, bleed=bleed)
        luminance = np.asarray(page.convert("L"))
        assert (luminance < 200).mean() < 0.0005
        assert luminance.std() < 5
    plain = np.asarray(samples.blank_page(3).convert("L"), dtype=np.float64)
    bled = np.asarray(samples.blank_page(3, bleed=True).convert("L"), dtype=np.float64)
    assert bled.mean() < plain.mean(), "some text shows through"


def test_skewed_and_darkened_keep_size() -> None:
    page = samples.text_page(1, 100)
    tilted = samples.skewed(page, 3.0)
    assert tilted.size == page.size
    assert not np.array_equal(np.asarray(tilted), np.asarray(page))
    dark = samples.darkened(page, 0.5)
    assert dark.size == page.size
    assert np.asarray(dark.convert("L")).mean() < 0.55 * np.asarray(page.convert("L")).mean()
    with pytest.raises(ValueError):
        samples.darkened(page, 0)


def test_people_have_consistent_cccd_numbers() -> None:
    people = samples.sample_people(300, seed=4)
    assert people == samples.sample_people(300, seed=4)
    assert {p.sex for p in people} == {"Nam", "Nữ"}
    assert any(p.birth_date.year >= 2000 for p in people)
    for person in people:
        assert re.fullmatch(r"\d{12}", person.cccd)
        province, century_sex, year = person.cccd[:3], int(person.cccd[3]), person.cccd[4:6]
        assert province == person.birth_province_code
        assert province in samples.PROVINCES
        assert century_sex // 2 == (person.birth_date.year - 1900) // 100
        assert century_sex % 2 == (1 if person.sex == "Nữ" else 0)
        assert year == f"{person.birth_date.year % 100:02d}"
        age = (samples.REFERENCE_DATE - person.birth_date).days / 365.25
        assert 18 <= age <= 86
        assert re.fullmatch(r"0(9\d|3[2-9])\d{7}", person.phone)
        assert re.fullmatch(r"Thôn [^,]+, xã [^,]+, (tỉnh|thành phố|Thành phố) .+", person.address)
        assert person.full_name.split()[0] == person.family_name
        for text in (person.full_name, person.address):
            assert unicodedata.is_normalized("NFC", text)
    families = {p.family_name for p in people}
    assert {"Nguyễn", "Trần", "Lê"} <= families


def test_codes_come_in_every_style_with_real_dates_and_growing_sequences() -> None:
    codes = samples.sample_codes(200, seed=9)
    assert codes == samples.sample_codes(200, seed=9)
    assert codes != samples.sample_codes(200, seed=10)
    assert len(set(codes)) == len(codes)
    last: dict[str, tuple[str, int]] = {}
    seen = set()
    for code in codes:
        style, match = next((name, m) for name, p in STYLE_PATTERNS.items() if (m := p.match(code)))
        seen.add(style)
        digits, sequence = match.group(1), int(match.group(2))
        year = int(digits[:4]) if len(digits) == 8 else 2000 + int(digits[:2])
        day = date(year, int(digits[-4:-2]), int(digits[-2:]))
        assert date(2019, 1, 1) <= day
        if style in last:
            previous_day, previous_sequence = last[style]
            assert (day.isoformat(), sequence) > (previous_day, previous_sequence)
            if day.isoformat() == previous_day or style == "extended":
                assert sequence > previous_sequence
        last[style] = (day.isoformat(), sequence)
    assert seen == set(STYLE_PATTERNS)
    only = samples.sample_codes(5, seed=1, styles=["extended"])
    assert all(STYLE_PATTERNS["extended"].match(c) for c in only)
    with pytest.raises(ValueError):
        samples.sample_codes(1, styles=["nonsense"])


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "pdf"])
def test_write_job_writes_scanner_files_and_expectations(tmp_path: Path, fmt: str) -> None:
    codes = samples.sample_codes(2, seed=1)
    dossiers = [
        DossierSpec(None, 1),
        DossierSpec(codes[0], 1, blank_backs=True),
        DossierSpec(codes[1], 2, symbology="code128"),
    ]
    job = samples.write_job(tmp_path / "inbox", dossiers, fmt, dpi=100)  # type: ignore[arg-type]
    assert [(e.code, e.pages, e.blank_pages, e.start) for e in job.expected] == [
        (None, 1, (), 0),
        (codes[0], 4, (1, 3), 1),
        (codes[1], 3, (), 5),
    ]
    total = sum(e.pages for e in job.expected)
    if fmt in ("jpeg", "png"):
        suffix = ".jpg" if fmt == "jpeg" else ".png"
        assert [p.name for p in job.paths] == [f"scan_{i:04d}{suffix}" for i in range(1, 9)]
        assert len(job.paths) == total
        with Image.open(job.paths[0]) as first:
            assert first.info["dpi"] == pytest.approx((100, 100), abs=0.5)
    elif fmt == "tiff":
        with Image.open(job.paths[0]) as tiff:
            assert tiff.n_frames == total
    else:
        pdf = pypdfium2.PdfDocument(job.paths[0])
        assert len(pdf) == total
        pdf.close()


def test_write_job_natural_numbering_and_bad_specs(tmp_path: Path) -> None:
    job = samples.write_job(tmp_path, [DossierSpec(CODE, 10)], "jpeg", dpi=50, pad=0)
    assert [p.name for p in job.paths][-3:] == ["scan_9.jpg", "scan_10.jpg", "scan_11.jpg"]
    with pytest.raises(ValueError):
        samples.write_job(tmp_path, [DossierSpec(CODE, 1), DossierSpec(None, 1)], "jpeg")
    with pytest.raises(ValueError):
        samples.write_job(tmp_path, [DossierSpec(CODE, 1)], "gif")  # type: ignore[arg-type]


def test_write_job_cover_pages_decode(tmp_path: Path) -> None:
    codes = samples.sample_codes(2, seed=3)
    dossiers = [DossierSpec(codes[0], 0), DossierSpec(codes[1], 0, symbology="code128")]
    job = samples.write_job(tmp_path, dossiers, "jpeg")
    for path, code in zip(job.paths, codes, strict=True):
        with Image.open(path) as page:
            assert code in [b.text for b in _decode(page)]


def test_text_page_generation_speed() -> None:
    """Making a page must cost about what writing it as a JPEG costs, measured in the same
    run (absolute times drift between machines): the benchmark writes thousands of pages."""
    page = samples.text_page(0)
    encode, timings = [], []
    for seed in range(1, 21):
        started = time.perf_counter()
        samples.save_jpeg(page, io.BytesIO())
        encode.append(time.perf_counter() - started)
        started = time.perf_counter()
        samples.save_jpeg(samples.text_page(seed), io.BytesIO())
        timings.append(time.perf_counter() - started)
    ratio = statistics.median(timings) / statistics.median(encode)
    print(f"text_page + save_jpeg at 300 dpi: {ratio:.2f} x save_jpeg alone, 20 pages")
    assert ratio < 4  # about 2 on a quiet machine; the margin is for a busy one
