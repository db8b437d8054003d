"""Sync benchmark: a shaped 3G-like link, central's ingest rate, and a fleet of 1,000 boxes.

Run with ``make bench`` (or ``.venv/bin/python bench/sync.py``). Everything is
measured in the same run, against the plainest alternative measured beside it:

* link: a box uploads ~20 MB of sealed pages through a link shaper (the test
  proxy, tests/linkproxy.py: token bucket at 256 kbit/s each way plus 300 ms
  round trip); half-way through, the request in flight is cut at 90% of its
  body. Beside it, on its own identical shaped link, the plain alternative: one
  multipart POST per dossier, re-sent whole after a failure. Reported: goodput
  against the link rate, and bytes re-sent after the cut against the chunk size;
* ingest: small batches (20 events, signed, hash-chained) accepted per second
  by one ``edge central serve`` on SQLite, and by two on one PostgreSQL; beside
  it, a plain receiver that inserts each posted batch into SQLite unchecked;
* fleet: 1,000 simulated boxes (same wire contract, own device keys and
  chains) enroll, upload a page, commit a batch and read the downlink all at
  once on loopback; errors and request latency (p50/p99) are reported.

``--append docs/benchmarks.md`` adds the result as a dated section.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge import samples, vault  # noqa: E402
from edge.store import GENESIS, Store, event_hash  # noqa: E402
from edge.sync import client  # noqa: E402
from edge.sync import contract as c  # noqa: E402
from edge.sync.central.receiver import Central  # noqa: E402
from edge.vault import Keyring  # noqa: E402
from tests.linkproxy import Fault, LinkProxy, Request  # noqa: E402
from tests.pg import Cluster, find_bindir  # noqa: E402
from tests.syncutil import PASSWORD, CentralServer, ServeProcess, make_box  # noqa: E402

# -- the plain alternative --------------------------------------------------------


class PlainReceiver:
    """What a developer might write first: POST a dossier (multipart) or a batch (JSON),
    store it, answer 200. No signatures, no chain, no resume."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.db = folder / "plain.db"
        conn = sqlite3.connect(self.db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS events (device TEXT, seq INTEGER, body BLOB)")
        conn.close()
        local = threading.local()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    return
                if self.path.startswith("/dossier"):
                    name = hashlib.sha256(body).hexdigest()
                    (receiver.folder / name).write_bytes(body)
                else:
                    conn = getattr(local, "conn", None)
                    if conn is None:
                        conn = local.conn = sqlite3.connect(receiver.db, timeout=30)
                        conn.execute("PRAGMA synchronous=FULL")
                    batch = json.loads(body)
                    with conn:
                        conn.executemany(
                            "INSERT INTO events VALUES (?, ?, ?)",
                            [(batch["device"], e["seq"], e["payload"]) for e in batch["events"]],
                        )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the shaped link ----------------------------------------------------------------


def cut_once(total: int, fraction: float, state: dict) -> Callable[[Request], Fault]:
    """A proxy policy: the request in flight when ``fraction`` of ``total`` has gone up is
    cut at 90% of its own body. The same rule on both links, so neither side is lucky
    to be cut just as a request began."""

    def policy(request: Request) -> Fault:
        start = state["sent"]
        state["sent"] += request.length
        threshold = total * fraction
        if not state["cut"] and request.length and start <= threshold < start + request.length:
            state["cut"] = True
            return Fault(kind="cut_request", at=0.9)
        return Fault()

    return policy


def dossier_blobs(state: Path) -> list[list[bytes]]:
    store = Store.open(state)
    try:
        groups = []
        for (dossier_id,) in store.conn.execute("SELECT id FROM dossiers ORDER BY rowid"):
            groups.append([store.blob(p["blob_id"]) for p in store.pages(dossier_id)])
        return groups
    finally:
        store.close()


def plain_upload(url: str, dossiers: list[list[bytes]]) -> dict:
    resent = 0
    failures = 0
    with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as session:
        for number, pages in enumerate(dossiers):
            files = {f"page{i}": (f"page{i}.bin", data) for i, data in enumerate(pages)}
            while True:
                try:
                    session.post(f"{url}/dossier/{number}", files=files).raise_for_status()
                    break
                except httpx.HTTPError:
                    failures += 1
                    resent += sum(len(d) for d in pages)
                    time.sleep(1.0)
    return {"failures": failures}


def shaped_link(work: Path, megabytes: float, rate_bps: float, rtt: float) -> dict:
    pages_per_dossier = 4
    page_mb = 0.95
    dossiers = max(1, round(megabytes / page_mb / (pages_per_dossier + 1)))
    state = make_box(work / "box", dossiers=dossiers, pages=pages_per_dossier, seed=5)
    groups = dossier_blobs(state)
    payload = sum(len(b) for g in groups for b in g)
    print(
        f"link: {payload / 1e6:.1f} MB in {dossiers} dossiers, "
        f"{rate_bps / 1000:.0f} kbit/s, {rtt * 1000:.0f} ms RTT",
        flush=True,
    )
    results: dict = {"payload_bytes": payload, "rate_bps": rate_bps, "rtt_s": rtt}
    plain = PlainReceiver(work / "plain")
    with CentralServer(work / "central") as central:
        session = Keyring.load(state).unlock("lan", PASSWORD)
        client.enroll(state, central.url, central.central.issue_token("H29.01"), session=session)
        session.close()
        ours_state: dict = {"sent": 0, "cut": False}
        plain_state: dict = {"sent": 0, "cut": False}
        with (
            LinkProxy(
                central.port,
                policy=cut_once(payload, 0.5, ours_state),
                rate_bps=rate_bps,
                latency=rtt,
            ) as ours_link,
            LinkProxy(
                plain.port,
                policy=cut_once(payload, 0.5, plain_state),
                rate_bps=rate_bps,
                latency=rtt,
            ) as plain_link,
        ):
            store = Store.open(state)
            with store.transaction():
                store.conn.execute("UPDATE sync_enrollment SET central_url = ?", (ours_link.url,))
            store.close()
            timings: dict = {}

            def run_ours() -> None:
                started = time.monotonic()
                reports = []
                while True:
                    reports.append(client.sync_once(state))
                    if reports[-1].done or len(reports) > 5:
                        break
                timings["ours"] = time.monotonic() - started
                timings["ours_reports"] = reports

            def run_plain() -> None:
                started = time.monotonic()
                timings["plain_result"] = plain_upload(plain_link.url, groups)
                timings["plain"] = time.monotonic() - started

            threads = [threading.Thread(target=run_ours), threading.Thread(target=run_plain)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        patches = [e for e in ours_link.log if e.method == "PATCH"]
        cut = next((e for e in patches if e.fault == "cut_request"), None)
        delivered = sum(e.body_forwarded for e in patches if e.fault != "cut_request")
        ours_sent = sum(e.body_forwarded + e.body_read for e in patches)
        plain_sent = sum(e.body_forwarded + e.body_read for e in plain_link.log)
        plain_cut = next((e for e in plain_link.log if e.fault == "cut_request"), None)
        plain_payload_sent = sum(e.body_length for e in plain_link.log if e.fault != "cut_request")
        link_rate = rate_bps / 8
        reports = timings["ours_reports"]
        results.update(
            {
                "ours_seconds": timings["ours"],
                "ours_goodput_ratio": payload / timings["ours"] / link_rate,
                "ours_done": reports[-1].done,
                "ours_rounds": len(reports),
                "ours_requests": sum(r.requests for r in reports),
                "ours_resent_bytes": ours_sent - delivered,
                "ours_chunk_at_cut": cut.body_length if cut else None,
                "ours_link_bytes_up": ours_link.bytes_up,
                "plain_seconds": timings["plain"],
                "plain_goodput_ratio": payload / timings["plain"] / link_rate,
                "plain_resent_bytes": plain_sent - plain_payload_sent,
                "plain_post_at_cut": plain_cut.body_length if plain_cut else None,
                "plain_link_bytes_up": plain_link.bytes_up,
            }
        )
    plain.close()
    return results


# -- simulated boxes for ingest and the fleet -------------------------------------------


class SimBox:
    """A box reduced to its wire behaviour: device key, a hash chain of sealed-looking events."""

    def __init__(self, office: str = "H29.01") -> None:
        self.private, self.public = vault.new_signing_keypair()
        self.device = c.device_id_for(self.public)
        self.office = office
        self.seq = 0
        self.head = GENESIS

    def sign(self, message: bytes) -> bytes:
        return vault.sign_with(self.private, message)

    def enroll_body(self, token: str) -> bytes:
        public = c.b64e(self.public)
        return c.encode(
            c.EnrollRequest(
                token=token,
                device_public=public,
                office=self.office,
                software="bench",
                proof=c.b64e(self.sign(c.enroll_message(token, public, self.office))),
            )
        )

    def batch(self, events: int, blobs: list[str] | None = None) -> tuple[str, bytes]:
        after_seq, after_hash = self.seq, self.head
        wire = []
        for i in range(events):
            self.seq += 1
            payload = os.urandom(160)
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            hlc = f"{int(time.time() * 1000):013d}.{i:05d}"
            digest = event_hash(
                self.head, self.seq, "dbench", "bench.event", "k" * 32, payload, at, hlc
            )
            wire.append(
                c.WireEvent(
                    seq=self.seq,
                    dossier_id="dbench",
                    type="bench.event",
                    key_id="k" * 32,
                    payload=c.b64e(payload),
                    at=at,
                    hlc=hlc,
                    prev_hash=self.head,
                    hash=digest,
                    blobs=blobs if (blobs and i == 0) else [],
                )
            )
            self.head = digest
        doc = c.sign_document(
            c.DOMAIN_BATCH,
            c.Batch(
                v=c.PROTOCOL,
                device=self.device,
                after_seq=after_seq,
                after_hash=after_hash,
                events=wire,
                keys=[],
                dossiers=[],
            ),
            self.sign,
        )
        return c.document_id(doc), c.encode(doc)

    def headers(self, method: str, target: str, body: bytes) -> dict[str, str]:
        stamp = int(time.time() * 1000)
        nonce = secrets.token_hex(16)
        message = c.request_message(method, target, self.device, stamp, nonce, body)
        return {
            c.H_DEVICE: self.device,
            c.H_TIME: str(stamp),
            c.H_NONCE: nonce,
            c.H_SIGNATURE: base64.b64encode(self.sign(message)).decode(),
            "Content-Type": "application/json",
        }


class RawHttp:
    """A lean keep-alive HTTP/1.1 client. The load generator shares two cores with the
    receiver; httpx costs about a millisecond a request, which would cap the figures."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].split(":")
        self.host = host
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"
            head += f"Content-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            try:
                self.writer.write(head.encode("latin-1") + body)
                await self.writer.drain()
                raw = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
                continue
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            found = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    found[name.strip().lower()] = value.strip()
            length = int(found.get("content-length", "0"))
            data = b"" if method == "HEAD" else await self.reader.readexactly(length)
            if found.get("connection", "").lower() == "close":
                await self.close()
            return status, found, data
        raise ConnectionError("unreachable")


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.shed = 0

    async def call(
        self,
        http: RawHttp,
        box: SimBox | None,
        method: str,
        target: str,
        body: bytes = b"",
        extra: dict[str, str] | None = None,
    ) -> bytes | None:
        """One request, signed afresh and retried on 503/429 after Retry-After plus jitter."""
        for attempt in range(8):
            if box is not None:
                headers = box.headers(method, target, body)
            else:
                headers = {"Content-Type": "application/json"}
            headers.update(extra or {})
            started = time.perf_counter()
            try:
                status, found, data = await http.request(method, target, headers, body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.errors.append(f"{method} {target}: {type(exc).__name__}")
                return None
            if status in (429, 503):
                self.shed += 1
                wait = float(found.get("retry-after", "1"))
                await asyncio.sleep(wait + random.uniform(0, 0.1 * 2**attempt))
                continue
            self.latencies.append(time.perf_counter() - started)
            if status >= 300:
                self.errors.append(f"{method} {target}: {status} {data[:80]!r}")
                return None
            return data
        self.errors.append(f"{method} {target}: still shed after 8 tries")
        return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _ingest(
    urls: list[str], boxes: list[SimBox], batches: list[list[tuple[str, bytes]]], recorder: Recorder
) -> float:
    async def one_box(i: int) -> None:
        links = [RawHttp(url) for url in urls]
        for n, (batch_id, body) in enumerate(batches[i]):
            link = links[(i + n) % len(links)]
            await recorder.call(link, boxes[i], "PUT", f"/v1/batches/{batch_id}", body)
        for link in links:
            await link.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_box(i) for i in range(len(boxes))))
    return time.perf_counter() - started


async def _enroll_all(url: str, boxes: list[SimBox], tokens: list[str], recorder: Recorder) -> None:
    gate = asyncio.Semaphore(32)

    async def one(box: SimBox, token: str) -> None:
        async with gate:
            link = RawHttp(url)
            await recorder.call(link, None, "POST", "/v1/enroll", box.enroll_body(token))
            await link.close()

    await asyncio.gather(*(one(b, t) for b, t in zip(boxes, tokens, strict=True)))


def ingest(
    work: Path, *, db_url: str | None, processes: int, devices: int, per_device: int, label: str
) -> dict:
    data = work / f"central-{label}"
    admin = Central(data, db_url)
    tokens = [admin.issue_token("H29.01") for _ in range(devices)]
    admin.close()
    servers = [ServeProcess(data, db_url) for _ in range(processes)]
    for server in servers:
        server.__enter__()
    try:
        boxes = [SimBox() for _ in range(devices)]
        recorder = Recorder()
        asyncio.run(_enroll_all(servers[0].url, boxes, tokens, recorder))
        batches = [[box.batch(20) for _ in range(per_device)] for box in boxes]
        seconds = asyncio.run(_ingest([s.url for s in servers], boxes, batches, recorder))
    finally:
        for server in servers:
            server.__exit__()
    total = devices * per_device
    result = {
        "batches": total,
        "events": total * 20,
        "seconds": seconds,
        "batches_per_s": total / seconds,
        "errors": len(recorder.errors),
        "p50_ms": percentile(recorder.latencies, 0.5) * 1000,
        "p99_ms": percentile(recorder.latencies, 0.99) * 1000,
    }
    if recorder.errors:
        result["first_error"] = recorder.errors[0]
    print(
        f"ingest {label}: {result['batches_per_s']:.0f} batches/s "
        f"({total} batches of 20 events, {processes} process(es)), "
        f"p99 {result['p99_ms']:.0f} ms, errors {result['errors']}",
        flush=True,
    )
    return result


def plain_ingest(work: Path, devices: int, per_device: int) -> dict:
    plain = PlainReceiver(work / "plain-ingest")
    bodies = []
    for _ in range(devices):
        box = SimBox()
        mine = []
        for _ in range(per_device):
            _batch_id, signed = box.batch(20)
            inner = json.loads(json.loads(signed)["signed"])
            mine.append(json.dumps({"device": box.device, "events": inner["events"]}).encode())
        bodies.append(mine)

    async def run() -> float:
        async def one(i: int) -> None:
            link = RawHttp(f"http://127.0.0.1:{plain.port}")
            for body in bodies[i]:
                status, _found, _data = await link.request(
                    "POST", "/batch", {"Content-Type": "application/json"}, body
                )
                assert status == 200
            await link.close()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(devices)))
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    plain.close()
    total = devices * per_device
    print(f"ingest plain (no checks): {total / seconds:.0f} batches/s", flush=True)
    return {"batches": total, "seconds": seconds, "batches_per_s": total / seconds}


def fleet(work: Path, boxes_n: int) -> dict:
    data = work / "central-fleet"
    admin = Central(data)
    tokens = [admin.issue_token("H29.01") for _ in range(boxes_n)]
    admin.close()
    page = os.urandom(16 << 10)
    with ServeProcess(data) as server:
        recorder = Recorder()
        boxes = [SimBox() for _ in range(boxes_n)]

        async def one(box: SimBox, token: str) -> None:
            await asyncio.sleep(random.uniform(0, 1.0))
            http = RawHttp(server.url)
            try:
                enrolled = await recorder.call(
                    http, None, "POST", "/v1/enroll", box.enroll_body(token)
                )
                if enrolled is None:
                    return
                unique = page + box.device.encode()
                blob = hashlib.sha256(unique).hexdigest()
                status = c.encode(c.BlobStatusRequest(ids=[blob]))
                await recorder.call(http, box, "POST", "/v1/blobs/status", status)
                await recorder.call(
                    http,
                    box,
                    "PATCH",
                    f"/v1/blobs/{blob}",
                    unique,
                    {
                        c.H_OFFSET: "0",
                        c.H_LENGTH: str(len(unique)),
                        c.H_CHECKSUM: c.chunk_checksum(unique),
                        "Content-Type": c.CHUNK_MEDIA,
                    },
                )
                batch_id, body = box.batch(5, [blob])
                await recorder.call(http, box, "PUT", f"/v1/batches/{batch_id}", body)
                await recorder.call(http, box, "GET", "/v1/downlink?after=0&limit=100")
            finally:
                await http.close()

        async def run() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(one(b, t) for b, t in zip(boxes, tokens, strict=True)))
            return time.perf_counter() - started

        seconds = asyncio.run(run())
        check = Central(data)
        held = sum(1 for d in check.devices_status() if d["last_seq"] == 5)
        check.close()
    result = {
        "boxes": boxes_n,
        "seconds": seconds,
        "requests": len(recorder.latencies),
        "errors": len(recorder.errors),
        "shed_503": recorder.shed,
        "boxes_complete": held,
        "p50_ms": percentile(recorder.latencies, 0.5) * 1000,
        "p99_ms": percentile(recorder.latencies, 0.99) * 1000,
        "max_ms": max(recorder.latencies, default=0) * 1000,
    }
    if recorder.errors:
        result["first_error"] = recorder.errors[0]
    print(
        f"fleet: {boxes_n} boxes in {seconds:.1f} s, {held} complete, "
        f"errors {result['errors']}, shed {recorder.shed}, p50 {result['p50_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms",
        flush=True,
    )
    return result


# -- report -----------------------------------------------------------------------------


def markdown(summary: dict) -> str:
    link = summary.get("link")
    lines = [
        f"## Sync (issue 3) — {summary['date']}",
        "",
        f"Machine: {summary['machine']}. `bench/sync.py` (see its docstring); every",
        "baseline measured in the same run.",
        "",
    ]
    if link:
        chunk = link["ours_chunk_at_cut"] or 0
        lines += [
            f"Shaped link: {link['rate_bps'] / 1000:.0f} kbit/s each way, "
            f"{link['rtt_s'] * 1000:.0f} ms round trip, {link['payload_bytes'] / 1e6:.1f} MB of "
            "sealed pages; half-way, the request in flight is cut at 90% of its body.",
            "",
            "| measure | target | edge sync | plain multipart POST per dossier |",
            "|---|---|---|---|",
            f"| goodput / link rate (incl. the cut) | ≥ 85% | "
            f"{link['ours_goodput_ratio'] * 100:.1f}% ({link['ours_seconds']:.0f} s) | "
            f"{link['plain_goodput_ratio'] * 100:.1f}% ({link['plain_seconds']:.0f} s) |",
            f"| bytes re-sent after the cut | ≤ one chunk | {link['ours_resent_bytes'] / 1024:.0f} "
            f"KiB (chunk {chunk / 1024:.0f} KiB) | "
            f"{link['plain_resent_bytes'] / 1024:.0f} KiB (the dossier's POST) |",
            "",
        ]
    sq, pg, plain = (
        summary.get("ingest_sqlite"),
        summary.get("ingest_pg"),
        summary.get("ingest_plain"),
    )
    if sq:
        lines += [
            "| ingest (batches of 20 events) | target | accepted/s | p99 | errors |",
            "|---|---|---|---|---|",
            f"| SQLite, 1 process | ≥ 300/s | {sq['batches_per_s']:.0f} | {sq['p99_ms']:.0f} ms "
            f"| {sq['errors']} |",
        ]
        if pg:
            lines.append(
                f"| PostgreSQL, 2 processes | ≥ 300/s | {pg['batches_per_s']:.0f} | "
                f"{pg['p99_ms']:.0f} ms | {pg['errors']} |"
            )
        if plain:
            lines.append(
                f"| plain POST into SQLite, no checks (baseline) | — | "
                f"{plain['batches_per_s']:.0f} | — | — |"
            )
        lines.append("")
    fl = summary.get("fleet")
    if fl:
        lines += [
            f"Fleet: {fl['boxes']} simulated boxes at once (enroll, upload a 16 KiB page, "
            f"commit a batch, read the downlink) against one SQLite receiver: "
            f"{fl['boxes_complete']} complete, {fl['errors']} errors, {fl['shed_503']} answers "
            f"shed with 503 + Retry-After, request latency p50 {fl['p50_ms']:.0f} ms, "
            f"p99 {fl['p99_ms']:.0f} ms, max {fl['max_ms']:.0f} ms, {fl['seconds']:.1f} s in all.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=20.0, help="size of the shaped uplink")
    parser.add_argument("--rate", type=float, default=256_000, help="link rate, bit/s")
    parser.add_argument("--rtt", type=float, default=0.3, help="round trip, seconds")
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--per-device", type=int, default=25)
    parser.add_argument("--fleet", type=int, default=1000)
    parser.add_argument("--skip-link", action="store_true")
    parser.add_argument("--append", type=Path, help="append the markdown section to this file")
    args = parser.parse_args()
    samples.clear_caches()
    work = Path(tempfile.mkdtemp(prefix="edge-bench-sync-"))
    summary: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
    }
    cluster = None
    try:
        summary["ingest_sqlite"] = ingest(
            work,
            db_url=None,
            processes=1,
            devices=args.devices,
            per_device=args.per_device,
            label="sqlite",
        )
        if find_bindir() is not None or os.environ.get("EDGE_TEST_PG"):
            cluster = (
                Cluster(os.environ["EDGE_TEST_PG"])
                if os.environ.get("EDGE_TEST_PG")
                else Cluster.start(fsync=True)
            )
            summary["ingest_pg"] = ingest(
                work,
                db_url=cluster.create_database(),
                processes=2,
                devices=args.devices,
                per_device=args.per_device,
                label="postgresql-2",
            )
        summary["ingest_plain"] = plain_ingest(work, args.devices, args.per_device)
        summary["fleet"] = fleet(work, args.fleet)
        if not args.skip_link:
            summary["link"] = shaped_link(work, args.mb, args.rate, args.rtt)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=1, default=str))
    section = markdown(summary)
    print(section)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write("\n" + section)


if __name__ == "__main__":
    main()
