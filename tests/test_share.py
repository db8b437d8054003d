"""The copiers' scan-to-folder share, with a real smbd and a real daemon.

``edge share enable`` writes the configuration and the account; a real smbd serves it on
a free loopback port, with every one of its databases, locks and logs in temporary
folders. The share's two Unix users (the daemon's ``edge`` and the copier's
``edge-scan``) exist only inside private mount namespaces, where a copy of /etc/passwd
and /etc/group is bind-mounted over the machine's, so nothing system-wide changes.
smbclient plays the copier: it writes a multi-page PDF slowly, chunk by chunk, and
``edge run`` (as the share's owner, with polling switched on by the share, not by a
flag) must file it once, whole.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge import samples
from edge.provision import provision
from edge.samples import DossierSpec
from edge.share import ACCOUNT, SHARE, SambaDirs, ShareSpec, render, render_off
from edge.store import Store

EDGE = [sys.executable, "-m", "edge.cli"]
REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="smbd must run as root to switch to the share's users"
)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run 'make system-deps' (it installs it with apt)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_id(start: int) -> int:
    import grp

    for candidate in range(start, start + 1000):
        try:
            pwd.getpwuid(candidate)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(candidate)
        except KeyError:
            return candidate
    raise AssertionError("no free uid/gid")


@dataclass
class World:
    base: Path
    inbox: Path
    state: Path
    samba: Path
    port: int
    uid: int
    gid: int
    passwd: Path
    group: Path
    password: str = ""
    smbd: subprocess.Popen | None = None

    @property
    def conf(self) -> Path:
        return self.samba / "smb.conf"

    def ns(self, argv: list[str]) -> list[str]:
        """``argv`` in a private mount namespace that knows the share's two users."""
        script = (
            'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"'
        )
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "edge-share-ns",
            str(self.passwd),
            str(self.group),
            *argv,
        ]

    def edge(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            self.ns([*EDGE, *args]), capture_output=True, text=True, env=env, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"edge {' '.join(args[:2])} failed: {result.stdout}{result.stderr}"
            )
        return result

    def client(
        self,
        *args: str,
        user: str | None = None,
        stdin: int | None = None,
        protocol: str = "SMB3",
    ) -> list[str]:
        user = user if user is not None else f"{ACCOUNT}%{self.password}"
        auth = ["-N"] if user == "" else ["-U", user]
        return [
            "smbclient",
            "-s",
            str(self.base / "client.conf"),
            "-p",
            str(self.port),
            "-m",
            protocol,
            *auth,
            *args,
        ]

    def smb(
        self, command: str, *, user: str | None = None, protocol: str = "SMB3", extra=()
    ) -> subprocess.CompletedProcess[str]:
        argv = self.client(
            f"//127.0.0.1/{SHARE}", *extra, "-c", command, user=user, protocol=protocol
        )
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _users(world: World) -> None:
    scan_uid = free_id(world.uid + 1)
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    passwd += f"edge:x:{world.uid}:{world.gid}:Commune Edge box:/nonexistent:/usr/sbin/nologin\n"
    passwd += f"{ACCOUNT}:x:{scan_uid}:{scan_uid}:copier:/nonexistent:/usr/sbin/nologin\n"
    group += f"edge:x:{world.gid}:\n{ACCOUNT}:x:{scan_uid}:\n"
    world.passwd.write_text(passwd)
    world.group.write_text(group)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for name in ("smbd", "smbclient", "smbpasswd", "pdbedit", "testparm", "unshare", "ip"):
        tool(name)
    tmp = tmp_path_factory.mktemp("share")
    # smbd works in the share as the forced user, who must reach it: a folder outside
    # pytest's root-only temporary tree
    base = Path(tempfile.mkdtemp(prefix="edge-share-"))
    base.chmod(0o711)
    uid = free_id(61000)
    w = World(
        base=base,
        inbox=base / "inbox",
        state=base / "state",
        samba=tmp / "samba",
        port=free_port(),
        uid=uid,
        gid=uid,
        passwd=tmp / "passwd",
        group=tmp / "group",
    )
    _users(w)
    (base / "client.conf").write_text("[global]\n")
    w.inbox.mkdir(mode=0o770)
    os.chown(w.inbox, w.uid, w.gid)
    provision(w.state, office="H29.01", clerk="lan", password="mat-khau-thu-nghiem")
    for root, dirs, files in os.walk(w.state):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, w.uid, w.gid)
    try:
        yield w
    finally:
        if w.smbd is not None and w.smbd.poll() is None:
            os.killpg(w.smbd.pid, signal.SIGTERM)
            try:
                w.smbd.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(w.smbd.pid, signal.SIGKILL)
                w.smbd.wait(timeout=15)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def served(world: World) -> World:
    """``edge share enable`` as a technician runs it, then smbd on its configuration."""
    out = world.edge(
        "share",
        "enable",
        "--state",
        str(world.state),
        "--inbox",
        str(world.inbox),
        "--interface",
        "lo",
        "--samba-dir",
        str(world.samba),
        "--port",
        str(world.port),
        "--no-service",
    ).stdout
    found = re.search(r"password: (\S+)\s+<- shown once", out)
    assert found, out
    world.password = found.group(1)
    assert f"user:     {ACCOUNT}" in out and f"\\\\127.0.0.1\\{SHARE}" in out
    log = world.samba / "smbd.stdout"
    world.smbd = subprocess.Popen(
        # a copier writes its file in pieces of 64 KiB or so; smbd would let smbclient
        # send 8 MiB at once, so the test's server asks for small writes
        world.ns(
            [
                *("smbd", "-F", "--no-process-group", "-s", str(world.conf)),
                *("--option=smb2 max write=65536", "--option=smb2 max credits=4"),
            ]
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert world.smbd.poll() is None, log.read_text(errors="replace")
        try:
            with socket.create_connection(("127.0.0.1", world.port), timeout=1):
                return world
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"smbd did not listen on {world.port}: {log.read_text(errors='replace')}")


def settings(state: Path) -> dict:
    store = Store.open(state)
    try:
        return store.settings().as_dict()
    finally:
        store.close()


def test_generated_configuration_serves_one_folder_and_nothing_else(tmp_path: Path) -> None:
    import ipaddress

    spec = ShareSpec(
        inbox=Path("/srv/edge/inbox"),
        interfaces=("eth0",),
        subnets=(ipaddress.ip_network("192.168.1.0/24"),),
        owner="edge",
        group="edge",
        dirs=SambaDirs.under(tmp_path),
    )
    spec.dirs.create()
    for text, sections in ((render(spec), ["global", SHARE]), (render_off(), ["global"])):
        conf = tmp_path / "smb.conf"
        conf.write_text(text)
        dump = subprocess.run(
            [tool("testparm"), "-s", "-v", "--suppress-prompt", str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert re.findall(r"^\[(\w+)\]", dump, re.M) == sections
        values = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition("=") for line in dump.splitlines() if "=" in line)
        )
        assert values["server min protocol"] == "SMB2_02"
        assert values["map to guest"] == "Never"
        assert values["restrict anonymous"] == "2"
        assert values["load printers"] == "No" and values["disable spoolss"] == "Yes"
        assert values["bind interfaces only"] == "Yes"
        assert values["hosts deny"] == "ALL"
        assert "homes" not in dump and "printers" not in dump.replace("load printers", "")
        assert "guest ok = Yes" not in dump
    text = render(spec)
    assert "interfaces = lo eth0" in text
    assert "hosts allow = 127.0.0.1 ::1 192.168.1.0/24" in text
    assert "force user = edge" in text and "create mask = 0660" in text


def test_enable_switches_polling_on_and_keeps_the_database_owner(served: World) -> None:
    assert settings(served.state)["use_polling"] is True
    for path in served.state.iterdir():
        assert path.stat().st_uid == served.uid, path
    status = json.loads(
        served.edge(
            "share",
            "status",
            "--state",
            str(served.state),
            "--samba-dir",
            str(served.samba),
            "--no-service",
            "--json",
        ).stdout
    )
    assert status["share"] == "on" and status["account"] is True
    assert status["use_polling"] is True and status["problems"] == []
    assert "127.0.0.0/8" in status["allowed"]


def test_a_copier_scan_written_slowly_is_captured_once_whole(served: World, tmp_path: Path) -> None:
    code = samples.sample_codes(1, seed=17)[0]
    job = samples.write_job(tmp_path / "job", [DossierSpec(code, 5)], "pdf", seed=17)
    data = job.paths[0].read_bytes()
    pages = job.expected[0].pages
    assert pages == 6 and len(data) > 200_000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen(
        [
            *EDGE,
            *("run", "--state", str(served.state), "--inbox", str(served.inbox)),
            *("--settle", "2", "--idle", "2", "--http-port", "0"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the copier: one open file, written part by part as the pages come off the
        # scanner (smbclient sends what it reads from a pipe we feed slowly, in writes of
        # at most 64 KiB, as smbd is told to negotiate below)
        copier_log = (tmp_path / "copier.log").open("wb")
        copier = subprocess.Popen(
            served.client(f"//127.0.0.1/{SHARE}", "-c", "put - scan_0001.pdf"),
            stdin=subprocess.PIPE,
            stdout=copier_log,
            stderr=subprocess.STDOUT,
        )
        assert copier.stdin is not None
        target = served.inbox / "scan_0001.pdf"
        step = len(data) // 12 + 1
        sizes: list[int] = []
        for offset in range(0, len(data), step):
            copier.stdin.write(data[offset : offset + step])
            copier.stdin.flush()
            time.sleep(0.6)
            if target.exists():
                st = target.stat()
                sizes.append(st.st_size)
                assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (
                    served.uid,
                    served.gid,
                    0o660,
                )
        copier.stdin.close()
        copier.wait(timeout=60)
        copier_log.close()
        assert copier.returncode == 0, (tmp_path / "copier.log").read_text(errors="replace")
        # the file really arrived in pieces, the way a slow copier writes it
        assert len(set(sizes)) >= 3 and sizes[0] < len(data), sizes
        deadline = time.monotonic() + 60
        while any(served.inbox.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(served.inbox.iterdir()), list(served.inbox.iterdir())
    finally:
        daemon.send_signal(signal.SIGTERM)
        log = daemon.communicate(timeout=30)[1]
    assert daemon.returncode == 0, log
    assert "(polling)" in log, log
    assert "Traceback" not in log
    result = subprocess.run(
        [*EDGE, "dossiers", "--state", str(served.state), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    rows = json.loads(result.stdout)
    assert [(d["code"], d["pages"], d["sources"]) for d in rows] == [
        (code, pages, ["scan_0001.pdf"])
    ], log
    store = Store.open(served.state)
    try:
        assert store.list_quarantine() == []
    finally:
        store.close()


def test_the_daemons_user_can_read_and_remove_what_a_copier_wrote(
    served: World, tmp_path: Path
) -> None:
    local = tmp_path / "page.jpg"
    local.write_bytes(b"\xff\xd8" + os.urandom(4096))
    result = served.smb(f"mkdir job-7; put {local} job-7/page.jpg")
    assert result.returncode == 0, result.stdout
    folder, page = served.inbox / "job-7", served.inbox / "job-7" / "page.jpg"
    assert (folder.stat().st_uid, folder.stat().st_mode & 0o777) == (served.uid, 0o770)
    assert (page.stat().st_uid, page.stat().st_gid, page.stat().st_mode & 0o777) == (
        served.uid,
        served.gid,
        0o660,
    )
    as_edge = ["setpriv", f"--reuid={served.uid}", f"--regid={served.gid}", "--clear-groups"]
    read = subprocess.run(
        [*as_edge, "sh", "-c", 'cat "$1" && rm "$1" && rmdir "$2"', "sh", str(page), str(folder)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert read.stdout == local.read_bytes()
    assert not folder.exists()


def test_guests_anonymous_and_wrong_passwords_are_refused(served: World) -> None:
    assert served.smb("ls").returncode == 0
    for user in ("", "guest%", "nobody%", f"{ACCOUNT}%wrong-password"):
        result = served.smb("ls", user=user)
        assert result.returncode != 0, (user, result.stdout)
        assert re.search(r"NT_STATUS_(LOGON_FAILURE|ACCESS_DENIED)", result.stdout + result.stderr)
    listing = subprocess.run(
        served.client("-L", "//127.0.0.1", user=""), capture_output=True, text=True, timeout=60
    )
    assert listing.returncode != 0 and SHARE not in listing.stdout


def test_smb1_is_refused(served: World) -> None:
    result = served.smb("ls", protocol="NT1", extra=("--option=client min protocol=NT1",))
    assert result.returncode != 0
    assert "NT_STATUS_" in result.stdout + result.stderr
    assert served.smb("ls", protocol="SMB2").returncode == 0


def test_names_outside_the_folder_never_leave_it(served: World, tmp_path: Path) -> None:
    """``..`` in every command a copier could send stays inside the share.

    smbclient folds ``..`` into the share's root before sending (as Windows does), so what
    this proves is the end result: nothing appears, is listed or is read outside the folder.
    """
    local = tmp_path / "escape.pdf"
    local.write_bytes(b"%PDF-1.4\n")
    before = sorted(p.name for p in served.base.iterdir())
    for command in (
        f"put {local} ../escape.pdf",
        f"put {local} ..\\escape.pdf",
        f"cd ..; put {local} escape.pdf",
        f"put {local} sub/../../escape.pdf",
        f"put {local} a.pdf; rename a.pdf ..\\b.pdf",
        f"put {local} a.pdf; hardlink a.pdf ..\\h.pdf",
        "mkdir ..\\outside",
    ):
        served.smb(command)
        assert sorted(p.name for p in served.base.iterdir()) == before, command
    listing = served.smb("cd ..\\..; ls").stdout
    assert "state" not in listing and "client.conf" not in listing
    for stray in sorted(served.inbox.rglob("*"), reverse=True):
        stray.rmdir() if stray.is_dir() else stray.unlink()
    # a link inside the share that points out of it leads nowhere
    os.symlink("/etc", served.inbox / "etc")
    try:
        result = served.smb(f"get etc/passwd {tmp_path / 'passwd'}")
        assert result.returncode != 0 and not (tmp_path / "passwd").exists()
    finally:
        (served.inbox / "etc").unlink()


def test_disable_removes_the_share_and_the_account(served: World) -> None:
    served.edge(
        "share",
        "disable",
        "--state",
        str(served.state),
        "--samba-dir",
        str(served.samba),
        "--no-service",
    )
    assert settings(served.state)["use_polling"] is False
    listed = subprocess.run(
        served.ns(["pdbedit", "-s", str(served.conf), "-L"]), capture_output=True, text=True
    )
    assert ACCOUNT not in listed.stdout
    assert f"[{SHARE}]" not in served.conf.read_text()
    # smbd reads the new configuration for each new connection
    result = served.smb("ls")
    assert result.returncode != 0
