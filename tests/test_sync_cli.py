"""The commands as regional IT and the daemon use them, each a real process.

``edge central serve`` runs as its own process; the box is driven with
``edge init``, ``edge capture``, ``edge enroll``, ``edge sync`` and ``edge run``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bagit
import pytest

from edge import samples
from edge.cli import main
from edge.store import Store
from edge.sync import contract as c
from edge.sync.central.receiver import Central
from edge.vault import new_signing_keypair, sign_with
from tests.syncutil import PASSWORD, CentralServer, ServeProcess, box_dossiers

EDGE = [sys.executable, "-m", "edge.cli"]


def edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EDGE, *args], capture_output=True, text=True, timeout=180, check=False, env=env
    )


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = edge(*args, env=env)
    assert result.returncode == 0, f"edge {' '.join(args)}: {result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: error:"), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    """The same ``main`` in this process: for the quick refusals, to spare process start-ups."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_regional_it_sets_up_a_box_for_central_and_it_syncs(
    tmp_path: Path, edge_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "central"
    with ServeProcess(data) as server:
        key_file = tmp_path / "central.pub"
        key_file.write_text(ok("central", "keys", "--data", str(data)))
        state, inbox = tmp_path / "state", tmp_path / "inbox"
        ok(
            "init",
            "--state",
            str(state),
            "--office",
            "H29.01",
            "--clerk",
            "lan",
            "--central-key",
            str(key_file),
            env=edge_env,
        )
        codes = samples.sample_codes(2, seed=51)
        samples.write_job(inbox, [samples.DossierSpec(c, 1) for c in codes], "jpeg", seed=51)
        ok("capture", "--state", str(state), "--inbox", str(inbox), "--once", "--settle", "0")

        error = one_line_error(in_process(capsys, "sync", "--state", str(state), "--once"))
        assert "not enrolled" in error
        token = ok("central", "token", "--data", str(data), "--office", "H29.01").strip()
        ok("enroll", "--state", str(state), "--central", server.url, "--token", token)
        error = one_line_error(
            in_process(
                capsys,
                "enroll",
                "--state",
                str(tmp_path / "nowhere"),
                "--central",
                server.url,
                "--token",
                token,
            )
        )
        assert "edge init" in error

        # provisioned with central's key: every data key is readable at central already
        report = json.loads(ok("sync", "--state", str(state), "--once", "--json"))
        assert report["done"] and report["events"] > 0
        assert {d["sync"] for d in box_dossiers(state)} == {"acknowledged"}
        held = json.loads(ok("central", "dossiers", "--data", str(data), "--json"))
        assert sorted(d["code"] for d in held) == sorted(codes)
        assert all(d["pages"] == 2 and d["readable"] for d in held)
        assert {"device", "code", "pages", "events", "received_at"} <= set(held[0])

        ok(
            "central",
            "notify",
            "--data",
            str(data),
            "--code",
            codes[0],
            "--status",
            "9",
            "--note",
            "Đã có kết quả",
        )
        status = json.loads(ok("central", "status", "--data", str(data), "--json"))
        assert status[0]["pending_downlink"] == 1 and status[0]["office"] == "H29.01"
        ok("sync", "--state", str(state), "--once")
        rows = {d["code"]: d for d in json.loads(ok("dossiers", "--state", str(state), "--json"))}
        assert rows[codes[0]]["central_status"] == 9 and rows[codes[1]]["central_status"] is None
        status = json.loads(ok("central", "status", "--data", str(data), "--json"))
        assert status[0]["pending_downlink"] == 0 and status[0]["last_seq"] > 0

        bag = ok(
            "central",
            "export",
            "--data",
            str(data),
            "--dossier",
            codes[1],
            "--key",
            str(data / "keys" / "recipient.key"),
            "--out",
            str(tmp_path / "out"),
        )
        bagit.Bag(bag.strip()).validate()
        error = one_line_error(
            in_process(
                capsys,
                "central",
                "export",
                "--data",
                str(data),
                "--dossier",
                "KHONG-CO",
                "--key",
                str(data / "keys" / "recipient.key"),
                "--out",
                str(tmp_path / "out"),
            )
        )
        assert "no dossier" in error
        error = one_line_error(
            in_process(
                capsys,
                "central",
                "notify",
                "--data",
                str(data),
                "--code",
                "KHONG-CO",
                "--status",
                "9",
            )
        )
        assert "no dossier" in error

        other = tmp_path / "other"
        ok("init", "--state", str(other), "--office", "H29.01", "--clerk", "lan", env=edge_env)
        error = one_line_error(
            in_process(
                capsys, "enroll", "--state", str(other), "--central", server.url, "--token", token
            )
        )
        assert "token_used" in error


def test_keys_before_enrollment_need_a_clerk_for_sync_to_finish(
    box: Path, central: CentralServer, edge_env: dict[str, str]
) -> None:
    token = central.central.issue_token("H29.01")
    result = edge("enroll", "--state", str(box), "--central", central.url, "--token", token)
    assert result.returncode == 0 and "data key(s) were made before enrollment" in result.stderr
    error = one_line_error(edge("sync", "--state", str(box), "--once"))
    assert "--clerk" in error
    ok("sync", "--state", str(box), "--once", "--clerk", "lan", env=edge_env)
    assert all(d["readable"] for d in central.central.list_dossiers())


@pytest.mark.parametrize("central_db", ["sqlite"], indirect=True)
def test_edge_run_syncs_in_the_background_and_follows_central(
    tmp_path: Path, central: CentralServer, box: Path
) -> None:
    client_env = dict(os.environ, EDGE_PASSWORD=PASSWORD)
    token = central.central.issue_token("H29.01")
    ok(
        "enroll",
        "--state",
        str(box),
        "--central",
        central.url,
        "--token",
        token,
        "--clerk",
        "lan",
        env=client_env,
    )
    store = Store.open(box)
    try:
        with store.transaction():
            store.put_settings(
                store.settings().with_changes(sync_interval_seconds=0.3, sync_poll_seconds=0.5)
            )
    finally:
        store.close()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = subprocess.Popen(
        [
            *EDGE,
            "run",
            "--state",
            str(box),
            "--inbox",
            str(inbox),
            "--settle",
            "0.3",
            "--idle",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the template's dossiers go up without anyone running 'edge sync'
        wait_for(lambda: len(central.central.list_dossiers()) == len(box_dossiers(box)))
        # central pushes a dossier-code pattern the box did not know; no restart follows
        custom = r"HS-(?P<date>[0-9]{8})-A[0-9]"
        central.central.configure({"code_patterns": [*store_patterns(box), custom]})
        wait_for(lambda: custom in store_patterns(box))
        code = "HS-20260105-A1"
        staging = tmp_path / "staging"
        job = samples.write_job(staging, [samples.DossierSpec(code, 1)], "jpeg", seed=61, name="hs")
        for path in job.paths:
            os.replace(path, inbox / path.name)
        # the cover may travel a round before its page is captured; both arrive in the end
        wait_for(
            lambda: any(
                d["code"] == code and d["pages"] == 2 for d in central.central.list_dossiers()
            )
        )
        central.central.notify(code, 9)
        wait_for(
            lambda: any(d["code"] == code and d["central_status"] == 9 for d in box_dossiers(box))
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err


def store_patterns(state: Path) -> list[str]:
    store = Store.open(state)
    try:
        return list(store.settings().code_patterns)
    finally:
        store.close()


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the daemon")


def _enrolled_device(admin: Central, office: str) -> str:
    private, public = new_signing_keypair()
    token = admin.issue_token(office)
    key = c.b64e(public)
    proof = c.b64e(sign_with(private, c.enroll_message(token, key, office)))
    request = c.EnrollRequest(
        token=token, device_public=key, office=office, software="test", proof=proof
    )
    return admin.enroll(request).device_id


def _settings_fed(admin: Central, device_id: str, office: str) -> dict[str, object]:
    """The settings a box of ``office`` ends with after applying its feed in order, after
    checking each item is one the box accepts (addressed to its own office)."""
    with admin.engine.begin() as conn:
        answer = admin.feed.downlink_items(conn, device_id, office, 0, 100, "0" * 32)
    merged: dict[str, object] = {}
    for item in answer.items:
        doc = c.decode_document(item.document, c.DownlinkDoc)
        assert doc.device is None and doc.office in (None, office)
        merged.update(doc.body["settings"])
    return merged


def test_an_office_scope_covers_the_offices_under_it_and_the_more_specific_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--office H29`` reaches H29.01 and H29.02 (issue 16, item 11), as update scopes do."""
    data = tmp_path / "central"
    admin = Central(data)
    try:
        boxes = {
            "a": ("H29.01", _enrolled_device(admin, "H29.01")),
            "b": ("H29.02", _enrolled_device(admin, "H29.02")),
            "c": ("H29.02", _enrolled_device(admin, "H29.02")),
            "d": ("H30.01", _enrolled_device(admin, "H30.01")),
        }
    finally:
        admin.close()

    def config(*args: str) -> subprocess.CompletedProcess:
        return in_process(capsys, "central", "config", "--data", str(data), *args)

    done = config("--office", "H29.01", "--set", "sync_poll_seconds=120")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(
        "reaches 1 enrolled box(es) in 1 office(s) (H29.01 and the offices under it)"
    )
    done = config(
        "--office", "h29", "--set", "sync_poll_seconds=600", "--set", "job_idle_seconds=30"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "office scope H29: reaches 3 enrolled box(es) in 2 office(s)" in lines[0]
    assert "kept by a more specific scope: H29.01 (sync_poll_seconds)" in lines[0]
    refused = config("--office", "H92", "--set", "sync_poll_seconds=60")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "no enrolled box is in office scope H92" in one_line_error(refused)
    done = config("--set", "sync_poll_seconds=60")
    assert "for every box: reaches 4 enrolled box(es)" in done.stdout

    admin = Central(data)
    try:
        fed = {
            name: _settings_fed(admin, device, office) for name, (office, device) in boxes.items()
        }
        # the province's later push does not undo the office's own value, nor does the
        # push to every box undo either
        assert fed["a"] == {"sync_poll_seconds": 120, "job_idle_seconds": 30}
        assert fed["b"] == fed["c"] == {"sync_poll_seconds": 600, "job_idle_seconds": 30}
        assert fed["d"] == {"sync_poll_seconds": 60}
        # a box enrolled later starts where the boxes of its office are
        for office, expected in [("H29.01", fed["a"]), ("H29.07", fed["b"]), ("H31", fed["d"])]:
            private, public = new_signing_keypair()
            token = admin.issue_token(office)
            key = c.b64e(public)
            proof = c.b64e(sign_with(private, c.enroll_message(token, key, office)))
            answer = admin.enroll(
                c.EnrollRequest(
                    token=token, device_public=key, office=office, software="t", proof=proof
                )
            )
            assert answer.settings == expected, office
    finally:
        admin.close()
