"""What every part of the clerk's ledger shares: the unlocked office and dossier look-ups."""

from __future__ import annotations

from typing import Any

from edge.desk.errors import DeskError, DeskReason
from edge.desk.reading import DeskReader
from edge.desk.statuses import MERGED
from edge.records import COMPLETE, Ledger
from edge.store import Store
from edge.vault import OfficeSession, Sealer


class DeskLedgerBase(Ledger):
    """A ``Ledger`` holding the unlocked office: moving a page re-seals it.

    Each public method of the parts built on this (forms, completion, pages, review,
    handover, quarantine) is one transaction of its own; callers must not hold one open.
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
            raise DeskError(DeskReason.DOSSIER_MISSING)
        return row

    def _editable(self, dossier_id: str) -> Any:
        row = self._dossier(dossier_id)
        if row["status"] == MERGED:
            raise DeskError(DeskReason.DOSSIER_MERGED)
        if row["status"] == COMPLETE:
            raise DeskError(DeskReason.ALREADY_COMPLETE)
        return row
