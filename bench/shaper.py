"""A shaped link on loopback: a TCP proxy with a rate limit and a round-trip delay.

Models a rural 2G/3G link (default 256 kbit/s each way, 300 ms RTT) between a box
and central, in process, with no root and no tc/netem: every chunk waits for the
link (a token bucket per direction, shared by all connections, so parallel
requests share the bandwidth as they would on one radio link) and then for half
the RTT; a new connection costs one RTT before its first byte, like a TCP
handshake. Counts the bytes that crossed each way, headers included.

    with ShapedLink("127.0.0.1", server_port) as link:
        fetch(f"http://127.0.0.1:{link.port}/...")
        print(link.up, link.down)
"""

from __future__ import annotations

import queue
import socket
import threading
import time


class _Bucket:
    """When each chunk has finished crossing a link of ``rate`` bits per second."""

    def __init__(self, rate_bps: float) -> None:
        self.rate = rate_bps
        self.free_at = 0.0
        self.lock = threading.Lock()

    def reserve(self, size: int) -> float:
        with self.lock:
            start = max(time.monotonic(), self.free_at)
            self.free_at = start + size * 8 / self.rate
            return self.free_at


class ShapedLink:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        rate_bps: float = 256_000,
        rtt_s: float = 0.3,
        chunk: int = 1460,
    ) -> None:
        self.target = (host, port)
        self.rtt = rtt_s
        self.chunk = chunk
        self.up_bucket = _Bucket(rate_bps)
        self.down_bucket = _Bucket(rate_bps)
        self.up = 0
        self.down = 0
        self.connections = 0
        self._count = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ShapedLink:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._listener.close()

    def reset(self) -> None:
        with self._count:
            self.up = self.down = self.connections = 0

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        time.sleep(self.rtt)  # SYN, SYN-ACK: one round trip before the first byte
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._count:
            self.connections += 1
        for src, dst, bucket, direction in (
            (client, server, self.up_bucket, "up"),
            (server, client, self.down_bucket, "down"),
        ):
            lane: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(
                target=self._read, args=(src, lane, bucket, direction), daemon=True
            ).start()
            threading.Thread(target=self._write, args=(dst, lane), daemon=True).start()

    def _read(self, src: socket.socket, lane: queue.Queue, bucket: _Bucket, direction: str) -> None:
        while True:
            try:
                data = src.recv(self.chunk)
            except OSError:
                data = b""
            if not data:
                lane.put((time.monotonic() + self.rtt / 2, b""))
                return
            with self._count:
                if direction == "up":
                    self.up += len(data)
                else:
                    self.down += len(data)
            lane.put((bucket.reserve(len(data)) + self.rtt / 2, data))

    @staticmethod
    def _write(dst: socket.socket, lane: queue.Queue) -> None:
        while True:
            deliver_at, data = lane.get()
            delay = deliver_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return
