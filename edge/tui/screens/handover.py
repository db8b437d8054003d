"""Handover of paper dossiers to the agency: the list for a date, recorded and printed.

B records that every completed dossier still at the post office went back on
the date in the field and writes the signed-on-paper list as a PDF; P prints
the list of a date again; D switches between what is waiting and a date's list.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Label

from edge.desk import DeskError, parse_date
from edge.tui.handover import HandoverLine, handover_pdf
from edge.tui.i18n import N_, _, day, number
from edge.tui.queries import HandoverSource
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import ConfirmDialog
from edge.tui.widgets.common import Field
from edge.tui.widgets.dossier_list import DossierList


class HandoverScreen(DeskScreen):
    nav = "handover"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "record", N_("Hand over & print")),
        Binding("p", "print", N_("Print again")),
        Binding("d", "toggle", N_("Waiting / on date")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    DEFAULT_CSS = """
    HandoverScreen #date-row { padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting = True

    def body(self) -> ComposeResult:
        with Horizontal(classes="form-row", id="date-row"):
            yield Label(_("Handover date"))
            yield Field(
                value=self.office.today().strftime("%d/%m/%Y"),
                id="date",
                compact=True,
                max_length=10,
            )
        yield DossierList(
            HandoverSource(self.office.store, None),
            [
                columns.code(),
                columns.procedure(),
                columns.pages(),
                columns.received(),
                columns.status(),
            ],
            empty=_("Nothing here. Completed dossiers wait here until their paper goes back."),
            id="list",
        )

    def on_mount(self) -> None:
        self.query_one(DossierList).focus()
        self._title()

    @on(DossierList.Chosen)
    def _open(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])

    def chosen_date(self) -> date | None:
        return parse_date(self.query_one("#date", Input).value)

    def _title(self) -> None:
        total = self.query_one(DossierList).total
        if self.waiting:
            self.set_title(
                _("Paper dossiers waiting to go back to the agency ({n})").format(n=number(total))
            )
        else:
            on = self.chosen_date()
            self.set_title(
                _("Handed over on {date} ({n})").format(
                    date=day(on) if on else "—", n=number(total)
                )
            )

    def _source(self) -> HandoverSource:
        return HandoverSource(self.office.store, None if self.waiting else self.chosen_date())

    def refresh_data(self) -> None:
        self.query_one(DossierList).reload()
        self._title()

    def action_toggle(self) -> None:
        if not self.waiting and self.chosen_date() is None:
            self.fail(DeskError("date_invalid"))
            return
        self.waiting = not self.waiting
        self.query_one(DossierList).set_source(self._source())
        self._title()

    @on(Input.Submitted, "#date")
    def _date_typed(self) -> None:
        if self.chosen_date() is None:
            self.fail(DeskError("date_invalid"))
            return
        self.waiting = False
        self.query_one(DossierList).set_source(self._source())
        self.query_one(DossierList).focus()
        self._title()

    def _lines(self, source: HandoverSource) -> list[HandoverLine]:
        rows = source.rows(0, max(1, source.count()))
        lines = []
        for row in rows:
            procedure = self.office.catalogue.get(row.get("procedure_code") or "")
            received = row["received_at"][:10] if row["received_at"] else None
            lines.append(
                HandoverLine(
                    row["code"] or "",
                    row.get("procedure_code") or "",
                    procedure.name if procedure else "",
                    int(row["pages"]),
                    parse_date(received) if received else None,
                )
            )
        return lines

    def action_record(self) -> None:
        on = self.chosen_date()
        if on is None:
            self.fail(DeskError("date_invalid"))
            return
        pending = HandoverSource(self.office.store, None)
        ids = [r["id"] for r in pending.rows(0, max(1, pending.count()))]
        if not ids:
            self.fail(DeskError("nothing_to_hand_over"))
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.record_handover(ids, on)
            except DeskError as exc:
                self.fail(exc)
                return
            self.waiting = False
            self.query_one(DossierList).set_source(self._source())
            self._title()
            self._write(on)

        question = _("Record that {n} paper dossier(s) went back to the agency on {date}?").format(
            n=number(len(ids)), date=day(on)
        )
        self.app.push_screen(ConfirmDialog(question, _("Hand over & print")), confirmed)

    def action_print(self) -> None:
        on = self.chosen_date()
        if on is None:
            self.fail(DeskError("date_invalid"))
            return
        self._write(on)

    def _write(self, on: date) -> None:
        lines = self._lines(HandoverSource(self.office.store, on))
        if not lines:
            self.fail(DeskError("nothing_handed_over"))
            return
        try:
            path = handover_pdf(
                lines,
                on=on,
                office=self.office.office_code,
                clerk=self.desk.clerk,
                out_dir=self.office.out_dir,
            )
        except DeskError as exc:
            self.fail(exc)
            return
        except OSError:
            self.fail(DeskError("pdf_failed"))
            return
        self.last_pdf = path
        self.say(
            _("{n} dossier(s) listed; print {path}").format(n=number(len(lines)), path=path), "ok"
        )
