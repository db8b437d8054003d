"""Central's HTTP face: a Litestar app whose every answer is either data or a problem.

Controllers only translate HTTP to ``Central`` calls (run on worker threads,
since they touch the database and the disk) and back. Every error becomes an
``application/problem+json`` body with a stable ``code`` (edge.sync.contract);
nothing answers 500 to any input, and a database that is briefly unavailable
answers 503 with ``Retry-After`` so boxes back off instead of failing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import msgspec
from litestar import Controller, Litestar, Request, Response, get, head, patch, post, put
from litestar.datastructures import Headers
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.static_files import create_static_files_router
from sqlalchemy.exc import DBAPIError

from edge import __version__
from edge.sync import contract as c
from edge.sync.central.fleet import FleetPlugin
from edge.sync.central.http import COMMON, SIGNED, scope_target, spec, verified_request
from edge.sync.central.receiver import Central, Verified, storage_unavailable
from edge.update import UpdateError
from edge.update.gate import SERVED, Gate, NoPendingOffer, NotSetUp, OffsetMismatch

log = logging.getLogger("edge.central")

T = TypeVar("T")

_BY_STATUS = {
    400: c.Code.MALFORMED,
    401: c.Code.UNAUTHENTICATED,
    403: c.Code.DEVICE_REVOKED,
    404: c.Code.NOT_FOUND,
    405: c.Code.METHOD_NOT_ALLOWED,
    413: c.Code.TOO_LARGE,
    415: c.Code.UNSUPPORTED_MEDIA_TYPE,
    429: c.Code.RATE_LIMITED,
    503: c.Code.BUSY,
}


def _problem_response(problem: c.Problem, retry_after: float | None = None) -> Response[bytes]:
    headers = {}
    if retry_after is not None:
        headers[c.H_RETRY_AFTER] = str(max(1, round(retry_after)))
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=c.PROBLEM_JSON,
        headers=headers,
    )


def on_problem(_request: Request, exc: Exception) -> Response[bytes]:
    assert isinstance(exc, c.ProblemError)
    return _problem_response(exc.problem(), exc.retry_after)


def on_http_exception(_request: Request, exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _BY_STATUS.get(status, c.Code.MALFORMED if status < 500 else c.Code.INTERNAL)
    if status >= 500 and "disconnect" in str(exc.detail):
        # The box went away mid-request (a cut link): nobody reads this answer.
        log.info("client disconnected before its request arrived whole")
        status, code = 400, c.Code.MALFORMED
    elif status >= 500 and status != 503:
        log.error("HTTP %s from the framework: %s", status, exc.detail)
        status, code = 500, c.Code.INTERNAL
    detail = str(exc.detail or "")
    if isinstance(exc, ValidationException) and exc.extra:
        detail = f"{detail}: {exc.extra}"[:500]
    return _problem_response(
        c.Problem(code=str(code), title=c.STATUS[code][1], status=status, detail=detail),
        1.0 if status == 503 else None,
    )


def on_database_error(_request: Request, exc: Exception) -> Response[bytes]:
    assert isinstance(exc, DBAPIError)
    problem = storage_unavailable(exc)
    return _problem_response(problem.problem(), problem.retry_after)


def on_too_deep(request: Request, exc: Exception) -> Response[bytes]:
    """A decoder ran out of stack: the gateway's depth check should have refused the input
    first, so this is a second wall, and still the client's fault (400), never a 500."""
    log.warning("%s %s: input nested too deeply (%s)", request.method, request.url.path, exc)
    code = c.Code.MALFORMED
    return _problem_response(
        c.Problem(
            code=str(code),
            title=c.STATUS[code][1],
            status=400,
            detail=f"JSON nests deeper than {c.MAX_JSON_DEPTH} levels",
        )
    )


def on_unexpected(request: Request, exc: Exception) -> Response[bytes]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    code = c.Code.INTERNAL
    return _problem_response(
        c.Problem(code=str(code), title=c.STATUS[code][1], status=500, detail=type(exc).__name__)
    )


async def _run(func: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(func)


async def _work(central: Central, verified: Verified, action: Callable[[Any, Any], T]) -> T:
    """Run ``action`` for the verified device in its one transaction, off the event loop."""
    return await _run(partial(central.handle, verified, action))


BlobId = Annotated[str, PathParameter(pattern=c.HEX64, description="SHA-256 of the sealed blob")]
BatchId = Annotated[str, PathParameter(pattern=c.HEX64, description="SHA-256 of the signed text")]


class SyncController(Controller):
    path = c.API
    dependencies = {  # noqa: RUF012 (Litestar's Controller declares it an instance variable)
        "verified": Provide(verified_request)
    }

    @post(
        "/enroll",
        responses={
            **COMMON,
            401: spec("bad_signature"),
            403: spec("token_invalid, wrong_office"),
            409: spec("token_used, enrolled_elsewhere"),
        },
        status_code=200,
        request_max_body_size=c.MAX_ENROLL_BYTES,
    )
    async def enroll(
        self, central: NamedDependency[Central], data: JSONBody[c.EnrollRequest]
    ) -> c.EnrollAnswer:
        """Register a box's device key with a one-time token; answers central's keys."""
        return await _run(partial(central.enroll, data))

    @get("/device", responses=SIGNED)
    async def device(
        self, central: NamedDependency[Central], verified: NamedDependency[Verified]
    ) -> c.DeviceAnswer:
        """Who central thinks this box is, and the last event it accepted from it."""
        return await _work(central, verified, lambda _conn, row: central.device_info(row))

    @post(
        "/blobs/status",
        responses=SIGNED,
        status_code=200,
        request_max_body_size=c.MAX_STATUS_BYTES,
    )
    async def blob_status(
        self,
        central: NamedDependency[Central],
        data: JSONBody[c.BlobStatusRequest],
        verified: NamedDependency[Verified],
    ) -> c.BlobStatusAnswer:
        """Which blobs central has, and how far each partial upload got (an upload with
        every byte but no blob, left by a crash, is completed first)."""
        return await _run(partial(central.blob_status_request, verified, data.ids))

    @head("/blobs/{blob_id:str}", responses=SIGNED, status_code=200)
    async def blob_offset(
        self,
        central: NamedDependency[Central],
        blob_id: BlobId,
        verified: NamedDependency[Verified],
    ) -> Response[None]:
        """tus-style: Upload-Offset says where to resume (Upload-Length once known)."""
        state = await _run(partial(central.upload_state_request, verified, blob_id))
        headers = {c.H_OFFSET: str(state.offset), "Cache-Control": "no-store"}
        if state.length is not None:
            headers[c.H_LENGTH] = str(state.length)
        return Response(content=None, headers=headers, status_code=200)

    @patch(
        "/blobs/{blob_id:str}",
        responses={
            **SIGNED,
            409: spec("replayed, offset_mismatch (with offset), length_mismatch"),
            422: spec("checksum_mismatch"),
        },
        request_max_body_size=c.MAX_CHUNK,
    )
    async def upload(
        self,
        central: NamedDependency[Central],
        request: Request,
        blob_id: BlobId,
        verified: NamedDependency[Verified],
        upload_offset: Annotated[int, HeaderParameter(name=c.H_OFFSET, ge=0, le=c.MAX_BLOB)],
        upload_length: Annotated[int, HeaderParameter(name=c.H_LENGTH, ge=1, le=c.MAX_BLOB)],
        upload_checksum: Annotated[
            str | None, HeaderParameter(name=c.H_CHECKSUM, required=False, max_length=100)
        ] = None,
    ) -> c.BlobState:
        """Append one chunk at Upload-Offset; the blob is verified when it is complete."""
        body = await request.body()
        return await _run(
            partial(
                central.upload_chunk,
                verified,
                blob_id,
                upload_offset,
                upload_length,
                upload_checksum,
                body,
            )
        )

    @put(
        "/batches/{batch_id:str}",
        responses={
            **SIGNED,
            409: spec(
                "replayed, chain_broken (with head), blobs_missing (with missing), dossier_claimed"
            ),
            422: spec("tampered_batch, invalid_field"),
        },
        request_max_body_size=c.MAX_BATCH_BODY,
    )
    async def put_batch(
        self,
        central: NamedDependency[Central],
        batch_id: BatchId,
        data: JSONBody[c.SignedDocument],
        verified: NamedDependency[Verified],
    ) -> c.ReceiptAnswer:
        """Commit a signed batch atomically; the same batch again returns the same receipt."""
        return await _run(partial(central.put_batch, verified, batch_id, data))

    @get("/receipts", responses=SIGNED)
    async def receipts(
        self,
        central: NamedDependency[Central],
        verified: NamedDependency[Verified],
        after_seq: Annotated[int, QueryParameter(ge=0, le=2**53)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> c.ReceiptsAnswer:
        """Receipts of batches ending after ``after_seq``: for a box that lost some."""
        return await _work(
            central,
            verified,
            lambda conn, row: central.receipts(conn, row.device_id, after_seq, limit),
        )

    @get("/downlink", responses=SIGNED)
    async def downlink(
        self,
        central: NamedDependency[Central],
        verified: NamedDependency[Verified],
        after: Annotated[int, QueryParameter(ge=0, le=2**53)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=c.DOWNLINK_PAGE)] = 100,
    ) -> c.DownlinkAnswer:
        """Signed statuses and configuration after the box's cursor, plus a signed clock."""
        nonce = verified.auth.nonce
        return await _work(
            central,
            verified,
            lambda conn, row: central.downlink(conn, row, after, limit, nonce),
        )


UPDATE = {
    **COMMON,
    404: spec("not_found: no pending offer to resume; offer the metadata"),
    409: spec("updates_not_set_up: run edge central trust-updates first"),
    422: spec("update_refused: the reason, in one line"),
}


def _gate_problem(exc: Exception) -> c.ProblemError:
    if isinstance(exc, NoPendingOffer):
        return c.ProblemError(c.Code.NOT_FOUND, str(exc))
    if isinstance(exc, OffsetMismatch):
        return c.ProblemError(c.Code.OFFSET_MISMATCH, str(exc), offset=exc.offset)
    code = c.Code.UPDATES_NOT_SET_UP if isinstance(exc, NotSetUp) else c.Code.UPDATE_REFUSED
    return c.ProblemError(code, str(exc))


TargetName = Annotated[str, PathParameter(max_length=300, description="hash-prefixed name")]


async def _receive(gate: Any, request: Request, path: str, offset: int, restart: bool) -> int:
    upload = await _run(partial(gate.begin, path, offset, restart=restart))
    try:
        async for chunk in request.stream():
            await _run(partial(upload.write, chunk))
        return await _run(upload.finish)
    finally:
        await _run(upload.abort)


class UpdatesController(Controller):
    """Regional IT publishes here (``edge admin publish --central URL``); boxes read /updates.

    No password: central verifies every offer as a box would (edge/update/gate.py), so
    only metadata signed by regional IT's keys, newer than what is served, gets in, and
    only target files that metadata names with their length and hash.
    """

    path = f"{c.API}/updates"

    @post("/offer", responses=UPDATE, status_code=200, request_max_body_size=c.MAX_UPDATE_OFFER)
    async def offer(
        self, gate: NamedDependency[Any], data: JSONBody[c.UpdateOffer]
    ) -> c.UpdateAnswer:
        """Offer signed metadata: published when complete, else the target files to upload."""
        try:
            files = {name: c.b64d(text) for name, text in data.metadata.items()}
        except c.DocumentError as exc:
            raise c.ProblemError(c.Code.MALFORMED, f"metadata is not base64: {exc}") from exc
        if data.resume and files:
            raise c.ProblemError(c.Code.MALFORMED, "give metadata or resume, not both")
        try:
            if data.resume:
                outcome = await _run(partial(gate.resume, data.resume))
            else:
                outcome = await _run(partial(gate.offer, files))
        except UpdateError as exc:
            raise _gate_problem(exc) from exc
        return c.UpdateAnswer(
            published=outcome.published,
            timestamp=outcome.timestamp,
            missing=[c.MissingTarget(m.path, m.length, m.sha256) for m in outcome.missing],
            new_files=outcome.new_files,
        )

    @put(
        "/targets/{target:path}",
        responses=UPDATE,
        status_code=200,
        request_max_body_size=c.MAX_UPDATE_TARGET,
    )
    async def target(
        self, gate: NamedDependency[Any], request: Request, target: TargetName
    ) -> c.TargetReceived:
        """Upload a whole target file a pending offer named (any earlier part is dropped)."""
        path = target.lstrip("/")
        try:
            offset = await _receive(gate, request, path, 0, True)
            return c.TargetReceived(path=path, offset=offset, complete=await _held(gate, path))
        except UpdateError as exc:
            raise _gate_problem(exc) from exc

    @head("/targets/{target:path}", responses=UPDATE, status_code=200)
    async def target_offset(self, gate: NamedDependency[Any], target: TargetName) -> Response[None]:
        """How much of a pending target central holds (Upload-Offset), to resume from."""
        try:
            offset, length = await _run(partial(gate.offset, target.lstrip("/")))
        except UpdateError as exc:
            raise _gate_problem(exc) from exc
        headers = {c.H_OFFSET: str(offset), c.H_LENGTH: str(length), "Cache-Control": "no-store"}
        return Response(content=None, headers=headers, status_code=200)

    @patch(
        "/targets/{target:path}",
        responses={**UPDATE, 409: spec("offset_mismatch (with offset), updates_not_set_up")},
        status_code=200,
        request_max_body_size=c.MAX_UPDATE_TARGET,
    )
    async def target_append(
        self,
        gate: NamedDependency[Any],
        request: Request,
        target: TargetName,
        upload_offset: Annotated[
            int, HeaderParameter(name=c.H_OFFSET, ge=0, le=c.MAX_UPDATE_TARGET)
        ],
    ) -> c.TargetReceived:
        """Append to a pending target from Upload-Offset: a cut upload resumes here."""
        path = target.lstrip("/")
        try:
            offset = await _receive(gate, request, path, upload_offset, False)
            return c.TargetReceived(path=path, offset=offset, complete=await _held(gate, path))
        except UpdateError as exc:
            raise _gate_problem(exc) from exc


async def _held(gate: Any, path: str) -> bool:
    offset, length = await _run(partial(gate.offset, path))
    return offset == length


@get("/health", responses=COMMON)
async def health(central: NamedDependency[Central]) -> c.Health:
    """Unauthenticated liveness: boxes and load balancers may poll it."""
    return c.Health(status="ok", protocol=c.PROTOCOL, server_time=central.now())


def _document_chunk_body(app: Litestar) -> None:
    """Litestar decodes declared bodies as JSON, so the raw chunk is read by hand and
    documented here instead."""
    path = app.openapi_schema.paths[f"{c.API}/blobs/{{blob_id}}"]  # type: ignore[index]
    path.patch.request_body = RequestBody(  # type: ignore[union-attr]
        content={
            c.CHUNK_MEDIA: OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
            )
        },
        required=True,
        description="the blob's bytes from Upload-Offset; at most 8 MiB",
    )


def create_app(central: Central, threads: int = 8, silent_after: float | None = None) -> Litestar:

    def size_thread_pool() -> None:
        # Requests wait on the database in worker threads; more threads than the
        # database can use only add GIL hand-overs: on PostgreSQL with two receivers,
        # 8 threads accepted ~400 batches/s where 40 managed ~260 (docs/benchmarks.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads

    # the signed update repository 'edge admin publish' writes (docs/updates.md): public,
    # since TUF metadata is signed and clerk passwords in it are sealed to each box
    updates = central.data / SERVED
    updates.mkdir(exist_ok=True)
    gate = Gate(central.data)
    app = Litestar(
        route_handlers=[
            SyncController,
            UpdatesController,
            health,
            create_static_files_router("/updates", [updates], include_in_schema=False),
        ],
        dependencies={
            "central": Provide(lambda: central, use_cache=True, sync_to_thread=False),
            "gate": Provide(lambda: gate, use_cache=True, sync_to_thread=False),
        },
        on_startup=[size_thread_pool],
        exception_handlers={
            c.ProblemError: on_problem,
            HTTPException: on_http_exception,
            DBAPIError: on_database_error,
            RecursionError: on_too_deep,
            Exception: on_unexpected,
        },
        request_max_body_size=1 << 20,
        openapi_config=OpenAPIConfig(
            title="Commune Edge central receiver",
            version=__version__,
            description="The sync contract (docs/protocol.md): enrollment, signed uplink of "
            "events and sealed blobs, receipts, downlink.",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        plugins=[FleetPlugin(silent_after)],
    )
    _document_chunk_body(app)
    return app


@dataclass(frozen=True)
class Rule:
    """What the gateway enforces for a route before the app sees the request.

    ``signed``: the four signature headers must name an enrolled device with a time in
    the window before the body is read, and the signature must verify before the body
    is parsed. ``max_body``: refused on Content-Length (413) or while counting. ``stream``:
    the app reads the body itself in pieces (update targets, up to 2 GiB, written to
    disk), so the gateway only times it. ``json``: checked for nesting depth.
    """

    signed: bool
    max_body: int
    stream: bool = False
    json: bool = True


_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def route_rule(method: str, path: str) -> Rule:
    """The gateway's rule for a request; kept beside the controllers it mirrors."""
    api = c.API + "/"
    if not path.startswith(api):
        # /health, /fleet, /fleet.json, /schema, /updates: read-only pages
        return Rule(signed=False, max_body=0 if method in _NO_BODY else 64 << 10)
    if path.startswith(f"{c.API}/updates/"):
        if path.startswith(f"{c.API}/updates/targets/") and method in ("PUT", "PATCH"):
            return Rule(signed=False, max_body=c.MAX_UPDATE_TARGET, stream=True, json=False)
        if path == f"{c.API}/updates/offer" and method == "POST":
            return Rule(signed=False, max_body=c.MAX_UPDATE_OFFER)
        return Rule(signed=False, max_body=0 if method in _NO_BODY else 64 << 10)
    if path == f"{c.API}/enroll":
        return Rule(signed=False, max_body=c.MAX_ENROLL_BYTES)
    if method in _NO_BODY:
        return Rule(signed=True, max_body=0)
    if method == "PATCH" and path.startswith(f"{c.API}/blobs/"):
        return Rule(signed=True, max_body=c.MAX_CHUNK, json=False)
    if method == "PUT" and path.startswith(f"{c.API}/batches/"):
        return Rule(signed=True, max_body=c.MAX_BATCH_BODY)
    if path == f"{c.API}/blobs/status":
        return Rule(signed=True, max_body=c.MAX_STATUS_BYTES)
    if path == f"{c.API}/device/health":
        return Rule(signed=True, max_body=c.MAX_HEALTH_BYTES)
    return Rule(signed=True, max_body=64 << 10)


@dataclass(frozen=True)
class Limits:
    """How much of central's capacity one process lends to requests (docs/operations.md).

    ``inflight``: requests being worked on (body complete); ``receiving``: requests whose
    body is still arriving, kept apart so that slow senders cannot take the slots boxes
    need; ``body_memory``: body bytes held at once across both; ``body_idle``: seconds a
    body may pause; ``body_grace`` and ``body_rate``: after the grace, a body must keep up
    an average of ``body_rate`` bytes/s (a box's chunk is sized to take ~5 s on its link,
    so only a sender that trickles on purpose falls below).
    """

    inflight: int = 256
    receiving: int = 1024
    body_memory: int = 256 << 20
    body_idle: float = 15.0
    body_grace: float = 20.0
    body_rate: float = 1024.0


class _Refusal(Exception):
    """The gateway answers this request itself, and closes the connection."""

    def __init__(self, problem: c.ProblemError) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _busy(detail: str) -> c.ProblemError:
    return c.ProblemError(c.Code.BUSY, detail, retry_after=float(random.randint(1, 10)))


class Gateway:
    """The ASGI layer in front of the app: central's time on every answer, and admission.

    Every response carries ``Edge-Server-Time`` so a box with a wrong clock can sign its
    next request with central's time. Before the app sees a request the gateway, in this
    order: checks a signed route's headers (no body is read for an unsigned, unknown or
    stale sender); refuses a declared body over the route's limit; reads the body itself
    under the receiving limit, the memory budget and the idle/rate deadlines; verifies the
    signature over it; refuses JSON nested past ``contract.MAX_JSON_DEPTH``; and only then
    takes one of the ``inflight`` slots. So a trickling or oversized sender holds at most a
    receiving slot and the bytes it actually sent, and never a slot that health checks and
    boxes need. When too many requests are in flight it answers 503 ``busy`` with a
    jittered Retry-After: after a regional outage thousands of boxes come back together;
    shedding early keeps latency bounded for those admitted, and the jitter spreads the
    rest.
    """

    def __init__(self, app: Litestar, central: Central, limits: Limits | int = 256) -> None:
        self.app = app
        self.central = central
        self.limits = limits if isinstance(limits, Limits) else Limits(inflight=limits)
        self.limit = self.limits.inflight
        self.inflight = 0
        self.receiving = 0
        self.body_bytes = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # type: ignore[arg-type]
            return
        stamp = (c.H_SERVER_TIME.lower().encode(), str(self.central.now()).encode())
        method = scope.get("method", "GET")
        rule = route_rule(method, scope.get("path", ""))
        held = 0
        try:
            try:
                if self.inflight >= self.limits.inflight:  # shed before reading anything
                    raise _Refusal(_busy("too many requests in flight"))
                if rule.signed:
                    await self._check_headers(scope)
                declared = _content_length(scope)
                if declared is not None and declared > rule.max_body:
                    raise _Refusal(
                        c.ProblemError(
                            c.Code.TOO_LARGE, f"this route takes at most {rule.max_body} bytes"
                        )
                    )
                if rule.stream:
                    app_receive = self._timed(receive)
                else:
                    body = await self._read_body(receive, rule)
                    held = len(body)
                    if rule.signed:
                        await self._verify(scope, method, body)
                    if rule.json and body and await _maybe_thread(c.json_too_deep, body):
                        raise _Refusal(
                            c.ProblemError(
                                c.Code.MALFORMED,
                                f"JSON nests deeper than {c.MAX_JSON_DEPTH} levels",
                            )
                        )
                    app_receive = _replay(body, receive)
                if self.inflight >= self.limits.inflight:
                    raise _Refusal(_busy("too many requests in flight"))
            except _Refusal as refusal:
                await _answer(send, refusal.problem, stamp)
                return

            caching = _update_caching(scope.get("path", ""))

            async def send_stamped(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    extra = [stamp]
                    if caching and message.get("status") == 200:
                        extra.append((b"cache-control", caching))
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            self.inflight += 1
            try:
                await self.app(scope, app_receive, send_stamped)  # type: ignore[arg-type]
            finally:
                self.inflight -= 1
        finally:
            self.body_bytes -= held

    async def _check_headers(self, scope: dict[str, Any]) -> None:
        headers = Headers.from_scope(scope)  # type: ignore[arg-type]
        device_id = headers.get(c.H_DEVICE, "")
        try:
            if self.central.cached_device(device_id) is not None:
                self.central.check_headers(headers)
            else:  # a database read: off the event loop
                await _run(partial(self.central.check_headers, headers))
        except c.ProblemError as exc:
            raise _Refusal(exc) from exc

    async def _verify(self, scope: dict[str, Any], method: str, body: bytes) -> None:
        """The signature over the body, before anything parses it (the handler checks again,
        in the same call that opens its transaction)."""
        headers = Headers.from_scope(scope)  # type: ignore[arg-type]
        target = scope_target(scope)
        try:
            await _maybe_thread(self.central.verify_request, method, target, headers, body)
        except c.ProblemError as exc:
            raise _Refusal(exc) from exc

    async def _read_body(self, receive: Any, rule: Rule) -> bytes:
        """The whole body, within the route's limit, the memory budget and the deadlines.

        Bytes count against the budget as they arrive (not as declared), so a sender
        that declares 16 MiB and trickles holds only what it sent.
        """
        if self.receiving >= self.limits.receiving:
            raise _Refusal(_busy("too many requests are still sending their bodies"))
        self.receiving += 1
        chunks: list[bytes] = []
        size = 0
        try:
            clock = _BodyClock(self.limits)
            while True:
                message = await clock.receive(receive)
                if message["type"] != "http.request":
                    raise _Refusal(
                        c.ProblemError(c.Code.MALFORMED, "the client went away mid-body")
                    )
                chunk = message.get("body", b"")
                if chunk:
                    if size + len(chunk) > rule.max_body:
                        raise _Refusal(
                            c.ProblemError(
                                c.Code.TOO_LARGE, f"this route takes at most {rule.max_body} bytes"
                            )
                        )
                    if self.body_bytes + len(chunk) > self.limits.body_memory:
                        raise _Refusal(_busy("central holds as many request bodies as it may"))
                    self.body_bytes += len(chunk)
                    size += len(chunk)
                    chunks.append(chunk)
                    clock.arrived(size)
                if not message.get("more_body", False):
                    break
        except BaseException:
            self.body_bytes -= size  # the caller releases a body only once it has it
            raise
        finally:
            self.receiving -= 1
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _timed(self, receive: Any) -> Any:
        """For streamed bodies: the same deadlines, a lapse ends the body as a disconnect."""
        clock = _BodyClock(self.limits)
        size = 0

        async def timed() -> dict[str, Any]:
            nonlocal size
            try:
                message = await clock.receive(receive)
            except _Refusal:
                return {"type": "http.disconnect"}
            size += len(message.get("body", b""))
            clock.arrived(size)
            return message

        return timed


class _BodyClock:
    """The deadline for a body's next bytes: no pause over ``body_idle``, and after
    ``body_grace`` an average of at least ``body_rate`` bytes/s from the start."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.start = time.monotonic()
        self.last = self.start
        self.size = 0

    def arrived(self, size: int) -> None:
        self.size = size
        self.last = time.monotonic()

    async def receive(self, receive: Any) -> dict[str, Any]:
        deadline = min(
            self.last + self.limits.body_idle,
            self.start + self.limits.body_grace + self.size / self.limits.body_rate,
        )
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            return await receive()
        raise _Refusal(
            c.ProblemError(
                c.Code.TOO_SLOW,
                f"the body paused over {self.limits.body_idle:g} s or fell below "
                f"{self.limits.body_rate:g} B/s",
            )
        )


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise _Refusal(
                    c.ProblemError(c.Code.MALFORMED, "Content-Length is not a number")
                ) from None
    return None


def _replay(body: bytes, receive: Any) -> Any:
    """The app's ``receive``: the body read by the gateway, then the connection's events."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _maybe_thread(func: Callable[..., T], *args: Any) -> T:
    """Hashing or scanning a large body would stall every other request on the event loop."""
    if sum(len(a) for a in args if isinstance(a, bytes)) > (256 << 10):
        return await anyio.to_thread.run_sync(partial(func, *args))
    return func(*args)


async def _answer(send: Any, problem: c.ProblemError, stamp: tuple[bytes, bytes]) -> None:
    """A refusal before the app: problem+json, and ``Connection: close`` so that whatever
    body the client still sends is not read."""
    body = msgspec.json.encode(problem.problem())
    headers = [
        (b"content-type", c.PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        stamp,
    ]
    if problem.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(problem.retry_after))).encode()))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _update_caching(path: str) -> bytes | None:
    """Cache-Control for the update repository, so a proxy or CDN in front of central helps.

    Versioned metadata (``N.role.json``) and hash-named targets never change: cache
    them for a year. ``timestamp.json`` changes on every publish: a cache must ask each
    time, or boxes behind it would see a frozen repository until it expired.
    """
    if not path.startswith("/updates/"):
        return None
    if path.endswith("/timestamp.json"):
        return b"no-cache"
    return b"public, max-age=31536000, immutable"


def asgi(
    central: Central,
    limit: int | Limits = 256,
    threads: int = 8,
    silent_after: float | None = None,
) -> Gateway:
    """What uvicorn serves; ``silent_after`` (minutes) is the fleet page's silence threshold.

    ``limit`` is the in-flight limit, or every admission limit as ``Limits``.
    """
    return Gateway(create_app(central, threads, silent_after), central, limit)
