"""Watching the scanner's inbox and deciding when a file is ready.

A file is ready only when it has stopped changing: its size and mtime stayed the
same for the settle delay. inotify close events are only hints (some scanners
close a file several times while writing it), and inotify never fires for files
written over SMB/NFS, so there is a polling mode and, in every mode, a periodic
full rescan: a file that arrived while the watcher was being set up is found by
the next rescan. Paths are kept in a dict, so repeated events never queue a file
twice.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from edge.capture.litter import is_litter
from edge.text import natural_key


@dataclass
class _Seen:
    signature: tuple[int, int]
    since: float


@dataclass
class Batch:
    """What one look at the inbox found."""

    ready: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    waiting: int = 0


def _job_group(relative: Path) -> str:
    """Files of one job are released in name order: a job folder, or the inbox root."""
    return relative.parts[0] if len(relative.parts) > 1 else ""


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                target = getattr(event, "dest_path", "") or event.src_path
                self.watcher.notice_tree(Path(os.fsdecode(target)))
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                path = Path(os.fsdecode(raw))
                if event.event_type != "deleted" or raw != event.src_path:
                    self.watcher.notice(path)


class InboxWatcher:
    """Collects candidate files from events and rescans; hands out settled ones."""

    def __init__(
        self,
        inbox: Path,
        *,
        settle_seconds: float = 5.0,
        rescan_seconds: float = 30.0,
        polling: bool = False,
        poll_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inbox = inbox
        self.settle_seconds = settle_seconds
        self.rescan_seconds = rescan_seconds
        self.polling = polling
        self.poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: set[Path] = set()
        self._seen: dict[Path, _Seen] = {}
        self._reported_ignored: set[Path] = set()
        self._last_rescan = float("-inf")
        self._event = threading.Event()
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        """Start watching; on filesystems without inotify, fall back to polling."""
        observer: BaseObserver = (
            PollingObserver(timeout=self.poll_seconds) if self.polling else Observer()
        )
        observer.schedule(_Handler(self), str(self.inbox), recursive=True)
        try:
            observer.start()
        except OSError:
            observer = PollingObserver(timeout=self.poll_seconds)
            observer.schedule(_Handler(self), str(self.inbox), recursive=True)
            observer.start()
            self.polling = True
        self._observer = observer
        self.rescan()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Sleep until an event arrives or ``timeout`` passes: no busy loop."""
        self._event.wait(timeout)
        self._event.clear()

    def notice(self, path: Path) -> None:
        with self._lock:
            self._pending.add(path)
        self._event.set()

    def rescan(self) -> None:
        """Queue every entry in the inbox: the safety net under events."""
        self.notice_tree(self.inbox)
        self._last_rescan = self._monotonic()

    def notice_tree(self, top: Path) -> None:
        """Queue every file under ``top`` (a folder moved in whole sends one event)."""
        found: list[Path] = []
        for root, dirs, files in os.walk(top, followlinks=False):
            base = Path(root)
            links = [d for d in dirs if (base / d).is_symlink()]
            dirs[:] = [d for d in dirs if d not in links]
            found.extend(base / name for name in files)
            found.extend(base / name for name in links)
        with self._lock:
            self._pending.update(found)
        self._event.set()

    def poll(self) -> Batch:
        """Classify pending paths; return the settled ones in natural name order."""
        now = self._monotonic()
        if now - self._last_rescan >= self.rescan_seconds:
            self.rescan()
        with self._lock:
            pending = list(self._pending)
        batch = Batch()
        settled: dict[Path, bool] = {}
        for path in pending:
            try:
                relative = path.relative_to(self.inbox)
            except ValueError:
                self._forget(path)
                continue
            if is_litter(relative):
                if path not in self._reported_ignored and path.exists():
                    batch.ignored.append(path)
                    self._reported_ignored.add(path)
                self._forget(path)
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                self._forget(path)
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                self._forget(path)
                continue
            settled[path] = self._settled(path, st, now)
        blocked: set[str] = set()
        for path in sorted(settled, key=lambda p: natural_key(str(p.relative_to(self.inbox)))):
            group = _job_group(path.relative_to(self.inbox))
            if settled[path] and group not in blocked:
                batch.ready.append(path)
            else:
                blocked.add(group)
                batch.waiting += 1
        return batch

    def _settled(self, path: Path, st: os.stat_result, now: float) -> bool:
        if not stat.S_ISREG(st.st_mode):
            return True
        signature = (st.st_size, st.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is None or seen.signature != signature:
            self._seen[path] = _Seen(signature, now)
            age = time.time() - st.st_mtime
            return seen is None and age >= self.settle_seconds
        return now - seen.since >= self.settle_seconds

    def done(self, path: Path) -> None:
        """The pipeline is finished with ``path`` (stored, quarantined or duplicate)."""
        self._forget(path)

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._pending.discard(path)
        self._seen.pop(path, None)

    def next_change_in(self) -> float:
        """How long until a waiting file could settle: the daemon's sleep bound."""
        return max(0.05, min(self.settle_seconds / 4, 1.0))
