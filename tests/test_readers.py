"""Tests for edge.capture.readers: every accepted format, every kind of bad input,
and flat memory on a long PDF. All inputs are generated here; nothing binary is
checked in."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFile

from edge.capture.readers import (
    CHECK_REDUCE,
    JPEG,
    PDF,
    PNG,
    TIFF,
    BadInput,
    Page,
    open_pages,
    sniff,
    source_sha256,
)

# --- generators -------------------------------------------------------------------


def text_page(size: tuple[int, int] = (1240, 1754), seed: int = 0) -> Image.Image:
    """A colour page with text-like lines and a red header band."""
    img = Image.new("RGB", size, (250, 250, 247))
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.rectangle((w // 10, h // 20, w // 2, h // 12), fill=(200, 30, 30))
    line_h = max(4, h // 50)
    for i, y in enumerate(range(h // 8, h - h // 10, line_h * 2)):
        right = w - w // 10 - ((i * 37 + seed * 11) % (w // 3))
        draw.rectangle((w // 10, y, right, y + line_h // 2), fill=(25, 25, 60))
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def gray16(img: Image.Image) -> Image.Image:
    """A 16-bit greyscale copy using the full 0-65535 range, as 16-bit scanners do."""
    levels = np.asarray(img.convert("L")).astype(np.uint16) * 257
    return Image.fromarray(levels)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG a few hundred bytes long that declares gigapixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 2000, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def pdf_with_images(specs: list[tuple[Image.Image, int] | None]) -> bytes:
    """A PDF with one A4 page per spec: a JPEG placed full-page at the given dpi's
    scale, or (None) a vector-only page."""
    pdf = pdfium.PdfDocument.new()
    for spec in specs:
        page = pdf.new_page(595.0, 842.0)
        if spec is None:
            path = pdfium.raw.FPDFPageObj_CreateNewRect(72, 72, 200, 100)
            pdfium.raw.FPDFPageObj_SetFillColor(path, 0, 0, 200, 255)
            pdfium.raw.FPDFPath_SetDrawMode(path, pdfium.raw.FPDF_FILLMODE_ALTERNATE, 0)
            pdfium.raw.FPDFPage_InsertObject(page, path)
        else:
            img, dpi = spec
            obj = pdfium.PdfImage.new(pdf)
            obj.load_jpeg(io.BytesIO(encode(img, "JPEG", quality=80)), inline=True)
            w_pt, h_pt = img.width * 72 / dpi, img.height * 72 / dpi
            obj.set_matrix(pdfium.PdfMatrix().scale(w_pt, h_pt))
            page.insert_obj(obj)
        page.gen_content()
        page.close()
    buf = io.BytesIO()
    pdf.save(buf, version=17)
    pdf.close()
    return buf.getvalue()


_PDF_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes, owner_password: bytes) -> bytes:
    """A one-page PDF under the standard security handler, revision 2 (RC4, 40-bit).

    Hand-built (PDF 1.7 spec, algorithms 3.2-3.4) because pypdfium2 cannot encrypt
    and qpdf is not installed; the test checks pdfium really needs the password.
    """

    def pad(password: bytes) -> bytes:
        return (password + _PDF_PAD)[:32]

    file_id = hashlib.md5(b"commune-edge-test").digest()
    permissions = -4
    owner_key = hashlib.md5(pad(owner_password)).digest()[:5]
    o_entry = rc4(owner_key, pad(user_password))
    key = hashlib.md5(
        pad(user_password) + o_entry + struct.pack("<i", permissions) + file_id
    ).digest()[:5]
    u_entry = rc4(key, _PDF_PAD)
    content = b"0 0 1 rg 72 72 300 300 re f"
    object_key = hashlib.md5(key + struct.pack("<I", 4)[:3] + struct.pack("<H", 0)).digest()[:10]
    stream = rc4(object_key, content)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (o_entry.hex().encode(), u_entry.hex().encode(), permissions),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        file_id.hex().encode(),
        file_id.hex().encode(),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    def _write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


def reason_of(path: Path, **kwargs: int) -> str:
    with pytest.raises(BadInput) as info:
        list(open_pages(path, **kwargs))
    assert info.value.message and "\n" not in info.value.message
    return info.value.reason


# --- good input -------------------------------------------------------------------


def test_load_truncated_images_stays_off() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (encode(text_page((64, 64)), "JPEG"), JPEG),
        (encode(text_page((64, 64)), "PNG"), PNG),
        (encode(text_page((64, 64)), "TIFF"), TIFF),
        (pdf_with_images([None]), PDF),
        (encode(text_page((64, 64)), "GIF"), "image/gif"),
        (encode(text_page((64, 64)), "BMP"), "image/bmp"),
        (encode(text_page((64, 64)), "WEBP"), "image/webp"),
        (b"Hello, this is not an image at all\n", None),
        (b"BM but just text that starts like a bitmap", None),
    ],
)
def test_sniff(write: Callable[[str, bytes], Path], data: bytes, expected: str | None) -> None:
    assert sniff(write("scan.jpg", data)) == expected


def test_jpeg_keeps_original_bytes_and_metadata(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page((2480, 3508)), "JPEG", quality=85, dpi=(300, 300))
    pages = list(open_pages(write("scan.pdf", data)))
    assert len(pages) == 1
    page = pages[0]
    assert page.index == 0
    assert page.data == data
    assert page.media_type == JPEG
    assert page.pixel_size == (2480, 3508)
    assert page.dpi == (300.0, 300.0)
    small = page.image(4)
    assert small.mode == "RGB"
    assert abs(small.width - 620) <= 1 and abs(small.height - 877) <= 1
    assert page.image(1).size == (2480, 3508)
    assert page.image(2).size == (1240, 1754)


def test_jpeg_draft_decode_is_cheaper_than_full(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page((2480, 3508)), "JPEG", quality=85)
    page = next(open_pages(write("a.jpg", data)))

    def best_of(reduce: int) -> float:
        times = []
        for _ in range(5):
            page._cache = None
            start = time.thread_time()
            page.image(reduce)
            times.append(time.thread_time() - start)
        return min(times)

    assert best_of(4) < best_of(1) / 2


def test_image_is_cached_per_reduce_and_returned_as_copy(
    write: Callable[[str, bytes], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = next(open_pages(write("a.png", encode(text_page(), "PNG"))))
    calls: list[int] = []
    original = Page._decode

    def counting(self: Page, reduce: int) -> Image.Image:
        calls.append(reduce)
        return original(self, reduce)

    monkeypatch.setattr(Page, "_decode", counting)
    first = page.image(CHECK_REDUCE)
    first.paste((0, 0, 0), (0, 0, 50, 50))
    second = page.image(CHECK_REDUCE)
    assert calls == []  # decoded once while checking, before the page was yielded
    assert second.getpixel((10, 10)) != (0, 0, 0)
    quarter = page.image(4)  # reduced from the kept half-scale decode, not decoded again
    assert quarter.size == ((second.width + 1) // 2, (second.height + 1) // 2)
    assert calls == []
    page.image(1)
    page.image(1)
    assert calls == [1, 1]  # a full-size decode is never kept


def test_png_keeps_original_bytes_and_reads_phys(write: Callable[[str, bytes], Path]) -> None:
    img = text_page().convert("L")
    data = encode(img, "PNG", dpi=(300, 300))
    (page,) = open_pages(write("page.png", data))
    assert page.data == data
    assert page.media_type == PNG
    assert page.pixel_size == img.size
    assert page.dpi == (300.0, 300.0)
    assert page.image(4).mode == "L"


def test_png_without_phys_has_unknown_dpi(write: Callable[[str, bytes], Path]) -> None:
    (page,) = open_pages(write("page.png", encode(text_page((200, 300)), "PNG")))
    assert page.dpi is None


def test_single_page_tiff_keeps_original_bytes(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "TIFF", compression="tiff_lzw", dpi=(200, 200))
    (page,) = open_pages(write("one.tif", data))
    assert page.data == data
    assert page.media_type == TIFF
    assert page.dpi == (200.0, 200.0)


def test_multipage_tiff_frames_are_lossless_single_page_tiffs(
    write: Callable[[str, bytes], Path],
) -> None:
    frames = [
        text_page((800, 1131), seed=1).convert("1"),
        text_page((800, 1131), seed=2).convert("L"),
        text_page((600, 848), seed=3),
    ]
    data = encode(
        frames[0],
        "TIFF",
        save_all=True,
        append_images=frames[1:],
        compression="tiff_lzw",
        dpi=(100, 100),
    )
    pages = list(open_pages(write("job.tiff", data)))
    assert [p.index for p in pages] == [0, 1, 2]
    for page, frame in zip(pages, frames, strict=True):
        assert page.media_type == TIFF
        assert page.pixel_size == frame.size
        single = Image.open(io.BytesIO(page.data))
        assert getattr(single, "n_frames", 1) == 1
        assert single.mode == frame.mode
        assert single.tobytes() == frame.tobytes()
        expected = "group4" if frame.mode == "1" else "tiff_adobe_deflate"
        assert single.info["compression"] == expected
    assert pages[0].image(4).mode == "L"
    assert pages[2].image(4).mode == "RGB"


def test_multipage_pdf_pages_are_single_page_pdfs_with_original_images(
    write: Callable[[str, bytes], Path],
) -> None:
    scan300 = text_page((2480, 3508))
    scan150 = text_page((1240, 1754), seed=4)
    data = pdf_with_images([(scan300, 300), (scan150, 150), None])
    pages = list(open_pages(write("job.pdf", data)))
    assert [p.media_type for p in pages] == [PDF] * 3
    assert pages[0].dpi is not None and pages[0].dpi == pytest.approx((300, 300), abs=0.5)
    assert pages[1].dpi is not None and pages[1].dpi == pytest.approx((150, 150), abs=0.5)
    assert pages[2].dpi is None
    assert pages[0].pixel_size == pytest.approx((2480, 3508), abs=2)
    assert pages[1].pixel_size == pytest.approx((1240, 1754), abs=2)
    assert pages[2].pixel_size == (round(595 * 300 / 72), round(842 * 300 / 72))
    for page, original in zip(pages[:2], (scan300, scan150), strict=True):
        single = pdfium.PdfDocument(page.data)
        assert len(single) == 1
        assert single.get_version() == 17
        images = list(single[0].get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
        assert [obj.get_px_size() for obj in images] == [original.size]
        assert images[0].get_filters() == ["DCTDecode"]
        single.close()
    rendered = pages[1].image(4)
    assert rendered.mode == "RGB"
    assert rendered.size == pytest.approx((310, 438), abs=2)


def test_rotated_pdf_page_reports_its_displayed_size(write: Callable[[str, bytes], Path]) -> None:
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(595.0, 842.0)
    page.set_rotation(90)
    page.close()
    buf = io.BytesIO()
    pdf.save(buf)
    (only,) = open_pages(write("landscape.pdf", buf.getvalue()))
    assert only.pixel_size == pytest.approx((3508, 2479), abs=1)
    assert only.image(4).size == pytest.approx((877, 620), abs=1)


@pytest.mark.parametrize(
    ("name", "data", "mode"),
    [
        ("cmyk.jpg", encode(text_page((300, 424)).convert("CMYK"), "JPEG"), "RGB"),
        ("gray16.png", encode(gray16(text_page((300, 424))), "PNG"), "L"),
        ("palette.png", encode(text_page((300, 424)).convert("P"), "PNG"), "RGB"),
        ("alpha.png", encode(text_page((300, 424)).convert("RGBA"), "PNG"), "RGB"),
        ("bilevel.tif", encode(text_page((300, 424)).convert("1"), "TIFF"), "L"),
    ],
)
def test_every_mode_decodes_to_rgb_or_l(
    write: Callable[[str, bytes], Path], name: str, data: bytes, mode: str
) -> None:
    (page,) = open_pages(write(name, data))
    small = page.image(4)
    assert small.mode == mode
    assert small.size == pytest.approx((75, 106), abs=1)
    reference = text_page((300, 424)).reduce(4).convert("L")
    luminance = np.asarray(small.convert("L"), dtype=float)
    assert abs(luminance.mean() - np.asarray(reference, dtype=float).mean()) < 20


def test_pdf_with_only_an_owner_password_is_readable(write: Callable[[str, bytes], Path]) -> None:
    data = encrypted_pdf(b"", b"owner-secret")
    (page,) = open_pages(write("owner.pdf", data))
    assert page.media_type == PDF
    assert len(pdfium.PdfDocument(page.data)) == 1


def test_huge_vector_pdf_page_is_rendered_smaller_not_refused(
    write: Callable[[str, bytes], Path],
) -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(14400.0, 14400.0).close()  # 200 x 200 inches, the PDF maximum
    buf = io.BytesIO()
    pdf.save(buf)
    (page,) = open_pages(write("plan.pdf", buf.getvalue()), max_pixels=4_000_000)
    assert page.pixel_size[0] * page.pixel_size[1] <= 4_000_000
    assert page.image(8).size == pytest.approx((250, 250), abs=2)


# --- bad input --------------------------------------------------------------------


def test_empty_file(write: Callable[[str, bytes], Path]) -> None:
    assert reason_of(write("empty.jpg", b"")) == "empty"


def test_jpeg_cut_in_half_is_truncated(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "JPEG", quality=90)
    with pytest.raises(BadInput) as info:
        list(open_pages(write("half.jpg", data[: len(data) // 2])))
    assert info.value.reason == "truncated"
    assert info.value.message.startswith("The file is incomplete")


def test_progressive_jpeg_cut_short_is_truncated(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "JPEG", quality=90, progressive=True)
    assert reason_of(write("prog.jpg", data[: len(data) * 2 // 3])) == "truncated"


def test_end_marker_before_the_scan_does_not_hide_a_cut(
    write: Callable[[str, bytes], Path],
) -> None:
    """An embedded thumbnail ends with its own FFD9 before the main scan starts."""
    thumbnail = encode(text_page((40, 56)), "JPEG")
    comment = b"\xff\xfe" + struct.pack(">H", len(thumbnail) + 2) + thumbnail
    data = encode(text_page(), "JPEG", quality=90)
    data = data[:2] + comment + data[2:]
    assert len(list(open_pages(write("whole.jpg", data)))) == 1
    assert reason_of(write("cut.jpg", data[: len(data) * 3 // 4])) == "truncated"


def test_jpeg_missing_only_its_end_marker_is_truncated(
    write: Callable[[str, bytes], Path],
) -> None:
    data = encode(text_page(), "JPEG", quality=90)
    assert reason_of(write("cut.jpg", data[:-2])) == "truncated"


def test_jpeg_zero_filled_after_failed_copy_is_truncated(
    write: Callable[[str, bytes], Path],
) -> None:
    data = encode(text_page(), "JPEG", quality=90)
    half = len(data) // 2
    assert reason_of(write("z.jpg", data[:half] + bytes(len(data) - half))) == "truncated"


def test_jpeg_with_trailing_padding_is_fine(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "JPEG") + bytes(512)
    assert len(list(open_pages(write("padded.jpg", data)))) == 1


def test_png_cut_short_is_truncated(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "PNG")
    assert reason_of(write("half.png", data[: len(data) // 2])) == "truncated"
    assert reason_of(write("noend.png", data[:-12])) == "truncated"


def test_png_with_corrupt_data_is_damaged(write: Callable[[str, bytes], Path]) -> None:
    data = bytearray(encode(text_page(), "PNG"))
    data[len(data) // 2] ^= 0xFF
    assert reason_of(write("bad.png", bytes(data))) == "damaged"


def test_tiff_cut_short_is_truncated(write: Callable[[str, bytes], Path]) -> None:
    data = encode(text_page(), "TIFF", compression="tiff_adobe_deflate")
    assert reason_of(write("half.tif", data[: len(data) // 2])) == "truncated"
    raw = encode(text_page(), "TIFF")
    assert reason_of(write("raw.tif", raw[: len(raw) * 2 // 3])) == "truncated"


def test_multipage_tiff_damaged_late_fails_on_that_page(
    write: Callable[[str, bytes], Path],
) -> None:
    frames = [text_page((400, 566), seed=i).convert("L") for i in range(2)]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    pages = open_pages(write("late.tif", data[: len(data) - 20_000]))
    assert next(pages).index == 0
    with pytest.raises(BadInput) as info:
        next(pages)
    assert info.value.reason == "truncated"
    assert info.value.page == 1
    assert info.value.message.startswith("Page 2:")


def test_text_named_jpg_is_not_an_image(write: Callable[[str, bytes], Path]) -> None:
    assert reason_of(write("scan.jpg", b"Dear clerk,\nthis is a letter.\n" * 20)) == "not_an_image"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP"])
def test_other_image_formats_are_unsupported(write: Callable[[str, bytes], Path], fmt: str) -> None:
    path = write("scan.jpg", encode(text_page((100, 100)), fmt))
    with pytest.raises(BadInput) as info:
        list(open_pages(path))
    assert info.value.reason == "unsupported"
    assert fmt in info.value.message


def test_fake_pdf_is_damaged(write: Callable[[str, bytes], Path]) -> None:
    data = b"%PDF-1.7\nthis is garbage pretending to be a PDF\n" * 50 + b"%%EOF\n"
    assert reason_of(write("fake.pdf", data)) == "damaged_pdf"
    assert reason_of(write("fake2.pdf", b"%PDF-1.4\n" + os.urandom(4000))) == "damaged_pdf"


def test_pdf_cut_short_is_refused(write: Callable[[str, bytes], Path]) -> None:
    data = pdf_with_images([(text_page(seed=i), 150) for i in range(4)])
    reason = reason_of(write("cut.pdf", data[: len(data) * 3 // 4]))
    assert reason in ("truncated", "damaged_pdf")
    assert reason_of(write("noeof.pdf", data[: data.rindex(b"%%EOF")])) == "truncated"


def test_pdf_without_pages(write: Callable[[str, bytes], Path]) -> None:
    pdf = pdfium.PdfDocument.new()
    buf = io.BytesIO()
    pdf.save(buf)
    assert reason_of(write("none.pdf", buf.getvalue())) == "no_pages"


def test_encrypted_pdf(write: Callable[[str, bytes], Path]) -> None:
    data = encrypted_pdf(b"user-secret", b"owner-secret")
    with pytest.raises(pdfium.PdfiumError) as info:
        pdfium.PdfDocument(data)
    assert info.value.err_code == pdfium_c.FPDF_ERR_PASSWORD
    assert len(pdfium.PdfDocument(data, password="user-secret")) == 1  # a real PDF
    assert reason_of(write("locked.pdf", data)) == "encrypted_pdf"


def test_png_declaring_gigapixels_is_a_bomb(write: Callable[[str, bytes], Path]) -> None:
    data = bomb_png()
    assert len(data) < 1000
    assert reason_of(write("bomb.png", data)) == "decompression_bomb"


def test_bomb_limit_is_max_pixels_not_pillow_global(
    write: Callable[[str, bytes], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_pixels decides, and Pillow's bomb warning never escapes (it would crash
    the daemon under -W error). JPEG and PNG never consult Pillow's limit; Pillow's TIFF
    loader still refuses above twice its limit, which is reported as a bomb too."""
    jpeg = write("page.jpg", encode(text_page((1000, 1000)), "JPEG"))
    assert reason_of(jpeg, max_pixels=999_999) == "decompression_bomb"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    png = write("page.png", encode(text_page((1000, 1000)), "PNG"))
    with _no_warnings():
        assert len(list(open_pages(jpeg, max_pixels=1_000_000))) == 1
        assert len(list(open_pages(png, max_pixels=1_000_000))) == 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600_000)
    tiff = write("page.tif", encode(text_page((1000, 1000)).convert("L"), "TIFF"))
    with _no_warnings():
        assert len(list(open_pages(tiff))) == 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert reason_of(tiff) == "decompression_bomb"


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    """Turn every warning into an error inside the block, as ``-W error`` would."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_warning_filters_are_not_held_across_yields(write: Callable[[str, bytes], Path]) -> None:
    """Silencing Pillow is process-wide state; the caller's code between pages must
    run with its own filters."""
    frames = [text_page((200, 283), seed=i) for i in range(3)]
    tiff = write("job.tif", encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]))
    pdf = write("job.pdf", pdf_with_images([(frames[0], 100), None]))
    jpeg = write("one.jpg", encode(frames[0], "JPEG"))
    before = list(warnings.filters)
    for path in (tiff, pdf, jpeg):
        for page in open_pages(path):
            assert warnings.filters == before
            page.image(2)
            assert warnings.filters == before


def test_pdf_with_bomb_image_is_refused(write: Callable[[str, bytes], Path]) -> None:
    data = pdf_with_images([(text_page((1000, 1000)), 100)])
    assert reason_of(write("b.pdf", data), max_pixels=500_000) == "decompression_bomb"


def test_too_large(write: Callable[[str, bytes], Path]) -> None:
    path = write("big.jpg", encode(text_page(), "JPEG"))
    assert reason_of(path, max_bytes=1000) == "too_large"


def test_symlink_is_never_followed(tmp_path: Path, write: Callable[[str, bytes], Path]) -> None:
    target = write("real.jpg", encode(text_page(), "JPEG"))
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    assert reason_of(link) == "symlink"
    dangling = tmp_path / "dangling.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    assert reason_of(dangling) == "symlink"
    with pytest.raises(BadInput) as info:
        source_sha256(link)
    assert info.value.reason == "symlink"
    with pytest.raises(OSError):
        sniff(link)


@pytest.mark.timeout(10)
def test_fifo_is_a_special_file_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "scan.jpg"
    os.mkfifo(fifo)
    assert reason_of(fifo) == "special_file"


def test_directory_is_a_special_file(tmp_path: Path) -> None:
    (tmp_path / "folder.pdf").mkdir()
    assert reason_of(tmp_path / "folder.pdf") == "special_file"


def test_vanished_file(tmp_path: Path, write: Callable[[str, bytes], Path]) -> None:
    assert reason_of(tmp_path / "gone.jpg") == "vanished"
    path = write("soon-gone.jpg", encode(text_page(), "JPEG"))
    pages = open_pages(path)
    path.unlink()
    with pytest.raises(BadInput) as info:
        next(pages)
    assert info.value.reason == "vanished"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(write: Callable[[str, bytes], Path]) -> None:
    path = write("locked.jpg", encode(text_page(), "JPEG"))
    path.chmod(0)
    assert reason_of(path) == "unreadable"


def test_validation_happens_before_the_first_page(write: Callable[[str, bytes], Path]) -> None:
    data = encrypted_pdf(b"pw", b"pw")
    pages = open_pages(write("locked.pdf", data))
    with pytest.raises(BadInput):
        next(pages)


def test_messages_are_plain_one_liners(write: Callable[[str, bytes], Path]) -> None:
    with pytest.raises(BadInput) as info:
        list(open_pages(write("e.jpg", b"")))
    assert info.value.message == "The file is empty (0 bytes): scan the page again."
    assert str(info.value) == info.value.message


_SEEDS: dict[str, bytes] = {
    "jpeg": encode(text_page((160, 226)), "JPEG"),
    "png": encode(text_page((160, 226)), "PNG"),
    "tiff": encode(
        text_page((160, 226)),
        "TIFF",
        save_all=True,
        append_images=[text_page((160, 226), seed=1).convert("1")],
    ),
    "pdf": pdf_with_images([(text_page((160, 226)), 20), None]),
}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(sorted(_SEEDS)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4),
)
def test_damaged_input_only_ever_raises_bad_input(
    tmp_path: Path, kind: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(_SEEDS[kind])
    for where, mask in flips:
        data[min(len(data) - 1, int(where * len(data)))] ^= mask
    data = data[: max(1, int(cut * len(data)))] if cut < 0.999 else data
    path = tmp_path / f"fuzz.{kind}"
    path.write_bytes(bytes(data))
    try:
        for page in open_pages(path):
            page.image(2)
    except BadInput as exc:
        assert exc.reason and exc.message


# --- memory -----------------------------------------------------------------------


def test_long_pdf_keeps_memory_flat(tmp_path: Path) -> None:
    """500 pages of 150 dpi A4 scans: RSS while iterating must not grow with pages.

    Holding the pages instead grows RSS by about 500 MB on this file, so the bound
    separates the two clearly.
    """
    variants = []
    for i in range(4):
        img = text_page((1240, 1754), seed=i)
        variants.append(encode(img, "JPEG", quality=80))
    pdf = pdfium.PdfDocument.new()
    for i in range(500):
        page = pdf.new_page(595.2, 841.9)
        obj = pdfium.PdfImage.new(pdf)
        obj.load_jpeg(io.BytesIO(variants[i % 4]), inline=True)
        obj.set_matrix(pdfium.PdfMatrix().scale(595.2, 841.9))
        page.insert_obj(obj)
        page.gen_content()
        page.close()
    path = tmp_path / "long.pdf"
    pdf.save(path)
    pdf.close()

    process = psutil.Process()
    samples: list[int] = []
    count = 0
    for page in open_pages(path):
        page.image(4)
        count += 1
        samples.append(process.memory_info().rss)
    assert count == 500
    baseline = samples[9]
    growth = max(samples[10:]) - baseline
    assert growth < 30 * 1024**2, f"RSS grew by {growth / 1024**2:.1f} MB over 500 pages"


def test_source_sha256_streams_the_file(
    tmp_path: Path, write: Callable[[str, bytes], Path]
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    assert source_sha256(write("x.bin", data)) == hashlib.sha256(data).hexdigest()
    assert source_sha256(write("empty.jpg", b"")) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        source_sha256(tmp_path / "gone.jpg")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BadInput) as info:
        source_sha256(tmp_path / "fifo")
    assert info.value.reason == "special_file"
