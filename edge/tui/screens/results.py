"""Results central says are ready: hand each one over and record who took it.

Enter opens the dossier, as on every list; T hands the result under the cursor back.
The nearest return date comes first; a row past it is marked and counted in the title.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from edge.desk import DeskError
from edge.desk.fees import FeeState
from edge.tui.i18n import N_, _, number
from edge.tui.queries import ResultsSource
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen, overdue_note
from edge.tui.screens.dialogs import HandBackDialog
from edge.tui.screens.fees import FeeDialog, fee_said
from edge.tui.widgets.dossier_list import DossierList


class ResultsScreen(DeskScreen):
    nav = "results"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "hand_back", N_("Hand back")),
        Binding("o", "open", N_("Open dossier"), show=False),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    def body(self) -> ComposeResult:
        today = self.office.today
        yield DossierList(
            ResultsSource(self.office.store),
            [
                columns.code(),
                columns.name(),
                columns.procedure(),
                columns.return_by(today),
                columns.central(min_list_width=columns.WIDE),
            ],
            empty=_("No result is waiting. Results appear here when central sends them."),
            reveal=self.reveal_name,
            marked=columns.overdue_test(today),
            id="list",
        )

    def on_mount(self) -> None:
        self.query_one(DossierList).focus()
        self._title()

    def _title(self) -> None:
        listing = self.query_one(DossierList)
        title = _("Results to hand back ({n})").format(n=number(listing.total))
        source = listing.source
        if isinstance(source, ResultsSource):
            title += overdue_note(source.overdue(self.office.today()))
        self.set_title(title)

    def refresh_data(self) -> None:
        self.query_one(DossierList).reload()
        self._title()

    @on(DossierList.Chosen)
    def _chosen(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.query_one(DossierList).current
        if row is not None:
            self.edge.open_dossier(row["id"])

    def action_hand_back(self) -> None:
        row = self.query_one(DossierList).current
        if row is None:
            return
        desk = self.desk
        fee = desk.ledger.fee(row["id"])
        if fee is not None and fee.due_at_hand_back:
            # the fee left for the hand-back is collected first, then the result goes
            def collected(state: FeeState | None) -> None:
                if state is not None and state.paid:
                    self.say(fee_said(state), "ok")
                    self.action_hand_back()

            self.app.push_screen(FeeDialog(row["id"], collect=True), collected)
            return
        details = desk.reader.details(row["id"])
        desk.ledger.viewed(row["id"], ["fields"])
        procedure = self.office.catalogue.get(details.get("procedure", ""))

        def done(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            try:
                self.desk.ledger.hand_back(row["id"], *answer)
            except DeskError as exc:
                self.fail(exc)
                return
            self.refresh_data()
            self.say(_("Result {code} handed back.").format(code=row["code"]), "ok")

        self.app.push_screen(
            HandBackDialog(
                row["code"] or "", details.get("full_name", ""), procedure.name if procedure else ""
            ),
            done,
        )
