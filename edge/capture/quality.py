"""Decree 30/2020/ND-CP quality checks on one scanned page.

The flags are advice shown to the clerk next to the page; they never stop a page or
a dossier from being stored, so the checks favour being cheap and predictable over
being clever. Everything works on the reduced image the pipeline has already decoded
for the barcode pass (about 75 dpi), and runs in a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
from PIL import Image, ImageChops

FLAGS: Final = ("low_dpi", "blank", "too_dark", "too_light", "too_small", "skewed", "not_colour")
"""Every flag code assess() can return, in the order it returns them."""

_MM_PER_INCH: Final = 25.4
_STANDARD_DPIS: Final = (75, 100, 150, 200, 240, 300, 400, 600, 1200)
"""Resolutions scanners offer; a page size that lands on one of these is the likely one."""

_SKEW_TARGET_DPI: Final = 40.0
"""Text lines are 8-10 px apart at this resolution: enough for a projection profile,
few enough points to search 40 angles in about a millisecond."""

_SKEW_MAX_POINTS: Final = 12_000
_SKEW_MIN_POINTS: Final = 150
_SKEW_MIN_CONTRAST: Final = 1.15
"""Best/worst profile energy below this means no line structure to measure (a photo, a
page turned 90 degrees): skew is then unknown rather than guessed."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits for the quality flags, set from the appliance's config.

    ``min_dpi`` is Decree 30's number; the others were tuned on generated scans and are
    meant to be adjusted on real ones. Light levels are 0-255 luminance.
    """

    min_dpi: float = 200.0
    min_long_side_px: int = 1000
    max_skew_degrees: float = 3.0
    blank_max_ink_ratio: float = 0.0003
    ink_contrast: float = 0.35
    ink_max_level: int = 170
    too_dark_mean: float = 90.0
    too_light_ink_level: int = 110
    colour_tolerance: int = 2
    colour_min_fraction: float = 0.01
    margin_fraction: float = 0.05
    paper_sizes_mm: tuple[tuple[float, float], ...] = ((210.0, 297.0), (148.0, 210.0))
    paper_aspect_tolerance: float = 0.06
    plausible_page_mm: tuple[float, float] = (50.0, 600.0)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> QualityThresholds:
        """Build from a config section; unknown keys raise so a typo is not silently
        ignored and the default used instead."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"unknown quality threshold(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in config.items():
            default = known[name].default
            if name == "paper_sizes_mm":
                values[name] = tuple((float(w), float(h)) for w, h in value)
            elif name == "plausible_page_mm":
                low, high = value
                values[name] = (float(low), float(high))
            elif isinstance(default, int):
                values[name] = int(value)
            else:
                values[name] = float(value)
        return cls(**values)


@dataclass
class QualityReport:
    """What assess() found; ``flags`` is empty for a page that needs no attention.

    The measurements are kept beside the flags so the UI can say why ("150 dpi",
    "skewed 5.0 degrees") and thresholds can be tuned from stored reports.
    """

    flags: list[str]
    effective_dpi: float | None
    skew_degrees: float | None
    ink_ratio: float
    mean_luminance: float = 0.0


def assess(
    page_image: Image.Image,
    *,
    reduce: int,
    pixel_size: tuple[int, int],
    dpi: tuple[float, float] | None,
    thresholds: QualityThresholds = QualityThresholds(),
    colour_sample: Image.Image | None = None,
) -> QualityReport:
    """Check one page for the Decree 30 problems a clerk can fix by rescanning.

    ``page_image`` is the page already decoded at 1/``reduce`` of ``pixel_size`` (the
    full-resolution size), so nothing is decoded twice; ``dpi`` is the metadata
    resolution, if any. ``colour_sample``, when given, is what colour is judged on (see
    `is_colour`), and ``page_image`` may then be grey.
    """
    t = thresholds
    flags: list[str] = []

    effective_dpi = effective_resolution(pixel_size, dpi, t)
    if effective_dpi is not None and effective_dpi < t.min_dpi:
        flags.append("low_dpi")

    if colour_sample is not None:
        gray, colour = _luminance(page_image), is_colour(colour_sample, t)
    else:
        gray, colour = _luminance_and_colour(page_image, t)
    box = _inner_box(gray.size, t.margin_fraction)
    inner = gray.crop(box)
    stats = _ink_stats(inner.histogram(), t)

    blank = stats.ink_ratio < t.blank_max_ink_ratio
    if blank:
        flags.append("blank")
    if stats.mean < t.too_dark_mean:
        flags.append("too_dark")
    elif not blank and stats.ink_level > t.too_light_ink_level:
        flags.append("too_light")
    if max(pixel_size) < t.min_long_side_px:
        flags.append("too_small")

    skew: float | None = None
    if not blank:
        analysis_dpi = effective_dpi / reduce if effective_dpi else None
        skew = estimate_skew(np.asarray(inner), stats.threshold, analysis_dpi)
        if skew is not None and abs(skew) > t.max_skew_degrees:
            flags.append("skewed")
    if not colour:
        flags.append("not_colour")

    return QualityReport(
        flags=flags,
        effective_dpi=effective_dpi,
        skew_degrees=skew,
        ink_ratio=stats.ink_ratio,
        mean_luminance=stats.mean,
    )


def effective_resolution(
    pixel_size: tuple[int, int],
    dpi: tuple[float, float] | None,
    thresholds: QualityThresholds = QualityThresholds(),
) -> float | None:
    """Resolution of the scan, from metadata when believable, else from paper size.

    Metadata is believed when the page size it implies is a real sheet: many writers
    put a default 72 dpi into a 300 dpi scan, which would claim a metre-wide page.
    Without believable metadata the pixel size is matched against the configured
    papers (A4, A5). Their aspect ratios differ by 0.3%, too little to tell them
    apart, so among papers whose shape fits, one that gives a resolution scanners
    actually offer (150, 200, 300...) wins, then the closer shape. None when no
    paper shape fits (a receipt, an ID card): guessing then would raise false alarms.
    """
    t = thresholds
    short_px, long_px = sorted(pixel_size)
    if short_px <= 0:
        return None
    if dpi is not None:
        value = min(dpi)
        if value > 0:
            long_mm = long_px / value * _MM_PER_INCH
            low, high = t.plausible_page_mm
            if low <= long_mm <= high:
                return round(value, 1)
    aspect = long_px / short_px
    best: tuple[float, float] | None = None
    for width_mm, height_mm in t.paper_sizes_mm:
        paper_short, paper_long = sorted((width_mm, height_mm))
        misfit = abs(aspect / (paper_long / paper_short) - 1.0)
        if misfit > t.paper_aspect_tolerance:
            continue
        value = (short_px / paper_short + long_px / paper_long) / 2 * _MM_PER_INCH
        off_standard = min(abs(value / s - 1.0) for s in _STANDARD_DPIS)
        score = misfit + (0.0 if off_standard < 0.02 else 0.05)
        if best is None or score < best[0]:
            best = (score, value)
    return round(best[1], 1) if best is not None else None


def _luminance(img: Image.Image) -> Image.Image:
    return img if img.mode == "L" else img.convert("L")


def _luminance_and_colour(img: Image.Image, t: QualityThresholds) -> tuple[Image.Image, bool]:
    """Luminance image and whether the page carries any colour at all (see `is_colour`),
    judged on a 2x2-averaged copy."""
    mode = img.mode
    if mode not in ("RGB", "L"):
        img = img.convert("L" if mode in ("1", "LA", "I", "I;16", "F") else "RGB")
    if img.mode == "L":
        return img, False
    small = img.reduce(2) if min(img.size) >= 2 else img
    return img.convert("L"), is_colour(small, t)


def is_colour(img: Image.Image, t: QualityThresholds = QualityThresholds()) -> bool:
    """Whether a page (a small copy of it, about 40 dpi) carries any colour at all.

    A page counts as colour when enough pixels (1%) show a channel spread above the
    tolerance. A grey scan stored as RGB has a spread of exactly 0, even through JPEG
    at quality 50, while a colour scan of a black-and-white form still shows the
    paper's tint (cream office paper: 4-8 levels) and sensor noise, so the tolerance
    sits just above rounding. Computed with Pillow's C operations: numpy's per-pixel
    max over channels costs 5 ms here.
    """
    if img.mode != "RGB":
        if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
            return False
        img = img.convert("RGB")
    red, green, blue = img.split()
    spread = ImageChops.lighter(
        ImageChops.lighter(ImageChops.difference(red, green), ImageChops.difference(green, blue)),
        ImageChops.difference(red, blue),
    )
    hist = spread.histogram()
    coloured = sum(hist[t.colour_tolerance + 1 :])
    return coloured > t.colour_min_fraction * img.width * img.height


def _inner_box(size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The page without its border, where scanner edges, lid shadows and punch holes
    live."""
    w, h = size
    dx, dy = int(w * margin), int(h * margin)
    if w - 2 * dx <= 0 or h - 2 * dy <= 0:
        return 0, 0, w, h
    return dx, dy, w - dx, h - dy


@dataclass
class _InkStats:
    mean: float
    ink_ratio: float
    threshold: int
    ink_level: float


def _ink_stats(hist: list[int], t: QualityThresholds) -> _InkStats:
    """Paper level, ink threshold and ink amount from one 256-bin histogram.

    Paper is the 90th percentile of luminance. Ink is what is clearly darker than the
    paper (by ``ink_contrast`` of its level, and no lighter than ``ink_max_level``), so
    the test works on a dark scan too. Scanner noise and bleed-through from a duplex
    back stay within a few dozen levels of the paper and are not ink, which makes such
    a page blank; dust specks are too few to pass ``blank_max_ink_ratio``.
    ``ink_level`` is the luminance of the darkest tenth of the ink: well-printed text
    reaches near black even at 75 dpi, faded or over-exposed text does not.
    """
    counts = np.asarray(hist, dtype=np.int64)
    total = int(counts.sum())
    cumulative = np.cumsum(counts)
    mean = float(np.dot(counts, np.arange(256)) / total)
    paper = int(np.searchsorted(cumulative, 0.9 * total))
    threshold = max(0, min(round(paper * (1.0 - t.ink_contrast)), t.ink_max_level))
    ink = int(cumulative[threshold - 1]) if threshold > 0 else 0
    ink_level = float(np.searchsorted(cumulative, 0.1 * ink)) if ink else 255.0
    return _InkStats(mean=mean, ink_ratio=ink / total, threshold=threshold, ink_level=ink_level)


def estimate_skew(
    gray: np.ndarray, threshold: int, analysis_dpi: float | None = None
) -> float | None:
    """Skew of the text lines in degrees (positive: turned counter-clockwise), or None.

    Projection profile: ink points of a binarised copy at about 40 dpi are projected
    onto the axis perpendicular to each candidate angle; the angle whose profile is
    most peaked (largest sum of squared bin counts) is the one along which the text
    lines run. Coarse 1 degree steps over +-10, then 0.1 degree steps around the best.
    Each angle is one np.bincount over at most 12 000 points.
    """
    if threshold <= 0:
        return None
    h, w = gray.shape
    if analysis_dpi:
        step = max(1, round(analysis_dpi / _SKEW_TARGET_DPI))
    else:
        step = max(1, round(max(h, w) / 470))
    ys, xs = np.nonzero(gray[::step, ::step] < threshold)
    if ys.size < _SKEW_MIN_POINTS:
        return None
    if ys.size > _SKEW_MAX_POINTS:
        keep = slice(None, None, math.ceil(ys.size / _SKEW_MAX_POINTS))
        ys, xs = ys[keep], xs[keep]
    yf = ys.astype(np.float32)
    xf = xs.astype(np.float32) - np.float32(xs.mean())

    def energy(degrees: float) -> float:
        rows = yf - xf * np.float32(math.tan(math.radians(degrees)))
        bins = (rows - rows.min()).astype(np.intp)
        counts = np.bincount(bins)
        return float(np.dot(counts, counts))

    coarse = [(energy(a), float(a)) for a in range(-10, 11)]
    best_energy, best = max(coarse)
    worst = min(e for e, _ in coarse)
    if worst <= 0 or best_energy / worst < _SKEW_MIN_CONTRAST:
        return None
    fine = [(energy(best + d / 10), best + d / 10) for d in range(-9, 10)]
    _, angle = max(fine)
    # Image rows grow downwards, so a line rising to the right (counter-clockwise
    # turn) has a negative slope in row coordinates.
    return round(-angle, 1) + 0.0
