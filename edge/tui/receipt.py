"""The fee receipt (biên lai thu phí, lệ phí): an A5 PDF for the citizen who paid.

Written when a fee is collected (at reception, or when the result is handed back) and
again on request for a lost one, always in Vietnamese and laid out like the desk's
other papers (``edge.tui.handover``: the same fonts, letterhead and atomic write): the
office, the receipt's series and number, the date and time of payment in Vietnam time,
the dossier's code and procedure, whether it is a fee (phí) or a charge (lệ phí), the
amount in figures and in Vietnamese words, the payer, and both signature blocks.

The payer's name is personal data. It is printed on the receipt and nowhere else: it
is not in the file's name, the file is readable by the box's user only, in the state
folder's printing area beside the handover lists, and nothing here logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf.enums import XPos, YPos

from edge.clock import parse_iso
from edge.desk.fees import FeeKind, Receipt, amount_in_words, vnd
from edge.domain import PORTAL_TZ
from edge.tui.handover import A5, kind_word, letterhead, new_pdf, signature_blocks, write_pdf
from edge.tui.i18n import in_language


def _(message: str) -> str:
    return in_language("vi", message)


@dataclass(frozen=True)
class ReceiptPaper:
    """What one receipt says."""

    receipt: Receipt
    paid_at: str
    """When it was paid (ISO UTC, as stored); printed in Vietnam time."""
    dossier_code: str
    procedure_code: str
    procedure_name: str
    kind: FeeKind
    amount: int
    payer: str = ""
    """Empty: a dotted line, written by hand."""
    clerk: str = ""
    basis: str = ""
    """The legal basis of the amount, from the catalogue, when known."""


def receipt_path(out_dir: Path, receipt: Receipt) -> Path:
    return out_dir / f"bien-lai-{receipt.text}.pdf"


def receipt_pdf(paper: ReceiptPaper, *, out_dir: Path) -> Path:
    """Write the receipt and return its path (the same file again when printed again)."""
    paid = datetime.fromtimestamp(parse_iso(paper.paid_at) / 1000, PORTAL_TZ)
    receipt = paper.receipt
    pdf = new_pdf(A5, _("Fee receipt") + f" {receipt.text}", receipt.office, paid)
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    width = pdf.epw

    letterhead(pdf, receipt.office, size=8)
    pdf.ln(5)
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(width, 8, _("FEE AND CHARGE RECEIPT"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(
        width,
        5,
        _("Series: {series}    No.: {number}").format(series=receipt.series, number=receipt.number),
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(4)

    procedure = f"{paper.procedure_code} {paper.procedure_name}".strip() or "—"
    rows = [
        (_("Payer:"), paper.payer or "." * 60),
        (_("Dossier code:"), paper.dossier_code or "—"),
        (_("Procedure:"), procedure),
        (_("Kind:"), kind_word(paper.kind)),
        (_("Amount:"), vnd(paper.amount)),
        (_("In words:"), amount_in_words(paper.amount)),
        (_("Paid at:"), paid.strftime("%H:%M %d/%m/%Y")),
    ]
    if paper.basis:
        rows.append((_("Basis:"), paper.basis))
    label_width = 33
    for label, value in rows:
        pdf.set_font("DejaVu", "", 10)
        pdf.cell(label_width, 6, label)
        pdf.set_font("DejaVu", "B" if label == _("Amount:") else "", 10)
        pdf.multi_cell(width - label_width, 6, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(
        width,
        5,
        _("{place}, {day} {month} {year}").format(
            place=receipt.office,
            day=_("day {n}").format(n=paid.strftime("%d")),
            month=_("month {n}").format(n=paid.strftime("%m")),
            year=_("year {n}").format(n=paid.year),
        ),
        align="R",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(2)
    collector = _("(post office clerk {clerk})").format(clerk=paper.clerk) if paper.clerk else ""
    signature_blocks(pdf, (_("PAYER"), ""), (_("COLLECTED BY"), collector))
    return write_pdf(pdf, receipt_path(out_dir, receipt), private=True)
