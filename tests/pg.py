"""A throwaway PostgreSQL for the tests: the one in ``EDGE_TEST_PG``, or one started here.

When ``EDGE_TEST_PG`` (a ``postgresql://`` URL with rights to create databases)
is not set, the session starts its own cluster from Debian's packages
(``/usr/lib/postgresql/*/bin``) in a temporary folder on a free loopback port,
as the ``postgres`` user when the tests run as root, and removes it at the end.
Without the binaries the PostgreSQL tests are skipped, unless ``CI`` is set:
then they fail, because CI installs PostgreSQL (``make system-deps``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A PostgreSQL server: started here, or the one a URL points at."""

    def __init__(
        self,
        admin_url: str,
        folder: Path | None = None,
        bindir: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.folder = folder
        self.bindir = bindir
        self.user = user

    @classmethod
    def start(cls, *, fsync: bool = False) -> Cluster:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql")
        folder = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        port = _free_port()
        data = folder / "data"

        def run(*args: str) -> None:
            command = [*(["runuser", "-u", user, "--"] if user else []), *args]
            subprocess.run(command, check=True, capture_output=True, timeout=120)

        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            f"-c fsync={'on' if fsync else 'off'} -c synchronous_commit={'on' if fsync else 'off'} "
            "-c full_page_writes=off -c shared_buffers=64MB"
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return cls(url, folder, bindir, user)

    def create_database(self) -> str:
        name = f"edge_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def stop(self) -> None:
        if self.folder is None or self.bindir is None:
            return
        command = [
            *(["runuser", "-u", self.user, "--"] if self.user else []),
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.folder / "data"),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]
        subprocess.run(command, capture_output=True, timeout=60, check=False)
        time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)
