"""Scanning on the box itself: SANE's ``scanimage`` writes a batch into the inbox (issue 17).

A Pi has no vendor scanning software, so the box drives the scanner through SANE: USB
sheet-fed scanners through their sane-backends drivers (fujitsu, canon_dr, epsonds,
avision, plustek…) and network scanners through sane-airscan (eSCL/WSD). ``scanimage``
runs as a child process rather than through a binding in this process: a driver that
hangs or crashes takes down one scan, never the clerk's screen, and killing it is how a
batch is stopped.

A batch is written into a hidden ``.<job>.partial`` folder in the inbox, which capture
ignores, and renamed to ``<job>`` when the scanner is done, so capture only ever sees
finished jobs. Pages scanned before a jam, an open cover or a scanner that went away are
kept: the job is still renamed, with ``-cut-short-<reason>`` in its name, which every
page's source name then shows. A batch that dies with the process (a power cut) is found
by the next scan and handed to capture the same way (``interrupted``).

Scans never overlap: every scan, and every look at a scanner's buttons, holds an
exclusive ``flock`` on the inbox folder itself.

Failures are ``ScanError`` with a stable ``ScanProblem`` code; ``MESSAGES`` has the
English line (the CLI prints it), the clerk UI's catalogues have the Vietnamese.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO

from edge.capture.grouping import into_tag
from edge.settings import Settings

log = logging.getLogger("edge.scan")

PAGE_TIMEOUT_SECONDS = 120.0
"""A scanner that sends no page for this long has stopped answering (a USB cable pulled
half-way, a driver stuck in a read): the batch is ended and what came is kept."""
STOP_GRACE_SECONDS = 15.0
REPORTED_GRACE_SECONDS = 10.0
"""After scanimage has printed a status it knows (a jam, an open cover), how long it may
take to exit. A driver has been seen to hang in its cleanup after reporting a jam: the
clerk should hear "paper jam" in seconds, not "the scanner stopped answering" after the
page timeout."""
"""How long scanimage gets to cancel cleanly before it is killed."""
LOCK_WAIT_SECONDS = 5.0
"""How long a scan waits for another scan or a button poll to let go of the scanner."""
LIST_TIMEOUT_SECONDS = 30.0
"""``scanimage -L`` waits for network scanners to answer discovery; bounded all the same."""
A4_MM = (210.0, 297.0)
PAGE_NAME = "page_%04d.jpg"
JOB_PREFIX = "scan-"
NETWORK_BACKENDS = ("airscan:", "escl:", "net:")
BUTTON_NAMES = re.compile(r"(scan|start|button-?\d*|email|copy|pdf|file|ocr|share|send)")
"""Scanner buttons that start a batch, by SANE option name (fujitsu: scan, email…;
canon_dr: start; avision, plustek: button-N). Sensors such as page-loaded or cover-open
are not buttons."""

_PAGE = re.compile(r"page_(\d{4,})\.jpg")


class ScanProblem(StrEnum):
    """Why a scan failed or was cut short; the UI translates these codes."""

    NO_SCANNER = "no_scanner"
    DEVICE_GONE = "device_gone"
    PAPER_JAM = "paper_jam"
    FEEDER_EMPTY = "feeder_empty"
    COVER_OPEN = "cover_open"
    DEVICE_BUSY = "device_busy"
    PERMISSION_DENIED = "permission_denied"
    NO_FEEDER = "no_feeder"
    NO_FLATBED = "no_flatbed"
    NO_DUPLEX = "no_duplex"
    SCAN_RUNNING = "scan_running"
    SANE_MISSING = "sane_missing"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    SCAN_FAILED = "scan_failed"


MESSAGES: dict[ScanProblem, str] = {
    ScanProblem.NO_SCANNER: "No scanner found. Check its cable and power, then try again.",
    ScanProblem.DEVICE_GONE: (
        "The scanner stopped answering. Check its cable and power, then scan the rest again."
    ),
    ScanProblem.PAPER_JAM: "Paper jam. Open the scanner, remove the sheet, then scan the rest.",
    ScanProblem.FEEDER_EMPTY: "The feeder is empty. Put the pages in the feeder and try again.",
    ScanProblem.COVER_OPEN: "The scanner's cover is open. Close it and scan the rest again.",
    ScanProblem.DEVICE_BUSY: "The scanner is busy. Wait a moment and try again.",
    ScanProblem.PERMISSION_DENIED: (
        "The box may not use this scanner. Call regional IT (scanner permissions)."
    ),
    ScanProblem.NO_FEEDER: "This scanner has no document feeder. Scan from the glass instead.",
    ScanProblem.NO_FLATBED: "This scanner has no glass. Put the pages in the feeder instead.",
    ScanProblem.NO_DUPLEX: "This scanner cannot scan both sides. Scan one side only.",
    ScanProblem.SCAN_RUNNING: "Another scan is running. Wait for it to finish.",
    ScanProblem.SANE_MISSING: "Scanning is not installed on this box. Call regional IT.",
    ScanProblem.STOPPED: "Scanning was stopped. Scan the remaining pages again.",
    ScanProblem.INTERRUPTED: "A scan was interrupted (power cut?). Check its last pages.",
    ScanProblem.SCAN_FAILED: "The scan failed. Try again; if it repeats, call regional IT.",
}

# scanimage exits with the SANE status of what ended the batch
_STATUS_PROBLEM = {
    3: ScanProblem.DEVICE_BUSY,
    6: ScanProblem.PAPER_JAM,
    8: ScanProblem.COVER_OPEN,
    9: ScanProblem.DEVICE_GONE,
    11: ScanProblem.PERMISSION_DENIED,
}
_STATUS_TEXT = {
    "Device busy": ScanProblem.DEVICE_BUSY,
    "Access to resource has been denied": ScanProblem.PERMISSION_DENIED,
    "Document feeder jammed": ScanProblem.PAPER_JAM,
    "Scanner cover is open": ScanProblem.COVER_OPEN,
    "Document feeder out of documents": ScanProblem.FEEDER_EMPTY,
    "Error during device I/O": ScanProblem.DEVICE_GONE,
}
_SANE_GOOD, _SANE_CANCELLED, _SANE_NO_DOCS = 0, 2, 7


class ScanError(Exception):
    """A scan that produced no job; ``problem`` says why, ``detail`` what SANE said."""

    def __init__(self, problem: ScanProblem, detail: str = "") -> None:
        super().__init__(MESSAGES[problem])
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class Device:
    """A scanner as SANE names it; ``name`` is what ``--device`` takes."""

    name: str
    vendor: str
    model: str
    kind: str

    @property
    def network(self) -> bool:
        return self.name.startswith(NETWORK_BACKENDS)

    @property
    def label(self) -> str:
        return f"{self.vendor} {self.model}".strip() or self.name


@dataclass(frozen=True)
class ScanOptions:
    """One batch's settings; ``device`` "" is the first scanner SANE finds."""

    device: str = ""
    source: str = "adf"
    duplex: bool = False
    dpi: int = 300
    colour: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ScanOptions:
        source = settings.scan_source.strip().lower()
        if source not in ("adf", "flatbed"):
            log.warning("scan_source %r is neither adf nor flatbed: using adf", source)
            source = "adf"
        return cls(
            device=settings.scan_device.strip(),
            source=source,
            duplex=settings.scan_duplex,
            dpi=settings.scan_dpi,
            colour=settings.scan_colour,
        )


@dataclass
class ScanResult:
    """A finished batch: the job folder capture will see, and whether it is complete.

    ``cut_short`` is None when the feeder ran out normally; otherwise the pages up to the
    problem are in ``job`` and the clerk should scan the rest.
    """

    job: Path
    device: str
    pages: list[Path] = field(default_factory=list)
    cut_short: ScanProblem | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Option:
    name: str
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    current: str = ""
    hardware: bool = False
    inactive: bool = False


# -- scanimage ----------------------------------------------------------------------------


def _scanimage() -> str:
    path = shutil.which("scanimage")
    if path is None:
        raise ScanError(ScanProblem.SANE_MISSING, "scanimage not found (package sane-utils)")
    return path


def _environment() -> dict[str, str]:
    """scanimage's own messages in English, so its one status line can be read back."""
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": ""}


def _problem_in(text: str) -> ScanProblem | None:
    for status, problem in _STATUS_TEXT.items():
        if status in text:
            return problem
    return None


def list_devices(*, timeout: float = LIST_TIMEOUT_SECONDS) -> list[Device]:
    """Every scanner SANE can reach now, USB first; empty when there is none.

    Raises ScanError (sane_missing) when SANE's tools are not installed.
    """
    try:
        done = subprocess.run(
            [_scanimage(), "--formatted-device-list=%d\t%v\t%m\t%t%n"],
            capture_output=True,
            text=True,
            env=_environment(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.warning("scanimage -L did not finish in %.0f s", timeout)
        return []
    devices = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0]:
            devices.append(Device(*parts))
    return sorted(devices, key=lambda d: d.network)


def _options(scanimage: str, device: str) -> dict[str, _Option]:
    """The device's options as ``scanimage -A`` shows them (one open of the device)."""
    done = subprocess.run(
        [scanimage, "-d", device, "-A"],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=LIST_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0 or "open of device" in done.stderr:
        raise _open_failure(device, done.stderr)
    return parse_options(done.stdout)


def _open_failure(device: str, stderr: str) -> ScanError:
    detail = _last_line(stderr)
    problem = _problem_in(stderr)
    if problem in (ScanProblem.DEVICE_BUSY, ScanProblem.PERMISSION_DENIED):
        return ScanError(problem, detail)
    known = ", ".join(d.name for d in list_devices()) or "none"
    return ScanError(ScanProblem.NO_SCANNER, f"{device} is not there (found: {known}): {detail}")


_OPTION_LINE = re.compile(r"^ {4}(-{1,2})([A-Za-z0-9][\w-]*)(\[=\((.*?)\)\])?(.*)$")
_BRACKETS = re.compile(r"\s\[([^\]]*)\]")
_RANGE = re.compile(r"^(-?[\d.]+)\.\.(-?[\d.]+)")


def parse_options(text: str) -> dict[str, _Option]:
    """Options from ``scanimage -A``: value lists, ranges, current value, read-only flags."""
    options: dict[str, _Option] = {}
    for line in text.splitlines():
        found = _OPTION_LINE.match(line)
        if found is None:
            continue
        name, choices, rest = found.group(2), found.group(4), found.group(5)
        first = rest.find(" [")
        spec = (rest if first < 0 else rest[:first]).strip()
        brackets = _BRACKETS.findall(rest if first < 0 else rest[first:])
        current = brackets[0] if brackets else ""
        flags = set(brackets[1:]) | ({current} if current in ("inactive", "hardware") else set())
        values: tuple[str, ...] = ()
        low = high = None
        if choices:
            values = tuple(choices.split("|"))
        elif (bounds := _RANGE.match(spec)) is not None:
            low, high = float(bounds.group(1)), float(bounds.group(2))
        elif "|" in spec:
            values = tuple(re.sub(r"(dpi|mm)$", "", v) for v in spec.split("|"))
        options[name] = _Option(
            name, values, low, high, current, "hardware" in flags, "inactive" in flags
        )
    return options


def _pick(values: tuple[str, ...], want: str, avoid: str = r"$^") -> str | None:
    for value in values:
        if re.search(want, value, re.I) and not re.search(avoid, value, re.I):
            return value
    return None


def _batch_arguments(options: ScanOptions, found: dict[str, _Option]) -> list[str]:
    """scanimage arguments for ``options`` on a device with ``found`` options.

    Names differ by driver ("ADF Duplex", "Automatic Document Feeder", "24bit Color"), so
    each choice is made from what the device lists.
    """
    args: list[str] = []
    source = found.get("source")
    sources = source.values if source is not None and not source.inactive else ()
    if options.source == "flatbed":
        if sources:
            chosen = _pick(sources, r"flatbed|platen|glass|document table")
            if chosen is None:
                raise ScanError(ScanProblem.NO_FLATBED, f"sources: {', '.join(sources)}")
            args.append(f"--source={chosen}")
        if options.duplex:
            raise ScanError(ScanProblem.NO_DUPLEX, "the glass scans one side")
        args.append("--batch-count=1")
    elif sources:
        feeder = r"adf|feeder|automatic|document|sheet"
        if options.duplex:
            chosen = _pick(sources, r"duplex")
            if chosen is None and "duplex" in found:
                chosen = _pick(sources, feeder, r"back|rear")
                args.append("--duplex=yes")
            if chosen is None:
                raise ScanError(ScanProblem.NO_DUPLEX, f"sources: {', '.join(sources)}")
        else:
            chosen = _pick(sources, feeder, r"duplex|back|rear")
            if chosen is None:
                raise ScanError(ScanProblem.NO_FEEDER, f"sources: {', '.join(sources)}")
        args.insert(0, f"--source={chosen}")
    elif options.duplex:
        if "duplex" not in found:
            raise ScanError(ScanProblem.NO_DUPLEX, "no duplex option")
        args.append("--duplex=yes")
    mode = found.get("mode")
    if mode is not None and mode.values:
        wanted = _pick(mode.values, r"colou?r") if options.colour else None
        wanted = wanted or _pick(mode.values, r"^gr[ae]y$") or _pick(mode.values, r"gr[ae]y")
        if wanted:
            args.append(f"--mode={wanted}")
    resolution = found.get("resolution")
    if resolution is not None:
        args.append(f"--resolution={_resolution(resolution, options.dpi)}")
    for name, size in (
        ("page-width", A4_MM[0]),
        ("page-height", A4_MM[1]),
        ("x", A4_MM[0]),
        ("y", A4_MM[1]),
    ):
        option = found.get(name)
        if option is not None and option.high is not None and not option.inactive:
            value = f"{min(size, option.high):g}"
            args += [f"-{name}", value] if len(name) == 1 else [f"--{name}={value}"]
    return args


def _resolution(option: _Option, dpi: int) -> int:
    """``dpi`` if the device offers it, else the nearest it offers at or above it."""
    if option.high is not None and option.low is not None:
        return int(min(max(dpi, option.low), option.high))
    offered = sorted(int(float(v)) for v in option.values if re.fullmatch(r"[\d.]+", v))
    if not offered:
        return dpi
    return next((v for v in offered if v >= dpi), offered[-1])


# -- one batch ------------------------------------------------------------------------------


@contextlib.contextmanager
def scanner_lock(inbox: Path, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the box's one scanner lock: an flock on the inbox folder, no file created.

    Raises ScanError (scan_running) when another scan still holds it after ``wait`` s.
    """
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ScanError(ScanProblem.SCAN_RUNNING) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def job_name(
    started: datetime, *, into: str | None = None, cut_short: ScanProblem | None = None
) -> str:
    """``scan-20260701-083012[-into-<dossier id>][-cut-short-<reason>]``."""
    name = JOB_PREFIX + started.strftime("%Y%m%d-%H%M%S")
    if into:
        name += f"-{into_tag(into)}"
    if cut_short is not None:
        name += f"-cut-short-{cut_short.value.replace('_', '-')}"
    return name


def _finish(inbox: Path, staging: Path, name: str) -> Path:
    """Rename the staging folder to the first free ``name`` and make the rename durable."""
    for leftover in staging.iterdir():
        if not _PAGE.fullmatch(leftover.name):
            leftover.unlink()
    for attempt in range(1, 1000):
        target = inbox / (name if attempt == 1 else f"{name}-{attempt}")
        if target.exists():
            continue
        os.rename(staging, target)
        _fsync_dir(inbox)
        return target
    raise FileExistsError(f"no free job name for {name} in {inbox}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_page(page: Path, batch: str) -> None:
    """Write the batch and sheet number into the page's JPEG as a comment segment, durably.

    Capture knows a file by its SHA-256 and drops a second copy as a duplicate. Two sheets
    can come out of a scanner as the same bytes (blank backs a driver cleans to pure
    white, a test device), and each is still a sheet of the record: the comment makes
    every page of every batch a file of its own. The image data is not touched. The page
    is flushed to disk here, so a power cut after the job's rename finds whole files.
    """
    data = page.read_bytes()
    if data[:2] != b"\xff\xd8" or b"edge-scan " in data[:512]:
        return
    at = 2
    if data[2:4] == b"\xff\xe0":  # JFIF's APP0 must stay first
        at = 4 + int.from_bytes(data[4:6], "big")
    text = f"edge-scan {batch} {page.name}".encode()
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    marked = page.with_name(page.name + ".mark")
    with open(marked, "wb") as out:
        out.write(data[:at] + segment + data[at:])
        out.flush()
        os.fsync(out.fileno())
    os.replace(marked, page)


def _pages(staging: Path) -> list[Path]:
    return sorted(p for p in staging.iterdir() if _PAGE.fullmatch(p.name))


def recover_partials(inbox: Path) -> list[Path]:
    """Hand capture the batches a dead scan left hidden (power cut, killed process).

    Call with the scanner lock held: a staging folder is then nobody's. Empty ones go.
    """
    recovered = []
    for staging in sorted(inbox.glob(f".{JOB_PREFIX}*.partial")):
        if not staging.is_dir() or staging.is_symlink():
            continue
        if not _pages(staging):
            shutil.rmtree(staging, ignore_errors=True)
            continue
        base = staging.name[1 : -len(".partial")]
        for page in _pages(staging):
            mark_page(page, f"{base}-{secrets.token_hex(4)}")
        name = f"{base}-cut-short-{ScanProblem.INTERRUPTED.value}"
        recovered.append(_finish(inbox, staging, name))
        log.warning("a scan interrupted earlier was handed to capture as %s", recovered[-1].name)
    return recovered


def _reader(stream: IO[str], lines: queue.Queue[str | None], keep: list[str] | None) -> None:
    for line in stream:
        if keep is None:
            lines.put(line.rstrip("\n"))
        else:
            keep.append(line.rstrip("\n"))
            del keep[:-20]
    if keep is None:
        lines.put(None)


def scan_batch(
    options: ScanOptions,
    inbox: Path,
    *,
    into: str | None = None,
    on_page: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    page_timeout: float = PAGE_TIMEOUT_SECONDS,
) -> ScanResult:
    """Scan one batch into a new job folder in ``inbox`` and hand it to capture.

    Args:
        options: device, source, sides, resolution, colour (``ScanOptions.from_settings``).
        inbox: the folder capture watches.
        into: a dossier id: the pages join that dossier (a supplement, a forgotten page)
            unless one of them is a cover page of another.
        on_page: called with the number of pages so far, after each page is on disk
            (from the calling thread).
        should_stop: polled a few times a second; True stops the scanner, keeping the
            pages already on disk (``cut_short`` is ``stopped``).
        page_timeout: seconds without a page after which the scanner counts as gone.

    Returns:
        The job, its pages, and ``cut_short`` when the batch ended early with pages kept.

    Raises:
        ScanError: nothing was scanned; ``problem`` says why (no_scanner, feeder_empty,
            paper_jam, …). No folder is left behind.
    """
    scanimage = _scanimage()
    with scanner_lock(inbox):
        recover_partials(inbox)
        device = options.device or _first_device()
        arguments = _batch_arguments(options, _options(scanimage, device))
        started = datetime.now()
        staging = inbox / f".{job_name(started, into=into)}.partial"
        staging.mkdir()  # recover_partials left none behind
        try:
            problem, detail = _run(
                [
                    scanimage,
                    "-d",
                    device,
                    *arguments,
                    "--format=jpeg",
                    f"--batch={staging / PAGE_NAME}",
                    "--batch-print",
                ],
                on_page,
                should_stop or (lambda: False),
                page_timeout,
            )
            pages = _pages(staging)
            if not pages:
                shutil.rmtree(staging, ignore_errors=True)
                raise ScanError(problem or ScanProblem.FEEDER_EMPTY, detail)
            batch = f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
            for page in pages:
                mark_page(page, batch)
            job = _finish(inbox, staging, job_name(started, into=into, cut_short=problem))
        except BaseException:
            if staging.exists() and not _pages(staging):
                shutil.rmtree(staging, ignore_errors=True)
            raise
    result = ScanResult(job, device, [job / p.name for p in pages], problem, detail)
    log.info(
        "scanned %d page(s) from %s into %s%s",
        len(pages),
        device,
        job.name,
        f" (cut short: {problem.value})" if problem else "",
    )
    return result


def _first_device() -> str:
    devices = list_devices()
    if not devices:
        raise ScanError(ScanProblem.NO_SCANNER)
    return devices[0].name


def _run(
    command: list[str],
    on_page: Callable[[int], None] | None,
    should_stop: Callable[[], bool],
    page_timeout: float,
) -> tuple[ScanProblem | None, str]:
    """Run one ``scanimage --batch``; the problem that ended it (None: feeder ran out)."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []
    readers = [
        threading.Thread(target=_reader, args=(process.stdout, lines, None), daemon=True),
        threading.Thread(target=_reader, args=(process.stderr, lines, errors), daemon=True),
    ]
    for reader in readers:
        reader.start()
    count = 0
    timed_out = False
    hung_after_report = False
    reported: float | None = None
    stopped: float | None = None
    last = time.monotonic()
    try:
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line is None:
                break
            now = time.monotonic()
            if line:
                count += 1
                last = now
                if on_page is not None:
                    on_page(count)
            if reported is None and errors and _problem_in("\n".join(errors)) is not None:
                reported = now
            if (
                stopped is None
                and reported is not None
                and now - max(reported, last) > REPORTED_GRACE_SECONDS
            ):
                stopped = now
                hung_after_report = True
                process.kill()  # it said what went wrong; its cleanup hung
            if stopped is None and (should_stop() or now - last > page_timeout):
                timed_out = now - last > page_timeout
                stopped = now
                process.terminate()  # scanimage cancels the page in hand and exits
            elif stopped is not None and now - stopped > STOP_GRACE_SECONDS:
                process.kill()
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    for reader in readers:
        reader.join(timeout=5)
    detail = _last_line("\n".join(errors))
    if hung_after_report:
        return _problem_in("\n".join(errors)) or ScanProblem.DEVICE_GONE, detail
    if timed_out:
        return ScanProblem.DEVICE_GONE, f"no page for {page_timeout:.0f} s"
    if stopped is not None:
        return ScanProblem.STOPPED, detail
    if code in (_SANE_GOOD, _SANE_NO_DOCS):
        return None, detail
    if code < 0:
        return ScanProblem.DEVICE_GONE, f"scanimage ended by signal {-code}"
    if code == _SANE_CANCELLED:
        return ScanProblem.STOPPED, detail
    text = "\n".join(errors)
    if "open of device" in text:
        return _problem_in(text) or ScanProblem.DEVICE_GONE, detail
    return _STATUS_PROBLEM.get(code) or _problem_in(text) or ScanProblem.SCAN_FAILED, detail


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("scanimage:")]
    return lines[-1] if lines else ""


# -- the scanner's own button ------------------------------------------------------------------


def pressed(found: dict[str, _Option], names: re.Pattern[str] = BUTTON_NAMES) -> set[str]:
    """The button sensors that read "pressed" now."""
    return {
        o.name
        for o in found.values()
        if o.hardware and o.current == "yes" and names.fullmatch(o.name)
    }


@dataclass
class ButtonWatcher:
    """Polls USB scanners' button sensors and scans a batch on each press.

    Network scanners have no button SANE can read. A press is a sensor going from
    released to pressed between two polls; holding it starts one batch, not many.
    """

    options: ScanOptions
    inbox: Path
    poll_seconds: float = 1.0
    names: re.Pattern[str] = BUTTON_NAMES
    relist_seconds: float = 30.0
    _held: dict[str, set[str]] = field(default_factory=dict)
    _devices: list[str] = field(default_factory=list)
    _listed: float = float("-inf")

    def devices(self) -> list[str]:
        """The scanners to poll: the configured one, or the USB ones listed lately."""
        if self.options.device:
            return [self.options.device]
        now = time.monotonic()
        if now - self._listed >= self.relist_seconds:
            self._devices = [d.name for d in list_devices() if not d.network]
            self._listed = now
        return self._devices

    def poll(self) -> list[ScanResult | ScanError]:
        """One look at every scanner; the batches (or failures) that presses started."""
        outcomes: list[ScanResult | ScanError] = []
        scanimage = _scanimage()
        for device in self.devices():
            try:
                with scanner_lock(self.inbox, wait=0):
                    now = pressed(_options(scanimage, device), self.names)
            except ScanError as exc:
                if exc.problem is not ScanProblem.SCAN_RUNNING:
                    log.debug("button poll of %s: %s %s", device, exc.problem, exc.detail)
                    self._listed = float("-inf")
                continue
            except subprocess.TimeoutExpired:
                continue
            fresh = now - self._held.get(device, set())
            self._held[device] = now
            if fresh:
                log.info("button %s pressed on %s", ",".join(sorted(fresh)), device)
                try:
                    outcomes.append(scan_batch(replace(self.options, device=device), self.inbox))
                except ScanError as exc:
                    log.warning("scan from the button failed: %s (%s)", exc.problem, exc.detail)
                    outcomes.append(exc)
        return outcomes

    def run(self, should_stop: Callable[[], bool]) -> None:
        while not should_stop():
            self.poll()
            deadline = time.monotonic() + self.poll_seconds
            while time.monotonic() < deadline and not should_stop():
                time.sleep(min(0.2, self.poll_seconds))
