"""Shared fixtures: a provisioned box in a temporary folder, and its inbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.provision import provision

PASSWORD = "mat-khau-thu-nghiem"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    provision(path, office="H29.01", clerk="lan", password=PASSWORD)
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def edge_env() -> dict[str, str]:
    env = dict(os.environ)
    env["EDGE_PASSWORD"] = PASSWORD
    return env


pytest_plugins = ["tests.tui_fixtures", "tests.sync_fixtures"]
