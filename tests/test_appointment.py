"""The return date a receipt promises (edge/desk/appointment.py): tables of real days, and laws.

The calendar is the shipped 2025-2026 sample, as regional IT would publish it: Tết,
the April and September holidays, a make-up Saturday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.catalogue import load_calendar
from edge.desk.appointment import (
    Calendar,
    ProcessingTime,
    appointment,
    counts_from,
    parse_hhmm,
    suggested_date,
)
from edge.domain import PORTAL_TZ

CALENDAR = load_calendar().calendar
SAME_DAY = ProcessingTime("same_day")
BEFORE_15 = ProcessingTime("same_day", cutoff=time(15, 0))


def at(day: str, hhmm: str) -> datetime:
    """A moment at the counter (Vietnam time)."""
    return datetime.combine(date.fromisoformat(day), parse_hhmm(hhmm), tzinfo=PORTAL_TZ)


def days(n: int) -> ProcessingTime:
    return ProcessingTime("days", n)


def hours(n: int) -> ProcessingTime:
    return ProcessingTime("hours", n)


CASES = [
    # received,                 time,      expected        why
    (at("2026-11-27", "08:30"), SAME_DAY, "2026-11-27", "Friday morning: today"),
    (at("2026-11-27", "16:59"), SAME_DAY, "2026-11-27", "just before closing"),
    (at("2026-11-27", "17:00"), SAME_DAY, "2026-11-30", "at closing: next working day"),
    (at("2026-11-27", "12:00"), SAME_DAY, "2026-11-27", "lunch break is still the day"),
    (at("2026-11-27", "06:45"), SAME_DAY, "2026-11-27", "before opening: the same day"),
    (at("2026-11-28", "09:00"), SAME_DAY, "2026-11-30", "Saturday: Monday"),
    (at("2026-11-27", "14:59"), BEFORE_15, "2026-11-27", "civil status before 15:00"),
    (at("2026-11-27", "15:00"), BEFORE_15, "2026-11-30", "civil status from 15:00"),
    (at("2026-11-27", "08:30"), days(1), "2026-11-30", "the first day is not counted"),
    (at("2026-11-27", "08:30"), days(3), "2026-12-02", "over a weekend"),
    (at("2026-11-27", "17:30"), days(3), "2026-12-03", "after closing counts from Monday"),
    (at("2026-11-29", "10:00"), days(3), "2026-12-03", "Sunday counts from Monday"),
    (at("2026-11-23", "09:00"), days(7), "2026-12-02", "residence: 7 working days"),
    (at("2026-02-13", "10:00"), days(1), "2026-02-23", "the Friday before Tết Bính Ngọ"),
    (at("2026-02-13", "16:30"), SAME_DAY, "2026-02-13", "Tết starts after this day"),
    (at("2026-02-13", "17:05"), SAME_DAY, "2026-02-23", "after closing: after Tết"),
    (at("2026-02-17", "09:00"), SAME_DAY, "2026-02-23", "Tết day one: the counter is shut"),
    (at("2025-01-24", "10:00"), days(3), "2025-02-05", "Tết Ất Tỵ, 25/1 to 2/2/2025"),
    (at("2026-04-24", "09:00"), days(1), "2026-04-28", "Giỗ Tổ on Sunday, Monday off in lieu"),
    (at("2026-04-29", "09:00"), days(1), "2026-05-04", "30/4 and 1/5"),
    (at("2025-04-25", "09:00"), days(1), "2025-04-26", "a make-up working Saturday"),
    (at("2025-04-29", "09:00"), days(1), "2025-05-05", "30/4 to 4/5/2025, with 2/5 swapped"),
    (at("2026-08-31", "09:00"), days(1), "2026-09-03", "National Day and the day next to it"),
    (at("2025-12-31", "16:00"), days(1), "2026-01-02", "New Year's Day"),
    (at("2026-11-27", "16:00"), hours(1), "2026-11-27", "one hour before closing"),
    (at("2026-11-27", "16:30"), hours(1), "2026-11-30", "half an hour left: Monday"),
    (at("2026-11-27", "08:00"), hours(7), "2026-11-27", "7 of the day's 7.5 hours"),
    (at("2026-11-27", "08:00"), hours(8), "2026-11-30", "a day's hours run out"),
    (at("2026-11-27", "12:00"), hours(3), "2026-11-27", "from the afternoon opening"),
    (at("2026-11-27", "18:00"), hours(4), "2026-11-30", "after closing: from Monday"),
]


@pytest.mark.parametrize(
    ("received", "processing", "expected", "why"), CASES, ids=[c[3] for c in CASES]
)
def test_return_dates(
    received: datetime, processing: ProcessingTime, expected: str, why: str
) -> None:
    assert appointment(received, processing, CALENDAR) == date.fromisoformat(expected), why


def test_a_receipt_stamped_in_utc_is_dated_at_the_counter() -> None:
    """02:03 UTC on 2 December is 09:03 that day in Vietnam, not 1 December."""
    received = datetime(2026, 12, 2, 2, 3, tzinfo=UTC)
    assert appointment(received, SAME_DAY, CALENDAR) == date(2026, 12, 2)
    evening = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)  # 17:30 at the counter
    assert counts_from(evening, CALENDAR) == datetime(2026, 12, 2, 7, 30)
    with pytest.raises(ValueError, match="time zone"):
        appointment(datetime(2026, 12, 2, 9, 0), SAME_DAY, CALENDAR)


def test_configured_working_hours_move_closing() -> None:
    saturday_desk = Calendar.from_data(
        {"working_hours": [["08:00", "12:00"]], "working_days": [], "holidays": []}
    )
    assert appointment(at("2026-11-27", "12:30"), SAME_DAY, saturday_desk) == date(2026, 11, 30)
    assert appointment(at("2026-11-27", "11:30"), hours(1), saturday_desk) == date(2026, 11, 30)


def test_details_typed_days_later_never_get_a_past_date() -> None:
    received, now = at("2026-11-20", "09:00"), at("2026-11-27", "08:30")
    assert suggested_date(received, now, days(3), CALENDAR) == date(2026, 12, 2)
    assert suggested_date(received, now, days(7), CALENDAR) == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"unit": "weeks", "value": 2}, "unit must be one of"),
        ({"unit": "days", "value": 0}, "from 1 to"),
        ({"unit": "days", "value": "3"}, "whole number"),
        ({"unit": "days", "value": True}, "whole number"),
        ({"unit": "hours", "value": 4, "cutoff": "15:00"}, "only a same-day"),
        ({"unit": "same_day", "cutoff": "3pm"}, "HH:MM"),
        ({"unit": "same_day", "value": 1}, "no value"),
        ({"unit": "days", "value": 3, "note": "x"}, "unknown keys: note"),
        ("3 days", "must be an object"),
    ],
)
def test_a_processing_time_is_checked(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProcessingTime.from_data(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"holidays": [{"date": "2026-02-30", "name": "x"}]}, r"entry 1 \(x\).*YYYY-MM-DD"),
        ({"holidays": [{"date": "2026-02-17"}]}, "holidays entry 1 needs a name"),
        (
            {"holidays": [{"from": "2026-02-22", "to": "2026-02-14", "name": "Tết"}]},
            r"entry 1 \(Tết\).*in order",
        ),
        (
            {"holidays": [{"from": "2026-01-01", "to": "2026-12-31", "name": "Năm"}]},
            "1 to 31 days",
        ),
        ({"working_hours": [["13:30", "17:00"], ["07:30", "11:30"]]}, "in order"),
        ({"working_hours": [["07:30", "25:00"]]}, "HH:MM"),
        ({"working_hours": []}, "at least one"),
        (
            {
                "holidays": [{"date": "2025-04-26", "name": "a"}],
                "working_days": [{"date": "2025-04-26", "name": "b"}],
            },
            "both a holiday and a working day",
        ),
        ({"holiday": []}, "unknown keys: holiday"),
        ({"schema": 2, "holidays": []}, "needs a newer release"),
    ],
)
def test_a_published_calendar_is_checked_with_one_line_naming_the_entry(
    data: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Calendar.from_data(data)
    assert "\n" not in str(caught.value)


def test_the_shipped_calendar_knows_its_holidays() -> None:
    assert CALENDAR.names[date(2026, 2, 17)] == "Tết Nguyên đán Bính Ngọ"
    assert not CALENDAR.is_working_day(date(2026, 2, 16))
    assert CALENDAR.is_working_day(date(2025, 4, 26))  # a Saturday worked in exchange
    assert CALENDAR.is_working_day(date(2026, 2, 23))


# -- laws that hold for every receipt, on the shipped calendar ------------------------------

moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 15), timezones=st.just(PORTAL_TZ)
)
times = st.one_of(
    st.builds(days, st.integers(1, 30)),
    st.builds(hours, st.integers(1, 120)),
    st.just(SAME_DAY),
    st.just(BEFORE_15),
)


@settings(max_examples=300, deadline=None)
@given(moments, times)
def test_the_date_is_a_working_day_never_before_the_receipt(
    received: datetime, processing: ProcessingTime
) -> None:
    result = appointment(received, processing, CALENDAR)
    assert CALENDAR.is_working_day(result)
    assert result >= received.astimezone(PORTAL_TZ).date()


@settings(max_examples=300, deadline=None)
@given(moments, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)), times)
def test_a_later_receipt_never_gets_an_earlier_date(
    received: datetime, later: timedelta, processing: ProcessingTime
) -> None:
    first = appointment(received, processing, CALENDAR)
    assert appointment(received + later, processing, CALENDAR) >= first


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 20))
def test_more_working_days_never_mean_an_earlier_date(received: datetime, n: int) -> None:
    assert appointment(received, days(n + 1), CALENDAR) > appointment(received, days(n), CALENDAR)
