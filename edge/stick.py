"""Safe access to a USB stick, which anyone may have prepared: walk it, never trust it.

Why this module exists (issue 11, item 5): a stick crosses the trust boundary by
hand. Device ids are public, so anyone can lay out ``commune-edge/<device id>/``
with a ``blobs`` symlink pointing at the box's own state folder (the box then
deleted every file there), an ``answer`` symlink that makes central write
elsewhere, a FIFO that hangs a reader, a link to ``/dev/zero`` or a 1 GiB file
that a reader swallows whole. So every stick operation goes through
``StickDir``:

* one directory file descriptor per folder, and every name resolved relative to
  it (``dir_fd``, i.e. openat/renameat/unlinkat); a name is one path component,
  never ``..`` nor containing ``/``;
* no symlink is ever followed (``O_NOFOLLOW``, ``follow_symlinks=False``), for
  folders and files alike;
* nothing but regular files and folders is opened: the entry is ``lstat``-ed
  first, opened with ``O_NONBLOCK`` (a FIFO swapped in meanwhile cannot hang the
  open) and ``fstat``-ed after, and must be the very inode that was checked;
* sizes are checked before reading, reads go in bounded chunks and stop at the
  limit even if the file grows;
* writes go to a fresh name created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` inside the
  same open folder, are fsynced and renamed over the target with both dir fds, so
  they land in that folder whatever links are planted meanwhile;
* folder listings are bounded (``MAX_ENTRIES``).

Every refusal is a ``StickError`` (a ``ValueError``, so the command line prints
it as one line) that says what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20
"""Read and write size: bounded memory whatever the file's size."""
MAX_ENTRIES = 100_000
"""Most names one folder on a stick may hold; more is refused, not listed."""
MAX_SMALL = 1 << 20
"""Default limit for small documents (requests, receipts, reports)."""

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC


class StickError(ValueError):
    """The stick holds something this box or central refuses to touch; says what to do."""


class StickMissing(StickError):
    """An entry the caller looked for is not on the stick (often fine: nothing to take)."""


def printable(name: str) -> str:
    """A stick's file name made safe for a log line or a report (no control characters,
    undecodable bytes as ``\\xNN``), so an odd name can neither forge a line nor make the
    report unprintable."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)[:300]


def _check_name(name: str) -> None:
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\0" in name
        or len(name.encode("utf-8", "surrogateescape")) > 255
    ):
        raise StickError(f"{printable(name)!r} is not a plain file name")


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


class StickDir:
    """One folder on the stick, held open; every access is relative to it (see module doc)."""

    def __init__(self, fd: int, label: str) -> None:
        self.fd = fd
        self.label = label

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open_root(cls, path: Path, *, create: bool = False) -> StickDir:
        """The stick itself (its mount point, or a folder on it), named by the operator.

        The operator's own path may pass through links the box's owner made; only what
        lies below it is the stick's, and that is never followed.
        """
        try:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise StickMissing(f"{path} does not exist: is the stick mounted?") from exc
        except NotADirectoryError as exc:
            raise StickError(f"{path} is not a folder: name the stick's folder") from exc
        except OSError as exc:
            raise StickError(f"cannot open {path} ({exc.strerror}): check the stick") from exc
        return cls(fd, str(path))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> StickDir:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _path(self, name: str) -> str:
        return f"{self.label}/{printable(name)}"

    def _refuse_entry(self, name: str, kind: str, wanted: str) -> StickError:
        what = {"link": "a link", "dir": "a folder", "file": "a file"}.get(kind, "a device or FIFO")
        return StickError(
            f"{self._path(name)} is {what}, not {wanted}: refused (a stick may only hold plain "
            "files and folders); delete it from the stick and try again"
        )

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed), or None when there is none."""
        _check_name(name)
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StickError(f"cannot read {self._path(name)} ({exc.strerror})") from exc

    def kind(self, name: str) -> str | None:
        """``file``, ``dir``, ``link`` or ``other`` (FIFO, device, socket); None if absent."""
        st = self.lstat(name)
        return None if st is None else _kind(st.st_mode)

    def subdir(self, name: str, *, create: bool = False) -> StickDir:
        """A folder inside this one; a link or anything else in its place is refused."""
        _check_name(name)
        if create:
            try:
                os.mkdir(name, 0o755, dir_fd=self.fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StickError(
                    f"cannot create {self._path(name)} ({exc.strerror}): is the stick full "
                    "or read-only?"
                ) from exc
        try:
            fd = os.open(name, _DIR, dir_fd=self.fd)
        except FileNotFoundError as exc:
            raise StickMissing(f"{self._path(name)} is not on the stick") from exc
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise self._refuse_entry(name, self.kind(name) or "other", "a folder") from exc
            raise StickError(f"cannot open {self._path(name)} ({exc.strerror})") from exc
        return StickDir(fd, self._path(name))

    def walk(self, *names: str, create: bool = False) -> StickDir:
        """Folders below this one, one name at a time (each checked like ``subdir``)."""
        current = self
        try:
            for name in names:
                following = current.subdir(name, create=create)
                if current is not self:
                    current.close()
                current = following
        except BaseException:
            if current is not self:
                current.close()
            raise
        return current if current is not self else StickDir(os.dup(self.fd), self.label)

    # -- listing -----------------------------------------------------------------

    def entries(self) -> list[tuple[str, str]]:
        """``(name, kind)`` of every entry, sorted by name; at most ``MAX_ENTRIES``."""
        found: list[tuple[str, str]] = []
        try:
            with os.scandir(self.fd) as it:
                for entry in it:
                    if len(found) >= MAX_ENTRIES:
                        raise StickError(
                            f"{self.label} holds more than {MAX_ENTRIES} entries: refused; "
                            "clean the stick"
                        )
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    found.append((entry.name, _kind(mode)))
        except StickError:
            raise
        except OSError as exc:
            raise StickError(f"cannot list {self.label} ({exc.strerror})") from exc
        return sorted(found)

    def files(self) -> list[str]:
        """Names of the regular files here, sorted (links, folders, FIFOs left out)."""
        return [name for name, kind in self.entries() if kind == "file"]

    # -- reading -----------------------------------------------------------------

    def open_file(self, name: str, limit: int) -> tuple[int, int]:
        """An fd on a regular file of at most ``limit`` bytes, and its size; see module doc."""
        before = self.lstat(name)
        if before is None:
            raise StickMissing(f"{self._path(name)} is not on the stick")
        if not stat.S_ISREG(before.st_mode):
            raise self._refuse_entry(name, _kind(before.st_mode), "a plain file")
        if before.st_size > limit:
            raise StickError(
                f"{self._path(name)} is {before.st_size} bytes, more than the {limit} allowed: "
                "refused; delete it from the stick"
            )
        try:
            fd = os.open(name, _READ, dir_fd=self.fd)
        except FileNotFoundError as exc:
            raise StickMissing(f"{self._path(name)} is not on the stick") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._refuse_entry(name, "link", "a plain file") from exc
            raise StickError(f"cannot open {self._path(name)} ({exc.strerror})") from exc
        after = os.fstat(fd)
        if (
            not stat.S_ISREG(after.st_mode)
            or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino)
            or after.st_size > limit
        ):
            os.close(fd)
            raise StickError(f"{self._path(name)} changed while it was opened: refused")
        return fd, after.st_size

    def chunks(self, name: str, limit: int, size: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes in chunks of at most ``size``; at most ``limit`` bytes in all.

        The file is opened (and refused) before this returns, so errors come from the
        call, not from the first ``next``.
        """
        fd, _ = self.open_file(name, limit)
        return self._read_chunks(fd, name, limit, size)

    def _read_chunks(self, fd: int, name: str, limit: int, size: int) -> Iterator[bytes]:
        try:
            total = 0
            while True:
                try:
                    block = os.read(fd, min(size, limit + 1 - total))
                except OSError as exc:
                    raise StickError(f"cannot read {self._path(name)} ({exc.strerror})") from exc
                if not block:
                    return
                total += len(block)
                if total > limit:
                    raise StickError(f"{self._path(name)} grew past {limit} bytes: refused")
                yield block
        finally:
            os.close(fd)

    def read(self, name: str, limit: int = MAX_SMALL) -> bytes:
        """A whole (small) file: regular, at most ``limit`` bytes."""
        return b"".join(self.chunks(name, limit))

    def sha256(self, name: str, limit: int) -> tuple[str, int]:
        """SHA-256 (hex) and length of a file, read in bounded chunks."""
        digest = hashlib.sha256()
        length = 0
        for block in self.chunks(name, limit):
            digest.update(block)
            length += len(block)
        return digest.hexdigest(), length

    # -- writing -----------------------------------------------------------------

    def write(self, name: str, data: bytes | Iterable[bytes], *, mode: int = 0o644) -> int:
        """Replace ``name`` in this folder whole (fresh name, fsync, rename); returns bytes.

        A link at ``name`` is replaced, never followed; a folder there is refused.
        """
        _check_name(name)
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, mode, dir_fd=self.fd)
        except OSError as exc:
            raise StickError(
                f"cannot write {self._path(name)} ({exc.strerror}): is the stick full or read-only?"
            ) from exc
        written = 0
        try:
            try:
                for block in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                    view = memoryview(block)
                    while view:
                        done = os.write(fd, view)
                        written += done
                        view = view[done:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            if isinstance(exc, IsADirectoryError):
                raise self._refuse_entry(name, "dir", "a plain file") from exc
            if isinstance(exc, OSError):
                raise StickError(
                    f"cannot write {self._path(name)} ({exc.strerror}): is the stick full or "
                    "read-only?"
                ) from exc
            raise
        return written

    def remove(self, name: str) -> bool:
        """Remove a file or a link (the link itself, never what it names); folders stay."""
        st = self.lstat(name)
        if st is None or stat.S_ISDIR(st.st_mode):
            return False
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StickError(f"cannot remove {self._path(name)} ({exc.strerror})") from exc
        return True

    def sync(self) -> None:
        """Make this folder's entries (renames, new files) durable before the stick is pulled."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EROFS, errno.EBADF):
                raise StickError(f"cannot flush {self.label} ({exc.strerror})") from exc


def read_handed_file(path: Path, limit: int = MAX_SMALL) -> bytes:
    """A small file an operator names on the command line (a root.json brought on a stick).

    The operator's own path may pass through links; the file it ends at must be a regular
    file of at most ``limit`` bytes, opened without blocking: a FIFO or ``/dev/zero`` named
    by mistake, or planted on the stick, is refused with one line instead of hanging
    ``edge init`` or filling memory.
    """
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise StickMissing(f"{path} does not exist: check the path") from exc
    except (OSError, RuntimeError) as exc:
        raise StickError(f"cannot follow {path} ({exc}): check the path") from exc
    with StickDir.open_root(resolved.parent) as folder:
        return folder.read(resolved.name, limit)
