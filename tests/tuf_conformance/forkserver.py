"""Start each run of the client under test as a fork of one process that imported it.

The suite starts the client some 450 times, and importing python-tuf alone takes 0.35 s:
minutes of ``make test`` spent importing. ``serve`` imports ``client`` once and forks a
child per run; ``connect`` (what ``edge-client`` runs while ``EDGE_CONFORMANCE_SOCKET`` is
set, under ``python -I -S``, which starts in 10 ms) hands the child its arguments, the
faked time and its own stdin/stdout/stderr, and exits with the child's code. Every run is
still a fresh process running ``client.main``; only the imports are shared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback

SOCKET = "EDGE_CONFORMANCE_SOCKET"
FAKE_NOW = "EDGE_CONFORMANCE_NOW"
MAX_MESSAGE = 1 << 16


def connect(path: str, argv: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(path)
        request = {"argv": argv, "cwd": os.getcwd(), "now": os.environ.get(FAKE_NOW)}
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
        answer = conn.recv(1)
    # nothing back means the child died before it could answer: a failure, like a crash
    return answer[0] if answer else 1


def _child(conn: socket.socket, request: dict[str, object], fds: list[int]) -> int:
    import client

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for number, fd in enumerate(fds[:3]):
        os.dup2(fd, number)
    for fd in fds:
        os.close(fd)
    os.chdir(str(request["cwd"]))
    os.environ.pop(FAKE_NOW, None)
    if request.get("now"):
        os.environ[FAKE_NOW] = str(request["now"])
    try:
        return client.main([str(arg) for arg in request["argv"]])  # type: ignore[union-attr]
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1


def serve(path: str) -> None:
    import client  # noqa: F401  (the point: imported once, before any fork)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as server:
        server.bind(path)
        server.listen(8)
        print("ready", flush=True)
        while True:
            conn, _ = server.accept()
            message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                server.close()
                code = 1
                try:
                    code = _child(conn, json.loads(message), list(fds))
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    conn.send(bytes([code & 0xFF]))
                    os._exit(0)
            conn.close()
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        sys.exit(connect(os.environ[SOCKET], sys.argv[2:]))
