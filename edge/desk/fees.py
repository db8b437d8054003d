"""Fees (phí, lệ phí): what a dossier costs, how it is settled, and the receipt for it.

The amount due starts from the procedure catalogue, for the channel the dossier came
by (``catalogue_fee``); the clerk may change it (a certified copy is priced per page)
and records how it is settled:

* ``before``: collected at reception. Recording it collects it: a receipt number is
  taken and the payment is recorded in the same transaction;
* ``after``: to be collected when the result is handed back. ``Handover.hand_back``
  refuses while it is unpaid; ``collect_fee`` records the payment then;
* ``exempt`` (miễn): nothing is collected, for a short reason (``EXEMPTION_REASONS``
  lists the usual ones; another may be typed). Reasons name a category of people or
  a rule, never a person: they are kept in clear beside the amount.

Receipt numbers run per office and per calendar year (Vietnam time) from 1, from a
counter in the database that only moves inside the transaction recording a payment:
a number is never given twice, and a payment that did not commit took none.

Each change is an event (``dossier.fee_set``, ``dossier.fee_paid``: audited with the
clerk, sealed, shipped by sync) and the ``fees`` table is their projection, written
through named ``Store`` methods. The payer's name is personal data: it travels only
sealed in ``dossier.fee_paid`` (so a lost receipt can be printed again) and on the
printed receipt, never in the projection or a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from edge import text
from edge.clock import iso
from edge.desk.base import DeskLedgerBase
from edge.desk.details import MAX_NAME
from edge.desk.errors import DeskError, DeskReason
from edge.desk.statuses import MERGED, local_day
from edge.store import Store
from edge.vault import VaultError

if TYPE_CHECKING:
    from edge.catalogue import Catalogue, Fee
    from edge.domain import Channel

MAX_AMOUNT = 100_000_000
"""The largest amount a clerk may record, in VND: the catalogue's own limit."""
MAX_REASON = 80
"""Exemption reasons are a category or a rule in a few words, not a story."""

EXEMPTION_REASONS = (
    "Đăng ký đúng hạn",
    "Người thuộc hộ nghèo",
    "Người có công với cách mạng",
    "Người khuyết tật",
    "Trẻ em dưới 6 tuổi",
    "Đồng bào dân tộc thiểu số ở vùng khó khăn",
    "Nộp hồ sơ trực tuyến",
)
"""The usual reasons for an exemption (miễn phí, lệ phí), as the clerk picks them.

Shown and printed in Vietnamese whatever the UI language: they are the words of the
fee rules (Luật Hộ tịch 2014, Điều 11; Thông tư 85/2019/TT-BTC and the provinces'
resolutions), and the handover list and central read them as they are.
"""


class FeeMode(StrEnum):
    BEFORE = "before"
    """Collected at reception."""
    AFTER = "after"
    """Collected when the result is handed back."""
    EXEMPT = "exempt"
    """Miễn: nothing is collected, for a reason."""


class FeeKind(StrEnum):
    CHARGE = "charge"
    """Lệ phí."""
    FEE = "fee"
    """Phí."""


@dataclass(frozen=True)
class Receipt:
    """A receipt number: the office's series for a year (ký hiệu) and its number (số)."""

    office: str
    year: int
    seq: int

    @property
    def series(self) -> str:
        return f"{self.office}-{self.year}"

    @property
    def number(self) -> str:
        return f"{self.seq:07d}"

    @property
    def text(self) -> str:
        """The one string that names the receipt: ``H29.01-2026-0000012``."""
        return f"{self.series}-{self.number}"

    @classmethod
    def parse(cls, value: str) -> Receipt | None:
        found = _RECEIPT.fullmatch(value or "")
        if found is None:
            return None
        return cls(found.group(1), int(found.group(2)), int(found.group(3)))


_RECEIPT = re.compile(r"(.+)-([0-9]{4})-([0-9]{7,})")


@dataclass(frozen=True)
class FeeState:
    """A dossier's fee as recorded: how it is settled, how much, and whether it was paid."""

    dossier_id: str
    mode: FeeMode
    kind: FeeKind
    amount: int
    reason: str = ""
    receipt: str = ""
    paid_at: str = ""

    @property
    def paid(self) -> bool:
        return bool(self.receipt)

    @property
    def due_at_hand_back(self) -> bool:
        """Still to be collected before the result may leave the counter."""
        return self.mode == FeeMode.AFTER and not self.paid


def fee_state(store: Store, dossier_id: str) -> FeeState | None:
    """The recorded fee of a dossier, or None when nobody recorded one."""
    row = store.fee(dossier_id)
    return None if row is None else _state(row)


def fee_states(store: Store, dossier_ids: list[str]) -> dict[str, FeeState]:
    """The recorded fees of several dossiers (a handover list), by dossier id."""
    return {row["dossier_id"]: _state(row) for row in store.fees_of(dossier_ids)}


def _state(row: Any) -> FeeState:
    return FeeState(
        row["dossier_id"],
        FeeMode(row["mode"]),
        FeeKind(row["kind"]),
        int(row["amount"]),
        row["reason"] or "",
        row["receipt"] or "",
        row["paid_at"] or "",
    )


def catalogue_fee(catalogue: Catalogue, procedure_code: str, channel: int) -> Fee | None:
    """What the catalogue says the procedure costs by this channel; None when it does not say."""
    procedure = catalogue.get(procedure_code or "")
    return procedure.fee_for(channel) if procedure is not None else None


def default_kind(fee: Fee | None) -> FeeKind:
    """Phí when the catalogue asks a fee and no charge; lệ phí otherwise (most procedures)."""
    if fee is not None and fee.fee and not fee.charge:
        return FeeKind.FEE
    return FeeKind.CHARGE


def parse_amount(value: str) -> int | None:
    """An amount as clerks type it: ``50000``, ``50.000``, ``50,000 đ``; None if not one."""
    cleaned = re.sub(r"[\s.,]|đồng|đ|vnd", "", (value or "").strip().lower())
    if not cleaned or not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > 12:
        return None
    return int(cleaned)


def vnd(amount: int) -> str:
    """An amount as Vietnamese write it: ``50.000 đ``."""
    return f"{amount:,}".replace(",", ".") + " đ"


_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUPS = ("", "nghìn", "triệu")


def _hundreds(n: int, full: bool) -> list[str]:
    """The words of 1 to 999; ``full`` when a larger group comes first (1.005: "không trăm
    linh năm")."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units and words:
            words.append("linh")
    elif tens == 1:
        words.append("mười")
    else:
        words += [_DIGITS[tens], "mươi"]
    if units == 1 and tens >= 2:
        words.append("mốt")
    elif units == 4 and tens >= 2:
        words.append("tư")
    elif units == 5 and tens >= 1:
        words.append("lăm")
    elif units:
        words.append(_DIGITS[units])
    return words


def number_words(n: int) -> str:
    """A whole number in Vietnamese words: 50000 -> "năm mươi nghìn", 1005 -> "một nghìn
    không trăm linh năm", 21 -> "hai mươi mốt", 15 -> "mười lăm".

    Groups of three digits are read with nghìn, triệu, tỷ (then nghìn tỷ, ...); a group
    of zeros is left out, and a group after a larger one reads its hundreds in full.
    """
    if n < 0:
        raise ValueError("amounts are not negative")
    if n == 0:
        return "không"
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if not group:
            continue
        words += _hundreds(group, full=bool(words))
        scale = _GROUPS[index % 3]
        if scale:
            words.append(scale)
        words += ["tỷ"] * (index // 3)
    return " ".join(words)


def amount_in_words(amount: int) -> str:
    """The amount as a receipt writes it in words: "Năm mươi nghìn đồng"."""
    words = number_words(amount)
    return words[:1].upper() + words[1:] + " đồng"


def clean_reason(value: str) -> str:
    """An exemption reason on one line, checked: required, printable, short."""
    reason = " ".join(text.nfc(value or "").split())
    if not reason:
        raise DeskError(DeskReason.FEE_REASON_MISSING, field="reason")
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise DeskError(DeskReason.FEE_REASON_TOO_LONG, field="reason", limit=MAX_REASON)
    return reason


def clean_payer(value: str) -> str:
    """The payer's name on one line; may be empty (then written by hand on the receipt)."""
    payer = " ".join(text.nfc(value or "").split())
    if payer and (
        len(payer) > MAX_NAME or not payer.isprintable() or not any(c.isalpha() for c in payer)
    ):
        raise DeskError(DeskReason.NAME_INVALID, field="payer")
    return payer


class Fees(DeskLedgerBase):
    if TYPE_CHECKING:  # DeskLedger has it from Forms

        def saved_channel(self, dossier_id: str) -> Channel: ...

    def fee(self, dossier_id: str) -> FeeState | None:
        return fee_state(self.store, dossier_id)

    def catalogue_fee(self, dossier_id: str, catalogue: Catalogue) -> Fee | None:
        """The catalogue's fee for this dossier's procedure and channel (the default amount)."""
        row = self._dossier(dossier_id)
        return catalogue_fee(catalogue, row["procedure_code"] or "", self.saved_channel(dossier_id))

    def settle_fee(
        self,
        dossier_id: str,
        mode: FeeMode | str,
        amount: int,
        *,
        kind: FeeKind | str = FeeKind.CHARGE,
        reason: str = "",
        payer: str = "",
    ) -> Receipt | None:
        """Record how the fee is settled; ``before`` collects it now and returns the receipt.

        Raises DeskError: ``fee_paid`` once a receipt was given (the fee no longer
        changes), ``fee_mode_invalid``, ``fee_amount_invalid`` (not 0 to MAX_AMOUNT),
        ``fee_amount_zero`` (nothing to collect: exempt instead), the reason's and the
        payer's problems, and the dossier's own (missing, merged, handed back).
        """
        try:
            mode = FeeMode(mode)
        except ValueError:
            raise DeskError(DeskReason.FEE_MODE_INVALID, field="mode") from None
        try:
            kind = FeeKind(kind)
        except ValueError:
            raise DeskError(DeskReason.FEE_MODE_INVALID, field="kind") from None
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise DeskError(DeskReason.FEE_AMOUNT_INVALID, field="amount")
        if not 0 <= amount <= MAX_AMOUNT:
            raise DeskError(DeskReason.FEE_AMOUNT_INVALID, field="amount", limit=MAX_AMOUNT)
        if mode != FeeMode.EXEMPT and not amount:
            raise DeskError(DeskReason.FEE_AMOUNT_ZERO, field="amount")
        reason = clean_reason(reason) if mode == FeeMode.EXEMPT else ""
        payer = clean_payer(payer)
        self._settleable(dossier_id)
        with self.store.transaction():
            self._settleable(dossier_id)  # again, inside: another desk may have collected it
            self.store.put_fee(
                dossier_id,
                mode=str(mode),
                kind=str(kind),
                amount=amount,
                reason=reason or None,
                updated=iso(self.store.time_ms()),
            )
            self.record(
                dossier_id,
                "dossier.fee_set",
                {
                    "mode": str(mode),
                    "kind": str(kind),
                    "amount": amount,
                    "reason": reason or None,
                    "clerk": self.clerk,
                },
            )
            if mode != FeeMode.BEFORE:
                return None
            return self._collect(dossier_id, kind, amount, payer)

    def collect_fee(self, dossier_id: str, payer: str = "") -> Receipt:
        """The fee left for the hand-back is paid now: record it and return the receipt.

        Raises DeskError ``fee_not_due`` when nothing is waiting to be collected (no fee,
        exempt), ``fee_paid`` when it was collected already.
        """
        payer = clean_payer(payer)
        self._dossier(dossier_id)
        with self.store.transaction():
            state = fee_state(self.store, dossier_id)
            if state is None or state.mode == FeeMode.EXEMPT:
                raise DeskError(DeskReason.FEE_NOT_DUE)
            if state.paid:
                raise DeskError(DeskReason.FEE_PAID, receipt=state.receipt)
            return self._collect(dossier_id, state.kind, state.amount, payer)

    def paid_fee(self, dossier_id: str) -> dict[str, Any] | None:
        """What the receipt of a paid fee says (its sealed event): to print it again.

        ``receipt``, ``amount``, ``kind``, ``paid_at``, ``payer`` and ``clerk``; None
        when the fee was not paid (or the event cannot be opened).
        """
        event = self.store.last_event(dossier_id, "dossier.fee_paid")
        if event is None:
            return None
        try:
            return self.reader.event_payload(event)
        except VaultError:
            return None

    def _settleable(self, dossier_id: str) -> Any:
        row = self._dossier(dossier_id)
        if row["status"] == MERGED:
            raise DeskError(DeskReason.DOSSIER_MERGED)
        if row["handed_back_at"]:
            raise DeskError(DeskReason.ALREADY_HANDED_BACK)
        state = fee_state(self.store, dossier_id)
        if state is not None and state.paid:
            raise DeskError(DeskReason.FEE_PAID, receipt=state.receipt)
        return row

    def _collect(self, dossier_id: str, kind: FeeKind, amount: int, payer: str) -> Receipt:
        """Take the next receipt number and record the payment (inside the caller's
        transaction: a payment that does not commit takes no number)."""
        now = self.store.time_ms()
        office = self.store.meta("office") or ""
        year = local_day(now).year
        receipt = Receipt(office, year, self.store.next_receipt_number(office, year))
        paid_at = iso(now)
        self.store.mark_fee_paid(dossier_id, receipt=receipt.text, paid_at=paid_at)
        self.record(
            dossier_id,
            "dossier.fee_paid",
            {
                "receipt": receipt.text,
                "kind": str(kind),
                "amount": amount,
                "paid_at": paid_at,
                "payer": payer or None,
                "clerk": self.clerk,
            },
        )
        return receipt
