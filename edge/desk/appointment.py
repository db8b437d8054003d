"""The return date (ngày hẹn trả) a receipt promises, from a procedure's processing time.

Pure functions over a ``Calendar``: the counter's working hours, the year's public
holidays and make-up working days. Holidays move every year (Tết follows the lunar
calendar, and the Government decides each year which days are swapped), so the
calendar is signed reference data (the "holidays" set, docs/catalogue.md), never code.
Everything is in Vietnam time: a dossier stamped 02:03 UTC on 2 December was received
at 09:03 that day at the counter.

The rules:

* a working day is Monday to Friday, less holidays, plus make-up working days;
* a dossier received after closing, or on a day off, counts as received at the next
  opening (before opening on a working day it counts from that day);
* ``days`` N: the N-th working day after the day it counts as received (the first day
  of a period in days is not counted, Civil Code 2015 Art. 147);
* ``hours`` N: the day on which N working hours counted from that moment run out;
* ``same_day``: that day when received on a working day before the cutoff (closing,
  unless the procedure sets an earlier one such as 15:00), else the next working day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from edge.domain import PORTAL_TZ

UNITS = ("days", "hours", "same_day")
MAX_DAYS = 365
MAX_HOURS = 2000
DEFAULT_HOURS = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))
"""Office hours at a commune one-stop desk unless the published calendar says otherwise."""
MAX_RANGE_DAYS = 31

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_hhmm(value: object) -> time:
    """``"07:30"`` as a time; anything else raises ValueError saying what is expected."""
    found = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{value!r} is not a time of day written HH:MM")
    return time(int(found.group(1)), int(found.group(2)))


@dataclass(frozen=True)
class ProcessingTime:
    """How long the agency has: ``value`` working days or hours, or the same day."""

    unit: str
    value: int = 0
    cutoff: time | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {self.unit!r}")
        if self.unit == "same_day":
            if self.value:
                raise ValueError("a same-day time has no value")
        else:
            limit = MAX_DAYS if self.unit == "days" else MAX_HOURS
            if not 1 <= self.value <= limit:
                raise ValueError(f"{self.unit} must be a whole number from 1 to {limit}")
            if self.cutoff is not None:
                raise ValueError("only a same-day time has a cutoff")

    @classmethod
    def from_data(cls, data: object) -> ProcessingTime:
        """``{"unit": "days", "value": 3}``, ``{"unit": "same_day", "cutoff": "15:00"}``."""
        if not isinstance(data, dict):
            raise ValueError('must be an object such as {"unit": "days", "value": 3}')
        unknown = set(data) - {"unit", "value", "cutoff"}
        if unknown:
            raise ValueError(f"has unknown keys: {', '.join(sorted(unknown))}")
        value = data.get("value", 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("value must be a whole number")
        cutoff = data.get("cutoff")
        return cls(
            str(data.get("unit", "")), value, parse_hhmm(cutoff) if cutoff is not None else None
        )


@dataclass(frozen=True)
class Calendar:
    """Which days the desk works, and its hours."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    """Weekend days worked in exchange for a day off next to a holiday (ngày làm bù)."""
    hours: tuple[tuple[time, time], ...] = DEFAULT_HOURS
    version: str = ""
    names: dict[date, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.hours:
            raise ValueError("working hours must have at least one period")
        previous = time.min
        for index, (start, end) in enumerate(self.hours):
            if not start < end or (index and start < previous):
                raise ValueError("working hours must be periods in order that do not overlap")
            previous = end
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"{min(both).isoformat()} is both a holiday and a working day")

    @property
    def closing(self) -> time:
        return self.hours[-1][1]

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    @classmethod
    def from_data(cls, data: object) -> Calendar:
        """The published "holidays" set: working hours, holidays and make-up working days.

        Raises ValueError with a one-line message naming the bad entry.
        """
        if not isinstance(data, dict):
            raise ValueError("the holidays set must be an object with a 'holidays' list")
        unknown = set(data) - {"version", "description", "schema", "working_hours", "holidays",
                               "working_days"}  # fmt: skip
        if unknown:
            raise ValueError(f"the holidays set has unknown keys: {', '.join(sorted(unknown))}")
        schema = data.get("schema", 1)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema > 1:
            raise ValueError(f"holidays schema {schema!r} needs a newer release of the box")
        hours: tuple[tuple[time, time], ...] = DEFAULT_HOURS
        if "working_hours" in data:
            periods = data["working_hours"]
            if not isinstance(periods, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in periods
            ):
                raise ValueError('working_hours must be a list of ["HH:MM", "HH:MM"] periods')
            try:
                hours = tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in periods)
            except ValueError as exc:
                raise ValueError(f"working_hours: {exc}") from None
        names: dict[date, str] = {}
        holidays = _days(data.get("holidays", []), "holidays", names)
        workdays = _days(data.get("working_days", []), "working_days", names)
        return cls(frozenset(holidays), frozenset(workdays), hours, str(data.get("version", "")),
                   names)  # fmt: skip


def _days(entries: object, key: str, names: dict[date, str]) -> set[date]:
    if not isinstance(entries, list):
        raise ValueError(f"{key} must be a list")
    days: set[date] = set()
    for number, entry in enumerate(entries, 1):
        where = f"{key} entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object with a date (or from and to) and a name")
        unknown = set(entry) - {"date", "from", "to", "name"}
        if unknown:
            raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where} needs a name")
        where = f"{key} entry {number} ({name.strip()[:40]})"
        try:
            if "date" in entry:
                if "from" in entry or "to" in entry:
                    raise ValueError("has a date and a range: give one")
                first = last = _iso_day(entry["date"])
            else:
                first, last = _iso_day(entry.get("from")), _iso_day(entry.get("to"))
                if not first <= last or (last - first).days >= MAX_RANGE_DAYS:
                    raise ValueError(f"'from' to 'to' must be 1 to {MAX_RANGE_DAYS} days in order")
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        day = first
        while day <= last:
            days.add(day)
            names[day] = name.strip()
            day += timedelta(days=1)
    return days


def _iso_day(value: object) -> date:
    if not isinstance(value, str):
        raise ValueError("dates are written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD") from None


def local(received: datetime) -> datetime:
    """The receipt moment as the counter's clock shows it, without the zone (no DST here)."""
    if received.tzinfo is None:
        raise ValueError("the receipt time must carry its time zone")
    return received.astimezone(PORTAL_TZ).replace(tzinfo=None)


def counts_from(received: datetime, calendar: Calendar) -> datetime:
    """The moment processing starts: the receipt itself, or the next opening after it."""
    moment = local(received)
    day = moment.date()
    if calendar.is_working_day(day):
        if moment.time() < calendar.hours[0][0]:
            return datetime.combine(day, calendar.hours[0][0])
        if moment.time() < calendar.closing:
            return moment
    return datetime.combine(calendar.next_working_day(day), calendar.hours[0][0])


def appointment(received: datetime, processing: ProcessingTime, calendar: Calendar) -> date:
    """The date to write on the receipt slip for a dossier received at ``received``."""
    if processing.unit == "same_day":
        moment = local(received)
        cutoff = min(processing.cutoff or calendar.closing, calendar.closing)
        if calendar.is_working_day(moment.date()) and moment.time() < cutoff:
            return moment.date()
        return calendar.next_working_day(moment.date())
    start = counts_from(received, calendar)
    if processing.unit == "days":
        day = start.date()
        for _ in range(processing.value):
            day = calendar.next_working_day(day)
        return day
    return _after_hours(start, processing.value, calendar)


def _after_hours(start: datetime, hours: int, calendar: Calendar) -> date:
    remaining = timedelta(hours=hours)
    day, moment = start.date(), start.time()
    while True:
        for opening, closing in calendar.hours:
            begin = max(opening, moment)
            if begin >= closing:
                continue
            span = datetime.combine(day, closing) - datetime.combine(day, begin)
            if span >= remaining:
                return day
            remaining -= span
        day, moment = calendar.next_working_day(day), time.min


def suggested_date(
    received: datetime, now: datetime, processing: ProcessingTime, calendar: Calendar
) -> date:
    """The return date the form offers: from the receipt, as the slip promised.

    When details are typed so late that this date has passed (the dossier waited in
    the inbox), it counts from now instead: a date already past helps nobody, and the
    form refuses one.
    """
    day = appointment(received, processing, calendar)
    if day < local(now).date():
        return appointment(now, processing, calendar)
    return day
