"""Turn one settled scanner file into pages, one page in memory at a time.

Everything that cannot become pages is reported as :class:`BadInput` with a stable
reason code, so the caller can quarantine the file with a message a clerk can act on;
nothing in here is allowed to crash the daemon or to be fooled by a file's name.

Each page is checked by decoding it once at :data:`CHECK_REDUCE` before it is
yielded, and that decode is kept on the page: the barcode pass at half scale costs no
second decode, and the quality pass's quarter-scale image is reduced from it.

Memory is the scarce thing on a 1-2 GB box, and a file's size says nothing about it: a
half-megabyte PNG can inflate to half a gigabyte. So every decode is priced in decoded
bytes before it starts, a page whose analysis would not fit :data:`BUDGET` is refused
before anything is decoded, and decodes wait their turn so that together they never
exceed it (see :class:`DecodeBudget`).
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
import threading
import traceback
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from edge.capture import pngbands

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

KEEP_DECODE_BYTES: Final = 12 * 2**20
"""The checking decode is kept on the page only up to this size (a 300-dpi A4 colour page
at half scale is 8.7 MB). Pages wait in the pipeline's look-ahead with it; a 600-dpi page's
is decoded again by its analysis instead, under the budget, rather than held outside it."""

BUDGET_FLOOR: Final = 64 * 2**20
BUDGET_CAP: Final = 200 * 2**20
"""The automatic decode budget is a quarter of the machine's memory within these bounds.

The cap keeps the daemon's peak under 300 MB (about 70 MB of code and libraries, plus
the budget, plus small pages in flight) and still fits the analysis of an A4 page
scanned at 600 dpi in colour (about 190 MB for a PNG, the costliest format)."""

DECODER_WORK: Final = 4
"""Bytes of working memory zxing-cpp and zbar take per pixel of the grey image they read
(measured on a 35-megapixel page: 3 for the fast pass, 4 for the thorough chain)."""

_PDF_BAND_BYTES: Final = 8 * 2**20
"""PDF pages are rendered in horizontal bands of about this size: a full-scale 600-dpi page
never exists twice (pdfium's bitmap and its copy) in memory."""

_PDF_TAIL_BYTES: Final = 1024
_SNIFF_BYTES: Final = 1024
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_IEND: Final = b"IEND"


class Reason(StrEnum):
    """Why a file (or a page of it) cannot become pages: a closed set, each with an English
    message here and the clerk's sentence in both UI catalogues (tests/test_reasons.py)."""

    EMPTY = "empty"
    TRUNCATED = "truncated"
    DAMAGED = "damaged"
    DAMAGED_PDF = "damaged_pdf"
    NO_PAGES = "no_pages"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED = "unsupported"
    ENCRYPTED_PDF = "encrypted_pdf"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_BIG_TO_DECODE = "too_big_to_decode"
    OUT_OF_MEMORY = "out_of_memory"
    SYMLINK = "symlink"
    SPECIAL_FILE = "special_file"
    TOO_LARGE = "too_large"
    VANISHED = "vanished"
    UNREADABLE = "unreadable"


_MESSAGES: Final[dict[Reason, str]] = {
    Reason.EMPTY: "The file is empty (0 bytes): scan the page again.",
    Reason.TRUNCATED: (
        "The file is incomplete: it stops before its end, probably because scanning or "
        "copying was interrupted. Scan the document again."
    ),
    Reason.DAMAGED: "The image is damaged and cannot be decoded: scan the page again.",
    Reason.DAMAGED_PDF: (
        "The PDF file is damaged and cannot be opened: scan the document again, "
        "or save it again as PDF."
    ),
    Reason.NO_PAGES: "The PDF file contains no pages: scan the document again.",
    Reason.NOT_AN_IMAGE: (
        "The file is not a scan: its content is neither an image nor a PDF, whatever its "
        "name says. Remove it from the scanner folder."
    ),
    Reason.UNSUPPORTED: (
        "The file format ({kind}) is not accepted: set the scanner to save PDF, JPEG, PNG "
        "or TIFF files and scan again."
    ),
    Reason.ENCRYPTED_PDF: (
        "The PDF is protected by a password: save it again without a password, "
        "or scan the paper document."
    ),
    Reason.DECOMPRESSION_BOMB: (
        "The image claims an impossibly large size ({size}) and was not opened: "
        "scan the page again at 300 dpi."
    ),
    Reason.TOO_BIG_TO_DECODE: (
        "The image is too large for this box to open ({size}, about {need} MB of memory; "
        "the limit is {limit} MB) and was not opened: scan the page again at 300 dpi."
    ),
    Reason.OUT_OF_MEMORY: (
        "The box ran out of memory opening this image: scan the page again at 300 dpi, "
        "or with fewer pages per file."
    ),
    Reason.SYMLINK: (
        "This is a link to another file, not a scan, and links are never followed: "
        "copy the real file into the scanner folder."
    ),
    Reason.SPECIAL_FILE: (
        "This is not an ordinary file (a folder, device, pipe or socket): "
        "remove it from the scanner folder."
    ),
    Reason.TOO_LARGE: (
        "The file is too large ({size} MB; the limit is {limit} MB): scan fewer pages "
        "per file, or scan at a lower resolution."
    ),
    Reason.VANISHED: (
        "The file disappeared before it could be read (moved or deleted): "
        "check the scanner folder and scan again if needed."
    ),
    Reason.UNREADABLE: (
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
        self, reason: Reason, message: str, *, detail: str = "", page: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail
        self.page = page

    def __repr__(self) -> str:
        return f"BadInput({str(self.reason)!r}, {self.message!r}, detail={self.detail!r})"


def bad_input(
    reason: Reason, *, detail: str = "", page: int | None = None, **fmt: object
) -> BadInput:
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
        return bad_input(Reason.DAMAGED_PDF, page=page, detail=repr(exc))
    reason = Reason.TRUNCATED if "truncated" in str(exc) else Reason.DAMAGED
    return bad_input(reason, page=page, detail=repr(exc))


def _bomb(width: int, height: int, detail: str, page: int | None = None) -> BadInput:
    return bad_input(
        Reason.DECOMPRESSION_BOMB, page=page, size=f"{width} x {height} pixels", detail=detail
    )


def _out_of_memory(exc: MemoryError, page: int | None) -> BadInput:
    """The file is the likeliest cause, and the process must outlive it: the frames that
    held its images are cleared so their memory goes with the exception."""
    traceback.clear_frames(exc.__traceback__)
    return bad_input(Reason.OUT_OF_MEMORY, page=page, detail=f"MemoryError {exc}")


class DecodeBudget:
    """The decoded bytes this process's images may take at once, shared by every thread.

    Memory belongs to the process, so the budget does too: the reader on the main thread
    and the analysis threads draw on the same one. A lease waits for bytes to come free
    rather than failing, so two 600-dpi pages take turns instead of one of them dying.
    A thread that holds a lease decodes under it freely (the lease priced the whole
    job), which also means no thread ever waits for bytes while holding some.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._cond = threading.Condition()
        self._local = threading.local()

    @property
    def used(self) -> int:
        return self._used

    @contextlib.contextmanager
    def lease(self, nbytes: int) -> Iterator[None]:
        if getattr(self._local, "held", False):
            yield
            return
        nbytes = max(0, min(nbytes, self.capacity))
        with self._cond:
            while self._used and self._used + nbytes > self.capacity:
                self._cond.wait()
            self._used += nbytes
        self._local.held = True
        try:
            yield
        finally:
            self._local.held = False
            with self._cond:
                self._used -= nbytes
                self._cond.notify_all()


def machine_budget() -> int:
    """A quarter of the machine's memory, between :data:`BUDGET_FLOOR` and :data:`BUDGET_CAP`."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return BUDGET_CAP
    return max(BUDGET_FLOOR, min(BUDGET_CAP, total // 4))


BUDGET: Final = DecodeBudget(machine_budget())

_PILLOW_BLOCK_BYTES: Final = 64 * 2**20
"""Pillow allocates an image in blocks of at most this many bytes. Its default (16 MiB)
makes blocks just under glibc's mmap threshold (16 MiB, edge.daemon.tune_malloc), so
every large image landed on the heap, and a freed 600-dpi page stayed in the process
as fragments: RSS grew by a page's size per page. Larger blocks are mmapped, and
returned to the system the moment the image is freed."""

Image.core.set_block_size(_PILLOW_BLOCK_BYTES)


def set_decode_budget(megabytes: int) -> None:
    """Apply the ``max_decode_mb`` setting; 0 sizes the budget from the machine's memory."""
    BUDGET.capacity = megabytes * 2**20 if megabytes > 0 else machine_budget()


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel takes in Pillow's memory: RGB takes four, like RGBA."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


_REDUCIBLE: Final = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "I", "F"})
"""Modes Pillow's ``reduce`` averages correctly: a palette index or a packed 16-bit
value cannot be averaged, so those are converted first."""


@dataclass(frozen=True)
class Embedded:
    """An image inside a PDF page: what pdfium must decode to draw the page."""

    pixels: int
    bits: int
    scaled: bool
    """A JPEG, which pdfium decodes at the render scale; anything else is decoded whole."""


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
    _mode: str = field(default="RGB", repr=False)
    """Pillow's mode for the decoded source (for a PDF, the rendered page)."""
    _embedded: Sequence[Embedded] = field(default=(), repr=False)
    _banded: bool = field(default=False, repr=False)
    """A PNG whose rows :mod:`edge.capture.pngbands` can decode a band at a time."""
    _cache: tuple[int, Image.Image] | None = field(default=None, init=False, repr=False)
    _grey: bool = field(default=False, init=False, repr=False)

    def image(self, reduce: int = 1) -> Image.Image:
        """Return the page decoded at about 1/``reduce`` scale, in mode ``RGB`` or ``L``.

        The finest reduced decode is kept, so repeated calls at that scale are free
        and coarser scales are reduced from it; a full-size decode is never kept, as it can weigh
        100 MB, nor one larger than :data:`KEEP_DECODE_BYTES` made to check the page. The
        returned image is a copy the caller may modify.

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

    def colour_sample(self, reduce: int) -> Image.Image | None:
        """Every n-th pixel of the kept colour decode, about 1/``reduce`` of full scale, or
        None when no colour decode is kept.

        Judging colour needs no averaged copy of the page: reducing the half-scale colour
        decode by two cost more (4-6 ms) than every other quality check together, while a
        sample of it takes half a millisecond. Its pixels are still 2x2 averages (JPEG
        draft decoding scales inside the IDCT).
        """
        if self._cache is None or self._cache[1].mode != "RGB":
            return None
        level, cached = self._cache
        step = max(1, reduce // level)
        size = (max(1, cached.width // step), max(1, cached.height // step))
        return cached.resize(size, Image.Resampling.NEAREST)

    def drop_colour(self) -> None:
        """Keep only the grey levels of the kept decode, and decode in grey from now on.

        Called once colour has been judged; barcode decoders read grey anyway, and a grey
        full-scale decode takes a quarter of the memory of a colour one (JPEG draft, pdfium
        and a banded PNG produce grey directly; TIFF and other PNGs still decode whole first).
        """
        self._grey = True
        if self._cache is not None and self._cache[1].mode != "L":
            self._cache = (self._cache[0], self._cache[1].convert("L"))

    def forget_images(self) -> None:
        """Drop the kept decode once the page has been looked at; only ``data`` stays."""
        self._cache = None

    def decode_cost(self, reduce: int = 1, *, grey: bool = False) -> int:
        """Decoded bytes a decode at 1/``reduce`` holds at its peak, as each decoder
        allocates: what the budget is charged before the decode starts."""
        width, height = self.pixel_size
        out_px = max(1, width // reduce) * max(1, height // reduce)
        out = out_px * (1 if grey else 4)
        mode = self._mode
        if self.media_type == JPEG:
            scale = 1
            while scale * 2 <= min(reduce, 8):
                scale *= 2
            drafted = -(-width // scale) * -(-height // scale)
            direct = mode == "L" or (grey and mode in ("RGB", "YCbCr"))
            native = drafted * (1 if direct else _pixel_bytes(mode))
            converted = not direct and (grey or mode not in ("RGB", "YCbCr"))
            return native + (out if converted or scale != reduce else 0)
        if self.media_type == PDF:
            band = min(_PDF_BAND_BYTES, out_px * 3)
            images = sum(_embedded_cost(e, reduce) for e in self._embedded)
            return out + 2 * band + images
        if self._banded:
            return out + pngbands.BAND_COST
        native = width * height * _pixel_bytes(mode)
        if mode.startswith("I;16"):
            native *= 4  # the numpy path that brings 16 bits to 8 copies it three times
        reduced = out_px * _pixel_bytes(mode) if reduce > 1 else 0
        converted = mode not in ("L", "RGB") or (grey and mode != "L")
        return native + reduced + (out if converted else 0)

    def analysis_cost(self, scale: int = 1) -> int:
        """The most the capture pipeline's look at this page holds at once: the checking
        decode, or the barcode reader's finest look (see ``barcodes.read_page``) beside the
        two coarser grey copies it keeps. That look first decodes the page in grey at
        1/``scale``, then hands the result to decoders that take working memory of their
        own; the decode's buffers are gone by then, so the dearer of the two counts."""
        width, height = self.pixel_size
        finest = max(1, width // scale) * max(1, height // scale)
        coarser = max(1, width // (2 * scale)) * max(1, height // (2 * scale))
        reading = max(self.decode_cost(scale, grey=True), (1 + DECODER_WORK) * finest)
        return max(self.decode_cost(CHECK_REDUCE), 2 * coarser + reading)

    def lease(self, scale: int = 1) -> contextlib.AbstractContextManager[None]:
        """Hold the budget for the whole analysis of this page, decodes included; refuse,
        before decoding anything, a page whose analysis the budget cannot hold."""
        need = self.analysis_cost(scale)
        if need > BUDGET.capacity:
            raise _too_big(self.pixel_size, need, self.index)
        return BUDGET.lease(need)

    def check_budget(self, page: int | None) -> None:
        """Refuse, before decoding anything, a page whose checking decode the budget
        cannot hold; ``page`` is None when the page is the whole file."""
        need = self.decode_cost(CHECK_REDUCE)
        if need > BUDGET.capacity:
            raise _too_big(self.pixel_size, need, page)

    def _decode(self, reduce: int) -> Image.Image:
        grey = self._grey
        cost = self.decode_cost(reduce, grey=grey)
        if cost > BUDGET.capacity:
            raise _too_big(self.pixel_size, cost, self.index)
        try:
            with BUDGET.lease(cost), _quiet():
                if self.media_type == JPEG:
                    return _decode_jpeg(self.data, reduce, grey=grey)
                if self.media_type == PDF:
                    dpi = (self._render_dpi or DEFAULT_PDF_DPI) / reduce
                    return _render_pdf(self.data, dpi, grey=grey)
                return _decode_raster(self.data, self.media_type, reduce, grey=grey)
        except BadInput as exc:
            exc.page = self.index
            raise
        except Image.DecompressionBombError as exc:
            raise _bomb(*self.pixel_size, repr(exc), page=self.index) from exc
        except MemoryError as exc:
            raise _out_of_memory(exc, self.index) from None
        except Exception as exc:
            raise _decode_failure(exc, self.index, pdf=self.media_type == PDF) from exc


def _embedded_cost(image: Embedded, reduce: int) -> int:
    """pdfium scales a JPEG as it decodes it (measured: about two bytes a pixel at the render
    scale); anything else it decodes whole, to one byte a pixel up to 8 bits, else four."""
    if image.scaled:
        return image.pixels * 2 // (reduce * reduce)
    return image.pixels * (4 if image.bits > 8 else 1)


def _too_big(size: tuple[int, int], need: int, page: int | None) -> BadInput:
    width, height = size
    return bad_input(
        Reason.TOO_BIG_TO_DECODE,
        page=page,
        size=f"{width} x {height} pixels",
        need=f"{math.ceil(need / 2**20)}",
        limit=f"{BUDGET.capacity // 2**20}",
        detail=f"decode needs {need} bytes > budget {BUDGET.capacity}",
    )


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
            raise bad_input(Reason.SYMLINK)
        if not stat.S_ISREG(lst.st_mode):
            raise bad_input(Reason.SPECIAL_FILE, detail=f"mode {stat.filemode(lst.st_mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise bad_input(Reason.SYMLINK, detail=repr(exc)) from exc
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise bad_input(Reason.SPECIAL_FILE)
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
            raise bad_input(Reason.UNREADABLE, detail=repr(exc)) from exc
        media = _sniff_bytes(head)
        if media is None:
            raise bad_input(Reason.NOT_AN_IMAGE, detail=f"first bytes {head[:16]!r}")
        if media not in SUPPORTED:
            raise bad_input(Reason.UNSUPPORTED, kind=media.split("/")[1].upper(), detail=media)
        if media == PDF:
            yield from _quietly(_pdf_pages(f, st.st_size, max_pixels))
        elif media == TIFF:
            yield from _quietly(_tiff_pages(f, st.st_size, max_pixels))
        else:
            try:
                f.seek(0)
                data = f.read()  # one allocation of the file's size, not two
            except OSError as exc:
                raise bad_input(Reason.UNREADABLE, detail=repr(exc)) from exc
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
        raise bad_input(Reason.VANISHED, detail=repr(exc)) from exc
    except OSError as exc:
        raise bad_input(Reason.UNREADABLE, detail=repr(exc)) from exc
    _check_stat(lst, max_bytes)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise bad_input(Reason.VANISHED, detail=repr(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise bad_input(Reason.SYMLINK, detail=repr(exc)) from exc
        raise bad_input(Reason.UNREADABLE, detail=repr(exc)) from exc
    try:
        st = os.fstat(fd)
        _check_stat(st, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _check_stat(st: os.stat_result, max_bytes: int | None) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise bad_input(Reason.SYMLINK)
    if not stat.S_ISREG(st.st_mode):
        raise bad_input(Reason.SPECIAL_FILE, detail=f"mode {stat.filemode(st.st_mode)}")
    if st.st_size == 0:
        raise bad_input(Reason.EMPTY)
    if max_bytes is not None and st.st_size > max_bytes:
        raise bad_input(
            Reason.TOO_LARGE,
            size=f"{st.st_size / 1024**2:.0f}",
            limit=f"{max_bytes / 1024**2:.0f}",
            detail=f"{st.st_size} bytes > {max_bytes}",
        )


def _dpi_from_info(info: Mapping[Any, object]) -> tuple[float, float] | None:
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
        raise bad_input(Reason.DAMAGED, page=page, detail=f"size {width}x{height}")
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
        raise bad_input(Reason.DECOMPRESSION_BOMB, size="metadata", detail=repr(exc)) from exc
    except MemoryError as exc:
        raise _out_of_memory(exc, None) from None
    except Exception as exc:
        raise _decode_failure(exc, None) from exc
    _check_pixels(img.size, max_pixels)
    banded = media == PNG and pngbands.layout(data) is not None
    page = Page(0, data, media, img.size, _dpi_from_info(img.info), _mode=img.mode, _banded=banded)
    _check_single(page)
    return page


def _check_single(page: Page) -> None:
    """Decode a one-page file's only page; its failure concerns the whole file, so
    the message does not name a page."""
    page.check_budget(None)
    try:
        _check_decode(page)
    except BadInput as exc:
        message = exc.message.removeprefix(f"Page {page.index + 1}: ")
        raise BadInput(exc.reason, message, detail=exc.detail) from exc


def _check_decode(page: Page) -> None:
    """Decode the page once to prove it decodes; keep that decode only if it is small."""
    if page._cache is not None:
        return
    img = page._decode(CHECK_REDUCE)
    if _half_bytes(page.pixel_size) <= KEEP_DECODE_BYTES:
        page._cache = (CHECK_REDUCE, img)


def _half_bytes(size: tuple[int, int]) -> int:
    """What the kept checking decode weighs, in colour."""
    return max(1, size[0] // CHECK_REDUCE) * max(1, size[1] // CHECK_REDUCE) * 4


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
            raise bad_input(Reason.DAMAGED, detail=f"no JPEG marker at offset {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if marker == 0xD9:
            raise bad_input(Reason.DAMAGED, detail="JPEG ends before any image data")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xDA:
            sos = pos
            break
        pos += 2 + length
    if sos < 0:
        raise bad_input(Reason.TRUNCATED, detail="JPEG ends inside its headers")
    if data.rfind(b"\xff\xd9") < sos:
        raise bad_input(
            Reason.TRUNCATED, detail="JPEG has no end-of-image marker after its scan data"
        )


def _check_png_structure(data: bytes, max_pixels: int) -> None:
    """Catch a PNG cut short or corrupted, and a bomb, before any inflating.

    Walks every chunk checking its CRC up to IEND (zlib's crc32 runs at memory speed),
    and judges the declared size from IHDR first, so a tiny file claiming gigapixels is
    refused without Pillow ever allocating for it.
    """
    n = len(data)
    view = memoryview(data)  # chunks are checked in place, never copied
    pos = len(_PNG_SIGNATURE)
    first = True
    while True:
        if pos + 8 > n:
            raise bad_input(Reason.TRUNCATED, detail=f"PNG stops at offset {pos} before IEND")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if first:
            if pos + 16 > n:
                raise bad_input(Reason.TRUNCATED, detail="PNG stops inside IHDR")
            if kind != b"IHDR" or length < 8:
                raise bad_input(Reason.DAMAGED, detail="PNG does not start with IHDR")
            width, height = struct.unpack_from(">II", data, pos + 8)
            _check_pixels((width, height), max_pixels)
            first = False
        if end > n:
            raise bad_input(
                Reason.TRUNCATED, detail=f"PNG chunk {kind!r} at {pos} runs past the end"
            )
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise bad_input(Reason.DAMAGED, detail=f"PNG chunk {kind!r} at {pos} fails its CRC")
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


def _decode_jpeg(data: bytes, reduce: int, *, grey: bool = False) -> Image.Image:
    img: Image.Image = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    width, height = img.size
    target = (max(1, width // reduce), max(1, height // reduce))
    colour = img.mode in ("RGB", "YCbCr")
    if reduce > 1 or (grey and colour):
        # Draft mode lets libjpeg scale by 1/2, 1/4 or 1/8 inside the IDCT: about five
        # times cheaper at 1/4 than a full decode followed by a resize. It also converts
        # colour to grey as it decodes, so a grey page never exists in colour.
        img.draft("L" if grey and colour else "RGB" if colour else img.mode, target)
    img.load()
    img = _to_l_or_rgb(img)
    if grey and img.mode != "L":
        img = img.convert("L")
    if abs(img.width - target[0]) > 1:
        img = img.resize(target, Image.Resampling.BOX)
    return img


def _decode_raster(data: bytes, media: str, reduce: int, *, grey: bool = False) -> Image.Image:
    """Decode a PNG in bands when its layout allows, else a PNG or TIFF whole (Pillow
    decodes neither in part or at a smaller scale), then reduce it before converting, so
    the full-size image exists only once."""
    if media == PNG and (png := pngbands.layout(data)) is not None:
        return _decode_png_bands(data, png, reduce, grey=grey)
    opener = PngImagePlugin.PngImageFile if media == PNG else TiffImagePlugin.TiffImageFile
    img: Image.Image = opener(io.BytesIO(data))
    img.load()
    return _reduced(img, reduce, grey=grey)


def _reduced(img: Image.Image, reduce: int, *, grey: bool) -> Image.Image:
    if reduce > 1:
        if img.mode not in _REDUCIBLE:
            img = _to_l_or_rgb(img)
        img = img.reduce(reduce)
    img = _to_l_or_rgb(img)
    return img.convert("L") if grey and img.mode != "L" else img


def _decode_png_bands(data: bytes, png: pngbands.Layout, reduce: int, *, grey: bool) -> Image.Image:
    """Each band reduced and converted as the whole image would be, pasted in its place:
    only the result and one band are ever in memory."""
    out: Image.Image | None = None
    size = (-(-png.width // reduce), -(-png.height // reduce))
    for top, band in pngbands.bands(data, png, pngbands.band_rows(png, reduce)):
        part = _reduced(band, reduce, grey=grey)
        del band
        if out is None:
            out = Image.new(part.mode, size)
        out.paste(part, (0, top // reduce))
    assert out is not None  # a layout has at least one row
    return out


def _render_pdf(data: bytes, dpi: float, *, grey: bool = False) -> Image.Image:
    """Render a one-page PDF in horizontal bands into one image.

    pdfium's bitmap has to be copied to outlive its buffer; band by band, only a band
    exists twice, and a grey page is never held in colour.
    """
    doc = pdfium.PdfDocument(data)
    try:
        page = doc[0]
        try:
            return _render_bands(page, dpi / 72.0, grey)
        finally:
            page.close()
    finally:
        doc.close()


def _render_bands(page: pdfium.PdfPage, scale: float, grey: bool) -> Image.Image:
    width = max(1, math.ceil(page.get_width() * scale))
    height = max(1, math.ceil(page.get_height() * scale))
    out = Image.new("L" if grey else "RGB", (width, height))
    rows = max(16, _PDF_BAND_BYTES // (width * 3))
    flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
    flags |= pdfium_c.FPDF_RENDER_LIMITEDIMAGECACHE
    for top in range(0, height, rows):
        band = min(rows, height - top)
        bitmap = pdfium.PdfBitmap.new_native(
            width, band, pdfium_c.FPDFBitmap_BGR, rev_byteorder=True
        )
        try:
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, band)
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, -top, width, height, 0, flags)
            strip = bitmap.to_pil()
            out.paste(strip.convert("L") if grey else strip, (0, top))
            del strip
        finally:
            bitmap.close()
    return out


def _tiff_pages(f: BinaryIO, size: int, max_pixels: int) -> Iterator[Page]:
    """Yield TIFF frames, reading one frame's strips at a time from the open file.

    A single-frame compressed TIFF is stored as it came; each frame of a multi-page TIFF,
    and an uncompressed one, is re-saved as a single-page TIFF with a lossless codec (Group 4
    for bilevel, Deflate otherwise): same pixels, though a JPEG-compressed frame grows in the
    process. An uncompressed 600-dpi colour page is 104 MB: kept as it came, it would be
    held, sealed and stored three times over (beyond a Pi's memory) and synced at five times
    the size it needs.
    """
    f.seek(0)
    header = f.read(16)
    big = header[2:4] in (b"+\x00", b"\x00+")
    fmt = ("<" if header[:2] == b"II" else ">") + ("Q" if big else "I")
    if len(header) < (16 if big else 8):
        raise bad_input(Reason.TRUNCATED, detail=f"TIFF header is only {len(header)} bytes")
    (first_ifd,) = struct.unpack_from(fmt, header, 8 if big else 4)
    if first_ifd >= size:
        raise bad_input(Reason.TRUNCATED, detail=f"first IFD at {first_ifd} beyond end {size}")
    try:
        f.seek(0)
        img = TiffImagePlugin.TiffImageFile(f)
        count = img.n_frames
    except MemoryError as exc:
        raise _out_of_memory(exc, None) from None
    except Exception as exc:
        raise _decode_failure(exc, None) from exc
    _check_pixels(img.size, max_pixels, page=0 if count > 1 else None)
    if count == 1 and img.info.get("compression") != "raw":
        f.seek(0)
        try:
            data = f.read()
        except OSError as exc:
            raise bad_input(Reason.UNREADABLE, detail=repr(exc)) from exc
        page = Page(0, data, TIFF, img.size, _dpi_from_info(img.info), _mode=img.mode)
        _check_single(page)
        yield page
        return
    for index in range(count):
        page = _tiff_frame(img, index, max_pixels)
        yield page


def _tiff_frame(img: TiffImagePlugin.TiffImageFile, index: int, max_pixels: int) -> Page:
    """Decode one frame of a multi-page TIFF under the budget, and re-save it alone."""
    try:
        img.seek(index)
        _check_pixels(img.size, max_pixels, page=index)
        # priced as the frame will be decoded again by its analysis, refused if too big
        probe = Page(index, b"", TIFF, img.size, None, _mode=img.mode)
        probe.check_budget(index)
        with BUDGET.lease(probe.decode_cost(CHECK_REDUCE)):
            img.load()
            dpi = _dpi_from_info(img.info)
            data = _save_frame(img, dpi)
            reduced = None
            if _half_bytes(img.size) <= KEEP_DECODE_BYTES:
                # The frame is already decoded at full size; reducing it here spares
                # image() a second decode of the bytes just written.
                reduced = _to_l_or_rgb(img).reduce(CHECK_REDUCE)
            # The full frame must not wait with the page in the pipeline, outside the
            # budget; Pillow allocates it again for the next frame (it does the same).
            img._im = None
    except BadInput:
        raise
    except Image.DecompressionBombError as exc:
        raise _bomb(*img.size, repr(exc), page=index) from exc
    except MemoryError as exc:
        raise _out_of_memory(exc, index) from None
    except Exception as exc:
        raise _decode_failure(exc, index) from exc
    page = Page(index, data, TIFF, img.size, dpi, _mode=probe._mode)
    if reduced is not None:
        page._cache = (CHECK_REDUCE, reduced)
    return page


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
    except MemoryError as exc:
        raise _out_of_memory(exc, None) from None
    except Exception as exc:
        raise bad_input(Reason.DAMAGED_PDF, detail=repr(exc)) from exc
    try:
        f.seek(max(0, size - _PDF_TAIL_BYTES))
        if b"%%EOF" not in f.read():
            # pdfium rebuilds a cut-off PDF from what is left and would silently lose
            # the missing pages; a legal record must not be stored that way.
            raise bad_input(Reason.TRUNCATED, detail="no %%EOF in the last 1024 bytes")
        for index in range(len(doc)):
            yield _pdf_page(doc, index, max_pixels)
    finally:
        doc.close()


def _pdf_open_error(exc: pdfium.PdfiumError) -> BadInput:
    code = exc.err_code
    if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
        return bad_input(Reason.ENCRYPTED_PDF, detail=repr(exc))
    if code in (pdfium_c.FPDF_ERR_FILE, pdfium_c.FPDF_ERR_SUCCESS):
        return bad_input(Reason.NO_PAGES, detail=repr(exc))
    return bad_input(Reason.DAMAGED_PDF, detail=repr(exc))


def _pdf_page(doc: pdfium.PdfDocument, index: int, max_pixels: int) -> Page:
    try:
        src = doc[index]
        try:
            width_pt, height_pt = src.get_size()
            dpi, embedded = _pdf_scan_dpi(src, width_pt * height_pt, max_pixels, index)
            if dpi is not None and src.get_rotation() % 180 == 90:
                dpi = (dpi[1], dpi[0])
        finally:
            src.close()
        render_dpi = max(dpi) if dpi is not None else DEFAULT_PDF_DPI
        # A huge vector page (a plan at A0) is no bomb: it is rendered at a lower scale.
        area_in = (width_pt / 72.0) * (height_pt / 72.0)
        if area_in <= 0:
            raise bad_input(
                Reason.DAMAGED_PDF, page=index, detail=f"page size {width_pt}x{height_pt}"
            )
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
    except BadInput:
        raise
    except MemoryError as exc:
        raise _out_of_memory(exc, index) from None
    except Exception as exc:
        raise bad_input(Reason.DAMAGED_PDF, page=index, detail=repr(exc)) from exc
    page = Page(
        index,
        buf.getvalue(),
        PDF,
        pixel_size,
        dpi,
        _render_dpi=render_dpi,
        _embedded=tuple(embedded),
    )
    page.check_budget(index)
    _check_decode(page)
    return page


def _pdf_scan_dpi(
    page: pdfium.PdfPage, page_area: float, max_pixels: int, index: int
) -> tuple[tuple[float, float] | None, list[Embedded]]:
    """Effective resolution of the page's scan (the image covering most of the page), and
    the images pdfium will have to decode to draw it.

    Also refuses an embedded image whose pixel count is a bomb, since pdfium decodes
    embedded images whole whatever the render scale (JPEGs excepted: those it scales).
    """
    best: tuple[float, tuple[float, float]] | None = None
    embedded: list[Embedded] = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
        if not isinstance(obj, pdfium.PdfImage):
            continue
        width_px, height_px = obj.get_px_size()
        _check_pixels((max(1, width_px), max(1, height_px)), max_pixels, page=index)
        meta = obj.get_metadata()
        filters = obj.get_filters()
        embedded.append(
            Embedded(
                max(1, width_px) * max(1, height_px),
                int(meta.bits_per_pixel),
                bool(filters) and filters[-1] == "DCTDecode",
            )
        )
        left, bottom, right, top = obj.get_bounds()
        area = max(0.0, right - left) * max(0.0, top - bottom)
        if page_area <= 0 or area < _MIN_SCAN_AREA_FRACTION * page_area:
            continue
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
    return (best[1] if best is not None else None), embedded
