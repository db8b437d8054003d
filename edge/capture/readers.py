"""Turn one settled scanner file into pages, one page in memory at a time.

Everything that cannot become pages is reported as :class:`BadInput` with a stable
reason code, so the caller can quarantine the file with a message a clerk can act on;
nothing in here is allowed to crash the daemon or to be fooled by a file's name.

Each page is checked by decoding it once at :data:`CHECK_REDUCE` before it is
yielded, and that decode is kept on the page: the barcode pass at half scale costs no
second decode, and the quality pass's quarter-scale image is reduced from it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import math
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
TIFF: Final = "image/tiff"
PDF: Final = "application/pdf"
SUPPORTED: Final = frozenset({JPEG, PNG, TIFF, PDF})

CHECK_REDUCE: Final = 2
"""Scale at which every page is decoded before it is yielded; the same scale the
capture pipeline asks for first, so the checking decode is reused, not repeated."""

DEFAULT_PDF_DPI: Final = 300.0
"""Render resolution for PDF pages that carry no scanned image (born-digital pages)."""

_MIN_PLAUSIBLE_DPI: Final = 10.0
"""Writers put 0 or 1 in resolution fields to mean "unknown"; no real scan is below this."""

_MIN_SCAN_AREA_FRACTION: Final = 0.25
"""An image covering less of the PDF page than this is a logo or stamp, not the scan,
so its resolution says nothing about the page."""

_PDF_TAIL_BYTES: Final = 1024
_SNIFF_BYTES: Final = 1024
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_IEND: Final = b"IEND"

_MESSAGES: Final[dict[str, str]] = {
    "empty": "The file is empty (0 bytes): scan the page again.",
    "truncated": (
        "The file is incomplete: it stops before its end, probably because scanning or "
        "copying was interrupted. Scan the document again."
    ),
    "damaged": "The image is damaged and cannot be decoded: scan the page again.",
    "damaged_pdf": (
        "The PDF file is damaged and cannot be opened: scan the document again, "
        "or save it again as PDF."
    ),
    "no_pages": "The PDF file contains no pages: scan the document again.",
    "not_an_image": (
        "The file is not a scan: its content is neither an image nor a PDF, whatever its "
        "name says. Remove it from the scanner folder."
    ),
    "unsupported": (
        "The file format ({kind}) is not accepted: set the scanner to save PDF, JPEG, PNG "
        "or TIFF files and scan again."
    ),
    "encrypted_pdf": (
        "The PDF is protected by a password: save it again without a password, "
        "or scan the paper document."
    ),
    "decompression_bomb": (
        "The image claims an impossibly large size ({size}) and was not opened: "
        "scan the page again at 300 dpi."
    ),
    "symlink": (
        "This is a link to another file, not a scan, and links are never followed: "
        "copy the real file into the scanner folder."
    ),
    "special_file": (
        "This is not an ordinary file (a folder, device, pipe or socket): "
        "remove it from the scanner folder."
    ),
    "too_large": (
        "The file is too large ({size} MB; the limit is {limit} MB): scan fewer pages "
        "per file, or scan at a lower resolution."
    ),
    "vanished": (
        "The file disappeared before it could be read (moved or deleted): "
        "check the scanner folder and scan again if needed."
    ),
    "unreadable": (
        "The file cannot be read (permission or disk error): check the scanner folder, "
        "or scan again."
    ),
}


class BadInput(Exception):
    """A file (or one page of it) that cannot become pages.

    ``reason`` is a stable code the UI translates; ``message`` is the English text for
    the clerk; ``detail`` is the technical cause, for the log only.
    """

    def __init__(
        self, reason: str, message: str, *, detail: str = "", page: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail
        self.page = page

    def __repr__(self) -> str:
        return f"BadInput({self.reason!r}, {self.message!r}, detail={self.detail!r})"


def bad_input(reason: str, *, detail: str = "", page: int | None = None, **fmt: object) -> BadInput:
    """Build a BadInput from the message table so wording stays in one place."""
    message = _MESSAGES[reason].format(**fmt)
    if page is not None:
        message = f"Page {page + 1}: {message}"
    return BadInput(reason, message, detail=detail, page=page)


def _decode_failure(exc: Exception, page: int | None, *, pdf: bool = False) -> BadInput:
    """Map whatever a decoder raised on malformed data to a reason.

    Pillow's plugins raise a zoo of types on bad input (OSError, SyntaxError,
    TypeError, KeyError, struct.error...), and the contract is that input never
    crashes the daemon, so callers catch Exception at the decoder boundary and land
    here. Running out of data is "truncated"; anything else is "damaged".
    """
    if pdf:
        return bad_input("damaged_pdf", page=page, detail=repr(exc))
    reason = "truncated" if "truncated" in str(exc) else "damaged"
    return bad_input(reason, page=page, detail=repr(exc))


def _bomb(width: int, height: int, detail: str, page: int | None = None) -> BadInput:
    return bad_input(
        "decompression_bomb", page=page, size=f"{width} x {height} pixels", detail=detail
    )


@dataclass(eq=False)
class Page:
    """One page of a source file: the bytes to store and a cheap way to look at it.

    A Page owns everything it needs (``image()`` decodes from ``data``, never from the
    source file), so it stays valid after the file is gone and is freed on its own.
    """

    index: int
    data: bytes = field(repr=False)
    media_type: str
    pixel_size: tuple[int, int]
    dpi: tuple[float, float] | None
    _render_dpi: float | None = field(default=None, repr=False)
    _cache: tuple[int, Image.Image] | None = field(default=None, init=False, repr=False)

    def image(self, reduce: int = 1) -> Image.Image:
        """Return the page decoded at about 1/``reduce`` scale, in mode ``RGB`` or ``L``.

        The finest reduced decode is kept, so repeated calls at that scale are free
        and coarser scales are reduced from it; a full-size decode is never kept, as it can weigh
        100 MB. The returned image is a copy the caller may modify.

        Raises BadInput when the page data cannot be decoded.
        """
        if reduce < 1:
            raise ValueError(f"reduce must be >= 1, not {reduce}")
        if self._cache is not None:
            level, cached = self._cache
            if level == reduce:
                return cached.copy()
            if reduce > level and reduce % level == 0:
                return cached.reduce(reduce // level)
        img = self._decode(reduce)
        if reduce > 1 and (self._cache is None or reduce < self._cache[0]):
            self._cache = (reduce, img)
            return img.copy()
        return img

    def drop_colour(self) -> None:
        """Keep only the grey levels of the kept decode: a third of the memory.

        Called once colour has been judged; barcode decoders read grey anyway.
        """
        if self._cache is not None and self._cache[1].mode != "L":
            self._cache = (self._cache[0], self._cache[1].convert("L"))

    def forget_images(self) -> None:
        """Drop the kept decode once the page has been looked at; only ``data`` stays."""
        self._cache = None

    def _decode(self, reduce: int) -> Image.Image:
        try:
            with _quiet():
                if self.media_type == JPEG:
                    return _decode_jpeg(self.data, reduce)
                if self.media_type == PDF:
                    return _render_pdf(self.data, (self._render_dpi or DEFAULT_PDF_DPI) / reduce)
                return _decode_raster(self.data, self.media_type, reduce)
        except BadInput as exc:
            exc.page = self.index
            raise
        except Image.DecompressionBombError as exc:
            raise _bomb(*self.pixel_size, repr(exc), page=self.index) from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise _decode_failure(exc, self.index, pdf=self.media_type == PDF) from exc


def sniff(path: Path) -> str | None:
    """Return the media type the file's first bytes announce, or None.

    Names lie (a text file called ``scan.jpg``), so only content decides. Known image
    formats that are not accepted are named too, so the clerk learns what to change on
    the scanner rather than being told the file is not an image. Links are not
    followed and a FIFO is never waited on; OSError propagates.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return _sniff_bytes(f.read(_SNIFF_BYTES))


def _sniff_bytes(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if b"%PDF-" in head:
        return PDF
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heic"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "image/jxl"
    if head.startswith(b"AT&TFORM"):
        return "image/vnd.djvu"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib_size,) = struct.unpack_from("<I", head, 14)
        if dib_size in (12, 40, 52, 56, 64, 108, 124):
            return "image/bmp"
    return None


def source_sha256(path: Path) -> str:
    """Hex SHA-256 of the file, streamed, so that a file seen again after a crash
    between commit and removal is recognised by content, not by name.

    Hashes any regular file, empty or huge, since a quarantined file is remembered by
    hash too. FileNotFoundError (the file has gone) and other OSErrors propagate
    unchanged; a link or special file raises BadInput, as it cannot be hashed safely.
    """
    try:
        lst = os.lstat(path)
        if stat.S_ISLNK(lst.st_mode):
            raise bad_input("symlink")
        if not stat.S_ISREG(lst.st_mode):
            raise bad_input("special_file", detail=f"mode {stat.filemode(lst.st_mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise bad_input("symlink", detail=repr(exc)) from exc
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise bad_input("special_file")
        return hashlib.file_digest(f, "sha256").hexdigest()


def open_pages(
    path: Path, *, max_bytes: int = 512 * 1024**2, max_pixels: int = 120_000_000
) -> Iterator[Page]:
    """Yield the pages of one settled file, lazily, one decoded page at a time.

    Everything that can be judged without decoding a page (link, special file, size,
    format, encryption, truncation) raises BadInput before the first page is yielded,
    so the caller can quarantine a file before storing any of it. A page that fails
    later raises BadInput from the iteration with ``.page`` set.
    """
    fd, st = _open_regular(path, max_bytes=max_bytes)
    with os.fdopen(fd, "rb") as f:
        try:
            head = f.read(_SNIFF_BYTES)
        except OSError as exc:
            raise bad_input("unreadable", detail=repr(exc)) from exc
        media = _sniff_bytes(head)
        if media is None:
            raise bad_input("not_an_image", detail=f"first bytes {head[:16]!r}")
        if media not in SUPPORTED:
            raise bad_input("unsupported", kind=media.split("/")[1].upper(), detail=media)
        if media == PDF:
            yield from _quietly(_pdf_pages(f, st.st_size, max_pixels))
        elif media == TIFF:
            yield from _quietly(_tiff_pages(f, st.st_size, max_pixels))
        else:
            try:
                data = head + f.read()
            except OSError as exc:
                raise bad_input("unreadable", detail=repr(exc)) from exc
            with _quiet():
                page = _single_image(data, media, max_pixels)
            yield page


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Pillow's bomb warning and corrupt-metadata chatter.

    They must neither crash the daemon (under ``-W error``) nor decide anything:
    max_pixels decides. The filter is process-wide state, so it is held only while
    this module's code runs, never across a yield to the caller.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _quietly(pages: Iterator[Page]) -> Iterator[Page]:
    """Advance ``pages`` under :func:`_quiet`, releasing it before each yield."""
    while True:
        with _quiet():
            page = next(pages, None)
        if page is None:
            return
        yield page


def _open_regular(path: Path, *, max_bytes: int | None) -> tuple[int, os.stat_result]:
    """Open a regular file without ever following a link or opening a device.

    lstat first, because merely opening a device or FIFO can block or have side
    effects; then O_NOFOLLOW|O_NONBLOCK and fstat, so a swap between the two steps is
    caught too.
    """
    try:
        lst = os.lstat(path)
    except FileNotFoundError as exc:
        raise bad_input("vanished", detail=repr(exc)) from exc
    except OSError as exc:
        raise bad_input("unreadable", detail=repr(exc)) from exc
    _check_stat(lst, max_bytes)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise bad_input("vanished", detail=repr(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise bad_input("symlink", detail=repr(exc)) from exc
        raise bad_input("unreadable", detail=repr(exc)) from exc
    try:
        st = os.fstat(fd)
        _check_stat(st, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _check_stat(st: os.stat_result, max_bytes: int | None) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise bad_input("symlink")
    if not stat.S_ISREG(st.st_mode):
        raise bad_input("special_file", detail=f"mode {stat.filemode(st.st_mode)}")
    if st.st_size == 0:
        raise bad_input("empty")
    if max_bytes is not None and st.st_size > max_bytes:
        raise bad_input(
            "too_large",
            size=f"{st.st_size / 1024**2:.0f}",
            limit=f"{max_bytes / 1024**2:.0f}",
            detail=f"{st.st_size} bytes > {max_bytes}",
        )


def _dpi_from_info(info: dict[str, object]) -> tuple[float, float] | None:
    """Resolution from Pillow's metadata, or None when absent or a placeholder."""
    value = info.get("dpi")
    if not isinstance(value, tuple) or len(value) != 2:
        return None
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    if x < _MIN_PLAUSIBLE_DPI or y < _MIN_PLAUSIBLE_DPI:
        return None
    return round(x, 1), round(y, 1)


def _check_pixels(size: tuple[int, int], max_pixels: int, page: int | None = None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise bad_input("damaged", page=page, detail=f"size {width}x{height}")
    if width * height > max_pixels:
        raise _bomb(width, height, f"{width * height} > max_pixels {max_pixels}", page=page)


def _single_image(data: bytes, media: str, max_pixels: int) -> Page:
    """Check a JPEG or PNG whose original bytes are stored unchanged."""
    if media == JPEG:
        _check_jpeg_structure(data)
        opener: type[ImageFile.ImageFile] = JpegImagePlugin.JpegImageFile
    else:
        _check_png_structure(data, max_pixels)
        opener = PngImagePlugin.PngImageFile
    try:
        # The plugin class is used directly: the format is already known from the
        # magic bytes, and Image.open would apply Pillow's global bomb limit.
        img = opener(io.BytesIO(data))
    except ValueError as exc:
        if "too large" not in str(exc):
            raise _decode_failure(exc, None) from exc
        # Pillow's PNG text-chunk limit: compressed metadata that inflates absurdly.
        raise bad_input("decompression_bomb", size="metadata", detail=repr(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise _decode_failure(exc, None) from exc
    _check_pixels(img.size, max_pixels)
    page = Page(0, data, media, img.size, _dpi_from_info(img.info))
    _check_single(page)
    return page


def _check_single(page: Page) -> None:
    """Decode a one-page file's only page; its failure concerns the whole file, so
    the message does not name a page."""
    try:
        page.image(CHECK_REDUCE)
    except BadInput as exc:
        message = exc.message.removeprefix(f"Page {page.index + 1}: ")
        raise BadInput(exc.reason, message, detail=exc.detail) from exc


def _check_jpeg_structure(data: bytes) -> None:
    """Catch a JPEG cut short without decoding it.

    Walks the marker segments to the first start-of-scan, then requires an
    end-of-image marker after it. Entropy-coded data byte-stuffs every 0xFF, so FFD9
    after SOS can only be the real EOI; an EXIF thumbnail's EOI comes before SOS and
    cannot fool the check. A file cut anywhere, or zero-filled after a failed copy,
    has no such marker. Costs one backward byte search.
    """
    n = len(data)
    pos = 2
    sos = -1
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise bad_input("damaged", detail=f"no JPEG marker at offset {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if marker == 0xD9:
            raise bad_input("damaged", detail="JPEG ends before any image data")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xDA:
            sos = pos
            break
        pos += 2 + length
    if sos < 0:
        raise bad_input("truncated", detail="JPEG ends inside its headers")
    if data.rfind(b"\xff\xd9") < sos:
        raise bad_input("truncated", detail="JPEG has no end-of-image marker after its scan data")


def _check_png_structure(data: bytes, max_pixels: int) -> None:
    """Catch a PNG cut short or corrupted, and a bomb, before any inflating.

    Walks every chunk checking its CRC up to IEND (zlib's crc32 runs at memory speed),
    and judges the declared size from IHDR first, so a tiny file claiming gigapixels is
    refused without Pillow ever allocating for it.
    """
    n = len(data)
    pos = len(_PNG_SIGNATURE)
    first = True
    while True:
        if pos + 8 > n:
            raise bad_input("truncated", detail=f"PNG stops at offset {pos} before IEND")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if first:
            if pos + 16 > n:
                raise bad_input("truncated", detail="PNG stops inside IHDR")
            if kind != b"IHDR" or length < 8:
                raise bad_input("damaged", detail="PNG does not start with IHDR")
            width, height = struct.unpack_from(">II", data, pos + 8)
            _check_pixels((width, height), max_pixels)
            first = False
        if end > n:
            raise bad_input("truncated", detail=f"PNG chunk {kind!r} at {pos} runs past the end")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise bad_input("damaged", detail=f"PNG chunk {kind!r} at {pos} fails its CRC")
        if kind == _PNG_IEND:
            return
        pos = end


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Bring any decoded mode to L or RGB, the two modes callers are promised."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode.startswith("I;16"):
        arr = np.asarray(img).astype(np.uint16)
        return Image.fromarray((arr >> 8).astype(np.uint8), "L")
    if mode in ("1", "LA", "La", "I", "F"):
        return img.convert("L")
    return img.convert("RGB")


def _decode_jpeg(data: bytes, reduce: int) -> Image.Image:
    img = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    width, height = img.size
    target = (max(1, width // reduce), max(1, height // reduce))
    if reduce > 1:
        # Draft mode lets libjpeg scale by 1/2, 1/4 or 1/8 inside the IDCT: about five
        # times cheaper at 1/4 than a full decode followed by a resize.
        img.draft("RGB" if img.mode in ("RGB", "YCbCr") else img.mode, target)
    img.load()
    img = _to_l_or_rgb(img)
    if abs(img.width - target[0]) > 1:
        img = img.resize(target, Image.Resampling.BOX)
    return img


def _decode_raster(data: bytes, media: str, reduce: int) -> Image.Image:
    opener = PngImagePlugin.PngImageFile if media == PNG else TiffImagePlugin.TiffImageFile
    img = opener(io.BytesIO(data))
    img.load()
    img = _to_l_or_rgb(img)
    return img.reduce(reduce) if reduce > 1 else img


def _render_pdf(data: bytes, dpi: float) -> Image.Image:
    doc = pdfium.PdfDocument(data)
    try:
        page = doc[0]
        try:
            bitmap = page.render(scale=dpi / 72.0, rev_byteorder=True)
            # convert() always copies, so the image outlives the bitmap's buffer.
            img = bitmap.to_pil().convert("RGB")
            bitmap.close()
            return img
        finally:
            page.close()
    finally:
        doc.close()


def _tiff_pages(f: BinaryIO, size: int, max_pixels: int) -> Iterator[Page]:
    """Yield TIFF frames, reading one frame's strips at a time from the open file.

    A single-frame TIFF is stored as it came; each frame of a multi-page TIFF is
    re-saved as a single-page TIFF with a lossless codec (Group 4 for bilevel, Deflate
    otherwise): same pixels, though a JPEG-compressed frame grows in the process.
    """
    f.seek(0)
    header = f.read(16)
    big = header[2:4] in (b"+\x00", b"\x00+")
    fmt = ("<" if header[:2] == b"II" else ">") + ("Q" if big else "I")
    if len(header) < (16 if big else 8):
        raise bad_input("truncated", detail=f"TIFF header is only {len(header)} bytes")
    (first_ifd,) = struct.unpack_from(fmt, header, 8 if big else 4)
    if first_ifd >= size:
        raise bad_input("truncated", detail=f"first IFD at {first_ifd} beyond end {size}")
    try:
        f.seek(0)
        img = TiffImagePlugin.TiffImageFile(f)
        count = img.n_frames
    except MemoryError:
        raise
    except Exception as exc:
        raise _decode_failure(exc, None) from exc
    _check_pixels(img.size, max_pixels, page=0 if count > 1 else None)
    if count == 1:
        f.seek(0)
        try:
            data = f.read()
        except OSError as exc:
            raise bad_input("unreadable", detail=repr(exc)) from exc
        page = Page(0, data, TIFF, img.size, _dpi_from_info(img.info))
        _check_single(page)
        yield page
        return
    for index in range(count):
        try:
            img.seek(index)
            _check_pixels(img.size, max_pixels, page=index)
            img.load()
            dpi = _dpi_from_info(img.info)
            data = _save_frame(img, dpi)
            reduced = _to_l_or_rgb(img).reduce(CHECK_REDUCE)
        except BadInput:
            raise
        except Image.DecompressionBombError as exc:
            raise _bomb(*img.size, repr(exc), page=index) from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise _decode_failure(exc, index) from exc
        page = Page(index, data, TIFF, img.size, dpi)
        # The frame is already decoded at full size; reducing it here spares image()
        # a second decode of the bytes just written.
        page._cache = (CHECK_REDUCE, reduced)
        yield page


def _save_frame(img: Image.Image, dpi: tuple[float, float] | None) -> bytes:
    compression = "group4" if img.mode == "1" else "tiff_adobe_deflate"
    params: dict[str, object] = {"compression": compression}
    if dpi is not None:
        params["dpi"] = dpi
    icc = img.info.get("icc_profile")
    if icc:
        params["icc_profile"] = icc
    buf = io.BytesIO()
    img.save(buf, "TIFF", **params)
    return buf.getvalue()


def _pdf_pages(f: BinaryIO, size: int, max_pixels: int) -> Iterator[Page]:
    """Yield PDF pages, each exported as its own PDF with its original content.

    The source is read through the open file handle, so pdfium pulls in only what
    each page needs; one page is open at a time.
    """
    # pdfium sets its last-error code only on failure, so a PDF that parses but has no
    # pages would be reported with whatever failed before (say, the previous file's
    # password error). Failing a path load first leaves "file access error", which a
    # stream load never produces, so that stale value identifies the no-pages case.
    pdfium_c.FPDF_LoadDocument(b"\0", None)
    try:
        doc = pdfium.PdfDocument(f, autoclose=False)
    except pdfium.PdfiumError as exc:
        raise _pdf_open_error(exc) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise bad_input("damaged_pdf", detail=repr(exc)) from exc
    try:
        f.seek(max(0, size - _PDF_TAIL_BYTES))
        if b"%%EOF" not in f.read():
            # pdfium rebuilds a cut-off PDF from what is left and would silently lose
            # the missing pages; a legal record must not be stored that way.
            raise bad_input("truncated", detail="no %%EOF in the last 1024 bytes")
        for index in range(len(doc)):
            yield _pdf_page(doc, index, max_pixels)
    finally:
        doc.close()


def _pdf_open_error(exc: pdfium.PdfiumError) -> BadInput:
    code = exc.err_code
    if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
        return bad_input("encrypted_pdf", detail=repr(exc))
    if code in (pdfium_c.FPDF_ERR_FILE, pdfium_c.FPDF_ERR_SUCCESS):
        return bad_input("no_pages", detail=repr(exc))
    return bad_input("damaged_pdf", detail=repr(exc))


def _pdf_page(doc: pdfium.PdfDocument, index: int, max_pixels: int) -> Page:
    try:
        src = doc[index]
        try:
            width_pt, height_pt = src.get_size()
            dpi = _pdf_scan_dpi(src, width_pt * height_pt, max_pixels, index)
            if dpi is not None and src.get_rotation() % 180 == 90:
                dpi = (dpi[1], dpi[0])
        finally:
            src.close()
        render_dpi = max(dpi) if dpi is not None else DEFAULT_PDF_DPI
        # A huge vector page (a plan at A0) is no bomb: it is rendered at a lower scale.
        area_in = (width_pt / 72.0) * (height_pt / 72.0)
        if area_in <= 0:
            raise bad_input("damaged_pdf", page=index, detail=f"page size {width_pt}x{height_pt}")
        render_dpi = min(render_dpi, math.sqrt(max_pixels / area_in))
        pixel_size = (
            max(1, round(width_pt * render_dpi / 72.0)),
            max(1, round(height_pt * render_dpi / 72.0)),
        )
        single = pdfium.PdfDocument.new()
        try:
            single.import_pages(doc, [index])
            buf = io.BytesIO()
            single.save(buf, version=17)
        finally:
            single.close()
    except (BadInput, MemoryError):
        raise
    except Exception as exc:
        raise bad_input("damaged_pdf", page=index, detail=repr(exc)) from exc
    page = Page(index, buf.getvalue(), PDF, pixel_size, dpi, _render_dpi=render_dpi)
    page.image(CHECK_REDUCE)
    return page


def _pdf_scan_dpi(
    page: pdfium.PdfPage, page_area: float, max_pixels: int, index: int
) -> tuple[float, float] | None:
    """Effective resolution of the page's scan: the image covering most of the page.

    Also refuses an embedded image whose pixel count is a bomb, since pdfium decodes
    embedded images whole whatever the render scale.
    """
    best: tuple[float, tuple[float, float]] | None = None
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
        if not isinstance(obj, pdfium.PdfImage):
            continue
        width_px, height_px = obj.get_px_size()
        _check_pixels((max(1, width_px), max(1, height_px)), max_pixels, page=index)
        left, bottom, right, top = obj.get_bounds()
        area = max(0.0, right - left) * max(0.0, top - bottom)
        if page_area <= 0 or area < _MIN_SCAN_AREA_FRACTION * page_area:
            continue
        meta = obj.get_metadata()
        x, y = float(meta.horizontal_dpi), float(meta.vertical_dpi)
        if x < _MIN_PLAUSIBLE_DPI or y < _MIN_PLAUSIBLE_DPI:
            continue
        # Scanners' mixed-raster PDFs lay a sharp text mask over a coarse background,
        # both full-page: between images of about the same area the sharper one counts.
        if (
            best is None
            or area > best[0] * 1.01
            or (area >= best[0] * 0.99 and max(x, y) > max(best[1]))
        ):
            best = (area, (round(x, 1), round(y, 1)))
    return best[1] if best is not None else None
