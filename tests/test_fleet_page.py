"""Central's fleet page in a real headless Chromium, over a simulated fleet of 200 boxes.

Three boxes are real: provisioned state folders that enroll and run full sync rounds
(uplink, downlink, then the signed health report), so the box→central health path is
proven end to end. The other 197 are simulated by their device keys alone, but speak
the same protocol through the client's own ``Link`` (signed requests, stale-time
re-signing), so nothing is written into central's tables behind its back. Silence
is made by running central's clock three hours behind while some boxes report, which
is exactly what a box that stopped calling three hours ago looks like.

Chromium is Debian's (``make system-deps`` installs it), driven by Playwright with
``executable_path``: no browser is ever downloaded.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from edge.clock import iso
from edge.desk import DeskLedger
from edge.domain import CodePatterns
from edge.observe.health import REVIEW_OVERDUE_SECONDS
from edge.provision import provision
from edge.records import Ledger
from edge.store import Store
from edge.sync import client
from edge.sync import contract as c
from edge.sync.central import fleet as fleet_view
from edge.sync.central.fleet import (
    SILENT_AFTER_MINUTES,
    page_context,
    template_environment,
)
from edge.sync.central.receiver import Central
from edge.update.gate import SERVED
from edge.update.repository import AdminRepo
from edge.vault import Keyring, new_signing_keypair, sign_with
from tests.syncutil import FAST, PASSWORD, CentralServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROVINCES = {"H29": "Hà Nội", "H40": "Nghệ An", "H46": "Huế", "T12": "Tỉnh thử", "H79": "TP HCM"}
FLEET = 200
SILENT = 7
HOUR_MS = 3_600_000
MiB = 1 << 20


def _need(what: str) -> None:
    message = f"{what} is missing (make system-deps / make setup install it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _need(str(CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright (the dev dependency group)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class SimBox:
    """A box reduced to its device key and office, speaking through the client's Link."""

    office: str
    private: bytes
    public: bytes

    @classmethod
    def new(cls, office: str) -> SimBox:
        private, public = new_signing_keypair()
        return cls(office, private, public)

    @property
    def device(self) -> str:
        return c.device_id_for(self.public)

    def sign(self, message: bytes) -> bytes:
        return sign_with(self.private, message)

    def link(self, url: str) -> client.Link:
        return client.Link(url, self, self.device, policy=FAST)  # type: ignore[arg-type]

    def enroll(self, url: str, token: str) -> None:
        device_public = c.b64e(self.public)
        request = c.EnrollRequest(
            token=token,
            device_public=device_public,
            office=self.office,
            software="commune-edge 0.1.0",
            proof=c.b64e(self.sign(c.enroll_message(token, device_public, self.office))),
        )
        link = self.link(url)
        try:
            link.call(
                "POST",
                f"{c.API}/enroll",
                body=c.encode(request),
                headers={"Content-Type": "application/json"},
                signed=False,
            )
        finally:
            link.close()

    def report(self, url: str, summary: dict) -> httpx.Response:
        body = c.encode(c.HealthReport(v=c.PROTOCOL, summary=client.wire_summary(summary)))
        link = self.link(url)
        try:
            return link.call(
                "POST",
                f"{c.API}/device/health",
                body=body,
                headers={"Content-Type": "application/json"},
            )
        finally:
            link.close()


def summary_for(box: SimBox, rng: random.Random, *, low_disk: bool = False) -> dict:
    """What ``health_summary`` says on a box in the field, with plausible numbers."""
    free = rng.randint(120, 450) * MiB if low_disk else rng.randint(2_000, 28_000) * MiB
    alerts = {"disk": f"{free // MiB} MB free"} if low_disk else {}
    dossiers = rng.randint(0, 40)
    return {
        "version": rng.choice(["0.1.0", "0.1.0", "0.1.0", "0.0.9"]),
        "office": box.office,
        "at": "2026-11-28T01:00:00.000Z",
        "last_capture": "2026-11-28T00:55:00.000Z",
        "pages": rng.randint(100, 5000),
        "events": rng.randint(100, 9000),
        "dossiers": {"complete": rng.randint(10, 300)},
        "quarantine": {"held": rng.choice([0, 0, 0, 1, 2])},
        "outbox": {"dossiers": dossiers, "events": dossiers * 4, "bytes": dossiers * 3 * MiB},
        "sync": {"last_ok": "2026-11-28T00:59:00.000Z", "errors": {}, "last_error": None},
        "disk": {"free_bytes": free, "total_bytes": 29_000 * MiB, "min_free_bytes": 500 * MiB},
        "clock": {"offset_seconds": 1.0, "central_offset_seconds": 0.4},
        "alerts": alerts,
    }


def real_box(folder: Path, office: str) -> Path:
    state = folder / "state"
    provision(state, office=office, clerk="lan", password=PASSWORD)
    return state


def open_review(state: Path, *, waited_ms: int = 0) -> str:
    """A dossier whose cover capture could not confirm, as it leaves one for the clerk."""
    store = Store.open(state)
    try:
        ledger = Ledger(store, Keyring.load(state).sealer())
        with store.transaction():
            dossier_id = ledger.create_dossier(
                None, review=[{"text": "X", "why": "no_pattern"}], follows=None
            )
            if waited_ms:
                store.conn.execute(
                    "UPDATE dossiers SET received_at=? WHERE id=?",
                    (iso(int(time.time() * 1000) - waited_ms), dossier_id),
                )
    finally:
        store.close()
    return dossier_id


OVERDUE_MS = (REVIEW_OVERDUE_SECONDS + 3600) * 1000


@dataclass
class Fleet:
    server: CentralServer
    shift: list[int]
    boxes: list[SimBox]
    real: dict[str, Path]
    silent: set[str]
    revoked: str
    hostile: str


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, box_template: Path) -> Iterator[Fleet]:
    """Built once for the module: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("fleet")
    box = tmp_path / "b1" / "state"
    shutil.copytree(box_template, box)
    shift = [0]

    def clock() -> int:
        return int(time.time() * 1000) + shift[0]

    data = tmp_path / "central"
    data.mkdir()
    (data / "provinces.json").write_text(json.dumps(PROVINCES, ensure_ascii=False), "utf-8")
    central = Central(data, now=clock)
    with CentralServer(data, central=central) as server:
        url = server.url
        rng = random.Random(6)
        codes = sorted(PROVINCES)
        real = {"H29.01": box, "H40.03": real_box(tmp_path / "b2", "H40.03")}
        real["T12.07"] = real_box(tmp_path / "b3", "T12.07")
        open_review(real["H40.03"])  # the clerk has not looked yet: shown, not flagged
        open_review(real["T12.07"])
        open_review(real["T12.07"], waited_ms=OVERDUE_MS)  # nobody checks: flagged
        sims = [
            SimBox.new(f"{codes[i % len(codes)]}.{10 + i // len(codes):02d}")
            for i in range(FLEET - len(real))
        ]
        silent_boxes = sims[5 : 5 + SILENT * 11 : 11]
        low_disk = {b.device for b in sims[3::37]}

        def join(sim: SimBox) -> None:
            sim.enroll(url, central.issue_token(sim.office))
            sim.report(
                url, summary_for(sim, random.Random(sim.device), low_disk=sim.device in low_disk)
            )

        def together(work: Callable[[SimBox], None], group: list[SimBox]) -> None:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(work, group))

        shift[0] = -3 * HOUR_MS  # these boxes last called three hours ago
        together(join, silent_boxes)
        shift[0] = 0
        together(join, [b for b in sims if b not in silent_boxes])

        devices = {}
        for office, state in real.items():
            devices[office] = client.enroll(state, url, central.issue_token(office))["device"]
            report = client.sync_once(state, policy=FAST)
            assert report.error is None and report.health_sent, report.as_json()

        hostile = sims[1]
        summary = summary_for(hostile, rng)
        summary["alerts"] = {"note": "<script>document.title='owned'</script><b>x</b>"}
        hostile.report(url, summary)
        revoked = sims[2].device
        central.revoke(revoked)
        yield Fleet(
            server=server,
            shift=shift,
            boxes=sims,
            real={devices[o]: s for o, s in real.items()},
            silent={b.device for b in silent_boxes},
            revoked=revoked,
            hostile=hostile.device,
        )


def test_fleet_page_lists_filters_and_flags_silent_boxes(browser: Browser, fleet: Fleet) -> None:
    url = fleet.server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{url}/fleet")
        rows = page.locator("tbody tr.box")
        assert rows.count() == FLEET
        assert page.locator("#total").inner_text() == str(FLEET)
        assert page.locator("#silent-count").inner_text() == str(SILENT)

        # Silent boxes come first, each flagged by class, colour and the IM LẶNG marker.
        classes = rows.evaluate_all("rows => rows.map(r => r.className)")
        flags = ["silent" in name.split() for name in classes]
        assert flags == [True] * SILENT + [False] * (FLEET - SILENT)
        for device in fleet.silent:
            row = page.locator(f'tr[data-device="{device}"]')
            assert "silent" in (row.get_attribute("class") or "").split()
            assert "IM LẶNG" in row.locator("td.contact").inner_text()
            colour = row.evaluate("r => getComputedStyle(r).backgroundColor")
            assert colour == "rgb(253, 236, 234)"
        quiet_row = page.locator("tbody tr.box:not(.silent)").first
        assert "IM LẶNG" not in quiet_row.inner_text()
        assert page.locator("tr.silent").first.evaluate(
            "r => getComputedStyle(r).backgroundColor"
        ) != quiet_row.evaluate("r => getComputedStyle(r).backgroundColor")

        # The real boxes' own health arrived over the signed path and is shown.
        for device in fleet.real:
            row = page.locator(f'tr[data-device="{device}"]')
            assert row.count() == 1
            assert "silent" not in (row.get_attribute("class") or "")
            assert "0.1.0" in row.inner_text() and "chưa có báo cáo" not in row.inner_text()
        template_box = page.locator('tr[data-office="H29.01"]')
        assert "1 tệp cách ly" in template_box.inner_text()  # its quarantined damaged scan
        assert "chờ kiểm tra bìa" not in template_box.inner_text()

        # Covers waiting for the clerk: counted on every box, flagged once a day old.
        waiting = page.locator('tr[data-office="H40.03"]')
        assert "1 hồ sơ chờ kiểm tra bìa" in waiting.locator("td.alerts").inner_text()
        assert "alerting" not in (waiting.get_attribute("class") or "").split()
        overdue = page.locator('tr[data-office="T12.07"]')
        alerts = overdue.locator("td.alerts").inner_text()
        assert "2 hồ sơ chờ kiểm tra bìa (lâu nhất quá 1 ngày)" in alerts
        assert "review:" not in alerts  # the page's own words, not the box's English
        assert "alerting" in (overdue.get_attribute("class") or "").split()
        assert overdue.evaluate("r => getComputedStyle(r).boxShadow") == (
            "rgb(138, 83, 0) 4px 0px 0px 0px inset"
        )
        assert (
            overdue.locator("ul.alerts li").last.evaluate("li => getComputedStyle(li).color")
            == "rgb(138, 83, 0)"
        )

        # Box-supplied text is shown, never run.
        hostile = page.locator(f'tr[data-device="{fleet.hostile}"] td.alerts')
        assert "<script>document.title='owned'</script><b>x</b>" in hostile.inner_text()
        assert page.locator("script").count() == 0 and page.title() != "owned"
        assert "ĐÃ THU HỒI" in page.locator(f'tr[data-device="{fleet.revoked}"]').inner_text()

        # Filter by province with the form, as a person would.
        expected = sum(1 for d in fleet_json(url)["boxes"] if d["province"] == "H40")
        page.select_option("#province", "H40")
        with page.expect_navigation():
            page.click("form button[type=submit]")
        assert "province=H40" in page.url
        provinces = rows.evaluate_all("rows => rows.map(r => r.dataset.province)")
        assert len(provinces) == expected > 30 and set(provinces) == {"H40"}
        assert page.locator("#total").inner_text() == str(expected)
        assert page.locator("#province").input_value() == "H40"

        # English on request; the filter survives the switch.
        with page.expect_navigation():
            page.click("text=English")
        assert "lang=en" in page.url and "province=H40" in page.url
        assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.province)")) == {"H40"}
        silent_in_h40 = [d for d in fleet.silent if d in fleet_devices(url, "H40")]
        if silent_in_h40:
            assert "SILENT" in page.locator(f'tr[data-device="{silent_in_h40[0]}"]').inner_text()

        # A phone: rows become cards, nothing scrolls sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{url}/fleet")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        first = page.locator("tbody tr.box").first
        assert first.evaluate("r => getComputedStyle(r).display") == "block"
        label = first.locator("td.contact").evaluate(
            "td => getComputedStyle(td, '::before').content"
        )
        assert "Liên lạc cuối" in label
    finally:
        page.close()


def fleet_json(url: str, **params: str) -> dict:
    response = httpx.get(f"{url}/fleet.json", params=params, timeout=30)
    assert response.status_code == 200
    return response.json()


def fleet_devices(url: str, province: str) -> set[str]:
    return {b["device"] for b in fleet_json(url, province=province)["boxes"]}


def test_fleet_json_matches_the_page_and_health_needs_a_signature(fleet: Fleet) -> None:
    url = fleet.server.url
    everything = fleet_json(url)
    assert everything["total"] == FLEET and everything["silent"] == SILENT
    assert everything["silent_after_minutes"] == SILENT_AFTER_MINUTES
    assert [b["silent"] for b in everything["boxes"][:SILENT]] == [True] * SILENT
    assert {b["device"] for b in everything["boxes"] if b["silent"]} == fleet.silent
    by_province = {p["code"]: p for p in everything["provinces"]}
    assert set(by_province) == set(PROVINCES)
    assert by_province["H40"]["name"] == "Nghệ An"
    assert sum(p["silent"] for p in by_province.values()) == SILENT
    low = [b for b in everything["boxes"] if b["disk_low"]]
    assert low and all(b["disk_free_bytes"] < 500 * MiB for b in low)

    h40 = fleet_json(url, province="h40")  # case does not matter
    assert h40["province"] == "H40" and h40["total"] == by_province["H40"]["boxes"]
    assert {b["province"] for b in h40["boxes"]} == {"H40"}
    assert fleet_json(url, province="nowhere")["boxes"] == []

    real = [b for b in everything["boxes"] if b["device"] in fleet.real]
    assert len(real) == 3
    reviews = {b["office"]: (b["open_reviews"], b["reviews_overdue"]) for b in real}
    assert reviews == {"H29.01": (0, False), "H40.03": (1, False), "T12.07": (2, True)}
    # Summaries from before the field still validate and show nothing to check.
    older = [b for b in everything["boxes"] if b["device"] not in fleet.real and b["health"]]
    assert older and all(b["open_reviews"] is None for b in older)
    assert not any(b["reviews_overdue"] for b in older)
    for row in real:
        health = row["health"]
        assert health["office"] == row["office"] and row["version"] == health["version"]
        assert row["last_contact"] and row["reported_at"]
        assert health["disk"]["free_bytes"] > 0 and health["sync"]["last_ok"] != "never"

    # The report rides the signed-request rules: unsigned or edited, it is refused.
    body = c.encode(c.HealthReport(v=c.PROTOCOL, summary=c.HealthSummary()))
    unsigned = httpx.post(f"{url}/v1/device/health", content=body)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "unauthenticated"
    sim = fleet.boxes[10]
    link = sim.link(url)
    try:
        request = link.client.build_request("POST", f"{c.API}/device/health", content=body)
        stamp, nonce = link.now_ms(), "ab" * 16
        message = c.request_message(
            "POST", request.url.raw_path.decode(), sim.device, stamp, nonce, body + b" "
        )
        request.headers.update(
            {
                c.H_DEVICE: sim.device,
                c.H_TIME: str(stamp),
                c.H_NONCE: nonce,
                c.H_SIGNATURE: c.b64e(sim.sign(message)),
                "Content-Type": "application/json",
            }
        )
        edited = link.client.send(request)
    finally:
        link.close()
    assert edited.status_code == 401 and edited.json()["code"] == "bad_signature"


def test_health_reports_keep_only_the_latest(tmp_path: Path, central: CentralServer) -> None:
    """On SQLite and PostgreSQL: each round replaces the box's summary; contact advances."""
    state = real_box(tmp_path / "box", "H29.05")
    device = client.enroll(state, central.url, central.central.issue_token("H29.05"))["device"]
    assert client.sync_once(state, policy=FAST).health_sent
    first = fleet_json(central.url)["boxes"][0]
    store = Store.open(state)
    try:
        with store.transaction():
            store.put_meta("alert.disk", "90 MB free")
    finally:
        store.close()
    time.sleep(0.01)
    assert client.sync_once(state, policy=FAST).health_sent
    (second,) = fleet_json(central.url)["boxes"]
    assert second["device"] == device
    assert second["alerts"] == {"disk": "90 MB free"} and first["alerts"] == {}
    assert second["reported_at"] > first["reported_at"]
    assert second["last_contact"] == second["reported_at"]  # stored with the contact


def test_covers_to_check_reach_the_fleet_and_clear_when_the_clerk_decides(
    tmp_path: Path, central: CentralServer
) -> None:
    """On SQLite and PostgreSQL: the count rides each round; a day's wait flags the box."""
    state = real_box(tmp_path / "box", "H29.06")
    client.enroll(state, central.url, central.central.issue_token("H29.06"))
    dossier_id = open_review(state)
    assert client.sync_once(state, policy=FAST).health_sent
    answer = fleet_json(central.url)
    (row,) = answer["boxes"]
    assert (row["open_reviews"], row["reviews_overdue"], row["alerts"]) == (1, False, {})
    assert answer["alerting"] == 0
    page = httpx.get(f"{central.url}/fleet", params={"lang": "en"}, timeout=30).text
    assert "1 cover(s) for the clerk to check" in page and "oldest over a day" not in page
    assert 'class="box alerting"' not in page

    store = Store.open(state)
    try:
        with store.transaction():
            store.conn.execute(
                "UPDATE dossiers SET received_at=? WHERE id=?",
                (iso(int(time.time() * 1000) - OVERDUE_MS), dossier_id),
            )
    finally:
        store.close()
    assert client.sync_once(state, policy=FAST).health_sent
    answer = fleet_json(central.url)
    (row,) = answer["boxes"]
    assert row["open_reviews"] == 1 and row["reviews_overdue"] is True
    assert set(row["alerts"]) == {"review"} and answer["alerting"] == 1
    page = httpx.get(f"{central.url}/fleet", params={"lang": "en"}, timeout=30).text
    assert "1 cover(s) for the clerk to check (oldest over a day)" in page
    assert 'class="box alerting"' in page

    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        desk = DeskLedger(store, keyring.sealer(), session)
        desk.confirm_new_dossier(dossier_id, "H26.22.16-251111-3366", CodePatterns.default())
    finally:
        session.close()
        store.close()
    assert client.sync_once(state, policy=FAST).health_sent
    answer = fleet_json(central.url)
    (row,) = answer["boxes"]
    assert (row["open_reviews"], row["reviews_overdue"], row["alerts"]) == (0, False, {})
    assert answer["alerting"] == 0
    page = httpx.get(f"{central.url}/fleet", timeout=30).text
    assert "chờ kiểm tra bìa" not in page


def test_silent_after_reaches_the_page_from_the_command_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "edge.cli", "central", "serve", "--data", str(tmp_path)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--silent-after", "5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                answer = httpx.get(f"{url}/fleet.json", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "central did not start"
                time.sleep(0.1)
        assert answer.json()["silent_after_minutes"] == 5
        assert "quá 5 phút" in httpx.get(f"{url}/fleet", timeout=5).text
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    refused = subprocess.run(
        [*command, "--silent-after", "0"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "minutes above zero" in refused.stderr


def test_the_fleet_page_warns_months_before_the_update_root_expires(tmp_path: Path) -> None:
    """Root is the one role a publish does not re-sign; when it runs out every box refuses
    every update, so regional IT reads it on the page they watch (issue 16, item 7)."""
    repo = AdminRepo.create(tmp_path / "repo")
    with CentralServer(tmp_path / "central") as server:
        assert fleet_json(server.url)["update_root"] is None  # nothing published yet
        served = server.central.data / SERVED / "metadata"
        served.mkdir(parents=True)
        shutil.copy(repo.metadata_dir / "1.root.json", served / "1.root.json")
        root = fleet_json(server.url)["update_root"]
        assert (root["version"], root["warning"], root["expired"]) == (1, None, False)
        assert root["days_left"] >= 360
        assert 'id="root-expiry"' not in httpx.get(f"{server.url}/fleet", timeout=30).text
        expires_ms = int(datetime.fromisoformat(root["expires"]).timestamp() * 1000)
        pages = template_environment().get_template("fleet.html")
        for days_before, lang, words in (
            (30, "vi", "còn 30 ngày"),
            (30, "en", "in 30 day(s)"),
            (-1, "vi", "đã hết hạn"),
            (-1, "en", "expired on"),
        ):
            now = expires_ms - days_before * 86_400_000
            answer = fleet_view.fleet(server.central, None, 60, now=now)
            assert answer.update_root is not None and answer.update_root.warning
            html = pages.render(**page_context(answer, lang))
            assert 'id="root-expiry"' in html and words in html, (days_before, lang)
