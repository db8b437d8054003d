"""The HTTP pieces every controller of central's app shares: response documentation, the
request target as a box signs it, and the dependency that verifies a signed request.

A module of its own so that the fleet plugin and the sync controllers both build on it
without importing each other (``edge.sync.central.app`` registers the fleet plugin).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from litestar import Request
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter

from edge.sync import contract as c
from edge.sync.central.receiver import Central, Verified


def spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=c.Problem, description=description, media_type=c.PROBLEM_JSON
    )


COMMON = {
    400: spec("malformed: the request is not what the protocol expects"),
    408: spec("too_slow: the body paused or trickled below the accepted rate"),
    413: spec("too_large"),
    503: spec("busy / unavailable: retry after Retry-After seconds"),
}
SIGNED = {
    **COMMON,
    401: spec("unauthenticated, unknown_device, bad_signature, stale_time (with server_time)"),
    403: spec("device_revoked"),
    409: spec("replayed"),
}


def signed_target(request: Request) -> str:
    """The request target as the box signed it."""
    return scope_target(request.scope)  # type: ignore[arg-type]


def scope_target(scope: dict[str, Any]) -> str:
    """The request target as the box signed it: raw path, then ``?`` and the raw query."""
    raw = scope.get("raw_path") or scope["path"].encode()
    target = raw.decode("latin-1")
    query = scope.get("query_string") or b""
    if query:
        target += "?" + query.decode("latin-1")
    return target


async def verified_request(
    request: Request,
    central: NamedDependency[Central],
    edge_device: Annotated[str | None, HeaderParameter(name=c.H_DEVICE, required=False)] = None,
    edge_time: Annotated[str | None, HeaderParameter(name=c.H_TIME, required=False)] = None,
    edge_nonce: Annotated[str | None, HeaderParameter(name=c.H_NONCE, required=False)] = None,
    edge_signature: Annotated[
        str | None, HeaderParameter(name=c.H_SIGNATURE, required=False)
    ] = None,
) -> Verified:
    """The one place a signed request is checked: its device, time and signature over the
    method, the target as signed and the body, off the event loop. Controllers take the
    ``Verified`` it yields and never see headers or bodies to check. The header parameters
    are here for the OpenAPI schema; ``Central`` reads them from the request itself."""
    body = await request.body()
    return await anyio.to_thread.run_sync(
        partial(
            central.verify_request,
            request.method,
            signed_target(request),
            request.headers,
            body,
        )
    )
