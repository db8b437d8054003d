"""Group commit for central's SQLite: many requests, one transaction, one fsync.

SQLite has one writer at a time and every commit waits for the disk
(``synchronous=FULL``, because a receipt promises the batch is kept). Measured
here, the commit was more than half of a batch's cost. So one thread takes
every write that arrives while the previous group was committing, runs each in
its own SAVEPOINT (one request's refusal never undoes another's work), commits
once, and only then answers them all: still nothing is acknowledged before it
is on disk. PostgreSQL already groups concurrent commits itself and does not
use this.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

log = logging.getLogger("edge.central")

T = TypeVar("T")
_STOP = object()


class GroupCommitter:
    def __init__(self, engine: Engine, max_group: int = 128) -> None:
        self.engine = engine
        self.max_group = max_group
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()
        self.groups = 0
        self.writes = 0

    def submit(self, work: Callable[[Connection], T]) -> T:
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Callable[[Connection], Any], Future[Any]]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.engine.begin() as conn:
                for work, future in group:
                    savepoint = conn.begin_nested()
                    try:
                        result = work(conn)
                    except BaseException as exc:  # the request's own refusal or fault
                        savepoint.rollback()
                        outcomes.append((future, None, exc))
                    else:
                        savepoint.commit()
                        outcomes.append((future, result, None))
        except BaseException as exc:
            log.warning("group commit of %d write(s) failed: %s", len(group), exc)
            for _work, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        self.groups += 1
        self.writes += len(group)
        for future, result, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
