"""Publishing to central over HTTP: central serves an update only when a box would take it.

Regional IT runs ``edge admin publish --central URL`` against a real central
(Litestar under uvicorn on 127.0.0.1). There is no upload password: central
verifies every offer from the root pinned with ``edge central trust-updates``.
Each attack below is refused with a one-line reason and leaves ``/updates``
byte for byte as it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

from edge.provision import provision
from edge.store import Store
from edge.update.cycle import Options, update_once
from edge.update.publish import offer_files
from edge.update.repository import AdminRepo
from tests.syncutil import CentralServer
from tests.update_support import PASSWORD, provisioned, run_edge

COMPACT = JSONSerializer(compact=True)


@pytest.fixture
def repo(tmp_path: Path) -> AdminRepo:
    repo = AdminRepo.create(tmp_path / "repo")
    repo.delegate("H29")
    repo.delegate("H30")
    repo.set_config({"min_dpi": 250})
    return repo


@pytest.fixture
def central(tmp_path: Path, repo: AdminRepo) -> Iterator[CentralServer]:
    with CentralServer(tmp_path / "central") as server:
        done = _trust(server.central.data, repo.metadata_dir / "1.root.json")
        assert done.returncode == 0, done.stderr
        yield server


def _trust(data: Path, root: Path) -> Any:
    return run_edge("central", "trust-updates", "--data", str(data), "--root", str(root))


def _served(central: CentralServer) -> dict[str, bytes]:
    """Everything /updates serves, by relative path."""
    root = central.central.data / "updates"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _publish(repo: AdminRepo, central: CentralServer) -> Any:
    return run_edge("admin", "publish", "--repo", str(repo.path), "--central", central.url)


def _offer(central: CentralServer, files: dict[str, bytes]) -> httpx.Response:
    body = {"metadata": {n: base64.b64encode(d).decode() for n, d in files.items()}}
    return httpx.post(f"{central.url}/v1/updates/offer", json=body, timeout=30)


def _refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "update_refused"
    assert "\n" not in problem["detail"]
    for word in words:
        assert word in problem["detail"], problem["detail"]


def _box(tmp_path: Path, repo: AdminRepo, office: str = "H29.01") -> Path:
    return provisioned(tmp_path, repo.metadata_dir / "1.root.json", office)


def _settings(state: Path) -> dict[str, Any]:
    store = Store.open(state)
    try:
        return store.settings().as_dict()
    finally:
        store.close()


def _min_dpi(state: Path) -> int:
    return _settings(state)["min_dpi"]


def test_regional_it_publishes_over_http_and_a_box_takes_it(
    tmp_path: Path, repo: AdminRepo, central: CentralServer
) -> None:
    repo.set_config({"job_idle_seconds": 60}, office="H29")

    done = _publish(repo, central)
    assert done.returncode == 0, done.stderr
    # the fleet's and the province's configuration went up, once each
    assert "2 target file(s)" in done.stdout, done.stdout
    served = _served(central)
    assert any(p.startswith("targets/o/H29/") for p in served)

    box = _box(tmp_path, repo)
    report = update_once(box, Options(source=f"{central.url}/updates"))
    assert report.status == "updated", report
    assert _min_dpi(box) == 250

    # a proxy in front of central may keep versioned files, never the timestamp
    stamp = httpx.get(f"{central.url}/updates/metadata/timestamp.json")
    assert stamp.headers["cache-control"] == "no-cache"
    snapshot = next(p for p in _served(central) if p.endswith(".snapshot.json"))
    versioned = httpx.get(f"{central.url}/updates/{snapshot}")
    assert versioned.status_code == 200
    assert "immutable" in versioned.headers["cache-control"]
    assert _settings(box)["job_idle_seconds"] == 60

    # nothing new: the second publish only refreshes the timestamp and uploads nothing
    done = _publish(repo, central)
    assert done.returncode == 0, done.stderr
    assert "0 target file(s), 0 B uploaded" in done.stdout
    assert {p for p in _served(central) if p.startswith("targets/")} == {
        p for p in served if p.startswith("targets/")
    }

    repo.set_config({"min_dpi": 300})
    assert _publish(repo, central).returncode == 0
    assert update_once(box, Options(source=f"{central.url}/updates")).status == ("updated")
    assert _min_dpi(box) == 300


def test_central_without_a_trusted_root_refuses_and_says_what_to_run(
    tmp_path: Path, repo: AdminRepo
) -> None:
    with CentralServer(tmp_path / "bare") as bare:
        response = _offer(bare, offer_files(repo.metadata_dir))
        assert response.status_code == 409
        assert response.json()["code"] == "updates_not_set_up"
        done = _publish(repo, bare)
        assert done.returncode != 0
        assert "edge central trust-updates" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert _served(bare) == {}


def test_metadata_signed_by_keys_central_does_not_trust_is_refused(
    tmp_path: Path, repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    before = _served(central)
    stranger = AdminRepo.create(tmp_path / "stranger")
    stranger.set_config({"min_dpi": 72})
    for _ in range(5):  # versions above the real ones
        stranger.refresh()
    _refused(_offer(central, offer_files(stranger.metadata_dir)), "bad signature")
    assert _served(central) == before


def test_tampered_metadata_is_refused(repo: AdminRepo, central: CentralServer) -> None:
    assert _publish(repo, central).returncode == 0
    before = _served(central)
    repo.set_config({"min_dpi": 300})
    files = offer_files(repo.metadata_dir)
    name = max((n for n in files if n.endswith(".fleet.json")), key=lambda n: int(n[:-11]))
    md = Metadata.from_bytes(files[name])
    md.signed.targets["fleet/config.json"].length += 1
    files[name] = md.to_bytes(COMPACT)
    _refused(_offer(central, files))
    assert _served(central) == before


def test_rollback_and_a_rewritten_timestamp_are_refused(
    repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    old = offer_files(repo.metadata_dir)
    repo.set_config({"min_dpi": 300})
    assert _publish(repo, central).returncode == 0
    before = _served(central)
    _refused(_offer(central, old), "not newer")

    # the same timestamp version with different (validly signed) content
    current = offer_files(repo.metadata_dir)
    md = Metadata.from_bytes(current["timestamp.json"])
    md.signed.unrecognized_fields["x-note"] = "again"
    md.signatures.clear()
    keyid = repo.root_md().signed.roles["timestamp"].keyids[0]
    md.sign(repo._signer(repo.root_md().signed.keys[keyid]))
    current["timestamp.json"] = md.to_bytes(COMPACT)
    _refused(_offer(central, current), "not newer")
    assert _served(central) == before


def test_a_province_cannot_publish_for_another_provinces_offices(
    repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    before = _served(central)
    repo._publish_json("province-H30", "o/H29.01/config.json", {"settings": {"min_dpi": 50}})
    repo.refresh()
    response = _offer(central, offer_files(repo.metadata_dir))
    _refused(response, "province-H30", "o/H29.01/config.json", "delegation")
    assert _served(central) == before


def test_only_target_files_the_offer_names_are_accepted_and_only_whole(
    repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    repo.set_config({"min_dpi": 300})
    files = offer_files(repo.metadata_dir)
    answer = _offer(central, files).json()
    assert answer["published"] is False
    [missing] = answer["missing"]
    assert missing["path"].startswith("fleet/") and missing["path"].endswith(".config.json")
    before = _served(central)

    put = f"{central.url}/v1/updates/targets/"
    evil = b'{"settings": {"min_dpi": 50}}'
    stranger = f"fleet/{hashlib.sha256(evil).hexdigest()}.config.json"
    response = httpx.put(put + stranger, content=evil)
    _refused(response, "not waiting")
    source = repo.targets_dir / missing["path"]
    good = source.read_bytes()
    _refused(httpx.put(put + missing["path"], content=good[:-1] + b" "), "does not match")
    _refused(httpx.put(put + missing["path"], content=good + b"\n"), "longer")
    assert _served(central) == before

    received = httpx.put(put + missing["path"], content=good).json()
    assert received == {"path": missing["path"], "offset": len(good), "complete": True}
    answer = _offer(central, files).json()
    assert answer["published"] is True


def test_files_the_verification_did_not_load_are_not_published(
    repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    repo.refresh()
    files = offer_files(repo.metadata_dir)
    files["77.targets.json"] = b'{"signed": "junk"}'
    assert _offer(central, files).json()["published"] is True
    assert "metadata/77.targets.json" not in _served(central)
    assert "metadata/timestamp.json" in _served(central)


def test_pinning_a_root_the_served_repository_does_not_chain_to_is_refused(
    tmp_path: Path, repo: AdminRepo, central: CentralServer
) -> None:
    assert _publish(repo, central).returncode == 0
    other = AdminRepo.create(tmp_path / "other")
    data = central.central.data
    fresh = tmp_path / "fresh-central"
    fresh.mkdir()
    (fresh / "updates").symlink_to(data / "updates")
    done = _trust(fresh, other.metadata_dir / "1.root.json")
    assert done.returncode != 0
    assert "does not verify with this root" in done.stderr
    done = _trust(data, other.metadata_dir / "1.root.json")
    assert done.returncode != 0
    assert "already trusts update root" in done.stderr
    assert json.loads((data / "updates-gate" / "root.json").read_bytes())["signed"]["version"] >= 1


def test_a_box_enrolled_without_a_root_pins_centrals_and_then_updates_from_it(
    tmp_path: Path, repo: AdminRepo, central: CentralServer
) -> None:
    from edge.sync.client import enroll

    assert _publish(repo, central).returncode == 0
    state = tmp_path / "no-root"
    provision(state, office="H29.02", clerk="lan", password=PASSWORD)
    before = update_once(state, Options(source=f"{central.url}/updates"))
    assert before.status == "failed" and "no trusted update root" in before.reason

    answer = enroll(state, central.url, central.central.issue_token("H29.02"))
    assert answer["update_root"] == "pinned version 1 from central"
    report = update_once(state, Options(source=f"{central.url}/updates"))
    assert report.status == "updated", report
    assert _min_dpi(state) == 250

    # a root pinned at provisioning is never replaced by what a central says
    stranger = AdminRepo.create(tmp_path / "stranger")
    own = tmp_path / "own-root"
    provision(
        own,
        office="H29.03",
        clerk="lan",
        password=PASSWORD,
        trust_root=stranger.metadata_dir / "1.root.json",
    )
    answer = enroll(own, central.url, central.central.issue_token("H29.03"))
    assert answer["update_root"] == "kept (pinned at provisioning)"
    pinned = (own / "update" / "root.json").read_bytes()
    assert pinned == (stranger.metadata_dir / "1.root.json").read_bytes()


def test_a_cut_upload_resumes_where_central_stopped(
    repo: AdminRepo, central: CentralServer
) -> None:
    """Regional IT's link drops mid-file: the next publish sends only the rest."""
    assert _publish(repo, central).returncode == 0
    catalogue = [{"code": f"1.{n:06d}", "name": f"Thủ tục số {n}"} for n in range(8000)]
    repo.set_reference("procedures", catalogue)
    files = offer_files(repo.metadata_dir)
    [missing] = _offer(central, files).json()["missing"]
    data = (repo.targets_dir / missing["path"]).read_bytes()
    assert len(data) > 200_000
    url = f"{central.url}/v1/updates/targets/{missing['path']}"
    half = len(data) // 2

    first = httpx.patch(url, content=data[:half], headers={"Upload-Offset": "0"})
    assert first.json() == {"path": missing["path"], "offset": half, "complete": False}
    assert httpx.head(url).headers["Upload-Offset"] == str(half)
    wrong = httpx.patch(url, content=data[10:20], headers={"Upload-Offset": "10"})
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "offset_mismatch" and wrong.json()["offset"] == half
    assert not any(p.endswith(".reference.json") for p in _served(central) if "fleet/" in p)
    partial = central.central.data / "updates-gate" / "partial" / missing["sha256"]
    assert partial.stat().st_size == half

    done = _publish(repo, central)
    assert done.returncode == 0, done.stderr
    assert f"1 target file(s), {len(data) - half:,} B uploaded" in done.stdout, done.stdout
    served = _served(central)
    assert served[f"targets/{missing['path']}"] == data
    assert not any((central.central.data / "updates-gate" / "partial").iterdir())


def test_a_synced_box_learns_that_central_serves_newer_update_metadata(
    tmp_path: Path, repo: AdminRepo, central: CentralServer
) -> None:
    from edge.sync.client import enroll, sync_once

    state = tmp_path / "enrolled"
    provision(state, office="H29.04", clerk="lan", password=PASSWORD)
    enroll(state, central.url, central.central.issue_token("H29.04"))
    assert _publish(repo, central).returncode == 0
    sync_once(state)
    store = Store.open(state)
    try:
        assert store.meta("update.hint") == str(repo.timestamp_md().signed.version)
    finally:
        store.close()


def test_an_offer_is_resumed_by_name_and_verified_again(
    repo: AdminRepo, central: CentralServer
) -> None:
    """The metadata travels once: after the uploads, the offer is named by its timestamp."""
    assert _publish(repo, central).returncode == 0
    repo.set_config({"min_dpi": 300})
    files = offer_files(repo.metadata_dir)
    name = hashlib.sha256(files["timestamp.json"]).hexdigest()
    url = f"{central.url}/v1/updates/offer"
    [missing] = _offer(central, files).json()["missing"]

    stranger = httpx.post(url, json={"resume": "0" * 64})
    assert stranger.status_code == 404 and stranger.json()["code"] == "not_found"
    both = httpx.post(url, json={"resume": name, "metadata": {"timestamp.json": "e30="}})
    assert both.status_code == 400
    early = httpx.post(url, json={"resume": name}).json()
    assert early["published"] is False and early["missing"] == [missing]

    body = (repo.targets_dir / missing["path"]).read_bytes()
    httpx.put(f"{central.url}/v1/updates/targets/{missing['path']}", content=body)
    done = httpx.post(url, json={"resume": name}).json()
    assert done["published"] is True
    assert _served(central)["metadata/timestamp.json"] == files["timestamp.json"]
    again = httpx.post(url, json={"resume": name})
    assert again.status_code == 404  # published: nothing pending any more


def test_a_province_key_kept_by_its_team_stops_no_other_province(tmp_path: Path) -> None:
    """Issue 16, item 8: H29's key is with H29's team, as the docs intend. Near and past its
    role's expiry, `usb` and `publish` for everyone else still work (H29 gets a warning),
    central serves the rest of the fleet, and only H29's boxes refuse."""
    founded = datetime.now(UTC).replace(microsecond=0) - timedelta(days=125)
    repo = AdminRepo.create(tmp_path / "repo", now=lambda: founded)
    repo.delegate("H29")
    repo.delegate("H30")
    team = tmp_path / "h29-team"
    team.mkdir()
    for keyid in repo.targets_md().signed.delegations.roles["province-H29"].keyids:
        (repo.keys_dir / f"{keyid}.pem").rename(team / f"{keyid}.pem")
    repo = AdminRepo(repo.path)
    repo.set_config({"min_dpi": 250})
    trust = repo.metadata_dir / "1.root.json"

    stick = tmp_path / "stick"
    stick.mkdir()
    done = run_edge("admin", "usb", "--repo", str(repo.path), "--out", str(stick))
    assert done.returncode == 0, done.stderr
    assert "warning: province-H29 v1 expired on" in done.stderr
    assert "only that province's boxes are affected" in done.stderr
    status = run_edge("admin", "status", "--repo", str(repo.path))
    assert status.returncode == 0, status.stderr
    assert any("province-H29" in line for line in json.loads(status.stdout)["warnings"])
    h29 = provisioned(tmp_path / "h29", trust, "H29.01")
    report = update_once(h29, Options(source=str(stick)))
    assert report.status == "refused" and "province-H29" in report.reason, report
    assert "expired" in report.reason

    with CentralServer(tmp_path / "central") as server:
        assert _trust(server.central.data, trust).returncode == 0
        done = run_edge("admin", "publish", "--repo", str(repo.path), "--central", server.url)
        assert done.returncode == 0, done.stderr
        assert "warning: province-H29" in done.stderr
        source = f"{server.url}/updates"
        h30 = provisioned(tmp_path / "h30", trust, "H30.01")
        assert update_once(h30, Options(source=source)).status == "updated"
        # central never served H29's expired role (a box would refuse it): H29 waits
        report = update_once(h29, Options(source=source))
        assert report.status != "updated" and "o/H29/" in report.reason, report

    # H29's team brings its key: the role is re-signed and H29's boxes take updates again
    done = run_edge(
        "admin", "usb", "--repo", str(repo.path), "--out", str(stick), "--key-dir", str(team)
    )
    assert done.returncode == 0, done.stderr
    assert "province-H29" not in done.stderr
    assert update_once(h29, Options(source=str(stick))).status == "updated"
