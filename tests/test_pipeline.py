"""The capture pipeline, one step at a time, on a real store."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from edge import samples
from edge.capture.barcodes import default_chain
from edge.capture.pipeline import Capture, analyse
from edge.capture.quality import QualityThresholds
from edge.capture.readers import open_pages
from edge.daemon import Daemon
from edge.domain import DEFAULT_CODE_PATTERNS, CodePatterns
from edge.records import Ledger
from edge.samples import DossierSpec
from edge.store import Store
from edge.vault import Keyring


@pytest.fixture
def capture(state: Path, inbox: Path):
    store = Store.open(state)
    cap = Capture(store, Ledger(store, Keyring.load(state).sealer()), inbox, store.settings())
    yield cap
    cap.close()
    store.close()


def _codes_and_pages(store: Store) -> list[tuple[str | None, int]]:
    return [(d["code"], d["pages"]) for d in store.list_dossiers()]


def test_pages_before_the_first_cover_form_an_unassigned_dossier(
    capture: Capture, inbox: Path
) -> None:
    code = samples.sample_codes(1, seed=1)[0]
    job = samples.write_job(inbox, [DossierSpec(None, 2), DossierSpec(code, 1)], "tiff", dpi=150)
    outcome = capture.process(job.paths[0])
    assert outcome.status == "stored" and outcome.pages == 4
    assert _codes_and_pages(capture.store) == [(None, 2), (code, 2)]
    statuses = [d["status"] for d in capture.store.list_dossiers()]
    assert statuses == ["unassigned", "waiting_details"]
    assert not job.paths[0].exists()


def test_an_interrupted_file_resumes_into_the_same_dossier(
    state: Path, inbox: Path, capture: Capture
) -> None:
    code = samples.sample_codes(1, seed=2)[0]
    job = samples.write_job(inbox, [DossierSpec(code, 4)], "pdf", dpi=100)
    stop = {"now": False}
    capture.should_stop = lambda: stop["now"]
    stop["now"] = True
    first = capture.process(job.paths[0])
    assert first.status == "interrupted" and first.pages == 1
    assert job.paths[0].exists()
    # a new process (new keys, new pool) continues from page 2
    capture.should_stop = lambda: False
    store = Store.open(state)
    again = Capture(store, Ledger(store, Keyring.load(state).sealer()), inbox, store.settings())
    second = again.process(job.paths[0])
    again.close()
    assert second.status == "stored" and second.pages == 4
    assert _codes_and_pages(store) == [(code, 5)]
    keys = store.conn.execute("SELECT COUNT(DISTINCT key_id) FROM pages").fetchone()[0]
    assert keys == 2
    store.close()


def test_a_crash_between_commit_and_removal_is_a_duplicate_not_a_copy(
    capture: Capture, inbox: Path, tmp_path: Path
) -> None:
    job = samples.write_job(tmp_path, [DossierSpec(samples.sample_codes(1)[0], 0)], "jpeg")
    shutil.copy(job.paths[0], inbox / "a.jpg")
    assert capture.process(inbox / "a.jpg").status == "stored"
    shutil.copy(job.paths[0], inbox / "a.jpg")  # as if the unlink never happened
    assert capture.process(inbox / "a.jpg").status == "duplicate"
    assert capture.store.count("pages") == 1
    assert not (inbox / "a.jpg").exists()


def test_a_damaged_page_late_in_a_file_keeps_the_earlier_pages_and_the_original(
    state: Path, capture: Capture, inbox: Path
) -> None:
    frames = [samples.text_page(i, dpi=100) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], compression="raw")
    data = buf.getvalue()
    (inbox / "late.tif").write_bytes(data[: len(data) - 50_000])
    outcome = capture.process(inbox / "late.tif")
    assert outcome.status == "quarantined" and outcome.reason == "truncated"
    assert outcome.pages >= 1
    assert capture.store.count("pages") == outcome.pages
    held = capture.store.list_quarantine()
    assert held[0]["bytes"] == len(data) - 50_000
    assert not (inbox / "late.tif").exists()


def test_a_vanished_file_is_recorded_and_an_unreadable_one_reported_once(
    capture: Capture, inbox: Path
) -> None:
    gone = capture.process(inbox / "gone.jpg")
    assert gone.status == "quarantined" and gone.reason == "vanished"
    locked = inbox / "locked.jpg"
    Image.new("RGB", (100, 100)).save(locked)
    os.chmod(locked, 0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as root: permissions cannot make a file unreadable")
    assert capture.process(locked).reason == "unreadable"
    assert capture.process(locked).status == "held"
    assert locked.exists()


def test_the_disk_guard_defers_scans_and_resumes(state: Path, inbox: Path) -> None:
    samples.write_job(inbox, [DossierSpec(samples.sample_codes(1)[0], 1)], "jpeg", dpi=100)
    store = Store.open(state)
    with store.transaction():
        store.put_settings(store.settings().with_changes(min_free_mb=10**9))
    store.close()
    daemon = Daemon(state, inbox, {"settle_seconds": 0})
    report = daemon.run_once()
    assert len(report.deferred) == 1 and report.outcomes == []
    assert daemon.store.meta("alert.disk")
    daemon.close()
    assert len(list(inbox.iterdir())) == 2
    daemon = Daemon(state, inbox, {"settle_seconds": 0, "min_free_mb": 1})
    report = daemon.run_once()
    assert not daemon.store.meta("alert.disk")
    daemon.close()
    assert report.as_json()["pages"] == 2 and not list(inbox.iterdir())


def test_a_known_code_on_a_later_job_appends(capture: Capture, inbox: Path) -> None:
    code = samples.sample_codes(1, seed=4)[0]
    first = samples.write_job(inbox / "one", [DossierSpec(code, 1)], "jpeg", dpi=100)
    for path in first.paths:
        capture.process(path)
    capture.close_idle_jobs(everything=True)
    second = samples.write_job(inbox / "two", [DossierSpec(code, 2)], "jpeg", dpi=100, seed=5)
    for path in second.paths:
        capture.process(path)
    assert _codes_and_pages(capture.store) == [(code, 5)]


@pytest.mark.parametrize(
    ("kind", "flagged"),
    [("colour scan", False), ("grey scan saved as RGB", True), ("grey JPEG", True)],
)
def test_capture_flags_a_page_not_scanned_in_colour(
    tmp_path: Path, kind: str, flagged: bool
) -> None:
    """Decree 30 asks for colour: the flag comes from the pipeline as capture runs it (colour
    judged on a sample of the checking decode), not only from the quality module alone."""
    page = samples.text_page(11, 300)
    if kind == "grey scan saved as RGB":
        page = page.convert("L").convert("RGB")
    elif kind == "grey JPEG":
        page = page.convert("L")
    path = tmp_path / "page.jpg"
    samples.save_jpeg(page, path, 300, 75)
    scanned = next(iter(open_pages(path)))
    patterns = CodePatterns.from_config(list(DEFAULT_CODE_PATTERNS))
    found = analyse(scanned, default_chain(), patterns, QualityThresholds())
    assert ("not_colour" in found.flags) is flagged
