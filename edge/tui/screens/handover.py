"""Handover of paper dossiers to the agency: the list for a date, recorded and printed.

Every completed dossier still at the post office is ticked; Space leaves one here
(the courier cannot take it today) or ticks it again. B records that the ticked
ones went back on the date in the field and writes their list, signed on paper
by both sides, as a PDF naming exactly those dossiers (a date's second handover
is its own list, "lần 2"). P writes the list of everything handed over on the
date again; D switches between what is waiting and a date's list. After a list
is written, a dialog shows its whole path and prints it or copies it to a stick.

The list follows Circular 17/2017/TT-BTTTT (``edge.tui.handover``): each dossier's
documents with originals and copies (as tagged on its pages, else as the catalogue
asks for its procedure), its pages, and its fee and how it was settled.
"""

from __future__ import annotations

import inspect
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Label

from edge.catalogue import Procedure
from edge.clock import parse_iso
from edge.desk import DeskError, DeskReason, local_day, parse_date
from edge.desk.fees import fee_states
from edge.tui.export import copy_to_stick, print_file
from edge.tui.handover import HandoverLine, Paper, handover_pdf
from edge.tui.i18n import N_, _, day, ngettext, number
from edge.tui.queries import HandoverSource
from edge.tui.screens import columns
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import ConfirmDialog, FileWrittenDialog
from edge.tui.widgets.common import Field
from edge.tui.widgets.dossier_list import Column, DossierList
from edge.vault import VaultError


class HandoverScreen(DeskScreen):
    nav = "handover"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "tick", N_("Tick / leave"), key_display="Space"),
        Binding("b", "record", N_("Hand over & print")),
        Binding("p", "print", N_("Print again")),
        Binding("d", "toggle_date", N_("Waiting / on date")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    AUTO_FOCUS = "#list"
    """The list, never the date field: keys typed right after "4" are commands."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = True
        self.left_out: set[str] = set()
        """Waiting dossiers the clerk keeps here this time (Space)."""
        self.last_pdf: Path | None = None

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
                Column("", 3, self._tick),
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

    def _tick(self, row: dict[str, Any]) -> str:
        if not self.waiting:
            return ""
        return "[ ]" if row["id"] in self.left_out else "[x]"

    def _waiting_ids(self) -> list[str]:
        pending = HandoverSource(self.office.store, None)
        return [r["id"] for r in pending.rows(0, max(1, pending.count()))]

    def action_tick(self) -> None:
        listing = self.query_one(DossierList)
        row = listing.current
        if not self.waiting or row is None:
            return
        self.left_out.symmetric_difference_update({row["id"]})
        listing.refresh()
        listing.action_move(1)
        self._title()

    @on(DossierList.Chosen)
    def _open(self, event: DossierList.Chosen) -> None:
        self.edge.open_dossier(event.row["id"])

    def chosen_date(self) -> date | None:
        return parse_date(self.query_one("#date", Input).value)

    def _title(self) -> None:
        total = self.query_one(DossierList).total
        if self.waiting:
            ticked = len(set(self._waiting_ids()) - self.left_out) if self.left_out else total
            self.set_title(
                _("Paper waiting to go back to the agency: {n} of {total} ticked").format(
                    n=number(ticked), total=number(total)
                )
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

    def action_toggle_date(self) -> None:
        if not self.waiting and self.chosen_date() is None:
            self.fail(DeskError(DeskReason.DATE_INVALID))
            return
        self.waiting = not self.waiting
        self.query_one(DossierList).set_source(self._source())
        self._title()

    @on(Input.Submitted, "#date")
    def _date_typed(self) -> None:
        if self.chosen_date() is None:
            self.fail(DeskError(DeskReason.DATE_INVALID))
            return
        self.waiting = False
        self.query_one(DossierList).set_source(self._source())
        self.query_one(DossierList).focus()
        self._title()

    def _lines(self, source: HandoverSource, only: set[str] | None = None) -> list[HandoverLine]:
        """What the list says of each dossier: no citizen's name or number, ever."""
        rows = source.rows(0, max(1, source.count()))
        rows = [r for r in rows if only is None or r["id"] in only]
        fees = fee_states(self.office.store, [r["id"] for r in rows])
        lines = []
        for row in rows:
            procedure = self.office.catalogue.get(row.get("procedure_code") or "")
            # the day at the counter: 02:03 on 2 December in Vietnam is still 1 December in UTC
            received = local_day(parse_iso(row["received_at"])) if row["received_at"] else None
            fee = fees.get(row["id"])
            free = False
            if fee is None and procedure is not None:
                listed = self.desk.ledger.catalogue_fee(row["id"], self.office.catalogue)
                free = listed is not None and not listed.total
            lines.append(
                HandoverLine(
                    row["code"] or "",
                    row.get("procedure_code") or "",
                    procedure.name if procedure else "",
                    int(row["pages"]),
                    received,
                    papers=self._papers(row["id"], procedure),
                    fee=fee,
                    free=free,
                )
            )
        return lines

    def _papers(self, dossier_id: str, procedure: Procedure | None) -> tuple[Paper, ...]:
        """The dossier's documents as the clerk tagged them (original or copy, and their
        pages); before pages can be tagged, what the catalogue asks for its procedure."""
        asked = {
            d.name: Paper(d.name, originals=d.originals, copies=d.copies)
            for d in (procedure.documents if procedure is not None else ())
        }
        documents = getattr(self.desk.reader, "documents", None)
        if documents is not None:
            # the office's catalogue, not one read from disk again for every dossier
            known = "catalogue" in inspect.signature(documents).parameters
            extra = {"catalogue": self.office.catalogue} if known else {}
            try:
                tagged = documents(dossier_id, **extra)
            except (DeskError, VaultError):
                tagged = None
            if tagged:
                return tuple(self._paper(d, asked) for d in tagged)
        return tuple(asked.values())

    @staticmethod
    def _paper(document: dict[str, Any], asked: dict[str, Paper]) -> Paper:
        """A tagged document: how it was given and its pages. One no page carries yet is
        listed with the originals and copies the catalogue asks for, if it names it."""
        name = str(document.get("name") or "")
        pages = tuple(int(n) for n in document.get("pages") or ())
        if not pages and name in asked:
            return asked[name]
        return Paper(name, kind=str(document.get("kind") or ""), pages=pages)

    def action_record(self) -> None:
        on = self.chosen_date()
        if on is None:
            self.fail(DeskError(DeskReason.DATE_INVALID))
            return
        ids = [i for i in self._waiting_ids() if i not in self.left_out]
        if not ids:
            self.fail(DeskError(DeskReason.NOTHING_TO_HAND_OVER))
            return
        kept = len(self.left_out)

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.record_handover(ids, on)
            except DeskError as exc:
                self.fail(exc)
                return
            self.left_out.clear()
            self.waiting = False
            self.query_one(DossierList).set_source(self._source())
            self._title()
            batches = self.desk.reader.handovers(on)
            self._write(on, only=set(ids), batch=len(batches) or 1)

        question = ngettext(
            "Record that {n} paper dossier went back to the agency on {date}?",
            "Record that {n} paper dossiers went back to the agency on {date}?",
            len(ids),
        ).format(n=number(len(ids)), date=day(on))
        if kept:
            question += " " + ngettext("{n} stays here.", "{n} stay here.", kept).format(
                n=number(kept)
            )
        self.app.push_screen(ConfirmDialog(question, _("Hand over & print")), confirmed)

    def action_print(self) -> None:
        on = self.chosen_date()
        if on is None:
            self.fail(DeskError(DeskReason.DATE_INVALID))
            return
        self._write(on)

    def _write(self, on: date, *, only: set[str] | None = None, batch: int | None = None) -> None:
        lines = self._lines(HandoverSource(self.office.store, on), only)
        if not lines:
            self.fail(DeskError(DeskReason.NOTHING_HANDED_OVER))
            return
        try:
            path = handover_pdf(
                lines,
                on=on,
                office=self.office.office_code,
                clerk=self.desk.clerk,
                out_dir=self.office.out_dir,
                batch=batch,
            )
        except DeskError as exc:
            self.fail(exc)
            return
        except OSError:
            self.fail(DeskError(DeskReason.PDF_FAILED))
            return
        self.last_pdf = path
        listed = ngettext("{n} dossier listed.", "{n} dossiers listed.", len(lines)).format(
            n=number(len(lines))
        )
        self.say(listed + " " + _("File: {name}").format(name=path.name), "ok")
        self.app.push_screen(FileWrittenDialog(listed, path), self._after_written)

    def _after_written(self, choice: str | None) -> None:
        path = self.last_pdf
        if path is None or choice is None:
            return
        try:
            if choice == "print":
                print_file(path)
                self.say(_("{name} was sent to the printer.").format(name=path.name), "ok")
            elif choice == "stick":
                where = copy_to_stick(path, self.office.settings.update_usb_roots)
                self.say(
                    _("Copied to the USB stick: {path}. Wait a moment, then pull it out.").format(
                        path=where
                    ),
                    "ok",
                )
        except DeskError as exc:
            self.fail(exc)
