"""One update attempt, start to finish: what ``edge update --once`` and the daemon run.

Order matters for "nothing changed on refusal": every target this box needs is
looked up and downloaded (each verified by ngclient against signed metadata)
before anything is applied, so a refusal anywhere leaves settings, reference
data, clerks and the installed release exactly as they were. Every attempt and
its outcome is a sealed event, so central sees it with the next sync.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuf.ngclient.fetcher import FetcherInterface

from edge import __version__
from edge.records import Ledger
from edge.store import Store
from edge.update import (
    RELEASE_PREFIX,
    USB_FOLDER,
    Refused,
    UpdateError,
    office_prefixes,
    version_key,
)
from edge.update import apply as applying
from edge.update.client import Source, UpdateClient, resolve_source, update_dir
from edge.update.install import PROBATION_SECONDS, Installer, InstallOutcome
from edge.vault import Keyring

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 3


@dataclass
class Options:
    source: str | None = None
    root: Path | None = None
    restart: list[str] | None = None
    python: str | None = None
    health_timeout: float = 120.0
    probation: float = PROBATION_SECONDS
    health_command: list[str] | None = None
    retry_bad: bool = False
    wall_ms: Callable[[], int] | None = None
    fetcher: FetcherInterface | None = None
    lock_wait: float = 900.0


@dataclass
class Report:
    status: str  # up-to-date | updated | idle (no source) | refused | failed
    reason: str = ""
    source: str | None = None
    changed: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    release: dict[str, Any] | None = None
    version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.status in ("up-to-date", "updated", "idle"):
            return EXIT_OK
        return EXIT_REFUSED if self.status == "refused" else EXIT_FAILED

    def line(self) -> str:
        if self.status == "idle":
            return f"nothing to check: {self.reason}"
        if self.status == "up-to-date":
            return f"up to date (release {self.version}, timestamp v{self._ts()})"
        if self.status == "updated":
            parts = []
            if self.changed:
                parts.append("applied " + ", ".join(self.changed))
            if self.release and self.release.get("status") == "installed":
                parts.append(f"release {self.release['version']} installed")
            return "updated: " + "; ".join(parts) + f" (release {self.version})"
        return f"update {self.status}: {self.reason}"

    def _ts(self) -> Any:
        return self.metadata.get("roles", {}).get("timestamp", "?")

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "source": self.source,
            "changed": self.changed,
            "settings": self.settings,
            "release": self.release,
            "version": self.version,
            "metadata": self.metadata,
        }


@contextlib.contextmanager
def _state_lock(state: Path, wait: float) -> Iterator[None]:
    """One attempt at a time; a second one waits its turn (up to ``wait`` seconds).

    On the image a stick starts two attempts at once: the daemon's (configuration
    applies at once, /opt is read-only to it) and edge-update-usb.service's, which
    must still run afterwards to install the release.
    """
    folder = update_dir(state)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise UpdateError(
                        f"another update is still running on this box after {wait:.0f} s: "
                        "try again when it has finished"
                    ) from exc
                time.sleep(0.25)
        yield
    finally:
        os.close(fd)


def usb_sources(roots: tuple[str, ...]) -> list[Path]:
    """Mounted sticks carrying an update folder, newest first."""
    found: list[Path] = []
    for root in roots:
        for depth in ("", "*/", "*/*/"):
            # a link named like the update folder would lead the reader off the stick
            found.extend(
                Path(p) for p in glob.glob(f"{root}/{depth}{USB_FOLDER}") if not os.path.islink(p)
            )
    stamped = []
    for path in found:
        with contextlib.suppress(OSError):
            stamped.append(((path / "metadata" / "timestamp.json").stat().st_mtime, path))
    return [p for _, p in sorted(stamped, reverse=True)]


def central_updates(store: Store) -> str | None:
    """Central's update repository, once the box is enrolled with central (edge.sync)."""
    try:
        row = store.conn.execute("SELECT central_url FROM sync_enrollment").fetchone()
    except sqlite3.OperationalError:
        return None
    return f"{row[0].rstrip('/')}/updates" if row and row[0] else None


def installer_for(state: Path, options: Options, source: Source | None = None) -> Installer | None:
    if options.root is None:
        return None
    return Installer(
        options.root,
        state,
        restart=options.restart,
        health=options.health_command,
        probe=source.base if source is not None and source.online else None,
        python=options.python,
        timeout=options.health_timeout,
        probation=options.probation,
    )


def running_version(installer: Installer | None) -> str:
    if installer is not None:
        version = installer.current_version()
        if version:
            return version
    return __version__


def update_once(state: Path, options: Options) -> Report:
    with _state_lock(state, options.lock_wait):
        keyring = Keyring.load(state)
        store = Store.open(state)
        try:
            return _attempt(state, store, keyring, options)
        finally:
            store.close()


def _record(store: Store, ledger: Ledger, event: str, payload: dict[str, Any]) -> None:
    with store.transaction():
        ledger.record(None, event, payload)


def _attempt(state: Path, store: Store, keyring: Keyring, options: Options) -> Report:
    ledger = Ledger(store, keyring.sealer())
    installer = installer_for(state, options)
    if installer is not None and installer.managed:
        recovered = installer.recover()
        if recovered is not None:
            _record(store, ledger, "release.recovered", recovered.as_dict())
    version = running_version(installer)
    spec = options.source or store.settings().update_url or central_updates(store)
    if spec is None:
        sticks = usb_sources(tuple(store.settings().update_usb_roots))
        spec = str(sticks[0]) if sticks else None
    if spec is None:
        # not a refusal: a box that is neither enrolled nor given a stick has nothing to check
        return Report(
            "idle",
            "no update source: pass --from URL|DIR, set update_url, enroll with central, "
            "or insert an update stick",
            version=version,
        )
    try:
        source = resolve_source(spec)
    except UpdateError as exc:
        _record(store, ledger, "update.failed", {"source": spec, "reason": str(exc)})
        return Report("failed", str(exc), spec, version=version)
    installer = installer_for(state, options, source)
    wall = options.wall_ms() if options.wall_ms else int(time.time() * 1000)
    base = {"source": source.label, "version": version}
    try:
        client = UpdateClient(
            state, source, floor_ms=store.clock.floor_ms, wall_ms=wall, fetcher=options.fetcher
        )
        client.refresh()
        content, pointer = _collect(client, keyring.office)
        bundle_path, target_version = _release(client, pointer, version)
        metadata = {"roles": client.role_versions(), "source": source.label, "version": version}
        applied = applying.apply(
            store,
            ledger,
            content,
            keyring=keyring,
            metadata=metadata,
            signed_at_ms=client.signed_at_ms(),
        )
    except Refused as exc:
        _record(store, ledger, "update.refused", {**base, "reason": str(exc)})
        return Report("refused", str(exc), source.label, version=version)
    except UpdateError as exc:
        _record(store, ledger, "update.failed", {**base, "reason": str(exc)})
        return Report("failed", str(exc), source.label, version=version)
    except Exception as exc:
        # a fault, not a verdict: still on record for central, then reported as a fault
        reason = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            _record(store, ledger, "update.failed", {**base, "reason": reason})
        raise
    client.pin_newest()
    applying.finish_disables(store, keyring, ledger)
    report = Report(
        "updated" if applied.anything else "up-to-date",
        source=source.label,
        changed=applied.changed,
        settings=applied.settings,
        version=version,
        metadata=metadata,
    )
    if target_version is None:
        return report
    return _install(store, ledger, installer, report, bundle_path, target_version, options)


def _collect(client: UpdateClient, office: str) -> tuple[applying.Content, str | None]:
    """Look up and download every target this office uses; nothing is applied yet."""
    content = applying.Content()
    pointer: str | None = None
    scopes = ["fleet", *(f"o/{prefix}" for prefix in office_prefixes(office))]
    for scope in scopes:
        for name, bucket in (
            ("config.json", content.configs),
            ("reference.json", content.references),
            ("release.json", None),
        ):
            path = f"{scope}/{name}"
            info = client.lookup(path)
            if info is None:
                continue
            document = _document(client, info)
            content.hashes[path] = info.hashes["sha256"]
            if bucket is None:
                pointer = json.dumps(document)
            else:
                bucket.append((path, document))
    path = f"o/{office}/clerks.json"
    info = client.lookup(path)
    if info is not None:
        content.clerks.append((path, _document(client, info)))
        content.hashes[path] = info.hashes["sha256"]
    return content, pointer


def _document(client: UpdateClient, info: Any) -> dict[str, Any]:
    local = client.fetch(info)
    try:
        document = json.loads(local.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused(f"{info.path} is signed but not readable JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise Refused(f"{info.path} is not a JSON object")
    return document


def _release(
    client: UpdateClient, pointer: str | None, running: str
) -> tuple[Path | None, str | None]:
    """The verified bundle to install, when the published release differs from ours."""
    if pointer is None:
        return None, None
    document = json.loads(pointer)
    target_version = str(document.get("version", ""))
    target = f"{RELEASE_PREFIX}{target_version}.tar"
    if document.get("target") != target:
        raise Refused(f"the release pointer names {document.get('target')!r}, not {target}")
    if target_version == running:
        return None, None
    if version_key(target_version) < version_key(running):
        raise Refused(
            f"rollback attempt: release {target_version} is older than the running {running}"
        )
    info = client.lookup(target)
    if info is None:
        raise Refused(f"release {target_version} is announced but {target} is not signed")
    return client.fetch(info), target_version


def _install(
    store: Store,
    ledger: Ledger,
    installer: Installer | None,
    report: Report,
    bundle_path: Path | None,
    target_version: str,
    options: Options,
) -> Report:
    if installer is None or not installer.managed or bundle_path is None:
        reason = (
            f"release {target_version} is published, but this box's software is not managed "
            f"by the updater (no release root{' at ' + str(options.root) if options.root else ''})"
        )
        _record(store, ledger, "release.skipped", {"target": target_version, "reason": reason})
        report.status, report.reason = "failed", reason
        return report
    if not os.access(installer.root, os.W_OK):
        # e.g. started by the daemon, which sees /opt read-only on the image: the
        # update unit (edge-update.service) installs it on its next run
        reason = (
            f"release {target_version} waits for the updater: {installer.root} is read-only here"
        )
        _record(store, ledger, "release.skipped", {"target": target_version, "reason": reason})
        report.status, report.reason = "failed", reason
        return report
    _record(store, ledger, "release.installing", {"from": report.version, "to": target_version})
    try:
        outcome = installer.install(bundle_path, target_version, retry_bad=options.retry_bad)
    except (UpdateError, OSError) as exc:
        outcome = InstallOutcome("failed", installer.current_version(), target_version, str(exc))
    event = {
        "installed": "release.installed",
        "rolled-back": "release.rolled_back",
    }.get(outcome.status, "release.not_installed")
    _record(store, ledger, event, {"from": report.version, **outcome.as_dict()})
    report.release = outcome.as_dict()
    report.version = outcome.version
    if outcome.status == "installed":
        report.status = "updated"
    elif outcome.status == "skipped" and outcome.version == target_version:
        pass
    else:
        report.status, report.reason = "failed", outcome.reason
    return report
