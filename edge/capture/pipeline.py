"""The consumer: one settled file in, committed pages (or a quarantine record) out.

A chain of small steps, each testable alone: check the entry, hash it, skip what
is stored already, read pages one at a time, find barcodes, assess quality,
place the page in a dossier, seal and commit, and only then remove the original.

Each page commits in its own short transaction together with the file's
progress, so a power cut or SIGKILL loses at most the page in hand, and a
restart continues the same file from the next page into the dossier that was
open. A crash between the last commit and the removal of the original is
recognised by the file's SHA-256 on the next pass and reported as a duplicate.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from edge.capture import barcodes, quality
from edge.capture.grouping import folder_target, place
from edge.capture.names import display_name, inbox_path
from edge.capture.readers import (
    BUDGET,
    BadInput,
    Page,
    Reason,
    bad_input,
    open_pages,
    set_decode_budget,
    sniff,
    source_sha256,
)
from edge.domain import CodePatterns, PortalStatus
from edge.records import Ledger
from edge.settings import Settings
from edge.store import Store
from edge.symbols import Kind, ReceiptRules, classify

MULTI_PAGE_TYPES = ("application/pdf", "image/tiff")
SINGLE_IMAGE_TYPES = ("image/jpeg", "image/png")
LOOKAHEAD_PAGES = 2
LOOKAHEAD_BYTES = 64 * 1024 * 1024
COMMIT_COPIES = 3
"""Copies of a page's bytes alive while it is sealed and stored (plaintext, ciphertext,
SQLite's), charged to the decode budget."""
T = TypeVar("T")


class Outcome(StrEnum):
    """What became of one file."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    """Its bytes were captured before: removed from the inbox, nothing stored twice."""
    QUARANTINED = "quarantined"
    INTERRUPTED = "interrupted"
    """Stopping (SIGTERM) between two of its pages: the rest is taken on the next start."""
    HELD = "held"
    """An unreadable file already reported once, left where it is until it changes."""
    FAILED = "failed"
    """An unforeseen error: the file stays in the inbox and is tried again later."""


@dataclass
class FileOutcome:
    """What happened to one file; the JSON report and the logs are built from it."""

    name: str
    status: Outcome
    pages: int = 0
    dossiers: list[str] = field(default_factory=list)
    reason: str | None = None
    message: str | None = None
    latency_ms: float | None = None
    uncertain: list[dict[str, Any]] = field(default_factory=list)
    """Pages that opened a dossier for the clerk to check: index, dossier, candidates."""


@dataclass
class Prepared:
    """What ``Capture.prepare`` found, valid while the file's signature is unchanged."""

    signature: tuple[int, int, int] | None
    sha256: str | None = None
    error: BadInput | None = None
    pages: list[tuple[Page, Analysis]] | None = None


@dataclass
class Analysis:
    """What capture learnt from one page.

    ``code`` is a confirmed dossier code. ``review`` lists the receipt-like symbols capture
    could not confirm (text, symbology, alternatives, whether the text is personal); a page
    with any and no confirmed code opens a dossier the clerk must check.
    """

    code: str | None
    symbols: list[dict[str, Any]]
    flags: list[str]
    dpi: float | None
    review: list[dict[str, Any]] = field(default_factory=list)


def interpret(
    reading: barcodes.PageReading, patterns: CodePatterns, rules: ReceiptRules
) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """The page's confirmed dossier code, its other symbols, and what needs the clerk.

    A confirmed read of a dossier code (or a portal URL carrying one) starts or continues
    that dossier. An unconfirmed read that would do so, or a receipt-like symbol that matches
    no pattern, is a candidate for review. Two different confirmed codes on one page are
    reviewed too: a slip never carries two, so one of them is not what it seems. Content
    symbols (ID card, tracking number, payment, plain URL) are only kept as page attributes.
    """
    codes: list[str] = []
    attrs: list[dict[str, Any]] = []
    review: list[dict[str, Any]] = []
    for read in reading.reads:
        symbol = read.symbol
        meaning = classify(symbol.text, symbol.symbology, patterns, rules)
        attr: dict[str, Any] = {
            "text": symbol.text,
            "symbology": symbol.symbology,
            "kind": str(meaning.kind),
        }
        if not read.confirmed:
            attr["confirmed"] = False
        if read.alternatives:
            attr["alternatives"] = list(read.alternatives)
        boundary = meaning.kind in (Kind.DOSSIER_CODE, Kind.RECEIPT_LIKE)
        if meaning.kind is Kind.DOSSIER_CODE and read.confirmed and meaning.code:
            if meaning.code not in codes:
                codes.append(meaning.code)
            if meaning.code == symbol.text.strip().upper() and not read.alternatives:
                continue
        elif boundary:
            review.append(
                {
                    "text": symbol.text,
                    "symbology": symbol.symbology,
                    "code": meaning.code,
                    "alternatives": list(read.alternatives),
                    "why": "unconfirmed" if not read.confirmed else "no_pattern",
                    "personal": meaning.personal,
                }
            )
        attrs.append(attr)
    if not codes and reading.unread:
        review.append(
            {"text": "", "symbology": "", "code": None, "alternatives": [], "why": "unreadable",
             "personal": False}
        )  # fmt: skip
    if len(codes) > 1:
        review.extend(
            {"text": c, "symbology": "", "code": c, "alternatives": [], "why": "two_codes",
             "personal": False}
            for c in codes
        )  # fmt: skip
        return None, attrs, review
    code = codes[0] if codes else None
    return code, attrs, review if code is None else []


def analyse(
    page: Page,
    chain: barcodes.DecoderChain,
    patterns: CodePatterns,
    thresholds: quality.QualityThresholds,
    rules: ReceiptRules | None = None,
) -> Analysis:
    """Quality and barcodes for one page, from the cheapest decodes that answer.

    Quality runs first on the quarter-scale image the reader already decoded to
    validate the page; barcodes then decode at half scale, and at full scale
    only when a cheaper pass saw something symbol-like or a 1-D code needs confirming
    ("full" meaning 300 dpi: a 600-dpi page is read at half its size, see
    ``barcodes.read_page``).

    The whole look holds the page's share of the decode budget, so large pages are
    analysed one at a time while ordinary ones share the threads. Running out of memory
    anyway is this page's fault as far as the daemon is concerned: it is reported as
    BadInput, so the file is quarantined and the process lives on.
    """
    scale = barcodes.scale_for(quality.effective_resolution(page.pixel_size, page.dpi, thresholds))
    try:
        with page.lease(scale):
            sample = page.colour_sample(8)
            if sample is not None:
                page.drop_colour()  # colour is judged on the sample: the rest reads grey
            report = quality.assess(
                page.image(4),
                reduce=4,
                pixel_size=page.pixel_size,
                dpi=page.dpi,
                thresholds=thresholds,
                colour_sample=sample,
            )
            page.drop_colour()
            reading = barcodes.read_page(page, chain, scale=scale)
            page.forget_images()
    except MemoryError:
        page.forget_images()
        detail = "MemoryError in analysis"
        raise bad_input(Reason.OUT_OF_MEMORY, page=page.index, detail=detail) from None
    code, attrs, review = interpret(reading, patterns, rules or ReceiptRules())
    return Analysis(code, attrs, list(report.flags), report.effective_dpi, review)


class Capture:
    """Turns inbox files into dossiers in one store; the daemon and ``--once`` share it."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        inbox: Path,
        settings: Settings,
        *,
        chain: barcodes.DecoderChain | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        workers: int = 2,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.inbox = inbox
        self.chain = chain or barcodes.default_chain()
        self.should_stop = should_stop
        self._activity: dict[int, float] = {}
        self._held: dict[Path, tuple[int, int, int]] = {}
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analyse")
        self.apply_settings(settings)
        now = time.monotonic()
        for job in store.open_jobs():
            self._activity[job["id"]] = now

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        set_decode_budget(settings.max_decode_mb)
        self.patterns = settings.patterns()
        self.rules = settings.receipt_rules()
        self.thresholds = quality.QualityThresholds(
            min_dpi=settings.min_dpi, max_skew_degrees=settings.max_skew_degrees
        )

    # -- jobs ---------------------------------------------------------------------

    def _job_key(self, relative: Path, media_type: str | None, sha256: str) -> tuple[str, str]:
        if len(relative.parts) > 1:
            return "folder", f"folder:{display_name(relative.parts[0])}"
        if media_type in MULTI_PAGE_TYPES:
            return "file", f"file:{sha256}"
        return "loose", "loose"

    def _job(self, kind: str, key: str, into: str | None = None) -> tuple[int, str | None]:
        """The open job for ``key``; a new one starts with dossier ``into`` open, if it lives."""
        row = self.store.open_job(key)
        if row is None:
            with self.store.transaction():
                job_id = self.store.new_job(kind, key)
                target = self._live_dossier(into)
                if target is not None:
                    self.store.set_job_dossier(job_id, target)
            return job_id, target
        return int(row["id"]), row["open_dossier_id"]

    def _live_dossier(self, dossier_id: str | None) -> str | None:
        """``dossier_id``, or the dossier it was merged into; None if there is no such one."""
        row = self.store.dossier(dossier_id) if dossier_id else None
        if row is not None and row["status"] == "merged":
            row = self.store.dossier(row["merged_into"]) if row["merged_into"] else None
        return str(row["id"]) if row is not None else None

    def close_idle_jobs(self, *, everything: bool = False) -> list[int]:
        """Close jobs quiet for the idle time (all of them at the end of ``--once``)."""
        now = time.monotonic()
        closed = []
        for job in self.store.open_jobs():
            last = self._activity.get(job["id"], now)
            if everything or job["kind"] == "file" or now - last >= self.settings.job_idle_seconds:
                with self.store.transaction():
                    self.store.close_job(job["id"])
                self._activity.pop(job["id"], None)
                closed.append(job["id"])
                if job["kind"] == "folder":
                    folder = job["key"].removeprefix("folder:")
                    self._remove_empty_folder(inbox_path(self.inbox, folder))
        return closed

    def _remove_empty_folder(self, folder: Path) -> None:
        """A job folder goes once it is empty; litter keeps it (we never delete litter)."""
        if folder.is_symlink() or not folder.is_dir():
            return
        for root, _dirs, _files in os.walk(folder, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(root)

    # -- one file --------------------------------------------------------------------

    def prepare(self, path: Path) -> Prepared:
        """The stateless front of the pipeline: safe on a worker thread, no database.

        Hashes the file and, for a single-image file, reads and analyses its page,
        so the daemon can look ahead at the next files while this one commits.
        """
        signature = _signature(path)
        try:
            sha256 = source_sha256(path)
        except FileNotFoundError:
            return Prepared(signature, error=bad_input(Reason.VANISHED))
        except PermissionError:
            return Prepared(signature, error=bad_input(Reason.UNREADABLE))
        except BadInput as bad:
            return Prepared(signature, error=bad)
        prepared = Prepared(signature, sha256)
        if sniff(path) in SINGLE_IMAGE_TYPES and signature and signature[1] <= LOOKAHEAD_BYTES:
            try:
                prepared.pages = [
                    (page, analyse(page, self.chain, self.patterns, self.thresholds, self.rules))
                    for page in self._open(path)
                ]
            except (BadInput, OSError):
                prepared.pages = None
        return prepared

    def process(
        self, path: Path, settled_at: float | None = None, prepared: Prepared | None = None
    ) -> FileOutcome:
        """Store one settled file's pages, or quarantine it; never raises on bad input.

        The file is known by ``display_name``: any byte sequence a scanner or an intruder
        put in its name is stored, reported and logged as one safe, reversible line.
        """
        relative = path.relative_to(self.inbox)
        name = display_name(relative)
        if prepared is None or prepared.signature != _signature(path):
            prepared = Prepared(_signature(path))
            prepared = self._hash_only(path, prepared)
        if prepared.error is not None:
            return self._quarantine_entry(path, name, prepared.error)
        sha256 = prepared.sha256
        assert sha256 is not None
        source = self.store.source(sha256)
        if (source is not None and source["complete"]) or self.store.quarantined(sha256):
            _remove(path)
            return FileOutcome(name, Outcome.DUPLICATE)
        return self._store_pages(path, name, relative, sha256, source, settled_at, prepared)

    @staticmethod
    def _hash_only(path: Path, prepared: Prepared) -> Prepared:
        try:
            prepared.sha256 = source_sha256(path)
        except FileNotFoundError:
            prepared.error = bad_input(Reason.VANISHED)
        except PermissionError:
            prepared.error = bad_input(Reason.UNREADABLE)
        except BadInput as bad:
            prepared.error = bad
        return prepared

    def _open(self, path: Path) -> Iterator[Page]:
        return open_pages(
            path,
            max_bytes=self.settings.max_file_mb * 1024 * 1024,
            max_pixels=self.settings.max_pixels,
        )

    def _analysed(self, pages: Iterator[Page], done: int) -> Iterator[tuple[Page, Analysis | None]]:
        """Analyse the next pages on worker threads while the current one commits.

        Order is kept; at most ``LOOKAHEAD_PAGES`` pages are in flight, so a
        500-page PDF still holds only a few pages in memory. Pages already stored
        before a crash come out with no analysis and are skipped by the caller.
        """
        window: deque[tuple[Page, Future[Analysis]]] = deque()
        failure: BadInput | None = None
        try:
            for page in pages:
                if page.index < done:
                    page.forget_images()
                    yield page, None
                    continue
                future = self.pool.submit(
                    analyse, page, self.chain, self.patterns, self.thresholds, self.rules
                )
                window.append((page, future))
                if len(window) > LOOKAHEAD_PAGES:
                    page_in_hand, oldest = window.popleft()
                    yield page_in_hand, oldest.result()
        except BadInput as exc:
            failure = exc
        while window:
            page_in_hand, oldest = window.popleft()
            yield page_in_hand, oldest.result()
        if failure is not None:
            raise failure

    def _store_pages(
        self,
        path: Path,
        name: str,
        relative: Path,
        sha256: str,
        source: Any,
        settled_at: float | None,
        prepared: Prepared,
    ) -> FileOutcome:
        done = int(source["pages_done"]) if source is not None else 0
        outcome = FileOutcome(name, Outcome.STORED, pages=0)
        job_id: int | None = (
            int(source["job_id"]) if source is not None and source["job_id"] else None
        )
        stream: Iterator[tuple[Page, Analysis | None]] = (
            iter(prepared.pages)
            if prepared.pages is not None
            else self._analysed(self._open(path), done)
        )
        try:
            for (page, analysis), is_last in _with_last(stream):
                if job_id is None:
                    kind, key = self._job_key(relative, page.media_type, sha256)
                    into = folder_target(str(relative.parts[0])) if kind == "folder" else None
                    job_id, _ = self._job(kind, key, into)
                if page.index < done or analysis is None:
                    continue
                dossier_id = self._commit_page(
                    page, analysis, job_id, sha256, name, complete=is_last
                )
                if analysis.review:
                    outcome.uncertain.append(_uncertain(page.index, dossier_id, analysis))
                outcome.pages += 1
                if dossier_id not in outcome.dossiers:
                    outcome.dossiers.append(dossier_id)
                if not is_last and self.should_stop():
                    outcome.status = Outcome.INTERRUPTED
                    return outcome
        except BadInput as bad:
            return self._quarantine_file(path, name, sha256, bad, outcome, job_id)
        except FileNotFoundError:
            return self._quarantine_file(
                path, name, sha256, bad_input(Reason.VANISHED), outcome, job_id
            )
        _remove(path)
        if settled_at is not None:
            outcome.latency_ms = (time.monotonic() - settled_at) * 1000
        return outcome

    def _commit_page(
        self,
        page: Page,
        analysis: Analysis,
        job_id: int,
        sha256: str,
        name: str,
        *,
        complete: bool,
    ) -> str:
        # Sealing and storing copy the page's bytes a few times over; a 30 MB page
        # committed while a 600-dpi page decodes must fit the same budget.
        with BUDGET.lease(COMMIT_COPIES * len(page.data)), self.store.transaction():
            known = self.store.dossier_by_code(analysis.code) if analysis.code else None
            placement = place(
                analysis.code,
                self.store.job_dossier(job_id),
                known["id"] if known else None,
                uncertain=bool(analysis.review),
            )
            dossier_id = placement.dossier_id or self.ledger.create_dossier(
                placement.code,
                job_id=job_id,
                review=analysis.review if placement.review else (),
                follows=placement.follows,
            )
            self.store.upsert_source(sha256, name, job_id)
            request = self.store.central_request(dossier_id, PortalStatus.YEU_CAU_BO_SUNG)
            added = self.ledger.add_page(
                dossier_id,
                page.data,
                media_type=page.media_type,
                sha256=hashlib.sha256(page.data).hexdigest(),
                source_sha=sha256,
                source_name=name,
                source_index=page.index,
                width=page.pixel_size[0],
                height=page.pixel_size[1],
                dpi=analysis.dpi,
                flags=analysis.flags,
                symbols=analysis.symbols,
            )
            if request is not None:
                # the agency asked for more documents (status 5): these pages answer it, and
                # the desk shows them as the supplement (Mẫu 02), in the same transaction
                self.ledger.record(
                    dossier_id,
                    "dossier.supplement_added",
                    {"pages": [added.page_id], "request": request},
                )
            self.store.source_progress(sha256, page.index + 1, complete)
            if complete:
                self.ledger.record(None, "source.completed", {"sha256": sha256, "name": name})
            self.store.set_job_dossier(job_id, dossier_id)
        self._activity[job_id] = time.monotonic()
        return dossier_id

    # -- quarantine ------------------------------------------------------------------

    def _quarantine_entry(self, path: Path, name: str, bad: BadInput) -> FileOutcome:
        """Links, devices, vanished and unreadable files: nothing to seal, only the record.

        Links and devices hold no data and leave the inbox; an unreadable file stays
        (it may become readable) and is remembered so it is reported once, not at
        every rescan.
        """
        signature = _signature(path)
        if signature is not None and self._held.get(path) == signature:
            return FileOutcome(name, Outcome.HELD, reason=bad.reason, message=bad.message)
        with self.store.transaction():
            self.ledger.quarantine(name=name, reason=bad.reason, message=bad.message)
        if bad.reason in (Reason.SYMLINK, Reason.SPECIAL_FILE):
            _remove(path)
        elif signature is not None:
            self._held[path] = signature
        return FileOutcome(name, Outcome.QUARANTINED, reason=bad.reason, message=bad.message)

    def _quarantine_file(
        self,
        path: Path,
        name: str,
        sha256: str,
        bad: BadInput,
        outcome: FileOutcome,
        job_id: int | None,
    ) -> FileOutcome:
        """Seal the original whole (chunk by chunk) so nothing is lost, then remove it."""
        message = bad.message
        if outcome.pages:
            message = f"Page {outcome.pages + 1} onwards could not be read: {bad.message}"
        try:
            size = path.stat().st_size
            with open(path, "rb") as stream, self.store.transaction():
                self.ledger.quarantine(
                    name=name,
                    reason=bad.reason,
                    message=message,
                    sha256=sha256,
                    size=size,
                    stream=stream,
                )
                if self.store.source(sha256) is not None:
                    self.store.source_complete(sha256)
        except FileNotFoundError:
            return self._quarantine_entry(path, name, bad_input(Reason.VANISHED))
        _remove(path)
        outcome.status = Outcome.QUARANTINED
        outcome.reason = bad.reason
        outcome.message = message
        return outcome


def _uncertain(index: int, dossier_id: str, analysis: Analysis) -> dict[str, Any]:
    """What the capture report says of a page sent to the clerk; personal texts withheld."""
    return {
        "page": index + 1,
        "dossier": dossier_id,
        "candidates": [
            {
                "symbology": r["symbology"],
                "why": r["why"],
                "texts": None if r["personal"] else [r["text"], *r["alternatives"]],
            }
            for r in analysis.review
        ],
    }


def _with_last(pages: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Pair each page with whether it is the file's last, holding at most two pages."""
    previous: T | None = None
    while True:
        try:
            page = next(pages)
        except StopIteration:
            break
        except BadInput:
            if previous is not None:
                yield previous, False
            raise
        if previous is not None:
            yield previous, False
        previous = page
    if previous is not None:
        yield previous, True


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _remove(path: Path) -> None:
    """Remove an original that is durably stored, and make the removal durable too."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
