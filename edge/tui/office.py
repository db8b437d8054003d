"""The signed-in office as the UI holds it: one store connection, the keys while unlocked.

The UI opens its own ``Store`` (the daemon has another); every read is a short
query and every write one short transaction through ``edge.desk``. The office
key exists in memory only between sign-in and sign-out or idle lock, and the
readers holding opened data keys are dropped with it.

Whether the capture daemon runs is read from the heartbeat it writes when it starts
(``<state>/run/daemon.json``: its process id and the boot's monotonic time); the UI
cannot ask systemd, and scans pile up unread in the inbox while the daemon is down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from edge import catalogue
from edge.clock import Clock
from edge.desk import DeskLedger, DeskReader, LoginGuard, LoginPolicy, local_day
from edge.domain import CodePatterns
from edge.settings import Settings
from edge.store import Store, StoreError
from edge.tui.queries import disk_free
from edge.update.selftest import alive, read_heartbeat
from edge.vault import Keyring, OfficeSession, VaultError

SIGN_IN_REINDEX_S = 0.5
"""Seconds a sign-in spends rebuilding an upgraded store's number index; what is left is
done a slice at a time within the searches that follow."""


@dataclass
class Unlocked:
    session: OfficeSession
    ledger: DeskLedger
    reader: DeskReader

    @property
    def clerk(self) -> str:
        return self.session.clerk

    def citizen_name(self, dossier_id: str) -> str:
        """The citizen's name as the form shows it, for a list row on screen; "" if none.

        Opened through the clerk's reader like the dossier screen's details, and never
        written anywhere: the list keeps it with the row in memory until the desk locks.
        """
        try:
            fields = self.reader.fields(dossier_id)
        except (StoreError, VaultError):
            return ""
        name = str(fields.get("full_name") or "")
        parts = (str(fields.get(k) or "") for k in ("family", "middle", "given"))
        return name or " ".join(p for p in parts if p)


def capture_heartbeat(state: Path) -> bool:
    """The capture daemon's heartbeat names a live process started since this boot.

    The file outlives its daemon (a crash, a power cut): a process id from an earlier
    boot (its monotonic time is ahead of ours) or of this very process is not proof.
    """
    beat = read_heartbeat(state)
    if beat is None:
        return False
    pid, mono = beat.get("pid"), beat.get("mono")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    if isinstance(mono, int | float) and mono > time.monotonic():
        return False
    return alive(pid)


class Office:
    def __init__(
        self,
        state: Path,
        *,
        inbox: Path | None = None,
        wall: Callable[[], int] | None = None,
        free_bytes: Callable[[], int | None] | None = None,
        policy: LoginPolicy | None = None,
        out_dir: Path | None = None,
        capture_probe: Callable[[], bool] | None = None,
    ) -> None:
        self.state = state
        self.keyring = Keyring.load(state)
        self.store = Store.open(state)
        if wall is not None:
            clock = self.store.clock
            self.store.clock = Clock(clock.floor_ms, clock.last, wall=wall)
        self.guard = LoginGuard(self.store, self.keyring, policy)
        self.settings: Settings = self.store.settings()
        self.patterns: CodePatterns = self.settings.patterns()
        self.catalogue = catalogue.load(state, self.store)
        self.free_bytes = free_bytes or disk_free(state)
        self._inbox = inbox
        self.out_dir = out_dir or state / "handover"
        self.capture_probe = capture_probe or (lambda: capture_heartbeat(state))
        """True while the capture daemon runs (the heartbeat; tests put their own)."""
        self.unlocked: Unlocked | None = None

    @property
    def office_code(self) -> str:
        return self.keyring.office

    @property
    def inbox(self) -> Path | None:
        """Where the daemon watches (given on the command line, or recorded by ``edge run``)."""
        if self._inbox is not None:
            return self._inbox
        recorded = self.store.meta("inbox")
        return Path(recorded) if recorded else None

    def now_ms(self) -> int:
        """The wall clock, never behind the time floor (a Pi may boot believing it is 1970)."""
        clock = self.store.clock
        return max(clock.wall_ms(), clock.floor_ms)

    def today(self) -> date:
        return local_day(self.now_ms())

    def reload_settings(self) -> None:
        self.settings = self.store.settings()
        self.patterns = self.settings.patterns()

    def sign_in(self, name: str, password: str) -> Unlocked:
        """Check the password against the keyring as it is now, then unlock.

        The keyring is read again first: an update may have added, reset or
        disabled a clerk while the UI was running. Clerks regional IT added wait
        for any clerk's sign-in to receive the office key (docs/updates.md).
        """
        self.keyring = Keyring.load(self.state)
        self.guard.keyring = self.keyring
        session = self.guard.sign_in(name, password)
        ledger = DeskLedger(self.store, self.keyring.sealer(), session)
        self.unlocked = Unlocked(session, ledger, DeskReader(self.store, session))
        self._activate_waiting_clerks()
        self._wrap_keys_for_central()
        if self.unlocked.reader.reindex_pending:
            # an upgraded store's number index: a first slice now, the rest within searches
            self.unlocked.reader.reindex(budget_s=SIGN_IN_REINDEX_S)
        return self.unlocked

    def _activate_waiting_clerks(self) -> None:
        assert self.unlocked is not None
        try:
            from edge.update.apply import activate_pending
        except ImportError:
            return
        activate_pending(self.store, self.keyring, self.unlocked.session, self.unlocked.ledger)

    def _wrap_keys_for_central(self) -> None:
        """Let central read what was scanned before enrollment: the daemon cannot.

        Keys made before the box knew central's recipient key are wrapped to the
        office key only; a signed-in clerk is the first moment they can be
        re-wrapped, and the next sync ships the new wraps.
        """
        assert self.unlocked is not None
        from edge.sync.outbox import rewrap_for_central

        rewrap_for_central(self.store, self.keyring, self.unlocked.session)

    @property
    def must_change_password(self) -> bool:
        return self.unlocked is not None and self.keyring.must_change_password(self.unlocked.clerk)

    def lock(self, reason: str) -> None:
        """Drop the office key and every opened data key; audited as a sign-out."""
        unlocked, self.unlocked = self.unlocked, None
        if unlocked is None:
            return
        unlocked.session.close()
        unlocked.reader.forget()
        unlocked.ledger.forget()
        self.guard.signed_out(unlocked.clerk, reason)

    def close(self) -> None:
        self.lock("exit")
        self.store.close()
