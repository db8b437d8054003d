"""A USB stick is hostile: what a crafted one did to the box and to central (issue 11).

Device ids are public (``/fleet.json``), so anyone can lay out
``commune-edge/<device id>/`` on a stick. Each test plants what was tried: a
``blobs`` link into the box's own state (``edge sync --to-dir`` used to unlink
everything there), an ``answer`` link out of the stick (central wrote receipts
and a report there), FIFOs and ``/dev/zero`` where files should be (readers hung
or grew without bound), a 1 GiB file (central's RSS went to 1.1 GB), a revoked
device's folder (the import crashed and skipped the folders after it). The last
test is a Hypothesis pass over random trees.

Subprocesses run with a time limit and an address-space limit, so today's failure
modes (a hang, unbounded memory) end as test failures, not as a stuck suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.provision import provision
from edge.stick import StickDir, StickError
from edge.sync import SyncError, client, usb
from edge.sync.central.importer import import_stick
from edge.update.client import DirectoryFetcher
from edge.update.repository import AdminRepo
from edge.vault import Keyring
from tests.syncutil import PASSWORD, CentralServer, box_chain, central_chain, make_box

# ``edge`` as the command line runs it, reporting its own peak RSS (VmHWM belongs to the
# process image, so unlike ru_maxrss it does not include the forked test process's pages).
PROBE = """
import atexit, sys
def _peak():
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                sys.stderr.write('\\n' + 'PEAK-KIB ' + line.split()[1] + '\\n')
atexit.register(_peak)
sys.argv = ['edge'] + sys.argv[1:]
from edge.cli import main
sys.exit(main())
"""
EDGE = [sys.executable, "-c", PROBE]
LIMIT_AS = 3 << 30  # address space a CLI may map: a reader that grows without bound dies


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def run(*args: str, timeout: float = 90) -> tuple[int, str, str, int]:
    """``edge ARGS`` with a time and memory limit; returns rc, stdout, stderr, peak RSS (KiB).

    A run that hangs past ``timeout`` is killed (rc -9), which fails the test.
    """
    try:
        done = subprocess.run(
            [*EDGE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limits,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -9, "", "timed out", 0
    lines = done.stderr.rstrip("\n").split("\n")
    peak = 0
    if lines and lines[-1].startswith("PEAK-KIB "):
        peak = int(lines.pop().split()[1])
    err = "\n".join(lines).strip()
    return done.returncode, done.stdout, err, peak


def enroll(state: Path, server: CentralServer) -> str:
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        token = server.central.issue_token("H29.01")
        return client.enroll(state, server.url, token, session=session)["device"]
    finally:
        session.close()


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry below ``folder`` (links not followed): mode and content digest."""
    seen: dict[str, tuple[int, str]] = {}
    for path in sorted(folder.rglob("*")):
        st_ = path.lstat()
        digest = ""
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_symlink():
            digest = os.readlink(path)
        seen[str(path.relative_to(folder))] = (st_.st_mode, digest)
    return seen


def victim_folder(tmp_path: Path, box: Path) -> Path:
    """Copies of what a box cannot lose (its keyring and its database), outside any stick."""
    victim = tmp_path / "victim"
    victim.mkdir()
    shutil.copy(box / "keyring.json", victim / "keyring.json")
    shutil.copy(box / "edge.db", victim / "edge.db")
    (victim / "a-blob-name").write_bytes(b"x" * 64)
    return victim


sqlite_only = pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)


# -- the box: edge sync --to-dir / --from-dir ----------------------------------------


@sqlite_only
@pytest.mark.parametrize("planted", ["blobs", "batches", "device", "root"])
def test_a_link_on_the_stick_makes_to_dir_refuse_and_delete_nothing(
    tmp_path: Path, central: CentralServer, box: Path, planted: str
) -> None:
    device = enroll(box, central)
    victim = victim_folder(tmp_path, box)
    before = snapshot(victim)
    stick = tmp_path / "stick"
    folder = usb.device_folder(stick, device)
    if planted in ("blobs", "batches"):
        folder.mkdir(parents=True)
        (folder / planted).symlink_to(victim)
    elif planted == "device":
        folder.parent.mkdir(parents=True)
        folder.symlink_to(victim)
    else:
        stick.mkdir()
        (stick / usb.ROOT).symlink_to(victim)

    rc, out, err, _ = run("sync", "--state", str(box), "--to-dir", str(stick))

    assert snapshot(victim) == before  # nothing deleted, nothing written there
    assert rc != 0, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "link" in lines[0] and "delete it from the stick" in lines[0]


@sqlite_only
def test_fifos_and_dev_zero_on_the_stick_neither_hang_nor_grow_from_dir(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    device = enroll(box, central)
    stick = tmp_path / "stick"
    usb.to_dir(box, stick, policy_events=3)
    import_stick(central.central, stick)
    answer = usb.device_folder(stick, device) / "answer"
    receipts = sorted((answer / "receipts").iterdir())
    assert len(receipts) >= 2
    good = receipts[0].name
    os.unlink(receipts[1])
    os.mkfifo(receipts[1])  # a FIFO where a receipt was: open() used to wait forever
    (answer / "receipts" / "zero.json").symlink_to("/dev/zero")
    (answer / "downlink.json").unlink()
    (answer / "downlink.json").symlink_to("/dev/zero")  # read_bytes() grew without bound

    started = time.monotonic()
    rc, out, err, rss = run("sync", "--state", str(box), "--from-dir", str(stick), "--json")
    assert "Traceback" not in err
    assert rc != -9, "edge sync --from-dir hung on a FIFO"
    assert time.monotonic() - started < 60
    report = json.loads(out)
    refused = {r["file"] for r in report["rejected"]}
    assert {receipts[1].name, "zero.json", "downlink.json"} <= refused, report
    assert report["receipts"] >= 1 and good not in refused
    assert 0 < rss < 400_000  # KiB


# -- central: edge central import -----------------------------------------------------


@sqlite_only
def test_import_writes_nothing_outside_the_stick(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    device = enroll(box, central)
    stick = tmp_path / "stick"
    usb.to_dir(box, stick)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.json").write_text("precious")
    before = snapshot(elsewhere)
    (usb.device_folder(stick, device) / "answer").symlink_to(elsewhere)

    report = import_stick(central.central, stick)

    assert snapshot(elsewhere) == before
    assert report["accepted"] == 0  # refused before anything was taken: it travels again
    (refusal,) = report["rejected"]
    assert refusal["device"] == device and "link" in refusal["detail"]

    # a link planted where a file goes is replaced on the stick, never followed
    os.unlink(usb.device_folder(stick, device) / "answer")
    answer = usb.device_folder(stick, device) / "answer"
    (answer / "receipts").mkdir(parents=True)
    (answer / "report.json").symlink_to(elsewhere / "report.json")
    report = import_stick(central.central, stick)
    assert report["rejected"] == [] and report["accepted"] >= 1
    assert snapshot(elsewhere) == before
    assert not (answer / "report.json").is_symlink()
    assert central_chain(central.central, device) == box_chain(box)


@sqlite_only
def test_a_1_gib_blob_file_is_streamed_and_refused_in_bounded_memory(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    device = enroll(box, central)
    stick = tmp_path / "stick"
    assert usb.to_dir(box, stick)["batches"] == 1  # both files named by the batch at the head
    blobs = sorted((usb.device_folder(stick, device) / "blobs").iterdir())
    huge, too_big = blobs[0], blobs[-1]
    for path, size in ((huge, 1 << 30), (too_big, (1 << 30) + 1)):
        path.unlink()
        with open(path, "wb") as fh:
            fh.truncate(size)  # sparse: costs no disk, reads as zeros

    rc, out, err, rss = run(
        "central", "import", "--data", str(central.central.data), str(stick), "--json"
    )
    assert rc not in (-9, 0), (rc, err)
    report = json.loads(out)
    assert 0 < rss < 400_000, f"peak RSS {rss} KiB while importing a 1 GiB file"
    by_file = {r["file"]: r for r in report["rejected"]}
    assert by_file[f"blobs/{huge.name}"]["code"] == "checksum_mismatch"
    assert "more than" in by_file[f"blobs/{too_big.name}"]["detail"]
    assert not central.central.blobs.has(huge.name) and not central.central.blobs.has(too_big.name)
    leftovers = [p for p in central.central.data.rglob("*.tmp")]
    assert leftovers == []


@sqlite_only
def test_a_revoked_device_on_the_stick_stores_nothing_and_the_others_still_import(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    other = make_box(tmp_path / "other", dossiers=1, pages=1, seed=77)
    devices = {enroll(box, central): box, enroll(other, central): other}
    stick = tmp_path / "stick"
    for state in devices.values():
        usb.to_dir(state, stick)
    first, second = sorted(devices)  # the refused folder comes first, so the next must follow
    central.central.revoke(first)
    first_blobs = {p.name for p in (usb.device_folder(stick, first) / "blobs").iterdir()}
    second_blobs = {p.name for p in (usb.device_folder(stick, second) / "blobs").iterdir()}
    only_first = first_blobs - second_blobs
    assert only_first

    rc, out, err, _ = run("central", "import", "--data", str(central.central.data), str(stick))
    assert rc == 2 or rc == 1, (rc, err)  # refusals exit non-zero, with no traceback
    assert "Traceback" not in err and "device_revoked" in out

    assert not any(central.central.blobs.has(b) for b in only_first)
    assert central_chain(central.central, first) == []
    assert central_chain(central.central, second) == box_chain(devices[second])
    for device in (first, second):
        answer = usb.device_folder(stick, device) / "answer"
        written = json.loads((answer / "report.json").read_bytes())
        codes = {r["code"] for r in written["rejected"]}
        assert codes == ({"device_revoked"} if device == first else set())
    assert (usb.device_folder(stick, second) / "answer" / "downlink.json").is_file()


# -- the update client reading a stick ---------------------------------------------------


def test_update_from_a_stick_with_a_fifo_and_links_does_not_hang(tmp_path: Path) -> None:
    repo = AdminRepo.create(tmp_path / "repo")
    repo.set_config({"min_dpi": 250})
    stick = tmp_path / "stick"
    stick.mkdir()
    served = repo.usb(stick)
    state = tmp_path / "box"
    provision(
        state,
        office="H29.01",
        clerk="lan",
        password=PASSWORD,
        trust_root=repo.metadata_dir / "1.root.json",
    )
    os.mkfifo(served / "metadata" / "2.root.json")  # the next root a box always asks for

    rc, out, err, _ = run("update", "--state", str(state), "--once", "--from", str(stick))

    assert rc != -9, "edge update hung on a FIFO on the stick"
    assert rc != 0 and len(err.strip().splitlines()) == 1, (out, err)

    # the fetcher refuses links below the stick and FIFOs, and answers 404 for what is absent
    from tuf.api.exceptions import DownloadError, DownloadHTTPError

    (served / "metadata" / "3.root.json").symlink_to(repo.metadata_dir / "1.root.json")
    fetcher = DirectoryFetcher(stick)
    base = f"file://{served}/metadata"
    for name in ("2.root.json", "3.root.json"):
        with pytest.raises(DownloadError) as refused:
            list(fetcher.fetch(f"{base}/{name}"))
        assert not isinstance(refused.value, DownloadHTTPError)
    with pytest.raises(DownloadHTTPError):
        list(fetcher.fetch(f"{base}/4.root.json"))
    assert (
        b"".join(fetcher.fetch(f"{base}/1.root.json"))
        == (repo.metadata_dir / "1.root.json").read_bytes()
    )


# -- fuzzing: random hostile trees -------------------------------------------------------

KINDS = ["file", "dir", "link_out", "link_in", "link_dead", "fifo", "dev_zero", "sparse_huge"]
ODD_NAMES = st.one_of(
    st.sampled_from(
        [
            "DEVICE",
            "answer",
            "blobs",
            "batches",
            "receipts",
            "request.json",
            "downlink.json",
            "report.json",
        ]
    ),
    st.text(
        st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200),
    st.binary(min_size=1, max_size=30)
    .filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
    .map(os.fsdecode),
)


class Hostile:
    """One enrolled box and central, a real stick's tree as the starting point, and an
    outside folder that every planted link points into (it must never change)."""

    def __init__(self, base: Path, server: CentralServer, box: Path) -> None:
        self.base = base
        self.central = server.central
        self.box = box
        self.device = enroll(box, server)
        self.template = base / "template"
        usb.to_dir(box, self.template, policy_events=3)
        import_stick(self.central, self.template)
        self.outside = base / "outside"
        (self.outside / "deep").mkdir(parents=True)
        (self.outside / "keyring.json").write_text("secret")
        (self.outside / "deep" / "edge.db").write_bytes(b"db" * 100)
        self.examples = 0

    def fresh(self) -> Path:
        self.examples += 1
        stick = self.base / f"stick-{self.examples}"
        shutil.copytree(self.template, stick, symlinks=True)
        return stick


def _plant(stick: Path, outside: Path, where: int, name: str, kind: str, seed: bytes) -> None:
    """Put one hostile entry somewhere in the stick's tree (``where`` picks the folder)."""
    folders = sorted(p for p in stick.rglob("*") if p.is_dir() and not p.is_symlink())
    folders.insert(0, stick / usb.ROOT)
    parent = folders[where % len(folders)]
    target = parent / name
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    try:
        if kind == "file":
            target.write_bytes(seed * 50)
        elif kind == "dir":
            target.mkdir()
            (target / "request.json").write_bytes(seed)
        elif kind == "link_out":
            target.symlink_to(outside if len(seed) % 2 else outside / "keyring.json")
        elif kind == "link_in":
            target.symlink_to(stick)
        elif kind == "link_dead":
            target.symlink_to(outside / "nothing-here")
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "dev_zero":
            target.symlink_to("/dev/zero")
        else:
            with open(target, "wb") as fh:
                fh.truncate((4 << 30) + len(seed))  # past every limit: never read
    except OSError:
        pass  # a name the filesystem refuses: nothing planted


class Hung(Exception):
    """A stick reader did not return in time (a FIFO opened without O_NONBLOCK does that)."""


@contextmanager
def bounded(seconds: float, extra: int) -> Iterator[None]:
    """Run in-process readers with a deadline and a cap on this process's address space.

    A reader that blocks on a FIFO is interrupted by SIGALRM; one that grows without bound
    (reading ``/dev/zero``) gets MemoryError at ``extra`` bytes past what is mapped now,
    so neither hangs the suite nor exhausts the machine.
    """

    def _alarm(_signum: int, _frame: object) -> None:
        raise Hung(f"a stick reader was still running after {seconds} s")

    with open("/proc/self/status") as fh:
        mapped = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:")) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    previous = signal.signal(signal.SIGALRM, _alarm)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture
def hostile(tmp_path: Path, central: CentralServer, box: Path) -> Hostile:
    return Hostile(tmp_path, central, box)


def _stick_files(stick: Path) -> Iterator[Path]:
    for path in stick.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


@sqlite_only
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plants=st.lists(
        st.tuples(
            st.integers(0, 40), ODD_NAMES, st.sampled_from(KINDS), st.binary(min_size=1, max_size=8)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_every_stick_reader_on_random_hostile_trees(
    hostile: Hostile, plants: list[tuple[int, str, str, bytes]]
) -> None:
    """Random links (out of the stick, into it, dangling), FIFOs, /dev/zero, 4 GiB sparse
    files, folders where files go and odd names, anywhere in a real stick's tree: central's
    import, the box's --from-dir and --to-dir and the update fetcher each either work or
    refuse in one line; nothing outside the stick changes; time and memory stay bounded."""
    stick = hostile.fresh()
    for where, name, kind, seed in plants:
        real = hostile.device if name == "DEVICE" else name
        _plant(stick, hostile.outside, where, real, kind, seed)
    before = snapshot(hostile.outside)
    state_files = sorted(p.name for p in hostile.box.iterdir())
    fetcher = DirectoryFetcher(stick)

    def fetch_all() -> None:
        from tuf.api.exceptions import DownloadError

        for path in list(_stick_files(stick))[:50]:
            try:
                for _ in fetcher.fetch(f"file://{path}"):
                    pass
            except DownloadError as exc:
                assert "\n" not in str(exc)

    actions = [
        lambda: import_stick(hostile.central, stick),
        lambda: json.dumps(usb.from_dir(hostile.box, stick)),
        lambda: json.dumps(usb.to_dir(hostile.box, stick)),
        fetch_all,
    ]
    tracemalloc.start()
    started = time.monotonic()
    try:
        with bounded(seconds=60, extra=2 << 30):
            for action in actions:
                try:
                    action()
                except (SyncError, StickError, ValueError) as exc:
                    # a refusal a person can act on: one line, and nothing else escapes
                    assert "\n" not in str(exc) and str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 30
    assert peak < 96 << 20, f"{peak} bytes allocated at peak"
    assert snapshot(hostile.outside) == before
    assert sorted(p.name for p in hostile.box.iterdir()) == state_files


def test_stick_dir_refuses_what_is_not_a_plain_file_or_folder(tmp_path: Path) -> None:
    """The module's own contract, without a box: each refusal is a one-line StickError."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "link").symlink_to(outside)
    (stick / "file-link").symlink_to(outside / "secret")
    os.mkfifo(stick / "fifo")
    (stick / "zero").symlink_to("/dev/zero")
    (stick / "big").write_bytes(b"y" * 100)
    with StickDir.open_root(stick) as root:
        for name in ("link", "file-link", "fifo", "zero"):
            with pytest.raises(StickError) as refused:
                root.read(name)
            assert "\n" not in str(refused.value)
        with pytest.raises(StickError):
            root.subdir("link")
        with pytest.raises(StickError, match="more than"):
            root.read("big", 10)
        with pytest.raises(StickError):
            root.read("../outside/secret")
        root.write("file-link", b"new")  # replaces the link, not what it named
        assert root.remove("link")
    assert (outside / "secret").read_text() == "x"
    assert (stick / "file-link").read_bytes() == b"new" and not (stick / "file-link").is_symlink()
    assert outside.is_dir()


@pytest.mark.parametrize("kind", ["fifo", "device", "link-to-fifo", "huge"])
def test_a_trust_root_that_is_no_plain_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """`edge init --trust-root` on a FIFO used to hang for ever; on /dev/zero, fill memory."""
    target = tmp_path / "root.json"
    if kind in ("fifo", "link-to-fifo"):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        if kind == "fifo":
            target = fifo
        else:
            target.symlink_to(fifo)
    elif kind == "device":
        target = Path("/dev/zero")
    else:
        with target.open("wb") as f:
            f.truncate(64 << 20)
    state = tmp_path / "state"
    started = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "edge.cli", "init", "--state", str(state)),
            *("--office", "H29.01", "--clerk", "lan", "--trust-root", str(target)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EDGE_PASSWORD": "Mật khẩu đủ dài 2026!"},
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: error: cannot use"), done.stderr
    assert not (state / "edge.db").exists()
