"""Barcode reading for scanned pages.

Two back-ends sit behind one small interface: zxing-cpp (the stronger reader, and the only
one that reads Data Matrix) and libzbar through pyzbar (the design card's decoder). A
`DecoderChain` unions what several decoders read. `read_symbols` is what capture calls on
every page; it spends as little as it can on the common page, which carries no symbol, and
pays for full resolution only when a cheap pass saw a symbol it could not decode.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final, Protocol, TypeVar, cast, runtime_checkable

import numpy as np
import zxingcpp
from PIL import Image

log = logging.getLogger(__name__)

__all__ = [
    "CHEAP_FORMATS",
    "DEFAULT_TIERS",
    "FULL_PAGE",
    "LINEAR",
    "TOP_THIRD",
    "BarTextureProbe",
    "Confirmer",
    "Decoder",
    "DecoderChain",
    "MatrixTextureProbe",
    "PageReading",
    "PageSource",
    "Read",
    "Scan",
    "SuspectingDecoder",
    "Symbol",
    "Tier",
    "ZbarDecoder",
    "ZbarUnavailable",
    "ZxingDecoder",
    "confirm",
    "default_chain",
    "read_page",
    "read_symbols",
    "read_symbols_naive",
    "read_tier",
    "scale_for",
]


Box = tuple[int, int, int, int]
"""left, top, right, bottom in pixels of the image the symbol was read from."""


@dataclass(frozen=True)
class Symbol:
    """One decoded symbol; equal symbols from different decoders compare equal.

    ``box`` is where the symbol was found, when the decoder says; it is not part of equality,
    so the same text read at two scales is one symbol.
    """

    text: str
    symbology: str
    box: Box | None = field(default=None, compare=False, repr=False)

    def scaled(self, factor: int, top: int = 0) -> Symbol:
        """The same symbol with its box in the coordinates of a larger image."""
        if self.box is None:
            return self
        left, upper, right, lower = self.box
        return replace(
            self,
            box=(left * factor, upper * factor + top, right * factor, lower * factor + top),
        )


@dataclass(frozen=True)
class Scan:
    """What one decode attempt found, plus how many symbol-like things it could not decode.

    The suspect count is what lets the page reader pay for full resolution only on pages that
    visibly carry a symbol.
    """

    symbols: tuple[Symbol, ...] = ()
    suspects: int = 0
    bars: int = 0
    """Of the suspects, those that are 1-D bar texture no decoder read (see BarTextureProbe)."""
    matrix: int = 0
    """Of the suspects, those that are 2-D texture no decoder read (see MatrixTextureProbe)."""
    finders: int = 0
    """Of the suspects, QR codes whose finder patterns were found but whose data was not."""


class Decoder(Protocol):
    """Anything that reads symbols from an image."""

    name: str

    def decode(self, image: Image.Image) -> list[Symbol]: ...


@runtime_checkable
class SuspectingDecoder(Protocol):
    """A decoder that can also say "there is a symbol here that I could not decode"."""

    name: str

    def decode(self, image: Image.Image) -> list[Symbol]: ...

    def scan(self, image: Image.Image) -> Scan: ...


class PageSource(Protocol):
    """A page that can be decoded at reduced scale far more cheaply than at full scale."""

    def image(self, reduce: int) -> Image.Image: ...


def _decode_bytes(raw: bytes) -> str:
    """Keep every byte: payloads are codes, not prose, so nothing but trailing NUL is noise."""
    raw = raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _dedupe(symbols: Iterable[Symbol]) -> list[Symbol]:
    return list(dict.fromkeys(symbols))


# zxing-cpp 3 names formats hierarchically (Code 39 has Standard/Extended/Code 32/PZN
# variants, QR has Model 1/2); callers care about the family, in one spelling for both back-ends.
_ZXING_NAMES: Final[dict[str, str]] = {
    "QRCode": "qr",
    "QRCodeModel1": "qr",
    "QRCodeModel2": "qr",
    "MicroQRCode": "microqr",
    "RMQRCode": "rmqr",
    "DataMatrix": "datamatrix",
    "Aztec": "aztec",
    "AztecCode": "aztec",
    "AztecRune": "aztecrune",
    "PDF417": "pdf417",
    "CompactPDF417": "pdf417",
    "MicroPDF417": "micropdf417",
    "MaxiCode": "maxicode",
    "Code128": "code128",
    "Code39": "code39",
    "Code39Std": "code39",
    "Code39Ext": "code39",
    "Code32": "code32",
    "PZN": "pzn",
    "Code93": "code93",
    "Codabar": "codabar",
    "ITF": "itf",
    "ITF14": "itf14",
    "EAN13": "ean13",
    "EAN8": "ean8",
    "EAN5": "ean5",
    "EAN2": "ean2",
    "UPCA": "upca",
    "UPCE": "upce",
    "ISBN": "isbn",
    "DataBar": "databar",
    "DataBarOmni": "databar",
    "DataBarStk": "databar",
    "DataBarStkOmni": "databar",
    "DataBarExp": "databarexp",
    "DataBarExpStk": "databarexp",
    "DataBarLtd": "databarltd",
}
_ZXING_FORMATS: Final[dict[str, str]] = {
    "qr": "QRCode",
    "microqr": "MicroQRCode",
    "rmqr": "RMQRCode",
    "datamatrix": "DataMatrix",
    "aztec": "Aztec",
    "pdf417": "PDF417",
    "maxicode": "MaxiCode",
    "code128": "Code128",
    "code39": "Code39",
    "code93": "Code93",
    "codabar": "Codabar",
    "itf": "ITF",
    "ean13": "EAN13",
    "ean8": "EAN8",
    "upca": "UPCA",
    "upce": "UPCE",
    "databar": "DataBar",
    "databarexp": "DataBarExpanded",
    "databarltd": "DataBarLimited",
}
_ZBAR_NAMES: Final[dict[str, str]] = {
    "QRCODE": "qr",
    "SQCODE": "sqcode",
    "CODE128": "code128",
    "CODE39": "code39",
    "CODE93": "code93",
    "CODABAR": "codabar",
    "I25": "itf",
    "EAN13": "ean13",
    "EAN8": "ean8",
    "EAN5": "ean5",
    "EAN2": "ean2",
    "UPCA": "upca",
    "UPCE": "upce",
    "ISBN10": "isbn",
    "ISBN13": "isbn",
    "DATABAR": "databar",
    "DATABAR_EXP": "databarexp",
    "PDF417": "pdf417",
    "COMPOSITE": "composite",
}
_BYTE_CONTENT: Final = (zxingcpp.ContentType.Binary, zxingcpp.ContentType.UnknownECI)

CHEAP_FORMATS: Final[tuple[str, ...]] = ("qr", "datamatrix", "code128", "code39")
"""What a cover sheet's dossier code is printed as, and all the fast passes look for: on a
half-scale text page these four cost about half of what every format does (Aztec and PDF417
are the dearest), on every page. Other formats are still read by the chain."""


def _zxing_box(barcode: Any) -> Box:
    corners = barcode.position
    points = (corners.top_left, corners.top_right, corners.bottom_right, corners.bottom_left)
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    return (min(xs), min(ys), max(xs) + 1, max(ys) + 1)


def _zxing_symbology(barcode: Any) -> str:
    name: str = barcode.format.name
    return _ZXING_NAMES.get(name, name.lower())


_PIXELS = threading.local()
_T = TypeVar("_T")


@contextlib.contextmanager
def _sharing_pixels() -> Iterator[None]:
    """Within this block, each thread turns an image into an array once, not once per reader.

    Pillow hands pixels to numpy (and so to zxing-cpp) by copying them, and at half scale one
    page goes through two zxing-cpp passes and two texture probes: four copies of the same
    2 MB, a tenth of the page's reading time. Outside the block nothing is kept, so an image
    changed in place between two reads is never read stale.
    """
    _PIXELS.sharing = True
    try:
        yield
    finally:
        _PIXELS.sharing = False
        _PIXELS.held = None
        _PIXELS.derived = None


def _grey_pixels(image: Image.Image) -> np.ndarray:
    """The image's grey levels as a read-only array."""
    held = getattr(_PIXELS, "held", None)
    if held is not None and held[0] is image:
        return held[1]
    grey = image if image.mode == "L" else image.convert("L")
    pixels = np.asarray(grey)
    if getattr(_PIXELS, "sharing", False):
        _PIXELS.held = (image, pixels)
    return pixels


REFERENCE_CONTRAST: Final = 200
"""Paper level minus ink level on a well-printed half-scale page (205-227 measured on
bench/covers.py's pages): the contrast the texture probes' edge thresholds were set for."""

MIN_CONTRAST: Final = 40
"""Below this, paper minus ink is paper grain and bleed-through: no print to scale to."""

MIN_EDGE: Final = 12
"""The lowest edge threshold a faint page brings a probe to: JPEG ringing at quality 60 and
paper grain stay below it."""


def ink_contrast(pixels: np.ndarray) -> int:
    """Paper level minus ink level of a grey page: the 90th and the 0.5th percentile.

    Any page worth reading has more than half a percent of ink (a line of text has more),
    so the 0.5th percentile is ink however faint the toner: a tired cartridge prints at
    30-60% of its strength, 60-130 levels below the paper instead of 220.
    """
    counts = np.bincount(pixels[::4, ::4].ravel(), minlength=256)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    if total == 0:
        return 0
    paper = int(np.searchsorted(cumulative, 0.9 * total))
    ink = int(np.searchsorted(cumulative, 0.005 * total))
    return paper - ink


def edge_for(edge: int, pixels: np.ndarray) -> int:
    """A probe's edge threshold scaled to the page's contrast.

    A faint page's symbol steps are as faint as its text: at the full threshold a Data
    Matrix printed by a tired cartridge showed no texture at half scale and the page passed
    for text, although full resolution reads it. Scaling keeps the thresholds' proportion to
    the page's own ink, so faint text stays below them as normal text does (measured on text,
    ID-card, form and tracking pages faded to 30-60%). A page with less contrast than
    `MIN_CONTRAST` carries no ink to scale to (blank, or bleed-through only).
    """
    contrast = _derived(pixels, "contrast", partial(ink_contrast, pixels))
    if contrast < MIN_CONTRAST or contrast >= REFERENCE_CONTRAST:
        return edge
    return max(MIN_EDGE, edge * contrast // REFERENCE_CONTRAST)


def _derived(pixels: np.ndarray, key: object, make: Callable[[], _T]) -> _T:
    """A value computed from a shared pixel array, made once per array while pixels are
    shared: both texture probes look at the same page's contrast and grey-level steps."""
    derived = getattr(_PIXELS, "derived", None)
    if derived is None or derived[0] is not pixels:
        derived = (pixels, {})
        if getattr(_PIXELS, "sharing", False):
            _PIXELS.derived = derived
    values: dict[object, Any] = derived[1]
    if key not in values:
        values[key] = make()
    return cast(_T, values[key])


def _steps(pixels: np.ndarray, edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the grey level steps by more than ``edge`` to the next pixel right, and to the
    next pixel down: the texture both probes count, each in cells of its own size."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        here, right, below = pixels[:-1, :-1], pixels[:-1, 1:], pixels[1:, :-1]
        across = (np.maximum(here, right) - np.minimum(here, right)) > edge
        along = (np.maximum(here, below) - np.minimum(here, below)) > edge
        return across, along

    return _derived(pixels, ("steps", edge), make)


class ZxingDecoder:
    """zxing-cpp; `formats` are normalised names (None: every format it reads).

    The three searches default to on, for recall on photographs. On a flat scan at a known
    scale, inverted searches find nothing more, and the rotated search (90 and 270 degrees, for
    1-D codes) doubles the time, so the page reader's fast passes turn them off. The downscaled
    search stays on at half scale: averaging pixels hides the specks of a dirty photocopy that
    break a QR code's finder patterns, for about 1.5 ms a page.
    """

    def __init__(
        self,
        formats: Iterable[str] | None = None,
        *,
        rotate: bool = True,
        downscale: bool = True,
        invert: bool = True,
        name: str = "zxing",
    ) -> None:
        self.formats: tuple[str, ...] | None = tuple(formats) if formats is not None else None
        self.name = name
        options: dict[str, Any] = {
            "try_rotate": rotate,
            "try_downscale": downscale,
            "try_invert": invert,
            "text_mode": zxingcpp.TextMode.Plain,
            "return_errors": True,
        }
        if self.formats is not None:
            unknown = [f for f in self.formats if f not in _ZXING_FORMATS]
            if unknown:
                raise ValueError(f"zxing-cpp cannot be asked for {unknown}")
            options["formats"] = zxingcpp.barcode_formats_from_str(
                ",".join(_ZXING_FORMATS[f] for f in self.formats)
            )
        self._options = options

    def __repr__(self) -> str:
        searches = {k: v for k, v in self._options.items() if k.startswith("try_")}
        return f"ZxingDecoder(formats={self.formats!r}, {searches})"

    def decode(self, image: Image.Image) -> list[Symbol]:
        return list(self.scan(image).symbols)

    def scan(self, image: Image.Image) -> Scan:
        symbols: list[Symbol] = []
        suspects = finders = 0
        source = _grey_pixels(image) if image.mode == "L" else image
        for barcode in zxingcpp.read_barcodes(source, **self._options):
            if not barcode.valid:
                suspects += 1
                finders += _zxing_symbology(barcode) in ("qr", "microqr", "rmqr")
                continue
            if barcode.content_type in _BYTE_CONTENT:
                text = _decode_bytes(barcode.bytes)
            else:
                text = barcode.text.rstrip("\x00")
            symbols.append(Symbol(text, _zxing_symbology(barcode), _zxing_box(barcode)))
        return Scan(tuple(_dedupe(symbols)), suspects, finders=finders)


class ZbarUnavailable(RuntimeError):
    """libzbar (the C library pyzbar wraps) is not installed on this machine."""


class ZbarDecoder:
    """libzbar through pyzbar, imported on construction so a missing library is reported once,
    clearly, instead of on the first cover sheet.

    GS1 DataBar is left out by default: libzbar's DataBar decoder prints assertion warnings to
    stderr on ordinary text pages, which would flood the journal, and no dossier code uses it.
    """

    name = "zbar"

    def __init__(self, symbologies: Iterable[str] | None = None) -> None:
        try:
            self._pyzbar = importlib.import_module("pyzbar.pyzbar")
        except (ImportError, OSError) as exc:
            raise ZbarUnavailable(
                "libzbar is not available, so pyzbar cannot load it: "
                "install the system package libzbar0 (apt-get install libzbar0)"
            ) from exc
        wanted = set(symbologies) if symbologies is not None else None
        self._symbols = [
            s
            for s in self._pyzbar.ZBarSymbol
            if s.name in _ZBAR_NAMES
            and (
                _ZBAR_NAMES[s.name] in wanted
                if wanted is not None
                else not _ZBAR_NAMES[s.name].startswith("databar")
            )
        ]

    def __repr__(self) -> str:
        return f"ZbarDecoder(symbols={[s.name for s in self._symbols]!r})"

    def decode(self, image: Image.Image) -> list[Symbol]:
        if image.mode != "L":
            image = image.convert("L")
        found = self._pyzbar.decode(image, symbols=self._symbols)
        return _dedupe(
            Symbol(
                _decode_bytes(d.data),
                _ZBAR_NAMES.get(d.type, d.type.lower().replace("_", "")),
                (d.rect.left, d.rect.top, d.rect.left + d.rect.width, d.rect.top + d.rect.height),
            )
            for d in found
        )


class DecoderChain:
    """Several decoders run in order; the result is the union of what each read, first reader
    first, without duplicates. Union rather than first-success, because a decoder that misreads
    a symbol must not hide the decoder that reads it right; the price is that a later decoder's
    misreads come along too, behind the first decoder's symbols, which is why the order is
    chosen by measurement."""

    def __init__(self, decoders: Sequence[Decoder]) -> None:
        if not decoders:
            raise ValueError("a decoder chain needs at least one decoder")
        self.decoders: tuple[Decoder, ...] = tuple(decoders)
        self.name = "+".join(d.name for d in self.decoders)

    def __repr__(self) -> str:
        return f"DecoderChain({list(self.decoders)!r})"

    def decode(self, image: Image.Image) -> list[Symbol]:
        return list(self.scan(image).symbols)

    def scan(self, image: Image.Image) -> Scan:
        symbols: list[Symbol] = []
        suspects = finders = 0
        for decoder in self.decoders:
            if isinstance(decoder, SuspectingDecoder):
                found = decoder.scan(image)
                symbols.extend(found.symbols)
                suspects += found.suspects
                finders += found.finders
            else:
                symbols.extend(decoder.decode(image))
        return Scan(tuple(_dedupe(symbols)), suspects, finders=finders)


def default_chain() -> DecoderChain:
    """zxing-cpp first, libzbar second: on the real-world corpus zxing-cpp reads far more and
    zbar adds the odd symbol zxing-cpp misses, with no false positives from either
    (bench/decoders.py prints the numbers). Without libzbar the box still reads with
    zxing-cpp alone rather than failing capture."""
    try:
        zbar = ZbarDecoder()
    except ZbarUnavailable as exc:
        log.warning("barcode chain without zbar: %s", exc)
        return DecoderChain([ZxingDecoder()])
    return DecoderChain([ZxingDecoder(), zbar])


LINEAR: Final[frozenset[str]] = frozenset(
    {"code128", "code39", "code32", "pzn", "code93", "codabar", "itf", "itf14", "ean13", "ean8"}
    | {"ean5", "ean2", "upca", "upce", "isbn", "databar", "databarexp", "databarltd"}
)


class BarTextureProbe:
    """Wraps a decoder and adds a suspect where the image looks like a 1-D barcode the decoder
    did not read.

    A Code 128 with 0.25-0.35 mm modules sits at the edge of what a half-scale page resolves:
    zxing-cpp there sometimes reads it, sometimes reports a checksum error, and sometimes sees
    nothing at all, which would leave the symbol unread. What half scale still shows is the
    texture: many strong edges across the bars and almost none along them, over a run of cells
    wider and taller than any text stroke. If the decoder read a 1-D symbol, that symbol is
    taken to be the texture, so a cover whose barcode half scale does read is not sent to full
    scale for nothing.

    The thresholds are in pixels of a half-scale 300-dpi page (about 150 dpi), where they found
    every Code 128 from 0.2 to 0.5 mm modules, upright, at 3 degrees and at 90 degrees, and
    nothing on 60 generated text and form pages; the probe costs under 1 ms there.
    """

    edge = 40
    """Grey-level step that counts as an edge; JPEG and half-scale blur keep bar edges above."""
    cell = 16
    """Cell side in pixels, about 2.7 mm at half scale: a few bars wide, shorter than a bar."""
    min_edges = 24
    """Edges across the bars in one cell (rows are sampled every other pixel)."""
    ratio = 4
    """Edges across the bars must outnumber edges along them by this factor."""
    run = 6
    """Cells in a row, about 1.6 cm: wider than any stroke, narrower than any dossier code."""

    def __init__(self, decoder: SuspectingDecoder) -> None:
        self.decoder = decoder
        self.name = f"{decoder.name}+bar-texture"

    def __repr__(self) -> str:
        return f"BarTextureProbe({self.decoder!r})"

    def decode(self, image: Image.Image) -> list[Symbol]:
        return list(self.scan(image).symbols)

    def scan(self, image: Image.Image) -> Scan:
        found = self.decoder.scan(image)
        if any(s.symbology in LINEAR for s in found.symbols):
            return found
        pixels = _grey_pixels(image)
        bars = self.count(pixels, edge_for(self.edge, pixels))
        return replace(found, suspects=found.suspects + bars, bars=found.bars + bars)

    def count(self, pixels: np.ndarray, edge: int | None = None) -> int:
        """Orientations (bars upright, bars lying) in which barcode texture was found."""
        edge = self.edge if edge is None else edge
        cell = self.cell
        height = (pixels.shape[0] - 1) // cell * cell
        width = (pixels.shape[1] - 1) // cell * cell
        if height < 2 * cell or width < self.run * cell:
            return 0
        steps_across, steps_along = _steps(pixels, edge)
        across = self._per_cell(steps_across[:height:2, :width])
        along = self._per_cell(steps_along[:height:2, :width])
        return sum(
            self._has_run(bars, other) for bars, other in ((across, along), (along.T, across.T))
        )

    def _per_cell(self, edges: np.ndarray) -> np.ndarray:
        rows, width = edges.shape
        per_band = edges.view(np.uint8).reshape(rows * 2 // self.cell, self.cell // 2, width)
        summed = per_band.sum(axis=1, dtype=np.uint16)
        cells = summed.reshape(summed.shape[0], width // self.cell, self.cell)
        return cells.sum(axis=2, dtype=np.int32)

    def _has_run(self, bars: np.ndarray, other: np.ndarray) -> bool:
        barcode_like = (bars >= self.min_edges) & (other * self.ratio <= bars)
        counts = np.cumsum(np.pad(barcode_like, ((0, 0), (1, 0))), axis=1, dtype=np.int32)
        full_run = (counts[:, self.run :] - counts[:, : -self.run]) == self.run
        return bool((full_run[:-1] & full_run[1:]).any())


class MatrixTextureProbe:
    """Wraps a decoder and adds a suspect where the image looks like a 2-D symbol the decoder
    did not read.

    A small, dense 2-D symbol (a portal URL in a 1.2 cm QR on a 200-dpi A5 slip, a 0.3 mm Data
    Matrix) has modules under two pixels at half scale: zxing-cpp's detectors there neither
    read nor flag it, and a cover would pass for a text page (issue 10). What half scale still
    shows is the texture: strong grey-level steps across AND along, in almost every row and
    column of a small block, where text has gaps between lines and strokes. Two measures of
    that, either of which sends the page to full scale, where the fast pass reads the symbol:
    a block of cells that are each dense, or a square window whose transitions, summed, are
    many both ways (a Data Matrix's solid finder L leaves cells that are not dense on their
    own, but the window around them still counts more than text does).

    Thresholds in pixels of a half-scale page, measured on bench/covers.py's classes: every
    1.2 cm URL QR at 200 dpi and 0.3 mm Data Matrix was found; generated text, form, ID-card,
    tracking and Code 128 pages scored at most 9 of the 10 cells a block needs, and below the
    window's threshold (see `window_transitions`).
    """

    edge = 40
    """Grey-level step that counts as a transition."""
    cell = 8
    """Cell side in pixels (about 1.35 mm at half scale of 300 dpi)."""
    transitions = 18
    """Transitions across and along in one cell (of 64 pixel pairs each) that make it dense."""
    block = (2, 5)
    """A block of cells (either way round) that must be dense: a small symbol's footprint."""
    need = 10
    """Dense cells of the block's ten that make a symbol: all of them."""
    window = 4
    """Side, in cells, of a square window (about 5.4 mm) scored as a whole."""
    window_transitions = 275
    """Transitions across AND along (the smaller of the two counts, of 1,024 pixel pairs each)
    that make a window a symbol. A 0.3 mm Data Matrix whose finder L and quiet zone leave no
    block of ten dense cells still scores 296-371 here; the busiest text, form and ID-card
    pages of bench/covers.py scored at most 252, Code 128 covers at most 280."""

    def __init__(self, decoder: SuspectingDecoder) -> None:
        self.decoder = decoder
        self.name = f"{decoder.name}+matrix-texture"

    def __repr__(self) -> str:
        return f"MatrixTextureProbe({self.decoder!r})"

    def decode(self, image: Image.Image) -> list[Symbol]:
        return list(self.scan(image).symbols)

    def scan(self, image: Image.Image) -> Scan:
        found = self.decoder.scan(image)
        if found.suspects or any(s.symbology not in LINEAR for s in found.symbols):
            return found
        pixels = _grey_pixels(image)
        matrix = self.count(pixels, edge_for(self.edge, pixels))
        return replace(found, suspects=found.suspects + matrix, matrix=found.matrix + matrix)

    def count(self, pixels: np.ndarray, edge: int | None = None) -> int:
        """1 if a block of dense cells is found, else 0."""
        edge = self.edge if edge is None else edge
        cell = self.cell
        height = (pixels.shape[0] - 1) // cell * cell
        width = (pixels.shape[1] - 1) // cell * cell
        if height < 5 * cell or width < 5 * cell:
            return 0
        steps_across, steps_along = _steps(pixels, edge)
        per_across = _cell_sums(steps_across[:height, :width], cell)
        per_along = _cell_sums(steps_along[:height, :width], cell)
        dense = (per_across >= self.transitions) & (per_along >= self.transitions)
        rows, cols = self.block
        for h, w in ((rows, cols), (cols, rows)):
            sums = _window_sums(dense, h, w)
            if sums.size and int(sums.max()) >= self.need:
                return 1
        k = self.window
        busy = np.minimum(_window_sums(per_across, k, k), _window_sums(per_along, k, k))
        return int(busy.size > 0 and int(busy.max()) >= self.window_transitions)


def _cell_sums(edges: np.ndarray, cell: int) -> np.ndarray:
    """Edges per cell-by-cell square, rows first: adding whole rows is what numpy does fastest,
    and a cell's count (at most 64) fits the byte it is summed in."""
    height, width = edges.shape
    rows = edges.view(np.uint8).reshape(height // cell, cell, width).sum(axis=1, dtype=np.uint8)
    return rows.reshape(height // cell, width // cell, cell).sum(axis=2, dtype=np.uint16)


def _window_sums(cells: np.ndarray, h: int, w: int) -> np.ndarray:
    """The sum over every h-by-w window of a grid, from one summed-area table."""
    table = np.pad(cells, ((1, 0), (1, 0))).astype(np.int32).cumsum(0).cumsum(1)
    return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]


FULL_PAGE: Final = (0.0, 1.0)
TOP_THIRD: Final = (0.0, 1 / 3)


@dataclass(frozen=True)
class Tier:
    """One step of the page reader: the page at 1/`reduce` scale, the horizontal `band` between
    two fractions of its height, read by `decoder` (None: the chain given to `read_symbols`).

    Escalation tiers run in order, each only if the tier before it saw a suspect, so they stop
    at the first that reads everything it sees.
    """

    reduce: int
    band: tuple[float, float] = FULL_PAGE
    decoder: Decoder | None = None
    escalation: bool = False

    def __post_init__(self) -> None:
        if self.reduce not in (1, 2, 4, 8):
            raise ValueError(f"reduce must be 1, 2, 4 or 8, not {self.reduce}")
        top, bottom = self.band
        if not 0.0 <= top < bottom <= 1.0:
            raise ValueError(f"band must be two fractions 0 <= top < bottom <= 1, not {self.band}")

    def describe(self) -> str:
        """One line for logs and the benchmark table."""
        top, bottom = self.band
        where = "whole page" if self.band == FULL_PAGE else f"rows {top:.0%}-{bottom:.0%}"
        who = self.decoder.name if self.decoder is not None else "chain"
        return f"1/{self.reduce} {where}, {who}" + (", escalation" if self.escalation else "")


_FAST = ZxingDecoder(("qr", "code128", "code39"), rotate=False, invert=False, name="zxing-fast")
_FAST_MATRIX = ZxingDecoder(
    ("datamatrix",), downscale=False, invert=False, name="zxing-fast-datamatrix+rotate"
)
_FAST_ROTATE = ZxingDecoder(CHEAP_FORMATS, downscale=False, invert=False, name="zxing-fast+rotate")

DEFAULT_TIERS: Final[tuple[Tier, ...]] = (
    Tier(2, FULL_PAGE, MatrixTextureProbe(BarTextureProbe(DecoderChain([_FAST, _FAST_MATRIX])))),
    Tier(1, FULL_PAGE, _FAST_ROTATE, escalation=True),
    Tier(1, FULL_PAGE, None, escalation=True),
)
"""Chosen by measurement (bench/decoders.py and bench/covers.py print it).

A text page costs one half-scale decode and nothing more. Pillow's draft decode is dominated
by entropy decoding, so a quarter-scale page is barely cheaper to get than a half-scale one,
and a quarter-scale pass followed by a half-scale top band pays for both. At half scale QR
codes from about 1.2 cm and Data Matrix codes are read anywhere on the page, and so, reliably,
are 1-D codes with modules from about 0.4 mm; finer 1-D codes show up as a checksum error or
as bar texture and send the page to full scale, where the fast pass reads them, upright or
lying. Data Matrix is searched in all four orientations even at half scale: zxing-cpp's
detector without rotation neither reads nor flags a Data Matrix turned 90, 180 or 270
degrees, so a cover fed sideways or upside down would pass as a text page (issue 10); QR
finder patterns are symmetric and need no rotation, and lying bars show as bar texture. The
chain, slow and thorough, runs only if the full-scale pass still sees a symbol it cannot
read; a spurious suspect at half scale (zxing-cpp's Data Matrix detector finds them in
halftone noise) costs one full-scale fast pass, not the chain."""


TIERS_DPI: Final = 300.0
"""The resolution the tiers were chosen and measured at."""


def scale_for(dpi: float | None) -> int:
    """How many times finer than :data:`TIERS_DPI` a page is, as a power of two: 2 for a
    600-dpi scan, 1 for anything up to about 560 dpi or of unknown resolution."""
    scale = 1
    while dpi is not None and dpi >= TIERS_DPI * scale * 2 * 0.93 and scale < 4:
        scale *= 2
    return scale


class _Memo:
    """Each scale of a page is decoded from the file at most once per read."""

    def __init__(self, page: PageSource) -> None:
        self._page = page
        self._images: dict[int, Image.Image] = {}

    def image(self, reduce: int) -> Image.Image:
        image = self._images.get(reduce)
        if image is None:
            image = self._page.image(reduce)
            if image.mode != "L":
                image = image.convert("L")
            self._images[reduce] = image
        return image


def read_tier(page: PageSource, tier: Tier, chain: DecoderChain | None = None) -> Scan:
    """Run one tier on a page; public so the benchmark can price each tier on its own.

    Symbol boxes come back in full-scale page coordinates, whatever the tier's scale.
    """
    image = page.image(tier.reduce)
    if image.mode != "L":
        image = image.convert("L")
    top, bottom = tier.band
    offset = 0
    if (top, bottom) != FULL_PAGE:
        offset = round(top * image.height)
        image = image.crop((0, offset, image.width, round(bottom * image.height)))
    decoder: Decoder
    if tier.decoder is not None:
        decoder = tier.decoder
    else:
        decoder = chain if chain is not None else default_chain()
    with _sharing_pixels():
        if isinstance(decoder, SuspectingDecoder):
            scan = decoder.scan(image)
        else:
            scan = Scan(tuple(decoder.decode(image)), 0)
    return replace(
        scan, symbols=tuple(s.scaled(tier.reduce, offset * tier.reduce) for s in scan.symbols)
    )


@dataclass(frozen=True)
class Read:
    """One symbol on a page and whether two independent reads agree on its text.

    1-D checksums are weak when a symbol is under-sampled: zxing-cpp has returned a
    checksum-valid wrong text for a 0.3 mm Code 128 at half scale. So a 1-D text counts as
    confirmed only when two independent reads give it (two scales, or two decoders); 2-D
    symbols carry Reed-Solomon error correction and are confirmed by their own read.
    ``alternatives`` are the other texts the same symbol gave, kept for the clerk.
    """

    symbol: Symbol
    confirmed: bool
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageReading:
    """Every symbol read on a page, each with its confirmation, and what could not be read.

    ``unread`` counts 1-D bar texture on a page where no decoder read any symbol at any
    scale (a Code 128 resampled twice by the software that printed it): on a page without a
    code, that is a cover the clerk must look at; so are QR codes whose finder patterns the
    last, most thorough pass found but could not decode (a heavily speckled QR). Other
    symbols zxing-cpp detects but cannot decode are not counted: its Data Matrix detector
    finds them in the noise of ordinary 150-dpi text pages. 2-D texture only sends a page to
    full scale; it never makes a review.
    """

    reads: tuple[Read, ...] = ()
    unread: int = 0

    @property
    def symbols(self) -> list[Symbol]:
        return [r.symbol for r in self.reads]

    @property
    def uncertain(self) -> list[Read]:
        return [r for r in self.reads if not r.confirmed]


_CONFIRM_ZXING = ZxingDecoder(
    ("code128", "code39", "code93", "codabar", "itf"),
    downscale=False,
    invert=False,
    name="zxing-confirm",
)
_CONFIRM_MARGIN = 0.25
"""Around a 1-D symbol's box, as a fraction of its size, when the box is cut out at full scale
for the confirming reads: room for quiet zones and for a box a half-scale read drew short."""


class Confirmer:
    """Reads a 1-D symbol again at full resolution with two decoders that share no code.

    Only the symbol's neighbourhood is decoded, so confirming a cover costs the full-scale
    page decode plus a few milliseconds, and a page without a 1-D symbol costs nothing.
    """

    def __init__(self, zbar: Decoder | None = None) -> None:
        self.zxing: Decoder = _CONFIRM_ZXING
        if zbar is None:
            try:
                zbar = ZbarDecoder(sorted(LINEAR - {"databar", "databarexp", "databarltd"}))
            except ZbarUnavailable as exc:
                log.warning("1-D confirmation without zbar: %s", exc)
        self.zbar = zbar

    def reads(
        self,
        full: Image.Image,
        box: Box | None,
        enough: Callable[[Symbol], bool] | None = None,
        *,
        scale: int = 1,
    ) -> list[tuple[str, Symbol]]:
        """(source, symbol) pairs from the confirming decoders around ``box``.

        ``box`` is in full-scale page coordinates and ``full`` is the page at 1/``scale``;
        the symbols found come back in full-scale coordinates too. zbar, the dearer of the
        two, is skipped when ``enough`` says the zxing-cpp read has already settled every
        text it found.
        """
        region = full
        left = top = 0
        if box is not None:
            x0, y0, x1, y1 = (round(v / scale) for v in box)
            pad_x = max(round((x1 - x0) * _CONFIRM_MARGIN), 40)
            pad_y = max(round((y1 - y0) * _CONFIRM_MARGIN), 40)
            left, top = max(0, x0 - pad_x), max(0, y0 - pad_y)
            region = full.crop(
                (left, top, min(full.width, x1 + pad_x), min(full.height, y1 + pad_y))
            )
        found: list[tuple[str, Symbol]] = []
        for decoder in (self.zxing, self.zbar):
            if decoder is None:
                continue
            if found and enough is not None and all(enough(s) for _, s in found):
                break
            for symbol in decoder.decode(region):
                if symbol.symbology in LINEAR:
                    moved = symbol
                    if symbol.box is not None:
                        a, b, c, d = symbol.box
                        moved = replace(symbol, box=(a + left, b + top, c + left, d + top))
                    found.append((f"{_family(decoder.name)}@{scale}", moved.scaled(scale)))
        return found


_CONFIRMER: Confirmer | None = None


def _confirmer() -> Confirmer:
    global _CONFIRMER
    if _CONFIRMER is None:
        _CONFIRMER = Confirmer()
    return _CONFIRMER


_MIN_BOX_SIDE: Final = 8
"""Pixels (full scale) below which a symbol's box says where it was seen, not its extent."""


def _confirmable(box: Box | None) -> Box | None:
    """The box to confirm a 1-D read around, or None for the whole page.

    zbar locates a linear symbol by the scan lines that crossed it: under heavy speckle
    only one may have, and the box is a point or a line (seen: 769,757 to 769,757). A crop
    around that misses the symbol and the read stays unconfirmed, a review for nothing;
    the whole page costs one full-scale pass, on the rare page that needs it.
    """
    if box is None:
        return None
    x0, y0, x1, y1 = box
    if x1 - x0 < _MIN_BOX_SIDE or y1 - y0 < _MIN_BOX_SIDE:
        return None
    return box


def _overlap(a: Box | None, b: Box | None) -> bool:
    """Whether two reads are of the same printed symbol (unknown boxes: assume so)."""
    if a is None or b is None:
        return True
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(box: Box | None, by: int) -> Box | None:
    if box is None:
        return None
    return (box[0] - by, box[1] - by, box[2] + by, box[3] + by)


def _settled(sources: dict[Symbol, set[str]], scale: int, symbol: Symbol) -> bool:
    """Whether the confirming zxing-cpp read of ``symbol`` already makes two sources for it,
    so the dearer zbar read can be skipped."""
    return len(sources.get(symbol, set()) | {f"zxing@{scale}"}) >= 2


def confirm(
    seen: Sequence[tuple[str, Symbol]],
    full: Image.Image | None,
    confirmer: Confirmer | None = None,
    *,
    scale: int = 1,
) -> list[Read]:
    """Decide which texts to trust, from every (source, symbol) pair the tiers produced.

    2-D symbols are trusted as read. Each distinct 1-D text is read again around its box at
    full resolution (``full``, the page at 1/``scale``; None skips this, for tests of the
    rule); a text with two
    independent sources is confirmed. A 1-D text with one source whose symbol gave a
    confirmed text is a misread of it and becomes its alternative; one with no confirmed
    neighbour is an uncertain read, with the other lone texts of the same place as
    alternatives. The clerk decides those.
    """
    sources: dict[Symbol, set[str]] = {}
    boxes: dict[Symbol, Box | None] = {}
    for source, symbol in seen:
        sources.setdefault(symbol, set()).add(source)
        boxes.setdefault(symbol, symbol.box)
    linear = [s for s in sources if s.symbology in LINEAR]
    if linear and full is not None:
        confirmer = confirmer or _confirmer()
        regions: list[Box | None] = []
        for symbol in linear:
            box = _confirmable(boxes[symbol])
            if any(_overlap(box, done) and box is not None for done in regions):
                continue
            regions.append(box)
            found = confirmer.reads(full, box, partial(_settled, sources, scale), scale=scale)
            for source, again in found:
                sources.setdefault(again, set()).add(source)
                boxes.setdefault(again, again.box)
    near = 20
    confirmed = {s for s, who in sources.items() if s.symbology not in LINEAR or len(who) >= 2}
    reads: list[Read] = []
    lone = [s for s in sources if s not in confirmed]
    for symbol in sources:
        if symbol in confirmed:
            misreads = tuple(
                other.text
                for other in lone
                if other.symbology in LINEAR
                and symbol.symbology in LINEAR
                and _overlap(_grow(boxes[symbol], near), boxes[other])
            )
            reads.append(Read(symbol, True, misreads))
            continue
        twins = [
            c
            for c in confirmed
            if c.symbology in LINEAR and _overlap(_grow(boxes[c], near), boxes[symbol])
        ]
        if twins:
            continue
        others = tuple(
            o.text for o in lone if o != symbol and _overlap(_grow(boxes[o], near), boxes[symbol])
        )
        reads.append(Read(symbol, False, others))
    return reads


def read_page(
    page: PageSource,
    chain: DecoderChain | None = None,
    *,
    tiers: Sequence[Tier] = DEFAULT_TIERS,
    confirmer: Confirmer | None = None,
    scale: int = 1,
) -> PageReading:
    """Read a page's symbols, cheaply on the common page that has none, and say which to trust.

    Every ordinary tier runs. An escalation tier runs only if the tier before it saw something
    symbol-like that it could not read, whether or not it read other symbols, so a cover
    carrying a QR code and a fine Code 128 yields both; a text page is never decoded at full
    scale, and a stray suspect cannot walk a page up to the slowest tier unless every step
    keeps seeing it. A page that carries a 1-D symbol is then decoded at full scale to confirm
    it (see `confirm`).

    The tiers are chosen for 300-dpi scans. ``scale`` says how many times finer the page is
    (2 for 600 dpi): every tier, and the confirmation, then reads it ``scale`` times further
    reduced, so a finely scanned page is looked at as a 300-dpi one would be. At its own
    full scale a 600-dpi text page shows letters as bar texture (a pointless full-scale
    escalation), and decoders given a 35-megapixel page need several times its size in
    working memory.
    """
    if scale > 1:
        tiers = [replace(t, reduce=min(8, t.reduce * scale)) for t in tiers]
    memo = _Memo(page)
    seen: list[tuple[str, Symbol]] = []
    pending = 0
    bars = 0
    finders = 0
    shaped = 0
    for tier in tiers:
        if tier.escalation and not pending:
            continue
        if tier.decoder is None and chain is None:
            chain = default_chain()
        scan = read_tier(memo, tier, chain)
        name = tier.decoder.name if tier.decoder is not None else "chain"
        seen.extend((f"{_family(name)}@{tier.reduce}", s) for s in scan.symbols)
        bars += scan.bars
        if tier.escalation:
            finders = scan.finders
        if not tier.escalation:
            pending += scan.suspects
            shaped += scan.bars + scan.finders
        elif scan.suspects:
            pending = scan.suspects
        elif scan.symbols or not shaped:
            # Read, or nothing there: a Data Matrix detector's false alarm in halftone, or the
            # 2-D texture of dense text, that the full-scale pass (which searches Data Matrix
            # in every orientation) saw nothing in stops here; the chain would take half a
            # second to find nothing (one text page in forty).
            pending = 0
        # Else still something unread that looked like a symbol (QR finder patterns, bar
        # texture): a heavy-speckled QR missed by the fast full-scale pass is read by the
        # thorough chain, so keep escalating.
    linear_read = any(s.symbology in LINEAR for _, s in seen)
    full = memo.image(scale) if linear_read else None
    unread = 0 if seen else bars + finders
    return PageReading(tuple(confirm(seen, full, confirmer, scale=scale)), unread)


def _family(decoder_name: str) -> str:
    """Reads by variants of one decoder at one scale are one source, not independent ones."""
    return "zbar" if decoder_name.startswith("zbar") else "zxing"


def read_symbols(
    page: PageSource,
    chain: DecoderChain | None = None,
    *,
    tiers: Sequence[Tier] = DEFAULT_TIERS,
) -> list[Symbol]:
    """The symbols `read_page` finds, trusted or not: for tools and the decoder benchmark."""
    return read_page(page, chain, tiers=tiers).symbols


def read_symbols_naive(image: Image.Image) -> list[Symbol]:
    """libzbar over the whole page at full resolution: the baseline the benchmark measures
    `read_symbols` against."""
    return ZbarDecoder().decode(image)
