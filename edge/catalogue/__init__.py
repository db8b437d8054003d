"""The procedure catalogue (danh mục thủ tục hành chính) and the desk's calendar.

Both are reference data, not code: regional IT publishes them through signed
configuration (the reference data sets "procedures" and "holidays", which
``edge.update.apply`` writes to the store's ``reference_data``). Until a box has
received them, the samples shipped beside this file are used; a file
``<state>/reference/<set>.json`` is honoured too, for a box set up by hand.

Every field is checked on load. A published set that does not check is not used
(the next source is), and ``problem`` keeps the one-line reason naming the bad entry:
a faulty update must never stop the counter. The schema and where each shipped
entry comes from are in docs/catalogue.md. Names are the official Vietnamese ones,
shown as they are whatever the UI language.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edge import text
from edge.desk.appointment import Calendar, ProcessingTime
from edge.domain import Channel, is_procedure_code
from edge.store import Store

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SHIPPED = HERE / "procedures.json"
SHIPPED_HOLIDAYS = HERE / "holidays.json"
REFERENCE = Path("reference")
SCHEMA = 1
"""The newest catalogue schema this release reads; a newer one is refused, not misread."""
MAX_TEXT = 400
MAX_COUNT = 20

_NATIONAL = re.compile(r"[1-9]\.[0-9]{6}")
_ENTRY_KEYS = {
    "code", "name", "field", "agency", "time", "days", "fee", "documents", "channels",
    "receipt_form", "basis",
}  # fmt: skip
_FEE_KEYS = {"fee", "charge", "per", "basis"}
_DOCUMENT_KEYS = {"name", "originals", "copies", "form"}


class CatalogueError(ValueError):
    """A published catalogue or calendar that cannot be used; one line naming the entry."""


def national_code(code: str) -> str:
    """``1.011442`` for ``1.011442.000.00.00.H38``: portals append their agency's suffix."""
    code = code.strip().upper()
    found = _NATIONAL.match(code)
    return found.group(0) if found and code[found.end() : found.end() + 1] in ("", ".") else code


@dataclass(frozen=True)
class Fee:
    """What the citizen pays, in VND: ``fee`` (phí) and ``charge`` (lệ phí); 0 and 0 is free."""

    fee: int = 0
    charge: int = 0
    per: str = ""
    basis: str = ""

    @property
    def total(self) -> int:
        return self.fee + self.charge


@dataclass(frozen=True)
class Document:
    """One paper of the dossier (thành phần hồ sơ) and how many originals and copies it takes."""

    name: str
    originals: int = 0
    copies: int = 0
    form: str = ""


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field: str = ""
    agency: str = ""
    time: ProcessingTime | None = None
    fee: Fee | None = None
    """None when the catalogue does not say; 0 VND is said as a ``Fee``."""
    documents: tuple[Document, ...] = ()
    channels: tuple[tuple[int, ProcessingTime | None, Fee | None], ...] = ()
    """Where a channel differs: (channel, its time or None, its fee or None)."""
    receipt_form: str = ""
    basis: str = ""
    folded: str = ""

    def matches(self, query: str) -> bool:
        """Accent-insensitive: "dang ky khai sinh" finds "Đăng ký khai sinh"."""
        return all(word in self.folded for word in text.fold(query).split())

    def time_for(self, channel: int = Channel.TRUC_TIEP) -> ProcessingTime | None:
        own = next((t for c, t, _f in self.channels if c == channel and t is not None), None)
        return own or self.time

    def fee_for(self, channel: int = Channel.TRUC_TIEP) -> Fee | None:
        own = next((f for c, _t, f in self.channels if c == channel and f is not None), None)
        return own or self.fee


@dataclass(frozen=True)
class Catalogue:
    version: str
    procedures: tuple[Procedure, ...]
    source: str = "sample"
    """"published" (signed update), "file" (set up by hand) or "sample" (shipped)."""
    problem: str = ""
    """Why a published catalogue was not used, in one line; empty when none was refused."""

    def get(self, code: str) -> Procedure | None:
        """The procedure for a code, with or without the portal's local suffix."""
        code = code.strip().upper()
        if not code:
            return None
        exact = next((p for p in self.procedures if p.code == code), None)
        if exact is not None:
            return exact
        national = national_code(code)
        return next((p for p in self.procedures if national_code(p.code) == national), None)

    def codes(self) -> list[str]:
        return [p.code for p in self.procedures]

    def search(self, query: str) -> list[Procedure]:
        return [p for p in self.procedures if p.matches(query)]


# -- checking -----------------------------------------------------------------------------


def parse(data: Any) -> tuple[str, tuple[Procedure, ...]]:
    """The version and procedures of a catalogue document, every field checked.

    Raises CatalogueError, one line naming the bad entry, for anything this release
    would otherwise show wrongly to a clerk or a citizen.
    """
    if isinstance(data, list):
        data = {"procedures": data}
    if not isinstance(data, dict) or not isinstance(data.get("procedures"), list):
        raise CatalogueError("the catalogue must be an object with a 'procedures' list")
    schema = data.get("schema", SCHEMA)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema > SCHEMA:
        raise CatalogueError(
            f"catalogue schema {schema!r} needs a newer release of the box (it reads {SCHEMA})"
        )
    items: list[Procedure] = []
    seen: set[str] = set()
    for number, entry in enumerate(data["procedures"], 1):
        procedure = _procedure(number, entry)
        national = national_code(procedure.code)
        if national in seen:
            raise CatalogueError(f"procedures entry {number} ({procedure.code}): code listed twice")
        seen.add(national)
        items.append(procedure)
    items.sort(key=lambda p: text.sort_key(p.name))
    return str(data.get("version", "")), tuple(items)


def _procedure(number: int, entry: Any) -> Procedure:
    where = f"procedures entry {number}"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where} must be an object")
    code = entry.get("code")
    if isinstance(code, str) and code.strip():
        where = f"{where} ({code.strip()[:40]})"
    try:
        return _checked(entry)
    except ValueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None


def _checked(entry: dict[str, Any]) -> Procedure:
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    code = _text(entry, "code", required=True).upper()
    if not is_procedure_code(code):
        raise ValueError("code must look like 1.001193 (a local suffix may follow)")
    name = _text(entry, "name", required=True)
    if "time" in entry and "days" in entry:
        raise ValueError("give 'time' or the older 'days', not both")
    processing = _within("time", ProcessingTime.from_data, entry.get("time"))
    if "days" in entry:
        days = _count(entry, "days", 365)
        processing = ProcessingTime("days", days) if days else None
    channels = entry.get("channels", {})
    if not isinstance(channels, dict):
        raise ValueError('channels must be an object such as {"2": {"fee": {...}}}')
    overrides = []
    for key, override in sorted(channels.items()):
        if key not in ("1", "2", "3"):
            raise ValueError(f"channel {key!r} is not 1, 2 or 3")
        if not isinstance(override, dict) or not override or set(override) - {"time", "fee"}:
            raise ValueError(f"channel {key} must give a 'time', a 'fee' or both")
        overrides.append(
            (
                int(key),
                _within(f"channels.{key}.time", ProcessingTime.from_data, override.get("time")),
                _within(f"channels.{key}.fee", _fee, override.get("fee")),
            )
        )
    documents = entry.get("documents", [])
    if not isinstance(documents, list):
        raise ValueError("documents must be a list")
    papers = []
    for number, document in enumerate(documents, 1):
        try:
            papers.append(_document(document))
        except ValueError as exc:
            raise ValueError(f"document {number}: {exc}") from None
    return Procedure(
        code=code,
        name=name,
        field=_text(entry, "field"),
        agency=_text(entry, "agency"),
        time=processing,
        fee=_within("fee", _fee, entry.get("fee")),
        documents=tuple(papers),
        channels=tuple(overrides),
        receipt_form=_text(entry, "receipt_form"),
        basis=_text(entry, "basis"),
        folded=text.fold(f"{code} {name}"),
    )


T = TypeVar("T")


def _within(where: str, make: Callable[[Any], T], value: Any) -> T | None:
    if value is None:
        return None
    try:
        return make(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _fee(data: Any) -> Fee:
    if not isinstance(data, dict):
        raise ValueError('must be an object such as {"charge": 20000, "basis": "..."}')
    unknown = set(data) - _FEE_KEYS
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    return Fee(
        _count(data, "fee", 100_000_000),
        _count(data, "charge", 100_000_000),
        _text(data, "per"),
        _text(data, "basis"),
    )


def _document(data: Any) -> Document:
    if not isinstance(data, dict):
        raise ValueError('must be an object such as {"name": "...", "originals": 1}')
    unknown = set(data) - _DOCUMENT_KEYS
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    originals, copies = _count(data, "originals", MAX_COUNT), _count(data, "copies", MAX_COUNT)
    return Document(_text(data, "name", required=True), originals, copies, _text(data, "form"))


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text")
    value = text.nfc(value)
    if required and not value:
        raise ValueError(f"{key} is missing")
    # not only C0: a C1 CSI (U+009B) or DEL would act on the box's 8-bit console
    if len(value) > MAX_TEXT or not value.isprintable():
        raise ValueError(f"{key} must be one line of printable text, at most {MAX_TEXT} characters")
    return value


def _count(data: dict[str, Any], key: str, limit: int) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{key} must be a whole number from 0 to {limit}")
    return value


# -- loading ------------------------------------------------------------------------------


def published(store: Store | None, name: str) -> Any | None:
    """A reference data set regional IT published, as JSON, or None."""
    return store.reference_data(name) if store is not None else None


def _sources(
    name: str, shipped: Path, state: Path | None, store: Store | None
) -> list[tuple[str, Callable[[], Any]]]:
    """Where a set can come from, best first; each read only when the ones before fail."""
    found: list[tuple[str, Callable[[], Any]]] = [("published", lambda: published(store, name))]
    if state is not None:
        hand = state / REFERENCE / f"{name}.json"
        found.append(("file", lambda: _json_file(hand)))
    found.append(("sample", lambda: json.loads(shipped.read_text("utf-8"))))
    return found


def _json_file(path: Path) -> Any | None:
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def _first_usable(
    name: str,
    shipped: Path,
    state: Path | None,
    store: Store | None,
    parse_set: Callable[[Any], T],
    what: str,
) -> tuple[T, str, str]:
    """The first source whose set checks, its name, and why a better one was passed over.

    A published set a box would refuse is not used (the next source stands in) and the
    reason is logged once; only the shipped sample failing is an error, a defect of the
    release itself.
    """
    problem = ""
    for source, read in _sources(name, shipped, state, store):
        try:
            data = read()
            if data is None:
                continue
            return parse_set(data), source, problem
        except (OSError, ValueError) as exc:
            if source == "sample":
                raise
            problem = problem or f"{source} {what} not used: {exc}"
            log.warning("%s", problem)
    raise AssertionError("the shipped sample is always a source")


def load(state: Path | None = None, store: Store | None = None) -> Catalogue:
    """The catalogue regional IT published when it checks, else a hand-set file, else the sample."""
    (version, procedures), source, problem = _first_usable(
        "procedures", SHIPPED, state, store, parse, "catalogue"
    )
    return Catalogue(version, procedures, source, problem)


@dataclass(frozen=True)
class LoadedCalendar:
    calendar: Calendar
    source: str = "sample"
    problem: str = ""


def load_calendar(state: Path | None = None, store: Store | None = None) -> LoadedCalendar:
    """The holiday calendar and working hours, from the same sources as the catalogue."""
    calendar, source, problem = _first_usable(
        "holidays", SHIPPED_HOLIDAYS, state, store, Calendar.from_data, "holidays"
    )
    return LoadedCalendar(calendar, source, problem)


__all__ = [
    "Catalogue",
    "CatalogueError",
    "Document",
    "Fee",
    "LoadedCalendar",
    "Procedure",
    "load",
    "load_calendar",
    "national_code",
    "parse",
    "published",
]
