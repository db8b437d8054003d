"""Files capture could not read: why, and what to do (retry or discard).

Retry puts the sealed original back into the scanner folder, so capture reads
it again (after an update fixed a reader, or a limit was raised). Discard
needs a confirmation and is recorded in the audit log; the sealed original is
kept until retention purges it.

Enter opens a file as on every list: its name whole, when it came, why it could not be
read and what to do, with R and X there too.

Whoever can write to the scanner folder chose the names shown here: they appear
only in ``Plain`` lines and list cells (never markup, control characters visible).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer

from edge.desk import DeskError, DeskReason
from edge.tui.i18n import N_, _, local_time, number
from edge.tui.messages import quarantine_label
from edge.tui.queries import quarantine_rows
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import ConfirmDialog, Dialog
from edge.tui.widgets.common import Plain
from edge.tui.widgets.dossier_list import Column, DossierList, ListSource


class QuarantineScreen(DeskScreen):
    nav = "quarantine"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", N_("Retry")),
        Binding("x", "discard", N_("Discard")),
        Binding("escape", "app.go('home')", N_("Back"), show=False),
    ]

    def body(self) -> ComposeResult:
        yield DossierList(
            ListSource(quarantine_rows(self.office.store)),
            [
                Column(_("File"), 0, lambda r: r["name"]),
                Column(_("Size"), 10, lambda r: _kb(r.get("bytes")), align="right"),
                Column(_("When"), 11, lambda r: local_time(r["at"])),
            ],
            empty=_("No file is in quarantine."),
            id="list",
        )
        yield Plain("", id="why")

    def on_mount(self) -> None:
        self.query_one(DossierList).focus()
        self.refresh_data()

    def refresh_data(self) -> None:
        rows = quarantine_rows(self.office.store)
        listing = self.query_one(DossierList)
        listing.source = ListSource(rows)
        listing.reload()
        self.set_title(_("Files that could not be read ({n})").format(n=number(len(rows))))

    @on(DossierList.Highlighted)
    def _why(self, event: DossierList.Highlighted) -> None:
        row = event.row
        self.query_one("#why", Plain).update(quarantine_label(row["reason"]) if row else "")

    @on(DossierList.Chosen)
    def _chosen(self, event: DossierList.Chosen) -> None:
        def act(answer: str | None) -> None:
            if answer == "retry":
                self.action_retry()
            elif answer == "discard":
                self.action_discard()

        self.app.push_screen(QuarantinedFile(event.row), act)

    def action_retry(self) -> None:
        row = self.query_one(DossierList).current
        if row is None:
            return
        inbox = self.office.inbox
        if inbox is None:
            self.fail(DeskError(DeskReason.NO_INBOX))
            return
        try:
            path = self.desk.ledger.retry_quarantined(row["id"], inbox)
        except DeskError as exc:
            self.fail(exc)
            self.refresh_data()
            return
        self.refresh_data()
        self.say(
            _("{name} is back in the scanner folder and will be read again.").format(
                name=path.name
            ),
            "ok",
        )

    def action_discard(self) -> None:
        row = self.query_one(DossierList).current
        if row is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.discard_quarantined(row["id"])
            except DeskError as exc:
                self.fail(exc)
            self.refresh_data()
            self.say(_("{name} was discarded.").format(name=row["name"]), "ok")

        question = _("Discard {name}? It will not become a dossier.").format(name=row["name"])
        self.app.push_screen(ConfirmDialog(question, _("Discard"), danger=True), confirmed)


class QuarantinedFile(Dialog):
    """One file in quarantine, opened: answers "retry", "discard" or None (Esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "answer('retry')", N_("Retry")),
        Binding("x", "answer('discard')", N_("Discard")),
        Binding("escape", "cancel", N_("Back"), key_display="Esc"),
    ]

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row
        with Vertical(classes="dialog"):
            yield Plain(row["name"], classes="dialog-title", id="file-name")
            yield Plain(
                _("{size}, set aside {time}").format(
                    size=_kb(row.get("bytes")), time=local_time(row["at"])
                )
            )
            yield Plain(quarantine_label(row["reason"]), id="file-why")
        yield Footer(compact=True, show_command_palette=False)

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


def _kb(size: int | None) -> str:
    if size is None:
        return "—"
    return f"{max(1, size // 1024)} KB"
