"""Issue 16, items 4 and 5: files that are small on disk but huge in memory, and long
batches of bad files.

A 480 KB PNG of 10950 x 10950 RGBA pixels (just under ``max_pixels``) inflates to 480 MB;
``edge capture`` used to reach 1 GB for one and die with MemoryError under a 1.8 GB
address-space limit, leaving the rest of the inbox behind. Now every decode is priced in
decoded bytes first and such files are quarantined with a reason before anything is
decoded. These tests run ``edge capture --once`` and ``edge run`` as real processes: the
capture child runs under an address-space limit, and reports its own peak RSS (VmHWM)
when it exits.

A hundred thousand tiny bad files kept the main loop busy for minutes without feeding
the watchdog, since it was fed only between the pages of a file. The daemon now beats
after every file; the test watches the WATCHDOG=1 pings systemd would see.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import samples
from edge.capture import readers
from edge.capture.readers import BadInput, DecodeBudget, open_pages, set_decode_budget
from edge.samples import DossierSpec

CODE = "000.00.01.H29-240115-0001"
SIDE = 10950  # 119.9 MP, under max_pixels (120 MP)
PEAK_LIMIT_KB = 300 * 1024
ADDRESS_LIMIT = 1536 * 2**20
"""Well above what the daemon maps when it behaves (about 500 MB: libraries, thread stacks,
two malloc arenas), well below what one bomb takes when decoded (over 1 GB)."""

_REPORT_PEAK = """\
import atexit, runpy, sys
def _peak(path=sys.argv[1]):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(status.read())
atexit.register(_peak)
sys.argv = ["edge", *sys.argv[2:]]
runpy.run_module("edge.cli", run_name="__main__")
"""


# -- files that are small on disk and huge in memory ------------------------------------------


def _solid_zlib(first: bytes, row: bytes, rows: int) -> bytes:
    """A zlib stream of ``first`` then ``rows`` copies of ``row``, without compressing them all.

    After a full flush deflate starts afresh, so one compressed block of many rows can be
    repeated as is; only the checksum has to see every byte, and adler32 runs at memory speed.
    """
    per = 256
    block = row * per
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(first) + comp.flush(zlib.Z_FULL_FLUSH)
    repeated = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(rows, per)
    tail = comp.compress(row * rest) + comp.flush()
    adler = zlib.adler32(first)
    for _ in range(whole):
        adler = zlib.adler32(block, adler)
    adler = zlib.adler32(row * rest, adler)
    return b"\x78\xda" + head + repeated * whole + tail + struct.pack(">I", adler)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def huge_png(side: int = SIDE) -> bytes:
    """A solid RGBA PNG: every row after the first is filtered "Up" to zeros."""
    first = b"\x00" + bytes((200, 100, 50, 255)) * side
    row = b"\x02" + bytes(side * 4)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    idat = _solid_zlib(first, row, side - 1)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _rgb_rows(side: int) -> bytes:
    row = bytes((200, 100, 50)) * side
    return _solid_zlib(row, row, side - 1)


def huge_tiff(side: int = SIDE) -> bytes:
    """A one-strip Deflate RGB TIFF, written by hand (Pillow would need the pixels)."""
    strip = _rgb_rows(side)
    entries = [
        (256, 4, 1, side),  # ImageWidth
        (257, 4, 1, side),  # ImageLength
        (258, 3, 3, 0),  # BitsPerSample: offset filled below
        (259, 3, 1, 8),  # Compression: Adobe Deflate
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, 0),  # StripOffsets: filled below
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, side),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfiguration: contiguous
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    strip_at = bits_at + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_at
        elif tag == 273:
            value = strip_at
        if kind == 3 and count == 1:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 8, 8, 8) + strip


def huge_image_pdf(side: int = SIDE) -> bytes:
    """An A4 page drawing one Flate-compressed RGB image of ``side`` x ``side`` pixels."""
    stream = _rgb_rows(side)
    content = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
        % (side, side, len(stream))
        + stream
        + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    png = huge_png()
    return {
        "a1.png": png,
        "a2.png": png[:-12] + _chunk(b"tEXt", b"Comment\x00two") + png[-12:],
        "a3.png": png[:-12] + _chunk(b"tEXt", b"Comment\x00three") + png[-12:],
        "a4.tif": huge_tiff(),
        "a5.pdf": huge_image_pdf(),
    }


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))


def _status_kb(text: str, key: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith(key + ":"))
    return int(line.split()[1])


def _capture_once(
    state: Path, inbox: Path, tmp_path: Path, env: dict[str, str], *, limit: bool = False
) -> tuple[dict[str, Any], int]:
    """``edge capture --once --json`` as a child process: its report and its peak RSS in kB
    (under the address-space limit with ``limit``)."""
    status = tmp_path / "status"
    args = ["--state", str(state), "--inbox", str(inbox), "--once", "--json", "--settle", "0"]
    result = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK, str(status), "capture", *args],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
        preexec_fn=_limit_address_space if limit else None,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout), _status_kb(status.read_text(), "VmHWM")


def test_capture_quarantines_memory_bombs_and_captures_the_rest_in_300_mb(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str], bombs: dict[str, bytes]
) -> None:
    for name, data in bombs.items():
        assert len(data) < 600_000, name  # small on disk: no size limit can catch them
        (inbox / name).write_bytes(data)
    job = samples.write_job(tmp_path / "scans", [DossierSpec(CODE, 2)], "jpeg", seed=16)
    for path in job.paths:
        shutil.copy(path, inbox / f"z-{path.name}")
    report, peak_kb = _capture_once(state, inbox, tmp_path, edge_env, limit=True)
    assert report["failed"] == []
    assert report["pages"] == len(job.paths), report
    quarantined = {q["file"]: q for q in report["quarantined"]}
    assert sorted(quarantined) == sorted(bombs)
    for entry in quarantined.values():
        assert entry["reason"] == "too_big_to_decode", entry
        assert "\n" not in entry["message"] and "300 dpi" in entry["message"], entry
    assert os.listdir(inbox) == []  # nothing left behind
    assert peak_kb < PEAK_LIMIT_KB, f"peak RSS {peak_kb // 1024} MB"


def test_600_dpi_colour_scans_in_every_format_are_captured_in_300_mb(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    """An A4 page at 600 dpi in colour is 35 megapixels, 139 MB decoded whole. A PNG is
    decoded in bands, every page is read for barcodes as a 300-dpi page would be, and an
    uncompressed TIFF (104 MB on disk) is re-saved losslessly before it is sealed."""
    cover = samples.cover_page(CODE, dpi=600, symbology="code128")
    samples.save_png(cover, inbox / "1-cover.png", dpi=600)
    del cover
    text = samples.text_page(5, dpi=600)
    samples.save_jpeg(text, inbox / "2-text.jpg", dpi=600, quality=90)
    text.save(inbox / "3-raw.tif", dpi=(600, 600), compression="raw")
    text.save(inbox / "4-lzw.tif", dpi=(600, 600), compression="tiff_lzw")
    raw_size = (inbox / "3-raw.tif").stat().st_size
    del text
    assert raw_size > 90 * 2**20
    report, peak_kb = _capture_once(state, inbox, tmp_path, edge_env)
    assert (report["pages"], report["quarantined"], report["uncertain"]) == (4, [], []), report
    assert report["dossiers"][0] == CODE, report  # the thin Code 128 read and confirmed
    assert peak_kb < PEAK_LIMIT_KB, f"peak RSS {peak_kb // 1024} MB"
    with sqlite3.connect(state / "edge.db") as db:
        stored = [size for (size,) in db.execute("SELECT bytes FROM pages ORDER BY position")]
    assert stored[2] < raw_size // 3, stored  # same pixels, Deflate instead of nothing


# -- the reader's side ----------------------------------------------------------------------


@pytest.fixture
def small_budget() -> Iterator[None]:
    saved = readers.BUDGET.capacity
    set_decode_budget(8)
    yield
    readers.BUDGET.capacity = saved


def test_decoded_size_not_pixels_decides(tmp_path: Path, small_budget: None) -> None:
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.new("RGB", (2000, 2000), (200, 100, 50)).save(path)  # 16 MB decoded, 4 MP
    with pytest.raises(BadInput) as caught:
        list(open_pages(path))
    assert caught.value.reason == "too_big_to_decode"
    assert "16 MB" in caught.value.message or "MB of memory" in caught.value.message
    assert caught.value.page is None  # the file as a whole, not "Page 1"


def test_a_memory_error_while_decoding_is_that_file_s_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "page.png"
    samples.save_png(samples.text_page(1, dpi=100), path, dpi=100)

    def out_of_memory(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(readers, "_decode_raster", out_of_memory)
    with pytest.raises(BadInput) as caught:
        list(open_pages(path))
    assert caught.value.reason == "out_of_memory"
    assert "300 dpi" in caught.value.message


def test_budget_leases_take_turns() -> None:
    import threading

    budget = DecodeBudget(100)
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()

    def work() -> None:
        with budget.lease(60):
            with lock:
                inside.append(1)
                most[0] = max(most[0], len(inside))
            with budget.lease(60):  # nested: already paid for
                time.sleep(0.02)
            with lock:
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 1 and budget.used == 0


# -- a long batch of bad files feeds the watchdog --------------------------------------------


def test_the_watchdog_is_fed_through_a_long_batch_of_bad_files(
    state: Path, inbox: Path, tmp_path: Path, edge_env: dict[str, str]
) -> None:
    count = 1200
    for number in range(count):
        (inbox / f"junk-{number:05d}.jpg").write_bytes(b"not a scan %d\n" % number)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(0.1)
    env = {
        **edge_env,
        "NOTIFY_SOCKET": listener.getsockname(),
        "WATCHDOG_USEC": "400000",  # a ping due every 0.2 s
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge.cli", "run"),
            *("--state", str(state), "--inbox", str(inbox)),
            *("--settle", "0", "--idle", "1", "--http-port", "0"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready_at = 0.0
    pings: list[float] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the daemon exited"
            try:
                lines = listener.recv(65536).decode().splitlines()
            except TimeoutError:
                lines = []
            now = time.monotonic()
            if "READY=1" in lines and not ready_at:
                ready_at = now
            elif ready_at and "WATCHDOG=1" in lines:
                pings.append(now)
            if ready_at and not any(os.scandir(inbox)):
                break
        done_at = time.monotonic()
        assert not any(os.scandir(inbox)), "the batch did not finish"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        listener.close()
    assert done_at - ready_at > 2.0, f"the batch was too quick ({done_at - ready_at:.1f} s)"
    gaps = [later - earlier for earlier, later in itertools.pairwise([ready_at, *pings, done_at])]
    assert max(gaps) < 1.5, f"the watchdog went {max(gaps):.1f} s without a ping"
