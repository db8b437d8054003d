"""The handover list: paper dossiers returned to the agency on a date, as an A4 PDF.

Printed and signed by both sides, it is the post office's proof that the paper
originals left its hands, laid out as Circular 17/2017/TT-BTTTT asks of a handover
between the postal service and the agency's one-stop desk: for each dossier its code,
procedure, the documents (thành phần hồ sơ) with originals and copies and their pages,
the fee and how it was settled; the fees collected in total; and both parties'
signature blocks (bên giao, bên nhận) with name and date lines.

It is always in Vietnamese (it is an administrative document, whatever language the
clerk's screen uses) and set in DejaVu Sans, embedded, which has every Vietnamese
letter. It lists codes, procedures, documents, pages and fees only, never citizens'
names or numbers, so the file can be left on disk and printed anywhere without
exposing personal data.

The pieces every printed paper of the desk shares (the fonts, the letterhead, the
atomic write) are here too; the fee receipt (``edge.tui.receipt``) uses them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from edge.desk import DeskError, DeskReason
from edge.desk.fees import FeeKind, FeeMode, FeeState, Receipt, amount_in_words, vnd
from edge.domain import PORTAL_TZ
from edge.tui.i18n import N_, in_language

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
)


def _(message: str) -> str:
    return in_language("vi", message)


KIND_NAMES = {
    "original": N_("original"),
    "certified_copy": N_("certified copy"),
    "copy": N_("copy"),
    "electronic": N_("electronic copy"),
}
"""How each paper was handed in (the document tags), as message ids of the printed words."""
KIND_WORDS = {FeeKind.CHARGE: N_("charge (lệ phí)"), FeeKind.FEE: N_("fee (phí)")}
"""A charge (lệ phí) or a fee (phí): the words the fee dialog and the papers use."""


@dataclass(frozen=True)
class Paper:
    """One document of a dossier (thành phần hồ sơ) as the list prints it.

    Tagged by the clerk: ``kind`` (original, certified_copy, copy, electronic) and the
    ``pages`` it takes in the dossier. From the catalogue alone (no tags yet): ``kind``
    is empty and ``originals``/``copies`` say what the procedure asks for.
    """

    name: str
    kind: str = ""
    originals: int = 0
    copies: int = 0
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class HandoverLine:
    code: str
    procedure_code: str
    procedure_name: str
    pages: int
    received: date | None
    papers: tuple[Paper, ...] = ()
    fee: FeeState | None = None
    free: bool = False
    """Nothing recorded and the catalogue says the procedure costs nothing."""


def find_font(bold: bool = False) -> Path:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise DeskError(DeskReason.FONT_MISSING)


A5 = (148.0, 210.0)
"""A5 in millimetres (fpdf2 warns on every "A5" by name since it corrected its size)."""


def new_pdf(size: str | tuple[float, float], title: str, office: str, created: datetime) -> FPDF:
    """A portrait page of ``size`` ("A4", or ``A5``) with DejaVu regular and bold loaded.

    ``created`` is the document's fixed creation date: printing the same paper again
    gives the same file.
    """
    pdf = FPDF(orientation="P", unit="mm", format=size)
    pdf.set_title(title)
    pdf.set_author(f"Commune Edge {office}")
    pdf.set_creation_date(created)
    pdf.add_font("DejaVu", "", str(find_font()))
    pdf.add_font("DejaVu", "B", str(find_font(bold=True)))
    return pdf


def letterhead(pdf: FPDF, office: str, size: float = 10) -> None:
    """The post office on the left and the national motto on the right, as on every paper."""
    half = pdf.epw / 2
    pdf.set_font("DejaVu", "B", size)
    pdf.cell(half, 5, _("VIETNAM POST"), align="C")
    pdf.cell(
        half, 5, _("SOCIALIST REPUBLIC OF VIETNAM"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font("DejaVu", "", size)
    pdf.cell(half, 5, _("Post office {office}").format(office=office), align="C")
    pdf.set_font("DejaVu", "B", size)
    pdf.cell(
        half,
        5,
        _("Independence - Freedom - Happiness"),
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )


def signature_blocks(pdf: FPDF, left: tuple[str, str], right: tuple[str, str]) -> None:
    """Two signature blocks side by side: heading, role, "(sign and write the full name)",
    room to sign, then a line for the name and one for the date."""
    half = pdf.epw / 2
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(half, 5, left[0], align="C")
    pdf.cell(half, 5, right[0], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(half, 5, left[1], align="C")
    pdf.cell(half, 5, right[1], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(half, 5, _("(signature and full name)"), align="C")
    pdf.cell(
        half, 5, _("(signature and full name)"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(18)
    name = _("Full name: {dots}").format(dots="." * 30)
    when = _("Date: {dots}").format(dots="..../..../........")
    for line in (name, when):
        pdf.cell(half, 6, line, align="C")
        pdf.cell(half, 6, line, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def write_pdf(pdf: FPDF, path: Path, *, private: bool = False) -> Path:
    """Write ``pdf`` to ``path`` atomically (fsync, rename): a power cut leaves the old file
    or the new one. ``private`` files (they name a citizen) are readable by the box's
    user only, and no link planted at the temporary name is followed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".pdf.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(partial, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        if private:
            os.fchmod(fh.fileno(), 0o600)  # an earlier file of that name may have had more
        fh.write(pdf.output())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    return path


# -- what the list says of each dossier ----------------------------------------------------


def page_ranges(pages: Sequence[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    numbers = sorted(set(pages))
    parts: list[str] = []
    start = 0
    while start < len(numbers):
        end = start
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        first, last = numbers[start], numbers[end]
        parts.append(str(first) if first == last else f"{first}-{last}")
        start = end + 1
    return ", ".join(parts)


def paper_text(number: int, paper: Paper) -> str:
    """One document on one line: its name, how it was handed in, and its pages."""
    if paper.kind:
        how = _(KIND_NAMES.get(paper.kind, paper.kind))
        if paper.pages:
            how += ", " + _("p. {pages}").format(pages=page_ranges(paper.pages))
    else:
        counts = []
        if paper.originals:
            counts.append(_("{n} original(s)").format(n=paper.originals))
        if paper.copies:
            counts.append(_("{n} copy(ies)").format(n=paper.copies))
        how = ", ".join(counts)
    return f"{number}. {paper.name}" + (f" ({how})" if how else "")


def kind_word(kind: FeeKind) -> str:
    """ "Lệ phí" (a charge) or "Phí" (a fee), as the papers print it."""
    word = _(KIND_WORDS[kind])
    return word[:1].upper() + word[1:]


def fee_text(line: HandoverLine) -> str:
    """The fee and how it was settled, in the list's narrow column."""
    fee = line.fee
    if fee is None:
        return _("Free") if line.free else _("Not recorded")
    if fee.mode == FeeMode.EXEMPT:
        return "\n".join((_("Exempt"), fee.reason))
    parts = [f"{kind_word(fee.kind)} {vnd(fee.amount)}"]
    if fee.paid:
        parts.append(_("Collected"))
        receipt = Receipt.parse(fee.receipt)
        parts.append(
            _("Receipt {number}").format(number=receipt.number if receipt else fee.receipt)
        )
    else:
        parts.append(_("To collect at hand-back"))
    return "\n".join(parts)


def handover_pdf(
    lines: Sequence[HandoverLine],
    *,
    on: date,
    office: str,
    clerk: str,
    out_dir: Path,
    batch: int | None = None,
) -> Path:
    """Write the list and return its path (replaced atomically if printed again).

    With ``batch``, the list is one handover of that date (its number among the
    date's handovers, in the title and the file name), listing only its own
    dossiers; without, every dossier handed over on ``on``.
    """
    pdf = new_pdf(
        "A4",
        _("Handover of paper dossiers") + f" {on.isoformat()}",
        office,
        datetime(on.year, on.month, on.day, tzinfo=PORTAL_TZ),
    )
    pdf.set_margins(18, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    width = pdf.epw
    letterhead(pdf, office)
    pdf.ln(8)

    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(
        width, 8, _("HANDOVER OF PAPER DOSSIERS"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font("DejaVu", "", 11)
    pdf.cell(
        width,
        6,
        (
            _("to the one-stop desk of the receiving agency, on {date}, handover {n}").format(
                date=on.strftime("%d/%m/%Y"), n=batch
            )
            if batch is not None
            else _("to the one-stop desk of the receiving agency, on {date}").format(
                date=on.strftime("%d/%m/%Y")
            )
        ),
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(
        width,
        5,
        _("(as Circular 17/2017/TT-BTTTT of the Ministry of Information and Communications asks)"),
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(
        width,
        5,
        _(
            "The post office hands over the paper originals of the dossiers below, "
            "received at the counter and digitised. Handed over by clerk: {clerk}."
        ).format(clerk=clerk),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)

    headings = (
        _("No."),
        _("Dossier code"),
        _("Procedure"),
        _("Documents (originals, copies)"),
        _("Pages"),
        _("Fee, charge"),
    )
    with pdf.table(
        col_widths=(8, 44, 30, 51, 13, 31),
        text_align=("CENTER", "LEFT", "LEFT", "LEFT", "CENTER", "LEFT"),
        line_height=4.5,
        first_row_as_headings=True,
    ) as table:
        row = table.row()
        pdf.set_font("DejaVu", "B", 8)
        for heading in headings:
            row.cell(heading)
        pdf.set_font("DejaVu", "", 8)
        for number, line in enumerate(lines, 1):
            row = table.row()
            row.cell(str(number))
            received = (
                _("received {date}").format(date=line.received.strftime("%d/%m/%Y"))
                if line.received
                else ""
            )
            row.cell("\n".join(p for p in (line.code, received) if p))
            procedure = f"{line.procedure_code} {line.procedure_name}".strip() or "—"
            row.cell(procedure)
            papers = "\n".join(paper_text(i, p) for i, p in enumerate(line.papers, 1))
            row.cell(papers or "—")
            row.cell(str(line.pages))
            row.cell(fee_text(line))

    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(
        width,
        6,
        _("Total: {n} dossier(s), {pages} page(s).").format(
            n=len(lines), pages=sum(line.pages for line in lines)
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    collected = sum(line.fee.amount for line in lines if line.fee is not None and line.fee.paid)
    due = sum(
        line.fee.amount for line in lines if line.fee is not None and line.fee.due_at_hand_back
    )
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(
        width,
        5,
        _("Fees and charges collected: {amount} ({words}).").format(
            amount=vnd(collected), words=amount_in_words(collected)
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if due:
        pdf.multi_cell(
            width,
            5,
            _("To collect when the results are handed back: {amount}.").format(amount=vnd(due)),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(6)
    if pdf.will_page_break(52):
        pdf.add_page()
    signature_blocks(
        pdf,
        (_("HANDED OVER BY"), _("(post office clerk)")),
        (_("RECEIVED BY"), _("(one-stop desk of the agency)")),
    )

    suffix = f"-lan-{batch}" if batch is not None else ""
    return write_pdf(pdf, out_dir / f"ban-giao-{on.isoformat()}{suffix}.pdf")
