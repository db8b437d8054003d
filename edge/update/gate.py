"""Central's side of publishing: it serves an update only when a box would take it.

Regional IT publishes over HTTP (``edge admin publish --central URL``) in two
moves: it offers the new metadata; central answers with the target files it does
not hold yet; regional IT uploads those; the same offer again then publishes.

Central holds no update key and the upload asks for no password: the TUF
signatures are the authorization. Central verifies an offer exactly as a box
does (python-tuf's ngclient, from the root pinned with ``edge central
trust-updates``, against the metadata it already serves, so rollback, freeze,
mix-and-match and a province signing for another fail here as they would on a
box), and accepts a target file only when verified metadata names it with that
length and hash. Nothing reaches ``/updates`` that a box would refuse, and a
stolen upload credential cannot exist.

The folder publish (``--central DIR``, on central's own machine) writes the same
files; the gate treats whatever ``/updates`` serves as the state to move forward
from, so both ways of publishing can be mixed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tuf.api import exceptions
from tuf.api.metadata import Targets
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from edge.durable import fsync_dir, write_atomic
from edge.update import PROVINCE_PREFIX, Refused, UpdateError
from edge.update.client import check_root, explain

SERVED = "updates"
GATE = "updates-gate"
ROOT = "root.json"
PENDING = "pending.json"
OFFER = "offer"
MAX_METADATA_FILES = 500
MAX_TARGET = 2 << 30

_METADATA_NAME = re.compile(
    r"^(?:timestamp|[1-9][0-9]{0,9}\.[A-Za-z0-9][A-Za-z0-9_.\-]{0,100})\.json$"
)
_TARGET_NAME = re.compile(r"^(?:[A-Za-z0-9_.\-]+/)*[0-9a-f]{64}\.[A-Za-z0-9_.\-]+$")


class NotSetUp(UpdateError):
    """Central has no trusted update root yet."""


class NoPendingOffer(Refused):
    """A resumed offer names metadata central no longer holds: offer it whole again."""


@dataclass(frozen=True)
class Missing:
    """A target file the offered metadata names and central does not hold yet."""

    path: str
    length: int
    sha256: str


@dataclass
class Outcome:
    published: bool
    timestamp: int
    missing: list[Missing] = field(default_factory=list)
    new_files: int = 0


class OfferFetcher(FetcherInterface):
    """ngclient's view of an offer: the offered metadata first, then what is served."""

    def __init__(self, offered: dict[str, bytes], served: Path) -> None:
        self.offered = offered
        self.served = served

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = unquote(urlparse(url).path).lstrip("/")
        kind, _, name = path.partition("/")
        if kind == "metadata" and name in self.offered:
            return iter([self.offered[name]])
        file = self.served / kind / name
        if kind not in ("metadata", "targets") or not file.is_file():
            raise exceptions.DownloadHTTPError(f"{path} not found", 404)
        return iter([file.read_bytes()])


class OffsetMismatch(Refused):
    """A resumed upload that does not start where central's partial copy ends."""

    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"{path}: central holds {offset} B of it; resume from there")
        self.offset = offset


class Upload:
    """One target file arriving, resumable across cut links.

    Bytes append to a partial file named by the file's signed SHA-256 (outside
    /updates); a cut leaves it for the next attempt, which resumes at its size.
    When the signed length is reached the whole file is hashed and, only if it
    matches, moved into /updates. One writer at a time per file (a lock on the
    partial), also across several ``edge central serve`` processes.
    """

    def __init__(
        self, name: str, target: Path, partial: Path, length: int, sha256: str, offset: int
    ) -> None:
        self.name = name
        self.target = target
        self.partial = partial
        self.length = length
        self.sha256 = sha256
        partial.parent.mkdir(parents=True, exist_ok=True)
        self.out = partial.open("ab")
        try:
            fcntl.flock(self.out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.out.close()
            raise Refused(f"another upload of {name} is in progress: try again later") from exc
        self.size = self.out.tell()
        if self.size != offset:
            self.out.close()
            raise OffsetMismatch(name, self.size)

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.length:
            self.out.close()
            self.partial.unlink(missing_ok=True)
            raise Refused(f"{self.name} is longer than its signed {self.length} B")
        self.out.write(chunk)
        self.size += len(chunk)

    def finish(self) -> int:
        """Keep what arrived; returns the offset now held (the length once complete)."""
        self.out.flush()
        os.fsync(self.out.fileno())
        if self.size < self.length:
            self.out.close()
            return self.size
        digest = hashlib.sha256()
        try:
            with self.partial.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
        except FileNotFoundError as exc:
            self.out.close()
            raise Refused(f"{self.name} was superseded by a newer offer: publish again") from exc
        self.out.close()
        if digest.hexdigest() != self.sha256:
            self.partial.unlink(missing_ok=True)
            raise Refused(f"{self.name} does not match its signed length and hash: send it again")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.partial, self.target)
        fsync_dir(self.target.parent)
        return self.size

    def abort(self) -> None:
        """Release the file (a no-op after ``finish``); what arrived stays for a resume."""
        self.out.close()


class Gate:
    """The verified way into what central serves as ``/updates``."""

    def __init__(self, data: Path) -> None:
        self.served = data / SERVED
        self.home = data / GATE
        self._version_cache: tuple[int, int | None] = (-1, None)

    # -- the trusted root --------------------------------------------------------------

    def pin(self, root: bytes) -> int:
        """Pin regional IT's first root (``edge central trust-updates``); returns its version.

        What central already serves must chain to it, or there would be two truths.
        """
        md = check_root(root)
        with self._lock():
            pinned = self.home / ROOT
            if pinned.exists() and pinned.read_bytes() != root:
                current = check_root(pinned.read_bytes()).signed.version
                raise UpdateError(
                    f"central already trusts update root version {current}: the root moves only "
                    "by rotation, published like any other update"
                )
            if self._served_timestamp() is not None:
                with self._updater({}, root) as (updater, _):
                    try:
                        updater.refresh()
                    except exceptions.ExpiredMetadataError:
                        pass  # signatures held; the next publish brings fresh metadata
                    except exceptions.RepositoryError as exc:
                        raise UpdateError(
                            "what central already serves does not verify with this root "
                            f"({explain(exc)}): pin the root it was signed with"
                        ) from exc
            write_atomic(pinned, root)
        return md.signed.version

    def trusted_root(self) -> bytes | None:
        """The newest root central has verified, for boxes that enroll without one."""
        try:
            return (self.home / ROOT).read_bytes()
        except FileNotFoundError:
            return None

    def pinned(self) -> bytes:
        root = self.trusted_root()
        if root is None:
            raise NotSetUp(
                "central has no trusted update root: run 'edge central trust-updates --data DIR "
                "--root 1.root.json' with regional IT's first root"
            )
        return root

    # -- offers ------------------------------------------------------------------------------

    def resume(self, timestamp_sha256: str) -> Outcome:
        """The offer central answered with missing targets, again, without sending it again:
        named by the SHA-256 of its timestamp.json, and verified again in full."""
        folder = self.home / OFFER
        try:
            pending = json.loads((self.home / PENDING).read_bytes())
            files = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
        except (FileNotFoundError, ValueError) as exc:
            raise NoPendingOffer("central holds no pending offer: offer the metadata") from exc
        if pending.get("offer") != timestamp_sha256 or "timestamp.json" not in files:
            raise NoPendingOffer("central's pending offer is another one: offer the metadata")
        return self.offer(files)

    def offer(self, files: dict[str, bytes]) -> Outcome:
        """Verify offered metadata; publish it when every target it names is here."""
        _check_names(files)
        if "timestamp.json" not in files:
            raise Refused("the offer has no timestamp.json: nothing would change for the boxes")
        with self._lock():
            served = self._served_timestamp()
            offered = _version_of(files["timestamp.json"]) or 0
            pending = self._pending_version()
            if pending is not None and served is not None and files["timestamp.json"] == served:
                # What /updates already serves is public: anyone can offer it again. That
                # must not replace or drop the offer regional IT is completing (it used
                # to delete the pending offer and every half-uploaded target).
                return Outcome(True, offered, [], 0)
            if pending is not None and offered < pending:
                raise Refused(
                    f"timestamp version {offered} is older than the offer central is completing "
                    f"(version {pending}): publish a newer one"
                )
            published = None if served is None else _version_of(served) or 0
            stale = published is not None and offered <= published
            if stale and files["timestamp.json"] != served:
                raise Refused(
                    f"timestamp version {offered} is not newer than the published "
                    f"{published}: sign a new timestamp (edge admin publish does)"
                )
            pinned = self.pinned()
            with self._updater(files, pinned) as (updater, cache):
                self._refresh(updater)
                served_meta = self.served / "metadata"
                for name, data in files.items():
                    existing = served_meta / name
                    if name == "timestamp.json" or not existing.exists():
                        continue
                    if existing.read_bytes() != data:
                        raise Refused(
                            f"{name} is already published with different content: "
                            "sign a new version"
                        )
                trusted = updater._trusted_set
                missing = [t for t in self._targets(updater) if not self._held(t)]
                if missing:
                    self._write_pending(files, missing)
                    return Outcome(False, trusted.timestamp.version, missing)
                verified = _verified_names(updater, check_root(pinned).signed.version)
                new = self._promote({n: d for n, d in files.items() if n in verified})
                write_atomic(self.home / ROOT, _newest_root(cache, trusted.root.version))
                (self.home / PENDING).unlink(missing_ok=True)
                shutil.rmtree(self.home / OFFER, ignore_errors=True)
                self._drop_partials(keep=set())
                return Outcome(True, trusted.timestamp.version, [], new)

    def _pending_version(self) -> int | None:
        """The timestamp version of the offer waiting for target files, if any."""
        try:
            if not (self.home / PENDING).is_file():
                return None
            return _version_of((self.home / OFFER / "timestamp.json").read_bytes())
        except OSError:
            return None

    def served_version(self) -> int | None:
        """The timestamp version ``/updates`` serves (unverified: a hint for boxes), or None.

        Read on every downlink request, so parsed only when the file changed.
        """
        try:
            stamp = (self.served / "metadata" / "timestamp.json").stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._version_cache[0] != stamp:
            data = self._served_timestamp()
            self._version_cache = (stamp, _version_of(data) if data else None)
        return self._version_cache[1]

    def _served_timestamp(self) -> bytes | None:
        try:
            return (self.served / "metadata" / "timestamp.json").read_bytes()
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _updater(self, files: dict[str, bytes], root: bytes) -> Iterator[tuple[Updater, Path]]:
        self.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.home, prefix=".verify-") as tmp:
            cache = Path(tmp) / "metadata"
            cache.mkdir()
            self._seed(cache)
            try:
                updater = Updater(
                    metadata_dir=str(cache),
                    metadata_base_url="gate:///metadata/",
                    target_dir=str(Path(tmp) / "targets"),
                    target_base_url="gate:///targets/",
                    fetcher=OfferFetcher(files, self.served),
                    bootstrap=root,
                )
            except exceptions.RepositoryError as exc:
                raise explain(exc) from exc
            yield updater, cache

    def _seed(self, cache: Path) -> None:
        """What ``/updates`` serves becomes the verifier's previous state: nothing older passes."""
        meta = self.served / "metadata"
        stamp = self._served_timestamp()
        if stamp is None:
            return
        try:
            (cache / "timestamp.json").write_bytes(stamp)
            snapshot_version = json.loads(stamp)["signed"]["meta"]["snapshot.json"]["version"]
            snapshot = (meta / f"{snapshot_version}.snapshot.json").read_bytes()
            (cache / "snapshot.json").write_bytes(snapshot)
            for name, info in json.loads(snapshot)["signed"]["meta"].items():
                source = meta / f"{info['version']}.{name}"
                if source.is_file():
                    shutil.copyfile(source, cache / name)
        except (OSError, ValueError, KeyError, TypeError):
            # a damaged served copy is verified (and refused) by ngclient, never trusted
            return

    def _refresh(self, updater: Updater) -> None:
        try:
            updater.refresh()
        except exceptions.RepositoryError as exc:
            raise explain(exc) from exc
        except exceptions.DownloadError as exc:
            raise Refused(f"the offer is incomplete: {exc}") from exc

    def _targets(self, updater: Updater) -> list[Missing]:
        """Every target of every role, each checked to be reachable through its delegation."""
        found: dict[str, Missing] = {}
        trusted = updater._trusted_set
        roles = ["targets"]
        seen: set[str] = set()
        while roles:
            name = roles.pop(0)
            if name in seen:
                continue
            seen.add(name)
            signed = trusted._trusted_set.get(name)
            if not isinstance(signed, Targets):
                continue
            for info in signed.targets.values():
                try:
                    reached = updater.get_targetinfo(info.path)
                except exceptions.RepositoryError as exc:
                    raise explain(exc) from exc
                if reached is None or reached.hashes != info.hashes:
                    raise Refused(
                        f"{name} signs {info.path}, which its delegation does not give it"
                    )
                digest = info.hashes.get("sha256")
                if digest is None:
                    raise Refused(f"{info.path} has no SHA-256 in {name}")
                directory, _, base = info.path.rpartition("/")
                hashed = f"{directory}/{digest}.{base}" if directory else f"{digest}.{base}"
                found[hashed] = Missing(hashed, info.length, digest)
            for role in (signed.delegations.roles or {}).values() if signed.delegations else ():
                if role.paths:
                    probe = role.paths[0].replace("*", "x").replace("?", "x")
                    try:
                        updater.get_targetinfo(probe)
                    except exceptions.ExpiredMetadataError as exc:
                        if role.name.startswith(PROVINCE_PREFIX):
                            # its key is with the province's team, who let it run out: only
                            # that province's boxes refuse it, the rest of the fleet is served
                            # (nothing of it is published: it was not verified)
                            continue
                        raise explain(exc) from exc
                    except exceptions.RepositoryError as exc:
                        raise explain(exc) from exc
                roles.append(role.name)
        return list(found.values())

    def _held(self, target: Missing) -> bool:
        path = self.served / "targets" / target.path
        return path.is_file() and path.stat().st_size == target.length

    def _write_pending(self, files: dict[str, bytes], missing: list[Missing]) -> None:
        """Remember the verified offer (so it can be resumed by name) and what it waits for."""
        folder = self.home / OFFER
        shutil.rmtree(folder, ignore_errors=True)
        for name, data in files.items():
            write_atomic(folder / name, data)
        pending = {
            "offer": hashlib.sha256(files["timestamp.json"]).hexdigest(),
            "targets": {m.path: {"length": m.length, "sha256": m.sha256} for m in missing},
        }
        write_atomic(self.home / PENDING, json.dumps(pending, indent=1).encode())
        self._drop_partials(keep={m.sha256 for m in missing})

    def _drop_partials(self, keep: set[str]) -> None:
        """Partial uploads no pending offer names any more (a superseded release) go."""
        folder = self.home / "partial"
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)

    def _promote(self, files: dict[str, bytes]) -> int:
        """Offered metadata into ``/updates``; timestamp.json last, so a box reading mid-way
        still sees the previous timestamp, which names only files already there."""
        meta = self.served / "metadata"
        new = 0
        for name in sorted(files):
            if name == "timestamp.json" or (meta / name).exists():
                continue
            write_atomic(meta / name, files[name])
            new += 1
        if files["timestamp.json"] != self._served_timestamp():
            write_atomic(meta / "timestamp.json", files["timestamp.json"])
            new += 1
        return new

    # -- target files ------------------------------------------------------------------------

    def receive(self, path: str, chunks: Iterable[bytes]) -> int:
        """Store one whole target file an offer asked for; returns the bytes held."""
        upload = self.begin(path, restart=True)
        try:
            for chunk in chunks:
                upload.write(chunk)
            return upload.finish()
        finally:
            upload.abort()

    def _expected(self, path: str) -> dict[str, Any]:
        if not _TARGET_NAME.match(path) or ".." in path.split("/"):
            raise Refused(f"{path!r} is not a target file name")
        try:
            pending = json.loads((self.home / PENDING).read_bytes())
        except FileNotFoundError:
            pending = {}
        expected = pending.get("targets", {}).get(path)
        if expected is None:
            raise Refused(
                f"central is not waiting for {path}: offer the metadata that names it first"
            )
        return expected

    def _partial(self, sha256: str) -> Path:
        return self.home / "partial" / sha256

    def offset(self, path: str) -> tuple[int, int]:
        """How much of a pending target central holds, and its signed length."""
        expected = self._expected(path)
        length = expected["length"]
        if self._held(Missing(path, length, expected["sha256"])):
            return length, length
        partial = self._partial(expected["sha256"])
        return (partial.stat().st_size if partial.exists() else 0), length

    def begin(self, path: str, offset: int = 0, *, restart: bool = False) -> Upload:
        """Start (or resume at ``offset``) receiving a target file the pending offer names."""
        expected = self._expected(path)
        partial = self._partial(expected["sha256"])
        if restart:
            partial.unlink(missing_ok=True)
        target = self.served / "targets" / path
        return Upload(path, target, partial, expected["length"], expected["sha256"], offset)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One publish at a time, also across several ``edge central serve`` processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.served / "metadata").mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _check_names(files: dict[str, bytes]) -> None:
    if not files:
        raise Refused("the offer holds no metadata")
    if len(files) > MAX_METADATA_FILES:
        raise Refused(f"the offer holds {len(files)} files; at most {MAX_METADATA_FILES}")
    for name in files:
        if not _METADATA_NAME.match(name):
            raise Refused(f"{name!r} is not a TUF metadata file name")


def _version_of(data: bytes) -> int | None:
    try:
        return int(json.loads(data)["signed"]["version"])
    except (ValueError, KeyError, TypeError):
        return None


def _verified_names(updater: Updater, pinned_version: int) -> set[str]:
    """The metadata files this verification actually loaded: only those get published."""
    trusted = updater._trusted_set
    names = {"timestamp.json", f"{trusted.snapshot.version}.snapshot.json"}
    names.update(f"{v}.root.json" for v in range(pinned_version + 1, trusted.root.version + 1))
    for role, signed in trusted._trusted_set.items():
        if role not in ("root", "timestamp", "snapshot"):
            names.add(f"{signed.version}.{role}.json")
    return names


def _newest_root(cache: Path, version: int) -> bytes:
    history = cache / "root_history" / f"{version}.root.json"
    if history.is_file():
        return history.read_bytes()
    return (cache / "root.json").read_bytes()
