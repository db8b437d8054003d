"""Regional IT's side of publishing over HTTP: ``edge admin publish --central URL``.

Offer the current metadata; upload the target files central answers are
missing (a release bundle only the first time), each resumable: after a cut the
next attempt asks central how much it holds (HEAD, ``Upload-Offset``) and sends
only the rest (PATCH); then name the same offer again (the SHA-256 of its
timestamp.json: central kept the verified metadata), which publishes.
Central verifies each step as a box would (edge/update/gate.py), so this side
needs no credential beyond the signing keys it already used. Transient failures
(a dropped connection, 429/503) are retried with exponential backoff and jitter;
a refusal is reported in central's own words, one line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tenacity

from edge import __version__
from edge.update import UpdateError

OFFER = "/v1/updates/offer"
TARGETS = "/v1/updates/targets/"
OFFSET = "Upload-Offset"
ATTEMPTS = 5

logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Published:
    timestamp: int
    uploaded: list[str]
    uploaded_bytes: int
    new_files: int


class _Transient(Exception):
    """Worth another try: the link or central's load, not the update."""


class _NotFound(UpdateError):
    """404: for a resumed offer, central no longer holds it (another publish came
    between) and the metadata is sent whole; anywhere else, the URL is not central."""


def offer_files(metadata_dir: Path) -> dict[str, bytes]:
    """What a verifier needs: every root version, the timestamp, and the versions it names."""
    files = {p.name: p.read_bytes() for p in metadata_dir.glob("*.root.json")}
    files["timestamp.json"] = (metadata_dir / "timestamp.json").read_bytes()
    snapshot_version = json.loads(files["timestamp.json"])["signed"]["meta"]["snapshot.json"]
    snapshot_name = f"{snapshot_version['version']}.snapshot.json"
    files[snapshot_name] = (metadata_dir / snapshot_name).read_bytes()
    for role, info in json.loads(files[snapshot_name])["signed"]["meta"].items():
        name = f"{info['version']}.{role}"
        files[name] = (metadata_dir / name).read_bytes()
    return files


def publish(metadata_dir: Path, targets_dir: Path, central: str) -> Published:
    base = central.rstrip("/").removesuffix("/updates")
    files = offer_files(metadata_dir)
    body = {"metadata": {n: base64.b64encode(d).decode("ascii") for n, d in files.items()}}
    uploaded: list[str] = []
    size = 0
    with httpx.Client(
        base_url=base,
        timeout=httpx.Timeout(60.0, connect=15.0),
        headers={"User-Agent": f"commune-edge-admin/{__version__}"},
    ) as client:
        resume = {"resume": hashlib.sha256(files["timestamp.json"]).hexdigest()}
        for round_ in range(3):
            if round_ == 0:
                answer = _call(client, "POST", OFFER, json=body)
            else:
                # the offer central verified and kept, named: the metadata travels once
                try:
                    answer = _call(client, "POST", OFFER, json=resume)
                except _NotFound:
                    answer = _call(client, "POST", OFFER, json=body)
            if answer["published"]:
                return Published(answer["timestamp"], uploaded, size, answer["new_files"])
            for missing in answer["missing"]:
                source = targets_dir / missing["path"]
                if not source.is_file():
                    raise UpdateError(
                        f"central asks for {missing['path']}, which is not in {targets_dir}"
                    )
                size += _upload(client, missing["path"], source)
                uploaded.append(missing["path"])
    raise UpdateError("central kept asking for target files after they were uploaded")


def _blocks(path: Path, offset: int, sent: list[int]) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(offset)
        while block := fh.read(1 << 20):
            sent[0] += len(block)
            yield block


def _upload(client: httpx.Client, name: str, source: Path) -> int:
    """Send one target file, resuming where central's copy ends; returns the bytes sent.

    A cut link costs the retry a HEAD and the rest of the file, not the whole file.
    """
    url = TARGETS + name
    length = source.stat().st_size
    sent = [0]

    def attempt() -> dict[str, Any]:
        offset = int(_head(client, url)[OFFSET])
        if offset >= length:
            return {"complete": True}
        return _once(
            client,
            "PATCH",
            url,
            content=_blocks(source, offset, sent),
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length - offset),
                OFFSET: str(offset),
            },
        )

    answer = _retrying(client, attempt)
    if not answer.get("complete"):
        raise UpdateError(f"central did not take all of {name}: publish again to resume")
    return sent[0]


def _head(client: httpx.Client, url: str) -> httpx.Headers:
    try:
        response = client.head(url)
    except httpx.TransportError as exc:
        raise _Transient(str(exc) or type(exc).__name__) from exc
    if response.status_code in (429, 502, 503, 504):
        raise _Transient(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise UpdateError(f"central will not take {url.removeprefix(TARGETS)} (HTTP "
                          f"{response.status_code}): offer the metadata again")  # fmt: skip
    return response.headers


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """One request with retries."""
    return _retrying(client, lambda: _once(client, method, url, **kwargs))


def _retrying(client: httpx.Client, step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Transient),
        wait=tenacity.wait_random_exponential(multiplier=0.25, max=8),
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return step()
    except _Transient as exc:
        raise UpdateError(f"cannot reach central at {client.base_url}: {exc}") from exc
    raise AssertionError("unreachable")


def _once(client: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise _Transient(str(exc) or type(exc).__name__) from exc
    if response.status_code in (429, 502, 503, 504):
        raise _Transient(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if body.get("code") == "offset_mismatch":
        raise _Transient("central's copy moved on: resuming from its offset")
    if response.status_code == 404:
        raise _NotFound(f"{client.base_url} has no update upload here: is it central?")
    if response.status_code >= 400:
        detail = body.get("detail") or body.get("title") or f"HTTP {response.status_code}"
        raise UpdateError(f"central refused the update: {detail}")
    return body
