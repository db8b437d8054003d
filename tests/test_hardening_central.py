"""Central under a hostile network and hostile boxes (issue 11, items 4, 7, 9 and 14).

The attacks run against a real ``edge central serve`` process on 127.0.0.1, each
bounded in connections, bytes and time; a real box must still sync through them,
and central's memory (``/proc/<pid>/status``) must stay bounded. The same file
holds what a box may claim in a batch (another office's dossier code), a re-offer
of the public update timestamp, and JSON nested 1,000 levels deep.
"""

from __future__ import annotations

import base64
import json
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from edge.sync import client
from edge.sync import contract as c
from edge.sync.central.receiver import Central
from edge.vault import Keyring
from tests.syncutil import FAST, PASSWORD, CentralServer, box_dossiers, make_box
from tests.test_sync_security import (
    code_of,
    counts,
    enroll,
    first_batch,
    put,
    resign,
    signed,
    upload_blobs,
)

MiB = 1 << 20


class Serve:
    """``edge central serve`` in its own process, with extra options; output to a file."""

    def __init__(self, data: Path, log: Path, *options: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.log = log.open("w")
        command = [sys.executable, "-m", "edge.cli", "central", "serve", "--data", str(data)]
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port), *options],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"central exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("central did not start")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak resident set) in MiB."""
        found = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) // 1024
        return found

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Start ``edge central serve`` processes sharing one data folder; all stopped after."""
    started: list[Serve] = []

    def start(*options: str) -> Serve:
        server = Serve(tmp_path / "central", tmp_path / f"serve-{len(started)}.log", *options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def enroll_at(state: Path, data: Path, url: str, office: str = "H29.01") -> str:
    """Enroll a box with a served central, the token issued through the data folder."""
    admin = Central(data)
    try:
        token = admin.issue_token(office)
    finally:
        admin.close()
    session = Keyring.load(state).unlock("lan", PASSWORD)
    try:
        return client.enroll(state, url, token, session=session)["device"]
    finally:
        session.close()


def _head(method: str, path: str, length: int, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    lines += ["Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket, wait: float) -> int | None:
    """The status code central answered on this socket, if it answered within ``wait``."""
    sock.settimeout(wait)
    try:
        first = sock.recv(64)
    except OSError:
        return None
    if not first.startswith(b"HTTP/1.1 "):
        return None
    return int(first[9:12])


class Trickle:
    """Slow senders: each declares a body and sends one byte every ``every`` seconds."""

    def __init__(self, port: int, heads: list[bytes], every: float) -> None:
        self.socks = []
        for head in heads:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head)
            self.socks.append(sock)
        self.every = every
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            for sock in self.socks:
                try:
                    sock.sendall(b" ")
                    self.sent += 1
                except OSError:
                    pass

    def close(self) -> list[int | None]:
        """What central answered each (None: nothing yet), then the connections closed."""
        self.stop.set()
        self.thread.join(10)
        ready, _, _ = select.select(self.socks, [], [], 0.2)
        answers = [_status(s, 0.2) if s in ready else None for s in self.socks]
        for sock in self.socks:
            sock.close()
        return answers


def _big_put(port: int, head: bytes, body: bytes, answers: list[int | None]) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            try:
                sock.sendall(head)
                view = memoryview(body)
                for start in range(0, len(body), MiB):
                    sock.sendall(view[start : start + MiB])
            except OSError:
                pass  # central answered and closed without reading the rest: the point
            answers.append(_status(sock, 30))
    except OSError:
        answers.append(None)


def _big_bodies(port: int, heads: list[bytes], body: bytes) -> list[int | None]:
    answers: list[int | None] = []
    threads = [threading.Thread(target=_big_put, args=(port, h, body, answers)) for h in heads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def _forged(device: str) -> dict[str, str]:
    """Well-formed headers naming a real (public) device id, with a signature that fails."""
    return {
        c.H_DEVICE: device,
        c.H_TIME: str(int(time.time() * 1000)),
        c.H_NONCE: secrets.token_hex(16),
        c.H_SIGNATURE: base64.b64encode(b"\0" * 64).decode(),
    }


def test_slow_and_huge_unsigned_requests_neither_block_boxes_nor_grow_memory(
    tmp_path: Path, serve: Callable[..., Serve], box: Path
) -> None:
    """Issue 11 item 4: 16 unsigned 16 MiB batch bodies, then 64 connections trickling a
    byte every 5 s (twice the in-flight limit), while a real box syncs."""
    server = serve("--max-inflight", "32")
    device = enroll_at(box, tmp_path / "central", server.url)
    with httpx.Client() as warm:  # imports, thread pool, database connections
        for _ in range(20):
            warm.get(server.url + "/health")
    before = server.memory()

    # (b) 16 MiB bodies without signature headers: refused before a byte is read
    document = json.dumps({"signed": "a" * (16 * MiB - 100), "signature": "x"}).encode()
    path = f"/v1/batches/{'0' * 64}"
    started = time.monotonic()
    answers = _big_bodies(server.port, [_head("PUT", path, len(document))] * 16, document)
    big_seconds = time.monotonic() - started
    after_big = server.memory()

    # (a) 64 trickling bodies, half to the unsigned enrollment, half to a signed route with
    # a real box's (public) device id: none of them may take a slot a box needs
    heads = [_head("POST", "/v1/enroll", 4000)] * 32
    heads += [_head("POST", "/v1/device/health", 4000, _forged(device))] * 32
    trickle = Trickle(server.port, heads, every=5.0)
    try:
        time.sleep(0.5)
        health = httpx.get(server.url + "/health", timeout=5).status_code
        started = time.monotonic()
        # bounded: Retry-After is honoured up to 2 s, and the round gives up after 30 s
        patient = client.Policy(**{**FAST.__dict__, "round_seconds": 30, "max_retry_after": 2})
        report = client.sync_once(box, policy=patient)
        sync_seconds = time.monotonic() - started
    finally:
        trickled = trickle.close()
    during = server.memory()
    print(
        f"\nRSS {before['VmRSS']} MiB before; peak {after_big['VmHWM']} MiB after 16 x 16 MiB "
        f"unsigned ({big_seconds:.1f} s); peak {during['VmHWM']} MiB after the trickle; "
        f"box sync done={report.done} in {sync_seconds:.1f} s under 64 trickling connections "
        f"(their answers so far: {sorted(set(trickled), key=str)})"
    )
    assert answers == [401] * 16, answers
    assert after_big["VmHWM"] - before["VmRSS"] < 64, (before, after_big)
    assert health == 200
    assert report.done, report.error
    assert {d["sync"] for d in box_dossiers(box)} == {"acknowledged"}
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert during["VmHWM"] - before["VmRSS"] < 96, (before, during)


def test_bodies_have_deadlines_limits_and_a_memory_budget(
    tmp_path: Path, serve: Any, box: Path
) -> None:
    """The knobs behind item 4: a paused or trickling body gets 408 too_slow, a declared
    body over the route's limit 413 before it is read, headers that never end are cut,
    and forged-signature bodies (which must be read to be judged) share a fixed budget."""
    server = serve(
        "--body-idle",
        "2",
        "--body-grace",
        "3",
        "--body-min-rate",
        "2048",
        "--max-body-memory",
        "48",
        "--header-timeout",
        "3",
    )
    device = enroll_at(box, tmp_path / "central", server.url)
    before = server.memory()
    started = time.monotonic()

    trickle = Trickle(server.port, [_head("POST", "/v1/enroll", 4000)] * 4, every=0.5)
    paused = socket.create_connection(("127.0.0.1", server.port))
    paused.sendall(_head("POST", "/v1/enroll", 4000) + b"{")
    headless = socket.create_connection(("127.0.0.1", server.port))
    headless.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\n")
    oversized = socket.create_connection(("127.0.0.1", server.port))
    oversized.sendall(_head("POST", "/v1/enroll", 10 * MiB))
    assert _status(oversized, 5) == 413

    # forged signatures need the body to be judged: read under the budget, never parsed
    document = json.dumps({"signed": "a" * (16 * MiB - 100), "signature": "x"}).encode()
    path = f"/v1/batches/{'0' * 64}"
    heads = [_head("PUT", path, len(document), _forged(device)) for _ in range(8)]
    answers = _big_bodies(server.port, heads, document)
    assert set(answers) <= {401, 503} and 401 in answers and 503 in answers, answers
    peak = server.memory()["VmHWM"] - before["VmRSS"]
    print(f"\n8 x 16 MiB forged-signature bodies, budget 48 MiB: {answers}, peak +{peak} MiB")
    assert peak < 48 * 3, peak

    assert _status(paused, 8) == 408
    time.sleep(max(0.0, started + 6 - time.monotonic()))
    assert set(trickle.close()) == {408}
    headless.settimeout(5)
    assert headless.recv(100) == b""  # closed by central, no answer
    for sock in (paused, headless, oversized):
        sock.close()
    assert httpx.get(server.url + "/health").status_code == 200


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_deep_json_is_refused_with_400_on_every_route(
    central: CentralServer, enrolled_box: tuple[Path, str]
) -> None:
    """Item 14: 1,000 levels in 2 KB used to end in RecursionError and a 500."""
    state, device = enrolled_box
    keyring = Keyring.load(state)
    deep = b"[" * 1000 + b"]" * 1000
    bodies = {
        "/v1/enroll": deep,
        "/v1/updates/offer": b'{"metadata": {}, "x": ' + deep + b"}",
        "/v1/device/health": b'{"v": 1, "summary": {"x": ' + deep + b"}}",
        "/v1/blobs/status": b'{"ids": ' + deep + b"}",
    }
    for path, body in bodies.items():
        headers = signed(keyring, device, "POST", path, body)
        response = httpx.post(central.url + path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert code_of(response) == "malformed"
    # a batch the device signed whose text nests deep: refused as a value, not a 500
    text = '{"v": 1, "x": ' + "[" * 1000 + "]" * 1000 + "}"
    doc = c.SignedDocument(
        signed=text,
        signature=c.b64e(keyring.sign(c.signing_input(c.DOMAIN_BATCH, text))),
    )
    response = put(central, state, device, doc, c.document_id(doc))
    assert response.status_code == 422 and code_of(response) == "invalid_field"
    assert c.json_too_deep(deep) and not c.json_too_deep(b'{"a": "[[[[' + b"[" * 99 + b'"}')


@pytest.fixture
def enrolled_box(box: Path, central: CentralServer) -> tuple[Path, str]:
    return box, enroll(box, central)


def test_a_box_cannot_claim_another_offices_dossier_code(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    """Item 7: H30.02 names H29.01's dossier code; central refuses it, stores nothing, and
    the dossier's status still goes only to H29.01."""
    mine = enroll(box, central)
    assert client.sync_once(box, policy=FAST).done
    code = next(d["code"] for d in box_dossiers(box) if d["code"])

    other = make_box(tmp_path / "other", dossiers=1, pages=1, seed=77, office="H30.02")
    session = Keyring.load(other).unlock("lan", PASSWORD)
    token = central.central.issue_token("H30.02")
    theirs = client.enroll(other, central.url, token, session=session)["device"]
    session.close()
    batch, wire = first_batch(other, theirs)
    upload_blobs(other, batch)
    before = counts(central)
    claim = msgspec.structs.replace(
        wire, dossiers=[msgspec.structs.replace(wire.dossiers[0], code=code)]
    )
    doc, batch_id = resign(other, claim)
    response = put(central, other, theirs, doc, batch_id)
    assert response.status_code == 409 and code_of(response) == "dossier_claimed"
    assert counts(central) == before

    # values no box sends: each refused with invalid_field, nothing stored
    first = wire.dossiers[0]
    for bad in (
        msgspec.structs.replace(wire, dossiers=[msgspec.structs.replace(first, code="A<B>")]),
        msgspec.structs.replace(
            wire, dossiers=[msgspec.structs.replace(first, code="KHONG-PHAI-MA")]
        ),
        msgspec.structs.replace(
            wire, dossiers=[first, msgspec.structs.replace(first, id="d" + "0" * 22)]
        ),
        msgspec.structs.replace(
            wire, events=[msgspec.structs.replace(wire.events[0], key_id="k" * 65)]
        ),
        msgspec.structs.replace(wire, dossiers=[msgspec.structs.replace(first, status="x" * 65)]),
    ):
        doc, batch_id = resign(other, bad)
        response = put(central, other, theirs, doc, batch_id)
        assert response.status_code == 422, response.text
        assert code_of(response) == "invalid_field"
    assert counts(central) == before

    # its own dossiers go through
    assert client.sync_once(other, policy=FAST).done
    central.central.notify(code, 9, "Đã có kết quả")
    assert client.sync_once(box, policy=FAST).done
    assert client.sync_once(other, policy=FAST).done
    assert any(d["central_status"] == 9 for d in box_dossiers(box) if d["code"] == code)
    assert all(d["code"] != code for d in box_dossiers(other))
    with central.central.engine.begin() as conn:
        from edge.sync.central import storage as st

        routed = conn.execute(st.downlink.select().where(st.downlink.c.kind == "status")).all()
    assert [r.device_id for r in routed] == [mine]
    # regional IT gives the code to the other office: statuses follow the owner
    assert central.central.assign_code(code, "H30.02") == "H29.01"
    with pytest.raises(ValueError, match="no dossier"):
        central.central.notify(code, 10)  # H30.02's box does not hold it


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_codes_are_judged_by_published_patterns_and_the_office_they_name(
    central: CentralServer,
) -> None:
    """A code must match a pattern regional IT published (any time); where the pattern
    names the province or the office, it must be the sending box's."""
    codes = central.central.codes
    assert codes.judge("000.00.01.H29-240115-0001", "H30.02") is None  # says no office
    assert "no dossier-code pattern" in (codes.judge("HS-20260105-A1", "H29.01") or "")
    assert "no dossier-code pattern" in (codes.judge("38.98.H29-240231-0013", "H29.01") or "")
    central.central.configure(
        {"code_patterns": [r"(?P<province>H[0-9]{2})\.[0-9]{2}-(?P<date>[0-9]{8})-A[0-9]"]}
    )
    assert codes.judge("H29.07-20260105-A1", "H29.01") is None
    assert "another office" in (codes.judge("H29.07-20260105-A1", "H30.02") or "")
    central.central.configure({"code_patterns": [r"HS-(?P<date>[0-9]{8})-A[0-9]"]})
    # the earlier pattern still counts: a box may hold codes it accepted back then
    assert codes.judge("H29.07-20260105-A1", "H29.01") is None
    assert codes.judge("HS-20260105-A1", "H29.01") is None


def test_re_offering_the_served_timestamp_does_not_cancel_a_publish(
    tmp_path: Path,
) -> None:
    """Item 9: /updates/metadata/timestamp.json is public; offering it again must leave the
    pending offer and its half-uploaded target alone."""
    from edge.update.publish import offer_files
    from edge.update.repository import AdminRepo
    from tests.update_support import run_edge

    repo = AdminRepo.create(tmp_path / "repo")
    repo.delegate("H29")
    repo.set_config({"min_dpi": 250})
    with CentralServer(tmp_path / "central") as server:
        trusted = run_edge(
            "central",
            "trust-updates",
            "--data",
            str(server.central.data),
            "--root",
            str(repo.metadata_dir / "1.root.json"),
        )
        assert trusted.returncode == 0, trusted.stderr
        publish = ("admin", "publish", "--repo", str(repo.path), "--central", server.url)
        assert run_edge(*publish).returncode == 0
        repo.set_reference("procedures", [{"code": f"1.{n:06d}", "name": "x"} for n in range(8000)])
        files = offer_files(repo.metadata_dir)
        body = {"metadata": {n: base64.b64encode(d).decode() for n, d in files.items()}}
        offer = f"{server.url}/v1/updates/offer"
        [missing] = httpx.post(offer, json=body, timeout=30).json()["missing"]
        data = (repo.targets_dir / missing["path"]).read_bytes()
        target = f"{server.url}/v1/updates/targets/{missing['path']}"
        half = len(data) // 2
        assert httpx.patch(target, content=data[:half], headers={"Upload-Offset": "0"}).is_success
        gate = server.central.data / "updates-gate"
        pending = (gate / "pending.json").read_bytes()

        served = httpx.get(f"{server.url}/updates/metadata/timestamp.json").content
        replay = {"metadata": {"timestamp.json": base64.b64encode(served).decode()}}
        answer = httpx.post(offer, json=replay, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["new_files"] == 0
        assert (gate / "pending.json").read_bytes() == pending
        assert (gate / "partial" / missing["sha256"]).stat().st_size == half
        assert httpx.head(target).headers["Upload-Offset"] == str(half)

        rest = httpx.patch(target, content=data[half:], headers={"Upload-Offset": str(half)})
        assert rest.json()["complete"] is True
        done = run_edge(*publish)
        assert done.returncode == 0, done.stderr
        assert "0 target file(s)" in done.stdout, done.stdout
