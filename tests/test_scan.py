"""Scanning on the box (issue 17), with SANE's own ``test`` backend as the scanner.

The test backend is a real SANE device from Debian's libsane1: ``scanimage`` opens it
through SANE's dll loader like any USB scanner, and its feeder runs empty after 10
sheets. It is enabled through a SANE_CONFIG_DIR of the test's own (``dll.conf`` lists
``test``; ``test.conf`` sets what the virtual scanner does: a jam, an empty feeder, slow
pages, test options), so nothing system-wide changes. Nothing below SANE is faked: a
scanner that goes away mid-batch is a real ``scanimage`` killed with SIGKILL, and the
jobs are filed by a real ``edge capture --once``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from edge import samples
from edge.capture import scanner
from edge.capture.grouping import folder_target
from edge.capture.scanner import (
    MESSAGES,
    ButtonWatcher,
    ScanError,
    ScanOptions,
    ScanProblem,
    scan_batch,
)
from edge.settings import Settings
from edge.tui import i18n

EDGE = [sys.executable, "-m", "edge.cli"]
BASE_CONF = {
    "number_of_devices": "1",
    "test-picture": '"Grid"',
    "geometry_max": "300.0",
    "br_x": "210.0",
    "br_y": "297.0",
}
Configure = Callable[..., dict[str, str]]


@pytest.fixture
def sane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """A SANE configuration with only the test backend; returns a function to set it up."""
    if shutil.which("scanimage") is None:
        pytest.fail("scanimage is missing: run 'make system-deps' (sane-utils, libsane1)")
    folder = tmp_path / "sane.d"
    folder.mkdir()
    (folder / "dll.conf").write_text("test\n")
    monkeypatch.setenv("SANE_CONFIG_DIR", str(folder))

    def configure(**options: str) -> dict[str, str]:
        values = {**BASE_CONF, **{k.replace("_", "-"): v for k, v in options.items()}}
        if "geometry-max" in values:
            values["geometry_max"] = values.pop("geometry-max")
        (folder / "test.conf").write_text("".join(f"{k} {v}\n" for k, v in values.items()))
        return {**os.environ, "SANE_CONFIG_DIR": str(folder)}

    configure()
    return configure


def edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


def capture_once(state: Path, inbox: Path) -> dict:
    done = edge(
        "capture", "--state", str(state), "--inbox", str(inbox), "--once", "--json", "--settle", "0"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def dossiers(state: Path) -> list[dict]:
    return json.loads(edge("dossiers", "--state", str(state), "--json").stdout)


def children(name: str) -> list[int]:
    """Our own child processes called ``name``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == name and int(fields[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def hidden(inbox: Path) -> list[str]:
    return [p.name for p in inbox.iterdir() if p.name.startswith(".")]


FAST = ScanOptions(device="test", dpi=200)


def test_scan_list_names_the_test_scanner(sane: Configure) -> None:
    done = edge("scan", "--list", env=sane())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("test:0\tNoname frontend-tester")


def test_a_feeder_batch_becomes_one_job_and_capture_files_every_page(
    sane: Configure, state: Path, inbox: Path
) -> None:
    env = sane()
    done = edge(
        "scan", "--state", str(state), "--inbox", str(inbox), "--device", "test", "--dpi", "200",
        "--json", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pages"] == 10 and result["cut_short"] is None
    assert re.fullmatch(r"scan-\d{8}-\d{6}", result["job"])
    assert done.stderr.count("page ") == 10
    job = inbox / result["job"]
    assert sorted(p.name for p in job.iterdir()) == [f"page_{n:04d}.jpg" for n in range(1, 11)]
    assert hidden(inbox) == []
    with Image.open(job / "page_0001.jpg") as page:
        assert (page.format, page.mode, page.info["dpi"]) == ("JPEG", "RGB", (200, 200))
        assert page.size == (1653, 2338)  # A4 at 200 dpi, as the backend rounds it

    report = capture_once(state, inbox)
    assert report["pages"] == 10 and report["quarantined"] == [] and report["failed"] == []
    assert list(inbox.iterdir()) == []
    [dossier] = dossiers(state)
    assert dossier["pages"] == 10
    assert dossier["sources"][0] == f"{result['job']}/page_0001.jpg"


def test_a_scan_into_a_dossier_adds_its_pages_there(
    sane: Configure, state: Path, inbox: Path
) -> None:
    code = samples.sample_codes(1, seed=3)[0]
    samples.write_job(inbox / "desk", [samples.DossierSpec(code, 1)], "jpeg", seed=3)
    capture_once(state, inbox)
    [before] = dossiers(state)

    result = scan_batch(FAST, inbox, into=before["id"])
    assert folder_target(result.job.name) == before["id"]
    report = capture_once(state, inbox)
    assert report["pages"] == 10
    [after] = dossiers(state)
    assert after["id"] == before["id"] and after["code"] == code
    assert after["pages"] == before["pages"] + 10

    done = edge(
        "scan", "--state", str(state), "--inbox", str(inbox), "--device", "test", "--into",
        code.lower(), env=sane(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert folder_target(next(inbox.iterdir()).name) == before["id"]


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ("SANE_STATUS_JAMMED", ScanProblem.PAPER_JAM),
        ("SANE_STATUS_COVER_OPEN", ScanProblem.COVER_OPEN),
        ("SANE_STATUS_NO_DOCS", ScanProblem.FEEDER_EMPTY),
        ("SANE_STATUS_DEVICE_BUSY", ScanProblem.DEVICE_BUSY),
    ],
)
def test_a_failure_before_the_first_page_leaves_nothing(
    sane: Configure, inbox: Path, status: str, problem: ScanProblem
) -> None:
    sane(read_status_code=f'"{status}"')
    with pytest.raises(ScanError) as failed:
        scan_batch(FAST, inbox, page_timeout=20)
    # Once in a full run on a busy machine the test backend never returned from a busy read;
    # the box then says the scanner stopped answering, which is what a clerk should hear.
    said = {problem, ScanProblem.DEVICE_GONE} if problem is ScanProblem.DEVICE_BUSY else {problem}
    assert failed.value.problem in said
    assert list(inbox.iterdir()) == []


def test_the_cli_says_a_jam_in_one_line_with_its_code(
    sane: Configure, state: Path, inbox: Path
) -> None:
    env = sane(read_status_code='"SANE_STATUS_JAMMED"')
    done = edge("scan", "--state", str(state), "--inbox", str(inbox), "--device", "test", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"edge: error: {MESSAGES[ScanProblem.PAPER_JAM]} "
                                                "[paper_jam]"]  # fmt: skip


def test_no_scanner_at_all_is_one_line(sane: Configure, tmp_path: Path, inbox: Path) -> None:
    env = sane()
    (Path(env["SANE_CONFIG_DIR"]) / "dll.conf").write_text("")
    listed = edge("scan", "--list", env=env)
    assert listed.returncode == 2 and "[no_scanner]" in listed.stderr
    with pytest.raises(ScanError) as failed:
        scan_batch(ScanOptions(), inbox)
    assert failed.value.problem is ScanProblem.NO_SCANNER
    with pytest.raises(ScanError) as named:
        scan_batch(ScanOptions(device="test:7"), inbox)
    assert named.value.problem is ScanProblem.NO_SCANNER


def slow_pages(configure: Configure) -> None:
    """Small pages that take a few tenths of a second each, so a batch can be cut mid-way."""
    configure(
        geometry_max="40.0",
        br_x="40.0",
        br_y="40.0",
        read_limit="true",
        read_limit_size="8192",
        read_delay="true",
        read_delay_duration="30000",
    )


def test_a_scanner_that_vanishes_mid_batch_keeps_the_pages_and_says_so(
    sane: Configure, state: Path, inbox: Path
) -> None:
    slow_pages(sane)
    killed: list[int] = []

    def pull_the_cable(count: int) -> None:
        if count == 2 and not killed:
            killed.extend(children("scanimage"))
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    result = scan_batch(FAST, inbox, on_page=pull_the_cable)
    assert killed, "scanimage was not found among this process's children"
    assert result.cut_short is ScanProblem.DEVICE_GONE
    assert len(result.pages) == 2
    assert result.job.name.endswith("-cut-short-device-gone")
    assert sorted(p.name for p in result.job.iterdir()) == ["page_0001.jpg", "page_0002.jpg"]
    assert hidden(inbox) == []

    report = capture_once(state, inbox)
    assert report["pages"] == 2 and report["failed"] == [] and report["ignored"] == []
    [dossier] = dossiers(state)
    assert all("-cut-short-device-gone/" in name for name in dossier["sources"])


def test_stopping_a_batch_keeps_what_was_scanned(sane: Configure, inbox: Path) -> None:
    slow_pages(sane)
    seen: list[int] = []
    result = scan_batch(FAST, inbox, on_page=seen.append, should_stop=lambda: len(seen) >= 3)
    assert result.cut_short is ScanProblem.STOPPED
    assert 3 <= len(result.pages) < 10 and seen[:3] == [1, 2, 3]
    assert result.job.name.endswith("-cut-short-stopped")
    assert hidden(inbox) == []


def test_a_batch_left_hidden_by_a_crash_is_handed_to_capture(
    sane: Configure, state: Path, inbox: Path
) -> None:
    first = scan_batch(FAST, inbox)
    crashed = inbox / ".scan-20260701-083012.partial"
    first.job.rename(crashed)
    (crashed / "page_0011.jpg.part").write_bytes(b"\xff\xd8 half a page")
    assert capture_once(state, inbox)["pages"] == 0, "capture took a hidden batch"

    scan_batch(FAST, inbox)
    jobs = sorted(p.name for p in inbox.iterdir())
    assert jobs[0] == "scan-20260701-083012-cut-short-interrupted"
    assert len(list((inbox / jobs[0]).iterdir())) == 10
    assert hidden(inbox) == []
    assert capture_once(state, inbox)["pages"] == 20


def test_duplex_needs_a_scanner_that_has_it(sane: Configure, inbox: Path) -> None:
    with pytest.raises(ScanError) as failed:
        scan_batch(ScanOptions(device="test", duplex=True), inbox)
    assert failed.value.problem is ScanProblem.NO_DUPLEX
    assert list(inbox.iterdir()) == []


# What `scanimage -A` prints for drivers of the scanners communes have (sane-backends 1.2,
# abridged): the choice of source, mode and resolution is made from what the driver lists.
FUJITSU = """
  Standard:
    --source ADF Front|ADF Back|ADF Duplex [ADF Front]
    --mode Lineart|Halftone|Gray|Color [Lineart]
    --resolution 50..600dpi (in steps of 1) [600]
  Geometry:
    --page-width 0..221.121mm (in steps of 0.0211639) [215.872]
    --page-height 0..876.695mm (in steps of 0.0211639) [279.364]
  Sensors:
    --scan[=(yes|no)] [no] [hardware]
    --page-loaded[=(yes|no)] [yes] [hardware]
"""
BROTHER_AIRSCAN = """
    --mode Color|Gray [Color]
    --resolution 100|200|300|600dpi [300]
    --source ADF|ADF Duplex [ADF]
    -x 0..215.9mm [215.9]
    -y 0..355.6mm [355.6]
"""
CANON_FLATBED_ONLY = """
    --mode Lineart|Gray|Color [Color]
    --resolution 75|150|300|600|1200dpi [75]
"""


def test_driver_option_names_are_mapped_to_what_the_clerk_asked_for() -> None:
    fujitsu = scanner.parse_options(FUJITSU)
    assert scanner._batch_arguments(ScanOptions(duplex=True), fujitsu) == [
        "--source=ADF Duplex", "--mode=Color", "--resolution=300", "--page-width=210",
        "--page-height=297",
    ]  # fmt: skip
    assert scanner.pressed(fujitsu) == set()
    held = FUJITSU.replace("[no] [hardware]", "[yes] [hardware]")
    assert scanner.pressed(scanner.parse_options(held)) == {"scan"}
    brother = scanner.parse_options(BROTHER_AIRSCAN)
    assert scanner._batch_arguments(ScanOptions(dpi=200, colour=False), brother) == [
        "--source=ADF", "--mode=Gray", "--resolution=200", "-x", "210", "-y", "297",
    ]  # fmt: skip
    canon = scanner.parse_options(CANON_FLATBED_ONLY)
    assert scanner._batch_arguments(ScanOptions(source="flatbed", dpi=200), canon) == [
        "--batch-count=1", "--mode=Color", "--resolution=300",
    ]  # fmt: skip


def test_pressing_the_scanner_button_scans_one_batch(sane: Configure, inbox: Path) -> None:
    """The test backend's read-only hardware option stands in for a scan button: it is
    absent while test options are off and reads "yes" once they are on."""
    watcher = ButtonWatcher(FAST, inbox, names=re.compile("bool-hard-select"))
    assert watcher.poll() == []
    sane(enable_test_options="true")
    [result] = watcher.poll()
    assert isinstance(result, scanner.ScanResult) and len(result.pages) == 10
    assert watcher.poll() == [], "a button held down started a second batch"


def test_one_scan_at_a_time(inbox: Path) -> None:
    with (
        scanner.scanner_lock(inbox),
        pytest.raises(ScanError) as failed,
        scanner.scanner_lock(inbox, wait=0.2),
    ):
        pass
    assert failed.value.problem is ScanProblem.SCAN_RUNNING


def test_defaults_follow_decree_30() -> None:
    options = ScanOptions.from_settings(Settings())
    assert (options.source, options.colour, options.dpi, options.duplex) == (
        "adf",
        True,
        300,
        False,
    )
    with pytest.raises(ValueError, match="scan_dpi"):
        Settings().with_changes(scan_dpi=150)


def test_every_problem_has_a_line_in_english_and_vietnamese() -> None:
    vi = i18n.translations("vi")
    for problem in ScanProblem:
        english = MESSAGES[problem]
        assert "\n" not in english and english.endswith(".")
        assert vi.gettext(english) != english, f"no Vietnamese for {problem}"
