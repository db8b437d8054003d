"""Regional IT's side: keys, TUF metadata and the content boxes download.

The repository folder::

    keys/            private signing keys, one PEM per key id (0600); revoked/ keeps
                     replaced ones. In production root keys live offline, one per
                     custodian; targets and province keys with their teams; snapshot
                     and timestamp keys on central, which re-signs them.
    metadata/        what boxes fetch, as consistent snapshots: N.root.json,
                     N.targets.json, N.province-H29.json, N.snapshot.json, and
                     timestamp.json (written last, atomically)
    targets/         content under its path, each file named <sha256>.<name>

Roles: ``root`` (threshold of offline keys) names the keys of ``targets``,
``snapshot`` and ``timestamp``. ``targets`` (national) signs releases
(``releases/commune-edge-V.tar``) and fleet-wide content (``fleet/…``) and
delegates ``o/<P>/…``, ``o/<P>.…/…`` and ``o/<P>-…/…`` to ``province-<P>``, a
terminating delegation: a province signs only for offices whose code starts with
its code. Box-specific content lives under ``o/<office prefix>/``.

Signing uses python-tuf's metadata API and securesystemslib's signers; these are
TUF's keys, not the box's, so they stay in this package rather than edge.vault.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import string
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Key
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edge.durable import fsync_dir, write_atomic
from edge.settings import Settings
from edge.update import (
    CODE,
    FLEET_PATHS,
    FLEET_ROLE,
    PROVINCE_PREFIX,
    RELEASE_PREFIX,
    SIGNED_AT,
    USB_FOLDER,
    UpdateError,
    bundle,
    province_paths,
    version_key,
)
from edge.update.expiry import ROLE_WARN_DAYS, Expiry, expiry_of
from edge.vault import office_key_id, seal_clerk_password

STAGED = "staged"
STAGED_ROOT = "root.json"
STAGED_PLAN = "plan.json"
EXPIRY_DAYS = {"root": 365, "targets": 120, "province": 120, "snapshot": 30, "timestamp": 7}
"""Lifetimes. The timestamp's is the longest a box may be cut off from fresh metadata
(a USB stick made today is good for a week); a publish re-signs whatever is close to
expiry, so regional IT only has to publish regularly."""

SPEC_VERSION = "1.0.31"
_SERIALIZER = JSONSerializer(compact=True)
_PASSWORD_ALPHABET = "".join(c for c in string.ascii_lowercase + string.digits if c not in "l1o0")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class AdminRepo:
    """One update repository on regional IT's machine."""

    def __init__(
        self,
        path: Path,
        *,
        now: Callable[[], datetime] = _now,
        key_dirs: Sequence[Path] = (),
    ) -> None:
        self.path = path
        self.now = now
        # folders holding private keys kept away from the repository: the root key
        # custodians' sticks, a province team's key (``edge admin custody``)
        self.key_dirs = list(key_dirs)
        if not (self.metadata_dir / "timestamp.json").exists():
            raise UpdateError(
                f"no update repository in {path}: run 'edge admin init --repo {path}' first"
            )

    @property
    def metadata_dir(self) -> Path:
        return self.path / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.path / "targets"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    # -- creation ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        threshold: int = 1,
        root_keys: int | None = None,
        now: Callable[[], datetime] = _now,
    ) -> AdminRepo:
        root_keys = root_keys or threshold
        if threshold < 1 or root_keys < threshold:
            raise UpdateError(f"a threshold of {threshold} needs at least that many root keys")
        if (path / "metadata").exists() and any((path / "metadata").iterdir()):
            raise UpdateError(f"{path} already holds an update repository")
        for sub in ("metadata", "targets", "keys"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        (path / "keys").chmod(0o700)
        stamp = now()
        holder = cls.__new__(cls)
        holder.path, holder.now, holder.key_dirs = path, now, []
        root = Root(
            version=1,
            spec_version=SPEC_VERSION,
            expires=stamp + timedelta(days=EXPIRY_DAYS["root"]),
            consistent_snapshot=True,
            unrecognized_fields={SIGNED_AT: _iso(stamp)},
        )
        for _ in range(root_keys):
            root.add_key(holder._new_key(), "root")
        root.roles["root"].threshold = threshold
        for role in ("targets", "snapshot", "timestamp"):
            root.add_key(holder._new_key(), role)
        root_md = Metadata(root)
        holder._sign(root_md, root.roles["root"].keyids, threshold, "root", root.keys)
        holder._write_versioned("root", root_md)
        targets_md = Metadata(
            Targets(
                version=1,
                spec_version=SPEC_VERSION,
                expires=stamp + timedelta(days=EXPIRY_DAYS["targets"]),
            )
        )
        holder._sign_role("targets", targets_md)
        holder._write_versioned("targets", targets_md)
        holder._snapshot_and_timestamp(first=True)
        holder._delegate_role(FLEET_ROLE, FLEET_PATHS)
        (path / "README.txt").write_text(
            "Commune Edge update repository. keys/ holds private signing keys: never copy it\n"
            "to a USB stick or to central. Boxes need metadata/1.root.json at provisioning\n"
            "(edge init ... --trust-root 1.root.json). See docs/updates.md.\n",
            "utf-8",
        )
        return holder

    # -- reading ---------------------------------------------------------------------

    def _load(self, filename: str) -> Metadata:
        path = self.metadata_dir / filename
        try:
            return Metadata.from_bytes(path.read_bytes())
        except FileNotFoundError as exc:
            raise UpdateError(f"{path} is missing: the repository is damaged") from exc

    def root_md(self) -> Metadata[Root]:
        versions = [int(p.name.split(".")[0]) for p in self.metadata_dir.glob("*.root.json")]
        return self._load(f"{max(versions)}.root.json")

    def timestamp_md(self) -> Metadata[Timestamp]:
        return self._load("timestamp.json")

    def snapshot_md(self) -> Metadata[Snapshot]:
        version = self.timestamp_md().signed.snapshot_meta.version
        return self._load(f"{version}.snapshot.json")

    def targets_md(self, role: str = "targets") -> Metadata[Targets]:
        meta = self.snapshot_md().signed.meta.get(f"{role}.json")
        if meta is None:
            raise UpdateError(f"the repository has no role {role}")
        return self._load(f"{meta.version}.{role}.json")

    def provinces(self) -> list[str]:
        delegations = self.targets_md().signed.delegations
        if delegations is None or delegations.roles is None:
            return []
        return [
            name[len(PROVINCE_PREFIX) :]
            for name in delegations.roles
            if name.startswith(PROVINCE_PREFIX)
        ]

    def _delegated(self) -> list[str]:
        delegations = self.targets_md().signed.delegations
        if delegations is None or delegations.roles is None:
            return []
        return list(delegations.roles)

    def fleet_role(self) -> str:
        """Where fleet-wide content is signed: the fleet role, or targets in a repository
        made before the fleet role existed."""
        return FLEET_ROLE if FLEET_ROLE in self._delegated() else "targets"

    def _targets_roles(self) -> list[str]:
        return ["targets", *self._delegated()]

    def province_for(self, office: str) -> str:
        """The province whose delegation covers an office code (or prefix)."""
        for province in self.provinces():
            if office == province or office.startswith((f"{province}.", f"{province}-")):
                return province
        raise UpdateError(
            f"no province is delegated for office {office}: run "
            f"'edge admin delegate --repo {self.path} --province <code>' first"
        )

    def content(self, path: str, role: str = "targets") -> bytes | None:
        """The current bytes of a target path, or None when it is not published."""
        info = self.targets_md(role).signed.targets.get(path)
        if info is None:
            return None
        return self._target_file(path, info.hashes["sha256"]).read_bytes()

    def _target_file(self, path: str, digest: str) -> Path:
        directory, _, name = path.rpartition("/")
        return self.targets_dir / directory / f"{digest}.{name}"

    # -- keys and signing ------------------------------------------------------------

    def _new_key(self) -> Key:
        signer = CryptoSigner.generate_ed25519()
        key = signer.public_key
        target = self.keys_dir / f"{key.keyid}.pem"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(signer.private_bytes)
        return key

    def _key_file(self, keyid: str) -> Path | None:
        for folder in (self.keys_dir, *self.key_dirs):
            path = folder / f"{keyid}.pem"
            if path.is_file():
                return path
        return None

    def _signer(self, key: Key) -> CryptoSigner | None:
        path = self._key_file(key.keyid)
        if path is None:
            return None
        return CryptoSigner(load_pem_private_key(path.read_bytes(), None), key)  # type: ignore[arg-type]

    def custody(self, role: str, out: Path) -> Path:
        """Move one private key of a top-level role out of the repository into ``out``.

        Run once per custodian with their own medium: with root threshold 2 of 3, three
        sticks each hold one root key, and any two of them (``--key-dir``) sign a new root.
        """
        if role not in TOP_LEVEL_ROLE_NAMES:
            raise UpdateError(
                f"{role} is not a top-level role (root, targets, snapshot, timestamp)"
            )
        if not out.is_dir():
            raise UpdateError(f"{out} is not a folder: mount the custodian's medium first")
        for keyid in self.root_md().signed.roles[role].keyids:
            source = self.keys_dir / f"{keyid}.pem"
            if source.is_file():
                target = out / source.name
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(source.read_bytes())
                    fh.flush()
                    os.fsync(fh.fileno())
                fsync_dir(out)
                source.unlink()
                fsync_dir(self.keys_dir)
                return target
        raise UpdateError(f"no {role} key is left in {self.keys_dir}: each is with a custodian")

    def key_locations(self) -> dict[str, list[str]]:
        """Per top-level role, where each private key is: here, a --key-dir, or offline."""
        root = self.root_md().signed
        found: dict[str, list[str]] = {}
        for role in ("root", "targets", "snapshot", "timestamp"):
            places = []
            for keyid in root.roles[role].keyids:
                path = self._key_file(keyid)
                where = "offline" if path is None else str(path.parent)
                places.append(f"{keyid[:12]}… {where}")
            found[role] = places
        return found

    def _sign(
        self, md: Metadata, keyids: list[str], threshold: int, role: str, keys: dict[str, Key]
    ) -> None:
        md.signatures.clear()
        signed = 0
        for keyid in keyids:
            signer = self._signer(keys[keyid])
            if signer is not None:
                md.sign(signer, append=True)
                signed += 1
        if signed < threshold:
            raise UpdateError(
                f"{role} needs {threshold} signature(s) but only {signed} of its keys are in "
                f"{self.keys_dir}: bring the other key holders' signatures"
            )

    def _sign_role(
        self,
        role: str,
        md: Metadata,
        root: Root | None = None,
        delegator: Targets | None = None,
    ) -> None:
        if role in TOP_LEVEL_ROLE_NAMES:
            root = root or self.root_md().signed
            spec = root.roles[role]
            self._sign(md, spec.keyids, spec.threshold, role, root.keys)
            return
        delegations = (delegator or self.targets_md().signed).delegations
        if delegations is None or delegations.roles is None or role not in delegations.roles:
            raise UpdateError(f"role {role} is not delegated")
        spec = delegations.roles[role]
        self._sign(md, spec.keyids, spec.threshold, role, delegations.keys)

    # -- writing ---------------------------------------------------------------------

    def _write_versioned(self, role: str, md: Metadata) -> None:
        write_atomic(
            self.metadata_dir / f"{md.signed.version}.{role}.json", md.to_bytes(_SERIALIZER)
        )

    def _write_target(self, path: str, data: bytes) -> TargetFile:
        info = TargetFile.from_data(path, data, ["sha256"])
        target = self._target_file(path, info.hashes["sha256"])
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            write_atomic(target, data)
        return info

    def _bump(self, md: Metadata, days: int) -> None:
        md.signed.version += 1
        md.signed.expires = self.now() + timedelta(days=days)

    def _snapshot_and_timestamp(self, *, first: bool = False) -> None:
        stamp = self.now()
        if first:
            snapshot = Snapshot(version=1, spec_version=SPEC_VERSION, meta={})
            version = 0
        else:
            snapshot = self.snapshot_md().signed
            version = snapshot.version
        meta: dict[str, MetaFile] = {}
        for path in self.metadata_dir.glob("*.json"):
            parts = path.name.split(".", 1)
            if len(parts) != 2 or not parts[0].isdigit():
                continue
            role = parts[1][: -len(".json")]
            if role in ("root", "snapshot"):
                continue
            current = meta.get(f"{role}.json")
            if current is None or current.version < int(parts[0]):
                meta[f"{role}.json"] = MetaFile(version=int(parts[0]))
        snapshot.meta = meta
        snapshot.version = version + 1
        snapshot.expires = stamp + timedelta(days=EXPIRY_DAYS["snapshot"])
        snapshot_md = Metadata(snapshot)
        self._sign_role("snapshot", snapshot_md)
        self._write_versioned("snapshot", snapshot_md)
        self._timestamp(snapshot_md, first=first)

    def _timestamp(self, snapshot_md: Metadata | None = None, *, first: bool = False) -> None:
        stamp = self.now()
        snapshot_md = snapshot_md or self.snapshot_md()
        data = snapshot_md.to_bytes(_SERIALIZER)
        previous = 0 if first else self.timestamp_md().signed.version
        timestamp = Timestamp(
            version=previous + 1,
            spec_version=SPEC_VERSION,
            expires=stamp + timedelta(days=EXPIRY_DAYS["timestamp"]),
            snapshot_meta=MetaFile(
                version=snapshot_md.signed.version,
                length=len(data),
                hashes={"sha256": hashlib.sha256(data).hexdigest()},
            ),
            unrecognized_fields={SIGNED_AT: _iso(stamp)},
        )
        md = Metadata(timestamp)
        self._sign_role("timestamp", md)
        write_atomic(self.metadata_dir / "timestamp.json", md.to_bytes(_SERIALIZER))

    def _edit_targets(self, role: str, change: Callable[[Targets], None]) -> None:
        md = self.targets_md(role)
        change(md.signed)
        self._bump(md, EXPIRY_DAYS["targets" if role == "targets" else "province"])
        self._sign_role(role, md)
        self._write_versioned(role, md)
        self._snapshot_and_timestamp()

    # -- operations ------------------------------------------------------------------

    def delegate(self, province: str, *, rotate: bool = False) -> str:
        """Give a province its own key for the offices under its code; returns the role name."""
        province = province.strip().upper()
        if not CODE.match(province):
            raise UpdateError(f"province code {province!r} is not valid")
        role = f"{PROVINCE_PREFIX}{province}"
        existing = self.provinces()
        if province in existing and not rotate:
            raise UpdateError(f"province {province} is delegated already (use --rotate-key)")
        if province not in existing:
            for other in existing:
                if _overlaps(province, other):
                    raise UpdateError(f"province {province} overlaps province {other}")
        return self._delegate_role(role, province_paths(province))

    def _delegate_role(self, role: str, paths: list[str]) -> str:
        """Delegate ``paths`` to ``role`` with a fresh key, or give an existing role a new
        key (the old one is revoked and its file retired)."""
        key = self._new_key()
        replaced: list[str] = []
        existing = role in self._delegated()

        def change(targets: Targets) -> None:
            if targets.delegations is None:
                targets.delegations = Delegations(keys={}, roles={})
            assert targets.delegations.roles is not None
            if role in targets.delegations.roles:
                replaced.extend(targets.delegations.roles[role].keyids)
                for keyid in list(replaced):
                    targets.revoke_key(keyid, role)
            targets.delegations.roles.setdefault(
                role,
                DelegatedRole(
                    name=role,
                    keyids=[],
                    threshold=1,
                    terminating=True,
                    paths=paths,
                ),
            )
            targets.add_key(key, role)

        expires = self.now() + timedelta(days=EXPIRY_DAYS["province"])
        if existing:
            delegated = self.targets_md(role)
            self._bump(delegated, EXPIRY_DAYS["province"])
        else:
            delegated = Metadata(Targets(version=1, spec_version=SPEC_VERSION, expires=expires))
        top = self._edit_targets_only("targets", change)
        self._sign_role(role, delegated, delegator=top)
        self._write_versioned(role, delegated)
        self._snapshot_and_timestamp()
        self._retire(replaced)
        return role

    def _edit_targets_only(self, role: str, change: Callable[[Targets], None]) -> Targets:
        """A new version of a targets role, not yet in a snapshot."""
        md = self.targets_md(role)
        change(md.signed)
        self._bump(md, EXPIRY_DAYS["targets"])
        self._sign_role(role, md)
        self._write_versioned(role, md)
        return md.signed

    def _retire(self, keyids: list[str]) -> None:
        revoked = self.keys_dir / "revoked"
        for keyid in keyids:
            source = self.keys_dir / f"{keyid}.pem"
            if source.exists():
                revoked.mkdir(mode=0o700, exist_ok=True)
                os.replace(source, revoked / source.name)

    def release(self, version: str, wheels_dir: Path, *, allow_incomplete: bool = False) -> str:
        """Publish a release bundle and point the fleet at it; returns the bundle's path."""
        fleet = self.fleet_role()
        pointer = self.content("fleet/release.json", fleet)
        if pointer is not None:
            current = json.loads(pointer)["version"]
            if version_key(version) <= version_key(current):
                raise UpdateError(
                    f"release {version} is not newer than the published {current}: "
                    "boxes refuse downgrades"
                )
        path = f"{RELEASE_PREFIX}{version}.tar"
        scratch = self.path / f".bundle-{secrets.token_hex(4)}.tar"
        try:
            manifest = bundle.build(wheels_dir, version, scratch, allow_incomplete=allow_incomplete)
            data = scratch.read_bytes()
        finally:
            scratch.unlink(missing_ok=True)
        info = self._write_target(path, data)
        info.unrecognized_fields["custom"] = {"version": version, "missing": manifest["missing"]}
        pointer_data = _json({"version": version, "target": path})
        pointer_info = self._write_target("fleet/release.json", pointer_data)

        def bundle_in(targets: Targets) -> None:
            targets.targets[path] = info

        def pointer_in(targets: Targets) -> None:
            targets.targets["fleet/release.json"] = pointer_info

        # the bundle is code: only the national targets role signs it; the pointer is
        # fleet content. One snapshot names both new versions.
        self._edit_targets_only("targets", bundle_in)
        self._edit_targets_only(fleet, pointer_in)
        self._snapshot_and_timestamp()
        return path

    def _scope(self, office: str | None, name: str) -> tuple[str, str]:
        if office is None:
            return self.fleet_role(), f"fleet/{name}"
        office = office.strip().upper()
        if not CODE.match(office):
            raise UpdateError(f"office code {office!r} is not valid")
        return f"{PROVINCE_PREFIX}{self.province_for(office)}", f"o/{office}/{name}"

    def _publish_json(self, role: str, path: str, document: dict[str, Any]) -> None:
        info = self._write_target(path, _json(document))

        def change(targets: Targets) -> None:
            targets.targets[path] = info

        self._edit_targets(role, change)

    def set_config(
        self,
        changes: dict[str, Any],
        *,
        unset: list[str] | None = None,
        office: str | None = None,
    ) -> str:
        """Change settings for the fleet or an office prefix; returns the target path."""
        known = Settings().as_dict()
        for key in [*changes, *(unset or [])]:
            if key not in known:
                raise UpdateError(f"unknown setting {key!r} (known: {', '.join(sorted(known))})")
        Settings.from_mapping({**known, **changes})
        role, path = self._scope(office, "config.json")
        current = self.content(path, role)
        document = json.loads(current) if current else {"settings": {}}
        document["settings"].update(changes)
        for key in unset or []:
            document["settings"].pop(key, None)
        self._publish_json(role, path, document)
        return path

    def set_reference(self, name: str, data: Any, *, office: str | None = None) -> str:
        """Replace one reference data set (procedure catalogue, agency codes…)."""
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise UpdateError(f"reference data name {name!r} is not valid")
        role, path = self._scope(office, "reference.json")
        current = self.content(path, role)
        document = json.loads(current) if current else {"sets": {}}
        document["sets"][name] = data
        self._publish_json(role, path, document)
        return path

    def clerk(
        self,
        office: str,
        op: str,
        name: str,
        *,
        office_keys: list[bytes] | None = None,
        password: str | None = None,
    ) -> str | None:
        """Queue a clerk account change for one office; returns the initial password, if any.

        ``add`` and ``reset`` carry the initial password sealed to each of the office's box
        keys (see docs/updates.md, "Clerk accounts"); ``disable`` carries nothing secret.
        """
        if op not in ("add", "reset", "disable"):
            raise UpdateError(f"unknown clerk change {op!r}")
        role, path = self._scope(office, "clerks.json")
        office = office.strip().upper()
        change: dict[str, Any] = {"id": uuid.uuid4().hex, "op": op, "name": name}
        if op != "disable":
            keys = office_keys or self.office_keys(office)
            if not keys:
                raise UpdateError(
                    f"no office key known for {office}: pass --office-key FILE (the box prints "
                    f"it with 'edge config --json') or put it in {self.path}/boxes/{office}/"
                )
            password = password or "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(12))
            change["sealed"] = {
                office_key_id(key): _b64(seal_clerk_password(key, change["id"], name, password))
                for key in keys
            }
        current = self.content(path, role)
        document: dict[str, Any] = (
            json.loads(current) if current else {"office": office, "changes": []}
        )
        document["changes"].append(change)
        self._publish_json(role, path, document)
        return password if op != "disable" else None

    def office_keys(self, office: str) -> list[bytes]:
        from edge.provision import read_public_key

        folder = self.path / "boxes" / office
        return [read_public_key(p) for p in sorted(folder.glob("*.pub"))] if folder.is_dir() else []

    def rotate(
        self,
        role: str,
        *,
        threshold: int | None = None,
        keys: int | None = None,
        stage: bool = False,
    ) -> int:
        """Replace every key of a top-level role with fresh ones; returns the new root version.

        The new root is signed by the old root's threshold and the new one's, so boxes
        can follow the chain; the replaced private keys move to keys/revoked/. With
        ``stage``, a root short of signatures is kept in ``staged/`` for custodians
        elsewhere to sign (``sign_staged``) instead of being refused.
        """
        if role == FLEET_ROLE and role in self._delegated():
            self._delegate_role(FLEET_ROLE, FLEET_PATHS)
            return self.root_md().signed.version
        if role not in TOP_LEVEL_ROLE_NAMES:
            raise UpdateError(
                f"{role} is not a top-level role (root, targets, snapshot, timestamp) "
                "or the fleet role"
            )
        if (self.path / STAGED / STAGED_ROOT).exists():
            raise UpdateError(
                f"a new root is already staged in {self.path / STAGED}: finish it with "
                "'edge admin sign' or remove that folder"
            )
        old_root = self.root_md().signed
        root = Metadata.from_bytes(self.root_md().to_bytes()).signed
        replaced = list(root.roles[role].keyids)
        count = keys or len(replaced)
        if threshold is not None and not 1 <= threshold <= count:
            raise UpdateError(f"threshold {threshold} does not fit {count} key(s)")
        for keyid in replaced:
            root.revoke_key(keyid, role)
        for _ in range(count):
            root.add_key(self._new_key(), role)
        if threshold is not None:
            root.roles[role].threshold = threshold
        root.version += 1
        root.expires = self.now() + timedelta(days=EXPIRY_DAYS["root"])
        root.unrecognized_fields[SIGNED_AT] = _iso(self.now())
        md = Metadata(root)
        md.signatures.clear()
        for keyid in {*old_root.roles["root"].keyids, *root.roles["root"].keyids}:
            key = old_root.keys.get(keyid) or root.keys.get(keyid)
            signer = self._signer(key) if key is not None else None
            if signer is not None:
                md.sign(signer, append=True)
        missing = _root_signatures_missing(old_root, md)
        if missing and not stage:
            for keyid in root.keys.keys() - old_root.keys.keys():
                (self.keys_dir / f"{keyid}.pem").unlink(missing_ok=True)
            raise UpdateError(
                f"a new root needs {old_root.roles['root'].threshold} root key signature(s), "
                f"{len(md.signatures)} found: bring the custodians' key folders with --key-dir, "
                "or --stage it for custodians elsewhere (nothing was changed)"
            )
        if missing:
            staged = self.path / STAGED
            staged.mkdir(exist_ok=True)
            plan = {"role": role, "replaced": replaced, "version": root.version}
            write_atomic(staged / STAGED_PLAN, _json(plan))
            write_atomic(staged / STAGED_ROOT, md.to_bytes(_SERIALIZER))
            return root.version
        self._commit_root(md, role, replaced)
        return root.version

    def sign_staged(self, signed_copies: Sequence[Path] = ()) -> tuple[int, int]:
        """Add signatures to the staged root: from ``--key-dir`` media, and from copies
        custodians signed elsewhere (``edge admin sign --file``). Commits the root once
        enough signatures are there; returns (signatures still missing, root version)."""
        staged = self.path / STAGED
        try:
            md = Metadata.from_bytes((staged / STAGED_ROOT).read_bytes())
            plan = json.loads((staged / STAGED_PLAN).read_bytes())
        except FileNotFoundError as exc:
            raise UpdateError(
                f"no root is staged in {staged}: 'edge admin rotate --stage'"
            ) from exc
        old_root = self.root_md().signed
        root = md.signed
        allowed = {**old_root.keys, **root.keys}
        wanted = {*old_root.roles["root"].keyids, *root.roles["root"].keyids}
        for keyid in wanted:
            signer = self._signer(allowed[keyid])
            if signer is not None and keyid not in md.signatures:
                md.sign(signer, append=True)
        for copy in signed_copies:
            try:
                other = Metadata.from_bytes(copy.read_bytes())
            except Exception as exc:
                raise UpdateError(f"{copy} is not TUF metadata ({exc})") from exc
            if other.signed_bytes != md.signed_bytes:
                raise UpdateError(f"{copy} is not the staged root version {root.version}")
            for keyid, signature in other.signatures.items():
                if keyid in wanted and keyid not in md.signatures:
                    try:
                        allowed[keyid].verify_signature(signature, md.signed_bytes)
                    except Exception as exc:
                        raise UpdateError(f"{copy}: the signature of {keyid[:12]}… is bad") from exc
                    md.signatures[keyid] = signature
        missing = _root_signatures_missing(old_root, md)
        if missing:
            write_atomic(staged / STAGED_ROOT, md.to_bytes(_SERIALIZER))
            return missing, root.version
        self._commit_root(md, plan["role"], plan["replaced"])
        (staged / STAGED_ROOT).unlink()
        (staged / STAGED_PLAN).unlink()
        return 0, root.version

    def _commit_root(self, md: Metadata[Root], role: str, replaced: list[str]) -> None:
        root = md.signed
        self._write_versioned("root", md)
        if role == "targets":
            targets = self.targets_md()
            self._bump(targets, EXPIRY_DAYS["targets"])
            self._sign_role("targets", targets, root)
            self._write_versioned("targets", targets)
        if role in ("targets", "snapshot", "timestamp"):
            self._snapshot_and_timestamp()
        self._retire(replaced)

    def refresh(self) -> int:
        """Re-sign what is near expiry and always a fresh timestamp; returns its version.

        What central (or a daily job) runs so boxes that are offline for a while still
        find metadata that has not expired.
        """
        stamp = self.now()
        changed = False
        for role in self._targets_roles():
            md = self.targets_md(role)
            if md.signed.expires - stamp < timedelta(days=ROLE_WARN_DAYS):
                if role.startswith(PROVINCE_PREFIX) and not self._signable(role):
                    # kept by the province's own team: its expiry stops that province's
                    # boxes only, so it is their warning (``warnings``), not everyone's stop
                    continue
                self._bump(md, EXPIRY_DAYS["targets" if role == "targets" else "province"])
                self._sign_role(role, md)
                self._write_versioned(role, md)
                changed = True
        snapshot = self.snapshot_md().signed
        if changed or snapshot.expires - stamp < timedelta(days=EXPIRY_DAYS["snapshot"] / 2):
            self._snapshot_and_timestamp()
        else:
            self._timestamp()
        return self.timestamp_md().signed.version

    def export(self, dest: Path) -> Path:
        """Copy what boxes need (never keys/) into ``dest``; timestamp.json goes last.

        Versioned metadata and hash-named targets never change once written, so only
        new files are copied, and a box reading ``dest`` mid-copy sees the old
        timestamp, which points only at files that are already there.
        """
        dest.mkdir(parents=True, exist_ok=True)
        for sub in ("targets", "metadata"):
            source = self.path / sub
            for path in sorted(source.rglob("*")):
                if path.is_dir() or path.name == "timestamp.json" or path.name.startswith("."):
                    continue
                target = dest / sub / path.relative_to(source)
                if target.exists() and target.stat().st_size == path.stat().st_size:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, path.read_bytes())
        write_atomic(
            dest / "metadata" / "timestamp.json",
            (self.metadata_dir / "timestamp.json").read_bytes(),
        )
        fsync_dir(dest / "metadata")
        return dest

    def usb(self, mountpoint: Path) -> Path:
        if not mountpoint.is_dir():
            raise UpdateError(f"{mountpoint} is not a mounted folder")
        self.refresh()
        out = self.export(mountpoint / USB_FOLDER)
        (out / "README.txt").write_text(
            "Commune Edge update. Plug this stick into a box: it verifies and applies it by\n"
            "itself, or run 'edge update --state <state> --once --from <this stick>'.\n",
            "utf-8",
        )
        return out

    def publish(self, destination: str) -> str:
        """Refresh the timestamp and hand the repository to central; returns a summary.

        ``destination`` is central's URL (verified upload, edge/update/publish.py) or,
        on central's own machine, the folder it serves as /updates.
        """
        self.refresh()
        if destination.startswith(("http://", "https://")):
            from edge.update.publish import publish

            done = publish(self.metadata_dir, self.targets_dir, destination)
            sent = f"{len(done.uploaded)} target file(s), {done.uploaded_bytes:,} B"
            return f"published timestamp {done.timestamp} to {destination} ({sent} uploaded)"
        dest = Path(destination.removeprefix("file://")).expanduser()
        return f"published to {self.export(dest)}"

    def _signable(self, role: str) -> bool:
        """Whether a threshold of a delegated role's keys is at hand (here or a --key-dir)."""
        delegations = self.targets_md().signed.delegations
        if delegations is None or delegations.roles is None or role not in delegations.roles:
            return False
        spec = delegations.roles[role]
        present = sum(1 for k in spec.keyids if self._signer(delegations.keys[k]) is not None)
        return present >= spec.threshold

    def expiries(self) -> list[Expiry]:
        """Root's and every targets role's expiry, judged at this repository's clock."""
        stamp = self.now()
        found = [expiry_of("root", self.root_md(), stamp)]
        found += [expiry_of(role, self.targets_md(role), stamp) for role in self._targets_roles()]
        return found

    def warnings(self) -> list[str]:
        """One line per role that runs out soon: root months ahead, the others when a
        publish could not re-sign them (their key is with someone else)."""
        return [e.warning for e in self.expiries() if e.warning]

    def status(self) -> dict[str, Any]:
        timestamp = self.timestamp_md().signed
        pointer = self.content("fleet/release.json", self.fleet_role())
        return {
            "keys": self.key_locations(),
            "root": self.root_md().signed.version,
            "root_expires": _iso(self.root_md().signed.expires),
            "expires": {e.role: _iso(e.expires) for e in self.expiries()},
            "warnings": self.warnings(),
            "timestamp": timestamp.version,
            "timestamp_expires": timestamp.expires.isoformat(),
            "snapshot": timestamp.snapshot_meta.version,
            "provinces": self.provinces(),
            "release": json.loads(pointer)["version"] if pointer else None,
        }

    def target_paths(self) -> Iterator[tuple[str, str]]:
        for role in self._targets_roles():
            for path in self.targets_md(role).signed.targets:
                yield role, path


def _overlaps(a: str, b: str) -> bool:
    return any(x == y or x.startswith((f"{y}.", f"{y}-")) for x, y in ((a, b), (b, a)))


def _root_signatures_missing(old_root: Root, md: Metadata[Root]) -> int:
    """How many more root signatures a new root needs: a threshold of the old root's
    root keys and of its own, so boxes can follow the chain."""
    missing = 0
    for trusted in (old_root, md.signed):
        spec = trusted.roles["root"]
        valid = 0
        for keyid in spec.keyids:
            if keyid in md.signatures:
                try:
                    trusted.keys[keyid].verify_signature(md.signatures[keyid], md.signed_bytes)
                    valid += 1
                except Exception:
                    continue  # a bad signature simply does not count
        missing = max(missing, spec.threshold - valid)
    return missing


def sign_file(path: Path, key_dirs: Sequence[Path]) -> list[str]:
    """A custodian's signature on a staged root copy, with no repository at hand.

    Every private key on the custodian's media signs; signatures by keys the root does
    not trust are ignored when the copy is merged. Returns the key ids that signed.
    """
    try:
        md = Metadata.from_bytes(path.read_bytes())
    except Exception as exc:
        raise UpdateError(f"{path} is not TUF metadata ({exc})") from exc
    if not isinstance(md.signed, Root):
        raise UpdateError(f"{path} is not root metadata: only a staged root is signed this way")
    signed = []
    for folder in key_dirs:
        for pem in sorted(folder.glob("*.pem")):
            private = load_pem_private_key(pem.read_bytes(), None)
            signer = CryptoSigner(private)
            md.sign(signer, append=True)
            signed.append(signer.public_key.keyid)
    if not signed:
        raise UpdateError(f"no private key (*.pem) in {', '.join(map(str, key_dirs))}")
    write_atomic(path, md.to_bytes(_SERIALIZER))
    return signed


def _iso(stamp: datetime) -> str:
    return stamp.isoformat().replace("+00:00", "Z")


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
