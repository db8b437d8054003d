"""What a symbol on a scanned page means: only receipts open dossiers, content never does."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge.capture.barcodes import LINEAR
from edge.domain import CCCD_PROVINCES, CodePatterns
from edge.settings import Settings
from edge.symbols import (
    TWO_D,
    IdCard,
    Kind,
    Meaning,
    ReceiptRules,
    _classify,
    classify,
    code_from_url,
    invoice_number,
    is_two_d,
    parse_id_card,
    payment_payload,
    tracking_number,
)

PATTERNS = CodePatterns.default()
CODES = (
    "000.00.01.H29-240115-0001",
    "38.98.H29-210519-0013",
    "G09.20-20260609-0092637",
    "H26.22.16-251111-3366",
)
MISREAD = "HP6.2(.16-251111-3366"  # zxing-cpp's checksum-valid read of H26.22.16-251111-3366
SYMBOLOGIES = ("qr", "datamatrix", "aztec", "pdf417", "code128", "code39", "itf", "ean13", "?")
CARD = "001090123456|123456789|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, TP. HCM|15042021"
# public VietQR samples (api.vietqr.vn protocol example; a generator's test vector)
VIETQR = (
    "00020101021238570010A000000727012700069704220113VQRQACYEK56060208QRIBFTTA5303704540468685802"
    "VN62300107NPS68690815Test VA Account6304BE01",
    "00020101021238530010A0000007270123000697042501091234567890208QRIBFTTA530370454071000000"
    "5802VN62150811V1TH137584263043158",
)
TRACKING = ("RA123456785GB", "AA473124829GB", "EB123456785VN", "EE000000005VN")
INVOICES = ("1C25TBA-7257340", "1K23TYY-00000001", "2C24MAB 123", "1C26TPY0600331")
PLAIN_URLS = ("https://vnexpress.net/", "http://example.com/a?b=c", "https://dichvucong.gov.vn/p")

# -- generators ---------------------------------------------------------------------------

_group = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=3)


@st.composite
def dossier_codes(draw: st.DrawFn) -> str:
    """Codes the default pattern accepts: agency groups, yymmdd or yyyymmdd, sequence."""
    agency = ".".join(draw(st.lists(_group, min_size=2, max_size=5)))
    if draw(st.booleans()):
        day = draw(st.dates(date(2000, 1, 1), date(2099, 12, 31)))
        received = day.strftime("%y%m%d")
    else:
        day = draw(st.dates(date(1990, 1, 1), date(2099, 12, 31)))
        received = day.strftime("%Y%m%d")
    seq = draw(st.text("0123456789", min_size=4, max_size=7))
    return f"{agency}-{received}-{seq}"


_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_label = st.one_of(_alnum, st.tuples(_alnum, _alnum).map("-".join))
hosts = st.lists(_label, min_size=1, max_size=3).map(".".join).map(lambda h: h + ".vn")
_syllables = ("Nguyễn", "Trần", "Lê", "Phạm", "Thị", "Văn", "Đức", "Hương", "Ngọc", "Ánh", "Hải")
names = st.lists(st.sampled_from(_syllables), min_size=2, max_size=5).map(" ".join)
addresses = st.lists(
    st.sampled_from(("Thôn Đông", "xã Quảng Phú", "Hà Nội", "Số 12", "Đắk Lắk", "Huế")),
    min_size=1,
    max_size=4,
).map(", ".join)


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A well-formed chip-card QR text and the fields it should parse to."""
    birth = draw(st.dates(date(1920, 1, 1), date(2015, 12, 31)))
    male = draw(st.booleans())
    century = (birth.year - 1900) // 100 * 2 + (0 if male else 1)
    province = draw(st.sampled_from(sorted(CCCD_PROVINCES)))
    serial = draw(st.text("0123456789", min_size=6, max_size=6))
    number = f"{province}{century}{birth.year % 100:02d}{serial}"
    old = draw(st.sampled_from(("", "123456789", "012345678")))
    issued = draw(st.none() | st.dates(date(2021, 1, 1), date(2030, 12, 31)))
    assume(issued is None or issued >= birth)
    name, address = draw(names), draw(addresses)
    sex = "Nam" if male else "Nữ"
    fields = [number, old, name, birth.strftime("%d%m%Y"), sex, address]
    if issued is not None:
        fields.append(issued.strftime("%d%m%Y"))
    if draw(st.booleans()):  # 2024 căn cước: cancelled ID, parents' names after the 7 fields
        if issued is None:
            fields.append("")
        fields += ["", "Nguyễn Văn Cha", "Trần Thị Mẹ"]
    expected = {
        "number": number,
        "old_number": old,
        "full_name": name,
        "birth_date": birth,
        "sex": sex,
        "address": address,
        "issued": issued,
        "warnings": (),
    }
    return "|".join(fields), expected


def s10(prefix: str, serial: str, country: str) -> str:
    total = sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = {10: 0, 11: 5}.get(11 - total % 11, 11 - total % 11)
    return f"{prefix}{serial}{check}{country}"


# -- dossier codes ------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("symbology", ["qr", "datamatrix", "code128", "code39"])
def test_a_receipt_code_is_a_dossier_code_in_any_symbology(code: str, symbology: str) -> None:
    assert PATTERNS.match(code) == code
    assert classify(code, symbology, PATTERNS) == Meaning(Kind.DOSSIER_CODE, code)
    assert classify(f" {code.lower()}\r\n", symbology, PATTERNS).code == code


def test_the_misread_code_128_asks_the_clerk_but_the_same_text_in_a_qr_does_not() -> None:
    assert classify(MISREAD, "code128", PATTERNS).kind is Kind.RECEIPT_LIKE
    assert classify(MISREAD, "code39", PATTERNS).kind is Kind.RECEIPT_LIKE
    assert classify(MISREAD, "qr", PATTERNS).kind is Kind.OTHER
    assert classify(MISREAD, "datamatrix", PATTERNS).kind is Kind.OTHER


def test_an_unknown_symbology_is_treated_as_1d_so_a_near_miss_is_reviewed() -> None:
    assert classify(MISREAD, "SomeNewFormat", PATTERNS).kind is Kind.RECEIPT_LIKE
    assert classify(MISREAD, "QRCode", PATTERNS).kind is Kind.OTHER  # names are normalised


@pytest.mark.parametrize(
    ("text", "symbology"),
    [
        ("8934563138165", "ean13"),  # a product on the desk
        ("9786040000000", "isbn"),
        ("ORDER 12345", "code128"),  # too few digits to be a code
        ("A-1", "code39"),
        ("12345678901234567890123456789012345678901", "code128"),  # longer than a code
    ],
)
def test_retail_and_short_1d_symbols_are_content(text: str, symbology: str) -> None:
    assert classify(text, symbology, PATTERNS).kind is Kind.OTHER


def test_every_linear_name_capture_reports_is_treated_as_1d() -> None:
    assert not any(is_two_d(name) for name in LINEAR)
    assert all(is_two_d(name) for name in ("qr", "datamatrix", "aztec", "pdf417", "microqr"))
    assert LINEAR.isdisjoint(TWO_D)


def test_a_code_among_other_words_in_a_qr_is_reviewed_not_trusted_or_ignored() -> None:
    text = "Mã hồ sơ: 000.00.01.H29-240115-0001; Ngày hẹn trả: 20/01/2024"
    assert classify(text, "qr", PATTERNS) == Meaning(Kind.RECEIPT_LIKE)


# -- URLs ---------------------------------------------------------------------------------


def test_a_portal_lookup_url_gives_its_code_and_is_personal_when_it_names_the_citizen() -> None:
    url = "https://dichvucong.gov.vn/p/tra-cuu?SGT=001090123456&MHS=000.00.01.H29-240115-0001"
    assert classify(url, "qr", PATTERNS) == Meaning(
        Kind.DOSSIER_CODE, "000.00.01.H29-240115-0001", personal=True
    )
    # QR encoders upper-case URLs for the denser alphanumeric mode
    upper = "HTTPS://DVC.HANOI.GOV.VN/TRA-CUU?MHS=38.98.H29-210519-0013"
    assert classify(upper, "qr", PATTERNS) == Meaning(Kind.DOSSIER_CODE, "38.98.H29-210519-0013")


@given(
    code=dossier_codes(),
    host=hosts,
    name=st.sampled_from(("MHS", "mhs", "Mhs")),
    other=st.dictionaries(_label, _label, max_size=3),
)
def test_any_url_with_a_valid_code_under_mhs_yields_that_code(
    code: str, host: str, name: str, other: dict[str, str]
) -> None:
    assume(PATTERNS.match(code) == code)
    pairs = [f"{k}={v}" for k, v in other.items() if k.lower() != "mhs"]
    query = "&".join([*pairs, f"{name}={quote(code)}"])
    url = f"https://{host}/tra-cuu/ho-so?{query}"
    meaning = classify(url, "qr", PATTERNS)
    assert meaning.kind is Kind.DOSSIER_CODE
    assert meaning.code == code
    assert code_from_url(url, PATTERNS) == code


def test_a_portal_url_whose_code_is_damaged_or_empty_is_reviewed() -> None:
    for value in ("38.98.H29-210599-0013", "", "xyz"):  # 99 May: no such day
        url = f"https://dichvucong.gov.vn/tra-cuu?MHS={value}"
        assert classify(url, "qr", PATTERNS).kind is Kind.RECEIPT_LIKE, value
        assert code_from_url(url, PATTERNS) is None


def test_a_portal_url_with_the_code_under_an_unconfigured_name_is_reviewed() -> None:
    url = "https://motcua.hanoi.gov.vn/tra-cuu?maHoSo=000.00.01.H29-240115-0001"
    assert classify(url, "qr", PATTERNS).kind is Kind.RECEIPT_LIKE
    rules = ReceiptRules(url_params=("MHS", "maHoSo"))
    assert classify(url, "qr", PATTERNS, rules).code == "000.00.01.H29-240115-0001"


def test_a_url_printed_without_its_scheme_still_carries_its_code() -> None:
    url = "dichvucong.gov.vn/tra-cuu?MHS=G09.20-20260609-0092637"
    assert classify(url, "qr", PATTERNS).code == "G09.20-20260609-0092637"
    # ...but a region's code with a slash in it is not taken for a web address
    slashed = CodePatterns.from_config([r"HN\.UBND/(?P<date>[0-9]{8})-[0-9]{4}"])
    assert classify("HN.UBND/20240115-0001", "code128", slashed).kind is Kind.DOSSIER_CODE
    assert classify("HN.UBND/20240115-00O1", "code128", slashed).kind is Kind.RECEIPT_LIKE


def test_a_portal_url_without_a_code_and_other_hosts_without_a_valid_code_are_urls() -> None:
    assert classify("https://dichvucong.gov.vn/p/home", "qr", PATTERNS) == Meaning(Kind.URL)
    assert classify("https://shop.example/?MHS=abc", "qr", PATTERNS) == Meaning(Kind.URL)


def test_configured_hosts_are_exact_unless_starred() -> None:
    rules = ReceiptRules(portal_hosts=("dvc.hanoi.gov.vn", "*.portal.vn"))
    assert rules.is_portal("DVC.Hanoi.gov.vn.")
    assert not rules.is_portal("x.dvc.hanoi.gov.vn")
    assert rules.is_portal("portal.vn") and rules.is_portal("a.b.portal.vn")
    assert not rules.is_portal("evilportal.vn")
    bad = "https://x.dvc.hanoi.gov.vn/?MHS=bad"
    assert classify(bad, "qr", PATTERNS, rules).kind is Kind.URL
    assert classify(bad, "qr", PATTERNS).kind is Kind.RECEIPT_LIKE  # default *.gov.vn


@pytest.mark.parametrize(
    "query",
    ["SGT=012345678", "cccd=x", "soGiayTo=x", "SOGIAYTO=x", "so_cmnd=x", "ref=001090123456"],
)
def test_a_url_that_names_a_citizen_is_personal(query: str) -> None:
    meaning = classify(f"https://tracuu.example.vn/?{query}", "qr", PATTERNS)
    assert meaning == Meaning(Kind.URL, personal=True)


def test_a_plain_url_is_not_personal() -> None:
    assert not classify("https://vnexpress.net/thoi-su-123.html", "qr", PATTERNS).personal


# -- content: ID cards, tracking, payments ------------------------------------------------


@pytest.mark.parametrize("symbology", SYMBOLOGIES)
@pytest.mark.parametrize("text", [CARD, *TRACKING, *VIETQR, *PLAIN_URLS, *INVOICES])
def test_content_symbols_never_open_a_dossier(text: str, symbology: str) -> None:
    assert classify(text, symbology, PATTERNS).kind not in (Kind.DOSSIER_CODE, Kind.RECEIPT_LIKE)


def test_content_kinds_and_what_must_be_sealed() -> None:
    assert classify(CARD, "qr", PATTERNS) == Meaning(Kind.CCCD, personal=True)
    assert classify(VIETQR[0], "qr", PATTERNS) == Meaning(Kind.PAYMENT, personal=True)
    assert classify(TRACKING[0], "code128", PATTERNS) == Meaning(Kind.TRACKING)
    assert classify(INVOICES[0], "code128", PATTERNS) == Meaning(Kind.INVOICE)
    # a card QR too odd to parse is still an ID card, and still sealed
    odd = "001090123456|123456789|Nguyễn Văn An|31021990|Nam|Hà Nội|15042021"
    assert parse_id_card(odd) is None
    assert classify(odd, "qr", PATTERNS) == Meaning(Kind.CCCD, personal=True)


@given(
    prefix=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    serial=st.text("0123456789", min_size=8, max_size=8),
    country=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    wrong=st.integers(1, 9),
    symbology=st.sampled_from(SYMBOLOGIES),
)
def test_s10_numbers_are_tracking_only_with_the_right_check_digit(
    prefix: str, serial: str, country: str, wrong: int, symbology: str
) -> None:
    good = s10(prefix, serial, country)
    assert tracking_number(good)
    assert classify(good, symbology, PATTERNS).kind is Kind.TRACKING
    check = (int(good[10]) + wrong) % 10
    bad = f"{good[:10]}{check}{good[11:]}"
    assert not tracking_number(bad)
    assert classify(bad, symbology, PATTERNS).kind is not Kind.TRACKING


@pytest.mark.parametrize(
    "text",
    # a form digit out of 1-6, an issuer letter Circular 78 does not define, a two-digit series,
    # a number too long, and dossier codes: still doubtful 1-D reads, so a clerk looks
    [
        *("7C25TBA-7257340", "1C25XBA-7257340", "1C25TB-7257340", "1C25TBA-123456789"),
        *("H26.22.16-251111-3366", "HP6.2(.16-251111-3366"),
    ],
)
def test_only_the_e_invoice_shape_is_an_invoice(text: str) -> None:
    assert not invoice_number(text)
    assert classify(text, "code128", PATTERNS).kind is not Kind.INVOICE


def test_payment_payloads_need_their_crc() -> None:
    assert all(payment_payload(p) for p in VIETQR)
    assert payment_payload(VIETQR[0][:-4] + VIETQR[0][-4:].lower())
    corrupt = VIETQR[0].replace("Test VA", "Test VB")
    assert not payment_payload(corrupt)
    assert classify(corrupt, "qr", PATTERNS).kind is Kind.OTHER
    assert not payment_payload("0002016304" + "29B1")  # too short to be a payload


# -- the ID card QR -----------------------------------------------------------------------


def test_a_chip_card_qr_is_read_field_by_field() -> None:
    card = parse_id_card(CARD)
    assert card == IdCard(
        number="001090123456",
        old_number="123456789",
        full_name="Nguyễn Văn An",
        birth_date=date(1990, 1, 1),
        sex="Nam",
        address="Phường Bến Nghé, Quận 1, TP. HCM",
        issued=date(2021, 4, 15),
        warnings=(),
    )
    assert "001090123456" not in repr(card) and "Nguyễn" not in repr(card)


@given(cards())
def test_generated_card_qr_texts_round_trip(case: tuple[str, dict[str, object]]) -> None:
    text, expected = case
    card = parse_id_card(text)
    assert card is not None
    assert {name: getattr(card, name) for name in expected} == expected


def test_decomposed_vietnamese_is_normalised_to_nfc() -> None:
    nfd = unicodedata.normalize("NFD", CARD)
    assert nfd != CARD
    card = parse_id_card(nfd)
    assert card is not None
    assert card.full_name == "Nguyễn Văn An" and unicodedata.is_normalized("NFC", card.full_name)
    assert card.address == "Phường Bến Nghé, Quận 1, TP. HCM"
    female = parse_id_card(
        unicodedata.normalize("NFD", "001190123456||Trần Thị Hương|01011990|Nữ|Huế|")
    )
    assert female is not None and female.sex == "Nữ" and female.warnings == ()


@pytest.mark.parametrize(
    ("text", "issued"),
    [
        ("001090123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15042021", date(2021, 4, 15)),
        ("001090123456|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội", None),  # no issue date
        ("001090123456|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội||", None),
        (  # 2024 căn cước: cancelled ID and parents after the seven fields
            "001090123456|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|02072024|"
            "001090654321|Nguyễn Văn Bình|Trần Thị Cúc|",
            date(2024, 7, 2),
        ),
        ("001090123456||Nguyễn Văn An|01/01/1990|Nam|Hà Nội|15/04/2021\r\n", date(2021, 4, 15)),
    ],
)
def test_known_layouts_are_accepted(text: str, issued: date | None) -> None:
    card = parse_id_card(text)
    assert card is not None
    assert (card.number, card.birth_date, card.issued) == ("001090123456", date(1990, 1, 1), issued)


@pytest.mark.parametrize(
    "text",
    [
        "00109012345|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021",  # 11 digits
        "0010901234567|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021",
        "００１０９０１２３４５６|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021",
        "001090123456|123456789|Nguyễn Văn An|30021990|Nam|Hà Nội|15042021",  # 30 February
        "001090123456|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|15132021",  # month 13
        "001090123456|123456789||01011990|Nam|Hà Nội|15042021",  # no name
        "001090123456|123456789|Nguyễn Văn An|01011990|Nam",  # too few fields
        "https://dichvucong.gov.vn/?MHS=000.00.01.H29-240115-0001",
        "",
    ],
)
def test_what_is_not_a_card_is_refused(text: str) -> None:
    assert parse_id_card(text) is None


@pytest.mark.parametrize(
    ("text", "warnings"),
    [  # a country code where a province would be: births registered abroad
        ("840090123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15042021", ("unknown_province",)),
        ("001290123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15042021", ("century_mismatch",)),
        ("001085123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15042021", ("birth_year_mismatch",)),
        ("001090123456||Nguyễn Văn An|01011990|Nữ|Hà Nội|15042021", ("sex_mismatch",)),
        ("001090123456||Nguyễn Văn An|01011990|?|Hà Nội|15042021", ("sex_unknown",)),
        ("001090123456|12AB|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021", ("old_number_invalid",)),
        ("001090123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15041989", ("issued_before_birth",)),
        (
            "840290123456||Nguyễn Văn An|01011990|Nữ|Hà Nội|15042021",
            ("unknown_province", "century_mismatch", "sex_mismatch"),
        ),
    ],
)
def test_disagreements_are_warnings_for_the_clerk(text: str, warnings: tuple[str, ...]) -> None:
    card = parse_id_card(text)
    assert card is not None
    assert card.warnings == warnings


def test_future_dates_are_judged_only_against_a_trusted_today() -> None:
    text = "001090123456||Nguyễn Văn An|01011990|Nam|Hà Nội|15042031"
    undated = parse_id_card(text)
    assert undated is not None and undated.warnings == ()
    card = parse_id_card(text, today=date(2026, 1, 1))
    assert card is not None and card.warnings == ("issued_in_future",)


# -- hostile input ------------------------------------------------------------------------


@given(text=st.text(), symbology=st.sampled_from(SYMBOLOGIES) | st.text(max_size=12))
def test_arbitrary_text_never_raises(text: str, symbology: str) -> None:
    # the internal function has no safety net: it must not need classify's
    assert isinstance(_classify(text, symbology, PATTERNS, ReceiptRules()), Meaning)
    assert isinstance(classify(text, symbology, PATTERNS), Meaning)
    parse_id_card(text)
    code_from_url(text, PATTERNS)
    tracking_number(text)
    payment_payload(text)


@settings(max_examples=50)
@given(
    st.lists(
        st.text(max_size=20) | st.sampled_from(("001090123456", "01011990", "Nữ", "http://")),
        min_size=5,
        max_size=12,
    ).map("|".join)
)
def test_card_like_text_never_raises(text: str) -> None:
    parse_id_card(text)
    assert isinstance(_classify(text, "qr", PATTERNS, ReceiptRules()), Meaning)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 5_000_000,
        "https://a.gov.vn/?" + "MHS=1&" * 200_000,
        CARD + "|" * 1_000_000,
        "\x00\x01\x1b[31m\u202e\ud800\uffff",
        "http://[::1/?MHS=000.00.01.H29-240115-0001",
        "000201" + "\ud800" * 20 + "63041234",
    ],
)
def test_huge_and_broken_text_is_handled_quickly(text: str) -> None:
    for symbology in ("qr", "code128"):
        meaning = classify(text, symbology, PATTERNS)
        assert meaning.kind is not Kind.DOSSIER_CODE
    assert parse_id_card(text) is None


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "barcodes-real"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared barcode corpus not present")
def test_real_world_symbol_texts_are_never_taken_for_dossier_codes() -> None:
    texts = [p.read_text("utf-8", "replace") for p in sorted(CORPUS.glob("*/*.txt"))]
    assert texts
    for text in texts:
        for symbology in ("qr", "code128"):
            assert classify(text, symbology, PATTERNS).kind is not Kind.DOSSIER_CODE


# -- settings -----------------------------------------------------------------------------


def test_settings_default_to_mhs_on_gov_vn_and_can_be_configured() -> None:
    assert Settings().receipt_rules() == ReceiptRules(("MHS",), ("*.gov.vn",))
    configured = Settings.from_mapping(
        {"code_url_params": ["maHoSo", "MHS"], "portal_hosts": "dichvucong.hanoi.gov.vn"}
    )
    rules = configured.receipt_rules()
    assert rules == ReceiptRules(("maHoSo", "MHS"), ("dichvucong.hanoi.gov.vn",))
    assert ReceiptRules.from_settings(configured) == rules
    assert Settings.from_mapping(configured.as_dict()) == configured


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"code_url_params": ["MHS", "ma ho so"]}, "code URL parameter 'ma ho so'"),
        ({"code_url_params": ["x" * 41]}, "1-40 letters"),
        ({"portal_hosts": ["https://dichvucong.gov.vn"]}, "portal host 'https://"),
        ({"portal_hosts": ["*."]}, "*.gov.vn for a domain"),
        ({"portal_hosts": ["a..vn"]}, "must be a host name"),
    ],
)
def test_bad_receipt_settings_say_what_to_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        Settings.from_mapping(values)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError):
        Settings().with_changes(**values)
