"""The box's loopback HTTP door: ``/healthz``, ``/readyz`` and ``/metrics``.

It runs inside ``edge run`` on a background thread so the probes see the real daemon
(its watcher, its heartbeat), and binds 127.0.0.1 only: nothing on the office network
or the carrier link can reach it; regional IT reads it over SSH or through the summary
that rides sync. If the port cannot be had, the daemon logs it and keeps capturing:
losing a metrics endpoint must never stop scans from being stored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, Response, get

from edge.observe.health import Vitals, readiness
from edge.observe.metrics import CONTENT_TYPE, registry, render

log = logging.getLogger("edge.http")

HOST = "127.0.0.1"
DEFAULT_PORT = 8770


def create_app(state: Path, vitals: Vitals | None = None) -> Litestar:
    metrics_registry = registry(state, vitals)

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers. systemd's watchdog covers a hung main loop."""
        return {"status": "ok"}

    @get("/readyz", sync_to_thread=True)
    def readyz() -> Response[dict[str, Any]]:
        result = readiness(state, vitals)
        return Response(result, status_code=200 if result["ready"] else 503)

    @get("/metrics", sync_to_thread=True)
    def metrics() -> Response[bytes]:
        return Response(render(metrics_registry), media_type=CONTENT_TYPE)

    # logging_config=None: the daemon owns logging; Litestar must not replace its handlers
    return Litestar(
        route_handlers=[healthz, readyz, metrics], openapi_config=None, logging_config=None
    )


class HealthServer:
    """uvicorn on a thread, with a handle the daemon's shutdown can stop and join."""

    def __init__(self, app: Litestar, port: int, host: str = HOST) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="asyncio",
            http="h11",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.address = f"{host}:{port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="edge-http", daemon=True)

    def _serve(self) -> None:
        # uvicorn raises SystemExit when it cannot bind; start() reports that
        with contextlib.suppress(SystemExit):
            self.server.run()

    def start(self, timeout: float = 10.0) -> bool:
        """Serve in the background; True once listening, False if it could not bind."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                return True
            if not self.thread.is_alive():
                return False
            time.sleep(0.02)
        return self.server.started

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_health_server(state: Path, port: int, vitals: Vitals | None) -> HealthServer | None:
    """Start the door on ``port`` (0: off); None, with the reason logged, when it is not up."""
    if port == 0:
        return None
    server = HealthServer(create_app(state, vitals), port)
    if not server.start():
        log.error(
            "health endpoint not started: cannot listen on %s (port in use?); "
            "capture goes on without /healthz, /readyz and /metrics",
            server.address,
        )
        server.stop()
        return None
    log.info("health endpoint on http://%s (/healthz /readyz /metrics)", server.address)
    return server
