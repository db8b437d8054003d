"""Domain rules: dossier and procedure codes, CCCD numbers, portal statuses and times."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edge.domain import (
    CCCD_PROVINCES,
    CHANNEL_LABELS,
    DEFAULT_CODE_PATTERNS,
    PORTAL_STATUS_LABELS,
    PORTAL_TZ,
    CccdError,
    CccdInfo,
    Channel,
    CodePatterns,
    PortalStatus,
    format_portal_time,
    is_procedure_code,
    parse_portal_time,
    received_date,
    validate_cccd,
)

PATTERNS = CodePatterns.default()

# Dossier codes

EXAMPLES = {
    "000.00.01.H29-240115-0001": date(2024, 1, 15),
    "38.98.H29-210519-0013": date(2021, 5, 19),
    "H26.22.16-250226-0001": date(2025, 2, 26),
    "G09.20-20260609-0092637": date(2026, 6, 9),
}


@pytest.mark.parametrize(("code", "day"), EXAMPLES.items())
def test_default_patterns_accept_examples(code: str, day: date) -> None:
    assert PATTERNS.match(code) == code
    assert PATTERNS.received_date(code) == day
    assert received_date(code) == day


def test_match_normalises() -> None:
    assert PATTERNS.match("  g09.20-20260609-0092637\r\n") == "G09.20-20260609-0092637"


@pytest.mark.parametrize(
    "text",
    [
        "000.00.01.H29-240230-0001",
        "000.00.01.H29-241301-0001",
        "000.00.01.H29-240100-0001",
        "G09.20-20250229-0092637",
        "000.00.01.H29-240115-001",
        "000.00.01.H29-240115-00000001",
        "H29-240115-0001",
        "A.00.01.H29-240115-0001",
        "1.22.33.44.55.66-240115-0001",
        "000.00.01.H29-2401150-0001",
        "000.00.01.H29 240115 0001",
        "000.00.01.H29-٢٤٠١١٥-0001",
        "1.005129",
        "",
        "x" * 10_000,
    ],
)
def test_default_patterns_reject(text: str) -> None:
    assert PATTERNS.match(text) is None
    assert received_date(text) is None


def test_leap_day_is_a_real_date() -> None:
    assert received_date("G09.20-20240229-0092637") == date(2024, 2, 29)
    assert received_date("38.98.H29-240229-0013") == date(2024, 2, 29)


group = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=3)
agencies = st.lists(group, min_size=2, max_size=5).map(".".join)
sequences = st.integers(4, 7).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
)
short_dates = st.dates(date(2000, 1, 1), date(2099, 12, 31))
long_dates = st.dates(date(1000, 1, 1), date(9999, 12, 31))


@given(
    agencies,
    st.one_of(short_dates.map(lambda d: (d, 6)), long_dates.map(lambda d: (d, 8))),
    sequences,
)
def test_generated_codes_match_and_round_trip(
    agency: str, dated: tuple[date, int], seq: str
) -> None:
    day, width = dated
    stamp = day.strftime("%y%m%d") if width == 6 else f"{day.year:04d}{day:%m%d}"
    code = f"{agency}-{stamp}-{seq}"
    assert PATTERNS.match(code) == code
    assert PATTERNS.match(f" {code.lower()} ") == code
    assert PATTERNS.received_date(code) == day
    assert PATTERNS.match(PATTERNS.match(code) or "") == code


@given(agencies, st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), sequences)
def test_impossible_dates_are_rejected(agency: str, yy: int, mm: int, dd: int, seq: str) -> None:
    try:
        date(2000 + yy, mm, dd)
    except ValueError:
        assert PATTERNS.match(f"{agency}-{yy:02d}{mm:02d}{dd:02d}-{seq}") is None
    else:
        assume(False)


@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    found = PATTERNS.match(text)
    assert found is None or (found == text.strip().upper() and received_date(found) is not None)


@given(st.from_regex(DEFAULT_CODE_PATTERNS[0], fullmatch=True))
def test_pattern_shaped_text_matches_iff_date_is_real(text: str) -> None:
    found = PATTERNS.match(text)
    assert (found is not None) == (received_date(text) is not None)


def test_configured_patterns() -> None:
    patterns = CodePatterns.from_config([r"HS(?P<date>[0-9]{8})(?P<seq>[0-9]{5})"])
    assert patterns.match("hs2024011500001") == "HS2024011500001"
    assert patterns.received_date("HS2024011500001") == date(2024, 1, 15)
    assert patterns.match("HS2024023000001") is None
    assert patterns.match("000.00.01.H29-240115-0001") is None
    assert received_date("HS2024011500001") is None
    assert received_date("HS2024011500001", patterns) == date(2024, 1, 15)
    assert patterns.sources[0] == r"HS(?P<date>[0-9]{8})(?P<seq>[0-9]{5})"


def test_configured_patterns_use_ascii_digits() -> None:
    patterns = CodePatterns.from_config([r"HS(?P<date>\d{8})"])
    assert patterns.match("HS20240115") == "HS20240115"
    assert patterns.match("HS２０２４０１１５") is None


def test_a_pattern_is_tried_after_another_fails_on_date() -> None:
    patterns = CodePatterns.from_config([r"(?P<date>[0-9]{6})[0-9]{2}", r"(?P<date>[0-9]{8})"])
    assert patterns.received_date("20240115") == date(2024, 1, 15)


@pytest.mark.parametrize(
    ("sources", "fragment"),
    [
        (["(?P<date>[0-9]{6}"], "'(?P<date>[0-9]{6}'"),
        ([r"[A-Z]+-[0-9]{6}"], "no (?P<date>...) group"),
        ([], "no dossier-code patterns"),
        ("(?P<date>[0-9]{6})", "not one string"),
        ([42], "must be a string"),
    ],
)
def test_bad_config_is_refused_with_a_one_line_message(sources: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        CodePatterns.from_config(sources)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_bad_pattern_named_among_good_ones() -> None:
    with pytest.raises(ValueError, match=r"\*bad"):
        CodePatterns.from_config([DEFAULT_CODE_PATTERNS[0], "*bad(?P<date>)"])


# Procedure codes


@pytest.mark.parametrize(
    "code", ["1.005129", "2.001218", "1.000948.H38", "1.004227.000.00.00.H12", " 2.001218 "]
)
def test_procedure_codes(code: str) -> None:
    assert is_procedure_code(code)


@pytest.mark.parametrize(
    "code", ["", "1005129", "1.05129", "1.0051290", "0.005129", "1.005129.", "A.005129", "1.00512٩"]
)
def test_not_procedure_codes(code: str) -> None:
    assert not is_procedure_code(code)


@given(st.text(max_size=50))
def test_procedure_code_never_crashes(text: str) -> None:
    assert isinstance(is_procedure_code(text), bool)


# CCCD

CENTURY_BASES = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 2300}
FAR_FUTURE = date(2400, 1, 1)


def make_cccd(province: str, year: int, sex: str, serial: int) -> str:
    digit = (year - 1900) // 100 * 2 + (1 if sex == "female" else 0)
    return f"{province}{digit}{year % 100:02d}{serial:06d}"


provinces = st.sampled_from(sorted(CCCD_PROVINCES))
years = st.integers(1900, 2399)
sexes = st.sampled_from(["male", "female"])
serials = st.integers(0, 999_999)


def test_cccd_example() -> None:
    info = validate_cccd("001 0 85 012345", date(1985, 3, 2), "male", today=date(2025, 1, 1))
    assert info == CccdInfo("001", "Hà Nội", 1985, "male", "001085012345")
    assert "001085012345" not in repr(info)
    info = validate_cccd("079.303.000.001")
    assert (info.province_name, info.birth_year, info.sex) == ("Hồ Chí Minh", 2003, "female")


def test_cccd_province_table() -> None:
    assert len(CCCD_PROVINCES) == 63
    assert all(len(code) == 3 and code.isdigit() for code in CCCD_PROVINCES)
    assert all(unicodedata.is_normalized("NFC", name) for name in CCCD_PROVINCES.values())
    assert CCCD_PROVINCES["046"] == "Thừa Thiên Huế"
    assert "003" not in CCCD_PROVINCES
    assert max(CCCD_PROVINCES) == "096"


@given(provinces, years, sexes, serials)
def test_generated_cccd_validates_and_round_trips(
    province: str, year: int, sex: str, serial: int
) -> None:
    number = make_cccd(province, year, sex, serial)
    info = validate_cccd(number, year, sex, today=FAR_FUTURE)  # type: ignore[arg-type]
    assert info.province_code == province
    assert info.province_name == CCCD_PROVINCES[province]
    assert info.birth_year == year
    assert info.sex == sex
    assert info.number == number
    spaced = f"{number[:3]} {number[3]} {number[4:6]}.{number[6:]}"
    assert validate_cccd(spaced, date(year, 6, 1)) == info


@given(provinces, years, sexes, serials, st.integers(0, 9))
def test_century_digit_change_contradicting_birth_year_is_rejected(
    province: str, year: int, sex: str, serial: int, new_digit: int
) -> None:
    number = make_cccd(province, year, sex, serial)
    assume(CENTURY_BASES[new_digit // 2] != year - year % 100)
    mutated = number[:3] + str(new_digit) + number[4:]
    with pytest.raises(CccdError) as info:
        validate_cccd(mutated, year)
    assert info.value.reason == "birth_year"


@given(provinces, years, sexes, serials)
def test_sex_digit_change_is_rejected_when_sex_is_known(
    province: str, year: int, sex: str, serial: int
) -> None:
    number = make_cccd(province, year, sex, serial)
    flipped = number[:3] + str(int(number[3]) ^ 1) + number[4:]
    with pytest.raises(CccdError) as info:
        validate_cccd(flipped, year, sex)  # type: ignore[arg-type]
    assert info.value.reason == "sex"


@pytest.mark.parametrize(
    ("number", "kwargs", "reason", "message"),
    [
        ("00108501234", {}, "length", "CCCD must be 12 digits; got 11"),
        ("0010850123456", {}, "length", "CCCD must be 12 digits; got 13"),
        ("", {}, "length", "CCCD must be 12 digits; got 0"),
        ("00108501234X", {}, "digits", "only digits"),
        ("003085012345", {}, "province", "003"),
        ("097085012345", {}, "province", "097"),
        ("001085012345", {"birth_date": 1986}, "birth_year", "1985"),
        ("001085012345", {"birth_date": date(1885, 1, 1)}, "birth_year", "1885"),
        ("001185012345", {"sex": "male"}, "sex", "female"),
        ("001630012345", {"today": date(2025, 1, 1)}, "future", "2230"),
        ("001225012345", {"today": date(2024, 12, 31)}, "future", "2025"),
        (
            "001225012345",
            {"birth_date": date(2025, 6, 1), "today": date(2025, 5, 1)},
            "future",
            "2025-06-01",
        ),
    ],
)
def test_cccd_errors(number: str, kwargs: dict[str, object], reason: str, message: str) -> None:
    with pytest.raises(CccdError) as info:
        validate_cccd(number, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_cccd_error_messages_do_not_leak_the_number() -> None:
    with pytest.raises(CccdError) as info:
        validate_cccd("001085012345", 1990)
    assert "012345" not in str(info.value)


def test_cccd_accepts_full_width_digits_and_datetime() -> None:
    info = validate_cccd(
        "００１０８５０１２３４５", datetime(1985, 1, 1, 8), today=date(2025, 1, 1)
    )
    assert info.number == "001085012345"


def test_cccd_born_today_is_not_future() -> None:
    assert (
        validate_cccd("001225012345", date(2025, 5, 1), today=date(2025, 5, 1)).birth_year == 2025
    )


@given(st.text(max_size=30), st.one_of(st.none(), st.integers(1800, 2400)))
def test_cccd_random_input_raises_only_cccd_error(text: str, year: int | None) -> None:
    try:
        info = validate_cccd(text, year, today=date(2025, 1, 1))
    except CccdError as err:
        assert err.reason in {"length", "digits", "province", "birth_year", "sex", "future"}
    else:
        assert len(info.number) == 12


# Portal statuses, channels and times


def test_status_and_channel_labels() -> None:
    assert [int(s) for s in PortalStatus] == list(range(1, 11))
    assert set(PORTAL_STATUS_LABELS) == set(PortalStatus)
    assert PORTAL_STATUS_LABELS[PortalStatus(5)] == "Yêu cầu bổ sung giấy tờ"
    assert PORTAL_STATUS_LABELS[PortalStatus.DA_TRA_KET_QUA] == "Đã trả kết quả"
    assert [int(c) for c in Channel] == [1, 2, 3]
    assert CHANNEL_LABELS[Channel(3)] == "qua bưu chính công ích"
    labels = [*PORTAL_STATUS_LABELS.values(), *CHANNEL_LABELS.values()]
    assert all(unicodedata.is_normalized("NFC", label) for label in labels)


def test_parse_portal_time() -> None:
    dt = parse_portal_time("20240115093000")
    assert dt == datetime(2024, 1, 15, 9, 30, tzinfo=PORTAL_TZ)
    assert dt.utcoffset() == timedelta(hours=7)
    assert dt.astimezone(UTC) == datetime(2024, 1, 15, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["", "2024011509300", "202401150930000", "20240230093000", "20240115250000", "2024-01-15"],
)
def test_parse_portal_time_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_portal_time(text)


def test_format_portal_time_converts_to_vietnam_time() -> None:
    utc = datetime(2024, 1, 15, 20, 0, 5, 999_999, tzinfo=UTC)
    assert format_portal_time(utc) == "20240116030005"
    with pytest.raises(ValueError, match="naive"):
        format_portal_time(datetime(2024, 1, 15))


@given(st.datetimes(datetime(1980, 1, 1), datetime(2100, 1, 1)), st.integers(-12, 14))
def test_portal_time_round_trips(naive: datetime, offset_hours: int) -> None:
    aware = naive.replace(microsecond=0, tzinfo=timezone(timedelta(hours=offset_hours)))
    assert parse_portal_time(format_portal_time(aware)) == aware
