"""Rules of the Vietnamese one-stop-desk domain: dossier and procedure codes, CCCD numbers,
national-portal statuses, channels and timestamps.

Anything regional IT may change (dossier-code patterns) is passed in as configuration; what is
fixed by law or by the national portal's contract lives here as constants.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from edge.errors import ConfigError

__all__ = [
    "CCCD_PROVINCES",
    "CHANNEL_LABELS",
    "DEFAULT_CODE_PATTERNS",
    "MAX_CODE_LENGTH",
    "PORTAL_STATUS_LABELS",
    "PORTAL_TZ",
    "CccdError",
    "CccdInfo",
    "CccdReason",
    "Channel",
    "CodePatterns",
    "PortalStatus",
    "Sex",
    "format_portal_time",
    "is_procedure_code",
    "parse_portal_time",
    "received_date",
    "validate_cccd",
]

# Dossier codes (Circular 01/2018/TT-VPCP, Art. 19)

DEFAULT_CODE_PATTERNS: tuple[str, ...] = (
    r"(?P<agency>[0-9A-Z]{2,3}(?:\.[0-9A-Z]{2,3}){1,4})"
    r"-(?P<date>[0-9]{6}|[0-9]{8})"
    r"-(?P<seq>[0-9]{4,7})",
)
"""Agency code (2-5 dot-separated groups), received date (yymmdd or yyyymmdd), daily sequence.

Accepts 000.00.01.H29-240115-0001, 38.98.H29-210519-0013, H26.22.16-250226-0001 and
G09.20-20260609-0092637. Only the fallback when no configuration has been pushed yet.
"""

MAX_CODE_LENGTH = 100
"""Longer barcode payloads (URLs, vCards) are rejected before any regex runs."""


@dataclass(frozen=True, slots=True)
class CodePatterns:
    """The dossier-code patterns in force on this box, compiled once.

    Patterns come from regional IT as regex strings. Each is matched in full against the
    stripped, upper-cased barcode text, with ASCII-only classes (so \\d never accepts Arabic or
    full-width digits), and must name the received date as (?P<date>...) - six digits yymmdd
    (20yy) or eight digits yyyymmdd - so that impossible dates such as 240230 are refused.
    """

    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def from_config(cls, sources: Iterable[str]) -> CodePatterns:
        """Compile and check configured patterns, failing with a message regional IT can act on."""
        if isinstance(sources, str):
            raise ConfigError("dossier-code patterns must be a list of strings, not one string")
        compiled: list[re.Pattern[str]] = []
        for source in sources:
            if not isinstance(source, str):
                raise ConfigError(f"dossier-code pattern must be a string; got {source!r}")
            try:
                pattern = re.compile(source, re.ASCII)
            except re.error as err:
                raise ConfigError(f"invalid dossier-code pattern {source!r}: {err.msg}") from None
            if "date" not in pattern.groupindex:
                raise ConfigError(
                    f"dossier-code pattern {source!r} has no (?P<date>...) group for the "
                    "received date"
                )
            compiled.append(pattern)
        if not compiled:
            raise ConfigError("no dossier-code patterns configured")
        return cls(tuple(compiled))

    @classmethod
    def default(cls) -> CodePatterns:
        """The built-in patterns, for a box that has not received configuration yet."""
        return cls.from_config(DEFAULT_CODE_PATTERNS)

    @property
    def sources(self) -> tuple[str, ...]:
        """The regex strings, for showing or re-saving the configuration."""
        return tuple(p.pattern for p in self.patterns)

    def _parse(self, text: str) -> tuple[str, date] | None:
        if len(text) > MAX_CODE_LENGTH:
            return None
        code = text.strip().upper()
        for pattern in self.patterns:
            found = pattern.fullmatch(code)
            if found is None:
                continue
            received = _code_date(found.group("date"))
            if received is not None:
                return code, received
        return None

    def match(self, text: str) -> str | None:
        """The normalised dossier code if text is one, else None; never raises on any input."""
        parsed = self._parse(text)
        return parsed[0] if parsed else None

    def received_date(self, code: str) -> date | None:
        """The date the dossier was received, read from its code."""
        parsed = self._parse(code)
        return parsed[1] if parsed else None


def _code_date(digits: str | None) -> date | None:
    if digits is None or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) == 6:
        year, rest = 2000 + int(digits[:2]), digits[2:]
    elif len(digits) == 8:
        year, rest = int(digits[:4]), digits[4:]
    else:
        return None
    try:
        return date(year, int(rest[:2]), int(rest[2:]))
    except ValueError:
        return None


_DEFAULT_PATTERNS = CodePatterns.default()


def received_date(code: str, patterns: CodePatterns | None = None) -> date | None:
    """The received date in a dossier code, using the built-in patterns unless given others."""
    return (patterns or _DEFAULT_PATTERNS).received_date(code)


# Procedure codes (mã thủ tục hành chính)

_PROCEDURE_CODE = re.compile(r"[1-9]\.[0-9]{6}(?:\.[0-9A-Z]{1,6}){0,5}", re.ASCII)


def is_procedure_code(s: str) -> bool:
    """True for catalogue codes such as 1.005129, and portal forms with an agency suffix.

    Portals append the agency code, either short (1.000948.H38) or in full
    (1.004227.000.00.00.H12), so up to five suffix groups are allowed.
    """
    return len(s) <= MAX_CODE_LENGTH and _PROCEDURE_CODE.fullmatch(s.strip().upper()) is not None


# CCCD (căn cước công dân) numbers

CCCD_PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "001": "Hà Nội",
        "002": "Hà Giang",
        "004": "Cao Bằng",
        "006": "Bắc Kạn",
        "008": "Tuyên Quang",
        "010": "Lào Cai",
        "011": "Điện Biên",
        "012": "Lai Châu",
        "014": "Sơn La",
        "015": "Yên Bái",
        "017": "Hòa Bình",
        "019": "Thái Nguyên",
        "020": "Lạng Sơn",
        "022": "Quảng Ninh",
        "024": "Bắc Giang",
        "025": "Phú Thọ",
        "026": "Vĩnh Phúc",
        "027": "Bắc Ninh",
        "030": "Hải Dương",
        "031": "Hải Phòng",
        "033": "Hưng Yên",
        "034": "Thái Bình",
        "035": "Hà Nam",
        "036": "Nam Định",
        "037": "Ninh Bình",
        "038": "Thanh Hóa",
        "040": "Nghệ An",
        "042": "Hà Tĩnh",
        "044": "Quảng Bình",
        "045": "Quảng Trị",
        "046": "Thừa Thiên Huế",
        "048": "Đà Nẵng",
        "049": "Quảng Nam",
        "051": "Quảng Ngãi",
        "052": "Bình Định",
        "054": "Phú Yên",
        "056": "Khánh Hòa",
        "058": "Ninh Thuận",
        "060": "Bình Thuận",
        "062": "Kon Tum",
        "064": "Gia Lai",
        "066": "Đắk Lắk",
        "067": "Đắk Nông",
        "068": "Lâm Đồng",
        "070": "Bình Phước",
        "072": "Tây Ninh",
        "074": "Bình Dương",
        "075": "Đồng Nai",
        "077": "Bà Rịa–Vũng Tàu",
        "079": "Hồ Chí Minh",
        "080": "Long An",
        "082": "Tiền Giang",
        "083": "Bến Tre",
        "084": "Trà Vinh",
        "086": "Vĩnh Long",
        "087": "Đồng Tháp",
        "089": "An Giang",
        "091": "Kiên Giang",
        "092": "Cần Thơ",
        "093": "Hậu Giang",
        "094": "Sóc Trăng",
        "095": "Bạc Liêu",
        "096": "Cà Mau",
    }
)
"""Province-of-birth-registration codes (the 63 provinces before the 2025 merger).

A CCCD keeps the code of the province where the birth was registered, so numbers issued before
the 2025 merger carry these codes for life; merged provinces kept one of their old codes, so
this table stays the complete set of valid codes.
"""

Sex: TypeAlias = Literal["male", "female"]
CccdReason: TypeAlias = Literal["length", "digits", "province", "birth_year", "sex", "future"]

_CENTURIES = (1900, 2000, 2100, 2200, 2300)
_CCCD_SEPARATORS = str.maketrans("", "", " .-\t\u00a0")


class CccdError(ValueError):
    """A CCCD number that cannot be right; reason is a stable code the UI translates.

    Messages never repeat the full number: it is personal data and errors end up in logs.
    """

    def __init__(self, reason: CccdReason, message: str) -> None:
        super().__init__(message)
        self.reason: CccdReason = reason


@dataclass(frozen=True, slots=True)
class CccdInfo:
    """What a valid CCCD number says about its holder; number is the normalised 12 digits."""

    province_code: str
    province_name: str
    birth_year: int
    sex: Sex
    number: str = field(repr=False)


def validate_cccd(
    number: str,
    birth_date: date | int | None = None,
    sex: Sex | None = None,
    *,
    today: date | None = None,
) -> CccdInfo:
    """Check a CCCD number's format and its agreement with the holder's birth date and sex.

    There is no check digit, so agreement with what the clerk typed is the only way to catch a
    mistyped century/sex digit or birth year. The future check runs only when today is given:
    pass the store's trusted date, not the wall clock, which on a Pi may say 1970 and would then
    reject everyone born since.
    """
    digits = unicodedata.normalize("NFKC", number).translate(_CCCD_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()) and digits:
        raise CccdError(
            "digits", "CCCD must contain only digits (spaces and dots between groups are fine)"
        )
    if len(digits) != 12:
        raise CccdError("length", f"CCCD must be 12 digits; got {len(digits)}")
    province = digits[:3]
    province_name = CCCD_PROVINCES.get(province)
    if province_name is None:
        raise CccdError("province", f"CCCD province code {province} is not a valid province code")
    gender_century = int(digits[3])
    year = _CENTURIES[gender_century // 2] + int(digits[4:6])
    holder_sex: Sex = "female" if gender_century % 2 else "male"
    if today is not None and year > today.year:
        raise CccdError("future", f"CCCD gives birth year {year}, which is after {today.year}")
    if isinstance(birth_date, datetime):
        birth_date = birth_date.date()
    if birth_date is not None:
        expected = birth_date if isinstance(birth_date, int) else birth_date.year
        if today is not None and isinstance(birth_date, date) and birth_date > today:
            raise CccdError("future", f"birth date {birth_date.isoformat()} is in the future")
        if expected != year:
            raise CccdError(
                "birth_year", f"CCCD gives birth year {year} but the birth date is in {expected}"
            )
    if sex is not None and sex != holder_sex:
        raise CccdError("sex", f"CCCD is for a {holder_sex} holder but sex was given as {sex}")
    return CccdInfo(province, province_name, year, holder_sex, digits)


# National public-service portal (Cổng Dịch vụ công quốc gia)


class PortalStatus(IntEnum):
    """TrangThaiHoSo: dossier status codes of the national portal."""

    MOI_DANG_KY = 1
    DUOC_TIEP_NHAN = 2
    KHONG_DUOC_TIEP_NHAN = 3
    DANG_XU_LY = 4
    YEU_CAU_BO_SUNG = 5
    YEU_CAU_NGHIA_VU_TAI_CHINH = 6
    CONG_DAN_RUT_HO_SO = 7
    DUNG_XU_LY = 8
    DA_XU_LY_XONG = 9
    DA_TRA_KET_QUA = 10


PORTAL_STATUS_LABELS: Mapping[PortalStatus, str] = MappingProxyType(
    {
        PortalStatus.MOI_DANG_KY: "Mới đăng ký",
        PortalStatus.DUOC_TIEP_NHAN: "Được tiếp nhận",
        PortalStatus.KHONG_DUOC_TIEP_NHAN: "Không được tiếp nhận",
        PortalStatus.DANG_XU_LY: "Đang xử lý",
        PortalStatus.YEU_CAU_BO_SUNG: "Yêu cầu bổ sung giấy tờ",
        PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH: "Yêu cầu thực hiện nghĩa vụ tài chính",
        PortalStatus.CONG_DAN_RUT_HO_SO: "Công dân yêu cầu rút hồ sơ",
        PortalStatus.DUNG_XU_LY: "Dừng xử lý",
        PortalStatus.DA_XU_LY_XONG: "Đã xử lý xong",
        PortalStatus.DA_TRA_KET_QUA: "Đã trả kết quả",
    }
)


class Channel(IntEnum):
    """How the dossier reached the one-stop desk, as coded by the national portal."""

    TRUC_TIEP = 1
    TRUC_TUYEN = 2
    BUU_CHINH_CONG_ICH = 3


CHANNEL_LABELS: Mapping[Channel, str] = MappingProxyType(
    {
        Channel.TRUC_TIEP: "trực tiếp",
        Channel.TRUC_TUYEN: "trực tuyến",
        Channel.BUU_CHINH_CONG_ICH: "qua bưu chính công ích",
    }
)

PORTAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_PORTAL_TIME = re.compile(r"[0-9]{14}", re.ASCII)


def parse_portal_time(s: str) -> datetime:
    """Read a portal timestamp (yyyyMMddHHmmss, Vietnam local time) as an aware datetime.

    Strictly 14 digits: strptime would also accept short fields and misread them.
    """
    text = s.strip()
    if _PORTAL_TIME.fullmatch(text) is None:
        raise ValueError(f"portal time must be 14 digits yyyyMMddHHmmss; got {s!r}")
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=PORTAL_TZ,
        )
    except ValueError as err:
        raise ValueError(f"portal time {s!r} is not a real date and time: {err}") from None


def format_portal_time(dt: datetime) -> str:
    """Write an aware datetime as the portal expects, converted to Vietnam time.

    Naive datetimes are refused: guessing their zone is how records end up seven hours off.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("portal time needs an aware datetime; got a naive one")
    local = dt.astimezone(PORTAL_TZ)
    return (
        f"{local.year:04d}{local.month:02d}{local.day:02d}"
        f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
    )
