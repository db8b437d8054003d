"""The dossier form's values: what the clerk typed, checked and normalised.

Checking needs no keys and no database, so the form checks as the clerk types
and the ledger checks again before it seals anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from edge import text
from edge.desk.errors import DeskError, DeskReason
from edge.domain import CccdError, Channel, is_procedure_code, validate_cccd

MAX_NOTE = 500
MAX_NAME = 100
MAX_ADDRESS = 200
"""Longer than any Vietnamese permanent address on an ID card (about 120 characters)."""
MIN_BIRTH_YEAR = 1900

_PHONE = re.compile(r"0[0-9]{9,10}")
_DATE_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_DATE_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_date(value: str) -> date | None:
    """A date as clerks write it (dd/mm/yyyy, also with dots or dashes) or ISO."""
    value = value.strip()
    found = _DATE_DMY.fullmatch(value)
    try:
        if found:
            return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
        found = _DATE_ISO.fullmatch(value)
        if found:
            return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None
    return None


def clean_phone(value: str) -> str:
    """The number in the one form search indexes (``text.phone_digits``): "+84 (0) 912 345
    678" and "912 345 678" are the citizen's "0912345678", not typing mistakes."""
    return text.phone_digits(value)


@dataclass(frozen=True)
class Details:
    """What the clerk types for a dossier, checked and normalised."""

    procedure: str = ""
    full_name: str = ""
    cccd: str = ""
    birth_year: str = ""
    phone: str = ""
    appointment: str = ""
    note: str = ""
    channel: int = Channel.TRUC_TIEP
    """How the dossier reached the desk (1 in person, 2 online, 3 public postal service)."""
    address: str = ""
    """The permanent address, as the ID card prints it or the citizen says it."""

    def personal(self) -> dict[str, str]:
        return {
            "full_name": self.full_name,
            "cccd": self.cccd,
            "birth_year": self.birth_year,
            "phone": self.phone,
            "address": self.address,
            "note": self.note,
        }


REQUIRED = ("code", "procedure", "full_name", "cccd")
"""What a dossier needs before it can be completed, in the form's order."""


def missing_fields(values: dict[str, str]) -> list[str]:
    """The fields completion needs that are still empty, in the form's order."""
    return [name for name in REQUIRED if not (values.get(name) or "").strip()]


def clean_details(
    raw: dict[str, str],
    *,
    today: date,
    procedures: Iterable[str] = (),
    saved_appointment: str = "",
) -> Details:
    """Check the form's values; the first problem raises with the field it concerns.

    Empty fields are allowed here (a dossier can be saved half done); what
    completion needs is checked by ``missing_fields``. ``check_details`` lists every
    problem at once.
    """
    details, problems = check_details(
        raw, today=today, procedures=procedures, saved_appointment=saved_appointment
    )
    if problems:
        raise problems[0]
    return details


def check_details(
    raw: dict[str, str],
    *,
    today: date,
    procedures: Iterable[str] = (),
    saved_appointment: str = "",
) -> tuple[Details, list[DeskError]]:
    """The form's values normalised, and every problem with the field it concerns.

    A clerk pressing F9 should see every field to fix at once, not discover them
    one by one. A return date before ``today`` is refused unless it is the one
    already saved (an older dossier keeps its date when other fields change).
    """
    problems: list[DeskError] = []
    values = {k: text.nfc(v or "") for k, v in raw.items()}
    known = set(procedures)
    procedure = values.get("procedure", "").upper()
    if procedure and procedure not in known and not is_procedure_code(procedure):
        problems.append(DeskError(DeskReason.PROCEDURE_UNKNOWN, field="procedure"))
    name = values.get("full_name", "")
    if name and (len(name) > MAX_NAME or not any(ch.isalpha() for ch in name)):
        problems.append(DeskError(DeskReason.NAME_INVALID, field="full_name"))
    birth_year = values.get("birth_year", "")
    year: int | None = None
    if birth_year:
        if not (birth_year.isascii() and birth_year.isdigit() and len(birth_year) == 4):
            problems.append(DeskError(DeskReason.BIRTH_YEAR_INVALID, field="birth_year"))
        elif int(birth_year) > today.year:
            problems.append(DeskError(DeskReason.BIRTH_YEAR_FUTURE, field="birth_year"))
        elif int(birth_year) < MIN_BIRTH_YEAR:
            problems.append(
                DeskError(DeskReason.BIRTH_YEAR_OLD, field="birth_year", limit=MIN_BIRTH_YEAR)
            )
        else:
            year = int(birth_year)
    cccd = values.get("cccd", "")
    if cccd:
        try:
            cccd = validate_cccd(cccd, year, today=today).number
        except CccdError as exc:
            problems.append(DeskError(DeskReason(f"cccd_{exc.reason}"), field="cccd"))
    phone = values.get("phone", "")
    if phone:
        phone = clean_phone(phone)
        if not _PHONE.fullmatch(phone):
            problems.append(DeskError(DeskReason.PHONE_INVALID, field="phone"))
    appointment = values.get("appointment", "")
    if appointment:
        day = parse_date(appointment)
        if day is None or day.year < 2000:
            problems.append(DeskError(DeskReason.DATE_INVALID, field="appointment"))
        else:
            appointment = day.isoformat()
            if day < today and appointment != saved_appointment:
                problems.append(DeskError(DeskReason.DATE_PAST, field="appointment"))
    address = " ".join(values.get("address", "").split())
    if len(address) > MAX_ADDRESS:
        problems.append(DeskError(DeskReason.ADDRESS_TOO_LONG, field="address", limit=MAX_ADDRESS))
    note = values.get("note", "")
    if len(note) > MAX_NOTE:
        problems.append(DeskError(DeskReason.NOTE_TOO_LONG, field="note", limit=MAX_NOTE))
    channel = parse_channel(values.get("channel", ""))
    if channel is None:
        problems.append(DeskError(DeskReason.CHANNEL_INVALID, field="channel"))
    channel = channel or Channel.TRUC_TIEP
    details = Details(procedure, name, cccd, birth_year, phone, appointment, note, channel, address)
    return details, problems


def parse_channel(value: str | int) -> Channel | None:
    """The channel a form or an event gives; empty means in person, the desk's own case."""
    value = str(value).strip()
    if not value:
        return Channel.TRUC_TIEP
    if value.isascii() and value.isdigit() and int(value) in set(Channel):
        return Channel(int(value))
    return None
