"""Schemathesis against central's own OpenAPI schema: no 5xx, no answer off the schema.

Most generated requests are signed with an enrolled box's device key (by a
requests session that signs the exact bytes sent), so the fuzzing reaches past
authentication into enrollment, blob uploads, batches and the downlink; the
rest are sent as generated, to exercise the refusals.
"""

from __future__ import annotations

import random
import secrets
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.requests import REQUESTS_TRANSPORT, binary_serializer

from edge.sync import client
from edge.sync import contract as c
from edge.update.gate import Gate
from edge.update.repository import AdminRepo
from edge.vault import Keyring
from tests.syncutil import PASSWORD, CentralServer

# Chunks are raw bytes under tus's media type; send them as schemathesis sends binary.
REQUESTS_TRANSPORT.serializer(c.CHUNK_MEDIA)(binary_serializer)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class SigningSession(requests.Session):
    """Signs most requests as the enrolled box would, over the bytes actually sent."""

    def __init__(self, keyring: Keyring, device: str, seed: int = 3) -> None:
        super().__init__()
        self.keyring = keyring
        self.device = device
        self.rng = random.Random(seed)

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[no-untyped-def,override]
        if self.rng.random() < 0.75:
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode("utf-8")
            stamp = int(time.time() * 1000)
            nonce = secrets.token_hex(16)
            message = c.request_message(
                request.method or "GET", request.path_url, self.device, stamp, nonce, body
            )
            request.headers[c.H_DEVICE] = self.device
            request.headers[c.H_TIME] = str(stamp)
            request.headers[c.H_NONCE] = nonce
            request.headers[c.H_SIGNATURE] = c.b64e(self.keyring.sign(message))
        return super().send(request, **kwargs)


@pytest.fixture
def enrolled_central(central: CentralServer, box: Path) -> tuple[CentralServer, SigningSession]:
    session = Keyring.load(box).unlock("lan", PASSWORD)
    try:
        device = client.enroll(
            box, central.url, central.central.issue_token("H29.01"), session=session
        )["device"]
    finally:
        session.close()
    # central trusts an update root, so fuzzed offers reach the TUF verification itself
    repo = AdminRepo.create(box.parent / "update-repo")
    Gate(central.central.data).pin((repo.metadata_dir / "1.root.json").read_bytes())
    return central, SigningSession(Keyring.load(box), device)


def test_central_never_fails_and_keeps_to_its_schema(
    enrolled_central: tuple[CentralServer, SigningSession],
) -> None:
    server, session = enrolled_central
    loaded = schemathesis.openapi.from_url(server.url + "/schema/openapi.json")
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/enroll",
        "/v1/batches/{batch_id}",
        "/v1/updates/offer",
        "/v1/updates/targets/{target}",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, session=session)
            case.validate_response(response, checks=CHECKS)

        exercise()
