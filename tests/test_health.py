"""Health and metrics on the box: /healthz, /readyz, /metrics and the summary that rides sync.

The end-to-end test runs ``edge run --http-port`` as a real process, scrapes it with httpx,
parses the exposition with prometheus_client's own parser, drops generated scans into the
inbox and checks the numbers move. The rest drive the Litestar app and the snapshot
directly against a provisioned box's real SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from edge import samples
from edge.clock import iso, parse_iso
from edge.desk import DeskLedger
from edge.domain import CodePatterns
from edge.observe.health import (
    REVIEW_OVERDUE_SECONDS,
    Vitals,
    health_summary,
    read_only,
    readiness,
    snapshot,
)
from edge.observe.server import create_app
from edge.records import Ledger
from edge.samples import DossierSpec
from edge.settings import Settings
from edge.store import DB_FILE, Store
from edge.sync.client import wire_summary
from edge.vault import Keyring
from tests import badfiles
from tests.conftest import PASSWORD

EDGE = [sys.executable, "-m", "edge.cli"]


def run_cmd(state: Path, inbox: Path, *extra: str) -> list[str]:
    return [*EDGE, "run", "--state", str(state), "--inbox", str(inbox), *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def wait_for(predicate, timeout: float = 60.0, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def test_a_running_box_reports_health_and_metrics_that_follow_capture(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        run_cmd(state, inbox, "--settle", "0.2", "--idle", "1", "--http-port", str(port)),
        env=edge_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                return False

        wait_for(up, timeout=30)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["database"]["ok"] and checks["disk"]["ok"]
        assert checks["watcher"] == {**checks["watcher"], "ok": True, "detail": "inotify"}
        assert checks["sync"]["last_ok"] == "never" and checks["sync"]["stale"] is True

        before_response = httpx.get(f"{base}/metrics")
        assert before_response.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = samples_of(before_response.text)
        assert before[("edge_pages_captured_total", ())] == 0
        assert before[("edge_watcher_up", ())] == 1
        assert before[("edge_database_up", ())] == 1
        assert before[("edge_outbox_dossiers", ())] == 0
        assert before[("edge_dossiers_needs_review", ())] == 0
        assert before[("edge_pages_sent_to_review_total", ())] == 0
        assert before[("edge_last_sync_timestamp_seconds", ())] == 0
        assert before[("edge_build_info", (("office", "H29.01"), ("version", "0.1.0")))] == 1
        assert before[("edge_disk_free_bytes", ())] > 0
        assert ("edge_process_resident_memory_bytes", ()) in before

        codes = samples.sample_codes(2, seed=41)
        staged = samples.write_job(
            tmp_path / "s", [DossierSpec(None, 1), DossierSpec(codes[0], 2)], "pdf", seed=41
        )
        os.replace(staged.paths[0], inbox / "job.pdf")
        bad = badfiles.write_all(tmp_path / "bad")
        for name in list(bad)[:2]:
            os.replace(tmp_path / "bad" / name, inbox / name)

        def captured() -> bool:
            values = samples_of(httpx.get(f"{base}/metrics").text)
            return values[("edge_pages_captured_total", ())] == 4 and (
                values.get(("edge_quarantine_files", (("status", "held"),))) == 2
            )

        wait_for(captured, timeout=60)
        after = samples_of(httpx.get(f"{base}/metrics").text)
        assert after[("edge_dossiers", (("status", "unassigned"),))] == 1
        assert after[("edge_outbox_dossiers", ())] == 2
        assert after[("edge_outbox_bytes", ())] > before[("edge_outbox_bytes", ())] + 10_000
        assert after[("edge_outbox_events", ())] > before[("edge_outbox_events", ())]
        assert after[("edge_events_total", ())] > before[("edge_events_total", ())]

        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)  # SIGTERM took the endpoint down with it


def test_health_port_in_use_does_not_stop_capture(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = samples.sample_codes(1, seed=43)[0]
        job = samples.write_job(tmp_path / "s", [DossierSpec(code, 1)], "pdf", seed=43)
        os.replace(job.paths[0], inbox / "job.pdf")
        proc = subprocess.Popen(
            run_cmd(state, inbox, "--settle", "0.2", "--http-port", str(port)),
            env=edge_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: not (inbox / "job.pdf").exists(), timeout=60)
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert f"health endpoint not started: cannot listen on 127.0.0.1:{port}" in err


def test_http_port_is_checked(state: Path, inbox: Path) -> None:
    result = subprocess.run(
        [*EDGE, "run", "--state", str(state), "--inbox", str(inbox), "--http-port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("edge: error: --http-port 70000 is not a port")


def test_readyz_fails_on_a_full_disk_and_a_stalled_loop(state: Path) -> None:
    vitals = Vitals(watching=True)
    with TestClient(app=create_app(state, vitals)) as client:
        assert client.get("/readyz").status_code == 200
        vitals.last_beat -= vitals.stale_after + 1  # the main loop stopped showing progress
        stalled = client.get("/readyz")
        assert stalled.status_code == 503
        assert stalled.json()["checks"]["watcher"]["ok"] is False
        assert client.get("/healthz").status_code == 200  # liveness is the watchdog's job
        vitals.beat()
        store = Store.open(state)
        try:
            with store.transaction():
                store.put_settings(Settings().with_changes(min_free_mb=10**9))
        finally:
            store.close()
        full = client.get("/readyz")
        assert full.status_code == 503
        assert full.json()["checks"]["disk"]["ok"] is False


def test_no_database_is_not_ready_and_not_a_crash(tmp_path: Path) -> None:
    with TestClient(app=create_app(tmp_path / "nowhere", Vitals(watching=True))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"]["ok"] is False
        metrics = samples_of(client.get("/metrics").text)
        assert metrics[("edge_database_up", ())] == 0


def test_summary_reads_what_sync_leaves_in_meta(state: Path, inbox: Path) -> None:
    code = samples.sample_codes(1, seed=45)[0]
    samples.write_job(inbox, [DossierSpec(code, 1)], "jpeg", seed=45)
    subprocess.run(
        [*EDGE, "capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    store = Store.open(state)
    try:
        pending = health_summary(store, state)
        assert pending["outbox"]["dossiers"] == 1 and pending["outbox"]["bytes"] > 10_000
        assert pending["sync"] == {
            "last_ok": "never",
            "age_seconds": None,
            "errors": {},
            "last_error": None,
        }
        last_event = store.count("events")
        synced_ms = int(time.time() * 1000) - 3_600_000
        with store.transaction():
            store.conn.execute("UPDATE dossiers SET sync='acknowledged'")
            store.put_meta("sync.acked_seq", str(last_event))
            store.put_meta("sync.last_ok", iso(synced_ms))
            store.put_meta("sync.errors.timeout", "3")
            store.put_meta("sync.errors.tls", "1")
            store.put_meta("sync.last_error", "timeout after 30 s")
            store.put_meta("alert.disk", "120 MB free")
        summary = health_summary(store, state)
    finally:
        store.close()
    assert json.loads(json.dumps(summary)) == summary  # rides sync as JSON, unchanged
    assert summary["outbox"] == {
        "dossiers": 0,
        "events": 0,
        "bytes": 0,
        "batches_in_flight": 0,
        "acked_seq": last_event,
    }
    assert summary["sync"]["last_ok"] == iso(synced_ms)
    assert summary["sync"]["errors"] == {"timeout": 3, "tls": 1}
    assert 3600 <= summary["sync"]["age_seconds"] < 3700
    assert summary["alerts"] == {"disk": "120 MB free"}
    assert summary["office"] == "H29.01" and summary["pages"] == 2
    assert summary["dossiers"] == {"waiting_details": 1}

    result = readiness(state, Vitals(watching=True))
    assert result["ready"] is True  # readiness measures the disk itself, not a stored alert
    assert result["checks"]["sync"]["stale"] is False
    with TestClient(app=create_app(state, Vitals(watching=True))) as client:
        metrics = samples_of(client.get("/metrics").text)
    assert metrics[("edge_sync_errors_total", (("kind", "timeout"),))] == 3
    assert metrics[("edge_last_sync_timestamp_seconds", ())] == pytest.approx(synced_ms / 1000)
    assert metrics[("edge_alert", (("name", "disk"),))] == 1
    assert metrics[("edge_outbox_events", ())] == 0


def test_scrapes_cannot_write(state: Path) -> None:
    conn = read_only(state)
    try:
        with pytest.raises(Exception, match="readonly"):
            conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    finally:
        conn.close()


def test_summary_reads_the_sync_tables(state: Path, inbox: Path) -> None:
    """Receipts in sync_batches acknowledge events; cursors carry errors and central's clock."""
    code = samples.sample_codes(1, seed=47)[0]
    samples.write_job(inbox, [DossierSpec(code, 1)], "jpeg", seed=47)
    subprocess.run(
        [*EDGE, "capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    store = Store.open(state)
    try:
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"sync_batches", "sync_cursors", "event_blobs"} <= tables
        total = store.count("events")
        before = health_summary(store, state)["outbox"]
        acked_at = iso(int(time.time() * 1000) - 120_000)
        with store.transaction():
            store.conn.execute(
                "INSERT INTO sync_batches(batch_id, after_seq, last_seq, events, blobs, created, "
                "sent_via, receipt, acknowledged_at) VALUES ('b1', 0, ?, ?, '[]', ?, 'net', "
                "'{}', ?)",
                (total - 1, total - 1, acked_at, acked_at),
            )
            store.conn.execute(
                "INSERT INTO sync_batches(batch_id, after_seq, last_seq, events, blobs, created) "
                "VALUES ('b2', ?, ?, 1, '[]', ?)",
                (total - 1, total, acked_at),
            )
            store.conn.execute(
                "INSERT INTO sync_cursors(name, value) VALUES ('errors.unreachable', '4'), "
                "('clock.offset_ms', '-1500')"
            )
        summary = health_summary(store, state)
    finally:
        store.close()
    assert before["events"] == total and before["acked_seq"] == 0
    assert summary["outbox"]["acked_seq"] == total - 1
    assert summary["outbox"]["events"] == 1 and summary["outbox"]["batches_in_flight"] == 1
    assert summary["outbox"]["bytes"] < before["bytes"]
    assert summary["sync"]["last_ok"] == acked_at
    assert summary["sync"]["errors"] == {"unreachable": 4}
    assert summary["clock"]["central_offset_seconds"] == -1.5
    with TestClient(app=create_app(state, Vitals(watching=True))) as client:
        metrics = samples_of(client.get("/metrics").text)
    assert metrics[("edge_clock_central_offset_seconds", ())] == -1.5
    assert metrics[("edge_outbox_batches_in_flight", ())] == 1
    assert metrics[("edge_sync_errors_total", (("kind", "unreachable"),))] == 4


def open_review(store: Store, state: Path) -> str:
    """What capture leaves when it cannot confirm a cover: a dossier the clerk must check."""
    ledger = Ledger(store, Keyring.load(state).sealer())
    with store.transaction():
        return ledger.create_dossier(
            None, review=[{"text": "X", "why": "no_pattern"}], follows=None
        )


def test_covers_waiting_for_the_clerk_are_counted_and_flagged_after_a_day(state: Path) -> None:
    store = Store.open(state)
    try:
        assert health_summary(store, state)["open_reviews"] == 0
        dossier_id = open_review(store, state)
        received = store.dossier(dossier_id)["received_at"]
        fresh = health_summary(store, state)
        assert store.review_count() == 1
    finally:
        store.close()
    assert fresh["open_reviews"] == 1 and fresh["oldest_review"] == received
    assert "review" not in fresh["alerts"]  # waiting an hour is the desk's normal rhythm
    assert wire_summary(fresh).open_reviews == 1  # the contract carries it to central
    vitals = Vitals(watching=True, sent_to_review=3)
    with TestClient(app=create_app(state, vitals)) as client:
        metrics = samples_of(client.get("/metrics").text)
        ready = client.get("/readyz").json()
    assert metrics[("edge_dossiers_needs_review", ())] == 1
    assert metrics[("edge_pages_sent_to_review_total", ())] == 3
    oldest = metrics[("edge_dossiers_needs_review_oldest_timestamp_seconds", ())]
    assert oldest == pytest.approx(parse_iso(received) / 1000)
    assert ("edge_alert", (("name", "review"),)) not in metrics
    assert ready["ready"] is True
    assert ready["checks"]["review"] == {
        "ok": True,
        "open": 1,
        "oldest": received,
        "overdue": False,
    }

    store = Store.open(state)
    try:
        day_ago = int(time.time() * 1000) - (REVIEW_OVERDUE_SECONDS + 3600) * 1000
        with store.transaction():
            store.conn.execute(
                "UPDATE dossiers SET received_at=? WHERE id=?", (iso(day_ago), dossier_id)
            )
        stale = health_summary(store, state)
    finally:
        store.close()
    assert stale["alerts"]["review"] == (
        f"1 dossier(s) waiting for the clerk to check the cover since {iso(day_ago)}"
    )
    assert wire_summary(stale).alerts["review"] == stale["alerts"]["review"]
    with TestClient(app=create_app(state, Vitals(watching=True))) as client:
        metrics = samples_of(client.get("/metrics").text)
        ready = client.get("/readyz")
    assert metrics[("edge_alert", (("name", "review"),))] == 1
    assert metrics[("edge_pages_sent_to_review_total", ())] == 0  # a new daemon, a new count
    assert ready.status_code == 200  # covers to check never stop the box taking scans
    assert ready.json()["checks"]["review"]["overdue"] is True

    # The clerk decides: nothing waits any more.
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        desk = DeskLedger(store, Keyring.load(state).sealer(), session)
        desk.confirm_new_dossier(dossier_id, "H26.22.16-251111-3366", CodePatterns.default())
        done = health_summary(store, state)
    finally:
        session.close()
        store.close()
    assert done["open_reviews"] == 0 and done["oldest_review"] is None
    assert "review" not in done["alerts"]
    with TestClient(app=create_app(state, Vitals(watching=True))) as client:
        metrics = samples_of(client.get("/metrics").text)
    assert metrics[("edge_dossiers_needs_review", ())] == 0
    assert ("edge_dossiers_needs_review_oldest_timestamp_seconds", ()) not in metrics


def test_a_database_from_before_reviews_has_none(state: Path) -> None:
    conn = sqlite3.connect(state / DB_FILE)
    try:
        conn.execute("DROP INDEX dossiers_review")
        conn.execute("ALTER TABLE dossiers DROP COLUMN needs_review")
        conn.commit()
    finally:
        conn.close()
    conn = read_only(state)
    try:
        data = snapshot(conn, state)
    finally:
        conn.close()
    assert data["open_reviews"] == 0 and data["oldest_review"] is None


def test_a_published_catalogue_the_box_refuses_is_an_alert_on_the_fleet_page(
    state: Path,
) -> None:
    """The box falls back to the shipped sample, so clerks would quote last release's
    procedures and return dates; regional IT sees why in the summary sync sends."""
    shipped = json.loads(
        (Path(__file__).parent.parent / "edge/catalogue/procedures.json").read_text()
    )
    broken = json.loads(json.dumps(shipped))
    entries = broken["procedures"] if isinstance(broken, dict) else broken
    entries[0]["code"] = "not a code"

    def alerts_with(data: object) -> dict[str, str]:
        store = Store.open(state)
        try:
            with store.transaction():
                store.conn.execute(
                    "INSERT OR REPLACE INTO reference_data(name, data, source, updated) "
                    "VALUES ('procedures', ?, 'test', '2026-12-02T00:00:00Z')",
                    (json.dumps(data),),
                )
            return dict(health_summary(store, state)["alerts"])
        finally:
            store.close()

    assert "reference.procedures" not in alerts_with(shipped)
    alert = alerts_with(broken)["reference.procedures"]
    assert alert.startswith("published catalogue not used (") and "publish a corrected" in alert
    assert "\n" not in alert and len(alert) < 240
    store = Store.open(state)
    try:
        sent = wire_summary(health_summary(store, state))  # what travels to central
    finally:
        store.close()
    assert sent.alerts["reference.procedures"] == alert
