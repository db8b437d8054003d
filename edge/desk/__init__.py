"""The clerk's desk: who may sign in, and what a signed-in clerk does to dossiers.

Capture only ever adds pages. Everything a clerk changes afterwards (a code for
an unassigned dossier, the citizen's details, pages split, merged or reordered,
completion, hand-back, the paper handover, quarantine decisions) is a method of
``DeskLedger`` that appends a sealed event and updates the projection in one
short transaction of its own, so the log sync ships explains every change the
UI shows and a power cut leaves either all of a change or none of it.

One module per part of the desk: ``signin`` (passwords and throttling),
``details`` (the form's values, checked), ``forms`` (codes, details, drafts),
``completion``, ``pages`` (reorder, split, merge), ``review`` (covers capture was
unsure of), ``handover`` (results and paper), ``quarantine``, ``reading`` and
``search`` (``DeskReader``), assembled in ``ledger``. The tables they touch are
written through named ``Store`` methods. Errors are ``DeskError`` with a stable
``reason`` code and details; the UI translates them, so no wording lives here.
"""

from __future__ import annotations

from edge.desk.details import (
    MAX_NAME,
    MAX_NOTE,
    REQUIRED,
    Details,
    check_details,
    clean_details,
    clean_phone,
    missing_fields,
    parse_date,
)
from edge.desk.errors import DeskError, DeskReason
from edge.desk.ledger import DeskLedger
from edge.desk.quarantine import RETRY_PREFIX
from edge.desk.reading import DeskReader
from edge.desk.search import Found, SearchResult
from edge.desk.signin import (
    MAX_LOGIN,
    MIN_PASSWORD,
    UNKNOWN_KEEP_MS,
    LoginGuard,
    LoginPolicy,
    check_new_password,
    login_name,
)
from edge.desk.statuses import (
    MERGED,
    OPEN_STATUSES,
    RESULT_READY,
    catalogue_codes,
    day_bounds,
    local_day,
)
from edge.records import COMPLETE, UNASSIGNED, WAITING_DETAILS

__all__ = [
    "COMPLETE",
    "MAX_LOGIN",
    "MAX_NAME",
    "MAX_NOTE",
    "MERGED",
    "MIN_PASSWORD",
    "OPEN_STATUSES",
    "REQUIRED",
    "RESULT_READY",
    "RETRY_PREFIX",
    "UNASSIGNED",
    "UNKNOWN_KEEP_MS",
    "WAITING_DETAILS",
    "DeskError",
    "DeskLedger",
    "DeskReader",
    "DeskReason",
    "Details",
    "Found",
    "LoginGuard",
    "LoginPolicy",
    "SearchResult",
    "catalogue_codes",
    "check_details",
    "check_new_password",
    "clean_details",
    "clean_phone",
    "day_bounds",
    "local_day",
    "login_name",
    "missing_fields",
    "parse_date",
]
