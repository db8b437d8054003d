"""Barcode reading for scanned pages.

Two back-ends sit behind one small interface: zxing-cpp (the stronger reader, and the only
one that reads Data Matrix) and libzbar through pyzbar (the design card's decoder). A
`DecoderChain` unions what several decoders read. `read_symbols` is what capture calls on
every page; it spends as little as it can on the common page, which carries no symbol, and
pays for full resolution only when a cheap pass saw a symbol it could not decode.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

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
    "Decoder",
    "DecoderChain",
    "PageSource",
    "Scan",
    "SuspectingDecoder",
    "Symbol",
    "Tier",
    "ZbarDecoder",
    "ZbarUnavailable",
    "ZxingDecoder",
    "default_chain",
    "read_symbols",
    "read_symbols_naive",
    "read_tier",
]


@dataclass(frozen=True)
class Symbol:
    """One decoded symbol; equal symbols from different decoders compare equal."""

    text: str
    symbology: str


@dataclass(frozen=True)
class Scan:
    """What one decode attempt found, plus how many symbol-like things it could not decode.

    The suspect count is what lets the page reader pay for full resolution only on pages that
    visibly carry a symbol.
    """

    symbols: tuple[Symbol, ...] = ()
    suspects: int = 0


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


def _zxing_symbology(barcode: Any) -> str:
    name: str = barcode.format.name
    return _ZXING_NAMES.get(name, name.lower())


class ZxingDecoder:
    """zxing-cpp; `formats` are normalised names (None: every format it reads).

    The three searches default to on, for recall on photographs. On a flat scan at a known
    scale, inverted and downscaled searches find nothing more, and the rotated search (90 and
    270 degrees, for 1-D codes) doubles the time, so the page reader's fast passes turn them off.
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
        suspects = 0
        for barcode in zxingcpp.read_barcodes(image, **self._options):
            if not barcode.valid:
                suspects += 1
                continue
            if barcode.content_type in _BYTE_CONTENT:
                text = _decode_bytes(barcode.bytes)
            else:
                text = barcode.text.rstrip("\x00")
            symbols.append(Symbol(text, _zxing_symbology(barcode)))
        return Scan(tuple(_dedupe(symbols)), suspects)


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
            Symbol(_decode_bytes(d.data), _ZBAR_NAMES.get(d.type, d.type.lower().replace("_", "")))
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
        suspects = 0
        for decoder in self.decoders:
            if isinstance(decoder, SuspectingDecoder):
                found = decoder.scan(image)
                symbols.extend(found.symbols)
                suspects += found.suspects
            else:
                symbols.extend(decoder.decode(image))
        return Scan(tuple(_dedupe(symbols)), suspects)


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
        gray = image if image.mode == "L" else image.convert("L")
        return Scan(found.symbols, found.suspects + self.count(np.asarray(gray)))

    def count(self, pixels: np.ndarray) -> int:
        """Orientations (bars upright, bars lying) in which barcode texture was found."""
        cell = self.cell
        height = (pixels.shape[0] - 1) // cell * cell
        width = (pixels.shape[1] - 1) // cell * cell
        if height < 2 * cell or width < self.run * cell:
            return 0
        here = pixels[:height:2, :width]
        right = pixels[:height:2, 1 : width + 1]
        below = pixels[1 : height + 1 : 2, :width]
        across = self._per_cell((np.maximum(here, right) - np.minimum(here, right)) > self.edge)
        along = self._per_cell((np.maximum(here, below) - np.minimum(here, below)) > self.edge)
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


_FAST = ZxingDecoder(CHEAP_FORMATS, rotate=False, downscale=False, invert=False, name="zxing-fast")
_FAST_ROTATE = ZxingDecoder(CHEAP_FORMATS, downscale=False, invert=False, name="zxing-fast+rotate")

DEFAULT_TIERS: Final[tuple[Tier, ...]] = (
    Tier(2, FULL_PAGE, BarTextureProbe(_FAST)),
    Tier(1, FULL_PAGE, _FAST_ROTATE, escalation=True),
    Tier(1, FULL_PAGE, None, escalation=True),
)
"""Chosen by measurement (bench/decoders.py prints it).

A text page costs one half-scale decode and nothing more. Pillow's draft decode is dominated
by entropy decoding, so a quarter-scale page is barely cheaper to get than a half-scale one,
and a quarter-scale pass followed by a half-scale top band pays for both. At half scale QR
codes from about 1.2 cm and Data Matrix codes are read anywhere on the page, and so, reliably,
are 1-D codes with modules from about 0.4 mm; finer 1-D codes show up as a checksum error or
as bar texture and send the page to full scale, where the fast pass reads them, upright or
lying. The chain, slow and thorough, runs only if the full-scale pass still sees a symbol it
cannot read; a spurious suspect at half scale (zxing-cpp's Data Matrix detector finds them in
halftone noise) costs one full-scale fast pass, not the chain."""


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
    """Run one tier on a page; public so the benchmark can price each tier on its own."""
    image = page.image(tier.reduce)
    if image.mode != "L":
        image = image.convert("L")
    top, bottom = tier.band
    if (top, bottom) != FULL_PAGE:
        image = image.crop(
            (0, round(top * image.height), image.width, round(bottom * image.height))
        )
    decoder: Decoder
    if tier.decoder is not None:
        decoder = tier.decoder
    else:
        decoder = chain if chain is not None else default_chain()
    if isinstance(decoder, SuspectingDecoder):
        return decoder.scan(image)
    return Scan(tuple(decoder.decode(image)), 0)


def read_symbols(
    page: PageSource,
    chain: DecoderChain | None = None,
    *,
    tiers: Sequence[Tier] = DEFAULT_TIERS,
) -> list[Symbol]:
    """Read a page's symbols, cheaply on the common page that has none.

    Every ordinary tier runs. An escalation tier runs only if the tier before it saw something
    symbol-like that it could not read, whether or not it read other symbols, so a cover
    carrying a QR code and a fine Code 128 yields both; a text page is never decoded at full
    scale, and a stray suspect cannot walk a page up to the slowest tier unless every step
    keeps seeing it.
    """
    memo = _Memo(page)
    symbols: list[Symbol] = []
    pending = 0
    for tier in tiers:
        if tier.escalation and not pending:
            continue
        if tier.decoder is None and chain is None:
            chain = default_chain()
        scan = read_tier(memo, tier, chain)
        symbols.extend(scan.symbols)
        pending = scan.suspects if tier.escalation else pending + scan.suspects
    return _dedupe(symbols)


def read_symbols_naive(image: Image.Image) -> list[Symbol]:
    """libzbar over the whole page at full resolution: the baseline the benchmark measures
    `read_symbols` against."""
    return ZbarDecoder().decode(image)
