"""Settings are range-checked wherever they enter (issue 16, item 9).

``edge admin config --office H29 --set settle_seconds=NaN`` used to be accepted,
signed, applied, and ``edge run`` then never captured a file, silently: NaN
passes no comparison, so no file ever "settled". Every number now has a kind and a
range, checked when regional IT signs it, when central queues it, when the box
applies it, and when the box reads what an older release may have stored.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from pathlib import Path

import pytest

from edge.records import Ledger
from edge.settings import RANGES, Settings
from edge.store import DB_FILE, Store
from edge.sync import contract as c
from edge.sync import downlink
from edge.update import Refused
from edge.update.apply import effective_settings
from edge.update.repository import AdminRepo
from edge.vault import Keyring
from tests.update_support import run_edge

NUMBERS = sorted(RANGES)
BAD = [float("nan"), "NaN", float("inf"), "-Infinity", -1, 1e300, True, "abc", [1]]


def test_every_number_setting_has_a_range_and_its_default_is_inside_it() -> None:
    defaults = Settings().as_dict()
    numeric = {
        k for k, v in defaults.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    assert numeric == set(RANGES)
    for name, (low, high) in RANGES.items():
        assert low <= defaults[name] <= high, name


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_bad_number_is_refused_with_its_name(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name) as caught:
        Settings().with_changes(**{name: value})
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=name):
        Settings.from_mapping({name: value})


def test_good_numbers_keep_their_kind() -> None:
    changed = Settings().with_changes(settle_seconds="2", max_pixels=1e6, min_free_mb="0")
    assert changed.settle_seconds == 2.0 and isinstance(changed.settle_seconds, float)
    assert changed.max_pixels == 1_000_000 and isinstance(changed.max_pixels, int)
    assert changed.min_free_mb == 0
    with pytest.raises(ValueError, match="whole number"):
        Settings().with_changes(max_pixels=1.5)
    with pytest.raises(ValueError, match=r"between 0\.05 and 3600"):
        Settings().with_changes(poll_seconds=0)


def test_regional_it_cannot_sign_nan(tmp_path: Path) -> None:
    repo = AdminRepo.create(tmp_path / "repo")
    repo.delegate("H29")
    before = sorted(p.name for p in repo.metadata_dir.iterdir())
    done = run_edge(
        "admin",
        "config",
        "--repo",
        str(repo.path),
        "--office",
        "H29",
        "--set",
        "settle_seconds=NaN",
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "settle_seconds" in lines[0] and "finite" in lines[0], done.stderr
    assert sorted(p.name for p in repo.metadata_dir.iterdir()) == before


def test_central_refuses_to_queue_a_negative_interval(tmp_path: Path) -> None:
    data = tmp_path / "central"
    done = run_edge("central", "config", "--data", str(data), "--set", "sync_poll_seconds=-5")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sync_poll_seconds" in lines[0], done.stderr
    assert "queued" not in done.stdout


def test_the_box_skips_a_published_nan_and_keeps_its_settings(state: Path) -> None:
    """Central's answer is signed, but a central that let NaN through must not stop capture."""
    store = Store.open(state)
    try:
        before = store.settings()
        ledger = Ledger(store, Keyring.load(state).sealer())
        doc = c.DownlinkDoc(
            v=1,
            id=1,
            device=None,
            office=None,
            kind="config",
            body={"settings": {"settle_seconds": float("nan")}},
            at=int(time.time() * 1000),
        )
        assert downlink.apply(store, ledger, doc) == "skipped"
        assert store.settings() == before
        configs = [("fleet/config.json", {"settings": {"min_dpi": float("inf")}})]
        with pytest.raises(Refused, match="min_dpi"):
            effective_settings(before, configs, {})
    finally:
        store.close()


def test_a_bad_value_already_stored_falls_back_to_its_default(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What an older release stored cannot keep the daemon from starting."""
    with sqlite3.connect(state / DB_FILE) as conn:
        conn.execute(
            "UPDATE settings SET value = ? WHERE key = 'settle_seconds'",
            (json.dumps(math.nan),),
        )
        conn.execute("UPDATE settings SET value = '3.5' WHERE key = 'poll_seconds'")
    store = Store.open(state)
    try:
        with caplog.at_level(logging.WARNING, logger="edge.store"):
            settings = store.settings()
    finally:
        store.close()
    assert settings.settle_seconds == Settings().settle_seconds
    assert settings.poll_seconds == 3.5
    assert any("settle_seconds" in r.getMessage() for r in caplog.records)
