"""``make demo`` end to end: what the README promises a newcomer sees, on a fresh folder.

Runs ``python -m edge.demo`` as the Makefile does (without a terminal, so the clerk
UI is not opened) and checks each act of the story: capture, the BagIt export,
central receiving every dossier, a result coming back, and a signed configuration
change published by regional IT and applied by the box.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge.demo", "--dir", str(tmp_path / "demo")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Capture summary:" in out
    assert "quarantined ghi-chu.jpg" in out
    assert "update root pinned version 1 from central" in out
    assert "Central now holds 8 dossier(s):" in out
    assert "central_status=9" in out
    assert "Box: update updated; changed fleet/config.json, o/H29/config.json" in out
    assert "min_dpi=250 (fleet), job_idle_seconds=90 (province H29)" in out
    assert "(clerk lan, password demo-pass-2026)" in out
