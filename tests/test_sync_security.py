"""Central refuses what it must, each with its own problem code, and stores nothing.

Requests are crafted by hand with the box's own keys, so each test changes
exactly one thing a network attacker or a rogue device could change.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from edge.store import Store
from edge.sync import client, outbox
from edge.sync import contract as c
from edge.sync.central import storage as st
from edge.vault import Keyring
from tests.syncutil import PASSWORD, CentralServer


def counts(server: CentralServer) -> dict[str, int]:
    tables = (st.devices, st.events, st.batches, st.keys, st.dossiers, st.blobs, st.tokens)
    with server.central.engine.begin() as conn:
        found = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }
        found["tokens_used"] = conn.execute(
            select(func.count()).where(st.tokens.c.used_by.is_not(None))
        ).scalar_one()
    found["blob_files"] = sum(1 for p in (server.central.data / "blobs").rglob("*") if p.is_file())
    return found


def signed(
    keyring: Keyring,
    device: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    time_ms: int | None = None,
    nonce: str | None = None,
    sign_with: Keyring | None = None,
) -> dict[str, str]:
    stamp = int(time.time() * 1000) if time_ms is None else time_ms
    nonce = nonce or secrets.token_hex(16)
    message = c.request_message(method, path, device, stamp, nonce, body)
    return {
        c.H_DEVICE: device,
        c.H_TIME: str(stamp),
        c.H_NONCE: nonce,
        c.H_SIGNATURE: c.b64e((sign_with or keyring).sign(message)),
        "Content-Type": "application/json",
    }


def enroll(state: Path, server: CentralServer) -> str:
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        token = server.central.issue_token("H29.01")
        return client.enroll(state, server.url, token, session=session)["device"]
    finally:
        session.close()


def first_batch(state: Path, device: str) -> tuple[outbox.OutBatch, c.Batch]:
    store = Store.open(state)
    try:
        batch = outbox.build_batch(store, Keyring.load(state), device, max_events=3)
    finally:
        store.close()
    assert batch is not None and batch.document is not None
    return batch, c.decode_document(batch.document, c.Batch)


def upload_blobs(state: Path, batch: outbox.OutBatch) -> None:
    store = Store.open(state)
    try:
        rnd = client.Round(store, Keyring.load(state))
        rnd.ensure_blobs(batch.blobs)
        rnd.link.close()
    finally:
        store.close()


def put(
    server: CentralServer,
    state: Path,
    device: str,
    doc: c.SignedDocument,
    batch_id: str,
    **kwargs: object,
) -> httpx.Response:
    body = c.encode(doc)
    path = f"/v1/batches/{batch_id}"
    headers = signed(Keyring.load(state), device, "PUT", path, body, **kwargs)  # type: ignore[arg-type]
    return httpx.put(server.url + path, content=body, headers=headers)


def resign(state: Path, batch: c.Batch) -> tuple[c.SignedDocument, str]:
    doc = c.sign_document(c.DOMAIN_BATCH, batch, Keyring.load(state).sign)
    return doc, c.document_id(doc)


def code_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(c.PROBLEM_JSON)
    return msgspec.json.decode(response.content, type=c.Problem).code


@pytest.fixture
def enrolled(box: Path, central: CentralServer) -> tuple[Path, str, outbox.OutBatch, c.Batch]:
    device = enroll(box, central)
    batch, wire = first_batch(box, device)
    upload_blobs(box, batch)
    return box, device, batch, wire


def test_unknown_device_is_refused(tmp_path: Path, central: CentralServer, box: Path) -> None:
    before = counts(central)
    device = c.device_id_for(Keyring.load(box).device_public)
    batch, _wire = first_batch(box, device)
    response = put(central, box, device, batch.document, batch.batch_id)  # type: ignore[arg-type]
    assert response.status_code == 401 and code_of(response) == "unknown_device"
    assert counts(central) == before


def test_bad_signature_is_refused(tmp_path: Path, central: CentralServer, enrolled: tuple) -> None:
    from edge.provision import provision

    state, device, batch, _wire = enrolled
    intruder = tmp_path / "intruder"
    provision(intruder, office="H29.01", clerk="lan", password=PASSWORD)
    before = counts(central)
    response = put(
        central,
        state,
        device,
        batch.document,
        batch.batch_id,  # type: ignore[arg-type]
        sign_with=Keyring.load(intruder),
    )
    assert response.status_code == 401 and code_of(response) == "bad_signature"
    assert counts(central) == before


def test_replayed_request_is_refused(central: CentralServer, enrolled: tuple) -> None:
    state, device, batch, _wire = enrolled
    body = c.encode(batch.document)
    path = f"/v1/batches/{batch.batch_id}"
    headers = signed(Keyring.load(state), device, "PUT", path, body)
    first = httpx.put(central.url + path, content=body, headers=headers)
    assert first.status_code == 200
    after_first = counts(central)
    again = httpx.put(central.url + path, content=body, headers=headers)
    assert again.status_code == 409 and code_of(again) == "replayed"
    assert counts(central) == after_first


def test_stale_time_is_refused_with_centrals_time(central: CentralServer, enrolled: tuple) -> None:
    state, device, batch, _wire = enrolled
    before = counts(central)
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    response = put(
        central,
        state,
        device,
        batch.document,
        batch.batch_id,  # type: ignore[arg-type]
        time_ms=an_hour_ago,
    )
    assert response.status_code == 401 and code_of(response) == "stale_time"
    server_time = msgspec.json.decode(response.content, type=c.Problem).server_time
    assert server_time is not None and abs(server_time - time.time() * 1000) < 60_000
    assert counts(central) == before


def test_tampered_batch_is_refused(central: CentralServer, enrolled: tuple) -> None:
    state, device, batch, wire = enrolled
    before = counts(central)
    # 1. an edited payload under the device's old batch signature
    edited = msgspec.structs.replace(
        wire,
        events=[
            msgspec.structs.replace(wire.events[0], payload=c.b64e(b"forged")),
            *wire.events[1:],
        ],
    )
    forged = c.SignedDocument(signed=c.encode(edited).decode(), signature=batch.document.signature)
    response = put(central, state, device, forged, c.document_id(forged))
    assert response.status_code == 422 and code_of(response) == "tampered_batch"
    # 2. the same edit signed by the device key: the event no longer matches its hash
    doc, batch_id = resign(state, edited)
    response = put(central, state, device, doc, batch_id)
    assert response.status_code == 422 and code_of(response) == "tampered_batch"
    # 3. a batch sent under another batch's id
    response = put(central, state, device, batch.document, "0" * 64)  # type: ignore[arg-type]
    assert response.status_code == 422 and code_of(response) == "tampered_batch"
    assert counts(central) == before


def test_broken_hash_chain_is_refused(central: CentralServer, enrolled: tuple) -> None:
    state, device, _batch, wire = enrolled
    before = counts(central)
    # skip the first event: a well-signed batch that does not continue from central's head
    later = msgspec.structs.replace(
        wire, after_seq=wire.events[0].seq, after_hash=wire.events[0].hash, events=wire.events[1:]
    )
    doc, batch_id = resign(state, later)
    response = put(central, state, device, doc, batch_id)
    assert response.status_code == 409 and code_of(response) == "chain_broken"
    problem = msgspec.json.decode(response.content, type=c.Problem)
    assert problem.head == c.Head(seq=0, hash="0" * 64)
    # an event whose link to its predecessor was rewritten (and re-hashed)
    second = wire.events[1]
    relinked = msgspec.structs.replace(second, prev_hash="f" * 64)
    relinked = msgspec.structs.replace(
        relinked, hash=c.wire_event_hash(relinked, c.b64d(relinked.payload))
    )
    rewritten = msgspec.structs.replace(wire, events=[wire.events[0], relinked, *wire.events[2:]])
    doc, batch_id = resign(state, rewritten)
    response = put(central, state, device, doc, batch_id)
    assert response.status_code == 409 and code_of(response) == "chain_broken"
    assert counts(central) == before


def test_batch_waits_for_its_blobs(box: Path, central: CentralServer) -> None:
    device = enroll(box, central)
    batch, _wire = first_batch(box, device)
    before = counts(central)
    response = put(central, box, device, batch.document, batch.batch_id)  # type: ignore[arg-type]
    assert response.status_code == 409 and code_of(response) == "blobs_missing"
    problem = msgspec.json.decode(response.content, type=c.Problem)
    assert sorted(problem.missing or []) == sorted(batch.blobs)
    assert counts(central) == before


def test_enrollment_tokens_are_one_time_and_per_office(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    from edge.provision import provision

    token = central.central.issue_token("H29.01")
    session = Keyring.load(box).unlock("lan", PASSWORD)
    client.enroll(box, central.url, token, session=session)
    session.close()
    # the same box again (its answer was lost): same answer, nothing new
    client.enroll(box, central.url, token)
    other = tmp_path / "other"
    provision(other, office="H29.01", clerk="lan", password=PASSWORD)
    before = counts(central)
    with pytest.raises(client.Refused) as reused:
        client.enroll(other, central.url, token)
    assert reused.value.code == "token_used"
    with pytest.raises(client.Refused) as wrong:
        client.enroll(other, central.url, central.central.issue_token("H30.02"))
    assert wrong.value.code == "wrong_office"
    with pytest.raises(client.Refused) as invalid:
        client.enroll(other, central.url, "not-a-token")
    assert invalid.value.code == "token_invalid"
    after = counts(central)
    assert after["devices"] == before["devices"] == 1
    assert after["tokens_used"] == before["tokens_used"] == 1


def test_an_enrolled_box_cannot_re_enroll_for_another_office(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    """Issue 16, item 12: the answer said H30.01, central kept H29.01, and the token was spent."""
    from edge.provision import provision

    device = enroll(box, central)
    keyring = Keyring.load(box)
    key = c.b64e(keyring.device_public)

    def enroll_as(token: str, office: str) -> httpx.Response:
        proof = c.b64e(keyring.sign(c.enroll_message(token, key, office)))
        request = c.EnrollRequest(
            token=token, device_public=key, office=office, software="test", proof=proof
        )
        return httpx.post(
            f"{central.url}{c.API}/enroll",
            content=c.encode(request),
            headers={"Content-Type": "application/json"},
        )

    elsewhere = central.central.issue_token("H30.01")
    before = counts(central)
    refused = enroll_as(elsewhere, "H30.01")
    assert refused.status_code == 409 and code_of(refused) == "enrolled_elsewhere"
    detail = refused.json()["detail"]
    assert "H29.01" in detail and "\n" not in detail
    assert counts(central) == before  # the token is not spent
    answer = httpx.get(
        f"{central.url}{c.API}/device", headers=signed(keyring, device, "GET", f"{c.API}/device")
    )
    assert answer.json()["office"] == "H29.01"
    # the same office again behaves as before: same device, its head, nothing new
    again = enroll_as(central.central.issue_token("H29.01"), "H29.01")
    assert again.status_code == 200 and again.json()["office"] == "H29.01"
    assert again.json()["device_id"] == device
    # and the unspent token still enrolls the box it was meant for
    other = tmp_path / "other"
    provision(other, office="H30.01", clerk="lan", password=PASSWORD)
    assert client.enroll(other, central.url, elsewhere)["office"] == "H30.01"


def test_a_blob_that_does_not_hash_to_its_id_is_not_kept(central: CentralServer, box: Path) -> None:
    device = enroll(box, central)
    keyring = Keyring.load(box)
    data = b"sealed bytes that are not what they claim"
    blob_id = "ab" * 32
    path = f"/v1/blobs/{blob_id}"
    headers = signed(keyring, device, "PATCH", path, data)
    headers.update(
        {
            c.H_OFFSET: "0",
            c.H_LENGTH: str(len(data)),
            c.H_CHECKSUM: c.chunk_checksum(data),
            "Content-Type": c.CHUNK_MEDIA,
        }
    )
    response = httpx.patch(central.url + path, content=data, headers=headers)
    assert response.status_code == 422 and code_of(response) == "checksum_mismatch"
    assert not central.central.blobs.has(blob_id)
    headers = signed(keyring, device, "PATCH", path, data)
    headers.update(
        {
            c.H_OFFSET: "0",
            c.H_LENGTH: str(len(data)),
            c.H_CHECKSUM: c.chunk_checksum(b"other"),
            "Content-Type": c.CHUNK_MEDIA,
        }
    )
    response = httpx.patch(central.url + path, content=data, headers=headers)
    assert response.status_code == 422 and code_of(response) == "checksum_mismatch"


def test_a_revoked_device_is_refused(central: CentralServer, enrolled: tuple) -> None:
    state, device, batch, _wire = enrolled
    central.central.revoke(device)
    before = counts(central)
    response = put(central, state, device, batch.document, batch.batch_id)  # type: ignore[arg-type]
    assert response.status_code == 403 and code_of(response) == "device_revoked"
    assert counts(central) == before


def test_enrollment_tokens_survive_a_command_line_and_a_text_file(central: CentralServer) -> None:
    """A token never looks like an option (a leading '-') and has no character a
    Windows editor or a shell would mangle: base32, 160 random bits."""
    tokens = {central.central.issue_token("H29.01") for _ in range(300)}
    assert len(tokens) == 300
    for token in tokens:
        assert len(token) == 32
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), token
