"""Fixtures for the sync tests: PostgreSQL when it can run, and a central per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import Cluster, find_bindir
from tests.syncutil import CentralServer


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    url = os.environ.get("EDGE_TEST_PG")
    if url:
        yield Cluster(url)
        return
    if find_bindir() is None:
        message = "PostgreSQL server binaries are missing (make system-deps installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite under the data folder, or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return None
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def central(tmp_path: Path, central_db: str | None) -> Iterator[CentralServer]:
    with CentralServer(tmp_path / "central", central_db) as server:
        yield server


@pytest.fixture(scope="session")
def box_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A box with three dossiers (JPEG and PDF pages) and a quarantined file, made once."""
    from tests.syncutil import capture, make_box

    folder = tmp_path_factory.mktemp("box-template")
    state = make_box(folder, dossiers=2, pages=2, seed=21)
    (folder / "inbox" / "hong.jpg").write_bytes(b"\xff\xd8\xff\xe0 a damaged scan")
    capture(state, folder / "inbox", dossiers=1, pages=1, fmt="pdf", seed=22, name="job")
    return state


@pytest.fixture
def box(tmp_path: Path, box_template: Path) -> Path:
    """A fresh copy of the template box (same keys: use one per central)."""
    import shutil

    target = tmp_path / "box" / "state"
    shutil.copytree(box_template, target)
    return target
