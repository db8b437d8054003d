"""Attacks on updates: each is refused with a clear reason and changes nothing on the box.

A box of office H29.01 takes a fleet configuration once; then an attacker who
controls what the box downloads (the network, a USB stick, a compromised mirror)
or who holds some key (a revoked one, another province's) tries to change it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, TargetFile
from tuf.api.serialization.json import JSONSerializer

from edge.provision import provision
from edge.store import Store
from edge.update.cycle import Options, Report, update_once
from edge.update.repository import AdminRepo
from edge.vault import Keyring
from tests.update_support import PASSWORD, run_edge

COMPACT = JSONSerializer(compact=True)


class World:
    """Regional IT's repository, the folder boxes read it from, and one box."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = AdminRepo.create(base / "repo")
        self.repo.delegate("H29")
        self.repo.delegate("H30")
        self.repo.set_config({"min_dpi": 250})
        self.repo.set_reference("agencies", {"H29": "Hà Nội"})
        self.served = base / "served"
        self.publish()
        self.state = base / "box"
        provision(
            self.state,
            office="H29.01",
            clerk="lan",
            password=PASSWORD,
            trust_root=self.repo.metadata_dir / "1.root.json",
        )
        assert self.update().status == "updated"

    def publish(self) -> None:
        self.repo.export(self.served)

    def update(self, source: Path | None = None, **options: Any) -> Report:
        return update_once(self.state, Options(source=str(source or self.served), **options))

    def view(self) -> dict[str, Any]:
        """Everything an update may change on the box."""
        store = Store.open(self.state)
        try:
            return {
                "settings": store.settings().as_dict(),
                "targets": store.meta("update.targets"),
                "sources": store.meta("update.config_sources"),
                "reference": [tuple(r) for r in store.conn.execute("SELECT * FROM reference_data")],
                "clerk_changes": store.count("clerk_changes"),
                "clerks": Keyring.load(self.state).clerks(),
            }
        finally:
            store.close()

    def events(self) -> list[str]:
        store = Store.open(self.state)
        try:
            return [e.type for e in store.events()]
        finally:
            store.close()

    def served_file(self, role: str) -> Path:
        """The newest versioned metadata file of a role in the served folder."""
        files = self.served.glob(f"metadata/*.{role}.json")
        return max(files, key=lambda p: int(p.name.split(".")[0]))

    def key_of(self, role: str, delegator: str = "targets") -> CryptoSigner:
        if delegator == "root":
            signed = self.repo.root_md().signed
            keyid = signed.roles[role].keyids[0]
            key = signed.keys[keyid]
        else:
            delegations = self.repo.targets_md(delegator).signed.delegations
            keyid = delegations.roles[role].keyids[0]
            key = delegations.keys[keyid]
        pem = (self.repo.keys_dir / f"{keyid}.pem").read_bytes()
        return CryptoSigner(load_pem_private_key(pem, None), key)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _refused(world: World, before: dict[str, Any], report: Report, *words: str) -> None:
    assert report.status == "refused", report
    assert report.exit_code == 3
    assert "\n" not in report.reason
    for word in words:
        assert word in report.reason, report.reason
    assert world.view() == before
    assert world.events()[-1] == "update.refused"


def test_tampered_target_file(world: World) -> None:
    before = world.view()
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    info = world.repo.targets_md("fleet").signed.targets["fleet/config.json"]
    target = world.served / "targets" / "fleet" / f"{info.hashes['sha256']}.config.json"
    target.write_bytes(target.read_bytes().replace(b"300", b"100"))
    _refused(world, before, world.update(), "tampered", "hash")


def test_tampered_metadata(world: World) -> None:
    before = world.view()
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    evil = json.dumps({"settings": {"min_dpi": 72}}).encode()
    info = TargetFile.from_data("fleet/config.json", evil, ["sha256"])
    (world.served / "targets" / "fleet" / f"{info.hashes['sha256']}.config.json").write_bytes(evil)
    path = world.served_file("fleet")
    md = Metadata.from_bytes(path.read_bytes())
    md.signed.targets["fleet/config.json"] = info
    path.write_bytes(md.to_bytes(COMPACT))
    _refused(world, before, world.update(), "bad signature", "fleet")


def test_metadata_signed_by_a_revoked_key(world: World) -> None:
    old_key = world.key_of("timestamp", delegator="root")
    world.repo.rotate("timestamp")
    world.publish()
    assert world.update().status in ("up-to-date", "updated")
    store = Store.open(world.state)
    try:
        assert json.loads(store.meta("update.metadata"))["roles"]["root"] == 2
    finally:
        store.close()
    before = world.view()
    path = world.served / "metadata" / "timestamp.json"
    md = Metadata.from_bytes(path.read_bytes())
    md.signed.version += 1
    md.signed.expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    md.sign(old_key)
    path.write_bytes(md.to_bytes(COMPACT))
    _refused(world, before, world.update(), "bad signature", "timestamp")


def test_fleet_content_signed_by_the_replaced_fleet_key(world: World) -> None:
    old_key = world.key_of("fleet")
    done = run_edge("admin", "rotate", "--repo", str(world.repo.path), "--role", "fleet")
    assert done.returncode == 0, done.stderr
    world.publish()
    assert world.update().status in ("up-to-date", "updated")
    before = world.view()
    evil = {"settings": {"min_dpi": 50}}
    info = world.repo._write_target("fleet/config.json", json.dumps(evil).encode())
    md = world.repo.targets_md("fleet")
    md.signed.targets["fleet/config.json"] = info
    md.signed.version += 1
    md.signatures.clear()
    md.sign(old_key)
    world.repo._write_versioned("fleet", md)
    world.repo._snapshot_and_timestamp()
    world.publish()
    _refused(world, before, world.update(), "bad signature", "fleet")


def test_a_province_cannot_sign_another_provinces_role(world: World) -> None:
    before = world.view()
    h30 = world.key_of("province-H30")
    # H30's key signs H29's role, and central's online snapshot key publishes it blindly
    evil = {"settings": {"min_dpi": 50}}
    info = world.repo._write_target("o/H29.01/config.json", json.dumps(evil).encode())
    md = world.repo.targets_md("province-H29")
    md.signed.targets["o/H29.01/config.json"] = info
    md.signed.version += 1
    md.sign(h30)
    world.repo._write_versioned("province-H29", md)
    world.repo._snapshot_and_timestamp()
    world.publish()
    _refused(world, before, world.update(), "bad signature", "province-H29")


def test_a_province_listing_another_provinces_offices_is_never_consulted(world: World) -> None:
    evil = {"settings": {"min_dpi": 50}}
    world.repo._publish_json("province-H30", "o/H29.01/config.json", evil)
    world.publish()
    report = world.update()
    assert report.status in ("up-to-date", "updated"), report
    assert world.view()["settings"]["min_dpi"] == 250
    assert not (world.state / "update" / "metadata" / "province-H30.json").exists()


def test_rollback_to_older_metadata_or_an_older_release(world: World) -> None:
    old = world.base / "old-mirror"
    shutil.copytree(world.served, old)
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    assert world.update().status == "updated"
    before = world.view()
    assert before["settings"]["min_dpi"] == 300
    _refused(world, before, world.update(old), "rollback or freeze", "timestamp")

    world.repo._publish_json(
        "targets",
        "fleet/release.json",
        {"version": "0.0.1", "target": "releases/commune-edge-0.0.1.tar"},
    )
    world.publish()
    _refused(world, before, world.update(), "rollback attempt", "0.0.1")


def test_freeze_with_a_replayed_timestamp(world: World) -> None:
    stale = (world.served / "metadata" / "timestamp.json").read_bytes()
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    assert world.update().status == "updated"
    before = world.view()
    (world.served / "metadata" / "timestamp.json").write_bytes(stale)
    _refused(world, before, world.update(), "rollback or freeze")

    # replaying the newest timestamp forever: the time floor passes its expiry
    world.publish()
    assert world.update().status == "up-to-date"
    expires = Metadata.from_bytes((world.served / "metadata" / "timestamp.json").read_bytes())
    store = Store.open(world.state)
    try:
        with store.transaction():
            store.clock.observe(int(expires.signed.expires.timestamp() * 1000) + 3_600_000)
    finally:
        store.close()
    before = world.view()
    _refused(world, before, world.update(wall_ms=lambda: 0), "expired", "time floor")


def test_mixed_snapshot(world: World) -> None:
    before = world.view()
    world.repo.set_config({"min_dpi": 300})
    world.repo.set_config({"min_dpi": 310})
    world.publish()
    newest = world.served_file("snapshot")
    version = int(newest.name.split(".")[0])
    older = world.served / "metadata" / f"{version - 1}.snapshot.json"
    newest.write_bytes(older.read_bytes())
    _refused(world, before, world.update(), "snapshot")


def test_expired_timestamp_is_refused_while_the_clock_is_set_back(world: World) -> None:
    real = datetime.now(UTC).replace(microsecond=0)
    past = AdminRepo(world.repo.path, now=lambda: real - timedelta(days=10))
    past.set_config({"min_dpi": 300})  # signed ten days ago, expired three days ago
    world.publish()
    expired = Metadata.from_bytes((world.served / "metadata" / "timestamp.json").read_bytes())
    assert expired.signed.expires < real
    set_back = int((real - timedelta(days=9)).timestamp() * 1000)
    assert set_back < expired.signed.expires.timestamp() * 1000  # naive ngclient would accept
    before = world.view()
    report = world.update(wall_ms=lambda: set_back)
    _refused(world, before, report, "expired", "time floor", "timestamp")


def test_a_fresh_box_with_its_clock_set_back_refuses_metadata_older_than_its_root(
    tmp_path: Path,
) -> None:
    """Before any update the time floor is the pinned root's signing time, not zero."""
    real = datetime.now(UTC).replace(microsecond=0)
    old = AdminRepo.create(tmp_path / "repo", now=lambda: real - timedelta(days=40))
    old.set_config({"min_dpi": 150})
    stale = old.export(tmp_path / "stale-mirror")  # captured then; expired 33 days ago
    repo = AdminRepo(tmp_path / "repo")
    repo.rotate("root")  # signed today: the root new boxes are provisioned with
    state = tmp_path / "fresh-box"
    provision(
        state,
        office="H29.01",
        clerk="lan",
        password=PASSWORD,
        trust_root=repo.metadata_dir / "2.root.json",
    )
    store = Store.open(state)
    try:
        assert store.clock.floor_ms >= int(real.timestamp() * 1000)
        before = store.settings().min_dpi
    finally:
        store.close()
    set_back = int((real - timedelta(days=38)).timestamp() * 1000)  # the mirror looks fresh
    report = update_once(state, Options(source=str(stale), wall_ms=lambda: set_back))
    assert report.status == "refused", report
    assert "expired" in report.reason and "time floor" in report.reason, report.reason
    store = Store.open(state)
    try:
        assert store.settings().min_dpi == before
    finally:
        store.close()


def test_a_box_whose_clock_says_1970_still_takes_a_valid_update(world: World) -> None:
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    report = world.update(wall_ms=lambda: 0)
    assert report.status == "updated", report
    assert world.view()["settings"]["min_dpi"] == 300
    store = Store.open(world.state)
    try:
        timestamp = Metadata.from_bytes((world.served / "metadata" / "timestamp.json").read_bytes())
        signed_at = datetime.fromisoformat(timestamp.signed.unrecognized_fields["x-edge-signed-at"])
        assert store.clock.floor_ms == int(signed_at.timestamp() * 1000)
    finally:
        store.close()


def test_refusal_is_one_line_and_exit_code_3_on_the_command_line(world: World) -> None:
    world.repo.set_config({"min_dpi": 300})
    world.publish()
    info = world.repo.targets_md("fleet").signed.targets["fleet/config.json"]
    target = world.served / "targets" / "fleet" / f"{info.hashes['sha256']}.config.json"
    target.write_bytes(b"x" * info.length)
    done = run_edge("update", "--state", str(world.state), "--once", "--from", str(world.served))
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: error: update refused: ")
    digest = hashlib.sha256(b"x" * info.length).hexdigest()
    assert digest[:8] in lines[0] or "tampered" in lines[0]
