"""Receipt covers and content pages with the variety real one-stop desks produce (issue 10).

`edge.samples` draws one tidy cover: a 2.5 cm QR or a Code 128 with whole-pixel modules,
pasted pixel-exact onto an A4 page. Real Mẫu 01 receipt slips ("Giấy tiếp nhận hồ sơ và hẹn
trả kết quả") are less kind, and the box once filed a cover and the nine pages after it under
the previous citizen's dossier because of it. This module fakes the slips the world prints:

* the symbol: Code 128 with 0.25-0.5 mm modules, drawn as a good printer and scanner see it
  ("crisp"), as python-barcode's ImageWriter rasterises it at 300 dpi ("imagewriter": bars
  rounded to whole pixels, one pixel thinner than their spaces), or as a web page's canvas
  rasterises it into a 250×66 px PNG that a DOCX then scales into place ("resampled": two
  resamplings, blurred uneven bars); a QR of 1.2-3 cm carrying the bare code or a portal URL
  (`…/tra-cuu?SGT=<CCCD>&MHS=<code>`), possibly from a 64 px canvas; a Data Matrix (zxing-cpp's
  encoder, rectangular or square, 0.3-0.4 mm modules); or a Code 128 and a URL QR together;
* the sheet: A4 or A5, 200 or 300 dpi, fed upright, sideways or upside down, up to 3 degrees
  crooked, with faint toner, dust and heavy speckle, saved as JPEG at quality 60-90; or never
  printed at all (the software's image saved straight into the scanner folder).

Printing and scanning are modelled, not skipped: symbols are sampled by area at a random
sub-pixel offset on the scanner's grid and blurred a little, so module edges fall between
pixels as they do on real scans; `edge.samples` pastes whole-pixel modules instead.

Content pages carry symbols that must never open a dossier: the QR of a photocopied chip ID
card (CCCD), a postal tracking number (UPU S10, Code 128), a VietQR payment code, and another
agency's Code 128 (an e-invoice lookup code). `write_receipt_job` writes a scan job of such
dossiers into an inbox sub-folder and returns which dossier each page belongs to, which is
what `bench/covers.py` and `tests/test_covers_e2e.py` score capture against.

Every page is a pure function of its arguments, seed included. All data is fake: names come
from `edge.samples`' generator, ID numbers agree with birth date and sex but belong to nobody.
"""

from __future__ import annotations

import math
import os
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import barcode
import numpy as np
import segno
import zxingcpp
from barcode.writer import ImageWriter
from PIL import Image, ImageDraw, ImageFilter

from edge import samples
from edge.domain import CodePatterns
from edge.samples import (
    _INKS,
    _PRINT_BLACK,
    _PROCEDURES,
    PROVINCES,
    REFERENCE_DATE,
    Person,
    _add_working_days,
    _blank,
    _body_layout,
    _body_line,
    _code_day,
    _national_header,
    _paste,
    _paste_text,
    _person,
    _pt,
    _px,
    _signature,
    _specks,
    _tone,
    _vn_date,
    _write,
    load_font,
)

__all__ = [
    "CONTENT_KINDS",
    "INCIDENT_CODE",
    "CoverVariant",
    "ReceiptDossier",
    "VariationClass",
    "cccd_page",
    "cccd_payload",
    "class_codes",
    "content_page",
    "crc16_ccitt_false",
    "invoice_code",
    "other_agency_page",
    "payment_page",
    "portal_url",
    "receipt_cover",
    "s10_check_digit",
    "s10_number",
    "scanned",
    "tracking_page",
    "variation_class",
    "variation_classes",
    "vietqr_payload",
    "write_receipt_job",
]

SymbolKind = Literal["code128", "qr", "qr_url", "datamatrix", "code128+qr_url"]
Drawing = Literal["crisp", "imagewriter", "resampled"]
Paper = Literal["A4", "A5"]
ContentKind = Literal["text", "cccd", "tracking", "payment", "other_agency"]
Colour = tuple[int, int, int]

CONTENT_KINDS: tuple[ContentKind, ...] = ("text", "cccd", "tracking", "payment", "other_agency")
"""Pages that follow a cover: an application form, a photocopied chip ID card with its QR, a
postal tracking slip (S10 Code 128), a fee notice with a VietQR code, an e-invoice with another
agency's Code 128."""

PAPER_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}
_INCH_MM = 25.4
_PATTERNS = CodePatterns.default()


# ---------------------------------------------------------------------------------------------
# What varies


@dataclass(frozen=True, slots=True)
class CoverVariant:
    """How one receipt cover was printed and scanned.

    `module_mm` is the Code 128 narrow-bar width; `size_mm` the side of a 2-D symbol without
    its quiet zone. `drawing` is how the software drew it: "crisp" (the ideal symbol, as a good
    printer and scanner render it), "imagewriter" (Code 128 only: python-barcode's ImageWriter
    at 300 dpi), "resampled" (Code 128 rasterised into a 250×66 px PNG at 0.86 px per module;
    a QR rasterised on a 64 px canvas; then scaled to size on the page). `rotation` is how the
    sheet was fed (counter-clockwise degrees, the image keeps the rotated shape), `skew` how
    crooked (degrees), `faint` the toner's strength (1.0 normal, 0.4 nearly empty), `speckle`
    dark and light specks per cm² (dust, photocopy toner), `quality` the JPEG quality.
    `dm_shape` "auto" lets the Data Matrix encoder pick its smallest symbol (a rectangle for
    a dossier code), "square" forces a square one; a Data Matrix's modules are `module_mm`.
    `printed=False` is a slip that never went through paper: the software's image saved
    straight to the scanner folder, symbols pixel-exact where the template puts them, no
    scanner blur.
    """

    symbology: SymbolKind = "qr"
    module_mm: float = 0.33
    size_mm: float = 25.0
    drawing: Drawing = "crisp"
    paper: Paper = "A4"
    dpi: int = 300
    rotation: int = 0
    skew: float = 0.0
    faint: float = 1.0
    quality: int = 85
    speckle: float = 0.0
    colour: bool = True
    dm_shape: Literal["auto", "square"] = "auto"
    printed: bool = True

    def __post_init__(self) -> None:
        if self.symbology not in ("code128", "qr", "qr_url", "datamatrix", "code128+qr_url"):
            raise ValueError(f"unknown symbology {self.symbology!r}")
        if self.drawing not in ("crisp", "imagewriter", "resampled"):
            raise ValueError(f"unknown drawing {self.drawing!r}")
        if self.drawing == "imagewriter" and "code128" not in self.symbology:
            raise ValueError("'imagewriter' draws Code 128 only")
        if self.drawing == "resampled" and self.symbology == "datamatrix":
            raise ValueError("'resampled' draws Code 128 and QR codes only")
        if self.paper not in PAPER_MM:
            raise ValueError(f"unknown paper {self.paper!r}; use A4 or A5")
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270, not {self.rotation}")
        if not 0.1 <= self.module_mm <= 1.0 or not 5.0 <= self.size_mm <= 60.0:
            raise ValueError("module_mm must be 0.1-1.0 and size_mm 5-60")
        if not 100 <= self.dpi <= 600 or not 20 <= self.quality <= 100:
            raise ValueError("dpi must be 100-600 and quality 20-100")
        if self.dm_shape not in ("auto", "square"):
            raise ValueError(f"dm_shape must be 'auto' or 'square', not {self.dm_shape!r}")
        if not 0.1 <= self.faint <= 1.0 or self.speckle < 0 or abs(self.skew) > 10:
            raise ValueError("faint must be 0.1-1.0, speckle >= 0, |skew| <= 10")


@dataclass(frozen=True, slots=True)
class VariationClass:
    """A named way covers come out of the world, and what follows each cover.

    `content` is cycled over each dossier's content pages; `why` says what it stands for.
    `first_code` pins the codes to one office's counter on one day, starting there (see
    `class_codes`): some misreads depend on the code's text, not only on how it is printed.
    """

    name: str
    cover: CoverVariant
    content: tuple[ContentKind, ...] = ("text",)
    why: str = ""
    first_code: str | None = None


INCIDENT_CODE = "H26.22.16-251111-3366"
"""The code on the cover the box filed under the previous citizen's dossier (issue 10)."""

_STEADY = CoverVariant("qr", size_mm=25.0)
"""The cover content-only classes use: the one `edge.samples` draws and capture reads."""

_HEAVY_SPECKLE = 30.0
"""Specks per cm² on a dirty photocopy: what "heavy speckle" means in the classes below."""


def _classes() -> tuple[VariationClass, ...]:
    c128 = CoverVariant("code128")
    qr = CoverVariant("qr", size_mm=20.0)
    a5 = CoverVariant("qr", size_mm=12.0, paper="A5", dpi=200)
    url = CoverVariant("qr_url", size_mm=25.0)
    qr3 = CoverVariant("qr", size_mm=30.0)
    dm = CoverVariant("datamatrix", module_mm=0.3)
    out = [
        VariationClass(f"code128-{mm:.2f}mm", replace(c128, module_mm=mm), why="crisp print")
        for mm in (0.25, 0.3, 0.33, 0.4, 0.5)
    ]
    out += [
        VariationClass(
            f"code128-{mm:.2f}mm-imagewriter",
            replace(c128, module_mm=mm, drawing="imagewriter"),
            why="python-barcode ImageWriter at 300 dpi, printed and scanned",
        )
        for mm in (0.25, 0.3, 0.33)
    ]
    out.append(
        VariationClass(
            "code128-0.30mm-imagewriter-unprinted",
            replace(c128, module_mm=0.3, drawing="imagewriter", printed=False),
            why="the incident: ImageWriter's pixels saved straight as a 300-dpi JPEG, "
            "codes of the incident's office and day",
            first_code=INCIDENT_CODE,
        )
    )
    out += [
        VariationClass(
            f"code128-resampled-{mm:.2f}mm",
            replace(c128, module_mm=mm, drawing="resampled"),
            why="250×66 px canvas PNG (0.86 px/module) scaled into a DOCX: resampled twice",
        )
        for mm in (0.25, 0.33)
    ]
    out += [
        VariationClass(f"code128-0.33mm-rot{turn}", replace(c128, rotation=turn), why="fed turned")
        for turn in (90, 180, 270)
    ]
    out.append(VariationClass("qr-2cm", qr, why="bare code"))
    out.append(VariationClass("qr-2cm-rot180", replace(qr, rotation=180)))
    out.append(VariationClass("qr-1.2cm-a5-200dpi", a5, why="A5 slip, bare code"))
    out.append(VariationClass("qr-1.2cm-a5-200dpi-rot270", replace(a5, rotation=270)))
    a5_url = replace(a5, symbology="qr_url")
    out.append(VariationClass("qr-url-1.2cm-a5-200dpi", a5_url, why="A5 slip, portal URL"))
    out += [
        VariationClass(f"qr-url-1.2cm-a5-200dpi-rot{turn}", replace(a5_url, rotation=turn))
        for turn in (90, 180, 270)
    ]
    out.append(VariationClass("qr-3cm", qr3))
    out.append(VariationClass("qr-3cm-heavy-speckle", replace(qr3, speckle=_HEAVY_SPECKLE), why=""))
    out.append(
        VariationClass(
            "qr-3cm-rot180-heavy-speckle",
            replace(qr3, rotation=180, speckle=_HEAVY_SPECKLE),
            why="upside down under heavy speckle",
        )
    )
    out.append(VariationClass("qr-url-2.5cm", url, why="portal URL with SGT=<CCCD>&MHS=<code>"))
    out.append(VariationClass("qr-url-2.5cm-rot180", replace(url, rotation=180)))
    out.append(
        VariationClass(
            "qr-url-canvas64-2cm",
            replace(url, size_mm=20.0, drawing="resampled"),
            why="URL QR from a 64 px canvas, printed 2 cm",
        )
    )
    out.append(
        VariationClass(
            "code128-imagewriter+qr-url",
            CoverVariant("code128+qr_url", module_mm=0.3, size_mm=20.0, drawing="imagewriter"),
            why="both symbols on one slip, as many provincial systems print them",
        )
    )
    out.append(
        VariationClass("datamatrix-0.30mm", dm, why="encoder's own shape: a 12×26 rectangle")
    )
    out += [
        VariationClass(f"datamatrix-0.30mm-rot{turn}", replace(dm, rotation=turn))
        for turn in (90, 180, 270)
    ]
    out.append(
        VariationClass(
            "datamatrix-square-0.40mm-rot90",
            replace(dm, module_mm=0.4, dm_shape="square", rotation=90),
        )
    )
    out.append(VariationClass("code128-0.33mm-skew3", replace(c128, skew=3.0)))
    out.append(VariationClass("qr-2cm-skew3", replace(qr, skew=-3.0)))
    out.append(VariationClass("code128-0.33mm-faint", replace(c128, faint=0.4)))
    out.append(VariationClass("qr-2cm-faint", replace(qr, faint=0.4)))
    out.append(VariationClass("code128-0.30mm-q60", replace(c128, module_mm=0.3, quality=60)))
    out.append(VariationClass("qr-1.2cm-q60", replace(qr, size_mm=12.0, quality=60)))
    out.append(
        VariationClass("code128-0.33mm-heavy-speckle", replace(c128, speckle=_HEAVY_SPECKLE))
    )
    out.append(VariationClass("qr-2cm-heavy-speckle", replace(qr, speckle=_HEAVY_SPECKLE)))
    out += [
        VariationClass(f"content-{kind.replace('_', '-')}", _STEADY, (kind,), why=why)
        for kind, why in _CONTENT_CLASSES
    ]
    # Added after the first table: classes go last, so every earlier class keeps its seeds.
    out.append(
        VariationClass(
            "datamatrix-0.30mm-faint",
            replace(dm, faint=0.5),
            why="a tired cartridge: the symbol's steps too faint for the texture probe's "
            "threshold until it scaled with the page's contrast",
        )
    )
    return tuple(out)


_CONTENT_CLASSES: tuple[tuple[ContentKind, str], ...] = (
    ("cccd", "photocopied chip ID card with its QR"),
    ("tracking", "postal tracking slip, S10 number as Code 128"),
    ("payment", "fee notice with a VietQR payment code naming the dossier"),
    ("other_agency", "e-invoice with another agency's Code 128"),
)


def variation_classes() -> tuple[VariationClass, ...]:
    """Every named variation class, in the order the benchmark table lists them."""
    return _CLASSES


def variation_class(name: str) -> VariationClass:
    """One variation class by name; ValueError names the known ones."""
    for item in _CLASSES:
        if item.name == name:
            return item
    raise ValueError(f"unknown variation class {name!r}; known: {[c.name for c in _CLASSES]}")


def class_codes(variation: VariationClass, n: int, seed: int = 0) -> list[str]:
    """`n` distinct dossier codes for covers of `variation`.

    Codes come from `edge.samples.sample_codes` (every style the default patterns accept),
    or, for a class with `first_code`, from that office's counter on that day: `first_code`
    and the codes after it, whatever the seed.
    """
    if variation.first_code is None:
        return samples.sample_codes(n, seed=seed)
    head, _, sequence = variation.first_code.rpartition("-")
    return [f"{head}-{int(sequence) + i:0{len(sequence)}d}" for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Symbols as printed and scanned: masks at the scan resolution, 255 = full ink

_SUPERSAMPLE = 4
_SCAN_BLUR_PX = 0.45
"""Scanner optics: a little blur, constant in scan pixels."""


def _mm_px(mm: float, dpi: int) -> float:
    return mm * dpi / _INCH_MM


def _area_sample(
    cells: np.ndarray, cell_px: float, phase: tuple[float, float], *, blur: bool = True
) -> Image.Image:
    """Render a grid of ink cells (True = ink) with square cells `cell_px` scan pixels wide,
    offset by a sub-pixel `phase`, by area coverage: what a sensor sees of an ideal print."""
    rows, cols = cells.shape
    width = math.ceil(cols * cell_px + phase[0]) + 1
    height = math.ceil(rows * cell_px + phase[1]) + 1
    sup = _SUPERSAMPLE
    xs = np.floor(((np.arange(width * sup) + 0.5) / sup - phase[0]) / cell_px).astype(np.int64)
    ys = np.floor(((np.arange(height * sup) + 0.5) / sup - phase[1]) / cell_px).astype(np.int64)
    inside_x = (xs >= 0) & (xs < cols)
    inside_y = (ys >= 0) & (ys < rows)
    fine = cells[np.clip(ys, 0, rows - 1)][:, np.clip(xs, 0, cols - 1)]
    fine &= inside_y[:, None] & inside_x[None, :]
    coverage = fine.reshape(height, sup, width, sup).mean(axis=(1, 3))
    mask = Image.fromarray(np.rint(coverage * 255).astype(np.uint8))
    return _blurred(mask) if blur else mask


def _blurred(mask: Image.Image, radius: float = _SCAN_BLUR_PX) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(radius))


def _bars_sample(bars: np.ndarray, module_px: float, height_px: int, phase: float) -> Image.Image:
    """A row of Code 128 modules sampled by area, then stretched to the bar height."""
    width = math.ceil(bars.size * module_px + phase) + 1
    sup = _SUPERSAMPLE * 2
    xs = np.floor(((np.arange(width * sup) + 0.5) / sup - phase) / module_px).astype(np.int64)
    inside = (xs >= 0) & (xs < bars.size)
    fine = bars[np.clip(xs, 0, bars.size - 1)] & inside
    row = np.rint(fine.reshape(width, sup).mean(axis=1) * 255).astype(np.uint8)
    return Image.fromarray(np.tile(row, (height_px, 1)))


@lru_cache(maxsize=256)
def _code128_modules(text: str) -> np.ndarray:
    pattern = barcode.get_barcode_class("code128")(text).build()[0]
    return np.frombuffer(pattern.encode("ascii"), dtype=np.uint8) == ord("1")


def _with_caption(bars: Image.Image, text: str, size: int, gap: int) -> Image.Image:
    """Bars with the human-readable text centred underneath, as receipt software prints it."""
    canvas = Image.new("L", (bars.width, bars.height + gap + round(size * 1.3)), 0)
    canvas.paste(bars, (0, 0))
    font = load_font(size)
    ImageDraw.Draw(canvas).text(
        (bars.width // 2, bars.height + gap), text, font=font, fill=255, anchor="ma"
    )
    return canvas


def _code128_crisp(
    text: str, module_mm: float, dpi: int, rng: random.Random, *, printed: bool = True
) -> Image.Image:
    quiet = np.zeros(10, dtype=bool)
    modules = np.concatenate([quiet, _code128_modules(text), quiet])
    phase = rng.random() if printed else 0.0
    bars = _bars_sample(modules, _mm_px(module_mm, dpi), _px(10, dpi), phase)
    return _with_caption(_blurred(bars) if printed else bars, text, _pt(8, dpi), _px(1, dpi))


def _code128_imagewriter(
    text: str, module_mm: float, dpi: int, rng: random.Random, *, printed: bool = True
) -> Image.Image:
    """python-barcode's ImageWriter, with its defaults but the module width, at 300 dpi.

    Its bars are drawn from `mm2px(x)` to `mm2px(x + w) - 1` with float coordinates, so at
    0.3 mm (3.54 px) modules come out 3 or 4 pixels wide and bars run a pixel thinner than the
    spaces. The image is printed at 300 dpi and scanned at `dpi`, landing at a random
    sub-pixel offset on the scanner's grid; unprinted, it is the software's pixels as they are.
    """
    writer = ImageWriter(mode="L", dpi=300)
    rendered = barcode.get_barcode_class("code128")(text, writer=writer).render(
        {"module_width": module_mm}
    )
    mask = Image.eval(rendered.convert("L"), lambda v: 255 - v)
    if not printed and dpi == 300:
        return mask
    scale = dpi / 300
    size = (math.ceil(mask.width * scale) + 1, math.ceil(mask.height * scale) + 1)
    dx, dy = rng.random(), rng.random()
    mask = mask.transform(
        size,
        Image.Transform.AFFINE,
        (1 / scale, 0, -dx / scale, 0, 1 / scale, -dy / scale),
        Image.Resampling.BILINEAR,
    )
    return _blurred(mask, 0.35)


_CANVAS_PX_PER_MODULE = 0.86
_CANVAS_MARGIN = 10
_CANVAS_HEIGHT = 66


def _code128_resampled(text: str, module_mm: float, dpi: int) -> Image.Image:
    """A web page's JsBarcode-style canvas: 0.86 CSS px per module, 10 px margins, a 66 px tall
    PNG (about 250 px wide for a 21-character code) with the text under the bars; the DOCX it
    goes into scales it so a module prints `module_mm` wide; the scanner samples that."""
    modules = _code128_modules(text)
    bars = _bars_sample(modules, _CANVAS_PX_PER_MODULE, 42, 0.0)
    width = bars.width + 2 * _CANVAS_MARGIN
    canvas = Image.new("L", (width, _CANVAS_HEIGHT), 0)
    canvas.paste(bars, (_CANVAS_MARGIN, _CANVAS_MARGIN // 2))
    ImageDraw.Draw(canvas).text(
        (width // 2, _CANVAS_MARGIN // 2 + 44), text, font=load_font(13), fill=255, anchor="ma"
    )
    scale = _mm_px(module_mm, dpi) / _CANVAS_PX_PER_MODULE
    size = (round(width * scale), round(_CANVAS_HEIGHT * scale))
    return _blurred(canvas.resize(size, Image.Resampling.BICUBIC))


def _matrix(
    modules: np.ndarray,
    module_mm: float,
    quiet: int,
    dpi: int,
    rng: random.Random,
    *,
    printed: bool = True,
) -> Image.Image:
    padded = np.pad(modules, quiet, constant_values=False)
    if not printed:  # software draws whole pixels per module
        module = max(1, round(_mm_px(module_mm, dpi)))
        mask = Image.fromarray(padded.astype(np.uint8) * 255)
        return mask.resize((mask.width * module, mask.height * module), Image.Resampling.NEAREST)
    return _area_sample(padded, _mm_px(module_mm, dpi), (rng.random(), rng.random()))


def _qr_modules(text: str) -> np.ndarray:
    qr = segno.make_qr(text, error="m", boost_error=False)
    return np.asarray(list(qr.matrix_iter(scale=1, border=0)), dtype=bool)


def _qr_canvas(text: str, size_mm: float, dpi: int) -> Image.Image:
    """A QR drawn on a 64 px canvas (with its quiet zone) and printed `size_mm` wide."""
    modules = np.pad(_qr_modules(text), 4, constant_values=False)
    canvas = _area_sample(modules, 64 / modules.shape[0], (0.0, 0.0)).crop((0, 0, 64, 64))
    side = round(_mm_px(size_mm, dpi) * modules.shape[0] / (modules.shape[0] - 8))
    return _blurred(canvas.resize((side, side), Image.Resampling.BICUBIC))


def _datamatrix_modules(text: str, square: bool) -> np.ndarray:
    """zxing-cpp's encoder; left to itself it picks the smallest symbol, which for a dossier
    code is a rectangle (12×26 for 21 characters), as other encoders' defaults do."""
    options = {"force_square": True} if square else {}
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix, **options)
    return np.asarray(symbol.to_image(scale=1, add_quiet_zones=False)) < 128


def _symbol(
    text: str, kind: Literal["code128", "qr", "datamatrix"], v: CoverVariant, rng: random.Random
) -> Image.Image:
    printed = v.printed
    if kind == "code128":
        if v.drawing == "imagewriter":
            return _code128_imagewriter(text, v.module_mm, v.dpi, rng, printed=printed)
        if v.drawing == "resampled":
            return _code128_resampled(text, v.module_mm, v.dpi)
        return _code128_crisp(text, v.module_mm, v.dpi, rng, printed=printed)
    if kind == "qr":
        if v.drawing == "resampled":
            return _qr_canvas(text, v.size_mm, v.dpi)
        modules = _qr_modules(text)
        return _matrix(modules, v.size_mm / modules.shape[0], 4, v.dpi, rng, printed=printed)
    square = v.dm_shape == "square"
    return _matrix(_datamatrix_modules(text, square), v.module_mm, 2, v.dpi, rng, printed=printed)


# ---------------------------------------------------------------------------------------------
# Domain payloads


def _ascii_fold(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _province_slug(province: str) -> str:
    name = province.removeprefix("tỉnh ").removeprefix("thành phố ").removeprefix("Thành phố ")
    return "".join(c for c in _ascii_fold(name).lower() if c.isalnum())


def portal_url(code: str, cccd: str, province: str) -> str:
    """The lookup URL a provincial portal prints as the receipt's QR code."""
    return (
        f"https://dichvucong.{_province_slug(province)}.gov.vn/portaldvc/tra-cuu"
        f"?SGT={cccd}&MHS={code}"
    )


def cccd_payload(person: Person, rng: random.Random) -> str:
    """What the QR on a chip ID card says: `ID12|old ID9|name|ddmmyyyy|sex|address|issued`.

    The old 9-digit number is empty for people who never had one; the address is the
    permanent address as printed when the card was issued (before the 2025 merger).
    """
    old = f"{rng.randrange(10**8, 10**9)}" if rng.random() < 0.7 else ""
    old_province = PROVINCES[person.birth_province_code][0]
    district = samples._place_name(rng)
    address = f"{person.hamlet}, Xã {person.commune}, Huyện {district}, Tỉnh {old_province}"
    earliest = max(date(2021, 1, 1), person.birth_date.replace(year=person.birth_date.year + 14))
    issued = earliest + timedelta(days=rng.randrange(max(1, (REFERENCE_DATE - earliest).days)))
    born = person.birth_date
    return (
        f"{person.cccd}|{old}|{person.full_name}|{born:%d%m%Y}|{person.sex}|{address}|"
        f"{issued:%d%m%Y}"
    )


_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_check_digit(serial: str) -> int:
    """UPU S10 check digit of an 8-digit serial: weights 8 6 4 2 3 5 9 7, 11 - sum mod 11,
    where 10 becomes 0 and 11 becomes 5."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError(f"an S10 serial is 8 digits, not {serial!r}")
    check = 11 - sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def s10_number(rng: random.Random, prefix: str | None = None) -> str:
    """A Vietnam Post item number such as EB12345678?VN with a valid check digit."""
    service = prefix or rng.choice(("EB", "EE", "EP", "RR", "CP"))
    serial = f"{rng.randrange(10**8):08d}"
    return f"{service}{serial}{s10_check_digit(serial)}VN"


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), the checksum ending an EMVCo QR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def vietqr_payload(bank_bin: str, account: str, amount: int | None, purpose: str) -> str:
    """An EMVCo merchant-presented payload in NAPAS VietQR form, ending in a valid CRC."""
    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    merchant = _tlv("00", "A000000727") + _tlv("01", beneficiary) + _tlv("02", "QRIBFTTA")
    body = _tlv("00", "01") + _tlv("01", "12" if amount else "11") + _tlv("38", merchant)
    body += _tlv("53", "704")
    if amount:
        body += _tlv("54", str(amount))
    body += _tlv("58", "VN") + _tlv("62", _tlv("08", purpose[:50]))
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def invoice_code(rng: random.Random) -> str:
    """An e-invoice lookup code (form, series, number): another agency's 1-D code."""
    series = f"1C{rng.randint(22, 26)}T{rng.choice('ABCDEGHKLMNPQRSTUVXY')}{rng.choice('AY')}"
    text = f"{series}-{rng.randrange(1, 10**7):07d}"
    if _PATTERNS.match(text):  # never by construction; guards the content pages' promise
        raise AssertionError(f"invoice code {text} reads as a dossier code")
    return text


# ---------------------------------------------------------------------------------------------
# Pages


@dataclass(frozen=True, slots=True)
class _Sheet:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    body: int
    pitch: int
    points: float


def _sheet(paper: Paper, dpi: int) -> _Sheet:
    width_mm, height_mm = PAPER_MM[paper]
    small = paper == "A5"
    points = 9.5 if small else 11.0
    body = _pt(points, dpi)
    return _Sheet(
        width=round(width_mm / _INCH_MM * dpi),
        height=round(height_mm / _INCH_MM * dpi),
        left=_px(15 if small else 30, dpi),
        right=_px(10 if small else 18, dpi),
        top=_px(10 if small else 18, dpi),
        bottom=_px(10 if small else 18, dpi),
        body=body,
        pitch=round(body * 1.5),
        points=points,
    )


def _paper(rng: random.Random, sheet: _Sheet, dpi: int, colour: bool) -> Image.Image:
    page = _blank(rng, dpi, colour)
    if page.size != (sheet.width, sheet.height):
        page = page.crop((0, 0, sheet.width, sheet.height))
    page.info["dpi"] = (dpi, dpi)
    return page


def _ink_on(page: Image.Image, mask: Image.Image, xy: tuple[int, int], ink: Colour | int) -> None:
    page.paste(ink, xy, mask)


def receipt_cover(code: str, seed: int = 0, variant: CoverVariant | None = None) -> Image.Image:
    """A Mẫu 01 receipt slip for `code`, printed and scanned as `variant` says.

    The slip carries the code in words and as its symbol(s), the citizen's name, CCCD number,
    phone and address, the procedure and documents, the received and appointment dates and
    two signatures. 2-D symbols sit at the top right under the state motto, with a caption;
    a Code 128 runs under the title; with both, the QR is the portal URL.
    """
    v = variant or CoverVariant()
    if _PATTERNS.match(code) is None:
        raise ValueError(f"{code!r} does not match the box's default dossier-code patterns")
    rng = random.Random(f"receipt:{seed}:{code}")
    sheet = _sheet(v.paper, v.dpi)
    dpi = v.dpi
    page = _paper(rng, sheet, dpi, v.colour)
    ink = _tone(_PRINT_BLACK, v.colour)
    person = _person(rng)
    size, pitch = sheet.body, sheet.pitch
    right = sheet.width - sheet.right
    small = v.paper == "A5"

    _paste_text(page, "Mẫu số 01", (right, sheet.top), size, ink, bold=True, align="right")
    top = sheet.top + pitch
    agency_centre = sheet.left + _px(22 if small else 28, dpi)
    _write(page, f"UBND XÃ {person.commune.upper()}", (agency_centre, top), size, ink, anchor="ma")
    for row, text in enumerate(("BỘ PHẬN TIẾP NHẬN VÀ", "TRẢ KẾT QUẢ"), 1):
        used = _paste_text(
            page, text, (agency_centre, top + row * pitch), size, ink, bold=True, align="centre"
        )
    rule = max(1, round(dpi / 150))
    under = top + 3 * pitch
    page.paste(ink, (agency_centre - used // 2, under, agency_centre + used // 2, under + rule))
    number = rng.randint(1, 999)
    _write(
        page, f"Số: {number:03d}/TNHS", (agency_centre, under + pitch // 2), size, ink, anchor="ma"
    )
    motto_centre = right - _px(34 if small else 44, dpi)
    y = _national_header(page, motto_centre, top, dpi, ink, sheet.points - 0.5) + pitch // 2
    y = max(y, under + 2 * pitch)

    kinds = _symbol_kinds(v.symbology)
    texts = {"code128": code, "qr": code, "datamatrix": code}
    if v.symbology in ("qr_url", "code128+qr_url"):
        texts["qr"] = portal_url(code, person.cccd, person.province)
    two_d = next((k for k in kinds if k != "code128"), None)
    if two_d is not None:
        mask = _symbol(texts[two_d], two_d, v, rng)
        x = right - mask.width - (rng.randint(0, _px(3, dpi)) if v.printed else 0)
        _ink_on(page, mask, (x, y), ink)
        caption = "Tra cứu hồ sơ" if texts[two_d] != code else "Mã hồ sơ"
        _write(
            page,
            caption,
            (x + mask.width // 2, y + mask.height + pitch // 4),
            _pt(sheet.points - 2, dpi),
            ink,
            italic=True,
            anchor="ma",
        )
        y += mask.height + pitch
    y += pitch // 2
    centre = sheet.width // 2
    title_size = _pt(sheet.points + 2, dpi)
    _paste_text(
        page,
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        (centre, y),
        title_size,
        ink,
        bold=True,
        align="centre",
    )
    y += round(title_size * 1.7)
    if "code128" in kinds:
        mask = _symbol(code, "code128", v, rng)
        # where the sheet lay on the glass; an unprinted slip is where the template put it
        jitter = rng.randint(-_px(3, dpi), _px(3, dpi)) if v.printed else 0
        _ink_on(page, mask, (centre - mask.width // 2 + jitter, y), ink)
        y += mask.height + pitch // 2
    _write(
        page, f"Mã hồ sơ: {code}", (centre, y), _pt(sheet.points + 1, dpi), ink, bold=True,
        anchor="ma",
    )  # fmt: skip
    y += round(pitch * 1.8)
    y = _receipt_body(page, rng, person, code, sheet, dpi, ink, y)
    _signatures(page, rng, person, sheet, dpi, ink, y)
    return scanned(page, v, rng)


def _symbol_kinds(symbology: SymbolKind) -> tuple[Literal["code128", "qr", "datamatrix"], ...]:
    return {
        "code128": ("code128",),
        "qr": ("qr",),
        "qr_url": ("qr",),
        "datamatrix": ("datamatrix",),
        "code128+qr_url": ("qr", "code128"),
    }[symbology]  # type: ignore[return-value]


def _receipt_body(
    page: Image.Image,
    rng: random.Random,
    person: Person,
    code: str,
    sheet: _Sheet,
    dpi: int,
    ink: Colour | int,
    y: int,
) -> int:
    procedure, days, documents = _PROCEDURES[rng.randrange(len(_PROCEDURES))]
    received = _code_day(code, rng)
    due = _add_working_days(received, days)
    at = f"{rng.randint(7, 16):02d} giờ {rng.choice((0, 10, 15, 20, 30, 45)):02d} phút"
    lines = [
        ("", f"Bộ phận tiếp nhận và trả kết quả UBND xã {person.commune}"),
        ("Tiếp nhận hồ sơ của: ", ""),
        ("Ông/Bà: ", person.full_name),
        ("Số CCCD: ", person.cccd),
        ("Số điện thoại: ", person.phone),
        ("Địa chỉ: ", person.address),
        ("Thủ tục hành chính: ", procedure),
        ("Thành phần hồ sơ gồm:", ""),
        *[("", f"{i}. {doc}: 01 bản") for i, doc in enumerate(documents, 1)],
        ("Số lượng hồ sơ: ", "01 (bộ)"),
        ("Thời gian giải quyết: ", f"{days:02d} ngày làm việc"),
        ("Nhận hồ sơ: ", f"{at}, {_vn_date(received)}"),
        ("Hẹn trả kết quả: ", f"{at}, {_vn_date(due)}"),
    ]
    size = sheet.body
    for label, value in lines:
        x = sheet.left
        if label:
            x += _paste_text(page, label, (x, y), size, ink) + size // 3
        if value:
            _write(page, value, (x, y), size, ink)
        y += sheet.pitch
    return y + sheet.pitch


def _signatures(
    page: Image.Image,
    rng: random.Random,
    person: Person,
    sheet: _Sheet,
    dpi: int,
    ink: Colour | int,
    y: int,
) -> None:
    column = sheet.width - sheet.left - sheet.right
    size, pitch = sheet.body, sheet.pitch
    clerk = _person(rng).full_name
    for centre, role, name in (
        (sheet.left + column // 4, "NGƯỜI NỘP HỒ SƠ", person.full_name),
        (sheet.left + 3 * column // 4, "NGƯỜI TIẾP NHẬN", clerk),
    ):
        _paste_text(page, role, (centre, y), size, ink, bold=True, align="centre")
        half = _px(16, dpi)
        box = (centre - half, y + pitch, centre + half, y + 3 * pitch)
        if box[3] + 2 * pitch < sheet.height:
            _signature(page, rng, box, _tone(_INKS[2], page.mode == "RGB"))
            _write(page, name, (centre, y + round(3.4 * pitch)), size, ink, bold=True, anchor="ma")


def scanned(image: Image.Image, variant: CoverVariant, rng: random.Random) -> Image.Image:
    """A printed page as the scanner delivers it: toner strength, specks, skew, rotation.

    Faint toner pulls every ink tone towards the paper; specks are dark (dust, toner) and
    light (dropouts) dots 0.1-0.4 mm across; skew turns the content on the glass
    (counter-clockwise degrees, corners filled with paper); rotation turns the whole image.
    """
    page = image
    if variant.faint < 1.0:
        page = _faded(page, variant.faint, rng)
    if variant.speckle > 0:
        _speckle(page, variant.speckle, variant.dpi, rng)
    if variant.skew:
        page = samples.skewed(page, variant.skew)
    if variant.rotation:
        turn = {
            90: Image.Transpose.ROTATE_90,
            180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_270,
        }[variant.rotation]
        page = page.transpose(turn)
    page.info["dpi"] = (variant.dpi, variant.dpi)
    return page


def _faded(page: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    """Ink at `strength` of its darkness over the paper, unevenly (a toner cartridge running
    out leaves lighter bands)."""
    paper = 244
    lut = [v if v >= paper else round(paper - (paper - v) * strength) for v in range(256)]
    faded = page.point(lut * len(page.getbands()))
    bands = rng.randint(2, 5)
    noise = np.random.default_rng(rng.randrange(2**32)).uniform(0.0, 1.0, (bands, 1))
    light = Image.fromarray((noise * 60).astype(np.uint8)).resize(
        page.size, Image.Resampling.BILINEAR
    )
    whiter = Image.new(page.mode, page.size, _tone((250, 249, 246), page.mode == "RGB"))
    return Image.composite(whiter, faded, light)


def _speckle(page: Image.Image, per_cm2: float, dpi: int, rng: random.Random) -> None:
    draw = ImageDraw.Draw(page)
    width, height = page.size
    area_cm2 = width * height / (dpi / 2.54) ** 2
    rgb = page.mode == "RGB"
    dark = _tone((30, 30, 32), rgb)
    light = _tone((240, 238, 232), rgb)
    for _ in range(round(per_cm2 * area_cm2)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = _mm_px(rng.uniform(0.05, 0.2), dpi)
        fill = dark if rng.random() < 0.7 else light
        if rng.random() < 0.8:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            length = _mm_px(rng.uniform(0.3, 1.2), dpi)
            angle = rng.uniform(0, math.pi)
            end = (x + length * math.cos(angle), y + length * math.sin(angle))
            draw.line((x, y, *end), fill=fill, width=max(1, round(r)))


# -- content pages ----------------------------------------------------------------------------


def _content_base(seed_text: str, dpi: int, colour: bool) -> tuple[Image.Image, random.Random]:
    rng = random.Random(seed_text)
    page = _blank(rng, dpi, colour)
    return page, rng


def _card(
    size: tuple[int, int], rng: random.Random, rgb: bool, dpi: int
) -> tuple[Image.Image, Image.Image]:
    """A photocopied card: a mid-grey rounded rectangle with toner mottle, and its mask."""
    width, height = size
    tone = rng.randint(170, 205)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 9, (height, width))
    grey = Image.fromarray(np.clip(tone + noise, 0, 255).astype(np.uint8))
    card = Image.merge("RGB", [grey] * 3) if rgb else grey
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, width - 1, height - 1), _px(3, dpi), fill=255)
    return card, mask


def cccd_page(
    seed: int, dpi: int = 300, *, colour: bool = True, person: Person | None = None
) -> Image.Image:
    """A photocopy of both sides of a chip ID card (CCCD) on an A4 sheet.

    The front carries the photo, the printed fields and the ~2 cm QR whose text is
    `cccd_payload`; the back the chip, fingerprints and machine-readable zone. The card lies
    on the copier a little crooked, sometimes sideways.
    """
    page, rng = _content_base(f"cccd:{seed}", dpi, colour)
    who = person or _person(rng)
    payload = cccd_payload(who, rng)
    rgb = page.mode == "RGB"
    ink = _tone((25, 25, 28), rgb)
    card_size = (_px(85.6, dpi), _px(54, dpi))
    pad = _px(1, dpi)
    fields = (
        ("Số / No.:", who.cccd),
        ("Họ và tên / Full name:", who.full_name.upper()),
        ("Ngày sinh / Date of birth:", f"{who.birth_date:%d/%m/%Y}"),
        ("Giới tính / Sex:", f"{who.sex}     Quốc tịch: Việt Nam"),
        ("Quê quán / Place of origin:", f"{who.commune}, {PROVINCES[who.birth_province_code][0]}"),
        ("Nơi thường trú / Place of residence:", who.address),
    )
    small = _pt(5.5, dpi)

    front, front_mask = _card(card_size, rng, rgb, dpi)
    draw = ImageDraw.Draw(front)
    draw.text(
        (card_size[0] // 2, _px(3, dpi)),
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        font=load_font(_pt(6, dpi), bold=True),
        fill=ink,
        anchor="ma",
    )
    draw.text(
        (card_size[0] // 2, _px(9, dpi)),
        "CĂN CƯỚC CÔNG DÂN",
        font=load_font(_pt(8, dpi), bold=True),
        fill=ink,
        anchor="ma",
    )
    photo = (_px(3, dpi), _px(15, dpi), _px(23, dpi), _px(45, dpi))
    draw.rectangle(photo, fill=_tone((95, 95, 98), rgb))
    modules = _qr_modules(payload)
    qr = _matrix(modules, 20.0 / modules.shape[0], 2, dpi, rng)
    qr_box = Image.new(front.mode, qr.size, _tone((235, 235, 232), rgb))
    front.paste(qr_box, (card_size[0] - qr.width - pad * 2, pad * 2))
    front.paste(ink, (card_size[0] - qr.width - pad * 2, pad * 2), qr)
    x, y = _px(26, dpi), _px(15, dpi)
    for label, value in fields:
        draw.text((x, y), label, font=load_font(small), fill=ink)
        draw.text((x, y + small), value, font=load_font(small, bold=True), fill=ink)
        y += round(small * 2.3)

    back, back_mask = _card(card_size, rng, rgb, dpi)
    draw = ImageDraw.Draw(back)
    chip = (_px(5, dpi), _px(6, dpi), _px(17, dpi), _px(15, dpi))
    draw.rectangle(chip, fill=_tone((120, 120, 120), rgb))
    for left in (_px(52, dpi), _px(70, dpi)):
        draw.rounded_rectangle(
            (left, _px(4, dpi), left + _px(14, dpi), _px(22, dpi)), pad, outline=ink, width=pad
        )
    draw.text((_px(5, dpi), _px(20, dpi)), "Đặc điểm nhân dạng:", font=load_font(small), fill=ink)
    mrz = _mrz(who, rng)
    mono = load_font(_pt(7, dpi))
    for row, line in enumerate(mrz):
        draw.text((_px(4, dpi), _px(36 + row * 5.5, dpi)), line, font=mono, fill=ink)

    margin = _px(30, dpi)
    sideways = rng.random() < 0.3
    for index, (card, mask) in enumerate(((front, front_mask), (back, back_mask))):
        angle = rng.uniform(-4, 4) + (90 if sideways else 0)
        turned = card.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        turned_mask = mask.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        top = margin + index * (max(turned.height, card_size[1]) + _px(20, dpi))
        left = margin + rng.randint(0, _px(30, dpi))
        if top + turned.height < page.height:
            page.paste(turned, (left, top), turned_mask)
    _write(
        page,
        "Bản sao căn cước công dân",
        (page.width - margin, page.height - margin),
        _pt(9, dpi),
        ink,
        italic=True,
        anchor="rs",
    )
    _specks(page, rng, dpi, ink)
    return page


def _mrz(person: Person, rng: random.Random) -> list[str]:
    names = _ascii_fold(person.full_name).upper().split()
    born = person.birth_date
    expiry = born.replace(year=born.year + 60) if born.year > 1960 else date(2099, 12, 31)
    line1 = f"IDVNM{person.cccd[3:]}{rng.randrange(10)}{person.cccd}<<{rng.randrange(10)}"
    sex = "M" if person.sex == "Nam" else "F"
    line2 = f"{born:%y%m%d}{rng.randrange(10)}{sex}{expiry:%y%m%d}{rng.randrange(10)}VNM"
    line3 = f"{names[0]}<<{'<'.join(names[1:])}"
    return [(line + "<" * 30)[:30] for line in (line1, line2, line3)]


def _letter_head(
    page: Image.Image, rng: random.Random, dpi: int, ink: Colour | int, issuer: str, title: str
) -> int:
    geometry = samples._geometry(dpi)
    width = page.width
    left = geometry.left
    _paste_text(page, issuer, (left, geometry.top), geometry.body, ink, bold=True)
    y = geometry.top + round(geometry.pitch * 2.5)
    _paste_text(page, title, (width // 2, y), _pt(14, dpi), ink, bold=True, align="centre")
    return y + round(_pt(14, dpi) * 2.2)


def _fill_lines(
    page: Image.Image,
    rows: Sequence[tuple[str, str]],
    dpi: int,
    ink: Colour | int,
    y: int,
) -> int:
    geometry = samples._geometry(dpi)
    for label, value in rows:
        used = _paste_text(page, label, (geometry.left, y), geometry.body, ink)
        _write(page, value, (geometry.left + used + geometry.body // 3, y), geometry.body, ink)
        y += geometry.pitch
    return y


def _some_prose(page: Image.Image, rng: random.Random, dpi: int, ink: Colour | int, y: int) -> None:
    geometry = samples._geometry(dpi)
    bottom = min(page.height - geometry.bottom, y + 12 * geometry.pitch)
    for number, index, x, line_y in _body_layout(rng, dpi, y, bottom):
        _paste(page, _body_line(dpi, number, index), x, line_y, ink)


def tracking_page(
    seed: int, dpi: int = 300, *, colour: bool = True, number: str | None = None
) -> Image.Image:
    """A public-postal-service slip (phiếu gửi) with the item's S10 number as a Code 128."""
    page, rng = _content_base(f"tracking:{seed}", dpi, colour)
    ink = _tone(_PRINT_BLACK, colour)
    item = number or s10_number(rng)
    y = _letter_head(
        page, rng, dpi, ink, "BƯU ĐIỆN VIỆT NAM - VNPOST", "PHIẾU GỬI HỒ SƠ QUA BƯU CHÍNH CÔNG ÍCH"
    )
    variant = CoverVariant("code128", module_mm=rng.choice((0.3, 0.33, 0.38)), dpi=dpi)
    mask = _symbol(item, "code128", variant, rng)
    page.paste(ink, (page.width - samples._geometry(dpi).right - mask.width, y), mask)
    y += mask.height + samples._geometry(dpi).pitch
    sender, receiver = _person(rng), _person(rng)
    y = _fill_lines(
        page,
        (
            ("Số hiệu bưu gửi: ", item),
            ("Người gửi: ", f"{sender.full_name}, {sender.address}"),
            ("Điện thoại: ", sender.phone),
            ("Người nhận: ", f"Bộ phận một cửa UBND xã {receiver.commune}"),
            ("Khối lượng: ", f"{rng.randint(50, 900)} g"),
            ("Cước phí: ", f"{rng.randint(18, 60) * 1000:,} đồng".replace(",", ".")),
        ),
        dpi,
        ink,
        y,
    )
    _some_prose(page, rng, dpi, ink, y + samples._geometry(dpi).pitch)
    _specks(page, rng, dpi, ink)
    return page


_BANK_BINS = ("970436", "970415", "970418", "970405", "970422", "970407")


def payment_page(
    seed: int, dpi: int = 300, *, colour: bool = True, dossier_code: str | None = None
) -> Image.Image:
    """A fee notice with a VietQR code; its purpose names the dossier, as portals print it."""
    page, rng = _content_base(f"payment:{seed}", dpi, colour)
    ink = _tone(_PRINT_BLACK, colour)
    amount = rng.choice((10_000, 20_000, 30_000, 50_000, 100_000))
    account = f"{rng.randrange(10**9, 10**13)}"
    purpose = f"NOP LE PHI HS {dossier_code}" if dossier_code else f"NOP LE PHI {seed:06d}"
    payload = vietqr_payload(rng.choice(_BANK_BINS), account, amount, purpose)
    y = _letter_head(page, rng, dpi, ink, "ỦY BAN NHÂN DÂN XÃ", "THÔNG BÁO NỘP PHÍ, LỆ PHÍ")
    variant = CoverVariant("qr", size_mm=rng.choice((25.0, 30.0, 35.0)), dpi=dpi)
    mask = _symbol(payload, "qr", variant, rng)
    geometry = samples._geometry(dpi)
    page.paste(ink, ((page.width - mask.width) // 2, y), mask)
    y += mask.height + geometry.pitch
    y = _fill_lines(
        page,
        (
            ("Số tiền: ", f"{amount:,} đồng".replace(",", ".")),
            ("Số tài khoản: ", account),
            ("Nội dung: ", purpose),
            ("", "Quét mã VietQR bằng ứng dụng ngân hàng để thanh toán."),
        ),
        dpi,
        ink,
        y,
    )
    _some_prose(page, rng, dpi, ink, y + geometry.pitch)
    _specks(page, rng, dpi, ink)
    return page


def other_agency_page(seed: int, dpi: int = 300, *, colour: bool = True) -> Image.Image:
    """An e-invoice printout carrying its lookup code as a Code 128 at the top right."""
    page, rng = _content_base(f"invoice:{seed}", dpi, colour)
    ink = _tone(_PRINT_BLACK, colour)
    text = invoice_code(rng)
    geometry = samples._geometry(dpi)
    variant = CoverVariant("code128", module_mm=rng.choice((0.25, 0.3, 0.33)), dpi=dpi)
    mask = _symbol(text, "code128", variant, rng)
    page.paste(ink, (page.width - geometry.right - mask.width, geometry.top), mask)
    y = _letter_head(page, rng, dpi, ink, "CÔNG TY ĐIỆN LỰC", "HÓA ĐƠN GIÁ TRỊ GIA TĂNG")
    y = max(y, geometry.top + mask.height + geometry.pitch)
    buyer = _person(rng)
    y = _fill_lines(
        page,
        (
            ("Ký hiệu: ", text.split("-")[0]),
            ("Số: ", text.split("-")[1]),
            ("Người mua hàng: ", buyer.full_name),
            ("Địa chỉ: ", buyer.address),
            ("Tổng tiền thanh toán: ", f"{rng.randint(50, 900) * 1000:,} đồng".replace(",", ".")),
        ),
        dpi,
        ink,
        y,
    )
    _some_prose(page, rng, dpi, ink, y + geometry.pitch)
    _specks(page, rng, dpi, ink)
    return page


def content_page(
    kind: ContentKind,
    seed: int,
    dpi: int = 300,
    *,
    colour: bool = True,
    dossier_code: str | None = None,
) -> Image.Image:
    """One content page of `kind` (see CONTENT_KINDS), A4 at `dpi`."""
    if kind == "text":
        return samples.text_page(seed, dpi, colour=colour)
    if kind == "cccd":
        return cccd_page(seed, dpi, colour=colour)
    if kind == "tracking":
        return tracking_page(seed, dpi, colour=colour)
    if kind == "payment":
        return payment_page(seed, dpi, colour=colour, dossier_code=dossier_code)
    if kind == "other_agency":
        return other_agency_page(seed, dpi, colour=colour)
    raise ValueError(f"unknown content kind {kind!r}; use one of {CONTENT_KINDS}")


# ---------------------------------------------------------------------------------------------
# Scan jobs


@dataclass(frozen=True, slots=True)
class ReceiptDossier:
    """One dossier in a scan job: its cover (none if `code` is None: loose pages before the
    first cover) then one content page per entry of `content`. `cover` overrides the job's
    variant for this dossier's cover."""

    code: str | None
    content: tuple[ContentKind, ...] = ("text", "text")
    cover: CoverVariant | None = field(default=None)


def write_receipt_job(
    inbox: str | os.PathLike[str],
    job: str,
    dossiers: Sequence[ReceiptDossier],
    variant: CoverVariant | None = None,
    *,
    seed: int = 0,
    name: str = "scan",
) -> dict[str, str | None]:
    """Write one scan job as the sub-folder `inbox/job`, one JPEG per page, and return the
    expected dossier code of every page, keyed by its path relative to the inbox
    (`job/scan_0001.jpg`, the names `edge dossiers --json` lists as sources).

    Pages are written into a hidden folder that is renamed into place when complete, as a
    scanner's batch is, so a watching capture never sees half a job. Content pages use the
    job's resolution, JPEG quality, colour and toner (a tired cartridge fades the whole job,
    so faint text must stay text); covers follow `variant` (or their own).
    """
    base = variant or CoverVariant()
    target = Path(inbox) / job
    if target.exists():
        raise FileExistsError(f"{target} exists already")
    staging = Path(inbox) / f".{job}.partial"
    staging.mkdir(parents=True)
    expected: dict[str, str | None] = {}
    number = 0
    for index, dossier in enumerate(dossiers):
        if dossier.code is None and index:
            raise ValueError("only the first dossier of a job can lack a cover")
        pages: list[tuple[Image.Image, int, int]] = []
        page_seed = seed * 1_000_003 + number * 7919
        if dossier.code is not None:
            cover = dossier.cover or base
            image = receipt_cover(dossier.code, page_seed, cover)
            pages.append((image, cover.dpi, cover.quality))
        for offset, kind in enumerate(dossier.content, 1):
            image = content_page(
                kind,
                page_seed + offset,
                base.dpi,
                colour=base.colour,
                dossier_code=dossier.code,
            )
            if base.faint < 1.0:
                image = _faded(image, base.faint, random.Random(page_seed + offset))
            pages.append((image, base.dpi, base.quality))
        for image, dpi, quality in pages:
            number += 1
            filename = f"{name}_{number:04d}.jpg"
            samples.save_jpeg(image, staging / filename, dpi, quality)
            expected[f"{job}/{filename}"] = dossier.code
    os.replace(staging, target)
    return expected


_CLASSES = _classes()
