"""What a new release must prove after a restart, and the daemon's sign of life.

``edge selftest`` runs *inside the new release* (its launcher, its code): the
database opens (its migrations run) and ``PRAGMA integrity_check`` says ok with
the hash chain whole, a generated receipt slip goes through the real capture
pipeline into a throwaway box and comes out as one dossier with the right code,
and central answers when the update came over the network. The installer also
waits for the restarted daemon's heartbeat (``<state>/run/daemon.json``) to show
the new version, so "came up" means the daemon itself started, not just a CLI.

Coming up is not staying up: a release whose main loop hangs a minute after start
passes both. So the installer then keeps the release on probation
(``<state>/run/probation`` exists) and confirms it only if the same daemon process
keeps beating all along: while the mark is there the daemon's update hook, called
from the main loop that captures, rewrites the heartbeat every second
(``edge.update.schedule``). A stale beat (hung), a dead process or another process
(a crash, or systemd's watchdog restarting it) ends the probation in a rollback.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge import __version__

HEARTBEAT = Path("run") / "daemon.json"
PROBATION = Path("run") / "probation"
"""Present while the installer watches a new release's daemon: the daemon beats often."""


def write_heartbeat(state: Path, *, nonce: str | None = None, beats: int = 0) -> None:
    """Which code is running, as which process (``nonce``: one per daemon start), and when
    its main loop last came round (``mono``: the boot's monotonic clock, which the
    installer shares and setting the wall clock does not move)."""
    path = state / HEARTBEAT
    path.parent.mkdir(mode=0o700, exist_ok=True)
    data = {
        "pid": os.getpid(),
        "version": __version__,
        "release": os.environ.get("EDGE_RELEASE"),
        "nonce": nonce or secrets.token_hex(8),
        "beats": beats,
        "mono": time.monotonic(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data), "utf-8")
    os.replace(tmp, path)


def read_heartbeat(state: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state / HEARTBEAT).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return status != "Z"


def daemon_running(state: Path) -> dict[str, Any] | None:
    beat = read_heartbeat(state)
    if beat and isinstance(beat.get("pid"), int) and alive(beat["pid"]):
        return beat
    return None


def wait_for_daemon(
    state: Path, version: str, before: dict[str, Any] | None, deadline: float
) -> str | None:
    """None once a daemon of ``version`` (not the one from ``before``) is up; else why not."""
    while True:
        beat = daemon_running(state)
        fresh = beat is not None and (before is None or beat.get("nonce") != before.get("nonce"))
        if fresh and beat is not None and beat.get("version") == version:
            return None
        if time.monotonic() >= deadline:
            seen = f"running {beat.get('version')}" if beat else "not running"
            return f"the daemon did not come up on {version} in time ({seen})"
        time.sleep(0.1)


def watch_probation(
    state: Path, version: str, seen: dict[str, Any], until: float, stale_after: float
) -> str | None:
    """None when the daemon ``seen`` at the health check is still the one running
    ``version`` at ``until`` and never went ``stale_after`` seconds without a beat."""
    started = time.monotonic()
    while True:
        now = time.monotonic()
        into = f"{now - started:.0f} s into its probation"
        beat = read_heartbeat(state)
        if beat is None or beat.get("nonce") != seen.get("nonce"):
            return (
                f"the daemon of {version} restarted {into} "
                "(it crashed, or the watchdog found it hung)"
            )
        if not (isinstance(beat.get("pid"), int) and alive(beat["pid"])):
            return f"the daemon of {version} stopped {into}"
        last = beat.get("mono")
        age = now - last if isinstance(last, int | float) else now - started
        if age > stale_after:
            return (
                f"the daemon of {version} stopped beating {into} "
                f"(no beat for {age:.0f} s: its main loop hangs, scans wait uncaptured)"
            )
        if now >= until:
            return None
        time.sleep(min(0.5, max(0.0, until - now)))


def _check_database(state: Path) -> tuple[bool, str]:
    from edge.store import Store, StoreError

    try:
        store = Store.open(state)
    except StoreError as exc:
        return False, str(exc)
    try:
        result = store.integrity_check()
        if result != "ok":
            return False, f"integrity_check: {result}"
        broken = store.verify_chain()
        if broken is not None:
            return False, f"event hash chain broken at {broken}"
        return True, f"integrity ok, schema {store.schema_version}"
    finally:
        store.close()


def _check_capture() -> tuple[bool, str]:
    from edge import samples
    from edge.daemon import Daemon
    from edge.provision import provision

    with tempfile.TemporaryDirectory(prefix="edge-selftest-") as tmp:
        box = Path(tmp) / "state"
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        provision(box, office="SELFTEST", clerk="selftest", password=secrets.token_urlsafe(12))
        code = samples.sample_codes(1, seed=int.from_bytes(os.urandom(2), "big"))[0]
        samples.save_jpeg(samples.cover_page(code, seed=1, dpi=200), inbox / "page.jpg", dpi=200)
        daemon = Daemon(box, inbox, {"settle_seconds": 0.0})
        try:
            report = daemon.run_once(max_wait=30).as_json()
        finally:
            daemon.close()
    if report["pages"] != 1 or report["dossiers"] != [code]:
        return False, f"a generated page of dossier {code} was captured as {report}"
    return True, f"captured a generated page as dossier {code}"


def _check_probe(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} is unreachable ({exc})"
    if status >= 500:
        return False, f"{url} answered {status}"
    return True, f"{url} answered {status}"


def selftest(state: Path, probe: str | None = None) -> list[dict[str, Any]]:
    checks: list[tuple[str, Any]] = [
        ("database", lambda: _check_database(state)),
        ("capture", _check_capture),
    ]
    if probe:
        checks.append(("central", lambda: _check_probe(probe)))
    results = []
    for name, check in checks:
        try:
            ok, detail = check()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results.append({"check": name, "ok": ok, "detail": detail, "version": __version__})
    return results
