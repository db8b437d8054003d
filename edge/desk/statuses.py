"""Dossier states the desk adds to capture's (``edge.records``), and the counter's calendar."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from edge.clock import iso
from edge.domain import PORTAL_TZ, PortalStatus
from edge.records import UNASSIGNED, WAITING_DETAILS

MERGED = "merged"
"""Status of a dossier whose pages were all moved into another one; kept for the history."""

RESULT_READY = int(PortalStatus.DA_XU_LY_XONG)
"""Central status meaning the agency finished and the result waits at the counter."""

OPEN_STATUSES = (UNASSIGNED, WAITING_DETAILS)


def local_day(ms: int) -> date:
    """The calendar day at the counter (Vietnam time) for a timestamp."""
    return datetime.fromtimestamp(ms / 1000, PORTAL_TZ).date()


def day_bounds(day: date) -> tuple[str, str]:
    """ISO UTC bounds of a Vietnamese calendar day, for comparing with stored times."""
    start = datetime(day.year, day.month, day.day, tzinfo=PORTAL_TZ)
    end_ms = int(start.timestamp() * 1000) + 86_400_000
    return iso(int(start.timestamp() * 1000)), iso(end_ms)


def catalogue_codes(procedures: Iterable[dict[str, Any]]) -> list[str]:
    return [str(p["code"]).upper() for p in procedures]
