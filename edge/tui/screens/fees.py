"""The fee of one dossier (F6 on the dossier): how it is settled, and its receipt.

Opened with ``app.push_screen(FeeDialog(dossier_id), callback)``; the callback gets the
fee as recorded (``FeeState``) or None when nothing changed. The dialog shows what
the catalogue asks for the dossier's procedure and channel, and central's request
when its last word on the dossier was status 6 (financial obligation). The clerk
chooses how the fee is settled (1 collected now, 2 when the result is handed back,
3 exempt, with a reason typed or picked with F2), whether it is a charge (lệ phí) or a
fee (phí), and the amount, shown as Vietnamese write it (50.000) and in words.

Ctrl+S records it; settling "1" collects at once. F8 collects a fee left for the
hand-back now, or writes the receipt of a collected fee again. A collected fee gives a
receipt PDF (``edge.tui.receipt``) to print or copy to a stick, as the handover list.
Opened with ``collect=True`` (the hand-back of a result whose fee is still due), F8 is
what the clerk came for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from edge.catalogue import Fee
from edge.desk import DeskError, DeskReason
from edge.desk.fees import (
    EXEMPTION_REASONS,
    MAX_AMOUNT,
    MAX_REASON,
    FeeKind,
    FeeMode,
    FeeState,
    Receipt,
    amount_in_words,
    default_kind,
    parse_amount,
)
from edge.domain import PortalStatus
from edge.printable import printable
from edge.tui.export import copy_to_stick, print_file
from edge.tui.handover import KIND_WORDS
from edge.tui.i18n import N_, _, local_time, number
from edge.tui.messages import explain
from edge.tui.office import Office, Unlocked
from edge.tui.receipt import ReceiptPaper, receipt_pdf
from edge.tui.screens.dialogs import Dialog, FileWrittenDialog, fee_text
from edge.tui.widgets.common import Field, Plain, StatusLine, plain, translate_bindings
from edge.vault import VaultError

MODES = {"1": FeeMode.BEFORE, "2": FeeMode.AFTER, "3": FeeMode.EXEMPT}
MODE_NAMES = {
    FeeMode.BEFORE: N_("collected now, at reception"),
    FeeMode.AFTER: N_("collected when the result is handed back"),
    FeeMode.EXEMPT: N_("exempt"),
}
KINDS = {"1": FeeKind.CHARGE, "2": FeeKind.FEE}
FEE_LABEL = N_("Fee")
"""The dossier screen's hint for F6, "Lệ phí": ``Binding("f6", "fees", FEE_LABEL)``."""
FINANCIAL_OBLIGATION = int(PortalStatus.YEU_CAU_NGHIA_VU_TAI_CHINH)

if TYPE_CHECKING:
    from edge.tui.app import EdgeApp


def _digit(table: dict[str, Any], value: Any) -> str:
    return next((k for k, v in table.items() if v == value), "")


def amount_shown(value: str, cursor: int) -> tuple[str, int]:
    """The amount field's text with thousands separators, and where its cursor goes.

    The cursor keeps the digits that were on its right on its right, so typing in the
    middle of "1.500.000" does not jump to the end.
    """
    digits = re.sub(r"\D", "", value)[: len(str(MAX_AMOUNT)) + 1]
    if not digits:
        return "", 0
    right = len(re.sub(r"\D", "", value[cursor:]))
    shown = number(int(digits))
    position = len(shown)
    seen = 0
    while position > 0 and seen < right:
        position -= 1
        if shown[position].isdigit():
            seen += 1
    while 0 < position < len(shown) and not shown[position - 1].isdigit():
        position -= 1  # before a separator, not after it
    return shown, position


def fee_said(state: FeeState) -> str:
    """One line for the screen that opened the dialog: what was recorded."""
    if state.paid:
        receipt = Receipt.parse(state.receipt)
        return _("Collected {amount} đồng, receipt no. {number}.").format(
            amount=number(state.amount), number=receipt.number if receipt else state.receipt
        )
    if state.mode == FeeMode.EXEMPT:
        return _("Exempt from the fee: {reason}.").format(reason=state.reason)
    return _("{amount} đồng to collect when the result is handed back.").format(
        amount=number(state.amount)
    )


def _narrow(field: Field, width: int) -> Field:
    """A short field (inline: app.tcss gives every form field the row's width)."""
    field.styles.width = width
    return field


class ReasonPicker(Dialog):
    """The usual exemption reasons; Enter takes one (the field can still be edited)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(_("Reason for the exemption"), classes="dialog-title")
            yield OptionList(
                *(Option(plain(reason), id=str(i)) for i, reason in enumerate(EXEMPTION_REASONS)),
                id="reasons",
            )
        yield Footer(compact=True, show_command_palette=False)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(EXEMPTION_REASONS[int(event.option.id or 0)])


class FeeDialog(ModalScreen[FeeState | None]):
    """The fee of one dossier: the catalogue's amount, how it is settled, the receipt."""

    DEFAULT_CSS = """
    FeeDialog #fee-box { width: 76; }
    FeeDialog .beside { width: 1fr; color: $text-muted; padding-left: 1; }
    FeeDialog #central { color: $text-warning; text-style: bold; }
    FeeDialog #central:ansi { color: ansi_bright_yellow; }
    FeeDialog #paid { color: $text-success; }
    FeeDialog #paid:ansi { color: ansi_bright_green; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), key_display="Esc"),
        Binding("ctrl+s", "save", N_("Save"), key_display="Ctrl+S"),
        Binding("f8", "receipt", N_("Collect & receipt"), key_display="F8"),
        Binding("f2", "pick_reason", N_("Reasons"), key_display="F2"),
    ]

    def __init__(self, dossier_id: str, *, collect: bool = False) -> None:
        super().__init__()
        translate_bindings(self)
        self.dossier_id = dossier_id
        self.collect = collect
        self.state: FeeState | None = None
        self.catalogue: Fee | None = None
        self.last_receipt: Path | None = None
        self._saved: FeeState | None = None
        """What the dialog will return: the fee as recorded once something was saved."""
        self.code = ""
        self.dossier_code = ""
        self.procedure_code = ""
        self.procedure_name = ""

    # -- what it shows --------------------------------------------------------------------------

    @property
    def office(self) -> Office:
        app: EdgeApp = self.app  # type: ignore[assignment]
        return app.office

    @property
    def desk(self) -> Unlocked:
        unlocked = self.office.unlocked
        if unlocked is None:
            raise DeskError(DeskReason.LOCKED)
        return unlocked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="fee-box"):
            yield Plain("", classes="dialog-title", id="fee-title")
            yield Plain("", id="procedure", classes="muted")
            yield Plain("", id="catalogue", classes="muted")
            yield Plain("", id="central")
            yield Plain("", id="paid")
            with Horizontal(classes="form-row"):
                yield Label(_("Settled"))
                yield _narrow(Field(id="mode", compact=True, max_length=1, restrict="[1-3]?"), 3)
                yield Plain("", id="mode-name", classes="beside")
            with Horizontal(classes="form-row"):
                yield Label(_("Kind"))
                yield _narrow(Field(id="kind", compact=True, max_length=1, restrict="[1-2]?"), 3)
                yield Plain("", id="kind-name", classes="beside")
            with Horizontal(classes="form-row"):
                yield Label(_("Amount (đồng)"))
                yield _narrow(
                    Field(id="amount", compact=True, max_length=14, restrict=r"[0-9.,\s]*"), 14
                )
                yield Plain("", id="amount-words", classes="beside")
            with Horizontal(classes="form-row", id="reason-row"):
                yield Label(_("Reason"))
                yield Field(
                    id="reason",
                    compact=True,
                    max_length=MAX_REASON,
                    suggester=SuggestFromList(EXEMPTION_REASONS, case_sensitive=False),
                )
            with Horizontal(classes="form-row", id="payer-row"):
                yield Label(_("Payer"))
                yield Field(id="payer", compact=True, max_length=100)
            yield StatusLine("", id="msg")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        ledger = self.desk.ledger
        row = self.office.store.dossier(self.dossier_id)
        if row is None:
            self.dismiss(None)
            return
        self.dossier_code = row["code"] or ""
        self.code = self.dossier_code or _("(no code)")
        procedure = self.office.catalogue.get(row["procedure_code"] or "")
        self.procedure_code = row["procedure_code"] or ""
        self.procedure_name = procedure.name if procedure else ""
        self.catalogue = ledger.catalogue_fee(self.dossier_id, self.office.catalogue)
        self.query_one("#fee-title", Plain).update(
            (_("Collect the fee of {code}") if self.collect else _("Fee of dossier {code}")).format(
                code=self.code
            )
        )
        self.query_one("#procedure", Plain).update(
            _("Procedure: {name}").format(
                name=f"{self.procedure_code} {self.procedure_name}".strip() or "—"
            )
        )
        catalogue = _("Catalogue: {fee}").format(fee=fee_text(self.catalogue))
        if self.catalogue is not None and self.catalogue.basis:
            catalogue += " · " + self.catalogue.basis
        self.query_one("#catalogue", Plain).update(catalogue)
        self._show_central()
        self._fill(ledger.fee(self.dossier_id))

    def _show_central(self) -> None:
        """Central's status 6: the agency asks the citizen to pay, in its own words."""
        last = self.desk.reader.last_central_status(self.dossier_id)
        central = self.query_one("#central", Plain)
        asks = last is not None and last["status"] == FINANCIAL_OBLIGATION
        central.display = asks
        if asks and last is not None:
            central.update(
                "! " + _("Central asks for payment: {note}").format(note=last["note"] or "—")
            )

    def _fill(self, state: FeeState | None) -> None:
        """The form from the recorded fee, or from the catalogue when none was recorded."""
        self.state = state
        fields = {name: self.query_one(f"#{name}", Input) for name in ("mode", "kind", "amount")}
        if state is not None:
            mode, kind, amount, reason = state.mode, state.kind, state.amount, state.reason
        else:
            free = self.catalogue is not None and not self.catalogue.total
            mode = FeeMode.EXEMPT if free else FeeMode.BEFORE
            kind = default_kind(self.catalogue)
            amount = self.catalogue.total if self.catalogue is not None else 0
            basis = self.catalogue.basis if self.catalogue is not None else ""
            reason = basis if free and len(basis) <= MAX_REASON else ""
        if self.collect and mode == FeeMode.BEFORE and state is None:
            mode = FeeMode.AFTER
        fields["mode"].value = _digit(MODES, mode)
        fields["kind"].value = _digit(KINDS, kind)
        fields["amount"].value = number(amount) if amount else ""
        self.query_one("#reason", Input).value = printable(reason)
        paid = self.query_one("#paid", Plain)
        paid.display = state is not None and state.paid
        if state is not None and state.paid:
            receipt = Receipt.parse(state.receipt)
            paid.update(
                _("Collected {amount} đồng at {time}, receipt no. {number}.").format(
                    amount=number(state.amount),
                    time=local_time(state.paid_at),
                    number=receipt.number if receipt else state.receipt,
                )
            )
        for field in self.query(Field):
            field.disabled = state is not None and state.paid
        self._show_mode()
        self._show_kind()
        self._show_amount()
        if state is not None and state.paid:
            self.say(_("F8 writes the receipt again; Esc closes."))
            return
        if not self.query_one("#payer", Input).value:
            self.query_one("#payer", Input).value = printable(self._citizen())
        if self.collect:
            self.query_one("#payer", Input).focus()
            self.say(_("Check the amount and the payer, then F8 collects and writes the receipt."))
        else:
            self.query_one("#mode", Input).focus()
            self.say(_("1, 2 or 3, then the amount; Ctrl+S records it."))

    def _citizen(self) -> str:
        """The citizen's name, offered as the payer (an audited view of their details)."""
        try:
            name = self.desk.reader.details(self.dossier_id).get("full_name", "")
        except (DeskError, VaultError):
            return ""
        if name:
            self.desk.ledger.viewed(self.dossier_id, ["fields"])
        return name

    def say(self, message: str, kind: str = "info") -> None:
        self.query_one("#msg", StatusLine).say(message, kind)

    def _mode(self) -> FeeMode | None:
        return MODES.get(self.query_one("#mode", Input).value)

    def _show_mode(self) -> None:
        mode = self._mode()
        self.query_one("#mode-name", Plain).update(
            _(MODE_NAMES[mode]) if mode is not None else _("1 now, 2 at hand-back, 3 exempt")
        )
        self.query_one("#reason-row").display = mode == FeeMode.EXEMPT
        self.query_one("#payer-row").display = mode != FeeMode.EXEMPT
        self.refresh_bindings()

    def _show_kind(self) -> None:
        kind = KINDS.get(self.query_one("#kind", Input).value)
        self.query_one("#kind-name", Plain).update(
            _(KIND_WORDS[kind]) if kind is not None else _("1 charge (lệ phí), 2 fee (phí)")
        )

    def _show_amount(self) -> None:
        amount = parse_amount(self.query_one("#amount", Input).value)
        words = amount_in_words(amount) if amount else ""
        self.query_one("#amount-words", Plain).update(words)

    @on(Input.Changed, "#mode")
    def _mode_changed(self) -> None:
        self.query_one("#mode", Input).remove_class("-invalid")
        self._show_mode()

    @on(Input.Changed, "#kind")
    def _kind_changed(self) -> None:
        self.query_one("#kind", Input).remove_class("-invalid")
        self._show_kind()

    @on(Input.Changed, "#amount")
    def _amount_changed(self, event: Input.Changed) -> None:
        field = event.input
        field.remove_class("-invalid")
        shown, cursor = amount_shown(field.value, field.cursor_position)
        if shown != field.value:
            field.value = shown
            field.cursor_position = cursor
            return
        self._show_amount()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        visible = [f for f in self.query(Field) if f.display and f.parent and f.parent.display]
        if event.input is visible[-1]:
            if self.collect:
                self.action_receipt()
            else:
                self.action_save()
        else:
            self.focus_next()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        paid = self.state is not None and self.state.paid
        if action == "pick_reason":
            return not paid and self._mode() == FeeMode.EXEMPT
        if action == "save":
            return not paid
        return True

    # -- acting -------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        self.dismiss(self._saved)

    def action_pick_reason(self) -> None:
        def chosen(reason: str | None) -> None:
            field = self.query_one("#reason", Input)
            if reason:
                field.value = reason
                field.remove_class("-invalid")
            field.focus()

        self.app.push_screen(ReasonPicker(), chosen)

    def _form(self) -> tuple[FeeMode, FeeKind, int, str, str] | None:
        """The form's values, or None after marking the first field to fix."""
        mode = self._mode()
        if mode is None:
            self._mark(DeskError(DeskReason.FEE_MODE_INVALID, field="mode"))
            return None
        kind = KINDS.get(self.query_one("#kind", Input).value)
        if kind is None:
            self._mark(DeskError(DeskReason.FEE_MODE_INVALID, field="kind"))
            return None
        typed = self.query_one("#amount", Input).value
        amount = parse_amount(typed) if typed.strip() else 0
        if amount is None or amount > MAX_AMOUNT:
            self._mark(DeskError(DeskReason.FEE_AMOUNT_INVALID, field="amount"))
            return None
        reason = self.query_one("#reason", Input).value
        payer = self.query_one("#payer", Input).value
        return mode, kind, amount, reason, payer

    def _mark(self, error: DeskError) -> None:
        if error.field:
            for field in self.query(f"#{error.field}"):
                field.add_class("-invalid")
                field.focus()
        self.say(explain(error), "error")

    def _unchanged(self, mode: FeeMode, kind: FeeKind, amount: int) -> bool:
        state = self.state
        return state is not None and (state.mode, state.kind, state.amount) == (mode, kind, amount)

    def action_save(self) -> None:
        """Record how the fee is settled; "collected now" collects and writes the receipt."""
        form = self._form()
        if form is None:
            return
        mode, kind, amount, reason, payer = form
        try:
            receipt = self.desk.ledger.settle_fee(
                self.dossier_id, mode, amount, kind=kind, reason=reason, payer=payer
            )
        except DeskError as exc:
            self._mark(exc)
            return
        self._saved = self.desk.ledger.fee(self.dossier_id)
        if receipt is None:
            self.dismiss(self._saved)
            return
        self._written(receipt, payer)

    def action_receipt(self) -> None:
        """F8: collect a fee left for the hand-back now, or write a collected one's again."""
        if self.state is not None and self.state.paid:
            self._reprint()
            return
        form = self._form()
        if form is None:
            return
        mode, kind, amount, _reason, payer = form
        if mode == FeeMode.EXEMPT:
            self.say(explain(DeskError(DeskReason.FEE_NOT_DUE)), "error")
            return
        if mode == FeeMode.BEFORE:
            self.action_save()
            return
        ledger = self.desk.ledger
        try:
            if not self._unchanged(mode, kind, amount):
                ledger.settle_fee(self.dossier_id, mode, amount, kind=kind, payer=payer)
            receipt = ledger.collect_fee(self.dossier_id, payer)
        except DeskError as exc:
            self._mark(exc)
            return
        self._saved = ledger.fee(self.dossier_id)
        self._written(receipt, payer)

    def _reprint(self) -> None:
        paid = self.desk.ledger.paid_fee(self.dossier_id)
        receipt = Receipt.parse(str(paid.get("receipt") or "")) if paid else None
        if paid is None or receipt is None:
            self.say(explain(DeskError(DeskReason.PDF_FAILED)), "error")
            return
        self.desk.ledger.viewed(self.dossier_id, ["receipt"])
        self._write(
            receipt,
            paid_at=str(paid.get("paid_at") or ""),
            kind=FeeKind(str(paid.get("kind") or FeeKind.CHARGE)),
            amount=int(paid.get("amount") or 0),
            payer=str(paid.get("payer") or ""),
            clerk=str(paid.get("clerk") or ""),
        )

    def _written(self, receipt: Receipt, payer: str) -> None:
        state = self._saved
        assert state is not None
        self._fill(state)
        self._write(
            receipt,
            paid_at=state.paid_at,
            kind=state.kind,
            amount=state.amount,
            payer=payer,
            clerk=self.desk.clerk,
        )

    def _write(
        self, receipt: Receipt, *, paid_at: str, kind: FeeKind, amount: int, payer: str, clerk: str
    ) -> None:
        paper = ReceiptPaper(
            receipt=receipt,
            paid_at=paid_at,
            dossier_code=self.dossier_code,
            procedure_code=self.procedure_code,
            procedure_name=self.procedure_name,
            kind=kind,
            amount=amount,
            payer=payer,
            clerk=clerk,
            basis=self.catalogue.basis if self.catalogue is not None else "",
        )
        try:
            path = receipt_pdf(paper, out_dir=self.office.out_dir)
        except DeskError as exc:
            self.say(explain(exc), "error")
            return
        except OSError:
            self.say(explain(DeskError(DeskReason.PDF_FAILED)), "error")
            return
        self.last_receipt = path
        summary = _("Receipt no. {number}: {amount} đồng.").format(
            number=receipt.number, amount=number(amount)
        )
        self.app.push_screen(FileWrittenDialog(summary, path), self._after_written)

    def _after_written(self, choice: str | None) -> None:
        path = self.last_receipt
        try:
            if path is not None and choice == "print":
                print_file(path)
                self._toast(_("{name} was sent to the printer.").format(name=path.name))
            elif path is not None and choice == "stick":
                where = copy_to_stick(path, self.office.settings.update_usb_roots)
                self._toast(
                    _("Copied to the USB stick: {path}. Wait a moment, then pull it out.").format(
                        path=where
                    )
                )
        except DeskError as exc:
            self.say(explain(exc), "error")  # stays open: F8 writes it again
            return
        self.dismiss(self._saved or self.state)

    def _toast(self, message: str) -> None:
        self.app.notify(printable(message), markup=False, timeout=6)
