"""Capture benchmark: throughput, latency and memory against a naive baseline.

Run with ``make bench`` (or ``.venv/bin/python bench/capture.py``). Everything is
measured in the same run on the same generated pages, so the ratios hold even
on a shared, noisy machine; absolute numbers drift.

* throughput: N generated 300-dpi A4 JPEG pages (a cover sheet every 10 pages)
  already in the inbox, captured by ``edge capture --once`` in a child process
  whose RSS is sampled as it goes (peak, and growth from the first quarter of
  the run to the end: memory must stay flat);
* baseline: the plainest pipeline a developer might write first (full decode,
  pyzbar on the whole page, seal, insert, commit) on a sample of the same pages;
* latency: ``edge run`` watching the inbox while a feeder drops pages at a
  steady rate; time from a file being declared settled to its commit.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge import samples  # noqa: E402
from edge.capture import barcodes  # noqa: E402
from edge.provision import provision  # noqa: E402
from edge.records import new_id  # noqa: E402
from edge.store import Store  # noqa: E402
from edge.vault import Keyring, ciphertext_id, page_ad  # noqa: E402

PASSWORD = "bench-password"


def generate(folder: Path, pages: int, seed: int = 1) -> list[Path]:
    codes = samples.sample_codes(pages // 10 + 1, seed=seed)
    specs = [samples.DossierSpec(code, 9) for code in codes[: pages // 10]]
    return samples.write_job(folder, specs, "jpeg", seed=seed).paths


def naive_rate(state: Path, files: list[Path]) -> float:
    """Pages per second of the plain pipeline: full decode + zbar + seal + insert + commit."""
    from PIL import Image

    store = Store.open(state)
    sealer = Keyring.load(state).sealer()
    key = sealer.new_key()
    with store.transaction():
        store.put_key(key.key_id, None, key.wrapped_office, key.wrapped_central)
    started = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        image = Image.open(io.BytesIO(data))
        image.load()
        barcodes.read_symbols_naive(image)
        page_id = new_id("p", store.now())
        sealed = sealer.seal(key, data, page_ad("naive", page_id))
        with store.transaction():
            store.put_blob(ciphertext_id(sealed), sealed)
            store.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                (page_id, hashlib.sha256(data).hexdigest()),
            )
    elapsed = time.perf_counter() - started
    store.close()
    return len(files) / elapsed


def edge_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def throughput(state: Path, inbox: Path, pages: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(
        edge_command(
            "capture",
            "--state",
            str(state),
            "--inbox",
            str(inbox),
            "--once",
            "--json",
            "--settle",
            "0",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    ps = psutil.Process(proc.pid)
    samples_rss: list[tuple[float, int]] = []
    while proc.poll() is None:
        try:
            samples_rss.append((time.perf_counter() - started, ps.memory_info().rss))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - started
    report = json.loads(out)
    assert report["pages"] == pages, report
    rss = [r for _, r in samples_rss]
    quarter = [r for t, r in samples_rss if t <= elapsed / 4] or rss[:1]
    return {
        "pages": report["pages"],
        "seconds": elapsed,
        "rate": pages / elapsed,
        "peak_rss_mb": max(rss) / 2**20,
        "rss_first_quarter_mb": max(quarter) / 2**20,
        "rss_growth_mb": (max(rss) - max(quarter)) / 2**20,
    }


def latency(state: Path, inbox: Path, files: list[Path], rate: float) -> dict:
    """Drop files at ``rate`` pages/s into a watched inbox; settle→commit times."""
    log = state.parent / "latency.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGE_BENCH_LATENCY_LOG=str(log))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--latency-worker", str(state), str(inbox)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    for path in files:
        os.replace(path, inbox / path.name)
        time.sleep(1 / rate)
    deadline = time.monotonic() + 60
    while any(inbox.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    values = sorted(float(x) for x in log.read_text().split())
    return {
        "files": len(values),
        "p50_ms": statistics.median(values),
        "p95_ms": values[int(0.95 * (len(values) - 1))],
        "max_ms": values[-1],
    }


def latency_worker(state: Path, inbox: Path) -> None:
    from edge.daemon import Daemon

    daemon = Daemon(state, inbox, {"settle_seconds": 0.3})
    sink = open(os.environ["EDGE_BENCH_LATENCY_LOG"], "a")  # noqa: SIM115

    def record(outcome) -> None:
        if outcome.latency_ms is not None:
            sink.write(f"{outcome.latency_ms:.2f}\n")
            sink.flush()

    daemon.on_outcome = record
    daemon.run()
    daemon.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--baseline-pages", type=int, default=60)
    parser.add_argument("--latency-pages", type=int, default=150)
    parser.add_argument("--latency-rate", type=float, default=10.0)
    parser.add_argument("--latency-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency_worker:
        latency_worker(Path(args.latency_worker[0]), Path(args.latency_worker[1]))
        return

    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    try:
        t0 = time.perf_counter()
        staging = work / "staging"
        files = generate(staging, args.pages)
        gen = time.perf_counter() - t0
        print(f"generated {len(files)} pages in {gen:.1f} s", flush=True)

        base_state = work / "base-state"
        provision(base_state, office="BENCH", clerk="bench", password=PASSWORD)
        base_rate = naive_rate(base_state, files[: args.baseline_pages])
        print(f"naive baseline: {base_rate:.1f} pages/s on {args.baseline_pages} pages", flush=True)

        state, inbox = work / "state", work / "inbox"
        provision(state, office="BENCH", clerk="bench", password=PASSWORD)
        shutil.copytree(staging, inbox)
        result = throughput(state, inbox, len(files))
        print(
            f"edge capture: {result['rate']:.1f} pages/s = "
            f"{result['rate'] / base_rate:.1f}x baseline; "
            f"peak RSS {result['peak_rss_mb']:.0f} MB, growth after first quarter "
            f"{result['rss_growth_mb']:+.1f} MB",
            flush=True,
        )

        lat_state, lat_inbox = work / "lat-state", work / "lat-inbox"
        lat_inbox.mkdir()
        provision(lat_state, office="BENCH", clerk="bench", password=PASSWORD)
        lat_files = generate(work / "lat-staging", args.latency_pages, seed=2)
        lat = latency(lat_state, lat_inbox, lat_files, args.latency_rate)
        print(
            f"latency settled->committed at {args.latency_rate:.0f} pages/s arriving: "
            f"p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            f"({lat['files']} files)",
            flush=True,
        )
        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
            "baseline_rate": base_rate,
            **{f"capture_{k}": v for k, v in result.items()},
            "speedup": result["rate"] / base_rate,
            **{f"latency_{k}": v for k, v in lat.items()},
        }
        print(json.dumps(summary, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
