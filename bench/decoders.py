"""Barcode decoders on the real-world corpus, and the tiered page reader against the naive one.

Run from the project root: `.venv/bin/python bench/decoders.py [--corpus PATH]`. Prints
markdown for docs/benchmarks.md. Recall and false positives come from the corpus at full
resolution with no tiering, so they compare the decoders and nothing else; speed comes from
generated 300-dpi A4 JPEG pages, as ratios to the naive reader timed in the same run, because
absolute milliseconds mean nothing across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import barcode
import segno
from barcode.writer import ImageWriter
from PIL import Image, ImageDraw, ImageFont

from edge.capture.barcodes import (
    CHEAP_FORMATS,
    DEFAULT_TIERS,
    FULL_PAGE,
    TOP_THIRD,
    BarTextureProbe,
    Decoder,
    Symbol,
    Tier,
    ZbarDecoder,
    ZbarUnavailable,
    ZxingDecoder,
    default_chain,
    read_symbols,
    read_symbols_naive,
    read_tier,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / ".." / "shared" / "corpus" / "barcodes-real"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
RUNS = 11

A4_300DPI = (2480, 3508)
QR_CODE = "000.00.01.H29-240115-0001"
CODE128_CODE = "G09.20-20260609-0092637"
PROSE = (
    "cộng hòa xã hội chủ nghĩa việt nam độc lập tự do hạnh phúc giấy tiếp nhận hồ sơ và hẹn "
    "trả kết quả ủy ban nhân dân bộ phận một cửa công dân địa chỉ thủ tục hành chính đăng ký "
    "khai sinh chứng thực bản sao ngày tháng năm"
)


def fast(formats: tuple[str, ...], name: str) -> ZxingDecoder:
    return ZxingDecoder(formats, rotate=False, downscale=False, invert=False, name=name)


ALTERNATIVE_TIERS = (
    Tier(4, FULL_PAGE, fast(("qr", "datamatrix"), "zxing-fast-2d")),
    Tier(2, TOP_THIRD, BarTextureProbe(fast(CHEAP_FORMATS, "zxing-fast"))),
    *DEFAULT_TIERS[1:],
)
"""The strategy first sketched for capture (quarter-scale page for 2-D codes, then a
half-scale top band), timed beside the default so the choice between them stays visible."""


# -- corpus ----------------------------------------------------------------------------------


@dataclass
class Sample:
    path: Path
    group: str
    expected: bytes | None
    raw: bool

    def matches(self, symbol: Symbol) -> bool:
        if self.expected is None:
            return False
        if self.raw:
            candidates = [symbol.text.encode("utf-8")]
            with contextlib.suppress(UnicodeEncodeError):
                candidates.append(symbol.text.encode("latin-1"))
            return self.expected in candidates
        return symbol.text.rstrip() == self.expected.decode("utf-8").rstrip()


@dataclass
class Tally:
    read: dict[str, int] = field(default_factory=dict)
    misread: int = 0
    extra: int = 0
    false_positives: int = 0
    seconds: float = 0.0
    read_paths: set[Path] = field(default_factory=set)


def load_corpus(root: Path) -> list[Sample]:
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        group = re.sub(r"-\d+$", "", folder.name)
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            text, binary = path.with_suffix(".txt"), path.with_suffix(".bin")
            if binary.exists():
                samples.append(Sample(path, group, binary.read_bytes(), raw=True))
            elif text.exists():
                samples.append(Sample(path, group, text.read_bytes(), raw=False))
            else:
                samples.append(Sample(path, group, None, raw=False))
    return samples


def decode_both_ways(decoder: Decoder, path: Path) -> list[Symbol]:
    """Grayscale is what capture feeds the decoders; as-is catches what a conversion loses."""
    with Image.open(path) as image:
        image.load()
        found = decoder.decode(image.convert("L")) + decoder.decode(image)
    return list(dict.fromkeys(found))


def measure(decoder: Decoder, samples: list[Sample]) -> Tally:
    tally = Tally()
    for sample in samples:
        started = time.perf_counter()
        symbols = decode_both_ways(decoder, sample.path)
        tally.seconds += time.perf_counter() - started
        if sample.group.startswith("falsepositives"):
            tally.false_positives += bool(symbols)
            continue
        ok = any(sample.matches(s) for s in symbols)
        tally.read[sample.group] = tally.read.get(sample.group, 0) + ok
        if ok:
            tally.read_paths.add(sample.path)
            tally.extra += any(not sample.matches(s) for s in symbols)
        elif symbols:
            tally.misread += 1
    return tally


def corpus_report(root: Path) -> None:
    samples = load_corpus(root)
    decoders: dict[str, Decoder] = {"zxing": ZxingDecoder()}
    try:
        decoders["zbar"] = ZbarDecoder()
    except ZbarUnavailable as exc:
        print(f"zbar skipped: {exc}\n")
    chain = default_chain()
    decoders[f"default_chain ({chain.name})"] = chain
    tallies = {name: measure(d, samples) for name, d in decoders.items()}

    groups = sorted({s.group for s in samples if not s.group.startswith("falsepositives")})
    totals = {g: sum(1 for s in samples if s.group == g) for g in groups}
    fp_total = sum(1 for s in samples if s.group.startswith("falsepositives"))
    names = list(tallies)
    print(f"### Corpus: {root.resolve()}\n")
    print("Whole image at full resolution, grayscale and as-is; read = expected text decoded.\n")
    print("| symbology | images | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for g in groups:
        cells = " | ".join(str(tallies[n].read.get(g, 0)) for n in names)
        print(f"| {g} | {totals[g]} | {cells} |")
    total = sum(totals.values())
    cells = " | ".join(f"**{sum(tallies[n].read.values())}**" for n in names)
    print(f"| **all** | {total} | {cells} |")
    cells = " | ".join(str(tallies[n].misread) for n in names)
    print(f"| misread (decoded, but not the expected text) | {total} | {cells} |")
    cells = " | ".join(str(tallies[n].extra) for n in names)
    print(f"| read, plus some other text (second symbol or misread) | {total} | {cells} |")
    cells = " | ".join(str(tallies[n].false_positives) for n in names)
    print(f"| false positives (falsepositives-*) | {fp_total} | {cells} |")
    cells = " | ".join(f"{tallies[n].seconds:.1f}" for n in names)
    print(f"| decode time, s | | {cells} |\n")

    chain_tally = tallies[names[-1]]
    singles = {n: t for n, t in tallies.items() if n != names[-1]}
    best = max(singles, key=lambda n: sum(singles[n].read.values()))
    chain_read = sum(chain_tally.read.values())
    print(f"default_chain order: {' -> '.join(d.name for d in chain.decoders)}.")
    if "zbar" in singles:
        zx, zb = singles["zxing"], singles["zbar"]
        print(
            f"zxing-cpp reads {sum(zx.read.values())}/{total} with {zx.misread} misreads; "
            f"libzbar reads {sum(zb.read.values())}/{total} with {zb.misread} misreads. "
            f"zbar reads {len(zb.read_paths - zx.read_paths)} image(s) zxing-cpp does not, "
            f"zxing-cpp reads {len(zx.read_paths - zb.read_paths)} that zbar does not."
        )
        print(
            "The chain returns the union, first decoder's symbols first, and capture takes the "
            "first symbol that matches a dossier-code pattern; so the decoder that reads more "
            "and misreads less leads, and zbar contributes the images zxing-cpp cannot read, "
            "plus, behind zxing-cpp's text, its own misreads (the chain returns some other "
            f"text beside the expected one on {chain_tally.extra} images, zxing-cpp alone on "
            f"{zx.extra})."
        )
    verdict = (
        "PASS"
        if chain_read >= sum(singles[best].read.values()) and chain_tally.false_positives == 0
        else "FAIL"
    )
    print(
        f"Check: chain reads {chain_read} >= best single ({best}) "
        f"{sum(singles[best].read.values())}, chain false positives "
        f"{chain_tally.false_positives} == 0: {verdict}\n"
    )


# -- generated pages -------------------------------------------------------------------------


def text_page(seed: int) -> Image.Image:
    rnd = random.Random(seed)
    words = PROSE.split()
    page = Image.new("RGB", A4_300DPI, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=46)
    width, height = A4_300DPI
    y = 420
    while y < height - 300:
        line = ""
        while draw.textlength(line, font=font) < width - 600:
            line += rnd.choice(words) + " "
        draw.text((240, y), line.strip(), font=font, fill=(20, 20, 20))
        y += 72
    draw.ellipse([1600, height - 800, 2000, height - 400], outline=(200, 30, 30), width=12)
    return page


def cover_page(kind: str) -> Image.Image:
    page = text_page(1)
    if kind == "qr":
        qr = segno.make(QR_CODE, error="m")
        buf = io.BytesIO()
        qr.save(buf, kind="png", scale=12, border=4)
        symbol = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").resize((295, 295))
    else:
        code = barcode.Code128(CODE128_CODE, writer=ImageWriter())
        symbol = code.render(
            {"module_width": 0.25, "module_height": 10, "quiet_zone": 2.5, "write_text": False}
        )
    ImageDraw.Draw(page).rectangle([1400, 60, 2400, 400], fill="white")
    page.paste(symbol, (1450, 100))
    return page


def jpeg_bytes(page: Image.Image) -> bytes:
    buf = io.BytesIO()
    page.save(buf, "JPEG", quality=75, dpi=(300, 300))
    return buf.getvalue()


class JpegPage:
    """What capture's page reader does: a fresh draft-mode decode for each scale asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def image(self, reduce: int) -> Image.Image:
        image = Image.open(io.BytesIO(self.data))
        image.draft("L", (image.width // reduce, image.height // reduce))
        return image.convert("L")


def median_ms(fns: list[Callable[[], object]], runs: int = RUNS) -> list[float]:
    """Interleaved rounds, so a neighbour's load lands on every candidate alike and the ratios
    to the naive reader stay fair even when the absolute numbers do not."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, samples in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
    return [statistics.median(t) * 1000 for t in times]


def naive(data: bytes) -> list[Symbol]:
    with Image.open(io.BytesIO(data)) as image:
        return read_symbols_naive(image)


def texts(symbols: Sequence[Symbol]) -> str:
    return ", ".join(s.text for s in symbols) or "-"


def timing_report() -> None:
    pages = {
        "text page": jpeg_bytes(text_page(7)),
        "cover, QR 2.5 cm": jpeg_bytes(cover_page("qr")),
        "cover, Code 128 0.25 mm": jpeg_bytes(cover_page("code128")),
    }
    chain = default_chain()
    tables = {"default": DEFAULT_TIERS, "alternative": ALTERNATIVE_TIERS}
    print(f"### Page reader speed (300-dpi A4 JPEG q75, median of {RUNS} interleaved runs)\n")
    print(
        "Naive = full JPEG decode + libzbar over the whole page. A tier row is that tier run "
        "alone, its own draft-mode JPEG decode included; a `read_symbols` row is the whole "
        "strategy as capture runs it (escalation tiers only when a cheaper one saw a suspect). "
        "Alternative = quarter-scale whole page for 2-D codes, then half-scale top third.\n"
    )
    print("| page | what | found | ms | × naive |")
    print("|---|---|---|---:|---:|")
    for label, data in pages.items():
        rows: list[tuple[str, str, Callable[[], object]]] = [
            (
                "naive (zbar, whole page, full scale)",
                texts(naive(data)),
                lambda data=data: naive(data),
            )
        ]
        for name, tiers in tables.items():
            for tier in tiers:
                scan = read_tier(JpegPage(data), tier, chain)
                found = texts(scan.symbols)
                if not scan.symbols and scan.suspects:
                    found = f"{scan.suspects} suspect(s)"
                rows.append(
                    (
                        f"{name} tier: {tier.describe()}",
                        found,
                        lambda data=data, tier=tier: read_tier(JpegPage(data), tier, chain),
                    )
                )
            rows.append(
                (
                    f"**read_symbols, {name} tiers**",
                    texts(read_symbols(JpegPage(data), chain, tiers=tiers)),
                    lambda data=data, tiers=tiers: read_symbols(JpegPage(data), chain, tiers=tiers),
                )
            )
        timings = median_ms([fn for _, _, fn in rows])
        base = timings[0]
        for (what, found, _), ms in zip(rows, timings, strict=True):
            bold = "**" if what.startswith("**") else ""
            print(
                f"| {label} | {what} | {found} | {bold}{ms:.1f}{bold} | "
                f"{bold}{ms / base:.3f}{bold} |"
            )
    data = pages["text page"]
    loads = median_ms([lambda r=r: JpegPage(data).image(r) for r in (1, 2, 4, 8)])
    listed = " · ".join(f"1/{r}: {ms:.1f} ms" for r, ms in zip((1, 2, 4, 8), loads, strict=True))
    print(f"\nDraft-mode JPEG decode of the text page to grayscale, alone: {listed}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print("corpus absent, skipped")
        return 0
    print("## Barcode decoders\n")
    corpus_report(args.corpus)
    timing_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
