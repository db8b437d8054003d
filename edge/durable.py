"""Writes that survive a power cut at any instant: the old bytes or the new, never half.

A file is replaced whole: written to a temporary name beside it, flushed to disk,
renamed over the old one, and the rename itself made durable by syncing the
directory (on ext4 and FAT an unsynced rename can be lost with the power).

And when writing is not possible at all (a full disk, a filesystem turned read-only,
I/O errors), ``check_storage`` and ``storage_problem`` say which, in words a
technician can act on, so nobody mistakes a full SD card for a damaged database.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable by others (0644): what is written here is
    public (signed metadata, targets) or sits in a folder only its owner can enter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


# -- when the disk itself fails ---------------------------------------------------------
#
# A box's state lives on one SD card. It fills up (a burst of scans, no sync for weeks),
# or it starts failing and the kernel turns its filesystem read-only, or it returns I/O
# errors. None of that is the database's fault and none of it is cured by restoring a
# backup (which would lose what central has not acknowledged yet): the daemon must stay
# up, leave scans in the inbox, say which of these it is, and carry on when it passes.

_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL = 8, 10, 11, 13
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 5, 6, 14, 26
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
PROBE_NAME = ".edge-write-probe"


@dataclass(frozen=True)
class StorageProblem:
    """Why the box cannot write its state, in words, with what to do about it.

    ``alert`` names the health alert it raises: ``disk`` for a full disk (central's fleet
    page already words that one), ``storage`` for everything else.
    """

    kind: str  # full | read_only | io_error | permission | busy | damaged
    summary: str  # short: the alert's text on /readyz, /metrics and the fleet page
    detail: str  # what happened, one line
    fix: str  # what to do next

    @property
    def alert(self) -> str:
        return "disk" if self.kind == "full" else "storage"

    @property
    def message(self) -> str:
        return f"{self.detail}: {self.fix}"


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _full(folder: Path, free: int, reserve: int) -> StorageProblem:
    how = "full" if free < 2**20 else "almost full"
    kept = f", below the {reserve // 2**20} MB kept in reserve" if reserve else ""
    return StorageProblem(
        "full",
        f"{free // 2**20} MB free",  # as central's fleet page words it: "Disk nearly full (…)"
        f"the disk holding {folder} is {how} ({free // 2**20} MB free{kept}); "
        "new scans wait in the inbox",
        "free space (sync so old pages can be purged, remove other files) and capture "
        "resumes by itself; the database is not damaged, do not restore it",
    )


def _read_only(folder: Path) -> StorageProblem:
    return StorageProblem(
        "read_only",
        "the filesystem is read-only (SD card failing?): new scans wait in the inbox",
        f"the filesystem holding {folder} has turned read-only, which the kernel does when "
        "the SD card fails; new scans wait in the inbox",
        f"copy {folder} to a safe place now, then replace the SD card; "
        "the database is not known to be damaged, do not restore it",
    )


def _io_error(folder: Path, cause: str) -> StorageProblem:
    return StorageProblem(
        "io_error",
        f"I/O error writing the state ({cause}): new scans wait in the inbox",
        f"writing to {folder} failed with an I/O error ({cause}); new scans wait in the inbox",
        f"copy {folder} to a safe place now and run 'edge doctor'; "
        "replace the SD card if it happens again",
    )


def damaged(path: Path, cause: str) -> StorageProblem:
    return StorageProblem(
        "damaged",
        f"the database is damaged ({cause})",
        f"the database {path} is damaged ({cause})",
        f"keep a copy of {path.parent} as it is, then have regional IT recover it "
        "(sqlite3 .recover) or restore it from backup: records central has not "
        "acknowledged are only in this file",
    )


def check_storage(folder: Path, reserve: int = 0, *, probe: bool = False) -> StorageProblem | None:
    """Whether ``folder``'s filesystem can take the box's writes now; None when it can.

    ``reserve`` is the free space the box keeps (the free-space guard). ``probe`` also
    writes and syncs a small file: a filesystem the kernel turned read-only after an
    error still says "rw" in statvfs, so only a write tells.
    """
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return _io_error(folder, exc.strerror or str(exc))
    if st.f_flag & os.ST_RDONLY:
        return _read_only(folder)
    free = st.f_bavail * st.f_frsize
    problem = _probe(folder, reserve) if probe else None
    if problem is None and (free < reserve or (st.f_files and not st.f_favail)):
        problem = _full(folder, free, reserve)
    return problem


def _probe(folder: Path, reserve: int) -> StorageProblem | None:
    """Write, sync and remove a small file: the only test a failing card cannot fake."""
    target = folder / PROBE_NAME
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
        target.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        if exc.errno == errno.EROFS:
            return _read_only(folder)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _full(folder, free_bytes(folder), reserve)
        if exc.errno in (errno.EACCES, errno.EPERM):
            return StorageProblem(
                "permission",
                "the state folder is not writable by this user",
                f"this user cannot write to {folder} ({exc.strerror})",
                "run this as the edge user (or root), or give the folder back to the edge "
                "user: chown -R edge:edge " + str(folder),
            )
        return _io_error(folder, exc.strerror or str(exc))
    return None


def storage_problem(exc: BaseException, database: Path) -> StorageProblem | None:
    """The storage problem behind ``exc``, or None when ``exc`` is not about the state's disk.

    SQLite says "database or disk is full", "disk I/O error" or "attempt to write a
    readonly database"; the filesystem is asked which it really is. An ``OSError`` is
    the state's only when its disk is in trouble: the same error from the inbox (a file
    that cannot be removed) is the file's problem, not the store's.
    """
    folder = database.parent
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return damaged(database, str(exc))
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StorageProblem(
                "busy",
                "the database is locked by another program: new scans wait in the inbox",
                f"the database {database} stayed locked by another program ({exc})",
                f"stop whatever else writes {database} (only edge should); capture resumes "
                "by itself",
            )
        if code not in (_SQLITE_FULL, _SQLITE_IOERR, _SQLITE_READONLY, _SQLITE_CANTOPEN):
            return None
        found = check_storage(folder, probe=True)
        if found is not None:
            return found
        if code == _SQLITE_FULL:
            return _full(folder, free_bytes(folder), 0)
        if code == _SQLITE_READONLY:
            return _read_only(folder)
        return _io_error(folder, f"{exc} [{name}]")
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return check_storage(folder, probe=True)
    return None
