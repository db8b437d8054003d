"""Getting a written file off the box: to the office printer, or onto a USB stick.

The handover list must reach paper: a box with CUPS prints it with ``lp``; any box
can copy it to a stick the clerk plugs in, for printing elsewhere. The stick is
written through ``edge.stick.StickDir`` (no link followed, fresh name, fsync, rename),
as anyone may have prepared it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from edge.desk import DeskError, DeskReason
from edge.stick import StickDir, StickError

PRINT_TIMEOUT = 20


def print_file(path: Path) -> None:
    """Send ``path`` to the default printer, or raise ``DeskError`` saying what to do."""
    lp = shutil.which("lp")
    if lp is None:
        raise DeskError(DeskReason.NO_PRINTER)
    try:
        done = subprocess.run(
            [lp, "--", str(path)],
            capture_output=True,
            timeout=PRINT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        raise DeskError(DeskReason.PRINT_FAILED) from None
    if done.returncode != 0:
        raise DeskError(DeskReason.PRINT_FAILED)


def stick_folders(roots: Iterable[str]) -> list[Path]:
    """Mounted sticks under the usual mount roots (``/media/x``, ``/media/user/x``)."""
    found: list[Path] = []
    for root in roots:
        base = Path(root)
        try:
            level1 = sorted(p for p in base.iterdir() if p.is_dir())
        except OSError:
            continue
        for entry in level1:
            if os.path.ismount(entry):
                found.append(entry)
                continue
            try:
                found.extend(
                    p for p in sorted(entry.iterdir()) if p.is_dir() and os.path.ismount(p)
                )
            except OSError:
                continue
    return found


def copy_to_stick(path: Path, roots: Iterable[str]) -> Path:
    """Copy ``path`` onto the first stick that takes it; returns where it went."""
    folders = stick_folders(roots)
    if not folders:
        raise DeskError(DeskReason.NO_STICK)
    data = path.read_bytes()
    for folder in folders:
        try:
            with StickDir.open_root(folder) as stick:
                stick.write(path.name, data)
                stick.sync()
        except (StickError, OSError):
            continue
        return folder / path.name
    raise DeskError(DeskReason.STICK_READ_ONLY)
