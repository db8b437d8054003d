"""Synthetic scanned pages: the suite, the benchmark, `make demo` and the health check use them.

The box must be exercised end to end without real citizens' papers (Decree 13/2023 forbids
copying personal data into test fixtures), so this module fakes what a commune post office's
sheet-fed scanner produces: Vietnamese administrative documents, Mẫu 01 receipt slips carrying
the dossier code as a QR or Code 128 symbol, printed separator sheets and duplex backs, written
as JPEG, PNG, multi-page TIFF or PDF the way scanners write them.

Every page is a pure function of its arguments (seed included), so a failing test can be
reproduced from its seed and a written job hashes the same on every run. The benchmark writes
thousands of 300-dpi pages, so the expensive parts (noisy paper, text lines) are rendered once
per process and each page is assembled from them by cheap crops and masked pastes.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple

import barcode
import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter, ImageFont, TiffImagePlugin, features

__all__ = [
    "CODE_STYLES",
    "FONT_PATHS",
    "PROVINCES",
    "REFERENCE_DATE",
    "DossierSpec",
    "ExpectedDossier",
    "Person",
    "WrittenJob",
    "a4",
    "blank_page",
    "clear_caches",
    "cover_page",
    "darkened",
    "load_font",
    "sample_codes",
    "sample_people",
    "save_jpeg",
    "save_pdf",
    "save_png",
    "save_tiff",
    "separator_page",
    "skewed",
    "text_page",
    "write_job",
]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int]
Destination = str | os.PathLike[str] | BinaryIO
Symbology = Literal["qr", "code128"]
Position = Literal["top", "bottom"]
ScanFormat = Literal["jpeg", "png", "tiff", "pdf"]

FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "DejaVuSans.ttf",
)
"""Where DejaVu Sans lives on Debian/Raspberry Pi OS, Fedora/Alpine and Arch, then a bare name
that FreeType resolves against the system font folders. DejaVu is the common free font with
every precomposed Vietnamese letter; Pillow's built-in fallback font lacks most of them."""

REFERENCE_DATE = date(2025, 6, 2)
"""The "today" of generated data: ages and dates must not drift with the wall clock, or a seed
would stop reproducing the same person."""

A4_MM = (210.0, 297.0)
_INCH_MM = 25.4

_STYLE_SUFFIX = {
    (False, False): "",
    (True, False): "-Bold",
    (False, True): "-Oblique",
    (True, True): "-BoldOblique",
}


@cache
def load_font(size: int, *, bold: bool = False, italic: bool = False) -> Font:
    """DejaVu Sans at `size` pixels, cached because FreeType face loading dominates small draws.

    A missing bold/oblique face degrades to the regular face rather than to Pillow's default
    font, so Vietnamese stays readable; the default font is the last resort for boxes without
    DejaVu, where diacritics render as boxes but nothing crashes.
    """
    suffix = _STYLE_SUFFIX[(bold, italic)]
    styled = [p.replace("DejaVuSans.ttf", f"DejaVuSans{suffix}.ttf") for p in FONT_PATHS]
    for candidate in [*styled, *FONT_PATHS] if suffix else FONT_PATHS:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def a4(dpi: int = 300) -> tuple[int, int]:
    """Pixel size of a portrait A4 scan at `dpi`, rounded the way scanner drivers round it."""
    return round(A4_MM[0] / _INCH_MM * dpi), round(A4_MM[1] / _INCH_MM * dpi)


def _px(mm: float, dpi: int) -> int:
    return round(mm * dpi / _INCH_MM)


def _pt(points: float, dpi: int) -> int:
    return max(6, round(points * dpi / 72))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _tone(colour: Colour, rgb: bool) -> Colour | int:
    """Ink or paper colour in the page's mode; grey scans use the colour's luminance."""
    if rgb:
        return colour
    r, g, b = colour
    return round(0.299 * r + 0.587 * g + 0.114 * b)


# ---------------------------------------------------------------------------------------------
# Domain data: people, places, procedures, dossier codes

PROVINCES: dict[str, tuple[str, str]] = {
    "001": ("Hà Nội", "thành phố Hà Nội"),
    "002": ("Hà Giang", "tỉnh Tuyên Quang"),
    "008": ("Tuyên Quang", "tỉnh Tuyên Quang"),
    "010": ("Lào Cai", "tỉnh Lào Cai"),
    "015": ("Yên Bái", "tỉnh Lào Cai"),
    "019": ("Thái Nguyên", "tỉnh Thái Nguyên"),
    "022": ("Quảng Ninh", "tỉnh Quảng Ninh"),
    "024": ("Bắc Giang", "tỉnh Bắc Ninh"),
    "025": ("Phú Thọ", "tỉnh Phú Thọ"),
    "027": ("Bắc Ninh", "tỉnh Bắc Ninh"),
    "030": ("Hải Dương", "thành phố Hải Phòng"),
    "031": ("Hải Phòng", "thành phố Hải Phòng"),
    "033": ("Hưng Yên", "tỉnh Hưng Yên"),
    "034": ("Thái Bình", "tỉnh Hưng Yên"),
    "035": ("Hà Nam", "tỉnh Ninh Bình"),
    "036": ("Nam Định", "tỉnh Ninh Bình"),
    "037": ("Ninh Bình", "tỉnh Ninh Bình"),
    "038": ("Thanh Hóa", "tỉnh Thanh Hóa"),
    "040": ("Nghệ An", "tỉnh Nghệ An"),
    "042": ("Hà Tĩnh", "tỉnh Hà Tĩnh"),
    "044": ("Quảng Bình", "tỉnh Quảng Trị"),
    "046": ("Thừa Thiên Huế", "thành phố Huế"),
    "048": ("Đà Nẵng", "thành phố Đà Nẵng"),
    "049": ("Quảng Nam", "thành phố Đà Nẵng"),
    "052": ("Bình Định", "tỉnh Gia Lai"),
    "056": ("Khánh Hòa", "tỉnh Khánh Hòa"),
    "066": ("Đắk Lắk", "tỉnh Đắk Lắk"),
    "068": ("Lâm Đồng", "tỉnh Lâm Đồng"),
    "075": ("Đồng Nai", "tỉnh Đồng Nai"),
    "079": ("Hồ Chí Minh", "Thành phố Hồ Chí Minh"),
    "082": ("Tiền Giang", "tỉnh Đồng Tháp"),
    "083": ("Bến Tre", "tỉnh Vĩnh Long"),
    "087": ("Đồng Tháp", "tỉnh Đồng Tháp"),
    "089": ("An Giang", "tỉnh An Giang"),
    "092": ("Cần Thơ", "thành phố Cần Thơ"),
    "096": ("Cà Mau", "tỉnh Cà Mau"),
}
"""CCCD province-of-birth-registration code -> (province at registration, province after the
2025 merger). A CCCD keeps its old code for life, while an address written today names the
merged province, so both are needed to fake one person consistently."""

_FAMILY_NAMES = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Vũ", 4),
    ("Võ", 4),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 1),
    ("Ngô", 1),
    ("Dương", 1),
    ("Lý", 1),
)
_MIDDLE = {
    "Nam": ("Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Đình", "Xuân", "Thanh"),
    "Nữ": ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Minh", "Thanh", "Hồng", "Kim", "Thị Thu"),
}
_GIVEN = {
    "Nam": (
        "Anh", "Bình", "Cường", "Dũng", "Đức", "Hùng", "Long", "Nam", "Quân", "Tuấn", "Hải",
        "Hiếu", "Khánh", "Phong", "Sơn", "Thắng", "Trung", "Vinh", "Việt", "Toàn",
    ),
    "Nữ": (
        "Anh", "Hà", "Hạnh", "Lan", "Linh", "Mai", "Phương", "Thảo", "Trang", "Yến", "Hương",
        "Hoa", "Ngân", "Nhung", "Huyền", "Thủy", "Loan", "Vy", "Hằng", "Nga",
    ),
}  # fmt: skip
_PLACE_SYLLABLES = (
    "An", "Bình", "Đông", "Hòa", "Hưng", "Phú", "Phúc", "Tân", "Thịnh", "Thuận", "Xuân", "Yên",
    "Lộc", "Minh", "Quang", "Hải", "Sơn", "Thanh", "Vĩnh", "Long", "Trung", "Đại", "Kim", "Lạc",
    "Hồng", "Nghĩa", "Thạch", "Cẩm", "Mỹ", "Tiên",
)  # fmt: skip
_HAMLET_WORDS = ("Đông", "Tây", "Nam", "Bắc", "Trung", "Thượng", "Hạ", "Chùa", "Đình", "Giữa")
_MOBILE_PREFIXES = (
    "090", "091", "093", "094", "096", "097", "098",
    "032", "033", "034", "035", "036", "037", "038", "039",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    """A fake citizen whose CCCD agrees with birth date, sex and province, as real ones do."""

    family_name: str
    middle_name: str
    given_name: str
    sex: Literal["Nam", "Nữ"]
    birth_date: date
    cccd: str
    phone: str
    hamlet: str
    commune: str
    province: str
    birth_province_code: str

    @property
    def full_name(self) -> str:
        """Family, middle and given names in Vietnamese order."""
        return " ".join(p for p in (self.family_name, self.middle_name, self.given_name) if p)

    @property
    def address(self) -> str:
        """A post-2025 address: no district level any more."""
        return f"{self.hamlet}, xã {self.commune}, {self.province}"


def _place_name(rng: random.Random) -> str:
    first, second = rng.sample(_PLACE_SYLLABLES, 2)
    return f"{first} {second}"


def _hamlet(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return f"Thôn {rng.randint(1, 14)}"
    if kind < 0.6:
        return f"Thôn {_place_name(rng).split()[0]} {rng.choice(_HAMLET_WORDS)}"
    return f"Thôn {_place_name(rng)}"


def _person(rng: random.Random) -> Person:
    sex: Literal["Nam", "Nữ"] = "Nữ" if rng.random() < 0.52 else "Nam"
    names, weights = zip(*_FAMILY_NAMES, strict=True)
    family = rng.choices(names, weights)[0]
    middle = rng.choice(_MIDDLE[sex])
    given = rng.choice(_GIVEN[sex])
    while given in middle.split():
        given = rng.choice(_GIVEN[sex])
    oldest = date(REFERENCE_DATE.year - 85, 1, 1).toordinal()
    youngest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 18).toordinal()
    born = date.fromordinal(rng.randint(oldest, youngest))
    code = rng.choice(sorted(PROVINCES))
    century_sex = 2 * ((born.year - 1900) // 100) + (1 if sex == "Nữ" else 0)
    cccd = f"{code}{century_sex}{born.year % 100:02d}{rng.randrange(1_000_000):06d}"
    phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10_000_000):07d}"
    lives_in = code if rng.random() < 0.85 else rng.choice(sorted(PROVINCES))
    return Person(
        family_name=_nfc(family),
        middle_name=_nfc(middle),
        given_name=_nfc(given),
        sex=sex,
        birth_date=born,
        cccd=cccd,
        phone=phone,
        hamlet=_nfc(_hamlet(rng)),
        commune=_nfc(_place_name(rng)),
        province=_nfc(PROVINCES[lives_in][1]),
        birth_province_code=code,
    )


def sample_people(n: int, seed: int = 0) -> list[Person]:
    """`n` fake citizens, the same ones for the same seed."""
    rng = random.Random(f"people:{seed}")
    return [_person(rng) for _ in range(n)]


CODE_STYLES: dict[str, str] = {
    "agency4": "000.00.01.H29-240115-0001",
    "agency3": "38.98.H29-210519-0013",
    "province_first": "H26.22.16-250226-0001",
    "extended": "G09.20-20260609-0092637",
}
"""Dossier-code shapes seen on provincial portals, by style name with an example each. Capture
takes its patterns from configuration; these exist so tests feed it every shape."""

_EARLIEST_CODE_DAY = date(2019, 1, 1)


@dataclass(slots=True)
class _CodeSeries:
    """One receiving office's counter: the daily sequence grows and restarts on a new day."""

    style: str
    agency: str
    day: date
    seq: int

    def advance(self, rng: random.Random) -> None:
        if rng.random() < 0.3:
            self.day += timedelta(days=rng.randint(1, 3))
            if self.style != "extended":
                self.seq = 0
        self.seq += rng.randint(1, 400) if self.style == "extended" else rng.randint(1, 4)

    def code(self) -> str:
        if self.style == "extended":
            return f"{self.agency}-{self.day:%Y%m%d}-{self.seq:07d}"
        return f"{self.agency}-{self.day:%y%m%d}-{self.seq:04d}"


def _agency(style: str, rng: random.Random) -> str:
    province = rng.randint(1, 63)
    if style == "agency4":
        return f"000.{rng.randint(0, 30):02d}.{rng.randint(1, 40):02d}.H{province:02d}"
    if style == "agency3":
        return f"{rng.randint(1, 99):02d}.{rng.randint(1, 99):02d}.H{province:02d}"
    if style == "province_first":
        return f"H{province:02d}.{rng.randint(1, 99):02d}.{rng.randint(1, 99):02d}"
    return f"G{rng.randint(1, 22):02d}.{rng.randint(1, 99):02d}"


def sample_codes(n: int, seed: int = 0, *, styles: Sequence[str] | None = None) -> list[str]:
    """`n` distinct dossier codes mixing `styles` (default: all of CODE_STYLES).

    Each style is one office's counter, so codes of a style come out in receiving order with
    real calendar dates and a sequence that only grows within a day: what a box sees when the
    same desk feeds it for weeks.
    """
    chosen = list(CODE_STYLES) if styles is None else list(styles)
    unknown = set(chosen) - set(CODE_STYLES)
    if unknown or not chosen:
        raise ValueError(f"unknown code styles {sorted(unknown)}; known: {sorted(CODE_STYLES)}")
    rng = random.Random(f"codes:{seed}")
    span = (REFERENCE_DATE - _EARLIEST_CODE_DAY).days
    series: dict[str, _CodeSeries] = {}
    for style in chosen:
        start = _EARLIEST_CODE_DAY + timedelta(days=rng.randrange(span))
        first = rng.randint(10_000, 900_000) if style == "extended" else 0
        series[style] = _CodeSeries(style, _agency(style, rng), start, first)
    codes = []
    for _ in range(n):
        counter = series[rng.choice(chosen)]
        counter.advance(rng)
        codes.append(counter.code())
    return codes


_CODE_DATE = re.compile(r"-(\d{8}|\d{6})-\d+$")


def _code_day(code: str, rng: random.Random) -> date:
    """The receiving date written inside a code, so the slip agrees with its own code."""
    match = _CODE_DATE.search(code)
    if match:
        digits = match.group(1)
        try:
            if len(digits) == 8:
                return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            return date(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:]))
        except ValueError:
            pass
    return REFERENCE_DATE - timedelta(days=rng.randrange(365))


def _add_working_days(start: date, days: int) -> date:
    day = start
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


_PROCEDURES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (
        "Đăng ký khai sinh",
        1,
        ("Tờ khai đăng ký khai sinh", "Giấy chứng sinh", "Bản sao giấy chứng nhận kết hôn"),
    ),
    ("Đăng ký kết hôn", 1, ("Tờ khai đăng ký kết hôn", "Giấy xác nhận tình trạng hôn nhân")),
    (
        "Cấp giấy xác nhận tình trạng hôn nhân",
        3,
        ("Tờ khai cấp giấy xác nhận tình trạng hôn nhân", "Bản sao trích lục ly hôn"),
    ),
    ("Cấp bản sao trích lục hộ tịch", 1, ("Tờ khai cấp bản sao trích lục hộ tịch",)),
    ("Chứng thực bản sao từ bản chính", 1, ("Bản chính giấy tờ", "Bản sao cần chứng thực")),
    (
        "Đăng ký thường trú",
        7,
        ("Tờ khai thay đổi thông tin cư trú", "Giấy tờ chứng minh chỗ ở hợp pháp"),
    ),
    (
        "Đăng ký biến động quyền sử dụng đất",
        10,
        ("Đơn đăng ký biến động đất đai", "Hợp đồng chuyển nhượng", "Giấy chứng nhận gốc"),
    ),
    (
        "Giải quyết trợ cấp xã hội hằng tháng",
        15,
        ("Tờ khai đề nghị trợ giúp xã hội", "Bản sao giấy khai sinh"),
    ),
)

_TITLES = (
    "ĐƠN ĐỀ NGHỊ CẤP BẢN SAO TRÍCH LỤC HỘ TỊCH",
    "ĐƠN ĐỀ NGHỊ XÁC NHẬN TÌNH TRẠNG HÔN NHÂN",
    "ĐƠN ĐỀ NGHỊ CHỨNG THỰC BẢN SAO",
    "ĐƠN ĐỀ NGHỊ HƯỞNG TRỢ CẤP XÃ HỘI HẰNG THÁNG",
    "ĐƠN ĐỀ NGHỊ ĐĂNG KÝ BIẾN ĐỘNG ĐẤT ĐAI",
    "ĐƠN ĐỀ NGHỊ CẤP LẠI GIẤY TỜ BỊ THẤT LẠC",
    "TỜ KHAI ĐĂNG KÝ KHAI SINH",
    "TỜ KHAI THAY ĐỔI THÔNG TIN CƯ TRÚ",
)

_PHRASES = (
    "căn cứ quy định của pháp luật hiện hành",
    "tôi làm đơn này kính đề nghị Ủy ban nhân dân xã",
    "xem xét giải quyết cho gia đình tôi",
    "cấp giấy xác nhận tình trạng hôn nhân",
    "để bổ sung hồ sơ theo yêu cầu của cơ quan",
    "tôi xin cam đoan những nội dung khai trên đây là đúng sự thật",
    "và chịu trách nhiệm trước pháp luật về lời khai của mình",
    "hồ sơ gồm các giấy tờ kèm theo đơn này",
    "bản sao có chứng thực hoặc bản sao kèm bản chính để đối chiếu",
    "thời hạn giải quyết là năm ngày làm việc",
    "kể từ ngày nhận đủ hồ sơ hợp lệ",
    "thửa đất số 125, tờ bản đồ số 7",
    "diện tích sử dụng chung và sử dụng riêng",
    "nguồn gốc sử dụng đất do ông bà để lại",
    "gia đình tôi sinh sống ổn định tại địa phương",
    "không có tranh chấp, khiếu nại",
    "đề nghị cơ quan có thẩm quyền",
    "xác minh và cấp lại giấy tờ bị thất lạc",
    "trong quá trình thực hiện thủ tục hành chính",
    "theo hướng dẫn của cán bộ bộ phận một cửa",
    "nộp hồ sơ qua dịch vụ bưu chính công ích",
    "nhận kết quả tại bưu điện văn hóa xã",
    "số định danh cá nhân đã được cập nhật",
    "trên cơ sở dữ liệu quốc gia về dân cư",
    "hoàn cảnh gia đình còn nhiều khó khăn",
    "thuộc diện hộ cận nghèo của xã",
    "được hưởng chế độ trợ cấp xã hội hằng tháng",
    "kính mong được xem xét, giúp đỡ",
    "người yêu cầu có trách nhiệm bổ sung",
    "các giấy tờ còn thiếu trong thời hạn quy định",
    "việc đăng ký khai sinh cho cháu",
    "sinh ngày mười lăm tháng ba tại trạm y tế xã",
    "cha mẹ đã đăng ký kết hôn hợp pháp",
    "mục đích sử dụng để làm thủ tục vay vốn ngân hàng",
    "đăng ký thường trú tại nơi ở mới",
    "chuyển nhượng quyền sử dụng đất",
    "theo hợp đồng đã được công chứng",
    "đã nộp đầy đủ các khoản nghĩa vụ tài chính",
    "có ý kiến của trưởng thôn và ban công tác mặt trận",
    "đơn được lập thành hai bản có giá trị như nhau",
)


def _corpus() -> list[str]:
    """Paragraphs of plausible administrative prose built from stock phrases."""
    rng = random.Random("corpus")
    paragraphs = []
    for _ in range(28):
        sentences = []
        for _ in range(rng.randint(2, 4)):
            phrases = rng.sample(_PHRASES, rng.randint(2, 4))
            text = ", ".join(phrases) if rng.random() < 0.6 else " ".join(phrases)
            sentences.append(text[0].upper() + text[1:] + ".")
        paragraphs.append(_nfc(" ".join(sentences)))
    return paragraphs


# ---------------------------------------------------------------------------------------------
# Pre-rendered material


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Margins and type sizes per resolution, following the Decree 30/2020 page layout."""

    size: tuple[int, int]
    left: int
    right: int
    top: int
    bottom: int
    body: int
    pitch: int

    @property
    def column(self) -> int:
        return self.size[0] - self.left - self.right


@lru_cache(maxsize=16)
def _geometry(dpi: int) -> _Geometry:
    body = _pt(11, dpi)
    return _Geometry(
        size=a4(dpi),
        left=_px(30, dpi),
        right=_px(18, dpi),
        top=_px(20, dpi),
        bottom=_px(20, dpi),
        body=body,
        pitch=round(body * 1.5),
    )


_PAPER_TONES: tuple[Colour, ...] = ((247, 245, 239), (244, 242, 236), (249, 247, 242))
_INKS: tuple[Colour, ...] = ((28, 28, 33), (36, 34, 40), (24, 28, 44), (42, 42, 42))
_PRINT_BLACK: Colour = (22, 22, 24)
_SLACK_MM = 4


@lru_cache(maxsize=6)
def _paper(dpi: int, rgb: bool, variant: int) -> Image.Image:
    """A sheet of noisy paper a little larger than A4, for pages to crop at random offsets.

    Generating fresh noise costs more per page than everything else together, so a page takes
    one of a few sheets and a random crop of it instead; the per-pixel grain plus a faint
    low-frequency mottle is what scanners show on plain office paper.
    """
    width, height = a4(dpi)
    slack = max(1, _px(_SLACK_MM, dpi))
    rows, cols = height + slack, width + slack
    rng = np.random.default_rng([dpi, variant])
    grain = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(1.6)
    coarse = rng.standard_normal((rows // 48 + 2, cols // 48 + 2), dtype=np.float32) * 1.4
    mottle = Image.fromarray(coarse).resize((cols, rows), Image.Resampling.BILINEAR)
    grain += np.asarray(mottle, dtype=np.float32)
    noise = np.rint(grain).astype(np.int16)
    tone = _PAPER_TONES[variant % len(_PAPER_TONES)]
    levels = tone if rgb else (_tone(tone, False),)
    bands = [Image.fromarray(np.clip(noise + level, 0, 255).astype(np.uint8)) for level in levels]
    return Image.merge("RGB", bands) if rgb else bands[0]


def _blank(rng: random.Random, dpi: int, rgb: bool) -> Image.Image:
    sheet = _paper(dpi, rgb, rng.randrange(len(_PAPER_TONES)))
    width, height = a4(dpi)
    slack = sheet.width - width
    dx, dy = rng.randint(0, slack), rng.randint(0, slack)
    page = sheet.crop((dx, dy, dx + width, dy + height))
    page.info["dpi"] = (dpi, dpi)
    return page


@dataclass(frozen=True, slots=True)
class _Mask:
    """Antialiased coverage of some text, cropped to its ink, with the offset of the crop."""

    image: Image.Image
    dx: int
    dy: int

    @property
    def width(self) -> int:
        return self.image.width + self.dx


def _crop_to_ink(mask: Image.Image) -> _Mask:
    box = mask.getbbox() or (0, 0, 1, 1)
    return _Mask(mask.crop(box), box[0], box[1])


@lru_cache(maxsize=512)
def _text_mask(text: str, size: int, bold: bool = False, italic: bool = False) -> _Mask:
    """Fixed strings (headers, labels, titles) are drawn once and pasted from then on.

    Offsets are relative to the pen position with Pillow's "la" anchor, so a pasted label and
    a value drawn after it with ImageDraw sit on the same line.
    """
    font = load_font(size, bold=bold, italic=italic)
    pad = size // 2
    width = math.ceil(font.getlength(text)) + 2 * pad
    canvas = Image.new("L", (width, 2 * size + pad), 0)
    ImageDraw.Draw(canvas).text((pad, pad), text, font=font, fill=255, anchor="la")
    mask = _crop_to_ink(canvas)
    return _Mask(mask.image, mask.dx - pad, mask.dy - pad)


@dataclass(frozen=True, slots=True)
class _Line:
    words: tuple[str, ...]
    indent: bool
    last: bool


@lru_cache(maxsize=16)
def _paragraph_lines(dpi: int) -> tuple[tuple[_Line, ...], ...]:
    """The corpus wrapped to the text column at this resolution."""
    geometry = _geometry(dpi)
    font = load_font(geometry.body)
    space = font.getlength(" ")
    indent = 2 * geometry.body
    result = []
    for paragraph in _corpus():
        lines: list[_Line] = []
        current: list[str] = []
        used = 0.0
        for word in paragraph.split():
            available = geometry.column - (indent if not lines else 0)
            extra = font.getlength(word) + (space if current else 0.0)
            if current and used + extra > available:
                lines.append(_Line(tuple(current), not lines, False))
                current, used = [], 0.0
                extra = font.getlength(word)
            current.append(word)
            used += extra
        lines.append(_Line(tuple(current), not lines, True))
        result.append(tuple(lines))
    return tuple(result)


@lru_cache(maxsize=1024)
def _body_line(dpi: int, paragraph: int, index: int) -> _Mask:
    """One justified body line, as Vietnamese administrative documents are typeset."""
    geometry = _geometry(dpi)
    line = _paragraph_lines(dpi)[paragraph][index]
    font = load_font(geometry.body)
    start = 2 * geometry.body if line.indent else 0
    widths = [font.getlength(word) for word in line.words]
    gap = font.getlength(" ")
    if not line.last and len(line.words) > 1:
        gap = (geometry.column - start - sum(widths)) / (len(line.words) - 1)
    canvas = Image.new("L", (geometry.column + geometry.body, round(geometry.body * 1.6)), 0)
    draw = ImageDraw.Draw(canvas)
    baseline = round(geometry.body * 1.2)
    x = float(start)
    for word, width in zip(line.words, widths, strict=True):
        draw.text((round(x), baseline), word, font=font, fill=255, anchor="ls")
        x += width + gap
    return _crop_to_ink(canvas)


@lru_cache(maxsize=1024)
def _bleed_line(dpi: int, paragraph: int, index: int) -> _Mask:
    """A body line seen through the paper from the back: mirrored, blurred and very faint.

    The offset is relative to the left edge of the mirrored line's ink.
    """
    mask = _body_line(dpi, paragraph, index)
    blur = max(1.0, 1.6 * dpi / 300)
    pad = math.ceil(blur * 2)
    padded = Image.new("L", (mask.image.width + 2 * pad, mask.image.height + 2 * pad), 0)
    padded.paste(mask.image, (pad, pad))
    soft = padded.transpose(Image.Transpose.FLIP_LEFT_RIGHT).filter(ImageFilter.GaussianBlur(blur))
    return _Mask(soft.point(lambda v: v * 16 // 255), -pad, mask.dy - pad)


def clear_caches() -> None:
    """Forget fonts and pre-rendered material: for cold-start benchmarks, and for tests that
    change FONT_PATHS (cached text would otherwise keep the old font)."""
    for cached in (load_font, _text_mask, _paragraph_lines, _body_line, _bleed_line, _paper):
        cached.cache_clear()


def _paste(page: Image.Image, mask: _Mask, x: int, y: int, ink: Colour | int) -> None:
    page.paste(ink, (x + mask.dx, y + mask.dy), mask.image)


def _paste_text(
    page: Image.Image,
    text: str,
    xy: tuple[int, int],
    size: int,
    ink: Colour | int,
    *,
    bold: bool = False,
    italic: bool = False,
    align: Literal["left", "centre", "right"] = "left",
) -> int:
    """Paste a cached rendering of `text` with its top-left (or centre/right edge) at `xy`.

    Returns the pasted width so callers can underline or continue the line.
    """
    mask = _text_mask(_nfc(text), size, bold, italic)
    x, y = xy
    if align == "centre":
        x -= mask.width // 2
    elif align == "right":
        x -= mask.width
    _paste(page, mask, x, y, ink)
    return mask.width


def _write(
    page: Image.Image,
    text: str,
    xy: tuple[int, int],
    size: int,
    ink: Colour | int,
    *,
    bold: bool = False,
    italic: bool = False,
    anchor: str = "la",
) -> None:
    """Draw one-off text (names, numbers) directly: caching it would only waste memory."""
    font = load_font(size, bold=bold, italic=italic)
    ImageDraw.Draw(page).text(xy, _nfc(text), font=font, fill=ink, anchor=anchor)


def _signature(
    page: Image.Image, rng: random.Random, box: tuple[int, int, int, int], ink: Colour | int
) -> None:
    """A scribble where the signature goes; scanners see ink there, never an empty block."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    waves = [(rng.uniform(1.5, 4.5), rng.uniform(0, math.tau), rng.uniform(0.1, 0.3))]
    waves.append((rng.uniform(6.0, 11.0), rng.uniform(0, math.tau), rng.uniform(0.05, 0.15)))
    slant = rng.uniform(-0.2, 0.2)
    points = []
    for step in range(97):
        t = step / 96
        wobble = sum(a * math.sin(t * f * math.tau + p) for f, p, a in waves)
        loop = 0.08 * math.cos(t * waves[1][0] * math.tau)
        x = left + width * (t + loop)
        points.append((x, top + height * (0.5 + wobble * (1.1 - t) + slant * (t - 0.5))))
    stroke = max(1, round(height / 45))
    ImageDraw.Draw(page).line(points, fill=ink, width=stroke, joint="curve")


def _specks(page: Image.Image, rng: random.Random, dpi: int, ink: Colour | int) -> None:
    """Dust on the scanner glass and, now and then, a faint streak from a dirty sensor."""
    draw = ImageDraw.Draw(page)
    width, height = page.size
    for _ in range(rng.randint(0, 5)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.uniform(0.5, 1.5) * dpi / 300
        draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    if rng.random() < 0.08:
        x = rng.randrange(width)
        grey = page.getpixel((x, 0))
        faint = (
            tuple(max(0, c - 9) for c in grey) if isinstance(grey, tuple) else int(grey or 0) - 9
        )
        draw.line((x, 0, x, height), fill=faint, width=1)


def _national_header(
    page: Image.Image, centre: int, top: int, dpi: int, ink: Colour | int, points: float = 11.5
) -> int:
    """The state motto every administrative document opens with; returns the y below it."""
    size = _pt(points, dpi)
    motto = _pt(points + 0.5, dpi)
    state = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    _paste_text(page, state, (centre, top), size, ink, bold=True, align="centre")
    y = top + round(size * 1.6)
    slogan = "Độc lập - Tự do - Hạnh phúc"
    width = _paste_text(page, slogan, (centre, y), motto, ink, bold=True, align="centre")
    y += round(motto * 1.45)
    rule = max(1, round(dpi / 150))
    page.paste(ink, (centre - width // 2, y, centre + width // 2, y + rule))
    return y + rule


def _vn_date(day: date) -> str:
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


# ---------------------------------------------------------------------------------------------
# Pages


def _body_layout(
    rng: random.Random, dpi: int, top: int, bottom: int
) -> list[tuple[int, int, int, int]]:
    """Where body lines go: consecutive paragraphs from a random start, whole lines only."""
    geometry = _geometry(dpi)
    paragraphs = _paragraph_lines(dpi)
    wanted = rng.randint(2, 7)
    first = rng.randrange(len(paragraphs))
    jitter = max(1, dpi // 150)
    placed = []
    y = top
    for step in range(wanted):
        number = (first + step) % len(paragraphs)
        lines = paragraphs[number]
        if y + geometry.pitch * min(2, len(lines)) > bottom:
            break
        for index in range(len(lines)):
            if y + geometry.pitch > bottom:
                break
            placed.append((number, index, geometry.left + rng.randint(-jitter, jitter), y))
            y += geometry.pitch
        y += round(geometry.pitch * 0.3)
    return placed


def text_page(seed: int, dpi: int = 300, *, colour: bool = True) -> Image.Image:
    """A scanned A4 application form ("ĐƠN ĐỀ NGHỊ …") filled in by a fake citizen.

    `colour=False` gives a grey ("L") scan, which the quality checks must flag (Decree 30/2020
    asks for colour copies).
    """
    rng = random.Random(f"text:{seed}")
    geometry = _geometry(dpi)
    width, height = geometry.size
    page = _blank(rng, dpi, colour)
    ink = _tone(rng.choice(_INKS), colour)
    person = _person(rng)
    shift = rng.randint(-_px(2, dpi), _px(2, dpi))
    centre = width // 2 + shift

    y = _national_header(page, centre, geometry.top + shift, dpi, ink)
    y += _px(9, dpi)
    title = _TITLES[rng.randrange(len(_TITLES))]
    _paste_text(page, title, (centre, y), _pt(13, dpi), ink, bold=True, align="centre")
    y += round(_pt(13, dpi) * 2.2)
    size = geometry.body
    _write(
        page, f"Kính gửi: Ủy ban nhân dân xã {person.commune}", (centre, y), size, ink, anchor="ma"
    )
    y += round(geometry.pitch * 1.6)
    left = geometry.left + shift
    fields = (
        ("Tôi tên là: ", person.full_name),
        ("Số định danh cá nhân: ", person.cccd),
        ("Nơi cư trú: ", person.address),
        ("Số điện thoại: ", person.phone),
    )
    for label, value in fields:
        used = _paste_text(page, label, (left, y), size, ink)
        _write(page, value, (left + used + size // 3, y), size, ink)
        y += geometry.pitch
    y += round(geometry.pitch * 0.5)

    signature_height = round(geometry.pitch * 6)
    body_bottom = height - geometry.bottom - signature_height
    for number, index, x, line_y in _body_layout(rng, dpi, y, body_bottom):
        _paste(page, _body_line(dpi, number, index), x + shift, line_y, ink)
        y = line_y + geometry.pitch

    sign_centre = width - geometry.right - _px(45, dpi) + shift
    y += geometry.pitch
    signed = REFERENCE_DATE - timedelta(days=rng.randrange(2000))
    _write(
        page,
        f"{person.commune}, {_vn_date(signed)}",
        (sign_centre, y),
        size,
        ink,
        italic=True,
        anchor="ma",
    )
    y += geometry.pitch
    _paste_text(page, "NGƯỜI LÀM ĐƠN", (sign_centre, y), size, ink, bold=True, align="centre")
    y += geometry.pitch
    _paste_text(
        page, "(Ký, ghi rõ họ tên)", (sign_centre, y), size, ink, italic=True, align="centre"
    )
    y += geometry.pitch
    half = _px(22, dpi)
    _signature(page, rng, (sign_centre - half, y, sign_centre + half, y + 2 * geometry.pitch), ink)
    y += round(geometry.pitch * 2.4)
    _write(page, person.full_name, (sign_centre, y), size, ink, bold=True, anchor="ma")
    _specks(page, rng, dpi, ink)
    return page


def _qr_for_width(code: str, target: int) -> Image.Image:
    """QR (error level M) with its 4-module quiet zone at about `target` pixels, scaled by whole
    modules so every module edge stays sharp."""
    qr = segno.make_qr(code, error="m", boost_error=False)
    modules = np.asarray(list(qr.matrix_iter(scale=1, border=4)), dtype=np.uint8) * 255
    mask = Image.fromarray(modules)
    module = max(1, round(target / mask.width))
    return mask.resize((mask.width * module, mask.height * module), Image.Resampling.NEAREST)


def _code128_mask(code: str, dpi: int) -> Image.Image:
    """Code 128 bars (~0.27 mm modules, 1 cm tall) with 10-module quiet zones and the code
    printed underneath, as receipt-printing software lays it out."""
    pattern = barcode.get_barcode_class("code128")(code).build()[0]
    module = max(1, round(0.27 * dpi / _INCH_MM))
    quiet = np.zeros(10, dtype=bool)
    bars = np.frombuffer(pattern.encode("ascii"), dtype=np.uint8) == ord("1")
    row = np.repeat(np.concatenate([quiet, bars, quiet]).astype(np.uint8) * 255, module)
    bar_height = _px(10, dpi)
    caption = _pt(8, dpi)
    canvas = Image.new("L", (row.size, bar_height + round(caption * 1.6)), 0)
    canvas.paste(Image.fromarray(np.tile(row, (bar_height, 1))), (0, 0))
    ImageDraw.Draw(canvas).text(
        (row.size // 2, bar_height + caption // 4),
        code,
        font=load_font(caption),
        fill=255,
        anchor="ma",
    )
    return canvas


def _symbol_mask(code: str, symbology: Symbology, dpi: int) -> Image.Image:
    """The code as printed on a receipt slip: a ~2.5 cm QR, or a Code 128."""
    if symbology == "qr":
        return _qr_for_width(code, _px(25, dpi))
    if symbology == "code128":
        return _code128_mask(code, dpi)
    raise ValueError(f"unknown symbology {symbology!r}; use 'qr' or 'code128'")


def cover_page(
    code: str,
    seed: int = 0,
    dpi: int = 300,
    *,
    symbology: Symbology = "qr",
    position: Position = "top",
    colour: bool = True,
) -> Image.Image:
    """The Mẫu 01 receipt slip (Circular 01/2018/TT-VPCP) that opens every dossier.

    The code is printed in words and as a symbol: a ~2.5 cm QR (error level M) or a Code 128
    with ~0.27 mm modules, under the header at the top right, or in the bottom-right corner
    for `position="bottom"` so capture's cheap top-band pass is forced to escalate.
    """
    if position not in ("top", "bottom"):
        raise ValueError(f"unknown position {position!r}; use 'top' or 'bottom'")
    rng = random.Random(f"cover:{seed}:{code}")
    geometry = _geometry(dpi)
    width, height = geometry.size
    page = _blank(rng, dpi, colour)
    ink = _tone(_PRINT_BLACK, colour)
    person = _person(rng)
    size = geometry.body
    pitch = geometry.pitch
    right = width - geometry.right

    _paste_text(
        page, "Mẫu số 01", (right, geometry.top - pitch), size, ink, bold=True, align="right"
    )
    agency_centre = geometry.left + _px(28, dpi)
    _write(
        page,
        f"UBND XÃ {person.commune.upper()}",
        (agency_centre, geometry.top),
        size,
        ink,
        anchor="ma",
    )
    _paste_text(
        page,
        "BỘ PHẬN TIẾP NHẬN VÀ",
        (agency_centre, geometry.top + pitch),
        size,
        ink,
        bold=True,
        align="centre",
    )
    used = _paste_text(
        page,
        "TRẢ KẾT QUẢ",
        (agency_centre, geometry.top + 2 * pitch),
        size,
        ink,
        bold=True,
        align="centre",
    )
    rule = max(1, round(dpi / 150))
    under = geometry.top + 3 * pitch
    page.paste(ink, (agency_centre - used // 2, under, agency_centre + used // 2, under + rule))
    book = rng.randint(1, 9)
    number = rng.randint(1, 999)
    _write(
        page, f"Số: {number:03d}/TNHS", (agency_centre, under + pitch // 2), size, ink, anchor="ma"
    )
    symbol = _symbol_mask(code, symbology, dpi)
    y = _national_header(page, right - _px(44, dpi), geometry.top, dpi, ink, 10.5) + pitch // 2
    if position == "top":
        page.paste(ink, (right - symbol.width, y), symbol)
        y += max(symbol.height, _px(25, dpi)) + pitch // 2
    else:
        y += _px(25, dpi)

    centre = width // 2
    _paste_text(
        page,
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        (centre, y),
        _pt(13, dpi),
        ink,
        bold=True,
        align="centre",
    )
    y += round(_pt(13, dpi) * 1.7)
    _write(page, f"Mã hồ sơ: {code}", (centre, y), _pt(12, dpi), ink, bold=True, anchor="ma")
    y += round(pitch * 1.8)

    procedure, days, documents = _PROCEDURES[rng.randrange(len(_PROCEDURES))]
    received = _code_day(code, rng)
    due = _add_working_days(received, days)
    received_at = f"{rng.randint(7, 16):02d} giờ {rng.choice((0, 10, 15, 20, 30, 45)):02d} phút"
    lines = [
        ("", f"Bộ phận tiếp nhận và trả kết quả Ủy ban nhân dân xã {person.commune}"),
        ("Tiếp nhận hồ sơ của:", ""),
        ("Ông/Bà: ", person.full_name),
        ("Số CCCD: ", f"{person.cccd}        Số điện thoại: {person.phone}"),
        ("Địa chỉ: ", person.address),
        ("Thủ tục hành chính: ", procedure),
        ("Thành phần hồ sơ gồm:", ""),
        *[("", f"{i}. {doc}: 01 bản") for i, doc in enumerate(documents, 1)],
        ("Số lượng hồ sơ: ", "01 (bộ)"),
        ("Thời gian giải quyết hồ sơ theo quy định là: ", f"{days:02d} ngày làm việc"),
        ("Thời gian nhận hồ sơ: ", f"{received_at}, {_vn_date(received)}"),
        ("Ngày hẹn trả kết quả: ", f"{received_at}, {_vn_date(due)}"),
        ("Vào Sổ theo dõi hồ sơ, Quyển số: ", f"{book:02d}, Số thứ tự: {number:03d}"),
    ]
    for label, value in lines:
        x = geometry.left
        if label:
            x += _paste_text(page, label, (x, y), size, ink) + size // 3
        if value:
            _write(page, value, (x, y), size, ink)
        y += pitch
    y += pitch
    columns = (
        (geometry.left + geometry.column // 4, "NGƯỜI NỘP HỒ SƠ", person.full_name),
        (geometry.left + 3 * geometry.column // 4, "NGƯỜI TIẾP NHẬN HỒ SƠ", None),
    )
    clerk = _person(rng).full_name
    for column_centre, role, name in columns:
        _paste_text(page, role, (column_centre, y), size, ink, bold=True, align="centre")
        _paste_text(
            page,
            "(Ký và ghi rõ họ tên)",
            (column_centre, y + pitch),
            size,
            ink,
            italic=True,
            align="centre",
        )
        half = _px(20, dpi)
        box = (column_centre - half, y + 2 * pitch, column_centre + half, y + 4 * pitch)
        _signature(page, rng, box, _tone(_INKS[2], colour))
        _write(
            page,
            name or clerk,
            (column_centre, y + round(4.5 * pitch)),
            size,
            ink,
            bold=True,
            anchor="ma",
        )
    if position == "bottom":
        page.paste(ink, (right - symbol.width, height - geometry.bottom - symbol.height), symbol)
    _specks(page, rng, dpi, ink)
    return page


def blank_page(
    seed: int, dpi: int = 300, *, bleed: bool = False, colour: bool = True
) -> Image.Image:
    """The back of a single-sided sheet in a duplex scan: paper, scanner noise, dust.

    `bleed=True` adds the front's text showing through thin paper, mirrored and very faint;
    blank detection has to call that blank too.
    """
    rng = random.Random(f"blank:{seed}")
    page = _blank(rng, dpi, colour)
    ink = _tone(rng.choice(_INKS), colour)
    if bleed:
        geometry = _geometry(dpi)
        width, height = geometry.size
        top = geometry.top + 10 * geometry.pitch
        bottom = height - geometry.bottom - 6 * geometry.pitch
        for number, index, x, y in _body_layout(rng, dpi, top, bottom):
            line = _body_line(dpi, number, index)
            mirrored_left = width - (x + line.dx + line.image.width)
            _paste(page, _bleed_line(dpi, number, index), mirrored_left, y, ink)
    _specks(page, rng, dpi, ink)
    return page


def separator_page(code: str, dpi: int = 300, *, colour: bool = True) -> Image.Image:
    """A printed separator sheet: a large QR and the code in large type, nothing else to read."""
    rng = random.Random(f"separator:{zlib.crc32(code.encode())}")
    geometry = _geometry(dpi)
    width, height = geometry.size
    page = _blank(rng, dpi, colour)
    ink = _tone(_PRINT_BLACK, colour)
    centre = width // 2
    y = geometry.top + _px(15, dpi)
    _paste_text(
        page, "TỜ PHÂN CÁCH HỒ SƠ", (centre, y), _pt(24, dpi), ink, bold=True, align="centre"
    )
    y += _pt(24, dpi) * 2
    _paste_text(
        page,
        "Đặt tờ này trước trang đầu tiên của hồ sơ khi quét",
        (centre, y),
        _pt(12, dpi),
        ink,
        italic=True,
        align="centre",
    )
    qr = _qr_for_width(code, _px(80, dpi))
    top = (height - qr.height) // 2 - _px(10, dpi)
    page.paste(ink, (centre - qr.width // 2, top), qr)
    probe = load_font(100, bold=True).getlength(code)
    size = min(_pt(40, dpi), int(100 * geometry.column / max(probe, 1.0)))
    _write(page, code, (centre, top + qr.height + _px(8, dpi)), size, ink, bold=True, anchor="ma")
    return page


def skewed(image: Image.Image, degrees: float) -> Image.Image:
    """The page fed crooked: content rotated counter-clockwise by `degrees`, same pixel size.

    Corners uncovered by the rotation take the paper colour at the top-left, like a scanner
    with a white backing plate.
    """
    corner = image.getpixel((2, 2))
    rotated = image.rotate(
        degrees, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=corner
    )
    rotated.info.update(image.info)
    return rotated


def darkened(image: Image.Image, factor: float) -> Image.Image:
    """The page scanned with the brightness knob turned down (factor < 1) or up (> 1)."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    lut = [min(255, round(v * factor)) for v in range(256)] * len(image.getbands())
    result = image.point(lut)
    result.info.update(image.info)
    return result


# ---------------------------------------------------------------------------------------------
# Writers


def save_jpeg(image: Image.Image, path: Destination, dpi: int = 300, quality: int = 85) -> None:
    """Write a JPEG with its JFIF density set, as scanners do, so capture can check dpi."""
    image.save(path, "JPEG", quality=quality, dpi=(dpi, dpi))


def save_png(image: Image.Image, path: Destination, dpi: int = 300) -> None:
    """Write a PNG with pHYs set; fast compression, since noisy scans barely compress anyway."""
    image.save(path, "PNG", dpi=(dpi, dpi), compress_level=1)


_TIFF_COMPRESSION = "tiff_lzw" if features.check("libtiff") else "raw"
"""LZW: lossless, what scanner drivers commonly write, and four times faster than deflate on
noisy pages."""


def save_tiff(images: Iterable[Image.Image], path: Destination, dpi: int = 300) -> int:
    """Write a multi-page lossless TIFF one page at a time; returns the page count.

    Pages are generated and written in turn, so a 300-page job never sits in memory at once.
    """
    count = 0
    with TiffImagePlugin.AppendingTiffWriter(_fspath(path), new=True) as tiff:
        for image in images:
            image.save(tiff, "TIFF", dpi=(dpi, dpi), compression=_TIFF_COMPRESSION)
            tiff.newFrame()
            count += 1
    if not count:
        raise ValueError("a TIFF needs at least one page")
    return count


def _fspath(path: Destination) -> str | BinaryIO:
    return os.fspath(path) if isinstance(path, str | os.PathLike) else path


class _PdfOut:
    """Just enough of a PDF 1.4 writer to stream JPEG pages to disk one by one.

    Pillow's PDF writer holds every page's bitmap until the end, which a 300-page test job
    cannot afford. Output carries no timestamps, so equal pages give equal bytes.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.position = 0
        self.offsets: dict[int, int] = {}

    def raw(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def obj(self, number: int, body: bytes, stream: bytes | None = None) -> None:
        self.offsets[number] = self.position
        self.raw(b"%d 0 obj\n" % number + body)
        if stream is not None:
            self.raw(b"\nstream\n")
            self.raw(stream)
            self.raw(b"\nendstream")
        self.raw(b"\nendobj\n")

    def finish(self, root: int) -> None:
        size = max(self.offsets) + 1
        start = self.position
        rows = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
        rows += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, size)]
        self.raw(b"".join(rows))
        trailer = b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        self.raw(trailer % (size, root, start))


def _number(value: float) -> bytes:
    return (b"%.4f" % value).rstrip(b"0").rstrip(b".")


def _write_pdf(images: Iterable[Image.Image], out: BinaryIO, dpi: int, quality: int) -> int:
    pdf = _PdfOut(out)
    pdf.raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    pdf.obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = []
    for index, image in enumerate(images):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        encoded = io.BytesIO()
        save_jpeg(image, encoded, dpi=dpi, quality=quality)
        data = encoded.getvalue()
        space = b"/DeviceGray" if image.mode == "L" else b"/DeviceRGB"
        width = _number(image.width * 72 / dpi)
        height = _number(image.height * 72 / dpi)
        number = 3 + 3 * index
        pdf.obj(
            number,
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s "
            b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>"
            % (image.width, image.height, space, len(data)),
            data,
        )
        content = b"q %s 0 0 %s 0 0 cm /Im0 Do Q" % (width, height)
        pdf.obj(number + 1, b"<< /Length %d >>" % len(content), content)
        pdf.obj(
            number + 2,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R "
            b"/Resources << /XObject << /Im0 %d 0 R >> /ProcSet [/PDF /ImageC /ImageB] >> >>"
            % (width, height, number + 1, number),
        )
        kids.append(b"%d 0 R" % (number + 2))
    if not kids:
        raise ValueError("a PDF needs at least one page")
    pdf.obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids)))
    pdf.finish(root=1)
    return len(kids)


def save_pdf(
    images: Iterable[Image.Image], path: Destination, dpi: int = 300, *, quality: int = 85
) -> int:
    """Write a multi-page PDF 1.4 of JPEG pages at 100% scale; returns the page count.

    Each page is pixels / dpi inches, the "100% scale" Decree 30/2020 asks for, so capture
    can recover the scan resolution from the page size.
    """
    target = _fspath(path)
    if isinstance(target, str):
        with open(target, "wb") as out:
            return _write_pdf(images, out, dpi, quality)
    return _write_pdf(images, target, dpi, quality)


# ---------------------------------------------------------------------------------------------
# Scan jobs


@dataclass(frozen=True, slots=True)
class DossierSpec:
    """One dossier to scan: a cover slip carrying `code` (none if None) then `pages` pages.

    `blank_backs` scans every sheet duplex, adding a (bleed-through) blank back after each.
    """

    code: str | None
    pages: int
    symbology: Symbology = "qr"
    blank_backs: bool = False
    position: Position = "top"


@dataclass(frozen=True, slots=True)
class ExpectedDossier:
    """What capture should make of a written dossier: its code and every page it keeps.

    `pages` counts the cover and blank backs (blank pages are flagged, never dropped);
    `blank_pages` are their 0-based positions within the dossier and `start` is the position
    of its first page in the job.
    """

    code: str | None
    pages: int
    blank_pages: tuple[int, ...]
    start: int


class WrittenJob(NamedTuple):
    """The files of one scan job in scanner order, and the dossiers they should yield."""

    paths: list[Path]
    expected: list[ExpectedDossier]


_EXTENSIONS: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "pdf": ".pdf"}


def _plan(dossiers: Sequence[DossierSpec]) -> list[ExpectedDossier]:
    expected = []
    start = 0
    for number, spec in enumerate(dossiers):
        if spec.code is None and number:
            raise ValueError("only the first dossier of a job can lack a cover page")
        sheets = spec.pages + (spec.code is not None)
        if sheets < 1 or spec.pages < 0:
            raise ValueError(f"dossier {number} has no pages")
        per_sheet = 2 if spec.blank_backs else 1
        blanks = tuple(range(1, sheets * 2, 2)) if spec.blank_backs else ()
        expected.append(ExpectedDossier(spec.code, sheets * per_sheet, blanks, start))
        start += sheets * per_sheet
    return expected


def _job_pages(
    dossiers: Sequence[DossierSpec], seed: int, dpi: int, colour: bool
) -> Iterator[Image.Image]:
    counter = 0
    for spec in dossiers:
        covers = [] if spec.code is None else [spec.code]
        for code in [*covers, *[None] * spec.pages]:
            page_seed = seed * 1_000_003 + counter
            counter += 1
            if code is not None:
                yield cover_page(
                    code,
                    page_seed,
                    dpi,
                    symbology=spec.symbology,
                    position=spec.position,
                    colour=colour,
                )
            else:
                yield text_page(page_seed, dpi, colour=colour)
            if spec.blank_backs:
                yield blank_page(page_seed, dpi, bleed=True, colour=colour)


def write_job(
    folder: str | os.PathLike[str],
    dossiers: Sequence[DossierSpec],
    fmt: ScanFormat = "jpeg",
    *,
    dpi: int = 300,
    seed: int = 0,
    quality: int = 85,
    colour: bool = True,
    name: str = "scan",
    pad: int = 4,
) -> WrittenJob:
    """Write one scan job into `folder` the way a scanner would.

    JPEG and PNG give one file per page, `scan_0001.jpg`, `scan_0002.jpg`, … (`pad=0` gives
    `scan_1`, …, `scan_10` to exercise natural ordering); TIFF and PDF give one multi-page
    `scan.tif` / `scan.pdf`. Pages are generated as they are written, so memory stays flat.
    """
    if fmt not in _EXTENSIONS:
        raise ValueError(f"unknown format {fmt!r}; use one of {sorted(_EXTENSIONS)}")
    expected = _plan(dossiers)
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    pages = _job_pages(dossiers, seed, dpi, colour)
    suffix = _EXTENSIONS[fmt]
    if fmt == "tiff":
        path = directory / f"{name}{suffix}"
        save_tiff(pages, path, dpi)
        return WrittenJob([path], expected)
    if fmt == "pdf":
        path = directory / f"{name}{suffix}"
        save_pdf(pages, path, dpi, quality=quality)
        return WrittenJob([path], expected)
    paths = []
    for number, page in enumerate(pages, 1):
        path = directory / f"{name}_{number:0{pad}d}{suffix}"
        if fmt == "jpeg":
            save_jpeg(page, path, dpi, quality)
        else:
            save_png(page, path, dpi)
        paths.append(path)
    return WrittenJob(paths, expected)
