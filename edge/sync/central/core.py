"""What every part of central's receiver shares: database, blob folder, keys and clock.

The parts (admission, devices, uploads, batches, downlink, configuration, codes,
holdings) each hold the one ``Core`` of their receiver process instead of each
other's state, so every part opens transactions the same way: request writes
through ``write`` (grouped into one commit on SQLite), reads and commands
through ``tx``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from edge.sync.central import storage as st
from edge.sync.central.blobs import BlobStore
from edge.sync.central.committer import GroupCommitter
from edge.sync.central.keys import CentralKeys
from edge.update.gate import Gate

T = TypeVar("T")


class Core:
    """One receiver's database, blob folder, keys, update gate and clock."""

    def __init__(
        self,
        data: Path,
        db_url: str | None = None,
        *,
        now: Callable[[], int] | None = None,
        pool_size: int = 8,
    ) -> None:
        self.data = data
        st.ensure_private_dir(data)
        self.engine = st.open_engine(data, db_url, pool_size=pool_size)
        st.create_schema(self.engine)
        self.blobs = BlobStore(data)
        self.keys = CentralKeys.load_or_create(data)
        self.gate = Gate(data)
        self._now = now or (lambda: int(time.time() * 1000))
        self._committer = None if st.is_postgres(self.engine) else GroupCommitter(self.engine)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
        self.engine.dispose()

    def now(self) -> int:
        return self._now()

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run a request's writes in one transaction (grouped with others on SQLite)."""
        if self._committer is not None:
            return self._committer.submit(work)
        with self.tx() as conn:
            return work(conn)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def insert(self, conn: Connection, table: Any) -> Any:
        """An INSERT that can say ``on_conflict_do_nothing`` on either database."""
        dialect = pg_dialect if st.is_postgres(conn) else sqlite_dialect
        return dialect.insert(table)
