"""The tests' ``systemctl restart edge.service``: stop the daemon, start ``current``'s.

Stops the daemon named by the heartbeat (SIGTERM, then SIGKILL after 10 s), then
starts ``<root>/current/bin/edge run`` in its own session and returns at once,
as systemctl does; the installer then waits for the new daemon's heartbeat.
Every pid it starts is appended to ``<root>/daemons.pids`` so tests can clean up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from pathlib import Path


def _stop(state: Path) -> None:
    try:
        pid = json.loads((state / "run" / "daemon.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if stat == "Z":
                return
        except (ProcessLookupError, OSError):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--inbox", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    state, root = Path(args.state), Path(args.root)
    _stop(state)
    with open(args.log, "ab") as log:
        child = subprocess.Popen(
            [
                str(root / "current" / "bin" / "edge"),
                "run",
                "--state",
                str(state),
                "--inbox",
                args.inbox,
                "--settle",
                "0.2",
                "--http-port",
                "0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with (root / "daemons.pids").open("a") as pids:
        pids.write(f"{child.pid}\n")


if __name__ == "__main__":
    main()
