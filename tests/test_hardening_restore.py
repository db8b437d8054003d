"""Central restored from an older backup: the box notices and sends again what was lost.

Issue 11, item 6: central lost 7 dossiers to a restore; the box synced, said
``done``, kept every dossier "acknowledged" and its health summary said acked_seq
176 against central's head 118. Here central's data folder is copied while it is
stopped, more is synced, central is stopped, the old copy is put back and central
restarted: every dossier must be back at central, readable, with the chain
continuing from central's last accepted event, and the box must say so (health
alert, which the fleet page shows). Over the network and by USB stick.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from edge.observe.health import health_summary
from edge.store import Store
from edge.sync import SyncError, client, outbox, usb
from edge.sync.central.importer import import_stick
from edge.sync.central.receiver import Central
from edge.sync.contract import Head
from edge.vault import Keyring
from tests.syncutil import (
    FAST,
    PASSWORD,
    CentralServer,
    box_chain,
    box_dossiers,
    capture,
    central_chain,
)

ALERT = "central_lost_data"  # the health alert's name (outbox.LOST_ALERT)


@contextmanager
def serving(data: Path, box: Path) -> Iterator[CentralServer]:
    """Central on its data folder (a new port each start), with the box pointed at it."""
    with CentralServer(data) as server:
        store = Store.open(box)
        try:
            with store.transaction():
                store.conn.execute("UPDATE sync_enrollment SET central_url = ?", (server.url,))
        finally:
            store.close()
        yield server


def enroll(box: Path, server: CentralServer) -> str:
    session = Keyring.load(box).unlock("lan", PASSWORD)
    try:
        token = server.central.issue_token("H29.01")
        return client.enroll(box, server.url, token, session=session)["device"]
    finally:
        session.close()


def central_codes(central: Central) -> dict[str, bool]:
    return {d["code"]: d["readable"] for d in central.list_dossiers()}


def restore(data: Path, backup: Path) -> None:
    shutil.rmtree(data)
    shutil.copytree(backup, data)


def summary_alerts(box: Path) -> dict[str, str]:
    store = Store.open(box)
    try:
        return dict(health_summary(store, box)["alerts"])
    finally:
        store.close()


@pytest.fixture
def restored(tmp_path: Path, box: Path) -> dict:
    """A box whose central was restored from a backup older than its last syncs."""
    data = tmp_path / "central"
    backup = tmp_path / "backup"
    with serving(data, box) as server:
        device = enroll(box, server)
        assert client.sync_once(box, policy=FAST).done
        held = central_chain(server.central, device)
    shutil.copytree(data, backup)  # central is stopped: a consistent copy
    with serving(data, box) as server:
        lost = capture(box, tmp_path / "inbox-2", dossiers=3, pages=1, seed=41, name="later")
        assert client.sync_once(box, policy=FAST).done
        assert set(lost) <= set(central_codes(server.central))
    restore(data, backup)
    with serving(data, box) as server:
        assert central_chain(server.central, device) == held  # the restore lost the rest
        assert not set(lost) & set(central_codes(server.central))
    store = Store.open(box)
    try:
        acked = outbox.acked_through(store)
    finally:
        store.close()
    assert acked > held[-1][0]
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}  # what the box believed
    return {"data": data, "device": device, "lost": lost, "head": held[-1][0], "acked": acked}


def test_a_restored_central_gets_back_every_dossier_over_the_network(
    box: Path, restored: dict
) -> None:
    with serving(restored["data"], box) as server:
        report = client.sync_once(box, policy=FAST)
        assert report.done, report.error
        # the chain continues from central's last accepted event, and every dossier is back
        assert central_chain(server.central, restored["device"]) == box_chain(box)
        assert report.central_lost_events == restored["acked"] - restored["head"]
        codes = central_codes(server.central)
        assert {d["code"] for d in box_dossiers(box)} <= set(codes)
        assert all(codes.values()), codes  # readable: the data-key wraps went again too
        assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}
        # the box says so: health alert, carried to central's fleet page
        alerts = summary_alerts(box)
        assert ALERT in alerts and "central had lost events" in alerts[ALERT]
        assert "sent them again" in alerts[ALERT]
        fleet = httpx.get(f"{server.url}/fleet.json", timeout=30).json()
        (entry,) = [b for b in fleet["boxes"] if b["device"] == restored["device"]]
        assert ALERT in entry["alerts"]
        # a later round finds central level with the box: nothing more is sent
        again = client.sync_once(box, policy=FAST)
        assert again.done and again.central_lost_events == 0 and again.batches == 0


def test_a_restored_central_gets_back_every_dossier_by_stick(
    tmp_path: Path, box: Path, restored: dict
) -> None:
    central = Central(restored["data"])
    try:
        stick = tmp_path / "stick"
        usb.to_dir(box, stick)  # nothing is pending as far as the box knows
        import_stick(central, stick)
        taken = usb.from_dir(box, stick)
        written = usb.to_dir(box, stick)
        second = import_stick(central, stick)
        last = usb.from_dir(box, stick)
        # every dossier is back, on the chain that continues from central's head
        assert central_chain(central, restored["device"]) == box_chain(box)
        codes = central_codes(central)
        assert {d["code"] for d in box_dossiers(box)} <= set(codes) and all(codes.values())
        assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}
        # central's signed answer carried its head: the first trip back told the box
        assert taken.get("central_lost_events") == restored["acked"] - restored["head"]
        assert not taken["done"] and last["done"]
        assert written["events"] >= len(restored["lost"])
        assert second["rejected"] == [], second
        assert ALERT in summary_alerts(box)
    finally:
        central.close()


def test_a_central_with_another_history_is_refused_not_overwritten(
    box: Path, restored: dict
) -> None:
    """A head that is not one of this box's own events is not a loss: stop, say who to call."""
    store = Store.open(box)
    try:
        with pytest.raises(SyncError) as refused:
            outbox.rewind_to_central(store, Head(seq=restored["head"], hash="ab" * 32), via="test")
        assert "different history" in str(refused.value) and "\n" not in str(refused.value)
        assert outbox.acked_through(store) == restored["acked"]  # nothing was forgotten
    finally:
        store.close()


class LoweringHead(httpx.HTTPTransport):
    """Something on the way (a proxy, a forged answer) says central holds nothing of this box:
    every unsigned ``head`` in a JSON answer is put back to the start of the chain."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(body, dict) or "head" not in body:
            return response
        body["head"] = {"seq": 0, "hash": "0" * 64}
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(
            response.status_code, headers=headers, content=json.dumps(body).encode()
        )


def test_a_head_lowered_on_the_way_is_not_believed(tmp_path: Path, box: Path) -> None:
    """The head the box acts on is the one in central's signed statement: an unsigned answer
    saying central lost everything neither resends the history nor raises the alarm."""
    with serving(tmp_path / "central", box) as server:
        device = enroll(box, server)
        assert client.sync_once(box, policy=FAST).done
        held = central_chain(server.central, device)
        report = client.sync_once(box, policy=FAST, transport=LoweringHead())
        assert report.done, report.error
        assert report.central_lost_events == 0 and report.batches == 0
        assert ALERT not in summary_alerts(box)
        assert central_chain(server.central, device) == held
