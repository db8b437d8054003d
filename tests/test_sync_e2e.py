"""Box to central on loopback, with real HTTP, real SQLite and real PostgreSQL.

What a user cares about: every dossier and every page that was scanned at the
commune arrives at central, central can decrypt all of it (including what was
captured before the box knew central's key), both ends agree on the hash
chain, and the box shows which dossiers central has acknowledged.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import bagit

from edge.archive import export_bag
from edge.store import Store
from edge.sync import client, outbox
from edge.sync.central.export import export as central_export
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


def recipient_private(server: CentralServer) -> bytes:
    path = server.central.data / "keys" / "recipient.key"
    return base64.b64decode(path.read_text().strip())


def payload_files(bag: Path) -> dict[str, bytes]:
    """The bag's payload, minus what a PDF stamps per save (random /ID, creation time)."""
    files = {}
    for path in sorted((bag / "data").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".pdf":
                data = re.sub(rb"/ID\[<[0-9A-F]+><[0-9A-F]+>\]", b"/ID[]", data)
                data = re.sub(rb"/CreationDate\(D:[0-9+']+\)", b"/CreationDate()", data)
            files[str(path.relative_to(bag))] = data
    return files


def test_every_page_arrives_and_central_decrypts_it_byte_identical(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    state, inbox = box, tmp_path / "inbox"
    # The box's JPEG and PDF dossiers and its quarantined file were captured before
    # enrollment: their keys are wrapped to the office key only.
    session = Keyring.load(state).unlock("lan", PASSWORD)
    enrolled = client.enroll(
        state, central.url, central.central.issue_token("H29.01"), session=session
    )
    assert enrolled["rewrapped_keys"] > 0 and enrolled["keys_waiting_for_clerk"] == 0
    # Captured after enrollment: wrapped to central as they are made.
    capture(state, inbox, dossiers=1, pages=1, fmt="jpeg", seed=4, name="late")

    report = client.sync_once(state, policy=FAST)
    assert report.done, report.error
    assert report.pending == {"events": 0, "batches": 0, "keys": 0, "keys_waiting_for_clerk": 0}

    mine_all = {d["id"]: d for d in box_dossiers(state)}
    assert len(mine_all) == 4 and {d["sync"] for d in mine_all.values()} == {"acknowledged"}
    held = {d["id"]: d for d in central.central.list_dossiers()}
    assert set(held) == set(mine_all)
    for dossier_id, mine in mine_all.items():
        assert held[dossier_id]["code"] == mine["code"]
        assert held[dossier_id]["pages"] == mine["pages"]
        assert held[dossier_id]["readable"] is True
    device = enrolled["device"]
    assert central_chain(central.central, device) == box_chain(state)

    store = Store.open(state)
    try:
        quarantined = store.conn.execute("SELECT blob_ids FROM quarantine").fetchall()
        assert quarantined and all(
            central.central.blobs.has(b) for row in quarantined for b in json.loads(row[0])
        )
        key = recipient_private(central)
        for dossier_id in mine_all:
            mine = export_bag(store, session, dossier_id, tmp_path / "box-bags")
            theirs = central_export(central.central, dossier_id, key, tmp_path / "central-bags")
            bagit.Bag(str(theirs)).validate()
            assert payload_files(theirs) == payload_files(mine)
            assert any(name.startswith("data/pages/") for name in payload_files(theirs))
    finally:
        session.close()
        store.close()


def test_resending_a_batch_returns_the_same_receipt_and_stores_nothing_twice(
    central: CentralServer, box: Path
) -> None:
    state = box
    session = Keyring.load(state).unlock("lan", PASSWORD)
    enrolled = client.enroll(
        state, central.url, central.central.issue_token("H29.01"), session=session
    )
    session.close()
    store = Store.open(state)
    keyring = Keyring.load(state)
    try:
        batch = outbox.build_batch(store, keyring, enrolled["device"])
        assert batch is not None
        answers = []
        for _ in range(3):
            sync = client.Round(store, keyring, policy=FAST)
            sync.ensure_blobs(batch.blobs)
            response = sync.link.call(
                "PUT",
                f"/v1/batches/{batch.batch_id}",
                body=batch.body(),
                headers={"Content-Type": "application/json"},
            )
            answers.append(response.json()["receipt"])
            sync.link.close()
    finally:
        store.close()
    assert answers[0] == answers[1] == answers[2]
    assert central_chain(central.central, enrolled["device"]) == box_chain(state)[: batch.last_seq]
