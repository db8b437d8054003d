"""What a symbol printed on a scanned page means.

Capture reads every barcode on a page; grouping must then decide which of them open a new
dossier. Only a receipt slip (or separator) carrying a dossier code may do that: a CCCD QR on a
photocopied ID card, a postal tracking label, an e-invoice's lookup code or a bank-transfer QR
is content, and the worst
outcome the box can produce is a page silently filed under another citizen's code. So this
module sorts each read into a small set of kinds, and errs towards "a clerk must look"
(RECEIPT_LIKE) whenever a symbol could be a receipt the box cannot confirm.

Everything here is a pure function of the symbol's text, its symbology and the configured rules:
no I/O, no clock, and no exception escapes on any input, because a hostile or damaged page must
never stop capture.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from edge.domain import MAX_CODE_LENGTH, CccdError, CodePatterns, Sex, validate_cccd
from edge.errors import ConfigError

__all__ = [
    "DEFAULT_RECEIPT_RULES",
    "ID_CARD_WARNINGS",
    "MAX_SYMBOL_TEXT",
    "RETAIL",
    "TWO_D",
    "IdCard",
    "Kind",
    "Meaning",
    "ReceiptRules",
    "classify",
    "code_from_url",
    "invoice_number",
    "is_two_d",
    "parse_id_card",
    "payment_payload",
    "tracking_number",
]

MAX_SYMBOL_TEXT: Final = 4096
"""Longest text examined. A QR holds at most about 4,300 characters; anything longer did not
come from a page's symbol as read, and scanning it would only cost time."""

TWO_D: Final[frozenset[str]] = frozenset(
    {"qr", "qrcode", "microqr", "rmqr", "datamatrix", "aztec", "aztecrune", "pdf417"}
    | {"micropdf417", "compactpdf417", "maxicode", "sqcode", "dotcode", "hanxin", "gridmatrix"}
)
"""Matrix and stacked symbologies (normalised names). Their Reed-Solomon error correction makes
a wrong-but-valid read practically impossible, so their text is trusted as read."""

RETAIL: Final[frozenset[str]] = frozenset(
    {"ean13", "ean8", "ean5", "ean2", "upca", "upce", "isbn", "isbn10", "isbn13", "itf14"}
    | {"databar", "databarexp", "databarltd", "composite"}
)
"""GS1 product and carton families: fixed-length digit strings with a check digit, printed on
goods and books. No receipt carries its dossier code in one, so a misread of them is no
boundary. ITF-14 and DataBar are GS1 trade items too, hence listed beside EAN/UPC/ISBN."""

ID_CARD_WARNINGS: Final[tuple[str, ...]] = (
    "unknown_province",
    "century_mismatch",
    "birth_year_mismatch",
    "sex_mismatch",
    "sex_unknown",
    "old_number_invalid",
    "issued_before_birth",
    "future_birth",
    "issued_in_future",
)
"""Every warning parse_id_card can give, as stable codes the UI translates."""


class Kind(StrEnum):
    """What a symbol is, as far as grouping pages into dossiers is concerned."""

    DOSSIER_CODE = "dossier_code"
    """The text is (or a URL carries) a valid dossier code: the page is a receipt."""
    RECEIPT_LIKE = "receipt_like"
    """Could be a receipt's code but matches no pattern: the clerk must review."""
    CCCD = "cccd"
    """The QR on a citizen ID card (personal data)."""
    TRACKING = "tracking"
    """A postal tracking number (UPU S10, e.g. EB123456789VN)."""
    PAYMENT = "payment"
    """A bank-transfer QR (EMVCo merchant-presented / VietQR payload)."""
    INVOICE = "invoice"
    """An e-invoice's series and number (Circular 78/2021/TT-BTC, e.g. 1C25TBA-0001234)."""
    URL = "url"
    """A URL that carries no dossier code."""
    OTHER = "other"
    """Anything else: kept as a page attribute, never a boundary."""


@dataclass(frozen=True)
class Meaning:
    """The verdict on one symbol.

    personal means the text itself holds personal data (an ID card, an ID number or phone in a
    URL, a payee's bank account): the caller must seal it and never log it. It is set
    generously, since sealing a harmless text costs nothing and logging an ID number cannot be
    undone.
    """

    kind: Kind
    code: str | None = None
    personal: bool = False


# Receipt rules: where URL QR codes carry the dossier code

_PARAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}", re.ASCII)
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:\*\.)?{_HOST_LABEL}(?:\.{_HOST_LABEL})*", re.ASCII)


class _ReceiptSettings(Protocol):
    @property
    def code_url_params(self) -> tuple[str, ...]: ...

    @property
    def portal_hosts(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ReceiptRules:
    """Which URL parameters carry a dossier code, and which hosts are one-stop portals.

    Receipt QR codes are often portal lookup URLs (``.../tra-cuu?SGT=<CCCD>&MHS=<code>``).
    url_params are tried in order and matched case-insensitively, because QR encoders upper-case
    URLs to use the denser alphanumeric mode. A portal_hosts entry "*.gov.vn" stands for gov.vn
    and every subdomain of it; any other entry is one exact host. Both come from regional IT
    (Settings.code_url_params, Settings.portal_hosts) and are checked on construction, so a bad
    value fails when it is configured, not when a receipt is scanned.
    """

    url_params: tuple[str, ...] = ("MHS",)
    portal_hosts: tuple[str, ...] = ("*.gov.vn",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url_params", _checked_params(self.url_params))
        object.__setattr__(self, "portal_hosts", _checked_hosts(self.portal_hosts))

    @classmethod
    def from_config(cls, url_params: Iterable[str], portal_hosts: Iterable[str]) -> ReceiptRules:
        """Rules from configuration lists, failing with a message regional IT can act on."""
        return cls(
            _as_tuple(url_params, "code URL parameters"), _as_tuple(portal_hosts, "portal hosts")
        )

    @classmethod
    def from_settings(cls, settings: _ReceiptSettings) -> ReceiptRules:
        """Rules from a Settings (typed structurally: this module must not import settings)."""
        return cls.from_config(settings.code_url_params, settings.portal_hosts)

    def is_portal(self, host: str) -> bool:
        """True if host (any case, trailing dot allowed) is one of the portal hosts."""
        host = host.rstrip(".").lower()
        for entry in self.portal_hosts:
            entry = entry.lower()
            if entry.startswith("*."):
                if host == entry[2:] or host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False


def _as_tuple(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigError(f"{what} must be a list of strings, not one string")
    try:
        return tuple(values)
    except TypeError:
        raise ConfigError(f"{what} must be a list of strings; got {values!r}") from None


def _checked_params(values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise ConfigError(
            f"code URL parameters must be a list of names such as MHS; got {values!r}"
        )
    for name in values:
        if not isinstance(name, str) or _PARAM_NAME.fullmatch(name) is None:
            raise ConfigError(
                f"code URL parameter {name!r} must be 1-40 letters, digits, '_' or '-' (like MHS)"
            )
    return tuple(values)


def _checked_hosts(values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise ConfigError(f"portal hosts must be a list of host names; got {values!r}")
    for host in values:
        if not isinstance(host, str) or len(host) > 255 or _HOST.fullmatch(host) is None:
            raise ConfigError(
                f"portal host {host!r} must be a host name such as dichvucong.gov.vn, "
                "or *.gov.vn for a domain and all its subdomains"
            )
    return tuple(values)


DEFAULT_RECEIPT_RULES: Final = ReceiptRules()
"""The rules of a box that has not received configuration: MHS on any *.gov.vn host."""


# Symbologies


def _symbology(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name[:40].lower())


def is_two_d(symbology: str) -> bool:
    """True for matrix/stacked symbologies, whose text is trusted as read.

    An unknown name counts as 1-D: treating a symbol as trustworthy when it is not could let a
    misread pass silently, while the opposite only asks the clerk to look.
    """
    return _symbology(symbology) in TWO_D


# Postal tracking numbers (UPU S10)

_S10 = re.compile(r"[A-Z]{2}([0-9]{8})([0-9])[A-Z]{2}", re.ASCII)
_S10_WEIGHTS: Final = (8, 6, 4, 2, 3, 5, 9, 7)


def tracking_number(text: str) -> bool:
    """True for a UPU S10 item identifier whose check digit is right (EB123456789VN).

    Dossiers sent by post (channel 3) arrive with their envelope or label scanned too; the check
    digit keeps a random 13-character read from being taken for one.
    """
    if len(text) > 40:
        return False
    candidate = text.strip().replace(" ", "")
    if not candidate.isascii():
        return False
    found = _S10.fullmatch(candidate.upper())
    if found is None:
        return False
    total = sum(int(d) * w for d, w in zip(found.group(1), _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    check = {10: 0, 11: 5}.get(check, check)
    return int(found.group(2)) == check


# E-invoices (Circular 78/2021/TT-BTC, Article 4): the form digit (1-6), then the six-character
# series: C or K (with or without the tax authority's code), the year's last two digits, the
# kind of issuer (T, D, L, M, N, B, G, H) and two letters the seller chooses; then the number,
# up to eight digits.
_INVOICE = re.compile(r"[1-6][CK][0-9]{2}[TDLMNBGH][A-Z]{2}[-_/ ]?[0-9]{1,8}", re.ASCII)


def invoice_number(text: str) -> bool:
    """True for an e-invoice's series and number, as printed on its 1-D lookup code.

    Citizens bring invoices as evidence (fees, purchases); the code's shape, a digit, C or K,
    a year, an issuer letter and a number, is too specific for a misread receipt code to take.
    """
    return len(text) <= 24 and _INVOICE.fullmatch(text.strip().upper()) is not None


# Payment QR (EMVCo merchant-presented mode, VietQR/NAPAS)

_CRC_HEX = re.compile(r"[0-9A-Fa-f]{4}", re.ASCII)


def payment_payload(text: str) -> bool:
    """True for an EMVCo payload: "000201" first, "6304" + CRC-16/CCITT-FALSE last.

    The CRC covers everything before the four hex digits, tag "6304" included. binascii's
    crc_hqx with 0xFFFF as the start value is exactly CCITT-FALSE (poly 0x1021, no reflection).
    """
    payload = text.strip()
    if not 16 <= len(payload) <= 1024 or not payload.startswith("000201"):
        return False
    if payload[-8:-4] != "6304" or _CRC_HEX.fullmatch(payload[-4:]) is None:
        return False
    data = payload[:-4].encode("utf-8", "surrogatepass")
    return binascii.crc_hqx(data, 0xFFFF) == int(payload[-4:], 16)


# Citizen ID card QR


@dataclass(frozen=True)
class IdCard:
    """What the QR on a chip ID card says about its holder.

    Every personal field is left out of repr, so an IdCard that reaches a log or a traceback
    shows only its warnings.
    """

    number: str = field(repr=False)
    old_number: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    sex: str = field(repr=False)
    address: str = field(repr=False)
    issued: date | None = field(repr=False)
    warnings: tuple[str, ...] = ()


_CARD_DATE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{4})", re.ASCII)
_CARD_DATE_SEPARATED = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})", re.ASCII)
_ID_CARD_SHAPE = re.compile(r"(?:[0-9]{12}|[0-9]{9})[ \t]*\|", re.ASCII)
_SEXES: Final[dict[str, Sex]] = {
    "nam": "male",
    "nữ": "female",
    "nu": "female",
    "male": "male",
    "female": "female",
}
_WHITESPACE = re.compile(r"\s+")


def parse_id_card(text: str, *, today: date | None = None) -> IdCard | None:
    """Read a CCCD / căn cước QR, or None if text is not one; never raises.

    Layout: ``ID12|old ID9|full name|ddmmyyyy|sex|address|issue ddmmyyyy``. Variants seen on
    real cards: the old-ID field empty (no CMND), the issue date missing (six fields), and on
    căn cước cards issued from 1 July 2024 (Circular 16/2024/TT-BCA) extra trailing fields
    (a cancelled ID number, the parents' names): those are ignored, since they are other
    people's data and nothing here needs them. A 12-digit old number is kept (the 12-digit CMND
    of 2012-2016 exists); any other old number is dropped with a warning.

    Refused: a number that is not 12 digits, an empty name, a birth or issue date that is no
    real day. Disagreements with the number's own digits (province, century, sex; see
    edge.domain.validate_cccd) are warnings, not refusals: a country code stands where a
    province code would for births registered abroad, and the clerk decides. Future dates are
    only judged when today (the store's trusted date) is given.
    """
    try:
        return _parse_id_card(text, today)
    except Exception:  # a damaged card must never stop capture; the QR is then only content
        return None


def _parse_id_card(text: str, today: date | None) -> IdCard | None:
    if len(text) > MAX_SYMBOL_TEXT:
        return None
    fields = text.strip().strip("\x00").split("|")
    if len(fields) < 6:
        return None
    number = fields[0].strip()
    if len(number) != 12 or not (number.isascii() and number.isdigit()):
        return None
    birth = _card_date(fields[3])
    full_name = _clean(fields[2])
    if birth is None or not full_name:
        return None
    issued: date | None = None
    if len(fields) > 6 and fields[6].strip():
        issued = _card_date(fields[6])
        if issued is None:
            return None
    warnings: list[str] = []
    old_number = fields[1].strip()
    if old_number and not (
        len(old_number) in (9, 12) and old_number.isascii() and old_number.isdigit()
    ):
        warnings.append("old_number_invalid")
        old_number = ""
    sex = _clean(fields[4])
    holder_sex = _SEXES.get(sex.casefold())
    if holder_sex is None:
        warnings.append("sex_unknown")
    warnings += _cross_check(number, birth, holder_sex, today)
    if issued is not None:
        if issued < birth:
            warnings.append("issued_before_birth")
        if today is not None and issued > today:
            warnings.append("issued_in_future")
    return IdCard(
        number=number,
        old_number=old_number,
        full_name=full_name,
        birth_date=birth,
        sex=sex,
        address=_clean(fields[5]),
        issued=issued,
        warnings=tuple(warnings),
    )


def _card_date(text: str) -> date | None:
    value = text.strip()
    found = _CARD_DATE.fullmatch(value) or _CARD_DATE_SEPARATED.fullmatch(value)
    if found is None:
        return None
    day, month, year = (int(g) for g in found.groups())
    if not 1900 <= year <= 2399:  # the years a CCCD's century digit can express
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _clean(text: str) -> str:
    """NFC, control characters dropped, whitespace runs collapsed (Vietnamese text rules)."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _cross_check(number: str, birth: date, sex: Sex | None, today: date | None) -> list[str]:
    """Warnings from validate_cccd, which stops at the first problem; so each check runs alone.

    An unknown province code would stop it before the birth-year and sex checks, so those run
    on the number with a known province put in its place: the province digits say nothing
    about the rest.
    """
    warnings: list[str] = []
    probe = number
    try:
        validate_cccd(number)
    except CccdError as err:
        if err.reason != "province":
            return warnings
        warnings.append("unknown_province")
        probe = "001" + number[3:]
    try:
        validate_cccd(probe, birth, today=today)
    except CccdError as err:
        if err.reason == "birth_year":
            same_yy = number[4:6] == f"{birth.year % 100:02d}"
            warnings.append("century_mismatch" if same_yy else "birth_year_mismatch")
        elif err.reason == "future":
            warnings.append("future_birth")
    if sex is not None:
        try:
            validate_cccd(probe, sex=sex)
        except CccdError as err:
            if err.reason == "sex":
                warnings.append("sex_mismatch")
    return warnings


def _looks_like_id_card(text: str) -> bool:
    """An ID card QR, even one too damaged or odd to parse: it is sealed either way."""
    if parse_id_card(text) is not None:
        return True
    return _ID_CARD_SHAPE.match(text) is not None and text.count("|") >= 4


# URLs

_SCHEME = re.compile(r"https?://", re.ASCII | re.IGNORECASE)
_BARE_HOST = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}(?::[0-9]{1,5})?[/?#]", re.ASCII | re.IGNORECASE
)
_PERSONAL_PARAM_PARTS: Final = (
    "cccd", "cmnd", "cmt", "giayto", "dinhdanh", "cancuoc", "hochieu", "passport", "citizen",
    "identity", "nationalid", "personalid", "idcard", "idnumber", "dienthoai", "phone", "email",
    "hoten", "fullname", "ngaysinh", "birth",
)  # fmt: skip
_PERSONAL_PARAMS: Final = frozenset({"sgt", "sdt", "cmt", "dob", "ten", "name", "mst", "bhyt"})
_PERSONAL_NUMBER = re.compile(r"(?<![0-9])(?:[0-9]{12}|[0-9]{9}|0[0-9]{9})(?![0-9])", re.ASCII)
"""A CCCD (12 digits), a CMND (9) or a Vietnamese phone number (10, leading 0)."""


@dataclass(frozen=True)
class _Url:
    host: str
    path: str
    params: tuple[tuple[str, str], ...]
    decoded: str
    explicit: bool
    """The text had its scheme; "abc.de/x" without one may as well be a code with a slash."""


def _parse_url(text: str) -> _Url | None:
    """Split an http(s) URL; a scheme-less "host.tld/..." counts too (printed without it)."""
    explicit = _SCHEME.match(text) is not None
    if explicit:
        url = text
    elif _BARE_HOST.match(text):
        url = "http://" + text
    else:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        params = parse_qsl(parts.query, keep_blank_values=True)
        # single-page portals put the query after the fragment: /#/tra-cuu?MHS=...
        fragment = parts.fragment.split("?", 1)[-1]
        if "=" in fragment:
            params += parse_qsl(fragment, keep_blank_values=True)
    except ValueError:  # e.g. an unbalanced "[" where an IPv6 host would be
        return None
    if not host:
        return None
    return _Url(host, unquote(parts.path), tuple(params), unquote(text), explicit)


def _code_params(url: _Url, rules: ReceiptRules) -> tuple[bool, list[str]]:
    """Whether any code parameter is present, and its values in the order the rules give."""
    present = False
    values: list[str] = []
    for wanted in rules.url_params:
        wanted = wanted.lower()
        for name, value in url.params:
            if name.strip().lower() == wanted:
                present = True
                values.append(value)
    return present, values


def code_from_url(
    text: str, patterns: CodePatterns, rules: ReceiptRules = DEFAULT_RECEIPT_RULES
) -> str | None:
    """The dossier code a URL carries in a code parameter, on any host; None otherwise.

    Portal domains vary by province and move (the 2025 merger renamed many), so the host is not
    required here: a value the configured patterns accept is the authority.
    """
    try:
        if len(text) > MAX_SYMBOL_TEXT:
            return None
        url = _parse_url(text.strip())
        return _url_code(url, patterns, rules) if url is not None else None
    except Exception:  # never raise on a symbol's text
        return None


def _url_code(url: _Url, patterns: CodePatterns, rules: ReceiptRules) -> str | None:
    for value in _code_params(url, rules)[1]:
        code = patterns.match(value)
        if code is not None:
            return code
    return None


def _url_personal(url: _Url) -> bool:
    for name, _ in url.params:
        key = re.sub(r"[^a-z0-9]", "", name.lower())
        if key in _PERSONAL_PARAMS or any(part in key for part in _PERSONAL_PARAM_PARTS):
            return True
    return _PERSONAL_NUMBER.search(url.decoded) is not None


def _classify_url(url: _Url, patterns: CodePatterns, rules: ReceiptRules, linear: bool) -> Meaning:
    personal = _url_personal(url)
    code = _url_code(url, patterns, rules)
    if code is not None:
        return Meaning(Kind.DOSSIER_CODE, code, personal)
    present, _ = _code_params(url, rules)
    if rules.is_portal(url.host):
        # A portal URL that names a code parameter is a receipt even if the value is damaged
        # or empty; one whose code sits under another name or in the path is a receipt whose
        # parameter list is out of date. Either way a clerk must look rather than let the
        # page join the previous dossier.
        if present or _embeds_code(url.path, patterns):
            return Meaning(Kind.RECEIPT_LIKE, personal=personal)
        if any(patterns.match(value) for _, value in url.params):
            return Meaning(Kind.RECEIPT_LIKE, personal=personal)
    elif present and linear:
        # a 1-D read can be wrong yet checksum-valid (see classify)
        return Meaning(Kind.RECEIPT_LIKE, personal=personal)
    return Meaning(Kind.URL, personal=personal)


# Classification

_TOKEN_SEPARATORS = re.compile(r"[\s|;,=:&?/#<>\"'()\[\]{}*+]+")
_MAX_TOKENS: Final = 512


def _embeds_code(text: str, patterns: CodePatterns) -> bool:
    """True if a word of text is a dossier code ("Mã hồ sơ: 000.00.01.H29-240115-0001")."""
    for count, token in enumerate(_TOKEN_SEPARATORS.split(text)):
        if count >= _MAX_TOKENS:
            return False
        token = token.strip(".-")
        if token and len(token) <= MAX_CODE_LENGTH and patterns.match(token) is not None:
            return True
    return False


def _code_like(text: str) -> bool:
    """Text a dossier code could have been misread as: 10-40 printable ASCII, 6+ digits."""
    return (
        10 <= len(text) <= 40
        and all(" " <= c <= "~" for c in text)
        and sum(c.isdigit() for c in text) >= 6
    )


def _personal_text(text: str) -> bool:
    upper = text[:16].upper()
    if upper.startswith(("BEGIN:VCARD", "MECARD:")):
        return True
    return _PERSONAL_NUMBER.search(text) is not None


def classify(
    text: str,
    symbology: str,
    patterns: CodePatterns,
    rules: ReceiptRules = DEFAULT_RECEIPT_RULES,
) -> Meaning:
    """Decide what one symbol means for grouping; never raises.

    Order, most specific first: URLs (a code parameter, then the portal rules); content the
    box recognises (ID card, payment, tracking, e-invoice), which never opens a boundary whatever a
    pattern says; the configured dossier-code patterns; then the doubtful cases.

    Doubtful cases become RECEIPT_LIKE so a clerk decides:
    - a 1-D symbol (not a retail EAN/UPC/ISBN family) whose text is code-like: an
      under-sampled Code 128 can decode checksum-valid but wrong (HP6.2(.16-251111-3366 for
      H26.22.16-251111-3366), so a near-miss may be a receipt;
    - any text that holds a valid code among other words (a receipt QR such as
      "MHS: <code>; Hẹn trả: ...").
    A 2-D symbol's text is protected by error correction, so one that matches nothing is OTHER.

    If an unforeseen error still occurs, the symbol is treated as RECEIPT_LIKE and personal:
    a clerk looks and nothing is logged, which is safe if not convenient.
    """
    try:
        return _classify(text, symbology, patterns, rules)
    except Exception:
        return Meaning(Kind.RECEIPT_LIKE, personal=True)


def _classify(text: str, symbology: str, patterns: CodePatterns, rules: ReceiptRules) -> Meaning:
    if len(text) > MAX_SYMBOL_TEXT:
        return Meaning(Kind.OTHER, personal=True)
    value = text.strip().strip("\x00").strip()
    if not value:
        return Meaning(Kind.OTHER)
    name = _symbology(symbology)
    linear = name not in TWO_D
    url = _parse_url(value)
    url_personal = False
    if url is not None:
        meaning = _classify_url(url, patterns, rules, linear)
        if url.explicit or meaning.kind is not Kind.URL:
            return meaning
        url_personal = meaning.personal
    if _looks_like_id_card(value):
        return Meaning(Kind.CCCD, personal=True)
    if payment_payload(value):
        # the payee's account number and name: sensitive under Decree 13/2023/NĐ-CP
        return Meaning(Kind.PAYMENT, personal=True)
    if tracking_number(value):
        return Meaning(Kind.TRACKING)
    if invoice_number(value):
        return Meaning(Kind.INVOICE)
    code = patterns.match(value)
    if code is not None:
        return Meaning(Kind.DOSSIER_CODE, code)
    personal = url_personal or _personal_text(value)
    if _embeds_code(value, patterns):
        return Meaning(Kind.RECEIPT_LIKE, personal=personal)
    if linear and name not in RETAIL and _code_like(value):
        return Meaning(Kind.RECEIPT_LIKE, personal=personal)
    return Meaning(Kind.OTHER, personal=personal)
