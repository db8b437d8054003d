"""Run a command under the seccomp filter systemd installs for ``MemoryDenyWriteExecute=yes``.

PID 1 here is not systemd, so the unit cannot be started for real; this installs the same
rule set as systemd 252 (Debian bookworm, Raspberry Pi OS): ``mmap`` asking for
write+execute and ``mprotect``/``pkey_mprotect`` adding execute fail with EPERM. A library
that needs a JIT or writable code (old libffi closures, some regex engines) fails here the
way it would on the box.

Usage: ``python tests/mdwe.py COMMAND [ARGS...]`` (execs COMMAND under the filter).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1
PROT_WRITE, PROT_EXEC = 0x2, 0x4
LD_W_ABS, JEQ_K, JSET_K, AND_K, RET_K = 0x20, 0x15, 0x45, 0x54, 0x06
ARCHES = {
    # machine: (AUDIT_ARCH_*, mmap, mprotect, pkey_mprotect)
    "x86_64": (0xC000003E, 9, 10, 329),
    "aarch64": (0xC00000B7, 222, 226, 288),
}
ARG2_LOW = 16 + 2 * 8  # offsetof(struct seccomp_data, args[2]), low word on little endian


class SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    )


class SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter)))


def program() -> list[tuple[int, int, int, int]]:
    arch, mmap, mprotect, pkey_mprotect = ARCHES[platform.machine()]
    return [
        (LD_W_ABS, 0, 0, 4),  # 0: arch
        (JEQ_K, 0, 9, arch),  # 1: foreign arch -> allow (11)
        (LD_W_ABS, 0, 0, 0),  # 2: syscall number
        (JEQ_K, 2, 0, mmap),  # 3: -> 6
        (JEQ_K, 4, 0, mprotect),  # 4: -> 9
        (JEQ_K, 3, 5, pkey_mprotect),  # 5: -> 9, else allow (11)
        (LD_W_ABS, 0, 0, ARG2_LOW),  # 6: prot
        (AND_K, 0, 0, PROT_WRITE | PROT_EXEC),  # 7
        (JEQ_K, 3, 2, PROT_WRITE | PROT_EXEC),  # 8: W+X -> deny (12), else allow (11)
        (LD_W_ABS, 0, 0, ARG2_LOW),  # 9: prot
        (JSET_K, 1, 0, PROT_EXEC),  # 10: +X -> deny (12), else allow (11)
        (RET_K, 0, 0, RET_ALLOW),  # 11
        (RET_K, 0, 0, RET_EPERM),  # 12
    ]


def install() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    ops = program()
    filters = (SockFilter * len(ops))(*(SockFilter(*op) for op in ops))
    prog = SockFprog(len(ops), filters)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def main(argv: list[str]) -> None:
    install()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
