"""FTP for old copiers (edge/ftp.py), as a technician sets it up and a copier uses it.

``edge share enable --ftp`` writes the server's settings; ``edge share serve-ftp`` (what
edge-ftp.service runs) serves them in a process of its own on 127.0.0.1; Python's ftplib
plays the copier. Nothing is mocked: a real FTP server, real files, a real capture.
"""

from __future__ import annotations

import ftplib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge import samples
from edge.ftp import hash_password, password_matches
from edge.provision import provision
from edge.samples import DossierSpec
from edge.share import ACCOUNT

REPO = Path(__file__).resolve().parent.parent
EDGE = [sys.executable, "-m", "edge.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "EDGE_PASSWORD": "mat-khau-thu-nghiem"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="'edge share' runs as root")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def edge(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, env=ENV, timeout=120, cwd=REPO
    )
    if check and result.returncode != 0:
        raise AssertionError(f"edge {' '.join(args[:2])}: {result.stdout}{result.stderr}")
    return result


@dataclass
class Office:
    state: Path
    inbox: Path
    conf: Path
    port: int
    password: str
    server: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.stop()
        self.server = subprocess.Popen(
            [*EDGE, "share", "serve-ftp", "--conf", str(self.conf)],
            env=ENV,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.server.poll() is None, self.server.communicate()[0]
            time.sleep(0.1)
        raise AssertionError("the FTP server did not start listening within 30 s")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=15)
        self.server = None

    def copier(self, password: str | None = None) -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=20)
        ftp.login(ACCOUNT, self.password if password is None else password)
        return ftp


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    state, inbox, conf = tmp_path / "state", tmp_path / "inbox", tmp_path / "ftp.json"
    inbox.mkdir()
    provision(state, office="H29.01", clerk="lan", password="mat-khau-thu-nghiem")
    port = free_port()
    out = edge(
        *("share", "enable", "--ftp", "--no-service", "--ftp-conf", str(conf)),
        *("--state", str(state), "--inbox", str(inbox), "--interface", "lo"),
        *("--address", "127.0.0.1", "--port", str(port)),
    ).stdout
    found = re.search(r"password: (\S+)\s+<- shown once", out)
    assert found, out
    assert f"user: {ACCOUNT}" in out and f"server: 127.0.0.1  port {port}" in out
    place = Office(state, inbox, conf, port, found.group(1))
    place.start()
    try:
        yield place
    finally:
        place.stop()


def test_the_password_is_kept_as_a_hash_readable_by_the_servers_group_only(
    office: Office,
) -> None:
    text = office.conf.read_text()
    assert office.password not in text
    assert office.conf.stat().st_mode & 0o777 == 0o640
    stored = json.loads(text)["password_hash"]
    assert password_matches(stored, office.password)
    assert not password_matches(stored, office.password + "x")
    assert not password_matches("md5$00$00", office.password)
    assert hash_password("a") != hash_password("a")  # salted


def test_a_copier_scan_arrives_whole_and_is_captured(office: Office, tmp_path: Path) -> None:
    code = samples.sample_codes(1, seed=31)[0]
    job = samples.write_job(tmp_path / "job", [DossierSpec(code, 3)], "pdf", seed=31)
    data = job.paths[0].read_bytes()
    seen: list[list[str]] = []

    def watching(_block: bytes) -> None:
        # what capture would see while the copier is still sending
        seen.append(sorted(p.name for p in office.inbox.iterdir() if not p.name.startswith(".")))
        time.sleep(0.01)

    ftp = office.copier()
    with open(job.paths[0], "rb") as source:
        ftp.storbinary("STOR scan_0001.pdf", source, blocksize=32 * 1024, callback=watching)
    ftp.quit()
    assert len(seen) >= 3 and all(names == [] for names in seen[:-1]), seen
    landed = office.inbox / "scan_0001.pdf"
    assert landed.read_bytes() == data
    assert [p.name for p in office.inbox.iterdir()] == ["scan_0001.pdf"]  # no part left
    assert landed.stat().st_mode & 0o777 == 0o660  # the daemon's group reads and removes it
    report = json.loads(
        edge(
            *("capture", "--state", str(office.state), "--inbox", str(office.inbox)),
            *("--once", "--json", "--settle", "0"),
        ).stdout
    )
    assert report["pages"] == job.expected[0].pages
    rows = json.loads(edge("dossiers", "--state", str(office.state), "--json").stdout)
    assert [(d["code"], d["pages"]) for d in rows] == [(code, job.expected[0].pages)]


def test_a_second_scan_of_the_same_name_never_replaces_the_first(office: Office) -> None:
    ftp = office.copier()
    for body in (b"first", b"second", b"third"):
        ftp.storbinary("STOR scan.pdf", _reader(body))
    ftp.quit()
    kept = {p.name: p.read_bytes() for p in office.inbox.iterdir()}
    assert kept == {"scan.pdf": b"first", "scan (2).pdf": b"second", "scan (3).pdf": b"third"}


def test_an_interrupted_transfer_leaves_nothing_for_capture(office: Office) -> None:
    ftp = office.copier()
    ftp.voidcmd("TYPE I")
    data = ftp.transfercmd("STOR cut.pdf")
    data.sendall(b"%PDF-1.7\n" + b"x" * 200_000)
    data.close()  # the copier lost power: the server sees the data connection end early
    ftp.sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = sorted(p.name for p in office.inbox.iterdir())
        if names and not any(n.startswith(".") for n in names):
            break
        time.sleep(0.1)
    # In stream mode the end of the data connection IS the end of the file, so the server
    # cannot tell this cut from a short file: it is renamed into place whole as sent, no
    # part is left behind, and capture's own checks quarantine the truncated PDF.
    assert names == ["cut.pdf"], names
    assert (office.inbox / "cut.pdf").stat().st_size == 200_009


def test_an_aborted_transfer_leaves_nothing_at_all(office: Office) -> None:
    ftp = office.copier()
    ftp.voidcmd("TYPE I")
    data = ftp.transfercmd("STOR aborted.pdf")
    data.sendall(b"%PDF-1.7\n" + b"x" * 100_000)
    time.sleep(0.3)
    ftp.abort()  # the copier's stop key: ABOR while the data connection is still open
    data.close()
    ftp.quit()
    deadline = time.monotonic() + 10
    while any(office.inbox.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(office.inbox.iterdir()) == []


def test_wrong_passwords_other_users_and_anonymous_are_refused(office: Office) -> None:
    with pytest.raises(ftplib.error_perm, match="530"):
        office.copier(password="doan-bua")
    for user in ("anonymous", "root", "edge"):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", office.port, timeout=20)
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login(user, office.password)
        ftp.close()
    assert list(office.inbox.iterdir()) == []


def test_a_copier_only_stores_it_never_reads_removes_or_leaves_the_folder(
    office: Office, tmp_path: Path
) -> None:
    (office.inbox / "citizen.pdf").write_bytes(b"%PDF-1.7 someone else's scan")
    ftp = office.copier()
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.retrbinary("RETR citizen.pdf", lambda _b: None)
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.delete("citizen.pdf")
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.storbinary("APPE citizen.pdf", _reader(b"more"))
    ftp.storbinary("STOR ../../escape.pdf", _reader(b"out?"))
    ftp.quit()
    assert (
        not (tmp_path / "escape.pdf").exists() and not (office.inbox.parent / "escape.pdf").exists()
    )
    assert (office.inbox / "escape.pdf").read_bytes() == b"out?"
    assert (office.inbox / "citizen.pdf").read_bytes() == b"%PDF-1.7 someone else's scan"


def test_a_client_outside_the_office_network_is_hung_up_on(office: Office) -> None:
    spec = json.loads(office.conf.read_text())
    spec["subnets"] = ["10.9.8.0/24"]
    office.conf.write_text(json.dumps(spec))
    office.start()
    ftp = ftplib.FTP()
    with pytest.raises(ftplib.error_temp, match="421"):
        ftp.connect("127.0.0.1", office.port, timeout=20)
    ftp.close()


def test_a_new_password_replaces_the_old_and_disable_removes_it_all(office: Office) -> None:
    out = edge("share", "password", "--ftp", "--no-service", "--ftp-conf", str(office.conf)).stdout
    new = re.search(rf"new password for {ACCOUNT}: (\S+)", out)
    assert new, out
    office.start()  # what systemctl restart does on the box
    with pytest.raises(ftplib.error_perm, match="530"):
        office.copier()
    office.copier(password=new.group(1)).quit()
    status = json.loads(
        edge("share", "status", "--ftp", "--json", "--ftp-conf", str(office.conf)).stdout
    )
    assert status["ftp"] == "on" and "127.0.0.0/8" in status["allowed"]
    office.stop()
    edge(
        *("share", "disable", "--ftp", "--no-service", "--ftp-conf", str(office.conf)),
        *("--state", str(office.state)),
    )
    assert not office.conf.exists()
    served = edge("share", "serve-ftp", "--conf", str(office.conf), check=False)
    assert served.returncode != 0 and "FTP for copiers is off" in served.stderr


def _reader(body: bytes) -> io.BytesIO:
    return io.BytesIO(body)
