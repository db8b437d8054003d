"""Which dossier a page belongs to: the rule of DESIGN.md section 3.

Kept apart from I/O so the rule can be read and tested on its own:

* a page whose barcode matches a dossier-code pattern starts that dossier (and
  is its first page: the receipt slip), or continues it if the box knows the
  code already (a second part, or a rescan);
* any other page joins the job's open dossier;
* pages before the first cover page of a job form an unassigned dossier that
  the clerk completes in the UI;
* a page that carries a receipt-like symbol capture could not confirm opens a
  new dossier marked for review, never a silent guess either way: the clerk
  decides whether it is a new dossier or belongs to the one before (issue 10);
* a job folder whose name carries ``into-<dossier id>`` (``edge scan --into``: a supplement
  or a forgotten page scanned at the clerk's request) starts with that dossier open, so its
  pages join it until a cover page says otherwise (issue 17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INTO = re.compile(r"(?:^|[-_. ])into-(d[0-9a-f]{12,40})(?=$|[-_. ])")


@dataclass(frozen=True)
class Placement:
    """Where a page goes: an existing dossier, or a new one with ``code``.

    ``review`` is set for a new dossier the clerk must confirm; ``follows`` is then the
    dossier that was open before it, the one "same as before" merges back into.
    """

    dossier_id: str | None
    code: str | None
    review: bool = False
    follows: str | None = None

    @property
    def creates(self) -> bool:
        return self.dossier_id is None


def place(
    code: str | None,
    open_dossier_id: str | None,
    known_dossier_id: str | None,
    *,
    uncertain: bool = False,
) -> Placement:
    """Decide a page's dossier from its confirmed code (if any) and the job's state.

    ``known_dossier_id`` is the dossier that already carries ``code``, if any;
    ``uncertain`` says the page carries a receipt-like symbol that could not be
    confirmed. The page's dossier becomes the job's open dossier afterwards in
    every case.
    """
    if uncertain and code is None:
        return Placement(None, None, review=True, follows=open_dossier_id)
    if code is not None:
        if known_dossier_id is not None:
            return Placement(known_dossier_id, code)
        return Placement(None, code)
    if open_dossier_id is not None:
        return Placement(open_dossier_id, None)
    return Placement(None, None)


def into_tag(dossier_id: str) -> str:
    """The part of a job folder's name that sends its pages to ``dossier_id``."""
    tag = f"into-{dossier_id}"
    if folder_target(tag) != dossier_id:
        raise ValueError(f"{dossier_id!r} is not a dossier id")
    return tag


def folder_target(folder: str) -> str | None:
    """The dossier a job folder's name asks its pages to join, if it names one.

    Only a dossier id is taken, never a dossier code: ids carry a random part and are not
    on the receipt slip, so a folder named by hand on a copier cannot aim pages at a
    citizen's dossier by copying the code off a slip.
    """
    found = _INTO.search(folder)
    return found.group(1) if found else None
