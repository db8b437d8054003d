"""The self-test of a new release runs with write access to its state and scratch only.

The self-test is the new release's own code, started by the updater, which may write
``/opt/edge`` (edge-update.service). A ``.pth`` file in one of the release's wheels runs
in every ``edge`` process of that release, so without a fence a bad release, or a
compromised wheel, could rewrite the previous release (the one a rollback returns to)
and the install journal before anyone judged it. So the updater fences the self-test
with Landlock (Linux 5.13+, no privileges needed, inherited across ``execve``): it may
read anything it could before, but write only beneath the box's state folder, a temp
folder of its own and ``/dev/null``; the release root, the new release's own files included, is
read-only to it. systemd cannot do this for one child of a unit; Landlock can, and
edge-update.service allows its three system calls.

A kernel without Landlock (or a seccomp filter that refuses it) leaves the self-test
unfenced, as before, and says so in the log and the install journal: refusing every
release there would stop all updates, including the one that enables it.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

WRITE_FILE = 1 << 1
_WRITES_ABI1 = (
    WRITE_FILE
    | (1 << 4)  # remove dir
    | (1 << 5)  # remove file
    | (1 << 6)  # make char device
    | (1 << 7)  # make dir
    | (1 << 8)  # make regular file
    | (1 << 9)  # make socket
    | (1 << 10)  # make fifo
    | (1 << 11)  # make block device
    | (1 << 12)  # make symlink
)
_REFER = 1 << 13  # ABI 2: link or rename into another folder
_TRUNCATE = 1 << 14  # ABI 3


class SandboxUnavailable(OSError):
    """The kernel offers no Landlock here: the caller decides what that means."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The kernel's Landlock ABI version; SandboxUnavailable when there is none."""
    version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    if version < 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(errno, f"Landlock is not available: {os.strerror(errno)}")
    return int(version)


def _writes(version: int) -> int:
    handled = _WRITES_ABI1
    if version >= 2:
        handled |= _REFER
    if version >= 3:
        handled |= _TRUNCATE
    return handled


def confine_writes(writable: Sequence[Path], libc: ctypes.CDLL | None = None) -> None:
    """From now on this process and its children write only beneath ``writable``.

    Run between fork and exec, so ``libc`` is best resolved before the fork: loading it
    there could wait for a lock another thread of the parent held."""
    libc = libc or _libc()
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    if version < 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(errno, f"Landlock is not available: {os.strerror(errno)}")
    handled = _writes(version)
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(errno, f"landlock_create_ruleset: {os.strerror(errno)}")
    try:
        for path in writable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                # a file (``/dev/null``) takes only the rights that apply to files
                is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
                rights = handled if is_dir else handled & (WRITE_FILE | _TRUNCATE)
                rule = _PathBeneath(rights, fd)
                if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"landlock_add_rule {path}: {os.strerror(errno)}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            errno = ctypes.get_errno()
            raise OSError(errno, f"no_new_privs: {os.strerror(errno)}")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0):
            errno = ctypes.get_errno()
            raise OSError(errno, f"landlock_restrict_self: {os.strerror(errno)}")
    finally:
        os.close(ruleset)


def self_test_fence(state: Path | None, scratch: Path) -> tuple[Callable[[], None] | None, str]:
    """What to run in the self-test's process before it starts (``preexec_fn``), and how
    it is fenced, in words for the log and the journal. ``scratch`` is its own temp folder
    (its ``TMPDIR``): not the shared ``/tmp``, which may hold anything."""
    try:
        version = abi()
    except SandboxUnavailable as exc:
        return None, f"not fenced ({exc.strerror})"
    writable = [scratch, Path("/dev/null"), Path("/dev/shm")]
    if state is not None:
        writable.insert(0, state)

    libc = _libc()

    def fence() -> None:
        confine_writes(writable, libc)

    places = ", ".join(str(p) for p in writable)
    return fence, f"Landlock ABI {version}: writes only beneath {places}"
