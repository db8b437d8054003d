"""Runs inside the smoke rootfs booted by systemd-nspawn: edge.service under real systemd.

The unit runs as shipped (hardening included) plus a drop-in that shortens WatchdogSec
so pings and a watchdog restart can be seen within seconds. Results go to
/root/boot-probe.json for image-build/smoke to judge; then the container powers off.
Standard library only: this is Debian's python3, not the application's venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import traceback
import urllib.error
import urllib.request

PROPS = ["ActiveState", "SubState", "Result", "NRestarts", "StatusText", "MainPID", "User"]
PROPS += ["WatchdogTimestampMonotonic", "ExecMainStatus"]


def show(unit: str) -> dict[str, str]:
    result = subprocess.run(
        ["systemctl", "show", unit, "-p", ",".join(PROPS)], capture_output=True, text=True
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def get(path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8770" + path, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, repr(exc)


def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def probe_tui() -> dict[str, object]:
    """The clerk UI unit, hardening and all, on the container's console instead of tty1.

    A container has no virtual terminals, so a drop-in clears the tty0 condition and the
    instance is ``console``; the UI must stay up, and come back when it dies.
    """
    unit = "edge-tui@console.service"
    dropin = "/run/systemd/system/edge-tui@console.service.d"
    os.makedirs(dropin, exist_ok=True)
    with open(f"{dropin}/probe.conf", "w") as fh:
        fh.write("[Unit]\nConditionPathExists=\n")
    subprocess.run(["systemctl", "stop", "console-getty.service"], check=False)
    subprocess.run(["systemctl", "daemon-reload"], check=False)
    subprocess.run(["systemctl", "start", unit], check=False)
    time.sleep(8)
    result: dict[str, object] = {"running": show(unit)}
    first = show(unit)["MainPID"]
    subprocess.run(["systemctl", "kill", "--signal=SIGKILL", unit], check=False)
    until(
        lambda: show(unit)["ActiveState"] == "active" and show(unit)["MainPID"] not in ("0", first),
        30,
    )
    time.sleep(3)
    result["after_kill"] = show(unit)
    result["first_pid"] = first
    subprocess.run(["systemctl", "stop", unit], check=False)
    return result


def as_edge(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=edge", "--regid=edge", "--init-groups", *command],
        capture_output=True,
        text=True,
    )


def probe_usb() -> dict[str, object]:
    """Regional IT's stick as the mount unit presents it, taken by edge-update-usb.service.

    The stick is a folder bind-mounted read-only at /media/edge-usb (a container has no
    USB bus). The shipped mount unit is bound to the stick's device and systemd would
    unmount anything at its place without one, so it is masked for this boot. The box
    pins the stick's root once, as provisioning would have.
    """
    subprocess.run(["systemctl", "mask", "--runtime", "media-edge\\x2dusb.mount"], check=False)
    subprocess.run(["systemctl", "daemon-reload"], check=False)
    os.makedirs("/media/edge-usb", exist_ok=True)
    subprocess.run(["mount", "--bind", "-o", "ro", "/root/stick", "/media/edge-usb"], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", "/media/edge-usb"], check=False)
    root = "/media/edge-usb/commune-edge-updates/metadata/1.root.json"
    edge = "/opt/edge/current/bin/edge"
    pinned = as_edge(edge, "update", "--state", "/var/lib/edge", "--trust-root", root)
    subprocess.run(["systemctl", "start", "edge-update-usb.service"], check=False)
    config = as_edge(edge, "config", "--state", "/var/lib/edge", "--json")
    try:
        effective = json.loads(config.stdout)
    except ValueError:
        effective = {"settings": {}, "sources": {}}
    return {
        "mounted": subprocess.run(
            ["findmnt", "/media/edge-usb"], capture_output=True, text=True
        ).stdout,
        "pinned": pinned.stdout + pinned.stderr,
        "unit": show("edge-update-usb.service"),
        "min_dpi": effective["settings"].get("min_dpi"),
        "source": effective["sources"].get("min_dpi"),
        "journal": subprocess.run(
            ["journalctl", "-u", "edge-update-usb.service", "--no-pager", "-o", "cat"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()[-10:],
    }


def probe_update_request() -> dict[str, object]:
    """The daemon's way to ask for an update run: a file edge-update-request.path watches."""
    request = "/var/lib/edge/run/update-request"
    as_edge("touch", request)
    until(lambda: not os.path.exists(request), 120)
    until(lambda: show("edge-update.service")["ActiveState"] in ("inactive", "failed"), 300)
    return {"left": os.path.exists(request), "unit": show("edge-update.service")}


def probe() -> dict[str, object]:
    out: dict[str, object] = {}
    until(lambda: show("edge.service")["ActiveState"] == "active", 90)
    out["start"] = show("edge.service")
    time.sleep(5)
    out["later"] = show("edge.service")
    out["healthz"] = get("/healthz")
    out["readyz"] = get("/readyz")
    staged = "/srv/edge/.probe.pdf"
    shutil.copy("/root/probe/scan.pdf", staged)
    shutil.chown(staged, "edge", "edge")
    os.replace(staged, "/srv/edge/inbox/scan.pdf")
    until(lambda: not os.path.exists("/srv/edge/inbox/scan.pdf"), 60)
    until(lambda: "1 file(s)" in show("edge.service")["StatusText"], 10)
    out["captured"] = show("edge.service")
    out["metrics"] = get("/metrics")[1].splitlines()
    # a hung daemon: stopped, it cannot ping; the watchdog must kill and restart it
    hung = int(show("edge.service")["MainPID"])
    os.kill(hung, signal.SIGSTOP)
    until(lambda: show("edge.service")["NRestarts"] != "0", 60)
    until(lambda: show("edge.service")["ActiveState"] == "active", 60)
    out["after_hang"] = show("edge.service")
    out["hung_pid"] = hung
    # the updater's restart request, as edge-update.service makes it
    before = show("edge.service")["MainPID"]
    # as edge-update.service leaves it: its RuntimeDirectory, owned by edge, 0755
    os.makedirs("/run/edge-update", mode=0o755, exist_ok=True)
    shutil.chown("/run/edge-update", "edge", "edge")
    subprocess.run(
        [
            "setpriv",
            "--reuid=edge",
            "--regid=edge",
            "--init-groups",
            "touch",
            "/run/edge-update/restart",
        ],
        check=True,
    )
    until(
        lambda: (
            not os.path.exists("/run/edge-update/restart")
            and show("edge.service")["MainPID"] not in ("0", before)
            and show("edge.service")["ActiveState"] == "active"
        ),
        60,
    )
    out["restart_request"] = {
        "before": before,
        "after": show("edge.service")["MainPID"],
        "request_left": os.path.exists("/run/edge-update/restart"),
    }
    out["tui"] = probe_tui()
    out["usb"] = probe_usb()
    out["request"] = probe_update_request()
    started = time.monotonic()
    subprocess.run(["systemctl", "stop", "edge.service"], check=False)
    out["stop_seconds"] = round(time.monotonic() - started, 2)
    out["stopped"] = show("edge.service")
    out["failed_units"] = subprocess.run(
        ["systemctl", "--failed", "--no-legend", "--plain"], capture_output=True, text=True
    ).stdout
    out["journal"] = subprocess.run(
        ["journalctl", "-u", "edge.service", "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-25:]
    return out


if __name__ == "__main__":
    try:
        result = probe()
    except Exception:
        result = {"error": traceback.format_exc()}
    with open("/root/boot-probe.json", "w") as fh:
        json.dump(result, fh, indent=1)
