"""The handover list: paper dossiers returned to the agency on a date, as an A4 PDF.

Printed and signed by both sides, it is the post office's proof that the paper
originals left its hands. It is always in Vietnamese (it is an administrative
document, whatever language the clerk's screen uses) and set in DejaVu Sans,
embedded, which has every Vietnamese letter. It lists codes, procedures and
page counts only, never citizens' names or numbers, so the file can be left on
disk and printed anywhere without exposing personal data.
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
from edge.domain import PORTAL_TZ
from edge.tui.i18n import in_language

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
)


def _(message: str) -> str:
    return in_language("vi", message)


@dataclass(frozen=True)
class HandoverLine:
    code: str
    procedure_code: str
    procedure_name: str
    pages: int
    received: date | None


def find_font(bold: bool = False) -> Path:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise DeskError(DeskReason.FONT_MISSING)


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
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(_("Handover of paper dossiers") + f" {on.isoformat()}")
    pdf.set_author(f"Commune Edge {office}")
    # a fixed creation date: printing the same list again gives the same file
    pdf.set_creation_date(datetime(on.year, on.month, on.day, tzinfo=PORTAL_TZ))
    pdf.add_font("DejaVu", "", str(find_font()))
    pdf.add_font("DejaVu", "B", str(find_font(bold=True)))
    pdf.set_margins(18, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    width = pdf.epw
    half = width / 2
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(half, 5, _("VIETNAM POST"), align="C")
    pdf.cell(
        half, 5, _("SOCIALIST REPUBLIC OF VIETNAM"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(half, 5, _("Post office {office}").format(office=office), align="C")
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(
        half,
        5,
        _("Independence - Freedom - Happiness"),
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
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
    pdf.ln(4)
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

    headings = (_("No."), _("Dossier code"), _("Procedure"), _("Pages"), _("Received"))
    with pdf.table(
        col_widths=(10, 52, 78, 14, 24),
        text_align=("CENTER", "LEFT", "LEFT", "CENTER", "CENTER"),
        line_height=5.5,
        first_row_as_headings=True,
    ) as table:
        row = table.row()
        pdf.set_font("DejaVu", "B", 9)
        for heading in headings:
            row.cell(heading)
        pdf.set_font("DejaVu", "", 9)
        for number, line in enumerate(lines, 1):
            row = table.row()
            row.cell(str(number))
            row.cell(line.code)
            procedure = f"{line.procedure_code} {line.procedure_name}".strip() or "—"
            row.cell(procedure)
            row.cell(str(line.pages))
            row.cell(line.received.strftime("%d/%m/%Y") if line.received else "—")

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
    pdf.ln(8)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(half, 5, _("HANDED OVER BY"), align="C")
    pdf.cell(half, 5, _("RECEIVED BY"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(half, 5, _("(signature and full name)"), align="C")
    pdf.cell(
        half, 5, _("(signature and full name)"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-lan-{batch}" if batch is not None else ""
    path = out_dir / f"ban-giao-{on.isoformat()}{suffix}.pdf"
    partial = path.with_suffix(".pdf.part")
    with open(partial, "wb") as fh:
        fh.write(pdf.output())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    return path
