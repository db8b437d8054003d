"""The box's side of tests/test_retention.py's disk-pressure test.

It runs as its own process inside ``unshare --mount`` with a small tmpfs mounted at
``mount``, so the box's state sits on a filesystem that really fills up, and nothing is
mounted where the rest of the machine can see it. It imports only what a box runs (no
central), and reports what it saw as JSON for the test to judge.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from edge.store import Store
from edge.vault import Keyring

# What only the disk scenario needs is imported inside it: the crash test starts
# ``purge_all`` three times, and a box's whole import (capture, sync) is seconds each.

MB = 2**20
RESERVE_MB = 16
"""``min_free_mb``: intake stops under this much free space."""
FLOOR_MB = 28
"""``purge_floor_mb``: under this, acknowledged pages go early, or the box alarms."""
PASSWORD = "mat-khau-thu-nghiem"


def fill_to(mount: Path, free_mb: float) -> None:
    """Take space with a filler file until ``free_mb`` is left (a log or a video would)."""
    filler = mount / f"filler-{len(list(mount.glob('filler-*')))}"
    take = shutil.disk_usage(mount).free - int(free_mb * MB)
    if take > 0:
        with open(filler, "wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, take)


def scan(inbox: Path, name: str) -> None:
    """A scanned A4 page at 75 dpi, written the way a scanner does (then renamed in)."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (620, 877), "white")
    draw = ImageDraw.Draw(page)
    for line in range(40, 840, 24):
        draw.line((40, line, 560 - 7 * len(name) * (line % 3), line), fill="black", width=2)
    draw.text((40, 10), name, fill="black")  # two scans are never the same bytes
    part = inbox / f".{name}.jpg.part"
    page.save(part, "JPEG", quality=85, dpi=(75, 75))
    part.rename(inbox / f"{name}.jpg")


def scenario(prepared: str, mount: str, inbox: str, out: str) -> None:
    from edge.daemon import Daemon
    from edge.desk import DeskReader
    from edge.doctor import check_disk
    from edge.observe.health import read_only, readiness, snapshot
    from edge.retention import PURGED
    from edge.sync import client
    from edge.sync.client import Policy

    fast = Policy(attempts=8, base=0.01, cap=0.05, round_seconds=120, chunk_start=64 << 10)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    folder, scans = Path(mount), Path(inbox)
    state = folder / "state"
    shutil.copytree(prepared, state)
    steps: dict[str, Any] = {}

    def run(step: str) -> None:
        daemon = Daemon(state, scans, {"settle_seconds": 0})
        try:
            report = daemon.run_once(max_wait=5).as_json()
        finally:
            daemon.close()
        store = Store.open(state)
        try:
            steps[step] = {
                "files": report["files"],
                "deferred": report["deferred"],
                "waiting": sorted(p.name for p in scans.iterdir()),
                "alert": store.meta("alert.disk_low") or "",
                "pages": store.count("pages"),
                "purged": store.purged_pages(),
                "free_mb": shutil.disk_usage(folder).free / MB,
            }
        finally:
            store.close()

    # between the floor and the reserve, nothing central holds: capture goes on, alarmed
    fill_to(folder, (RESERVE_MB + FLOOR_MB) / 2)
    scan(scans, "one")
    run("alarmed")
    doctor = check_disk(state)
    conn = read_only(state)
    try:
        summary = snapshot(conn, state)
    finally:
        conn.close()
    steps["alarmed"].update(
        doctor=[doctor.status, doctor.detail, doctor.fix],
        summary=summary["alerts"].get("disk_low", ""),
        ready=readiness(state, None)["checks"]["disk"]["ok"],
    )
    # under the reserve: the scan waits in the inbox
    fill_to(folder, RESERVE_MB - 2)
    scan(scans, "two")
    run("stopped")
    # the link comes back: central acknowledges; old pages go, the waiting scan comes in
    report = client.sync_once(state, policy=fast)
    if not report.done:
        raise SystemExit(f"sync failed: {report.error}")
    run("relieved")
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        reader = DeskReader(store, session)
        rows = store.conn.execute("SELECT * FROM pages ORDER BY id").fetchall()
        readable = [r["id"] for r in rows if r["purged_at"] is None and reader.page_bytes(r)]
        steps["end"] = {
            "pages": len(rows),
            "readable": len(readable),
            "purged_blobs": [r["blob_id"] for r in rows if r["purged_at"] is not None],
            "events": len(store.events_of_type(PURGED)),
            "chain": store.verify_chain(),
        }
    finally:
        session.close()
        store.close()
    Path(out).write_text(json.dumps(steps))


def purge_all(state: str) -> None:
    """Purge every dossier due a year from now, saying "ready" first (the crash test kills
    this process at a random moment after that)."""
    from edge.clock import Clock
    from edge.records import Ledger
    from edge.retention import purge_due

    store = Store.open(Path(state))
    later = store.time_ms() + 365 * 86_400_000
    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: later)
    ledger = Ledger(store, Keyring.load(Path(state)).sealer())
    print("ready", flush=True)
    purge_due(store, ledger, store.settings())
    store.close()
