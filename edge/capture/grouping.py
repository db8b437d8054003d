"""Which dossier a page belongs to: the rule of DESIGN.md section 3.

Kept apart from I/O so the rule can be read and tested on its own:

* a page whose barcode matches a dossier-code pattern starts that dossier (and
  is its first page: the receipt slip), or continues it if the box knows the
  code already (a second part, or a rescan);
* any other page joins the job's open dossier;
* pages before the first cover page of a job form an unassigned dossier that
  the clerk completes in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where a page goes: an existing dossier, or a new one with ``code``."""

    dossier_id: str | None
    code: str | None

    @property
    def creates(self) -> bool:
        return self.dossier_id is None


def place(code: str | None, open_dossier_id: str | None, known_dossier_id: str | None) -> Placement:
    """Decide a page's dossier from its code (if any) and the job's state.

    ``known_dossier_id`` is the dossier that already carries ``code``, if any.
    The page's dossier becomes the job's open dossier afterwards in every case.
    """
    if code is not None:
        if known_dossier_id is not None:
            return Placement(known_dossier_id, code)
        return Placement(None, code)
    if open_dossier_id is not None:
        return Placement(open_dossier_id, None)
    return Placement(None, None)
