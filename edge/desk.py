"""The clerk's desk: who may sign in, and what a signed-in clerk does to dossiers.

Capture only ever adds pages. Everything a clerk changes afterwards (a code for
an unassigned dossier, the citizen's details, pages split, merged or reordered,
completion, hand-back, the paper handover, quarantine decisions) is a method
here that appends a sealed event and updates the projection in one short
transaction of its own, so the log sync ships explains every change the UI
shows and a power cut leaves either all of a change or none of it.

Errors are ``DeskError`` with a stable ``reason`` code and details; the UI
translates them, so no wording lives in this module.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from edge import passwords, text
from edge.clock import Instant, iso
from edge.domain import PORTAL_TZ, CccdError, PortalStatus, is_procedure_code, validate_cccd
from edge.records import COMPLETE, UNASSIGNED, WAITING_DETAILS, Ledger, Reader
from edge.store import Store
from edge.vault import (
    Keyring,
    OfficeSession,
    Sealer,
    VaultError,
    WrongPassword,
    ciphertext_id,
    field_ad,
    page_ad,
)

MERGED = "merged"
"""Status of a dossier whose pages were all moved into another one; kept for the history."""

RESULT_READY = int(PortalStatus.DA_XU_LY_XONG)
"""Central status meaning the agency finished and the result waits at the counter."""

OPEN_STATUSES = (UNASSIGNED, WAITING_DETAILS)
MAX_NOTE = 500
MAX_NAME = 100
MAX_LOGIN = 64
MIN_PASSWORD = passwords.MIN_LENGTH
RETRY_PREFIX = "lai-"


class DeskError(Exception):
    """Something the clerk can fix; ``reason`` is a stable code the UI translates."""

    def __init__(self, reason: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(reason if field is None else f"{reason} ({field})")
        self.reason = reason
        self.field = field
        self.details = details


# -- signing in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    """Growing delays, then a lockout that doubles each time it recurs.

    A few typos cost nothing; guessing costs minutes, then hours. The state is in
    the database, so pulling the plug does not reset the count.
    """

    free_failures: int = 2
    base_delay_ms: int = 2_000
    max_delay_ms: int = 60_000
    lockout_failures: int = 6
    lockout_ms: int = 15 * 60_000
    max_lockout_ms: int = 24 * 3_600_000

    def delay_ms(self, failures: int) -> int:
        if failures <= self.free_failures:
            return 0
        return min(self.max_delay_ms, self.base_delay_ms * 2 ** (failures - self.free_failures - 1))

    def lockout_duration_ms(self, lockouts: int) -> int:
        return min(self.max_lockout_ms, self.lockout_ms * 2 ** max(0, lockouts - 1))


def login_name(typed: str) -> str:
    """The user name as stored in the keyring: clerks type it in any case and spacing."""
    return text.nfc(typed).strip().lower()[:MAX_LOGIN]


UNKNOWN_KEEP_MS = 3_600_000
"""How long an unknown name's throttle outlives its last delay before it is forgotten."""


class LoginGuard:
    """Checks passwords, throttles guessing, and puts every attempt in the audit log.

    The desk and every command that unlocks a clerk's key (``edge export``, ``edge
    sync --clerk``, ...) come through here, so a locked-out clerk is locked out
    everywhere and every unlock is in the log.

    Delays are measured with the monotonic clock (``Clock.since_ms``) and stored as
    what is left of them at an instant, never as a wall-clock deadline: a wall clock
    that once ran ahead to 2031 must not leave a two-second delay unreachable, nor a
    clock set back stretch a lockout.

    Unknown names are throttled too, so that answers do not tell which names exist;
    they are kept only as ``Keyring.login_tag`` (salted with a secret of the box), and
    forgotten an hour after their delays end, or as soon as any clerk signs in: such
    a name is often a password typed into the wrong field. The log records only that
    the name was unknown.
    """

    def __init__(self, store: Store, keyring: Keyring, policy: LoginPolicy | None = None) -> None:
        self.store = store
        self.keyring = keyring
        self.ledger = Ledger(store, keyring.sealer())
        self.policy = policy or LoginPolicy()
        self.forget_unknown()

    def _key(self, name: str) -> str:
        if self.keyring.has_clerk(name):
            return name
        return "?" + self.keyring.login_tag(name)

    def _row(self, key: str) -> Any:
        return self.store.conn.execute(
            "SELECT * FROM clerk_logins WHERE login=?", (key,)
        ).fetchone()

    def _left(self, row: Any) -> tuple[int, int]:
        """What is left now of the row's delay and lockout (ms)."""
        if row is None:
            return 0, 0
        then = Instant.parse(row["since"])
        elapsed = self.store.clock.since_ms(then) if then is not None else 0
        return max(0, int(row["wait_ms"]) - elapsed), max(0, int(row["lock_ms"]) - elapsed)

    def wait_ms(self, typed: str) -> int:
        """How long this name must wait before the next attempt is even checked."""
        return max(self._left(self._row(self._key(login_name(typed)))))

    def forget_unknown(self) -> None:
        """Drop unknown names whose delays ended more than ``UNKNOWN_KEEP_MS`` ago."""
        rows = self.store.conn.execute(
            "SELECT * FROM clerk_logins WHERE login LIKE '?%'"
        ).fetchall()
        stale = []
        for row in rows:
            then = Instant.parse(row["since"])
            elapsed = self.store.clock.since_ms(then) if then is not None else UNKNOWN_KEEP_MS
            if elapsed >= max(int(row["wait_ms"]), int(row["lock_ms"])) + UNKNOWN_KEEP_MS:
                stale.append((row["login"],))
        if stale:
            with self.store.transaction():
                self.store.conn.executemany("DELETE FROM clerk_logins WHERE login=?", stale)

    def sign_in(self, typed: str, password: str, *, via: str | None = None) -> OfficeSession:
        """Unlock the office for a clerk, or raise ``DeskError`` saying how long to wait.

        ``via`` names the command when it is not the desk; it goes into the audit log.
        """
        name = login_name(typed)
        known = self.keyring.has_clerk(name)
        key = self._key(name)
        who = name if known else None
        source = {"via": via} if via else {}
        self.forget_unknown()
        row = self._row(key)
        waiting, locked = self._left(row)
        if locked > 0 or waiting > 0:
            with self.store.transaction():
                # What is left is stored again as of now: a reboot, whose elapsed time
                # cannot be measured, then costs at most the time since this attempt.
                self.store.conn.execute(
                    "UPDATE clerk_logins SET wait_ms=?, lock_ms=?, since=? WHERE login=?",
                    (waiting, locked, str(self.store.clock.instant()), key),
                )
                self.ledger.record(
                    None, "clerk.sign_in_refused", {"clerk": who, "unknown": not known, **source}
                )
            reason = "locked_out" if locked > 0 else "wait"
            raise DeskError(reason, seconds=math.ceil(max(locked, waiting) / 1000))
        try:
            session = self.keyring.unlock(name, password)
        except WrongPassword:
            self._failed(key, who, known, row, source)
        with self.store.transaction():
            self.store.conn.execute(
                "DELETE FROM clerk_logins WHERE login=? OR login LIKE '?%'", (key,)
            )
            self.ledger.record(None, "clerk.signed_in", {"clerk": name, **source})
        return session

    def _failed(
        self, key: str, who: str | None, known: bool, row: Any, source: dict[str, str]
    ) -> NoReturn:
        failures = (int(row["failures"]) if row else 0) + 1
        lockouts = int(row["lockouts"]) if row else 0
        lock = 0
        delay = self.policy.delay_ms(failures)
        if failures >= self.policy.lockout_failures:
            lockouts += 1
            lock = self.policy.lockout_duration_ms(lockouts)
            failures = self.policy.free_failures
            delay = 0
        clock = self.store.clock
        with self.store.transaction():
            now = clock.instant()
            self.store.conn.execute(
                "INSERT INTO clerk_logins(login, failures, lockouts, wait_ms, lock_ms, since, "
                "updated) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(login) DO UPDATE SET failures=excluded.failures, "
                "lockouts=excluded.lockouts, wait_ms=excluded.wait_ms, "
                "lock_ms=excluded.lock_ms, since=excluded.since, updated=excluded.updated",
                (key, failures, lockouts, delay, lock, str(now), iso(now.time_ms)),
            )
            payload: dict[str, Any] = {"clerk": who, "unknown": not known, "failures": failures}
            if lock:
                payload["locked_until"] = iso(now.time_ms + lock)
                self.ledger.record(None, "clerk.locked_out", {**payload, **source})
            else:
                payload["delay_s"] = delay // 1000
                self.ledger.record(None, "clerk.sign_in_failed", {**payload, **source})
        if lock:
            raise DeskError("locked_out", seconds=math.ceil(lock / 1000))
        raise DeskError("wrong_password", seconds=math.ceil(delay / 1000))

    def signed_out(self, clerk: str, reason: str, *, via: str | None = None) -> None:
        """Sign-out and idle lock are audited like sign-in: who had the office open, when."""
        source = {"via": via} if via else {}
        with self.store.transaction():
            self.ledger.record(
                None, "clerk.signed_out", {"clerk": clerk, "reason": reason, **source}
            )


def _opens(keyring: Keyring, clerk: str, password: str) -> bool:
    """Whether ``password`` is the one the clerk has now."""
    try:
        keyring.unlock(clerk, password).close()
    except WrongPassword:
        return False
    return True


def check_new_password(password: str, *, clerk: str, office: str) -> None:
    """Refuse a password a guesser would reach soon, with the reason the clerk can act on.

    The threshold and the cost of a guess are in ``edge.passwords`` and
    docs/threat-model.md.
    """
    verdict = passwords.estimate(password, clerk=clerk, office=office)
    if verdict.reason == "password_short":
        raise DeskError("password_short", field="password", limit=passwords.MIN_LENGTH)
    if verdict.reason is not None:
        raise DeskError(verdict.reason, field="password")


# -- the citizen's details -------------------------------------------------------------------

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


def clean_details(raw: dict[str, str], *, today: date, procedures: Iterable[str] = ()) -> Details:
    """Check the form's values; the first problem raises with the field it concerns.

    Empty fields are allowed here (a dossier can be saved half done); what
    completion needs is checked by ``DeskLedger.complete``.
    """
    values = {k: text.nfc(v or "") for k, v in raw.items()}
    known = set(procedures)
    procedure = values.get("procedure", "").upper()
    if procedure and procedure not in known and not is_procedure_code(procedure):
        raise DeskError("procedure_unknown", field="procedure")
    name = values.get("full_name", "")
    if name and (len(name) > MAX_NAME or not any(ch.isalpha() for ch in name)):
        raise DeskError("name_invalid", field="full_name")
    birth_year = values.get("birth_year", "")
    year: int | None = None
    if birth_year:
        if not (birth_year.isascii() and birth_year.isdigit() and len(birth_year) == 4):
            raise DeskError("birth_year_invalid", field="birth_year")
        year = int(birth_year)
        if not 1900 <= year <= today.year:
            raise DeskError("birth_year_invalid", field="birth_year")
    cccd = values.get("cccd", "")
    if cccd:
        try:
            cccd = validate_cccd(cccd, year, today=today).number
        except CccdError as exc:
            raise DeskError(f"cccd_{exc.reason}", field="cccd") from None
    phone = values.get("phone", "")
    if phone:
        phone = clean_phone(phone)
        if not _PHONE.fullmatch(phone):
            raise DeskError("phone_invalid", field="phone")
    appointment = values.get("appointment", "")
    if appointment:
        day = parse_date(appointment)
        if day is None or day.year < 2000:
            raise DeskError("date_invalid", field="appointment")
        appointment = day.isoformat()
    note = values.get("note", "")
    if len(note) > MAX_NOTE:
        raise DeskError("note_too_long", field="note", limit=MAX_NOTE)
    return Details(procedure, name, cccd, birth_year, phone, appointment, note)


# -- writing, as a signed-in clerk ---------------------------------------------------------


class DeskLedger(Ledger):
    """The clerk's changes. Needs an unlocked office: moving a page re-seals it.

    Each method is one transaction of its own (callers must not hold one open).
    """

    def __init__(self, store: Store, sealer: Sealer, session: OfficeSession) -> None:
        super().__init__(store, sealer)
        self.session = session
        self.reader = DeskReader(store, session)

    @property
    def clerk(self) -> str:
        return self.session.clerk

    def forget(self) -> None:
        """Drop every data key this ledger opened or made (at lock and sign-out)."""
        self._keys.clear()
        self.reader.forget()

    def _dossier(self, dossier_id: str) -> Any:
        row = self.store.dossier(dossier_id)
        if row is None:
            raise DeskError("dossier_missing")
        return row

    def _editable(self, dossier_id: str) -> Any:
        row = self._dossier(dossier_id)
        if row["status"] == MERGED:
            raise DeskError("dossier_merged")
        if row["status"] == COMPLETE:
            raise DeskError("already_complete")
        return row

    # the clerk's own password

    def change_password(self, keyring: Keyring, password: str) -> None:
        """A new password for the signed-in clerk (first sign-in after regional IT set one).

        It must be hard to guess (``check_new_password``) and not the one it replaces:
        typing the temporary password again would keep the password regional IT knows.
        The office key is wrapped again under it by the vault; the old password
        opens nothing any more.
        """
        check_new_password(password, clerk=self.clerk, office=keyring.office)
        if _opens(keyring, self.clerk, password):
            raise DeskError("password_same", field="password")
        keyring.add_clerk(self.session, self.clerk, password)
        with self.store.transaction():
            self.record(None, "clerk.password_changed", {"clerk": self.clerk})

    # audit

    def viewed(self, dossier_id: str, what: Sequence[str]) -> None:
        """Every opening of a citizen's details or pages is in the log (Decree 13/2023)."""
        with self.store.transaction():
            self.record(dossier_id, "audit.viewed", {"clerk": self.clerk, "what": list(what)})

    def searched(self, shown: Sequence[str], total: int) -> None:
        """Search results show names: which dossiers were shown, not what was typed."""
        with self.store.transaction():
            self.record(
                None, "audit.searched", {"clerk": self.clerk, "shown": list(shown), "total": total}
            )

    # drafts

    def save_draft(self, dossier_id: str, values: dict[str, str]) -> None:
        """Keep what is typed, sealed, on every pause in typing.

        Drafts are scratch work, replaced on each save, so they are not events:
        the chain (and what sync ships) would otherwise grow with every keystroke.
        """
        clean = {k: text.nfc(v) for k, v in values.items()}
        with self.store.transaction():
            key = self._key(dossier_id)
            sealed = self.sealer.seal_json(key, clean, field_ad(dossier_id, "draft"))
            self.store.conn.execute(
                "INSERT INTO drafts(dossier_id, clerk, key_id, payload, updated) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(dossier_id) DO UPDATE SET "
                "clerk=excluded.clerk, key_id=excluded.key_id, payload=excluded.payload, "
                "updated=excluded.updated",
                (dossier_id, self.clerk, key.key_id, sealed, iso(self.store.now().ms)),
            )

    def discard_draft(self, dossier_id: str) -> None:
        with self.store.transaction():
            self.store.conn.execute("DELETE FROM drafts WHERE dossier_id=?", (dossier_id,))

    # codes and details

    def assign_code(self, dossier_id: str, code: str, patterns: Any) -> str:
        """Give an unassigned dossier (pages scanned before any cover) its code."""
        normal = patterns.match(code)
        if normal is None:
            raise DeskError("code_invalid", field="code")
        row = self._editable(dossier_id)
        if row["code"] == normal:
            return normal
        if row["code"] is not None:
            raise DeskError("code_fixed", field="code")
        other = self.store.dossier_by_code(normal)
        if other is not None:
            raise DeskError("code_taken", field="code", dossier_id=other["id"], code=normal)
        with self.store.transaction():
            self.store.update_dossier(
                dossier_id, code=normal, status=WAITING_DETAILS, needs_review=0
            )
            self.record(dossier_id, "dossier.code_assigned", {"code": normal, "clerk": self.clerk})
        return normal

    def save_details(self, dossier_id: str, details: Details) -> None:
        """Seal the citizen's details, index them for search, and drop the draft."""
        self._editable(dossier_id)
        with self.store.transaction():
            self.set_fields(self.session, dossier_id, details.personal())
            self.store.update_dossier(
                dossier_id,
                procedure_code=details.procedure or None,
                appointment=details.appointment or None,
            )
            self.record(
                dossier_id,
                "dossier.details_set",
                {
                    "procedure": details.procedure or None,
                    "appointment": details.appointment or None,
                    "clerk": self.clerk,
                },
            )
            self.store.conn.execute("DELETE FROM drafts WHERE dossier_id=?", (dossier_id,))

    def complete(self, dossier_id: str) -> None:
        """Ready for the agency: the code, the procedure and who filed it are known."""
        row = self._editable(dossier_id)
        if not row["code"]:
            raise DeskError("missing", field="code")
        if not row["procedure_code"]:
            raise DeskError("missing", field="procedure")
        fields = self.reader.fields(dossier_id)
        for name in ("full_name", "cccd"):
            if not fields.get(name):
                raise DeskError("missing", field=name)
        if not self.store.pages(dossier_id):
            raise DeskError("no_pages")
        with self.store.transaction():
            at = iso(self.store.now().ms)
            self.store.update_dossier(dossier_id, status=COMPLETE, completed_at=at)
            self.record(dossier_id, "dossier.completed", {"clerk": self.clerk})
            self.store.conn.execute("DELETE FROM drafts WHERE dossier_id=?", (dossier_id,))

    # pages

    def reorder(self, dossier_id: str, page_ids: Sequence[str]) -> None:
        self._editable(dossier_id)
        current = [p["id"] for p in self.store.pages(dossier_id)]
        if sorted(current) != sorted(page_ids):
            raise DeskError("pages_changed")
        if list(page_ids) == current:
            return
        with self.store.transaction():
            for position, page_id in enumerate(page_ids, 1):
                self.store.conn.execute(
                    "UPDATE pages SET position=? WHERE id=?", (position, page_id)
                )
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id, "pages.reordered", {"order": list(page_ids), "clerk": self.clerk}
            )

    def _move_page(self, page: Any, target_id: str, position: int) -> None:
        """Re-seal a page under the target dossier's key (inside the caller's transaction).

        A page's ciphertext is bound to its dossier by the associated data, so a
        moved page is opened with the unlocked office and sealed again for its new
        dossier, as a new content-addressed blob. The old blob stays: events
        already written (and perhaps not yet synced) name it; retention purges it.
        """
        data = self.reader.page_bytes(page)
        key = self._key(target_id)
        sealed = self.sealer.seal(key, data, page_ad(target_id, page["id"]))
        blob_id = ciphertext_id(sealed)
        self.store.put_blob(blob_id, sealed)
        attrs = None
        if page["attrs"] is not None:
            symbols = self.session.open_json(
                self.reader.key(page["key_id"]),
                bytes(page["attrs"]),
                field_ad(page["dossier_id"], f"symbols:{page['id']}"),
            )
            attrs = self.sealer.seal_json(
                key, symbols, field_ad(target_id, f"symbols:{page['id']}")
            )
        self.store.conn.execute(
            "UPDATE pages SET dossier_id=?, position=?, blob_id=?, key_id=?, attrs=? WHERE id=?",
            (target_id, position, blob_id, key.key_id, attrs, page["id"]),
        )
        self.record(
            target_id,
            "page.moved",
            {
                "page": page["id"],
                "from": page["dossier_id"],
                "position": position,
                "blob": blob_id,
                "replaces_blob": page["blob_id"],
                "clerk": self.clerk,
            },
        )

    def _renumber(self, dossier_id: str) -> None:
        for position, page in enumerate(self.store.pages(dossier_id), 1):
            self.store.conn.execute(
                "UPDATE pages SET position=? WHERE id=?", (position, page["id"])
            )

    def split(self, dossier_id: str, first_page_id: str) -> str:
        """Pages from ``first_page_id`` on become a new, unassigned dossier.

        For the cover sheet that capture missed: the clerk cuts the dossier where
        the second one starts, then gives it its code.
        """
        self._editable(dossier_id)
        pages = self.store.pages(dossier_id)
        ids = [p["id"] for p in pages]
        if first_page_id not in ids:
            raise DeskError("pages_changed")
        start = ids.index(first_page_id)
        if start == 0:
            raise DeskError("split_first_page")
        with self.store.transaction():
            new_id = self.create_dossier(None)
            for position, page in enumerate(pages[start:], 1):
                self._move_page(page, new_id, position)
            self.store.update_dossier(dossier_id)
            self.record(
                dossier_id,
                "dossier.split",
                {"new": new_id, "pages": ids[start:], "clerk": self.clerk},
            )
        return new_id

    def merge(self, source_id: str, target_id: str) -> None:
        """All pages of ``source_id`` go to the end of ``target_id``; the source is kept."""
        if source_id == target_id:
            raise DeskError("same_dossier")
        self._editable(source_id)
        target = self._editable(target_id)
        with self.store.transaction():
            self._merge(source_id, target["id"])

    def _merge(self, source_id: str, target_id: str) -> None:
        """The body of ``merge``, inside the caller's transaction."""
        pages = self.store.pages(source_id)
        position = self.store.next_position(target_id)
        for offset, page in enumerate(pages):
            self._move_page(page, target_id, position + offset)
        self.store.update_dossier(source_id, status=MERGED, merged_into=target_id, needs_review=0)
        self.store.conn.execute("DELETE FROM blind_index WHERE dossier_id=?", (source_id,))
        self.record(
            source_id,
            "dossier.merged",
            {"into": target_id, "pages": [p["id"] for p in pages], "clerk": self.clerk},
        )
        self.store.conn.execute("DELETE FROM drafts WHERE dossier_id=?", (source_id,))

    # boundaries capture was not sure of (issue 10)

    def _under_review(self, dossier_id: str) -> Any:
        row = self._editable(dossier_id)
        if not row["needs_review"]:
            raise DeskError("review_done")
        return row

    def confirm_new_dossier(self, dossier_id: str, code: str, patterns: Any) -> str:
        """The clerk said "a new dossier", typing or confirming the code on the cover.

        A code the box already knows means the pages continue that dossier (a second
        part, a rescan), exactly as capture files a confirmed code it knows; the id of
        the dossier that now holds the pages is returned.
        """
        row = self._under_review(dossier_id)
        normal = patterns.match(code)
        if normal is None:
            raise DeskError("code_invalid", field="code")
        other = self.store.dossier_by_code(normal)
        if other is not None and other["id"] != dossier_id:
            target = self._editable(other["id"])
            with self.store.transaction():
                self.record(
                    dossier_id,
                    "dossier.reviewed",
                    {"decision": "known_code", "code": normal, "into": target["id"],
                     "clerk": self.clerk},
                )  # fmt: skip
                self._merge(dossier_id, target["id"])
            return str(target["id"])
        status = WAITING_DETAILS if row["status"] == UNASSIGNED else row["status"]
        with self.store.transaction():
            self.store.update_dossier(dossier_id, code=normal, status=status, needs_review=0)
            self.record(
                dossier_id,
                "dossier.reviewed",
                {"decision": "new", "code": normal, "clerk": self.clerk},
            )
        return dossier_id

    def join_previous(self, dossier_id: str) -> str:
        """The clerk said "same as before": not a cover; its pages go back where they belong.

        "Before" is the dossier that was open in the same scan job when capture met
        the page (followed through any merge since); the id of the dossier that now
        holds the pages is returned.
        """
        row = self._under_review(dossier_id)
        target_id = row["follows"]
        seen = {dossier_id}
        while target_id is not None and target_id not in seen:
            seen.add(target_id)
            target = self._dossier(target_id)
            if target["status"] != MERGED:
                break
            target_id = target["merged_into"]
        if target_id is None or target_id == dossier_id:
            raise DeskError("review_no_previous")
        target = self._editable(target_id)
        with self.store.transaction():
            self.record(
                dossier_id,
                "dossier.reviewed",
                {"decision": "previous", "into": target["id"], "clerk": self.clerk},
            )
            self._merge(dossier_id, target["id"])
        return str(target["id"])

    # results and paper

    def hand_back(self, dossier_id: str, receiver: str, receiver_id: str) -> None:
        """The result left the counter: who took it and which ID paper they showed."""
        row = self._dossier(dossier_id)
        if row["handed_back_at"]:
            raise DeskError("already_handed_back")
        if row["central_status"] != RESULT_READY:
            raise DeskError("no_result")
        receiver = text.nfc(receiver)
        receiver_id = text.nfc(receiver_id)
        if not receiver or not any(ch.isalpha() for ch in receiver):
            raise DeskError("missing", field="receiver")
        if len(receiver_id) < 6:
            raise DeskError("missing", field="receiver_id")
        with self.store.transaction():
            at = iso(self.store.now().ms)
            self.store.update_dossier(dossier_id, handed_back_at=at)
            self.record(
                dossier_id,
                "result.handed_back",
                {"receiver": receiver, "receiver_id": receiver_id, "clerk": self.clerk},
            )

    def record_handover(self, dossier_ids: Sequence[str], on: date) -> list[str]:
        """The paper dossiers went back to the agency on ``on``: returns their codes."""
        if not dossier_ids:
            raise DeskError("nothing_to_hand_over")
        codes = []
        with self.store.transaction():
            for dossier_id in dossier_ids:
                row = self._dossier(dossier_id)
                if row["status"] != COMPLETE or row["handed_over_on"]:
                    raise DeskError("handover_changed")
                self.store.update_dossier(dossier_id, handed_over_on=on.isoformat())
                codes.append(row["code"])
            self.record(
                None,
                "handover.recorded",
                {"date": on.isoformat(), "dossiers": list(dossier_ids), "clerk": self.clerk},
            )
        return codes

    # quarantine

    def _held(self, quarantine_id: str) -> Any:
        row = self.store.conn.execute(
            "SELECT * FROM quarantine WHERE id=?", (quarantine_id,)
        ).fetchone()
        if row is None or row["status"] != "held":
            raise DeskError("quarantine_changed")
        return row

    def retry_quarantined(self, quarantine_id: str, inbox: Path) -> Path:
        """Put the original back into the inbox, so capture reads it again.

        For files that failed for a reason that has gone away (a reader fixed by an
        update, a limit raised). The file is written under a partial-download name
        (ignored by capture), made durable, renamed into place, and only then is the
        quarantine record released, so a crash in between leaves the record held
        and the copy is recognised as a duplicate of it.
        """
        row = self._held(quarantine_id)
        if row["key_id"] is None:
            raise DeskError("quarantine_no_original")
        if not inbox.is_dir():
            raise DeskError("no_inbox")
        data = self.reader.quarantined_bytes(quarantine_id)
        name = Path(row["name"]).name or quarantine_id
        target = inbox / name
        if target.exists():
            target = inbox / f"{RETRY_PREFIX}{quarantine_id[-6:]}-{name}"
        # Written in a fresh private folder (hidden, so capture ignores it) with O_EXCL and
        # O_NOFOLLOW, then renamed into place: anyone who can write the inbox (an SMB share)
        # could plant a link at a predictable partial name and have the clerk's retry
        # overwrite the file it points to. A rename replaces a link at the target; it never
        # follows one.
        private = Path(tempfile.mkdtemp(prefix=".edge-retry-", dir=inbox))
        partial = private / "file"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            private.rmdir()
        dir_fd = os.open(inbox, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE quarantine SET status='retried' WHERE id=?", (quarantine_id,)
            )
            self.record(
                None,
                "file.retry_requested",
                {"quarantine": quarantine_id, "as": target.name, "clerk": self.clerk},
            )
        return target

    def discard_quarantined(self, quarantine_id: str) -> None:
        """The clerk decided the file is not a scan worth keeping.

        The sealed original stays until retention purges it: the event that
        quarantined it names its blobs, and sync may not have shipped them yet.
        """
        self._held(quarantine_id)
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE quarantine SET status='discarded' WHERE id=?", (quarantine_id,)
            )
            self.record(None, "file.discarded", {"quarantine": quarantine_id, "clerk": self.clerk})


# -- reading, as a signed-in clerk ----------------------------------------------------------


@dataclass(frozen=True)
class Found:
    dossier_id: str
    code: str | None
    status: str
    received_at: str
    name: str
    family: str = ""
    middle: str = ""
    given: str = ""


@dataclass
class SearchResult:
    total: int
    rows: list[Found] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


_CODE_CHARS = re.compile(r"[0-9.\-]")


class DeskReader(Reader):
    """Reads sealed dossier data for the signed-in clerk."""

    def forget(self) -> None:
        """Drop the opened data keys (at lock and sign-out)."""
        self._keys.clear()

    def draft(self, dossier_id: str) -> dict[str, Any] | None:
        row = self.store.conn.execute(
            "SELECT * FROM drafts WHERE dossier_id=?", (dossier_id,)
        ).fetchone()
        if row is None:
            return None
        try:
            values = self.session.open_json(
                self.key(row["key_id"]), bytes(row["payload"]), field_ad(dossier_id, "draft")
            )
        except VaultError:
            return None
        return {"values": dict(values), "clerk": row["clerk"], "updated": row["updated"]}  # type: ignore[arg-type]

    def details(self, dossier_id: str) -> dict[str, str]:
        """The form's saved values: sealed personal fields plus procedure and appointment."""
        row = self.store.dossier(dossier_id)
        if row is None:
            raise DeskError("dossier_missing")
        values = {k: str(v) for k, v in self.fields(dossier_id).items()}
        if not values.get("full_name"):
            values["full_name"] = " ".join(
                values.get(k, "") for k in ("family", "middle", "given") if values.get(k)
            )
        values["procedure"] = row["procedure_code"] or ""
        values["appointment"] = row["appointment"] or ""
        values["code"] = row["code"] or ""
        return values

    def review(self, dossier_id: str) -> dict[str, Any] | None:
        """What capture saw on a cover it could not confirm, or None (issue 10).

        The candidates travel sealed in the dossier's ``dossier.created`` event (they
        can be a portal URL carrying a citizen's ID number): ``review`` (text,
        symbology, code, alternatives, why, personal) and ``follows``.
        """
        from edge.store import Event

        row = self.store.conn.execute(
            "SELECT * FROM events WHERE dossier_id=? AND type='dossier.created' "
            "ORDER BY seq LIMIT 1",
            (dossier_id,),
        ).fetchone()
        if row is None:
            return None
        try:
            payload = self.event_payload(Event(**dict(row)))
        except VaultError:
            return None
        if not payload.get("needs_review"):
            return None
        return payload

    def page_symbols(self, page: Any) -> list[dict[str, Any]]:
        """The symbols capture read on a page (sealed with it): text, symbology, kind, ..."""
        if page["attrs"] is None:
            return []
        try:
            value = self.session.open_json(
                self.key(page["key_id"]),
                bytes(page["attrs"]),
                field_ad(page["dossier_id"], f"symbols:{page['id']}"),
            )
        except VaultError:
            return []
        if not isinstance(value, list):
            return []
        return [dict(item) for item in value if isinstance(item, dict)]

    def find(self, query: str, limit: int = 100) -> SearchResult:
        """Dossiers matching a code, CCCD, phone or name, in Vietnamese name order.

        Each kind of match is a subquery (codes through their trigram index,
        numbers and name words through the blind index, every typed word of a
        name required), combined and counted in SQLite. Names are sealed, so
        ordering them means opening them: the newest ``limit`` matches are opened
        and ordered, and the total tells the clerk to type more when there are more.
        """
        query = text.nfc(query).strip()
        if not query:
            return SearchResult(0)
        parts: list[str] = []
        params: list[str] = []
        compact = query.replace(" ", "").replace(".", "")
        number = compact.isdigit() and len(compact) >= 9
        if _CODE_CHARS.search(query) and not number:
            needle = query.upper()
            if len(needle) >= 3:
                parts.append(
                    "SELECT dossier_id AS id FROM dossier_codes WHERE dossier_codes MATCH ?"
                )
                params.append('"' + needle.replace('"', '""') + '"')
            else:
                parts.append("SELECT id FROM dossiers WHERE code LIKE ? ESCAPE '\\'")
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                params.append(f"%{escaped}%")
        if number:
            digits = clean_phone(compact) if len(compact) < 12 else compact
            terms = self.session.blind_terms([compact], "cccd")
            terms += self.session.blind_terms(sorted({digits, compact}), "phone")
            marks = ",".join("?" * len(terms))
            parts.append(f"SELECT dossier_id AS id FROM blind_index WHERE term IN ({marks})")
            params.extend(terms)
        tokens = [t for t in text.search_tokens(query) if not t.isdigit()]
        if tokens:
            # every word must match: walk the rarest word's dossiers and look the
            # others up by key, instead of intersecting sets of 40,000 "nguyen"s
            terms = sorted(
                self.session.blind_terms(tokens, "name"),
                key=lambda t: self.store.conn.execute(
                    "SELECT COUNT(*) FROM blind_index WHERE term = ?", (t,)
                ).fetchone()[0],
            )
            others = "".join(
                " AND EXISTS (SELECT 1 FROM blind_index o WHERE o.term = ?"
                " AND o.dossier_id = b.dossier_id)"
                for _ in terms[1:]
            )
            parts.append(f"SELECT b.dossier_id AS id FROM blind_index b WHERE b.term = ?{others}")
            params.extend(terms)
        if not parts:
            return SearchResult(0)
        matches = " UNION ".join(f"SELECT id FROM ({p})" for p in parts)
        conn = self.store.conn
        total = int(conn.execute(f"SELECT COUNT(*) FROM ({matches})", params).fetchone()[0])
        if not total:
            return SearchResult(0)
        # ids are time-ordered (records.new_id): the newest sort last
        newest = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM ({matches}) ORDER BY id DESC LIMIT ?", (*params, limit)
            )
        ]
        rows = [r for r in self._rows(newest) if r["status"] != MERGED]
        shown = [self._found(r) for r in rows]
        shown.sort(
            key=lambda f: (
                not f.name,
                text.name_sort_key(f.family, f.middle, f.given),
                f.code or "",
            )
        )
        return SearchResult(total - (len(newest) - len(rows)), shown)

    def _rows(self, ids: list[str]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.extend(
                self.store.conn.execute(
                    "SELECT id, code, status, received_at, fields, fields_key_id FROM dossiers "
                    f"WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        return out

    def _found(self, row: Any) -> Found:
        fields: dict[str, Any] = {}
        if row["fields"] is not None:
            fields = dict(
                self.session.open_json(  # type: ignore[arg-type]
                    self.key(row["fields_key_id"]),
                    bytes(row["fields"]),
                    field_ad(row["id"], "fields"),
                )
            )
        family, middle, given = (str(fields.get(k, "")) for k in ("family", "middle", "given"))
        name = str(fields.get("full_name") or " ".join(p for p in (family, middle, given) if p))
        return Found(
            row["id"], row["code"], row["status"], row["received_at"], name, family, middle, given
        )


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
