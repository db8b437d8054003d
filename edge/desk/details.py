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
from edge.desk.errors import DeskError
from edge.domain import CccdError, is_procedure_code, validate_cccd

MAX_NOTE = 500
MAX_NAME = 100
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
    digits = "".join(ch for ch in text.nfc(value) if ch.isdigit() or ch == "+")
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits


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

    def personal(self) -> dict[str, str]:
        return {
            "full_name": self.full_name,
            "cccd": self.cccd,
            "birth_year": self.birth_year,
            "phone": self.phone,
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
        problems.append(DeskError("procedure_unknown", field="procedure"))
    name = values.get("full_name", "")
    if name and (len(name) > MAX_NAME or not any(ch.isalpha() for ch in name)):
        problems.append(DeskError("name_invalid", field="full_name"))
    birth_year = values.get("birth_year", "")
    year: int | None = None
    if birth_year:
        if not (birth_year.isascii() and birth_year.isdigit() and len(birth_year) == 4):
            problems.append(DeskError("birth_year_invalid", field="birth_year"))
        elif int(birth_year) > today.year:
            problems.append(DeskError("birth_year_future", field="birth_year"))
        elif int(birth_year) < MIN_BIRTH_YEAR:
            problems.append(DeskError("birth_year_old", field="birth_year", limit=MIN_BIRTH_YEAR))
        else:
            year = int(birth_year)
    cccd = values.get("cccd", "")
    if cccd:
        try:
            cccd = validate_cccd(cccd, year, today=today).number
        except CccdError as exc:
            problems.append(DeskError(f"cccd_{exc.reason}", field="cccd"))
    phone = values.get("phone", "")
    if phone:
        phone = clean_phone(phone)
        if not _PHONE.fullmatch(phone):
            problems.append(DeskError("phone_invalid", field="phone"))
    appointment = values.get("appointment", "")
    if appointment:
        day = parse_date(appointment)
        if day is None or day.year < 2000:
            problems.append(DeskError("date_invalid", field="appointment"))
        else:
            appointment = day.isoformat()
            if day < today and appointment != saved_appointment:
                problems.append(DeskError("date_past", field="appointment"))
    note = values.get("note", "")
    if len(note) > MAX_NOTE:
        problems.append(DeskError("note_too_long", field="note", limit=MAX_NOTE))
    return Details(procedure, name, cccd, birth_year, phone, appointment, note), problems
