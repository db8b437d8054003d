"""The HTTP pieces every controller of central's app shares: response documentation, the
request target as a box signs it, and the signature headers' description.

A module of its own so that the fleet plugin and the sync controllers both build on it
without importing each other (``edge.sync.central.app`` registers the fleet plugin).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter

from edge.sync import contract as c


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


def auth_headers(
    edge_device: Annotated[str | None, HeaderParameter(name=c.H_DEVICE, required=False)] = None,
    edge_time: Annotated[str | None, HeaderParameter(name=c.H_TIME, required=False)] = None,
    edge_nonce: Annotated[str | None, HeaderParameter(name=c.H_NONCE, required=False)] = None,
    edge_signature: Annotated[
        str | None, HeaderParameter(name=c.H_SIGNATURE, required=False)
    ] = None,
) -> None:
    """Documents the signature headers; ``Central`` reads and checks them."""
