"""Power cuts at random instants: SIGKILL the capture process again and again.

After 20 kills at random points in a run of 220 pages (loose JPEG pages and a
multi-page PDF, so some kills land in the middle of a file), one clean run
finishes the job. Every page must then be stored exactly once, in the dossier
its cover sheet names, the inbox must be empty, the hash chain must hold and
``PRAGMA integrity_check`` must say ok.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import samples
from edge.samples import DossierSpec
from edge.store import Store

pytestmark = pytest.mark.slow

KILLS = 20


def _capture(state: Path, inbox: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "capture",
            "--state",
            str(state),
            "--inbox",
            str(inbox),
            "--once",
            "--settle",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_at_random_points_loses_and_duplicates_nothing(state: Path, inbox: Path) -> None:
    rng = random.Random(20261128)
    codes = samples.sample_codes(22, seed=3)
    loose = samples.write_job(inbox, [DossierSpec(code, 9) for code in codes[:20]], "jpeg", seed=1)
    pdf = samples.write_job(
        inbox, [DossierSpec(code, 9) for code in codes[20:]], "pdf", seed=2, name="big"
    )
    expected = {d.code: d.pages for d in loose.expected + pdf.expected}
    total = sum(expected.values())
    assert total >= 200

    kills = 0
    for _ in range(3 * KILLS):
        if kills == KILLS or not any(inbox.iterdir()):
            break
        proc = _capture(state, inbox)
        time.sleep(rng.uniform(0.3, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    proc = _capture(state, inbox)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert kills == KILLS, "the run finished before every kill landed"

    assert [p.name for p in inbox.iterdir()] == []
    store = Store.open(state)
    try:
        assert store.integrity_check() == "ok"
        assert store.verify_chain() is None
        found = {d["code"]: d["pages"] for d in store.list_dossiers()}
        assert found == expected
        assert store.count("pages") == total
        per_source = store.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT source_sha || ':' || source_index) FROM pages"
        ).fetchone()
        assert per_source[0] == per_source[1] == total
        added = store.conn.execute(
            "SELECT COUNT(*) FROM events WHERE type='page.added'"
        ).fetchone()[0]
        assert added == total
        positions = store.conn.execute(
            "SELECT dossier_id, GROUP_CONCAT(position) FROM "
            "(SELECT dossier_id, position FROM pages ORDER BY dossier_id, position) "
            "GROUP BY dossier_id"
        ).fetchall()
        for _dossier, joined in positions:
            numbers = [int(n) for n in joined.split(",")]
            assert numbers == list(range(1, len(numbers) + 1))
        orphans = store.conn.execute(
            "SELECT COUNT(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM pages) "
            "AND id NOT IN (SELECT value FROM quarantine, json_each(quarantine.blob_ids))"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        store.close()
    conn = sqlite3.connect(state / "edge.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
