"""The box's sync client: enrollment, then rounds of uplink and downlink.

A round sends what is pending (batches of events, with the sealed blobs they
reference uploaded first, in chunks that resume from central's offset), keeps
central's signed receipts, then reads the downlink feed from the box's cursor.
It is bounded: every request retries with exponential backoff and full jitter
(tenacity), honours 429/503 ``Retry-After``, and the round gives up at its
deadline, so a box never spins its CPU or its link while central is away.

The box's wall clock may be wrong. Requests are signed with the wall clock plus
an offset learned from central's ``Edge-Server-Time`` header; a ``stale_time``
refusal carries central's time, the offset is corrected and the request is
signed again at once. Only signed times (receipts, the clock statement bound to
a request's nonce, downlink items) raise the box's time floor.
"""

from __future__ import annotations

import logging
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import tenacity

from edge import __version__
from edge.clock import iso
from edge.observe.health import health_summary
from edge.printable import printable
from edge.records import Ledger
from edge.store import Store
from edge.sync import contract as c
from edge.sync import downlink, outbox
from edge.update import UPDATE_HINT
from edge.vault import Keyring, OfficeSession

log = logging.getLogger("edge.sync")
# One INFO line per request would drown the box's log on a busy round.
logging.getLogger("httpx").setLevel(logging.WARNING)

LAST_ERROR = "sync.last_error"
"""Meta key: the last failed round's time and reason; emptied by a round that finishes.

For the technician (sync screen's technical details, the fleet page): it may quote
unsigned text from central's URL, escaped (``edge.printable``)."""
LAST_ERROR_CODE = "sync.last_error_code"
"""Meta key: the last failed round's stable code (``RoundReport.error_code``), from which
the clerk's screen chooses its own sentence; emptied with ``LAST_ERROR``."""

USER_AGENT = f"commune-edge/{__version__}"


@dataclass(frozen=True)
class Policy:
    """How hard a round tries. Defaults suit a 2G/3G link; tests shrink the waits."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 60.0
    round_seconds: float = 900.0
    max_retry_after: float = 600.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    chunk_start: int = 64 << 10
    chunk_min: int = 16 << 10
    chunk_max: int = 4 << 20
    chunk_seconds: float = 5.0
    batch_events: int = outbox.DEFAULT_BATCH_EVENTS
    batch_bytes: int = outbox.DEFAULT_BATCH_BYTES


class Stopped(Exception):
    """The daemon is stopping; the round ends where it is (everything done so far is kept)."""


class Transient(Exception):
    """Worth retrying: the link dropped, central is busy or briefly broken."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        # the reason quotes link errors and central's answers: printed and logged as is
        super().__init__(printable(reason))
        self.retry_after = retry_after


UNSIGNED_TEXT = 200
"""Characters of an unsigned problem text kept for the technician (before escaping)."""

_CODES = frozenset(str(code) for code in c.Code)


def known_code(code: str) -> str:
    """A problem's code if the contract has it, else ``unknown``.

    Problem bodies are not signed: whatever answers at central's URL chooses the code.
    Only the contract's codes are branched on, counted (``errors.<code>``) and turned
    into a sentence for the clerk.
    """
    return code if code in _CODES else "unknown"


def unsigned_text(text: str) -> str:
    """Text from a problem body, fit for a log line or the technician's screen."""
    cut = text[:UNSIGNED_TEXT]
    return printable(cut) + ("…" if len(text) > UNSIGNED_TEXT else "")


class Refused(Exception):
    """Central said no for a reason retrying will not fix; ``code`` says which.

    The message names the code and quotes the body's text as unsigned: it helps the
    technician, and is never shown to the clerk (the UI says a sentence of its own,
    chosen from the code).
    """

    def __init__(self, problem: c.Problem) -> None:
        said = unsigned_text(problem.detail or problem.title)
        super().__init__(f"central refused ({self.code_of(problem)}); its unsigned text: {said}")
        self.problem = problem

    @staticmethod
    def code_of(problem: c.Problem) -> str:
        return known_code(problem.code)

    @property
    def code(self) -> str:
        return self.code_of(self.problem)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get(c.H_RETRY_AFTER)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _problem(response: httpx.Response) -> c.Problem:
    try:
        return msgspec.json.decode(response.content, type=c.Problem)
    except (msgspec.DecodeError, msgspec.ValidationError):
        code = c.Code.UNAVAILABLE if response.status_code >= 500 else c.Code.MALFORMED
        return c.Problem(
            code=str(code),
            title=f"HTTP {response.status_code}",
            status=response.status_code,
            detail=response.text[:200],
        )


class _Wait(tenacity.wait.wait_base):
    """Full jitter, unless central said how long to wait (then that, plus a little jitter)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.jitter = tenacity.wait_random_exponential(multiplier=policy.base, max=policy.cap)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(after, self.policy.max_retry_after) + random.uniform(0, self.policy.base)
        return self.jitter(retry_state)


class Link:
    """Signed HTTP requests to central with bounded retries; one per round."""

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        device_id: str | None,
        *,
        policy: Policy | None = None,
        offset_ms: int = 0,
        stop: threading.Event | None = None,
        transport: httpx.BaseTransport | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy or Policy()
        self.keyring = keyring
        self.device_id = device_id
        self.offset_ms = offset_ms
        self.stop = stop or threading.Event()
        self.wall = wall
        self.deadline = time.monotonic() + self.policy.round_seconds
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self.requests = 0
        self.retries = 0
        self.bytes_up = 0

    def close(self) -> None:
        self.client.close()

    def now_ms(self) -> int:
        return int(self.wall() * 1000) + self.offset_ms

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped("stopping")

    def _stop(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.attempts:
            return True
        return time.monotonic() + (retry_state.upcoming_sleep or 0) > self.deadline

    def _count_retry(self, _retry_state: tenacity.RetryCallState) -> None:
        self.retries += 1

    def retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            stop=self._stop,
            wait=_Wait(self.policy),
            retry=tenacity.retry_if_exception_type(Transient),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )

    def _learn_time(self, response: httpx.Response) -> None:
        stamp = response.headers.get(c.H_SERVER_TIME)
        if stamp and stamp.isdigit():
            self.offset_ms = int(stamp) - int(self.wall() * 1000)

    def send_once(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        """One request; a stale time or a duplicate-nonce refusal is re-signed once at once."""
        if self.stop.is_set():
            raise Stopped("stopping")
        for again in (True, False):
            request = self.client.build_request(
                method, path, content=body, headers=headers or {}, params=params
            )
            if signed:
                assert self.device_id is not None
                nonce = secrets.token_hex(16)
                stamp = self.now_ms()
                target = request.url.raw_path.decode("ascii")
                message = c.request_message(method, target, self.device_id, stamp, nonce, body)
                request.headers[c.H_DEVICE] = self.device_id
                request.headers[c.H_TIME] = str(stamp)
                request.headers[c.H_NONCE] = nonce
                request.headers[c.H_SIGNATURE] = c.b64e(self.keyring.sign(message))
            self.requests += 1
            self.bytes_up += len(body)
            try:
                response = self.client.send(request)
            except httpx.TransportError as exc:
                raise Transient(f"link: {type(exc).__name__}: {exc}") from exc
            self._learn_time(response)
            if response.status_code < 300:
                return response
            problem = _problem(response)
            if again and problem.code == c.Code.STALE_TIME and problem.server_time is not None:
                self.offset_ms = problem.server_time - int(self.wall() * 1000)
                log.warning(
                    "box clock is off by %d s: signing with central's time", self.offset_ms // 1000
                )
                continue
            if again and problem.code == c.Code.REPLAYED:
                continue
            if response.status_code in (429, 503) or response.status_code >= 500:
                raise Transient(
                    f"central answered {response.status_code} ({known_code(problem.code)})",
                    _retry_after(response),
                )
            raise Refused(problem)
        raise Transient("central kept refusing the request's time or nonce")

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in self.retrying():
            with attempt:
                return self.send_once(method, path, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover


def _decode(response: httpx.Response, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Transient(f"central's answer is not what the protocol says: {exc}") from exc


# -- enrollment ---------------------------------------------------------------


def enroll(
    state: Path,
    url: str,
    token: str,
    *,
    policy: Policy | None = None,
    session: OfficeSession | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Register this box with central and learn central's keys and settings."""
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        known = outbox.enrollment(store)
        office = store.meta("office") or keyring.office
        if known is not None and known.central_url != url.rstrip("/"):
            raise outbox.SyncStateError(
                f"this box is enrolled with {known.central_url} already: re-provision to move it"
            )
        device_public = c.b64e(keyring.device_public)
        proof = c.b64e(keyring.sign(c.enroll_message(token, device_public, office)))
        request = c.EnrollRequest(
            token=token,
            device_public=device_public,
            office=office,
            software=f"commune-edge {__version__}",
            proof=proof,
        )
        link = Link(url, keyring, None, policy=policy, transport=transport)
        try:
            response = link.call(
                "POST",
                f"{c.API}/enroll",
                body=c.encode(request),
                headers={"Content-Type": "application/json"},
                signed=False,
            )
        finally:
            link.close()
        answer: c.EnrollAnswer = _decode(response, c.EnrollAnswer)
        if answer.device_id != c.device_id_for(keyring.device_public):
            raise outbox.SyncStateError("central answered with another device id: check the URL")
        keyring.set_central(c.b64d(answer.recipient_public), c.b64d(answer.receipt_public))
        with store.transaction():
            outbox.save_enrollment(store, answer.device_id, url.rstrip("/"), office)
            outbox.put_cursor(store, "clock.offset_ms", str(link.offset_ms))
            store.clock.observe(answer.server_time)
            if answer.settings:
                current = store.settings()
                known_settings = {
                    k: v for k, v in answer.settings.items() if k in current.as_dict()
                }
                store.put_settings(current.with_changes(**known_settings))
            outbox.bump_config(store)
        rewrapped = outbox.rewrap_for_central(store, keyring, session) if session else 0
        return {
            "device": answer.device_id,
            "office": office,
            "central": url.rstrip("/"),
            "rewrapped_keys": rewrapped,
            "keys_waiting_for_clerk": outbox.keys_waiting(store),
            "update_root": _pin_update_root(state, answer.update_root),
        }
    finally:
        store.close()


def _pin_update_root(state: Path, offered: str | None) -> str:
    """Pin the update root central hands out, unless provisioning pinned one already.

    Trust on first enrollment: as strong as the link's TLS and the one-time token;
    ``edge init --trust-root`` at provisioning is stronger and always wins.
    """
    from edge.update import UpdateError
    from edge.update.client import ROOT_FILE, pin_root, update_dir

    if (update_dir(state) / ROOT_FILE).exists():
        return "kept (pinned at provisioning)"
    if not offered:
        return "none (central trusts no update root yet)"
    try:
        version = pin_root(state, c.b64d(offered))
    except (UpdateError, c.DocumentError) as exc:
        log.warning("central's update root was not pinned: %s", exc)
        return f"refused ({exc})"
    return f"pinned version {version} from central"


# -- a round ------------------------------------------------------------------------


@dataclass
class RoundReport:
    """What ``edge sync --once --json`` prints."""

    batches: int = 0
    events: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    bytes_up: int = 0
    requests: int = 0
    retries: int = 0
    receipts_adopted: int = 0
    central_lost_events: int = 0
    downlink: dict[str, int] = field(
        default_factory=lambda: {"status": 0, "config": 0, "skipped": 0}
    )
    pending: dict[str, int] = field(default_factory=dict)
    central_time: int | None = None
    health_sent: bool = False
    done: bool = False
    error: str | None = None
    error_code: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Round:
    """One uplink-then-downlink pass with its own link; see the module doc."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        policy: Policy | None = None,
        stop: threading.Event | None = None,
        transport: httpx.BaseTransport | None = None,
        ledger: Ledger | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.policy = policy or Policy()
        known = outbox.enrollment(store)
        if known is None:
            raise outbox.SyncStateError("this box is not enrolled: run 'edge enroll' first")
        self.enrollment = known
        self.link = Link(
            known.central_url,
            keyring,
            known.device_id,
            policy=self.policy,
            offset_ms=int(outbox.cursor(store, "clock.offset_ms", "0") or 0),
            stop=stop,
            transport=transport,
            wall=wall,
        )
        self.ledger = ledger or Ledger(store, keyring.sealer())
        self.chunk = self.policy.chunk_start
        self.report = RoundReport()
        self.rewinds = 0

    def run(self) -> RoundReport:
        try:
            self.check_head()
            self.uplink()
            if self.downlink():
                self.uplink()
            self.report.pending = outbox.summary(self.store)
            pending = self.report.pending
            self.report.done = not (
                pending["events"]
                or pending["batches"]
                or pending["keys"]
                or pending["keys_waiting_for_clerk"]
            )
            outbox.settle_lost_alert(self.store, self.report.done)
        except Stopped:
            self.report.error = "stopped before the round finished"
        except Refused as exc:
            self.report.error = str(exc)
            self.report.error_code = exc.code
        except Transient as exc:
            self.report.error = f"central is unreachable or busy ({exc}): will retry later"
            self.report.error_code = "unreachable"
        except outbox.SyncStateError as exc:
            self.report.error = str(exc)
            self.report.error_code = "sync_state"
        finally:
            with self.store.transaction():
                outbox.put_cursor(self.store, "clock.offset_ms", str(self.link.offset_ms))
                if self.report.error_code:
                    # failed rounds by kind, for /metrics (edge/observe/health.py)
                    name = f"errors.{self.report.error_code}"
                    count = int(outbox.cursor(self.store, name, "0") or 0)
                    outbox.put_cursor(self.store, name, str(count + 1))
                    # the clerk's sync screen and central's fleet page show the last one
                    stamp = iso(max(self.store.clock.wall_ms(), self.store.clock.floor_ms))
                    problem = printable(f"{stamp} {self.report.error}")[: c.MAX_ALERT_TEXT]
                    self.store.put_meta(LAST_ERROR, problem)
                    self.store.put_meta(LAST_ERROR_CODE, self.report.error_code)
                elif self.report.done:
                    self.store.put_meta(LAST_ERROR, "")
                    self.store.put_meta(LAST_ERROR_CODE, "")
            # After the cursor, so the summary carries this round's clock offset; not when
            # the link is down (one more doomed request) or the daemon is stopping.
            if self.report.error_code != "unreachable" and not self.link.stop.is_set():
                self.report.health_sent = self.send_health()
            self.report.requests = self.link.requests
            self.report.retries = self.link.retries
            self.report.bytes_up = self.link.bytes_up
            if not self.report.pending:
                self.report.pending = outbox.summary(self.store)
            self.link.close()
        return self.report

    # -- health ----------------------------------------------------------------

    def send_health(self) -> bool:
        """Tell central how this box is, for regional IT's fleet page; best effort.

        One attempt, no retries: the next round sends a fresher summary anyway, and a
        failure here must never turn a good round into a failed one.
        """
        try:
            summary = health_summary(self.store, self.store.path.parent)
            body = c.encode(c.HealthReport(v=c.PROTOCOL, summary=wire_summary(summary)))
        except (sqlite3.Error, OSError, msgspec.ValidationError) as exc:
            log.warning("health summary not sent: cannot read it (%s)", exc)
            return False
        try:
            self.link.send_once(
                "POST",
                f"{c.API}/device/health",
                body=body,
                headers={"Content-Type": "application/json"},
            )
        except Refused as exc:
            if exc.code in (c.Code.NOT_FOUND, c.Code.METHOD_NOT_ALLOWED):
                log.info("central does not take health reports yet (an older receiver)")
            else:
                log.warning("health summary not sent: %s", exc)
            return False
        except (Transient, Stopped) as exc:
            log.info("health summary not sent: %s", exc)
            return False
        return True

    # -- uplink ----------------------------------------------------------------

    def uplink(self) -> None:
        while True:
            if time.monotonic() > self.link.deadline:
                raise Transient("the round's time is up")
            waiting = outbox.open_batches(self.store)
            batch = (
                waiting[0]
                if waiting
                else outbox.build_batch(
                    self.store,
                    self.keyring,
                    self.enrollment.device_id,
                    max_events=self.policy.batch_events,
                    max_bytes=self.policy.batch_bytes,
                )
            )
            if batch is None:
                return
            self.send_batch(batch)

    def send_batch(self, batch: outbox.OutBatch) -> None:
        self.ensure_blobs(batch.blobs)
        outbox.mark_sent(self.store, [batch], "http")
        for _ in range(3):
            try:
                response = self.link.call(
                    "PUT",
                    f"{c.API}/batches/{batch.batch_id}",
                    body=batch.body(),
                    headers={"Content-Type": "application/json"},
                )
            except Refused as exc:
                if exc.code == c.Code.BLOBS_MISSING and exc.problem.missing:
                    self.ensure_blobs(exc.problem.missing)
                    continue
                if exc.code == c.Code.CHAIN_BROKEN and exc.problem.head is not None:
                    self.resync(batch, exc.problem.head)
                    return
                raise
            answer: c.ReceiptAnswer = _decode(response, c.ReceiptAnswer)
            receipt = outbox.verify_receipt(self.keyring, self.enrollment.device_id, answer.receipt)
            if receipt.batch != batch.batch_id:
                raise outbox.SyncStateError("central's receipt is for another batch")
            outbox.record_receipt(self.store, receipt, answer.receipt)
            self.report.batches += 1
            self.report.events += receipt.events
            self.report.central_time = receipt.accepted_at
            return
        raise Transient("blobs kept going missing at central")

    def check_head(self) -> None:
        """At first contact, ask central how far it holds this box's chain (one small GET).

        Why: a central restored from an older backup answers every request normally, so a
        box with nothing new to send would say ``done`` forever while the dossiers past
        central's head are lost there (issue 11, item 6). Only a box holding receipts can
        be owed anything, so a fresh box skips the request.

        The head comes in central's signed statement, bound to this request's nonce: the
        answer of ``GET /device`` is not signed, and a head lowered on the way would make
        the box resend its history and raise a false "central lost data". Only a central
        older than the signed head is asked that way.
        """
        if outbox.acked_through(self.store) == 0:
            return
        after = int(outbox.cursor(self.store, downlink.CURSOR, "0") or 0)
        response = self.link.call("GET", f"{c.API}/downlink", params={"after": after, "limit": 1})
        nonce = response.request.headers.get(c.H_NONCE, "")
        answer: c.DownlinkAnswer = _decode(response, c.DownlinkAnswer)
        device = self.enrollment.device_id
        statement = downlink.verify_statement(self.keyring, device, nonce, answer.clock)
        head = statement.head
        if head is None:
            info: c.DeviceAnswer = _decode(self.link.call("GET", f"{c.API}/device"), c.DeviceAnswer)
            head = info.head
        self.rewind(head)

    def rewind(self, head: c.Head) -> bool:
        """Central's head is behind this box's receipts: send again what it lost."""
        acked = outbox.acked_through(self.store)
        lost = outbox.rewind_to_central(self.store, head, via="network")
        if not lost:
            return False
        self.rewinds += 1
        if self.rewinds > 3:
            raise outbox.SyncStateError(
                "central keeps losing this box's events during one round: call regional IT"
            )
        log.error(
            "central holds this box's events only up to %d but the box has receipts up to %d: "
            "central lost data (restored from a backup?); sending %d event(s) again",
            head.seq,
            acked,
            lost,
        )
        self.report.central_lost_events += lost
        return True

    def resync(self, batch: outbox.OutBatch, head: c.Head) -> None:
        """Central's head is not where this batch starts: behind (central lost data) or
        ahead (the box was restored): send again, or adopt central's receipts."""
        if head.seq <= batch.after_seq:
            if self.rewind(head):
                return
            raise outbox.SyncStateError(
                f"central holds events up to {head.seq} but this box's batch follows "
                f"{batch.after_seq}: central's chain differs; call regional IT"
            )
        after = outbox.acked_through(self.store)
        adopted: list[tuple[c.Receipt, c.SignedDocument]] = []
        for _ in range(1000):
            response = self.link.call(
                "GET", f"{c.API}/receipts", params={"after_seq": after, "limit": 100}
            )
            answer: c.ReceiptsAnswer = _decode(response, c.ReceiptsAnswer)
            if not answer.receipts:
                break
            for doc in answer.receipts:
                receipt = outbox.verify_receipt(self.keyring, self.enrollment.device_id, doc)
                adopted.append((receipt, doc))
                after = max(after, receipt.last_seq)
            if after >= head.seq:
                break
        self.report.receipts_adopted += outbox.adopt_receipts(self.store, adopted)

    def ensure_blobs(self, blob_ids: list[str]) -> None:
        for start in range(0, len(blob_ids), c.MAX_STATUS_IDS):
            part = blob_ids[start : start + c.MAX_STATUS_IDS]
            response = self.link.call(
                "POST",
                f"{c.API}/blobs/status",
                body=c.encode(c.BlobStatusRequest(ids=part)),
                headers={"Content-Type": "application/json"},
            )
            states: c.BlobStatusAnswer = _decode(response, c.BlobStatusAnswer)
            for state in states.blobs:
                if not state.complete:
                    self.upload(state.id, state.offset)

    def upload(self, blob_id: str, offset: int) -> None:
        """Send a blob from central's offset in adaptive chunks (aiming at ``chunk_seconds``).

        Central's offset at the blob's length without the blob being complete means its
        completion never ran (its receiver or database went away right after the last
        chunk): the box asks for the blob's state, which has central complete it, rather
        than taking the blob as sent and meeting ``blobs_missing`` again and again.
        """
        length = outbox.blob_length(self.store, blob_id)
        restarts = 0
        while True:
            if offset >= length:
                held = self._completed(blob_id)
                if held.complete:
                    break
                if held.offset >= length:
                    raise Transient("central holds every byte of a blob but has not verified it")
                if restarts >= 2:
                    raise Transient("central keeps finding a blob's bytes wrong")
                restarts += 1  # the bytes did not hash to the id: central dropped them
                offset = held.offset
                continue
            data = outbox.read_blob(self.store, blob_id, offset, self.chunk)
            headers = {
                c.H_OFFSET: str(offset),
                c.H_LENGTH: str(length),
                c.H_CHECKSUM: c.chunk_checksum(data),
                "Content-Type": c.CHUNK_MEDIA,
            }
            started = time.monotonic()
            try:
                response = self.link.call(
                    "PATCH", f"{c.API}/blobs/{blob_id}", body=data, headers=headers
                )
            except Refused as exc:
                if exc.code in (c.Code.OFFSET_MISMATCH, c.Code.LENGTH_MISMATCH) and (
                    exc.problem.offset is not None
                ):
                    offset = exc.problem.offset
                    continue
                if exc.code == c.Code.CHECKSUM_MISMATCH and restarts < 2:
                    restarts += 1
                    offset = exc.problem.offset or 0
                    continue
                raise
            except Transient:
                self.chunk = max(self.policy.chunk_min, self.chunk // 2)
                raise
            sent: c.BlobState = _decode(response, c.BlobState)
            self._adapt(len(data), time.monotonic() - started)
            offset = sent.offset
            outbox.note_upload(self.store, blob_id, offset, length)
            if sent.complete:
                break
        self.report.blobs += 1
        self.report.blob_bytes += length

    def _completed(self, blob_id: str) -> c.BlobState:
        """Central's state of a blob whose bytes all arrived; asking completes it there."""
        response = self.link.call(
            "POST",
            f"{c.API}/blobs/status",
            body=c.encode(c.BlobStatusRequest(ids=[blob_id])),
            headers={"Content-Type": "application/json"},
        )
        answer: c.BlobStatusAnswer = _decode(response, c.BlobStatusAnswer)
        if len(answer.blobs) != 1 or answer.blobs[0].id != blob_id:
            raise Transient("central's blob status answers another blob")
        return answer.blobs[0]

    def _adapt(self, sent: int, elapsed: float) -> None:
        rate = sent / max(elapsed, 1e-3)
        ideal = rate * self.policy.chunk_seconds
        size = min(ideal, self.chunk * 2, self.policy.chunk_max)
        size = max(size, self.chunk / 2, self.policy.chunk_min)
        self.chunk = max(self.policy.chunk_min, int(size) // 4096 * 4096)

    # -- downlink --------------------------------------------------------------

    def downlink(self) -> int:
        """Read the feed from the cursor; returns how many items changed something here."""
        changed = 0
        after = int(outbox.cursor(self.store, downlink.CURSOR, "0") or 0)
        device = self.enrollment.device_id
        for _ in range(100):
            response = self.link.call(
                "GET", f"{c.API}/downlink", params={"after": after, "limit": 100}
            )
            nonce = response.request.headers.get(c.H_NONCE, "")
            answer: c.DownlinkAnswer = _decode(response, c.DownlinkAnswer)
            server_time = downlink.verify_clock(self.keyring, device, nonce, answer.clock)
            downlink.observe_time(self.store, server_time)
            self.report.central_time = server_time
            for item in answer.items:
                doc = downlink.verify_item(self.keyring, device, self.enrollment.office, item)
                kind = downlink.apply(self.store, self.ledger, doc)
                self.report.downlink[kind] = self.report.downlink.get(kind, 0) + 1
                changed += kind != "skipped"
                after = item.id
            # A page with items is followed by one more request: its cursor tells central
            # those items were applied, so 'edge central status' shows nothing pending.
            if not answer.items:
                break
        if answer.updates is not None and str(answer.updates) != self.store.meta(UPDATE_HINT):
            # the daemon's update hook checks now instead of at its next scheduled time
            with self.store.transaction():
                self.store.put_meta(UPDATE_HINT, str(answer.updates))
        return changed


def wire_summary(summary: dict[str, Any]) -> c.HealthSummary:
    """The box's summary in the contract's shape, free text clipped to the contract's limits."""
    clipped = dict(summary)
    alerts = sorted((summary.get("alerts") or {}).items())[:32]
    clipped["alerts"] = {name: str(text)[: c.MAX_ALERT_TEXT] for name, text in alerts}
    sync = dict(summary.get("sync") or {})
    if sync.get("last_error"):
        sync["last_error"] = str(sync["last_error"])[: c.MAX_ALERT_TEXT]
    clipped["sync"] = sync
    return msgspec.convert(clipped, c.HealthSummary)


def sync_once(
    state: Path,
    *,
    policy: Policy | None = None,
    session: OfficeSession | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RoundReport:
    """``edge sync --once``: re-wrap keys if a clerk is signed in, then one round."""
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        if session is not None:
            outbox.rewrap_for_central(store, keyring, session)
        return Round(store, keyring, policy=policy, transport=transport).run()
    finally:
        store.close()
