"""The smaller pieces of updates: scopes, clerk accounts, bundles, the daemon hook, the CLI."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from packaging.tags import sys_tags
from tuf.api.metadata import Metadata

from edge import __version__
from edge.records import Ledger
from edge.settings import Settings
from edge.store import Store
from edge.update import (
    UpdateError,
    bundle,
    office_prefixes,
    province_paths,
    version_key,
)
from edge.update.apply import activate_pending, reference_data
from edge.update.client import CountingFetcher, DirectoryFetcher, pin_root, resolve_source
from edge.update.cycle import Options, update_once
from edge.update.expiry import served_root_expiry
from edge.update.install import Installer
from edge.update.repository import AdminRepo
from edge.update.schedule import UpdateHook
from edge.update.selftest import read_heartbeat, watch_probation, write_heartbeat
from edge.vault import Keyring, VaultError
from tests.update_support import PASSWORD, provisioned, run_edge, serve


@pytest.fixture
def repo(tmp_path: Path) -> AdminRepo:
    repo = AdminRepo.create(tmp_path / "repo")
    repo.delegate("H29")
    return repo


def _box(tmp_path: Path, repo: AdminRepo, office: str = "H29.01") -> Path:
    return provisioned(tmp_path, repo.metadata_dir / "1.root.json", office)


def _update(state: Path, served: Path, **options):
    return update_once(state, Options(source=str(served), **options))


def test_names_and_versions() -> None:
    assert office_prefixes("H29.01-05") == ["H29", "H29.01", "H29.01-05"]
    assert office_prefixes("H29") == ["H29"]
    assert province_paths("H29") == ["o/H29/*", "o/H29.*/*", "o/H29-*/*"]
    assert version_key("1.10") > version_key("1.9")
    with pytest.raises(UpdateError):
        version_key("1.1-beta")


def test_configuration_layers_unset_and_settings_from_elsewhere(
    tmp_path: Path, repo: AdminRepo
) -> None:
    served = tmp_path / "served"
    state = _box(tmp_path, repo)
    other = _box(tmp_path, repo, office="H30.02")
    store = Store.open(state)
    with store.transaction():  # as central's signed downlink (edge.sync) would
        store.put_settings(store.settings().with_changes(settle_seconds=9.0))
    store.close()
    repo.set_config({"min_dpi": 250, "max_skew_degrees": 4})
    repo.set_config({"min_dpi": 300}, office="H29")
    repo.set_config({"job_idle_seconds": 30}, office="H29.01")
    repo.set_reference("agencies", {"H29": "Hà Nội"})
    repo.set_reference("agencies", {"H29.01": "Ba Đình"}, office="H29")
    repo.export(served)
    assert _update(state, served).status == "updated"
    assert _update(other, served).status == "updated"
    store = Store.open(state)
    settings = store.settings()
    assert (settings.min_dpi, settings.max_skew_degrees, settings.job_idle_seconds) == (300, 4, 30)
    assert settings.settle_seconds == 9.0
    assert reference_data(store, "agencies") == {"H29.01": "Ba Đình"}
    assert store.meta("config.rev")  # the running daemon re-reads settings
    store.close()
    store = Store.open(other)
    assert store.settings().min_dpi == 250 and store.settings().job_idle_seconds == 120
    assert reference_data(store, "agencies") == {"H29": "Hà Nội"}
    store.close()

    repo.set_config({}, unset=["min_dpi"], office="H29")
    repo.set_config({}, unset=["job_idle_seconds"], office="H29.01")
    repo.export(served)
    report = _update(state, served)
    assert report.settings == {"job_idle_seconds": [30.0, 120.0], "min_dpi": [300.0, 250.0]}
    done = run_edge("config", "--state", str(state), "--json")
    config = json.loads(done.stdout)
    assert config["sources"] == {
        "max_skew_degrees": "fleet/config.json",
        "min_dpi": "fleet/config.json",
    }
    assert config["settings"]["settle_seconds"] == 9.0
    assert config["office_key"]["id"] == Keyring.load(state).office_key_id


def test_clerk_accounts_reach_the_box_sealed_and_wait_for_a_sign_in(
    tmp_path: Path, repo: AdminRepo
) -> None:
    served = tmp_path / "served"
    state = _box(tmp_path, repo)
    keyring = Keyring.load(state)
    key_file = tmp_path / "office.pub"
    key_file.write_text(base64.b64encode(keyring.office_public).decode())
    done = run_edge(
        "admin", "clerk", "--repo", str(repo.path), "--office", "H29.01", "--add", "mai",
        "--office-key", str(key_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    password = done.stdout.split("it is not stored): ")[1].split()[0]
    published = repo.content("o/H29.01/clerks.json", "province-H29")
    assert password.encode() not in published
    repo.export(served)
    assert _update(state, served).status == "updated"
    keyring = Keyring.load(state)
    assert not keyring.has_clerk("mai")
    done = run_edge("clerks", "--state", str(state), "--json")
    assert json.loads(done.stdout)["pending"][0]["name"] == "mai"

    store = Store.open(state)
    session = keyring.unlock("lan", PASSWORD)
    assert activate_pending(store, keyring, session, Ledger(store, keyring.sealer())) == ["mai"]
    session.close()
    mai = Keyring.load(state).unlock("mai", password)
    assert Keyring.load(state).must_change_password("mai")
    mai.close()
    assert "clerk.activated" in [e.type for e in store.events()]
    store.close()

    repo.clerk("H29.01", "disable", "mai")
    repo.export(served)
    assert _update(state, served).status == "updated"
    with pytest.raises(VaultError):
        Keyring.load(state).unlock("mai", password)
    store = Store.open(state)
    assert "clerk.disabled" in [e.type for e in store.events()]
    store.close()


def test_clerk_change_needs_the_box_office_key(repo: AdminRepo) -> None:
    with pytest.raises(UpdateError, match=r"no office key known for H29\.01"):
        repo.clerk("H29.01", "add", "mai")
    with pytest.raises(UpdateError, match=r"no province is delegated for office H30\.01"):
        repo.set_config({"min_dpi": 250}, office="H30.01")


def test_a_quiet_check_is_two_small_requests(tmp_path: Path, repo: AdminRepo) -> None:
    served = tmp_path / "served"
    state = _box(tmp_path, repo)
    repo.set_config({"min_dpi": 250})
    repo.export(served)
    with serve(served) as url:
        assert update_once(state, Options(source=url)).status == "updated"
        counter = CountingFetcher(resolve_source(url).fetcher())
        report = update_once(state, Options(source=url, fetcher=counter))
    assert report.status == "up-to-date"
    assert counter.traffic.requests <= 2, counter.traffic.urls
    assert counter.traffic.bytes < 2048


def test_bundles_are_checked_on_both_sides(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels / "commune_edge-1.1-py3-none-any.whl", "commune-edge", "1.1", ["numpy>=1"])
    with pytest.raises(UpdateError, match="no wheel for numpy"):
        bundle.build(wheels, "1.1", tmp_path / "b.tar")
    with pytest.raises(UpdateError, match=r"is version 1\.1, not 1\.2"):
        bundle.build(wheels, "1.2", tmp_path / "b.tar", allow_incomplete=True)
    _wheel(wheels / "numpy-2.0-cp311-cp311-linux_x86_64.whl", "numpy", "2.0", [], evil=True)
    manifest = bundle.build(wheels, "1.1", tmp_path / "b.tar")
    assert manifest["missing"] == []
    with pytest.raises(UpdateError, match="unsafe path"):
        bundle.unpack(tmp_path / "b.tar", tmp_path / "release", "python3")


def test_one_bundle_for_several_machines_installs_what_this_one_runs(tmp_path: Path) -> None:
    """The Pi's aarch64 wheels and this machine's ride in one bundle; each box takes its own."""
    here = next(t for t in sys_tags() if t.platform != "any")
    other = "manylinux_2_17_aarch64" if "x86_64" in here.platform else "manylinux_2_17_x86_64"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels / "commune_edge-1.1-py3-none-any.whl", "commune-edge", "1.1", ["fast"])
    native = f"fast-2.0-{here.interpreter}-{here.abi}-{here.platform}.whl"
    _wheel(wheels / native, "fast", "2.0", [], module="fast_native")
    _wheel(wheels / f"fast-2.0-cp311-cp311-{other}.whl", "fast", "2.0", [], module="fast_other")
    manifest = bundle.build(wheels, "1.1", tmp_path / "b.tar")
    assert manifest["isolated"] is True

    release = tmp_path / "release"
    bundle.unpack(tmp_path / "b.tar", release, "/usr/bin/python3")
    assert (release / "site" / "fast_native").is_dir()
    assert not (release / "site" / "fast_other").exists()
    assert json.loads((release / "release.json").read_text())["wheels"] == 2

    only_other = tmp_path / "only-other"
    only_other.mkdir()
    for name in ("commune_edge-1.1-py3-none-any.whl", f"fast-2.0-cp311-cp311-{other}.whl"):
        (only_other / name).write_bytes((wheels / name).read_bytes())
    bundle.build(only_other, "1.1", tmp_path / "c.tar")
    with pytest.raises(UpdateError, match=r"no wheel of fast for this machine"):
        bundle.unpack(tmp_path / "c.tar", tmp_path / "release-c", "/usr/bin/python3")
    assert not (tmp_path / "release-c" / "release.json").exists()


def _wheel(
    path: Path,
    name: str,
    version: str,
    requires: list[str],
    evil: bool = False,
    module: str = "pkg",
) -> None:
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    meta += "Requires-Dist: colorama; sys_platform == 'win32'\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{info}/METADATA", meta)
        archive.writestr(f"{module}/__init__.py", "")
        if evil:
            archive.writestr("../../escape.py", "print('owned')")
    path.write_bytes(buffer.getvalue())


def test_trust_root_is_checked_and_pinned_once(tmp_path: Path, repo: AdminRepo) -> None:
    bogus = tmp_path / "root.json"
    bogus.write_text('{"signed": {}}')
    done = run_edge(
        "init", "--state", str(tmp_path / "s"), "--office", "H29.01", "--clerk", "lan",
        "--trust-root", str(bogus),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("edge: error: cannot use") and done.stderr.count("\n") == 1
    assert not (tmp_path / "s" / "edge.db").exists()
    state = _box(tmp_path, repo)
    repo.rotate("root")
    with pytest.raises(UpdateError, match="pinned already"):
        pin_root(state, (repo.metadata_dir / "2.root.json").read_bytes())


def test_admin_cli_errors_are_one_line(tmp_path: Path, repo: AdminRepo) -> None:
    done = run_edge("admin", "config", "--repo", str(repo.path), "--set", "colour=blue")
    assert done.returncode == 2
    assert done.stderr.startswith("edge: error: unknown setting 'colour'")
    done = run_edge("admin", "delegate", "--repo", str(tmp_path / "nowhere"), "--province", "H1")
    assert done.returncode == 2 and "no update repository" in done.stderr
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        done = run_edge("admin", "publish", "--repo", str(repo.path), "--central", url)
    assert done.returncode == 2 and f"cannot reach central at {url}" in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_daemon_hook_checks_sticks_when_inserted_and_central_on_schedule(
    tmp_path: Path, repo: AdminRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first scheduled check comes at a random moment within 10 minutes: here the last
    monkeypatch.setattr("edge.update.schedule.random.uniform", lambda low, high: high)
    media = tmp_path / "media"
    media.mkdir()
    settings = Settings().with_changes(
        update_usb_roots=[str(media)], update_url="http://central/updates", update_check_minutes=60
    )
    now = [1000.0]
    spawned: list[list[str]] = []
    hook = UpdateHook(tmp_path, settings, spawn=lambda a: spawned.append(a), clock=lambda: now[0])
    hook.started()
    assert json.loads((tmp_path / "run" / "daemon.json").read_text())["pid"] == os.getpid()
    hook.tick()
    assert spawned == []
    repo.usb(_mkdir(media / "stick"))
    now[0] += 6
    hook.tick()
    assert spawned == [["--from", str(media / "stick" / "commune-edge-updates")]]
    now[0] += 6
    hook.tick()
    assert len(spawned) == 1  # the same stick, unchanged: not checked again
    now[0] += 3600
    hook.tick()
    assert spawned[-1] == ["--from", "http://central/updates"]


def test_the_daemon_hook_beats_every_second_only_while_a_release_is_on_probation(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    hook = UpdateHook(tmp_path, Settings(), spawn=lambda a: None, clock=lambda: now[0])
    hook.started()
    first = read_heartbeat(tmp_path)
    now[0] += 5
    hook.tick()
    assert read_heartbeat(tmp_path) == first  # no probation: the SD card is spared
    (tmp_path / "run" / "probation").touch()
    for _ in range(3):
        now[0] += 1
        hook.tick()
    beat = read_heartbeat(tmp_path)
    assert beat["beats"] == 3 and beat["nonce"] == first["nonce"]
    assert beat["mono"] > first["mono"]


def _reaped_pid() -> int:
    """The pid of a process that has exited and been reaped: a daemon that crashed."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_probation_ends_in_a_reason_when_the_daemon_restarts_dies_or_hangs(
    tmp_path: Path,
) -> None:
    """A watchdog restart shows as another process (another nonce), a crash as a dead pid,
    a hang as a stale beat; a daemon beating all along passes."""
    write_heartbeat(tmp_path, nonce="first", beats=1)
    seen = read_heartbeat(tmp_path)
    assert seen is not None
    restart = threading.Timer(0.3, lambda: write_heartbeat(tmp_path, nonce="second"))
    restart.start()
    reason = watch_probation(tmp_path, __version__, seen, time.monotonic() + 20, 10)
    restart.join()
    assert reason is not None and "restarted" in reason and "watchdog" in reason, reason

    crashed = {**seen, "pid": _reaped_pid()}
    (tmp_path / "run" / "daemon.json").write_text(json.dumps(crashed))
    reason = watch_probation(tmp_path, __version__, crashed, time.monotonic() + 20, 10)
    assert reason is not None and "stopped" in reason, reason

    write_heartbeat(tmp_path, nonce="steady")
    seen = read_heartbeat(tmp_path)
    assert seen is not None
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.2):
            write_heartbeat(tmp_path, nonce="steady")

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        assert watch_probation(tmp_path, __version__, seen, time.monotonic() + 2, 1) is None
    finally:
        stop.set()
        beater.join()
    reason = watch_probation(tmp_path, __version__, seen, time.monotonic() + 5, 1)
    assert reason is not None and "stopped beating" in reason, reason


def test_the_daemon_hook_checks_at_once_when_central_says_it_serves_newer_metadata(
    tmp_path: Path, repo: AdminRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _box(tmp_path, repo)
    assert _update(state, repo.export(tmp_path / "served")).status == "up-to-date"
    now = [1000.0]
    spawned: list[list[str]] = []
    settings = Settings().with_changes(update_usb_roots=[], update_check_minutes=360)
    hook = UpdateHook(state, settings, spawn=lambda a: spawned.append(a), clock=lambda: now[0])

    def hint(version: int) -> None:
        store = Store.open(state)
        try:
            with store.transaction():
                store.put_meta("update.hint", str(version))
        finally:
            store.close()
        now[0] += 6
        hook.tick()

    verified = repo.timestamp_md().signed.version
    hint(verified)
    assert spawned == []  # nothing newer than what this box verified
    hint(verified + 1)
    assert spawned == [[]]  # a check now, from the box's usual source (central)
    hint(verified + 1)
    assert spawned == [[]]  # one check per hint, even if it found nothing for this office
    hint(verified + 2)
    assert spawned == [[], []]

    # under systemd the daemon asks edge-update.service through a request file instead
    request = tmp_path / "run" / "update-request"
    monkeypatch.setenv("EDGE_UPDATE_REQUEST", str(request))
    hint(verified + 3)
    assert spawned == [[], []] and request.exists()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_a_release_the_image_installed_as_a_venv_is_recognised(tmp_path: Path) -> None:
    release = tmp_path / "opt" / "releases" / "1.0"
    (release / "bin").mkdir(parents=True)
    (release / "bin" / "edge").write_text("#!/bin/sh\n")
    (tmp_path / "opt" / "current").symlink_to("releases/1.0")
    installer = Installer(tmp_path / "opt")
    assert installer.managed and installer.current_version() == "1.0"


def test_directory_fetcher_answers_404_for_missing_files(tmp_path: Path) -> None:
    from tuf.api.exceptions import DownloadHTTPError

    with pytest.raises(DownloadHTTPError):
        list(DirectoryFetcher()._fetch(f"file://{tmp_path}/2.root.json"))


def test_a_second_update_attempt_waits_its_turn(tmp_path: Path, repo: AdminRepo) -> None:
    """A stick starts two attempts on the image (daemon and unit): the second waits."""
    state = _box(tmp_path, repo)
    repo.set_config({"min_dpi": 280})
    served = repo.export(tmp_path / "served")
    lock = state / "update" / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with pytest.raises(UpdateError, match="another update is still running"):
        update_once(state, Options(source=str(served), lock_wait=0.3))
    releaser = threading.Timer(1.0, os.close, args=(fd,))
    releaser.start()
    started = time.monotonic()
    report = update_once(state, Options(source=str(served), lock_wait=10))
    assert report.status == "updated", report
    assert report.settings["min_dpi"][-1] == 280
    assert time.monotonic() - started >= 0.9
    releaser.join()


def test_root_keys_kept_by_custodians_sign_only_when_a_threshold_is_brought(
    tmp_path: Path,
) -> None:
    """Three custodians each hold one root key offline; any two rotate the timestamp key."""
    repo_dir = tmp_path / "repo"
    done = run_edge(
        "admin", "init", "--repo", str(repo_dir), "--threshold", "2", "--root-keys", "3"
    )
    assert done.returncode == 0, done.stderr
    sticks = [tmp_path / name for name in ("alice", "binh", "chau")]
    for stick in sticks:
        stick.mkdir()
        done = run_edge("admin", "custody", "--repo", str(repo_dir), "--role", "root",
                        "--out", str(stick))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(list(stick.glob("*.pem"))) == 1
    done = run_edge("admin", "custody", "--repo", str(repo_dir), "--role", "root",
                    "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 2 and "each is with a custodian" in done.stderr
    repo = AdminRepo(repo_dir)
    assert all(place.endswith("offline") for place in repo.status()["keys"]["root"])
    state = _box(tmp_path, repo)
    keys_before = sorted(p.name for p in repo.keys_dir.glob("*.pem"))

    rotate = ("admin", "rotate", "--repo", str(repo_dir), "--role", "timestamp")
    done = run_edge(*rotate, "--key-dir", str(sticks[0]))
    assert done.returncode == 2
    assert "needs 2 root key signature(s), 1 found" in done.stderr
    assert done.stderr.count("\n") == 1
    assert repo.root_md().signed.version == 1
    assert sorted(p.name for p in repo.keys_dir.glob("*.pem")) == keys_before

    done = run_edge(*rotate, "--key-dir", str(sticks[0]), "--key-dir", str(sticks[2]))
    assert done.returncode == 0, done.stderr
    assert repo.root_md().signed.version == 2
    report = _update(state, repo.export(tmp_path / "served"))
    assert report.status in ("updated", "up-to-date"), report
    assert report.metadata["roles"]["root"] == 2


def test_an_exported_repository_is_readable_by_the_user_that_serves_it(
    tmp_path: Path, repo: AdminRepo
) -> None:
    """Central's server and a box's updater read what regional IT's user wrote."""
    out = repo.usb(_mkdir(tmp_path / "stick"))
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.stat().st_mode & 0o044 == 0o044, f"{path} is {oct(path.stat().st_mode)}"


def test_custodians_in_different_places_sign_a_staged_root_one_after_another(
    tmp_path: Path,
) -> None:
    """Alice is at the signing machine; Chau signs a copy in another city and sends it back."""
    repo_dir = tmp_path / "repo"
    assert run_edge("admin", "init", "--repo", str(repo_dir), "--threshold", "2",
                    "--root-keys", "3").returncode == 0  # fmt: skip
    alice, binh, chau = (_mkdir(tmp_path / name) for name in ("alice", "binh", "chau"))
    for stick in (alice, binh, chau):
        run_edge("admin", "custody", "--repo", str(repo_dir), "--role", "root", "--out", str(stick))
    repo = AdminRepo(repo_dir)
    state = _box(tmp_path, repo)

    rotate = ("admin", "rotate", "--repo", str(repo_dir), "--role", "snapshot")
    done = run_edge(*rotate, "--key-dir", str(alice), "--stage")
    assert done.returncode == 0, done.stderr
    assert "root version 2 is staged" in done.stdout
    assert repo.root_md().signed.version == 1
    done = run_edge(*rotate, "--stage")
    assert done.returncode == 2 and "already staged" in done.stderr

    copy = tmp_path / "mail" / "root-for-chau.json"
    copy.parent.mkdir()
    copy.write_bytes((repo_dir / "staged" / "root.json").read_bytes())
    done = run_edge("admin", "sign", "--file", str(copy), "--key-dir", str(chau))
    assert done.returncode == 0, done.stderr

    forged = tmp_path / "mail" / "forged.json"
    md = Metadata.from_bytes(copy.read_bytes())
    md.signed.expires += timedelta(days=3650)  # what the custodian signed, stretched
    forged.write_bytes(md.to_bytes())
    done = run_edge("admin", "sign", "--repo", str(repo_dir), "--merge", str(forged))
    assert done.returncode == 2 and "is not the staged root version 2" in done.stderr

    done = run_edge("admin", "sign", "--repo", str(repo_dir), "--merge", str(copy))
    assert done.returncode == 0, done.stderr
    assert "root version 2 is signed and committed" in done.stdout
    assert repo.root_md().signed.version == 2
    assert not (repo_dir / "staged" / "root.json").exists()
    report = _update(state, repo.export(tmp_path / "served"))
    assert report.status in ("updated", "up-to-date"), report
    assert report.metadata["roles"]["root"] == 2


def test_root_expiry_is_shown_and_warned_months_ahead(tmp_path: Path) -> None:
    """Issue 16, item 7: publishing never re-signs root (its keys are with custodians), so
    its end is announced 90 days ahead: in `edge admin status` and to central's fleet page."""
    made = datetime.now(UTC).replace(microsecond=0) - timedelta(days=300)
    AdminRepo.create(tmp_path / "repo", now=lambda: made)
    today = made + timedelta(days=300, hours=1)
    repo = AdminRepo(tmp_path / "repo", now=lambda: today)
    ends = made + timedelta(days=365)
    status = repo.status()
    assert status["root_expires"] == ends.isoformat().replace("+00:00", "Z")
    root_lines = [line for line in status["warnings"] if line.startswith("root ")]
    assert root_lines == [
        f"root v1 expires on {ends:%Y-%m-%d}, in 64 day(s): the root key custodians must sign "
        "a new root before then (edge admin rotate --role root, then publish), or every box "
        "refuses every update"
    ]
    done = run_edge("admin", "status", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    assert f"edge: warning: root v1 expires on {ends:%Y-%m-%d}" in done.stderr

    # central's fleet page reads the root it serves to boxes
    central = tmp_path / "central"
    assert served_root_expiry(central) is None
    repo.export(central / "updates")
    served = served_root_expiry(central, now=today)
    assert served is not None and served.days_left == 64 and served.warning == root_lines[0]
    assert served.as_dict()["expires"] == status["root_expires"]

    # a root with more than 90 days left is not a warning
    fresh = AdminRepo.create(tmp_path / "fresh")
    assert not [line for line in fresh.warnings() if line.startswith("root ")]
    assert served_root_expiry(central, now=made).warning is None
