"""Barcode decoders and the tiered page reader, on 300-dpi A4 pages made here.

Every test asserts the exact decoded text, and the page-reader tests also assert which scales
were decoded, because "never decodes a text page at full scale" is the speed guarantee.
"""

from __future__ import annotations

import io
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import barcode
import numpy as np
import pytest
import segno
import zxingcpp
from barcode.writer import ImageWriter
from PIL import Image, ImageDraw, ImageFont

from edge import receipt_samples as rs
from edge import samples
from edge.capture.barcodes import (
    FULL_PAGE,
    TOP_THIRD,
    BarTextureProbe,
    Decoder,
    DecoderChain,
    MatrixTextureProbe,
    Scan,
    Symbol,
    Tier,
    ZbarDecoder,
    ZbarUnavailable,
    ZxingDecoder,
    confirm,
    default_chain,
    edge_for,
    read_page,
    read_symbols,
    read_symbols_naive,
    scale_for,
)
from edge.capture.readers import open_pages

A4 = (2480, 3508)
DPI = 300
QR_TEXT = "000.00.01.H29-240115-0001"
CODE128_TEXT = "G09.20-20260609-0092637"
QR = Symbol(QR_TEXT, "qr")
CODE128 = Symbol(CODE128_TEXT, "code128")
TOP_RIGHT = (1500, 110)
BOTTOM_LEFT = (260, 3000)
PROSE = (
    "ủy ban nhân dân xã bộ phận một cửa giấy tiếp nhận hồ sơ và hẹn trả kết quả công dân "
    "địa chỉ thủ tục hành chính đăng ký khai sinh chứng thực bản sao ngày tháng năm"
)


def mm(millimetres: float) -> int:
    return round(millimetres / 25.4 * DPI)


def text_page(seed: int = 0, *, font_text: bool = True) -> Image.Image:
    """Lines of Vietnamese text (or dark bars standing in for words), a table and a stamp."""
    rnd = random.Random(seed)
    words = PROSE.split()
    page = Image.new("RGB", A4, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=46)
    y = 420
    while y < A4[1] - 400:
        if font_text:
            line = " ".join(rnd.choices(words, k=16))
            draw.text((240, y), line, font=font, fill=(25, 25, 25))
        else:
            x = 240
            while x < A4[0] - 400:
                width = rnd.randint(30, 220)
                draw.rectangle([x, y + 8, x + width, y + 36], fill=(30, 30, 30))
                x += width + rnd.randint(18, 30)
        y += 74
    for row in range(5):
        draw.line([(240, 2600 + row * 70), (2240, 2600 + row * 70)], fill="black", width=3)
    for x in (240, 900, 2240):
        draw.line([(x, 2600), (x, 2880)], fill="black", width=3)
    draw.ellipse([1700, 2950, 2100, 3350], outline=(200, 30, 30), width=12)
    return page


def qr_symbol(text: str = QR_TEXT, size_mm: float = 25) -> Image.Image:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=10, border=4)
    symbol = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return symbol.resize((mm(size_mm), mm(size_mm)), Image.Resampling.NEAREST)


def code128_symbol(text: str = CODE128_TEXT) -> Image.Image:
    """0.25 mm modules, about 6.5 cm wide with quiet zones: what a receipt printer makes."""
    writer_options = {
        "module_width": 0.25,
        "module_height": 10.0,
        "quiet_zone": 2.5,
        "dpi": DPI,
        "write_text": False,
    }
    return barcode.Code128(text, writer=ImageWriter()).render(writer_options)


def datamatrix_symbol(text: str = QR_TEXT) -> Image.Image:
    created = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix)
    symbol = Image.fromarray(np.asarray(created.to_image(scale=1, add_quiet_zones=True)))
    return symbol.convert("RGB").resize(
        (symbol.width * 8, symbol.height * 8), Image.Resampling.NEAREST
    )


def with_symbol(page: Image.Image, symbol: Image.Image, at: tuple[int, int]) -> Image.Image:
    page = page.copy()
    x, y = at
    ImageDraw.Draw(page).rectangle(
        [x - 40, y - 40, x + symbol.width + 40, y + symbol.height + 40], fill="white"
    )
    page.paste(symbol, at)
    return page


def jpeg_round_trip(image: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    decoded = Image.open(io.BytesIO(buf.getvalue()))
    decoded.load()
    return decoded


def rotated(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(
        degrees, resample=Image.Resampling.BICUBIC, fillcolor="white", expand=degrees % 90 == 0
    )


@dataclass
class ReducingPage:
    """A PageSource that records which scales were asked for."""

    full: Image.Image
    calls: list[int] = field(default_factory=list)

    def image(self, reduce: int) -> Image.Image:
        self.calls.append(reduce)
        return self.full if reduce == 1 else self.full.reduce(reduce)


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return text_page()


def test_qr_cover_is_read_in_the_cheap_pass(page: Image.Image) -> None:
    source = ReducingPage(with_symbol(page, qr_symbol(), TOP_RIGHT))
    assert read_symbols(source) == [QR]
    assert source.calls == [2]


def test_code128_cover_escalates_to_full_scale(page: Image.Image) -> None:
    source = ReducingPage(with_symbol(page, code128_symbol(), TOP_RIGHT))
    assert read_symbols(source) == [CODE128]
    assert source.calls == [2, 1]


def test_datamatrix_cover_is_read_in_the_cheap_pass(page: Image.Image) -> None:
    source = ReducingPage(with_symbol(page, datamatrix_symbol(), TOP_RIGHT))
    assert read_symbols(source) == [Symbol(QR_TEXT, "datamatrix")]
    assert source.calls == [2]


@pytest.mark.parametrize(
    ("symbol", "expected", "calls"),
    [(qr_symbol, QR, [2]), (code128_symbol, CODE128, [2, 1])],
    ids=["qr", "code128"],
)
def test_symbol_in_the_bottom_half_is_found(
    page: Image.Image, symbol: Callable[[], Image.Image], expected: Symbol, calls: list[int]
) -> None:
    """The guarantee is the whole page, not the top band: 2-D codes in the half-scale pass,
    fine 1-D codes by escalation."""
    source = ReducingPage(with_symbol(page, symbol(), BOTTOM_LEFT))
    assert read_symbols(source) == [expected]
    assert source.calls == calls


@pytest.mark.parametrize("font_text", [True, False], ids=["text", "bars"])
@pytest.mark.parametrize("seed", [0, 1])
def test_text_page_has_no_symbols_and_is_never_decoded_at_full_scale(
    seed: int, font_text: bool
) -> None:
    source = ReducingPage(jpeg_round_trip(text_page(seed, font_text=font_text)))
    reading = read_page(source)
    assert reading.reads == () and reading.unread == 0
    # At most one full-scale fast pass: dense text can look like a small 2-D symbol's texture
    # (MatrixTextureProbe), which costs one full-scale decode and never a review.
    assert source.calls in ([2], [2, 1])


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda im: jpeg_round_trip(im, 75), id="jpeg75"),
        pytest.param(lambda im: rotated(im, 3), id="rotated+3"),
        pytest.param(lambda im: rotated(im, -3), id="rotated-3"),
        pytest.param(lambda im: jpeg_round_trip(rotated(im, 3), 75), id="rotated+3-jpeg75"),
    ],
)
@pytest.mark.parametrize(
    ("symbol", "expected"), [(qr_symbol, QR), (code128_symbol, CODE128)], ids=["qr", "code128"]
)
def test_scanned_variants_are_read(
    page: Image.Image,
    variant: Callable[[Image.Image], Image.Image],
    symbol: Callable[[], Image.Image],
    expected: Symbol,
) -> None:
    source = ReducingPage(variant(with_symbol(page, symbol(), TOP_RIGHT)))
    assert read_symbols(source) == [expected]


def test_code128_on_a_page_scanned_sideways_is_read(page: Image.Image) -> None:
    source = ReducingPage(rotated(with_symbol(page, code128_symbol(), TOP_RIGHT), 90))
    assert read_symbols(source) == [CODE128]
    assert source.calls == [2, 1]


def test_cover_with_two_symbols_yields_both(page: Image.Image) -> None:
    """Half scale reads the QR code but only suspects the Code 128; a read symbol must not stop
    the escalation that reads the other."""
    cover = with_symbol(page, code128_symbol(), TOP_RIGHT)
    cover = with_symbol(cover, qr_symbol("1.005129"), (260, 110))
    source = ReducingPage(cover)
    assert set(read_symbols(source)) == {Symbol("1.005129", "qr"), CODE128}
    assert source.calls == [2, 1]


def test_naive_reader_reads_the_code128_cover(page: Image.Image) -> None:
    assert read_symbols_naive(with_symbol(page, code128_symbol(), TOP_RIGHT)) == [CODE128]


@pytest.mark.parametrize("decoder", [ZxingDecoder, ZbarDecoder], ids=["zxing", "zbar"])
@pytest.mark.parametrize(
    "text", [QR_TEXT, "Nguyễn Thị Ánh – hồ sơ 1.005129", " leading and trailing \n"]
)
def test_each_decoder_reads_a_clean_qr(decoder: Callable[[], Decoder], text: str) -> None:
    symbol = qr_symbol(text, size_mm=30).convert("L")
    assert decoder().decode(symbol) == [Symbol(text, "qr")]


@pytest.mark.parametrize("decoder", [ZxingDecoder, ZbarDecoder], ids=["zxing", "zbar"])
def test_bytes_that_are_not_utf8_decode_as_latin1_without_trailing_nul(
    decoder: Callable[[], Decoder],
) -> None:
    buf = io.BytesIO()
    segno.make(b"\xff\xfeH29\x00\x00", error="m", micro=False).save(buf, kind="png", scale=8)
    image = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    assert decoder().decode(image) == [Symbol("ÿþH29", "qr")]


def test_chain_reads_once_what_both_decoders_read() -> None:
    chain = DecoderChain([ZxingDecoder(), ZbarDecoder()])
    assert chain.decode(qr_symbol().convert("L")) == [QR]


@dataclass
class Canned:
    """A decoder that answers the same whatever it is shown, and counts how often it is asked."""

    name: str
    symbols: tuple[Symbol, ...] = ()
    suspects: int = 0
    finders: int = 0
    asked: int = 0

    def decode(self, image: Image.Image) -> list[Symbol]:
        return list(self.scan(image).symbols)

    def scan(self, image: Image.Image) -> Scan:
        self.asked += 1
        return Scan(self.symbols, self.suspects, finders=self.finders)


def test_chain_is_the_ordered_union_without_duplicates() -> None:
    a, b, c = Symbol("A", "qr"), Symbol("B", "code128"), Symbol("A", "code39")
    chain = DecoderChain([Canned("one", (a, b, a)), Canned("two", (b, c, a))])
    blank = Image.new("L", (40, 40), 255)
    assert chain.decode(blank) == [a, b, c]
    assert chain.scan(blank) == Scan((a, b, c), 0)


def test_chain_needs_a_decoder() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DecoderChain([])


def test_escalation_runs_only_while_suspects_persist() -> None:
    blank = Image.new("L", (400, 600), 255)
    found = Symbol("X", "code128")

    quiet, seen = Canned("quiet"), Canned("seen", suspects=1)
    reader, never = Canned("reader", (found,)), Canned("never", (Symbol("Y", "qr"),))
    tiers = (
        Tier(4, FULL_PAGE, quiet),
        Tier(2, TOP_THIRD, seen),
        Tier(1, FULL_PAGE, reader, escalation=True),
        Tier(1, FULL_PAGE, never, escalation=True),
    )
    source = ReducingPage(blank)
    assert read_symbols(source, tiers=tiers) == [found]
    assert (quiet.asked, seen.asked, reader.asked, never.asked) == (1, 1, 1, 0)
    assert source.calls == [4, 2, 1]

    # A fast pass that reads nothing of the QR finder patterns half scale saw does not end
    # the search: the thorough pass reads heavily speckled symbols the fast one misses.
    blind, thorough = Canned("blind"), Canned("thorough", (Symbol("Y", "qr"),))
    tiers = (
        Tier(2, FULL_PAGE, Canned("seen", suspects=2, finders=1)),
        *(Tier(1, FULL_PAGE, d, escalation=True) for d in (blind, thorough)),
    )
    assert read_symbols(ReducingPage(blank), tiers=tiers) == [Symbol("Y", "qr")]
    assert (blind.asked, thorough.asked) == (1, 1)

    # But a suspect with no shape of a symbol (a Data Matrix detector's false alarm in the
    # halftone of a text page) that the full-scale pass finds nothing in ends there: the
    # thorough pass would spend half a second on a page of text.
    blind, thorough = Canned("blind"), Canned("thorough")
    tiers = (
        Tier(2, FULL_PAGE, Canned("seen", suspects=1)),
        *(Tier(1, FULL_PAGE, d, escalation=True) for d in (blind, thorough)),
    )
    assert read_symbols(ReducingPage(blank), tiers=tiers) == []
    assert (blind.asked, thorough.asked) == (1, 0)

    unused = Canned("unused", (found,))
    tiers = (Tier(2, FULL_PAGE, Canned("quiet")), Tier(1, FULL_PAGE, unused, escalation=True))
    source = ReducingPage(blank)
    assert read_symbols(source, tiers=tiers) == []
    assert unused.asked == 0
    assert source.calls == [2]


def test_bar_texture_probe_sees_fine_code128_at_half_scale_and_not_text(
    page: Image.Image,
) -> None:
    probe = BarTextureProbe(Canned("blind"))
    cover = with_symbol(page, code128_symbol(), BOTTOM_LEFT)
    for degrees in (0, 3, 90):
        assert probe.scan(rotated(cover, degrees).convert("L").reduce(2)) == Scan((), 1, bars=1)
    assert probe.scan(jpeg_round_trip(page).convert("L").reduce(2)) == Scan((), 0)
    assert probe.scan(Image.new("L", (20, 20), 255)) == Scan((), 0)


def test_the_probes_threshold_follows_a_faint_page_and_faint_text_stays_text() -> None:
    """A tired cartridge prints the whole job at 40-60% of its strength: the probes look for
    steps in proportion to the page's own ink, so a faint symbol still shows its texture and
    faint text, in the same proportion, still shows none."""
    text = samples.text_page(3, DPI).convert("L")
    half = np.asarray(text.reduce(2))
    assert edge_for(40, half) == 40
    assert edge_for(40, np.full((400, 400), 250, np.uint8)) == 40  # no ink: nothing to scale
    for strength in (0.6, 0.4, 0.3):
        faint = rs._faded(text, strength, random.Random(7)).reduce(2)
        pixels = np.asarray(faint)
        edge = edge_for(40, pixels)
        assert 12 <= edge < 40 - 10 * (strength < 0.5)
        scan = BarTextureProbe(Canned("blind")).scan(faint)
        assert (scan.suspects, scan.bars) == (0, 0)
        assert MatrixTextureProbe(Canned("blind")).scan(faint).suspects == 0


def test_bar_texture_is_explained_only_by_a_1d_symbol(page: Image.Image) -> None:
    half = with_symbol(page, code128_symbol(), BOTTOM_LEFT).convert("L").reduce(2)
    assert BarTextureProbe(Canned("reads", (CODE128,))).scan(half) == Scan((CODE128,), 0)
    assert BarTextureProbe(Canned("reads", (QR,), 1)).scan(half) == Scan((QR,), 2, bars=1)


@pytest.mark.parametrize(
    ("reduce", "band"), [(3, FULL_PAGE), (2, (0.5, 0.5)), (2, (-0.1, 0.5)), (2, (0.0, 1.5))]
)
def test_tier_rejects_impossible_steps(reduce: int, band: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        Tier(reduce, band)


def test_zbar_without_libzbar_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    with pytest.raises(ZbarUnavailable, match="libzbar0"):
        ZbarDecoder()
    chain = default_chain()
    assert [d.name for d in chain.decoders] == ["zxing"]


def test_default_chain_leads_with_zxing() -> None:
    assert [d.name for d in default_chain().decoders] == ["zxing", "zbar"]


# -- covers the reader once passed over as text pages (bench/covers.py, 2026-12-01) ----------

_PASSED_OVER = [
    # heavy speckle broke the QR finder patterns at half scale: no read, no suspect
    ("qr-3cm-heavy-speckle", 0),
    ("qr-3cm-heavy-speckle", 5),
    ("qr-3cm-rot180-heavy-speckle", 1),
    ("qr-2cm-heavy-speckle", 9),
    # a 0.3 mm Data Matrix whose finder L left no block of dense cells at half scale
    ("datamatrix-0.30mm", 0),
    ("datamatrix-0.30mm-rot90", 5),
    ("datamatrix-0.30mm-rot180", 6),
    ("datamatrix-0.30mm-rot270", 2),
    # a Data Matrix from a tired cartridge: its steps under the probes' fixed edge threshold
    ("datamatrix-0.30mm-faint", 3),
    ("datamatrix-0.30mm-faint", 6),
]


@pytest.mark.parametrize(("name", "index"), _PASSED_OVER, ids=lambda v: str(v))
def test_covers_once_passed_over_as_text_pages_are_read(
    tmp_path: Path, name: str, index: int
) -> None:
    """The very covers bench/covers.py's table counted as missed (same class seed, same page
    seed): each joined the previous citizen's dossier without a word. Now each is read."""
    numbers = {c.name: n for n, c in enumerate(rs.variation_classes())}
    variation = rs.variation_class(name)
    number = numbers[name]
    code = rs.class_codes(variation, 10, seed=1000 + number)[index]
    cover = variation.cover
    image = rs.receipt_cover(code, number * 1_000_003 + index * 3 * 7919, cover)
    path = tmp_path / "cover.jpg"
    samples.save_jpeg(image, path, cover.dpi, cover.quality)
    page = next(iter(open_pages(path)))
    reading = read_page(page)
    assert [(r.symbol.text, r.confirmed) for r in reading.reads] == [(code, True)]


# -- pages scanned finer than the tiers were chosen for ---------------------------------------


def test_scale_follows_the_scan_resolution() -> None:
    assert [scale_for(dpi) for dpi in (None, 150, 200, 300, 400, 600, 1200)] == [
        1,
        1,
        1,
        1,
        1,
        2,
        4,
    ]


def test_600_dpi_cover_is_read_and_confirmed_as_a_300_dpi_one_would_be(page: Image.Image) -> None:
    """Every tier and the confirmation read the 600-dpi page one step further reduced; the
    symbol's box still comes back in the page's own (600-dpi) coordinates."""
    fine = with_symbol(page, code128_symbol(), TOP_RIGHT)
    fine = fine.resize((fine.width * 2, fine.height * 2), Image.Resampling.LANCZOS)
    source = ReducingPage(fine)
    reading = read_page(source, scale=2)
    assert [(r.symbol.text, r.confirmed) for r in reading.reads] == [(CODE128_TEXT, True)]
    assert source.calls == [4, 2]
    box = reading.reads[0].symbol.box
    assert box is not None
    x, y = TOP_RIGHT
    assert abs(box[0] - 2 * x) < 120 and abs(box[1] - 2 * y) < 120, box


def test_600_dpi_text_page_is_never_decoded_at_its_full_size() -> None:
    """At its own full size a 600-dpi page of text shows its letters as bar texture; read as
    a 300-dpi page it costs what a 300-dpi page costs."""
    page = text_page(3)
    fine = jpeg_round_trip(page.resize((page.width * 2, page.height * 2)))
    source = ReducingPage(fine)
    reading = read_page(source, scale=2)
    assert reading.reads == () and reading.unread == 0
    assert 1 not in source.calls


def test_a_read_whose_box_is_a_point_is_confirmed_on_the_whole_page(page: Image.Image) -> None:
    """zbar locates a linear symbol by the scan lines that crossed it; under heavy speckle only
    one may have, and its box is a point. A crop around the point held a few bars and the
    read stayed unconfirmed: a review the clerk did not need (issue 10)."""
    symbol = code128_symbol()
    full = with_symbol(page, symbol, TOP_RIGHT).convert("L")
    x, y = TOP_RIGHT[0] + symbol.width // 2, TOP_RIGHT[1] + symbol.height // 2
    seen = [("zbar@2", Symbol(CODE128_TEXT, "code128", (x, y, x, y)))]
    reads = confirm(seen, full)
    assert [(r.symbol.text, r.confirmed) for r in reads] == [(CODE128_TEXT, True)]
