"""Update benchmark: what a check costs a box on a 256 kbit/s, 300 ms RTT link.

Run with ``make bench`` (or ``.venv/bin/python bench/update.py``). A repository
shaped like the real one (34 provinces after the 2025 merger, a fleet
configuration, the procedure catalogue as reference data, a configuration for
the box's province) is served by central's own receiver (``/updates``, uvicorn)
through ``bench/shaper.py``. A box
of office H29.01 that is already up to date then

* checks when nothing changed (the common case, several times a day),
* takes a fleet-wide configuration change (one setting),
* takes a change to its province's configuration,

each measured ``--runs`` times (median reported), counting requests and payload
bytes at the client and wire bytes (headers included) at the shaper. The
baseline, measured in the same run over the same link, is a client without a
metadata cache: it downloads every metadata file of the repository each time,
which is what a check costs when verified metadata is not kept between runs.

Regional IT's side is measured too: ``edge admin publish --central URL`` of a
one-setting configuration change over the same shaped link (offer, upload the
one new target, name the offer again; central verifies it as a box would), against a
baseline that uploads the whole served repository (every metadata and target
file, what copying the folder to central costs) to a sink on the same link.
"""

from __future__ import annotations

import argparse
import http.server
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.shaper import ShapedLink  # noqa: E402
from edge.provision import provision  # noqa: E402
from edge.update.client import CountingFetcher, HttpFetcher  # noqa: E402
from edge.update.cycle import Options, update_once  # noqa: E402
from edge.update.gate import Gate  # noqa: E402
from edge.update.repository import AdminRepo  # noqa: E402
from tests.syncutil import CentralServer  # noqa: E402

PROVINCES = [f"P{n:02d}" for n in range(1, 34)] + ["H29"]
CATALOGUE = ROOT / "edge" / "catalogue" / "procedures.json"


def _measure(state: Path, url: str, link: ShapedLink) -> dict[str, float]:
    counter = CountingFetcher(HttpFetcher())
    link.reset()
    start = time.perf_counter()
    report = update_once(state, Options(source=url, fetcher=counter))
    elapsed = time.perf_counter() - start
    if report.status not in ("up-to-date", "updated"):
        raise SystemExit(f"update {report.status}: {report.reason}")
    return {
        "status": report.status,
        "seconds": elapsed,
        "requests": counter.traffic.requests,
        "payload": counter.traffic.bytes,
        "wire": link.up + link.down,
        "connections": link.connections,
    }


def _baseline(repo: AdminRepo, url: str, link: ShapedLink) -> dict[str, float]:
    """Every metadata file, fetched on one kept-alive connection, no cache."""
    fetcher = CountingFetcher(HttpFetcher())
    names = ["timestamp.json"]
    snapshot = repo.snapshot_md()
    names.append(f"{snapshot.signed.version}.snapshot.json")
    names += [f"{meta.version}.{name}" for name, meta in snapshot.signed.meta.items()]
    root = repo.root_md().signed.version
    names += [f"{v}.root.json" for v in range(1, root + 2)]  # the last one is the 404 probe
    link.reset()
    start = time.perf_counter()
    for name in names:
        try:
            fetcher.download_bytes(f"{url}/metadata/{name}", 5_000_000)
        except Exception:
            continue
    return {
        "seconds": time.perf_counter() - start,
        "requests": fetcher.traffic.requests,
        "payload": fetcher.traffic.bytes,
        "wire": link.up + link.down,
        "connections": link.connections,
    }


def _publish(repo: AdminRepo, link: ShapedLink, run: int) -> dict[str, float]:
    """A fleet configuration change published over HTTP, signing included."""
    repo.set_config({"update_check_minutes": 360 + run + 1})
    link.reset()
    start = time.perf_counter()
    repo.publish(f"http://127.0.0.1:{link.port}")
    return {
        "seconds": time.perf_counter() - start,
        "requests": 4,  # offer, HEAD and PATCH of the one target, the offer named again
        "payload": link.up,
        "wire": link.up + link.down,
        "connections": link.connections,
    }


class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        remaining = int(self.headers["Content-Length"])
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 16)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _copy_baseline(served: Path, link: ShapedLink) -> dict[str, float]:
    """Every file of the served repository uploaded, one PUT each on a kept connection."""
    files = sorted(p for p in served.rglob("*") if p.is_file())
    link.reset()
    start = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{link.port}") as client:
        for path in files:
            client.put(f"/{path.relative_to(served)}", content=path.read_bytes())
    return {
        "seconds": time.perf_counter() - start,
        "requests": len(files),
        "payload": sum(p.stat().st_size for p in files),
        "wire": link.up + link.down,
        "connections": link.connections,
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "status"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=256_000, help="bits per second")
    parser.add_argument("--rtt", type=float, default=0.3, help="seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edge-bench-update-") as tmp:
        base = Path(tmp)
        repo = AdminRepo.create(base / "repo", threshold=2, root_keys=3)
        for province in PROVINCES:
            repo.delegate(province)
        repo.set_config({"min_dpi": 200.0, "update_check_minutes": 360})
        repo.set_reference("procedures", json.loads(CATALOGUE.read_text("utf-8")))
        repo.set_config({"job_idle_seconds": 90}, office="H29")
        central = CentralServer(base / "central")
        served = central.central.data / "updates"
        repo.publish(str(served))
        state = base / "box"
        provision(
            state,
            office="H29.01",
            clerk="lan",
            password="bench-password",
            trust_root=repo.metadata_dir / "1.root.json",
        )
        with central:
            direct = f"{central.url}/updates"
            first = update_once(state, Options(source=direct))
            if first.status != "updated":
                raise SystemExit(f"first update: {first.status} {first.reason}")
            with ShapedLink("127.0.0.1", central.port, rate_bps=args.rate,
                            rtt_s=args.rtt) as link:  # fmt: skip
                url = f"http://127.0.0.1:{link.port}/updates"
                quiet, fleet, province, baseline = [], [], [], []
                for run in range(args.runs):
                    quiet.append(_measure(state, url, link))
                    repo.set_config({"min_dpi": 200.0 + run + 1})
                    repo.publish(str(served))
                    fleet.append(_measure(state, url, link))
                    repo.set_config({"job_idle_seconds": 90 + run + 1}, office="H29")
                    repo.publish(str(served))
                    province.append(_measure(state, url, link))
                    baseline.append(_baseline(repo, url, link))
            Gate(central.central.data).pin((repo.metadata_dir / "1.root.json").read_bytes())
            sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
            threading.Thread(target=sink.serve_forever, daemon=True).start()
            publish, copy = [], []
            with (
                ShapedLink("127.0.0.1", central.port, rate_bps=args.rate, rtt_s=args.rtt) as up,
                ShapedLink(
                    "127.0.0.1", sink.server_address[1], rate_bps=args.rate, rtt_s=args.rtt
                ) as to_sink,
            ):
                for run in range(args.runs):
                    publish.append(_publish(repo, up, run))
                    copy.append(_copy_baseline(served, to_sink))
            sink.shutdown()
        sizes = {"timestamp": (served / "metadata" / "timestamp.json").stat().st_size}
        for role in ("snapshot", "targets", "province-H29"):
            newest = max(
                (served / "metadata").glob(f"*.{role}.json"),
                key=lambda p: int(p.name.split(".")[0]),
            )
            sizes[role] = newest.stat().st_size
    assert all(r["status"] == "up-to-date" for r in quiet), quiet
    assert all(r["status"] == "updated" for r in fleet + province)
    results = {
        "quiet check": _median(quiet),
        "fleet config change": _median(fleet),
        "province config change": _median(province),
        "baseline: all metadata, no cache": _median(baseline),
    }
    summary = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "link": f"{args.rate / 1000:.0f} kbit/s each way, {args.rtt * 1000:.0f} ms RTT",
        "provinces": len(PROVINCES),
        "results": results,
        "metadata sizes, bytes": sizes,
    }
    publishing = {
        "publish a fleet config change (HTTP)": _median(publish),
        "baseline: copy the whole repository": _median(copy),
    }
    summary["publishing"] = publishing
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    base_s = results["baseline: all metadata, no cache"]["seconds"]
    print(f"update benchmark, {summary['link']}, {len(PROVINCES)} provinces, "
          f"median of {args.runs} runs")  # fmt: skip
    print("metadata sizes, bytes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    print("| what | time, s | × baseline | requests | payload, B | on the wire, B | connections |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.2f} | {r['seconds'] / base_s:.2f} | {r['requests']:.0f} "
            f"| {r['payload']:,.0f} | {r['wire']:,.0f} | {r['connections']:.0f} |"
        )
    copy_s = publishing["baseline: copy the whole repository"]["seconds"]
    print("regional IT publishing over the same link (payload = bytes sent up):")
    print("| what | time, s | × baseline | requests | payload up, B | on the wire, B |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in publishing.items():
        print(
            f"| {name} | {r['seconds']:.2f} | {r['seconds'] / copy_s:.2f} | {r['requests']:.0f} "
            f"| {r['payload']:,.0f} | {r['wire']:,.0f} |"
        )
    ok = results["quiet check"]["requests"] <= 2 and results["quiet check"]["payload"] < 2048
    print(f"quiet check is a few small requests (≤ 2, < 2 KiB payload): {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
