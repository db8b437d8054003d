"""An HTTP-aware TCP proxy on 127.0.0.1 that misbehaves on purpose, and shapes the link.

Tests and the sync benchmark put it between a box and central. Per request a
policy picks a fault: cut the request body at a byte offset, cut the response,
answer 500/503 itself (optionally with Retry-After), answer slowly, or send the
request to central twice. Independently, a token bucket per direction and a
fixed one-way latency turn loopback into a 2G/3G-like link (e.g. 256 kbit/s,
300 ms round trip). Every exchange is logged for the test to assert on.

It speaks just enough HTTP/1.1 for this project: Content-Length or chunked
bodies, keep-alive, no body on HEAD/204/304 answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PIECE = 1460


@dataclass(frozen=True)
class Fault:
    kind: str = "pass"  # pass, cut_request, cut_response, status, status_after, delay, duplicate
    at: float = 0.5  # where to cut, as a fraction of the body
    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    index: int
    method: str
    path: str
    headers: dict[str, str]
    length: int


@dataclass
class Exchange:
    index: int
    method: str
    path: str
    fault: str
    body_forwarded: int  # bytes of the body that reached central
    body_length: int
    status: int | None
    started: float
    ended: float = 0.0
    body_read: int = 0  # bytes of the body the proxy swallowed (answering itself)
    headers: dict[str, str] = field(default_factory=dict)


class Bucket:
    """Pacing for one direction of the link: ``rate`` bytes per second, shared by connections."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.next_free = 0.0

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        if self.next_free > now:
            await asyncio.sleep(self.next_free - now)


@dataclass
class _Head:
    first: bytes
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return _Head(lines[0], raw, headers)


class LinkProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        policy: Callable[[Request], Fault] | None = None,
        rate_bps: float | None = None,
        latency: float = 0.0,
    ) -> None:
        self.upstream_port = upstream_port
        self.policy = policy or (lambda _r: Fault())
        self.up = Bucket(rate_bps / 8 if rate_bps else None)
        self.down = Bucket(rate_bps / 8 if rate_bps else None)
        self.one_way = latency / 2
        self.log: list[Exchange] = []
        self.bytes_up = 0
        self.bytes_down = 0
        self._index = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> LinkProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        for task in asyncio.all_tasks(self._loop):
            if task is not asyncio.current_task():
                task.cancel()

    # -- plumbing ----------------------------------------------------------------

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
        n: int,
        bucket: Bucket,
        up: bool,
    ) -> int:
        """Copy ``n`` bytes at the link's pace; returns how many arrived before EOF."""
        done = 0
        while done < n:
            data = await reader.read(min(PIECE, n - done))
            if not data:
                break
            await bucket.take(len(data))
            if writer is not None:
                writer.write(data)
                await writer.drain()
            done += len(data)
            if up:
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)
        return done

    async def _pipe_chunked(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, bucket: Bucket
    ) -> None:
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if writer is not None:
                writer.write(line)
            await self._pipe(reader, writer, size + 2, bucket, up=False)
            if size == 0:
                return

    async def _send(
        self, writer: asyncio.StreamWriter, data: bytes, bucket: Bucket, up: bool
    ) -> None:
        for start in range(0, len(data), PIECE):
            piece = data[start : start + PIECE]
            await bucket.take(len(piece))
            writer.write(piece)
            if up:
                self.bytes_up += len(piece)
            else:
                self.bytes_down += len(piece)
        await writer.drain()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.upstream_port)

    async def _exchange(
        self,
        head: _Head,
        body: bytes,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> tuple[_Head | None, bytes]:
        """Send a whole request upstream (unshaped) and read the whole answer."""
        up_writer.write(head.raw + body)
        await up_writer.drain()
        answer = await _read_head(up_reader)
        if answer is None:
            return None, b""
        rest = b""
        if answer.length:
            rest = await up_reader.readexactly(answer.length)
        return answer, rest

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                method, path = head.first.decode("latin-1").split(" ")[:2]
                length = head.length or 0
                with self._lock:
                    self._index += 1
                    index = self._index
                fault = self.policy(Request(index, method, path, head.headers, length))
                record = Exchange(
                    index,
                    method,
                    path,
                    fault.kind,
                    0,
                    length,
                    None,
                    time.monotonic(),
                    headers=head.headers,
                )
                self.log.append(record)
                await asyncio.sleep(self.one_way)
                if fault.kind == "delay":
                    await asyncio.sleep(fault.delay)
                if fault.kind == "status":
                    record.body_read = await self._pipe(reader, None, length, self.up, True)
                    await self._answer(writer, fault)
                    record.status = fault.status
                    record.ended = time.monotonic()
                    continue
                if upstream is None:
                    upstream = await self._open_upstream()
                up_reader, up_writer = upstream
                if fault.kind == "cut_request":
                    cut = int(length * fault.at)
                    up_writer.write(head.raw)
                    record.body_forwarded = await self._pipe(reader, up_writer, cut, self.up, True)
                    record.ended = time.monotonic()
                    return
                await self.up.take(len(head.raw))
                up_writer.write(head.raw)
                body = bytearray()
                while len(body) < length:
                    data = await reader.read(min(PIECE, length - len(body)))
                    if not data:
                        return
                    await self.up.take(len(data))
                    self.bytes_up += len(data)
                    up_writer.write(data)
                    body.extend(data)
                await up_writer.drain()
                record.body_forwarded = len(body)
                answer = await _read_head(up_reader)
                if answer is None:
                    return
                record.status = int(answer.first.split(b" ")[1])
                await asyncio.sleep(self.one_way)
                if fault.kind == "status_after":
                    await self._skip_body(up_reader, answer, method)
                    await self._answer(writer, fault)
                    record.status = fault.status
                    record.ended = time.monotonic()
                    continue
                if fault.kind == "cut_response":
                    await self._send(writer, answer.raw[: len(answer.raw) // 2], self.down, False)
                    record.ended = time.monotonic()
                    return
                await self._send(writer, answer.raw, self.down, False)
                await self._forward_body(up_reader, writer, answer, method)
                record.ended = time.monotonic()
                if fault.kind == "duplicate":
                    dup_reader, dup_writer = await self._open_upstream()
                    try:
                        await self._exchange(head, bytes(body), dup_reader, dup_writer)
                    finally:
                        dup_writer.close()
                if answer.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:
            raise
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _forward_body(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answer: _Head,
        method: str,
    ) -> None:
        status = int(answer.first.split(b" ")[1])
        if method == "HEAD" or status in (204, 304):
            return
        if answer.chunked:
            await self._pipe_chunked(up_reader, writer, self.down)
        else:
            await self._pipe(up_reader, writer, answer.length or 0, self.down, up=False)

    async def _skip_body(self, up_reader: asyncio.StreamReader, answer: _Head, method: str) -> None:
        status = int(answer.first.split(b" ")[1])
        if method == "HEAD" or status in (204, 304):
            return
        if answer.chunked:
            await self._pipe_chunked(up_reader, None, Bucket(None))
        elif answer.length:
            await up_reader.readexactly(answer.length)

    async def _answer(self, writer: asyncio.StreamWriter, fault: Fault) -> None:
        body = b'{"code":"injected","title":"injected by the test proxy","status":%d}' % (
            fault.status
        )
        lines = [
            f"HTTP/1.1 {fault.status} Injected".encode(),
            b"Content-Type: application/json",
            f"Content-Length: {len(body)}".encode(),
        ]
        if fault.retry_after is not None:
            lines.append(f"Retry-After: {fault.retry_after}".encode())
        await asyncio.sleep(self.one_way)
        await self._send(writer, b"\r\n".join(lines) + b"\r\n\r\n" + body, self.down, False)
