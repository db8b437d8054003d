"""``DeskLedger``: every change a signed-in clerk makes, assembled from the desk's parts.

Each part (forms, completion, pages, review, handover, quarantine) is a module of
its own built on ``DeskLedgerBase``; this class adds the clerk's own acts (a new
password) and the audit of what they looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.desk.completion import Completion
from edge.desk.documents import DocumentTags
from edge.desk.errors import DeskError, DeskReason
from edge.desk.fees import Fees
from edge.desk.forms import Forms
from edge.desk.handover import Handover
from edge.desk.quarantine import Quarantine
from edge.desk.review import Review
from edge.desk.signin import check_new_password, opens
from edge.desk.tasks import Tasks
from edge.vault import Keyring


class DeskLedger(Forms, Completion, Review, Handover, Quarantine, Fees, Tasks, DocumentTags):
    """The clerk's changes. Needs an unlocked office: moving a page re-seals it.

    Each method is one transaction of its own (callers must not hold one open).
    """

    def change_password(self, keyring: Keyring, password: str) -> None:
        """A new password for the signed-in clerk (first sign-in after regional IT set one).

        It must be hard to guess (``check_new_password``) and not the one it replaces:
        typing the temporary password again would keep the password regional IT knows.
        The office key is wrapped again under it by the vault; the old password
        opens nothing any more.
        """
        check_new_password(password, clerk=self.clerk, office=keyring.office)
        if opens(keyring, self.clerk, password):
            raise DeskError(DeskReason.PASSWORD_SAME, field="password")
        keyring.add_clerk(self.session, self.clerk, password)
        with self.store.transaction():
            self.record(None, "clerk.password_changed", {"clerk": self.clerk})

    def viewed(self, dossier_id: str, what: Sequence[str]) -> None:
        """Every opening of a citizen's details or pages is in the log (Decree 13/2023)."""
        with self.store.transaction():
            self.record(dossier_id, "audit.viewed", {"clerk": self.clerk, "what": list(what)})

    def listed(self, shown: Sequence[str]) -> None:
        """Lists show citizens' names too: which dossiers' names were drawn, once each per
        visit of a list (issue 12), so the log answers "who saw this name" for lists as
        it does for search results and opened dossiers."""
        with self.store.transaction():
            self.record(None, "audit.listed", {"clerk": self.clerk, "shown": list(shown)})

    def searched(self, shown: Sequence[str], total: int) -> None:
        """Search results show names: which dossiers were shown, not what was typed."""
        with self.store.transaction():
            self.record(
                None, "audit.searched", {"clerk": self.clerk, "shown": list(shown), "total": total}
            )
