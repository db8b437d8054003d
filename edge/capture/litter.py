"""What a scanner inbox collects that is not a scan.

Desktop and NAS software leave metadata files beside scans, and browsers and
sync tools leave partial downloads. None of it is a page: it is left where it is
and reported as ignored, never quarantined and never deleted.
"""

from __future__ import annotations

from pathlib import PurePath

LITTER_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
LITTER_DIRS = frozenset(
    {"@eadir", ".stfolder", ".stversions", "#recycle", "#snapshot", "$recycle.bin", ".trash"}
)
PARTIAL_SUFFIXES = (
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".tmp",
    ".temp",
    ".filepart",
    ".!sync",
    ".swp",
    ".lock",
    "~",
)


def is_litter(relative: PurePath) -> bool:
    """True for a path (relative to the inbox) that must never be treated as a scan."""
    for part in relative.parts[:-1]:
        if part.startswith(".") or part.casefold() in LITTER_DIRS:
            return True
    name = relative.name
    folded = name.casefold()
    if name.startswith(".") or folded in LITTER_NAMES:
        return True
    return folded.endswith(PARTIAL_SUFFIXES)
