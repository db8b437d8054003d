"""End to end, as a clerk's office would run it: scans land in a watched inbox.

The daemon (`edge run`) runs as a real process on a real SQLite file; the test
drops generated scans the way a scanner would, waits for the inbox to empty,
stops the daemon with SIGTERM and checks what `edge dossiers --json` reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bagit
import pytest

from edge import samples
from edge.samples import DossierSpec
from tests import badfiles

EDGE = [sys.executable, "-m", "edge.cli"]


def edge(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"edge {args[0]} failed: {result.stderr}")
    return result


def capture_once(state: Path, inbox: Path) -> dict:
    """`edge capture --once --json`, as a regional IT script would run it."""
    args = ("--state", str(state), "--inbox", str(inbox), "--once", "--json", "--settle", "0")
    return json.loads(edge("capture", *args).stdout)


def dossiers(state: Path) -> list[dict]:
    return json.loads(edge("dossiers", "--state", str(state), "--json").stdout)


def wait_until_empty(inbox: Path, keep: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {
            str(p.relative_to(inbox)) for p in inbox.rglob("*") if p.is_file() or p.is_symlink()
        }
        left -= keep
        if not left and not any(p.is_dir() for p in inbox.iterdir()):
            return
        time.sleep(0.2)
    raise AssertionError(f"inbox not emptied: {sorted(left)}")


@pytest.fixture
def daemon(state: Path, inbox: Path, edge_env: dict[str, str]):
    proc = subprocess.Popen(
        [
            *EDGE,
            "run",
            "--state",
            str(state),
            "--inbox",
            str(inbox),
            "--settle",
            "1",
            "--idle",
            "2",
        ],
        env=edge_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_a_morning_of_scans_becomes_dossiers(
    state: Path, inbox: Path, daemon, tmp_path: Path
) -> None:
    codes = samples.sample_codes(8, seed=11)
    staging = tmp_path / "staging"
    loose = samples.write_job(
        staging / "loose",
        [
            DossierSpec(None, 2),
            DossierSpec(codes[0], 2, blank_backs=True),
            DossierSpec(codes[1], 1, symbology="code128"),
        ],
        "jpeg",
        seed=1,
        pad=0,
    )
    pdf = samples.write_job(
        staging, [DossierSpec(codes[2], 2), DossierSpec(codes[3], 1)], "pdf", seed=2, name="job-a"
    )
    tiff = samples.write_job(staging, [DossierSpec(codes[4], 2)], "tiff", seed=3, name="job-b")
    folder = samples.write_job(
        staging / "job-0815",
        [DossierSpec(codes[5], 1, symbology="code128"), DossierSpec(codes[6], 1)],
        "png",
        seed=4,
        pad=0,
    )
    bad = badfiles.write_all(staging / "bad")
    # A scanner writes each file under its final name; moves into the inbox are atomic.
    for path in loose.paths:
        os.replace(path, inbox / path.name)
    os.replace(pdf.paths[0], inbox / pdf.paths[0].name)
    os.replace(tiff.paths[0], inbox / tiff.paths[0].name)
    os.replace(staging / "job-0815", inbox / "job-0815")
    for name in bad:
        os.replace(staging / "bad" / name, inbox / name)
    (inbox / "Thumbs.db").write_bytes(b"\0" * 32)
    os.symlink("/etc/passwd", inbox / "link.jpg")
    os.mkfifo(inbox / "pipe.jpg")

    wait_until_empty(inbox, keep={"Thumbs.db"})
    log = stop(daemon)

    found = {d["code"]: d for d in dossiers(state)}
    # every code becomes one dossier; page counts include covers and blank backs
    for job in (loose, pdf, tiff, folder):
        for expected in job.expected:
            if expected.code is None:
                continue
            assert found[expected.code]["pages"] == expected.pages, expected.code
    assert "blank" in found[codes[0]]["flags"]
    assert "blank" not in found[codes[1]]["flags"]
    assert found[codes[2]]["sources"] == ["job-a.pdf"]
    assert found[codes[5]]["sources"] == ["job-0815/scan_1.png", "job-0815/scan_2.png"]
    assert all(d["status"] == "waiting_details" for c, d in found.items() if c)
    # the two pages before the first cover sheet form one unassigned dossier
    unassigned = [d for d in dossiers(state) if d["code"] is None]
    assert [d["pages"] for d in unassigned] == [2]
    assert unassigned[0]["status"] == "unassigned"
    # bad input was quarantined with a reason, never lost and never crashing the daemon
    store_q = quarantine(state)
    reasons = {q["name"]: q["reason"] for q in store_q}
    for name, reason in {**bad, "link.jpg": "symlink", "pipe.jpg": "special_file"}.items():
        assert reasons.get(name) == reason, (name, reasons.get(name))
    assert (inbox / "Thumbs.db").exists()
    assert "Traceback" not in log
    assert os.path.exists("/etc/passwd")


def quarantine(state: Path) -> list[dict]:
    from edge.store import Store

    store = Store.open(state)
    try:
        return store.list_quarantine()
    finally:
        store.close()


def test_slow_writer_is_read_once_whole(state: Path, inbox: Path, daemon, tmp_path: Path) -> None:
    code = samples.sample_codes(1, seed=5)[0]
    job = samples.write_job(tmp_path / "slow", [DossierSpec(code, 0)], "jpeg", seed=5)
    data = job.paths[0].read_bytes()
    target = inbox / "slow.jpg"
    chunks = [data[i : i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]
    with open(target, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
            fh.flush()
            time.sleep(0.45)
    wait_until_empty(inbox, keep=set())
    stop(daemon)
    rows = dossiers(state)
    assert [(d["code"], d["pages"]) for d in rows] == [(code, 1)]
    assert quarantine(state) == []


def test_same_bytes_again_is_a_duplicate_and_a_known_code_appends(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    code = samples.sample_codes(1, seed=9)[0]
    first = samples.write_job(tmp_path / "a", [DossierSpec(code, 1)], "jpeg", seed=9)
    copy = first.paths[0].read_bytes()
    for path in first.paths:
        os.replace(path, inbox / path.name)
    report = capture_once(state, inbox)
    assert report["files"] == 2 and report["pages"] == 2 and report["dossiers"] == [code]
    (inbox / "again.jpg").write_bytes(copy)
    report = capture_once(state, inbox)
    assert report["duplicates"] == ["again.jpg"] and report["pages"] == 0
    assert not (inbox / "again.jpg").exists()
    # a second part of the same dossier, scanned later with its cover sheet again
    part2 = samples.write_job(tmp_path / "b", [DossierSpec(code, 2)], "pdf", seed=10)
    os.replace(part2.paths[0], inbox / "part2.pdf")
    report = capture_once(state, inbox)
    assert report["dossiers"] == [code]
    rows = dossiers(state)
    assert len(rows) == 1 and rows[0]["pages"] == 5


def test_export_is_a_valid_bag_with_every_page(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    import pypdfium2 as pdfium

    code = samples.sample_codes(1, seed=12)[0]
    job = samples.write_job(tmp_path / "a", [DossierSpec(code, 2)], "jpeg", seed=12)
    originals = [p.read_bytes() for p in job.paths]
    for path in job.paths:
        os.replace(path, inbox / path.name)
    edge("capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0")
    out = tmp_path / "export"
    result = edge(
        "export",
        "--state",
        str(state),
        "--dossier",
        code,
        "--clerk",
        "lan",
        "--out",
        str(out),
        env=edge_env,
    )
    bag_path = Path(result.stdout.strip())
    bag = bagit.Bag(str(bag_path))
    bag.validate()
    assert "sha256" in bag.algorithms
    # a citizen's pages in clear: readable by the exporting user only (issue 11, item 15)
    modes = {p.stat().st_mode & 0o777 for p in [bag_path, *bag_path.rglob("*")]}
    assert modes <= {0o700, 0o600}
    pages = sorted((bag_path / "data" / "pages").iterdir())
    assert [p.read_bytes() for p in pages] == originals
    pdf = pdfium.PdfDocument(bag_path / "data" / "dossier.pdf")
    assert len(pdf) == 3
    width, height = pdf[0].get_size()
    assert abs(width - 595) < 2 and abs(height - 842) < 2  # A4 at 100% scale
    assert pdf.get_version() >= 14
    # a wrong password exports nothing
    bad_env = {**edge_env, "EDGE_PASSWORD": "wrong-password"}
    result = edge(
        "export",
        "--state",
        str(state),
        "--dossier",
        code,
        "--clerk",
        "lan",
        "--out",
        str(tmp_path / "x"),
        env=bad_env,
        check=False,
    )
    assert result.returncode == 2 and "wrong password" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_user_mistakes_are_one_line_errors(
    tmp_path: Path, state: Path, edge_env: dict[str, str]
) -> None:
    cases = [
        ("dossiers", "--state", str(tmp_path / "nowhere")),
        ("capture", "--state", str(state), "--inbox", str(tmp_path / "no-inbox"), "--once"),
        ("init", "--state", str(state), "--office", "H29", "--clerk", "lan"),
        (
            "export",
            "--state",
            str(state),
            "--dossier",
            "nope",
            "--clerk",
            "lan",
            "--out",
            str(tmp_path),
        ),
    ]
    for args in cases:
        result = edge(*args, env=edge_env, check=False)
        assert result.returncode != 0, args
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("edge: error:"), (args, result.stderr)


def test_init_without_password_on_a_pipe_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_PASSWORD"}
    result = edge(
        "init",
        "--state",
        str(tmp_path / "s"),
        "--office",
        "H29",
        "--clerk",
        "lan",
        env=env,
        check=False,
    )
    assert result.returncode == 2 and "EDGE_PASSWORD" in result.stderr


def test_doctor_reports_and_fails_on_a_damaged_chain(state: Path, inbox: Path) -> None:
    result = edge("doctor", "--state", str(state), "--inbox", str(inbox), "--json")
    checks = {c["name"]: c["status"] for c in json.loads(result.stdout)}
    assert checks == {
        "libzbar": "ok",
        "keys": "ok",
        "database": "ok",
        "disk": "ok",
        "clock": "ok",
        "reviews": "ok",
        "inbox": "ok",
    }
    import sqlite3

    conn = sqlite3.connect(state / "edge.db")
    conn.execute("UPDATE events SET type='forged' WHERE seq=1")
    conn.commit()
    conn.close()
    result = edge("doctor", "--state", str(state), check=False)
    assert result.returncode == 1 and "hash chain broken" in result.stdout
