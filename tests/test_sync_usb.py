"""Sync by USB stick: batches out, central's receipts and downlink back, same checks.

The stick is a folder; ``edge central import`` runs against the same central
database the network path uses, so a stick and a link can be mixed freely.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from edge.store import Store
from edge.sync import client, usb
from edge.sync.central.importer import import_stick
from edge.vault import Keyring
from tests.syncutil import PASSWORD, CentralServer, box_chain, box_dossiers, central_chain

EDGE = [sys.executable, "-m", "edge.cli"]


def edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=120, check=False)


def enroll(state: Path, server: CentralServer) -> str:
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        token = server.central.issue_token("H29.01")
        return client.enroll(state, server.url, token, session=session)["device"]
    finally:
        session.close()


def test_a_stick_carries_everything_and_brings_receipts_and_statuses_back(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    device = enroll(box, central)
    stick = tmp_path / "stick"
    out = edge("sync", "--state", str(box), "--to-dir", str(stick), "--json")
    assert out.returncode == 0, out.stderr
    written = json.loads(out.stdout)
    assert written["batches"] >= 1 and written["blobs"] >= 1
    assert {d["sync"] for d in box_dossiers(box)} == {"sent"}
    # nothing on the stick is readable: blobs are sealed, batches carry sealed payloads
    first_code = box_dossiers(box)[0]["code"]
    for path in (stick / usb.ROOT).rglob("*"):
        if path.is_file() and path.suffix != ".json":
            assert first_code.encode() not in path.read_bytes()

    data = str(central.central.data)
    imported = edge("central", "import", "--data", data, str(stick), "--json", *_db(central))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["accepted"] == written["batches"]
    # carried twice: the same receipts, nothing stored twice
    again = edge("central", "import", "--data", data, str(stick), "--json", *_db(central))
    assert again.returncode == 0 and json.loads(again.stdout)["already"] == written["batches"]
    assert central_chain(central.central, device) == box_chain(box)

    central.central.notify(first_code, 9, "kết quả đã sẵn sàng")
    edge("central", "import", "--data", data, str(stick), *_db(central))
    back = edge("sync", "--state", str(box), "--from-dir", str(stick), "--json")
    report = json.loads(back.stdout)
    assert report["receipts"] == written["batches"] and report["downlink"]["status"] == 1
    # the status became an event the box still has to send; the dossiers themselves arrived
    rows = {d["code"]: d for d in box_dossiers(box)}
    assert rows[first_code]["central_status"] == 9
    assert all(d["sync"] == "acknowledged" for c, d in rows.items() if c != first_code)
    # taking the same answer in twice changes nothing
    twice = json.loads(edge("sync", "--state", str(box), "--from-dir", str(stick), "--json").stdout)
    assert twice["receipts"] == written["batches"] and sum(twice["downlink"].values()) == 0
    # the stick's clock statement answered this box's own request: the time floor moved
    store = Store.open(box)
    try:
        assert store.clock.floor_ms >= central.central.now() - 60_000
    finally:
        store.close()


def test_a_corrupted_file_on_the_stick_is_refused_and_the_next_trip_completes(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    device = enroll(box, central)
    stick = tmp_path / "stick"
    written = usb.to_dir(box, stick, policy_events=3)
    assert written["batches"] >= 2
    folder = usb.device_folder(stick, device)
    victim = sorted((folder / "blobs").iterdir())[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    report = import_stick(central.central, stick)
    codes = {r["code"] for r in report["rejected"]}
    assert "checksum_mismatch" in codes and "blobs_missing" in codes
    assert not central.central.blobs.has(victim.name)
    # what was accepted is a clean prefix of the box's chain; nothing broken was stored
    held = central_chain(central.central, device)
    assert held == box_chain(box)[: len(held)] and len(held) < len(box_chain(box))
    taken = usb.from_dir(box, stick)
    assert taken["receipts"] == report["accepted"] and not taken["done"]

    fresh = tmp_path / "stick-2"
    shutil.rmtree(stick)
    usb.to_dir(box, fresh)
    second = import_stick(central.central, fresh)
    assert second["rejected"] == []
    assert usb.from_dir(box, fresh)["done"]
    assert central_chain(central.central, device) == box_chain(box)
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}


def _db(server: CentralServer) -> list[str]:
    url = server.central.engine.url
    if url.get_backend_name() == "sqlite":
        return []
    return ["--db", url.render_as_string(hide_password=False)]
