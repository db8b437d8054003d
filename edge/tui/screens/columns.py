"""Columns of the dossier lists, shared so every list reads the same way.

At 80 columns a list keeps what the clerk works from (code, citizen, return date and
warnings); the time received, page count and statuses join from ``WIDE`` cells on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from edge.desk import parse_date
from edge.domain import PortalStatus
from edge.tui.i18n import _, day, local_time
from edge.tui.messages import flag_label, portal_label, status_label
from edge.tui.widgets.dossier_list import Column

WIDE = 100
"""Lists at least this wide show the columns an 80-column screen leaves out."""

OVERDUE_MARK = "!"
"""Put before an overdue return date: seen without colour, next to the title's count."""

RETURNED = int(PortalStatus.DA_TRA_KET_QUA)


def code_cell(row: dict[str, Any]) -> str:
    """The code; a cover capture could not confirm says so in words (it is listed first)."""
    if row.get("needs_review"):
        return "⚠ " + _("Check cover")
    return row.get("code") or _("(no code)")


def flags_cell(row: dict[str, Any]) -> str:
    flags = row.get("flags") or []
    if not flags:
        return ""
    more = f" +{len(flags) - 1}" if len(flags) > 1 else ""
    return "⚠ " + flag_label(flags[0]) + more


def date_cell(value: str | None) -> str:
    parsed = parse_date(value) if value else None
    return day(parsed) if parsed else "—"


def is_overdue(row: dict[str, Any], today: date) -> bool:
    """The return date has passed (at the counter, Vietnam time) and the result is not back
    in the citizen's hands."""
    value = row.get("appointment")
    parsed = parse_date(value) if value else None
    if parsed is None or parsed >= today:
        return False
    return not row.get("handed_back_at") and row.get("central_status") != RETURNED


def overdue_test(today: Callable[[], date]) -> Callable[[dict[str, Any]], bool]:
    """``is_overdue`` on the counter's day when drawn: a list may stay open past midnight."""
    return lambda row: is_overdue(row, today())


def code() -> Column:
    return Column(_("Dossier code"), 26, code_cell)


def name() -> Column:
    """The citizen's name, opened for the row on screen (``DossierList.reveal``)."""
    return Column(_("Citizen's name"), 0, lambda r: r.get("name") or "—")


def received(min_list_width: int = 0) -> Column:
    return Column(
        _("Received"), 11, lambda r: local_time(r.get("received_at")), min_list_width=min_list_width
    )


def pages(min_list_width: int = 0) -> Column:
    return Column(
        _("Pages"),
        5,
        lambda r: str(r.get("pages", "")),
        align="right",
        min_list_width=min_list_width,
    )


def status(width: int = 0, min_list_width: int = 0) -> Column:
    return Column(
        _("Status"), width, lambda r: status_label(r["status"]), min_list_width=min_list_width
    )


def flags(width: int = 18) -> Column:
    return Column(_("Warnings"), width, flags_cell)


def procedure() -> Column:
    return Column(_("Procedure"), 10, lambda r: r.get("procedure_code") or "—")


def return_by(today: Callable[[], date]) -> Column:
    """The return date (dd/mm/yyyy); an overdue one carries ``OVERDUE_MARK``."""

    def cell(row: dict[str, Any]) -> str:
        shown = date_cell(row.get("appointment"))
        return OVERDUE_MARK + shown if is_overdue(row, today()) else shown

    return Column(_("Return by"), 12, cell)


def central(min_list_width: int = 0) -> Column:
    return Column(
        _("Agency status"),
        0,
        lambda r: portal_label(r.get("central_status")),
        min_list_width=min_list_width,
    )
