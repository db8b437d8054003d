"""Columns of the dossier lists, shared so every list reads the same way."""

from __future__ import annotations

from typing import Any

from edge.desk import parse_date
from edge.tui.i18n import _, day, local_time
from edge.tui.messages import flag_label, portal_label, status_label
from edge.tui.widgets.dossier_list import Column


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


def code() -> Column:
    return Column(_("Dossier code"), 26, code_cell)


def received() -> Column:
    return Column(_("Received"), 11, lambda r: local_time(r.get("received_at")))


def pages() -> Column:
    return Column(_("Pages"), 5, lambda r: str(r.get("pages", "")), align="right")


def status() -> Column:
    return Column(_("Status"), 0, lambda r: status_label(r["status"]))


def flags() -> Column:
    return Column(_("Warnings"), 18, flags_cell)


def procedure() -> Column:
    return Column(_("Procedure"), 10, lambda r: r.get("procedure_code") or "—")


def appointment() -> Column:
    return Column(_("Return date"), 12, lambda r: date_cell(r.get("appointment")))


def central() -> Column:
    return Column(_("Agency status"), 0, lambda r: portal_label(r.get("central_status")))
