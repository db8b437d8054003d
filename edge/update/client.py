"""The box's side of TUF: pinned root, refresh, verified downloads, the time floor.

Built on ``tuf.ngclient.Updater``. Metadata is cached in ``<state>/update/metadata``
and targets in ``<state>/update/targets``, so a check that finds nothing new costs
one small timestamp download (and a 404 for the next root version), and a target
is downloaded only when its signed hash is not already in the cache.

Clock (DESIGN.md section 4). ngclient judges expiry against a reference time it
takes from ``datetime.now()`` when ``Updater`` is built (the attribute
``reference_time`` of its internal ``TrustedMetadataSet``); it has no public option
for it (python-tuf 7.0). A box's wall clock may say 1970, or be set back by an
attacker to make expired metadata look fresh. So:

1. the reference time is ``max(time floor, wall clock)``: the floor is the newest
   trusted time the box has seen (signed timestamp metadata raises it, see
   ``SIGNED_AT``), so a clock set back cannot revive expired metadata, and a box
   whose clock says 1970 still takes metadata that is valid by the floor;
2. right after building the ``Updater`` we overwrite
   ``updater._trusted_set.reference_time`` with it, so ngclient's own checks
   (which run before anything is cached) use it; if a future python-tuf drops
   that attribute we refuse to run rather than fall back to the wall clock;
3. after every refresh and lookup we check each loaded role's expiry against the
   same reference time ourselves, so a python-tuf that quietly stopped reading
   the attribute could not make us accept expired metadata.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import urllib3
from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from edge import __version__
from edge.clock import iso, parse_iso
from edge.durable import write_atomic
from edge.stick import StickDir, StickError, StickMissing
from edge.update import SIGNED_AT, USB_FOLDER, Refused, UpdateError

UPDATE_DIR = "update"
ROOT_FILE = "root.json"


def update_dir(state: Path) -> Path:
    return state / UPDATE_DIR


def check_root(data: bytes) -> Metadata[Root]:
    """A root that is well formed and signed by its own threshold of root keys."""
    try:
        md = Metadata[Root].from_bytes(data)
        if not isinstance(md.signed, Root):
            raise ValueError("not root metadata")
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except Exception as exc:
        raise UpdateError(f"not a valid, self-signed TUF root ({exc})") from exc
    return md


def pin_root(state: Path, data: bytes) -> int:
    """Pin the first trusted root (provisioning); returns its version.

    Pinning is once: afterwards the root only moves forward through root
    metadata that the pinned one signed, never by replacing the file.
    """
    md = check_root(data)
    target = update_dir(state) / ROOT_FILE
    if target.exists():
        if target.read_bytes() == data:
            return md.signed.version
        raise UpdateError(f"{target} is pinned already: the trusted root only moves by rotation")
    write_atomic(target, data)
    _raise_floor(state, md)
    return md.signed.version


def _raise_floor(state: Path, md: Metadata[Root]) -> None:
    """The root's signing time (``SIGNED_AT``, under its signatures) becomes the box's first
    time floor: before any update or sync, a clock set back cannot revive metadata that
    expired before regional IT signed the root the box trusts."""
    value = md.signed.unrecognized_fields.get(SIGNED_AT)
    if not isinstance(value, str):
        return
    try:
        signed_ms = parse_iso(value)
    except ValueError:
        return
    from edge.store import DB_FILE, Store

    if not (state / DB_FILE).exists():
        return
    store = Store.open(state)
    try:
        with store.transaction():
            store.clock.observe(signed_ms)
    finally:
        store.close()


def pinned_root(state: Path) -> bytes:
    path = update_dir(state) / ROOT_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UpdateError(
            "this box has no trusted update root: provision it with "
            "'edge init ... --trust-root root.json' (or 'edge update --trust-root')"
        ) from exc


MAX_FILE = 2 << 30
"""Largest file read from a folder: TUF bounds each file by its signed length anyway."""


class DirectoryFetcher(FetcherInterface):
    """Serves ``file://`` URLs: the USB stick, or a folder central exports.

    A stick is hostile (issue 11, item 5): files are read through ``edge.stick`` from
    ``root`` down, so no link below it is followed and no FIFO or device is opened (a
    FIFO once hung ``edge update``); reads are chunked and bounded. Without a root the
    file's own folder is the root.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(unquote(urlparse(url).path))
        root = self.root or path.parent
        try:
            parts = path.relative_to(root).parts
        except ValueError as exc:
            raise exceptions.DownloadError(f"{path} is outside the update folder {root}") from exc
        if not parts:
            raise exceptions.DownloadError(f"{path} names the update folder, not a file")
        try:
            with StickDir.open_root(root) as top, top.walk(*parts[:-1]) as folder:
                blocks = folder.chunks(parts[-1], MAX_FILE, 1 << 16)
        except StickMissing as exc:
            raise exceptions.DownloadHTTPError(f"{path} not found", 404) from exc
        except StickError as exc:
            raise exceptions.DownloadError(str(exc)) from exc
        return self._chunks(blocks)

    @staticmethod
    def _chunks(blocks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from blocks
        except StickError as exc:
            raise exceptions.DownloadError(str(exc)) from exc


class HttpFetcher(FetcherInterface):
    """HTTP(S) with connections kept alive across a 404.

    Every check asks for the next root version, and the normal answer is 404.
    ngclient's own fetcher closes the connection on any error status, so the
    timestamp request that follows pays for a new connection: one more round
    trip (300 ms on a rural link) on every quiet check. Draining the small error
    body keeps the connection for the next request.
    """

    def __init__(self, timeout: float = 60.0, chunk: int = 1 << 16) -> None:
        self.timeout = timeout
        self.chunk = chunk
        self.pool = urllib3.PoolManager(
            retries=urllib3.Retry(total=3, redirect=3),
            headers={"User-Agent": f"commune-edge/{__version__} python-tuf"},
        )

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self.pool.request(
                "GET", url, preload_content=False, timeout=urllib3.Timeout(self.timeout)
            )
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.TimeoutError):
                raise exceptions.SlowRetrievalError from exc
            raise
        if response.status >= 400:
            response.drain_conn()
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP status {response.status}", response.status)
        return self._chunks(response)

    def _chunks(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(self.chunk)
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError from exc
        finally:
            response.release_conn()


@dataclass
class Traffic:
    requests: int = 0
    bytes: int = 0
    urls: list[str] = field(default_factory=list)


class CountingFetcher(FetcherInterface):
    """Wraps a fetcher and counts requests and bytes (the benchmark reads them)."""

    def __init__(self, inner: FetcherInterface) -> None:
        self.inner = inner
        self.traffic = Traffic()

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.traffic.requests += 1
        self.traffic.urls.append(url)
        for block in self.inner._fetch(url):
            self.traffic.bytes += len(block)
            yield block


@dataclass(frozen=True)
class Source:
    label: str
    base: str
    online: bool
    root: str | None = None
    """For a folder: where reading starts; nothing below it is followed (``edge.stick``)."""

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata/"

    @property
    def targets_url(self) -> str:
        return f"{self.base}/targets/"

    def fetcher(self) -> FetcherInterface:
        if self.online:
            return HttpFetcher()
        return DirectoryFetcher(Path(self.root) if self.root else None)


def resolve_source(spec: str) -> Source:
    """A URL (central) or a folder (USB stick mount point, or the repository itself)."""
    if spec.startswith(("http://", "https://")):
        return Source(spec, spec.rstrip("/"), True)
    folder = Path(spec.removeprefix("file://")).expanduser().resolve()
    for candidate in (folder / USB_FOLDER, folder):
        if (candidate / "metadata" / "timestamp.json").is_file():
            return Source(str(folder), "file://" + str(candidate), False, str(folder))
    raise UpdateError(f"no update repository in {folder} (looked for {USB_FOLDER}/metadata)")


def explain(
    exc: Exception,
    reference: datetime | None = None,
    wall_ms: int = 0,
    floor_ms: int = 0,
) -> Refused:
    """One line a technician can act on, for each way verification refuses.

    A box passes its clock (``reference``, wall clock and floor) so an expiry says
    what it was judged against; central, whose clock is trusted, passes none.
    """
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, exceptions.ExpiredMetadataError) and reference is None:
        return Refused(f"expired metadata: {message}")
    if isinstance(exc, exceptions.ExpiredMetadataError):
        assert reference is not None
        basis = "the time floor" if floor_ms >= wall_ms else "the wall clock"
        return Refused(
            f"expired metadata: {message} (judged at {_iso_dt(reference)}, {basis}; "
            f"wall clock {iso(wall_ms)}, floor {iso(floor_ms)})"
        )
    if isinstance(exc, exceptions.BadVersionNumberError):
        return Refused(f"rollback or freeze attempt: {message}")
    if isinstance(exc, exceptions.UnsignedMetadataError):
        return Refused(f"bad signature (forged, tampered, or a revoked key): {message}")
    if isinstance(exc, exceptions.LengthOrHashMismatchError):
        return Refused(f"file does not match its signed length or hash (tampered): {message}")
    return Refused(f"{type(exc).__name__}: {message}")


def _iso_dt(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


class UpdateClient:
    """One verified view of the repository, for one update attempt."""

    def __init__(
        self,
        state: Path,
        source: Source,
        *,
        floor_ms: int,
        wall_ms: int,
        fetcher: FetcherInterface | None = None,
        metadata_dir: Path | None = None,
        targets_dir: Path | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.floor_ms = floor_ms
        self.wall_ms = wall_ms
        self.reference = datetime.fromtimestamp(max(floor_ms, wall_ms) / 1000, UTC)
        # other folders only for the conformance suite's client (tests/tuf_conformance), which
        # names where trusted metadata and downloads must be for it to inspect them
        self.metadata_dir = metadata_dir or update_dir(state) / "metadata"
        self.targets_dir = targets_dir or update_dir(state) / "targets"
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        inner = fetcher or source.fetcher()
        self.fetcher = inner if isinstance(inner, CountingFetcher) else CountingFetcher(inner)
        try:
            self.updater = Updater(
                metadata_dir=str(self.metadata_dir),
                metadata_base_url=source.metadata_url,
                target_dir=str(self.targets_dir),
                target_base_url=source.targets_url,
                fetcher=self.fetcher,
                bootstrap=pinned_root(state),
            )
        except exceptions.RepositoryError as exc:
            raise self._explain(exc) from exc
        trusted = getattr(self.updater, "_trusted_set", None)
        if trusted is None or not hasattr(trusted, "reference_time"):
            raise UpdateError(
                "this python-tuf offers no way to set the reference time: refusing to judge "
                "expiry by the wall clock (pin tuf to a version edge.update supports)"
            )
        trusted.reference_time = self.reference

    def _explain(self, exc: Exception) -> Refused:
        return explain(exc, self.reference, self.wall_ms, self.floor_ms)

    def _last_file(self) -> str:
        urls = self.fetcher.traffic.urls
        return unquote(urls[-1].rsplit("/", 1)[-1]) if urls else "metadata"

    @contextlib.contextmanager
    def _verifying(self, what: str) -> Iterator[None]:
        try:
            yield
        except exceptions.RepositoryError as exc:
            refused = self._explain(exc)
            if isinstance(exc, exceptions.ExpiredMetadataError):
                raise refused from exc
            where = what if what != "metadata" else self._last_file()
            raise Refused(f"{where}: {refused}") from exc
        except exceptions.DownloadLengthMismatchError as exc:
            raise Refused(f"{what}: longer than its signed length (tampered): {exc}") from exc
        except exceptions.DownloadError as exc:
            raise UpdateError(f"cannot fetch {what} from {self.source.label}: {exc}") from exc
        self._check_expiry()

    def _check_expiry(self) -> None:
        for signed in self.updater._trusted_set:
            if signed.is_expired(self.reference):
                raise self._explain(
                    exceptions.ExpiredMetadataError(f"{signed.type} v{signed.version} is expired")
                )

    def refresh(self) -> None:
        with self._verifying("metadata"):
            self.updater.refresh()

    def role_versions(self) -> dict[str, int]:
        """Version of every role verified in this attempt (what a configuration came from)."""
        return {
            name: signed.version for name, signed in self.updater._trusted_set._trusted_set.items()
        }

    def signed_at_ms(self) -> int | None:
        value = self.updater._trusted_set.timestamp.unrecognized_fields.get(SIGNED_AT)
        if not isinstance(value, str):
            return None
        try:
            return parse_iso(value)
        except ValueError:
            return None

    def lookup(self, path: str) -> TargetFile | None:
        with self._verifying(path):
            return self.updater.get_targetinfo(path)

    def fetch(self, info: TargetFile) -> Path:
        """The verified local file for a target: from the cache, or downloaded."""
        cached = self.updater.find_cached_target(info)
        if cached is not None:
            return Path(cached)
        with self._verifying(info.path):
            return Path(self.updater.download_target(info))

    def newest_root(self) -> bytes:
        """The newest trusted root, to pin for the next run (shortens the chain)."""
        version = self.updater._trusted_set.root.version
        return (self.metadata_dir / "root_history" / f"{version}.root.json").read_bytes()

    def pin_newest(self) -> None:
        data = self.newest_root()
        if data != pinned_root(self.state):
            write_atomic(update_dir(self.state) / ROOT_FILE, data)
