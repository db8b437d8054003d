"""Who may sign in: passwords checked, guessing throttled, every attempt in the audit log."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from edge import passwords, text
from edge.clock import Instant, iso
from edge.desk.errors import DeskError, DeskReason
from edge.records import Ledger
from edge.store import Store
from edge.vault import Keyring, OfficeSession, WrongPassword

MAX_LOGIN = 64
MIN_PASSWORD = passwords.MIN_LENGTH


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

    def _left(self, row: Any) -> tuple[int, int]:
        """What is left now of the row's delay and lockout (ms)."""
        if row is None:
            return 0, 0
        then = Instant.parse(row["since"])
        elapsed = self.store.clock.since_ms(then) if then is not None else 0
        return max(0, int(row["wait_ms"]) - elapsed), max(0, int(row["lock_ms"]) - elapsed)

    def wait_ms(self, typed: str) -> int:
        """How long this name must wait before the next attempt is even checked."""
        return max(self._left(self.store.clerk_login(self._key(login_name(typed)))))

    def forget_unknown(self) -> None:
        """Drop unknown names whose delays ended more than ``UNKNOWN_KEEP_MS`` ago."""
        stale = []
        for row in self.store.unknown_logins():
            then = Instant.parse(row["since"])
            elapsed = self.store.clock.since_ms(then) if then is not None else UNKNOWN_KEEP_MS
            if elapsed >= max(int(row["wait_ms"]), int(row["lock_ms"])) + UNKNOWN_KEEP_MS:
                stale.append(row["login"])
        if stale:
            with self.store.transaction():
                self.store.forget_logins(stale)

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
        row = self.store.clerk_login(key)
        waiting, locked = self._left(row)
        if locked > 0 or waiting > 0:
            with self.store.transaction():
                # What is left is stored again as of now: a reboot, whose elapsed time
                # cannot be measured, then costs at most the time since this attempt.
                self.store.hold_login(key, waiting, locked, str(self.store.clock.instant()))
                self.ledger.record(
                    None, "clerk.sign_in_refused", {"clerk": who, "unknown": not known, **source}
                )
            reason = DeskReason.LOCKED_OUT if locked > 0 else DeskReason.WAIT
            raise DeskError(reason, seconds=math.ceil(max(locked, waiting) / 1000))
        try:
            session = self.keyring.unlock(name, password)
        except WrongPassword:
            self._failed(key, who, known, row, source)
        with self.store.transaction():
            self.store.forget_login_and_unknowns(key)
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
            self.store.put_login_failure(
                key,
                failures=failures,
                lockouts=lockouts,
                wait_ms=delay,
                lock_ms=lock,
                since=str(now),
                updated=iso(now.time_ms),
            )
            payload: dict[str, Any] = {"clerk": who, "unknown": not known, "failures": failures}
            if lock:
                payload["locked_until"] = iso(now.time_ms + lock)
                self.ledger.record(None, "clerk.locked_out", {**payload, **source})
            else:
                payload["delay_s"] = delay // 1000
                self.ledger.record(None, "clerk.sign_in_failed", {**payload, **source})
        if lock:
            raise DeskError(DeskReason.LOCKED_OUT, seconds=math.ceil(lock / 1000))
        raise DeskError(DeskReason.WRONG_PASSWORD, seconds=math.ceil(delay / 1000))

    def signed_out(self, clerk: str, reason: str, *, via: str | None = None) -> None:
        """Sign-out and idle lock are audited like sign-in: who had the office open, when."""
        source = {"via": via} if via else {}
        with self.store.transaction():
            self.ledger.record(
                None, "clerk.signed_out", {"clerk": clerk, "reason": reason, **source}
            )


def opens(keyring: Keyring, clerk: str, password: str) -> bool:
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
        raise DeskError(DeskReason.PASSWORD_SHORT, field="password", limit=passwords.MIN_LENGTH)
    if verdict.reason is not None:
        raise DeskError(DeskReason(verdict.reason), field="password")
