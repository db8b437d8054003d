"""The sync part of ``make demo``: a central on loopback, the demo box enrolled, dossiers arriving.

Central runs as its own ``edge central serve`` process, as in production; the
demo then plays regional IT (a token), the box (enroll, one sync round), the
province (a 'result ready' status) and the box again (the status arrives).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from edge.store import Store
from edge.sync.central.receiver import Central
from edge.sync.client import enroll, sync_once
from edge.update import demo as update_demo
from edge.vault import Keyring

RESULT_READY = 9


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("central exited before it was ready")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("central did not start in time")


def show_central(base: Path, state: Path, clerk: str, password: str) -> None:
    data = base / "central"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "edge.cli",
        "central",
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(url, proc)
        print(f"\nCentral is listening on {url} (data in {data})")
        central = Central(data)
        store = Store.open(state)
        office = store.meta("office") or "H29.01"
        store.close()
        updates = update_demo.prepare(base, data)
        token = central.issue_token(office)
        session = Keyring.load(state).unlock(clerk, password)
        try:
            enrolled = enroll(state, url, token, session=session)
        finally:
            session.close()
        print(
            f"Box enrolled as device {enrolled['device']}; "
            f"{enrolled['rewrapped_keys']} data key(s) re-wrapped to central; "
            f"update root {enrolled['update_root']}"
        )
        report = sync_once(state)
        print(
            f"Sync: {report.batches} batch(es), {report.events} event(s), {report.blobs} sealed "
            f"page(s) ({report.blob_bytes / 1e6:.1f} MB) acknowledged; done={report.done}"
        )
        held = central.list_dossiers()
        print(f"\nCentral now holds {len(held)} dossier(s):")
        for row in held:
            readable = "readable" if row["readable"] else "keys pending"
            print(
                f"  {row['code'] or '(unassigned)':32} {row['pages']:3} page(s) "
                f"{row['events']:3} event(s)  {readable}"
            )
        coded = next((row["code"] for row in held if row["code"]), None)
        if coded:
            central.notify(coded, RESULT_READY, "Đã có kết quả, mời công dân đến nhận")
            sync_once(state)
            store = Store.open(state)
            try:
                rows = store.list_dossiers()
            finally:
                store.close()
            print("\nOn the box after the next round (edge dossiers --json):")
            for row in rows:
                print(
                    f"  {row['code'] or '(chưa gán mã)':32} sync={row['sync']:13} "
                    f"central_status={row['central_status']}"
                )
        update_demo.publish_and_update(updates, url, state)
        central.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
