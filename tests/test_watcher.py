"""The inbox watcher: settle before reading, never queue twice, ignore litter."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path, PurePath

from edge.capture.grouping import place
from edge.capture.litter import is_litter
from edge.capture.watcher import InboxWatcher


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fresh(path: Path, data: bytes = b"x") -> Path:
    path.write_bytes(data)
    return path


def test_a_fresh_file_waits_for_the_settle_delay(inbox: Path) -> None:
    clock = FakeTime()
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0, monotonic=clock)
    _fresh(inbox / "scan_1.jpg")
    assert watcher.poll().ready == []
    clock.now += 3
    assert watcher.poll().ready == []
    clock.now += 3
    assert watcher.poll().ready == [inbox / "scan_1.jpg"]


def test_a_growing_file_restarts_the_delay(inbox: Path) -> None:
    clock = FakeTime()
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0, monotonic=clock)
    path = _fresh(inbox / "scan_1.pdf")
    watcher.poll()
    clock.now += 4
    with open(path, "ab") as fh:
        fh.write(b"more")
    assert watcher.poll().ready == []
    clock.now += 4
    assert watcher.poll().ready == []
    clock.now += 2
    assert watcher.poll().ready == [path]


def test_an_old_file_is_ready_at_once(inbox: Path) -> None:
    path = _fresh(inbox / "old.jpg")
    past = time.time() - 3600
    os.utime(path, (past, past))
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0)
    assert watcher.poll().ready == [path]


def test_repeated_events_queue_a_file_once(inbox: Path) -> None:
    path = _fresh(inbox / "a.jpg")
    past = time.time() - 3600
    os.utime(path, (past, past))
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=3600)
    for _ in range(50):
        watcher.notice(path)
    watcher.rescan()
    assert watcher.poll().ready == [path]


def test_ready_files_come_in_natural_order(inbox: Path) -> None:
    past = time.time() - 3600
    for name in ("img_10.jpg", "img_9.jpg", "img_1.jpg", "job/b_2.jpg", "job/b_10.jpg"):
        (inbox / name).parent.mkdir(exist_ok=True)
        _fresh(inbox / name)
        os.utime(inbox / name, (past, past))
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0)
    names = [str(p.relative_to(inbox)) for p in watcher.poll().ready]
    assert names == ["img_1.jpg", "img_9.jpg", "img_10.jpg", "job/b_2.jpg", "job/b_10.jpg"]


def test_litter_is_reported_once_and_left_alone(inbox: Path) -> None:
    past = time.time() - 3600
    for name in (".DS_Store", "._scan.jpg", "Thumbs.db", "scan.jpg.part", "@eaDir/x.jpg"):
        (inbox / name).parent.mkdir(exist_ok=True)
        _fresh(inbox / name)
        os.utime(inbox / name, (past, past))
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0)
    first = watcher.poll()
    assert first.ready == []
    assert len(first.ignored) == 5
    assert watcher.poll().ignored == []
    assert (inbox / "Thumbs.db").exists()


def test_inotify_sees_a_new_file_without_a_rescan(inbox: Path) -> None:
    watcher = InboxWatcher(inbox, settle_seconds=0.2, rescan_seconds=3600)
    watcher.start()
    try:
        assert watcher.poll().ready == []
        threading.Timer(0.1, lambda: _fresh(inbox / "late.jpg")).start()
        deadline = time.monotonic() + 5
        ready: list[Path] = []
        while not ready and time.monotonic() < deadline:
            watcher.wait(0.2)
            ready = watcher.poll().ready
        assert ready == [inbox / "late.jpg"]
    finally:
        watcher.stop()


def test_polling_mode_for_network_shares(inbox: Path) -> None:
    watcher = InboxWatcher(
        inbox, settle_seconds=0.2, rescan_seconds=3600, polling=True, poll_seconds=0.1
    )
    watcher.start()
    try:
        assert watcher.polling
        _fresh(inbox / "share.jpg")
        deadline = time.monotonic() + 5
        ready: list[Path] = []
        while not ready and time.monotonic() < deadline:
            watcher.wait(0.2)
            ready = watcher.poll().ready
        assert ready == [inbox / "share.jpg"]
    finally:
        watcher.stop()


def test_litter_rules() -> None:
    assert is_litter(PurePath(".hidden.jpg"))
    assert is_litter(PurePath("desktop.ini"))
    assert is_litter(PurePath("scan.pdf.crdownload"))
    assert is_litter(PurePath(".stfolder/a.jpg"))
    assert not is_litter(PurePath("job 1/scan_0001.jpg"))


def test_grouping_rule() -> None:
    assert place(None, None, None).creates
    assert place(None, "d1", None).dossier_id == "d1"
    cover = place("CODE", "d1", None)
    assert cover.creates and cover.code == "CODE"
    assert place("CODE", "d1", "d0").dossier_id == "d0"


def test_a_later_page_waits_for_an_earlier_one_still_being_written(inbox: Path) -> None:
    clock = FakeTime()
    watcher = InboxWatcher(inbox, settle_seconds=5, rescan_seconds=0, monotonic=clock)
    past = time.time() - 3600
    (inbox / "job").mkdir()
    for name in ("job/scan_2.jpg", "other.jpg"):
        _fresh(inbox / name)
        os.utime(inbox / name, (past, past))
    _fresh(inbox / "job/scan_1.jpg")
    first = watcher.poll()
    assert first.ready == [inbox / "other.jpg"]
    (inbox / "other.jpg").unlink()
    watcher.done(inbox / "other.jpg")
    clock.now += 6
    assert watcher.poll().ready == [inbox / "job/scan_1.jpg", inbox / "job/scan_2.jpg"]
