"""sd_notify without libsystemd: tell systemd the daemon is ready, alive, or stopping.

systemd's ``Type=notify`` waits for ``READY=1`` before it calls the unit started, and
``WatchdogSec=`` restarts a daemon that stops sending ``WATCHDOG=1``: that is how a box
that hangs on a bad scan comes back by itself with nobody on site. The protocol is one
datagram of newline-separated ``KEY=value`` lines to the socket in ``$NOTIFY_SOCKET``
(a path, or an abstract name written with a leading ``@``); outside systemd the variable
is unset and every call is a no-op, so tests and ``edge run`` in a shell behave the same.
"""

from __future__ import annotations

import os
import socket


def notify(*lines: str) -> bool:
    """Send ``KEY=value`` lines to systemd; False when not under systemd or it is gone."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(lines).encode("utf-8"), address)
    except OSError:
        return False
    return True


def watchdog_period() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec=``), None when not asked.

    ``WATCHDOG_PID`` names the process systemd watches; a child that inherited the
    environment must not ping on its parent's behalf.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000
