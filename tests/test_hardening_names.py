"""Issue 11, item 1: file names that are not text, or that are text meant to do harm.

A scanner writing over SMB with a legacy code page produces names that are not UTF-8
(``bad\\xff\\xfe.jpg``); anyone who can write to the inbox can put a newline or a
terminal escape sequence in a name. Such a file used to stop ``edge run`` for good
("surrogates not allowed" when its name went into SQLite, on every restart) and to
forge log lines. Now every name is stored, reported and logged in one printable,
reversible rendering (``edge.capture.names``), and the daemon never exits for a file.

The end-to-end tests run ``edge capture --once`` and ``edge run`` as real processes on
real SQLite files, with names created from bytes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edge import samples
from edge.capture.names import display_name, escape_text, inbox_path, original_bytes
from edge.samples import DossierSpec

EDGE = [sys.executable, "-m", "edge.cli"]
CODE = "000.00.01.H29-240115-0001"
NON_UTF8 = b"bad\xff\xfe.jpg"
HOSTILE = b"evil\n2026-01-01 00:00:00,000 ERROR forged line\x1b]0;owned\x07\x1b[31m.jpg"
FOLDER = b"h\xe9 s\xe1"  # Latin-1 "hé sá": a job folder from a legacy code page
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")


def _cover_jpeg(tmp_path: Path, seed: int = 0) -> bytes:
    job = samples.write_job(
        tmp_path / f"staging-{seed}", [DossierSpec(CODE, 1)], "jpeg", dpi=100, seed=seed
    )
    return job.paths[0].read_bytes()


def _write(inbox: Path, name: bytes, data: bytes) -> None:
    """Create a file under a bytes name, as a scanner's SMB share would."""
    fd = os.open(os.fsencode(inbox) + b"/" + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _clean_output(text: str) -> None:
    """No control character except the newline ending each line, and only real log lines."""
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", text), repr(text)
    for line in text.splitlines():
        assert LOG_LINE.match(line) or line.startswith("edge: "), repr(line)


# -- the rendering -----------------------------------------------------------------------


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_any_name_renders_as_one_printable_line_and_back(raw: bytes) -> None:
    rendered = display_name(os.fsdecode(raw))
    assert rendered.isprintable()  # no control, format or separator character
    rendered.encode("utf-8")  # storable in SQLite, printable on any terminal
    assert original_bytes(rendered) == raw


def test_the_rendering_is_documented_by_examples() -> None:
    assert display_name("scan_0001.jpg") == "scan_0001.jpg"
    assert display_name("Hồ sơ số 1.pdf") == "Hồ sơ số 1.pdf"
    assert display_name(os.fsdecode(NON_UTF8)) == "bad\\xff\\xfe.jpg"
    assert display_name("a\nb\x1b[31m") == "a\\x0ab\\x1b[31m"
    assert display_name("rtl\u202egpj.exe") == "rtl\\u202egpj.exe"
    assert display_name("back\\x41slash") == "back\\\\x41slash"  # not the byte 0x41
    assert original_bytes("back\\\\x41slash") == b"back\\x41slash"
    assert escape_text("a\\b\nc", backslash=False) == "a\\b\\x0ac"
    assert inbox_path(Path("/in"), "bad\\xff\\xfe.jpg") == Path(os.fsdecode(b"/in/" + NON_UTF8))


# -- edge capture --once -----------------------------------------------------------------


def test_capture_once_stores_any_name_and_escapes_hostile_ones(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    _write(inbox, NON_UTF8, _cover_jpeg(tmp_path))
    _write(inbox, HOSTILE, b"not a scan at all")
    os.mkdir(os.fsencode(inbox) + b"/" + FOLDER)
    _write(inbox, FOLDER + b"/p\x07ge.jpg", _cover_jpeg(tmp_path, seed=1))
    args = ["--state", str(state), "--inbox", str(inbox), "--once", "--json", "--settle", "0"]
    result = subprocess.run(
        [*EDGE, "capture", *args], capture_output=True, env=edge_env, timeout=120, check=False
    )
    stdout, stderr = result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    assert result.returncode == 0, stderr
    _clean_output(stderr)
    assert "\x1b" not in stdout and "\x07" not in stdout
    report = json.loads(stdout)
    assert report["files"] == 3 and report["pages"] == 2 and report["failed"] == []
    hostile = display_name(os.fsdecode(HOSTILE))
    assert [q["file"] for q in report["quarantined"]] == [hostile]
    assert original_bytes(hostile) == HOSTILE
    assert os.listdir(os.fsencode(inbox)) == []  # every file taken, the job folder too

    listed = subprocess.run(
        [*EDGE, "dossiers", "--state", str(state), "--json"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    sources = [s for d in json.loads(listed.stdout) for s in d["sources"]]
    assert sorted(sources) == sorted(["bad\\xff\\xfe.jpg", "h\\xe9 s\\xe1/p\\x07ge.jpg"])
    assert {original_bytes(s) for s in sources} == {NON_UTF8, FOLDER + b"/p\x07ge.jpg"}
    assert not any(line.startswith("2026-01-01") for line in stderr.splitlines())  # no forgery


# -- edge run ----------------------------------------------------------------------------


def test_the_daemon_captures_a_non_utf8_name_and_stays_up(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    # the file is there before the daemon starts: today that made every start exit
    _write(inbox, NON_UTF8, _cover_jpeg(tmp_path))
    proc = subprocess.Popen(
        [
            *EDGE,
            *("run", "--state", str(state), "--inbox", str(inbox)),
            *("--settle", "0.2", "--idle", "1", "--http-port", "0"),
        ],
        env=edge_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while os.listdir(os.fsencode(inbox)) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.2)
        assert os.listdir(os.fsencode(inbox)) == [], "the file was not captured"
        # and a hostile name that arrives while it runs: quarantined, logged on one line
        staging = tmp_path / "staging-hostile"
        staging.mkdir()
        _write(staging, HOSTILE, b"not a scan")
        os.rename(os.fsencode(staging) + b"/" + HOSTILE, os.fsencode(inbox) + b"/" + HOSTILE)
        deadline = time.monotonic() + 60
        while os.listdir(os.fsencode(inbox)) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.2)
        assert os.listdir(os.fsencode(inbox)) == []
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    stderr = err.decode("utf-8")
    assert proc.returncode == 0, stderr
    _clean_output(stderr)
    assert not any(line.startswith("2026-01-01") for line in stderr.splitlines())
    assert "stored bad\\xff\\xfe.jpg: 1 page(s)" in stderr
    assert f"quarantined {display_name(os.fsdecode(HOSTILE))}:" in stderr
