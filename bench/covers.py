"""Receipt covers as the world prints them: does every page end up in its own dossier? (issue 10)

Run with ``make bench`` or ``.venv/bin/python bench/covers.py``. For each variation class of
``edge.receipt_samples`` it writes one scan job (a sub-folder of the inbox) of ``--covers``
dossiers, each a cover and ``--content`` content pages, and runs the box on all of them
exactly as regional IT would: ``edge init``, ``edge capture --once --json`` and
``edge dossiers --json``, each a child process. Then it scores, per class:

* read: the cover's dossier carries the cover's own code;
* confirmed: read, and the dossier is not flagged ``needs_review``;
* to review: not read, but the cover opened a dossier flagged ``needs_review``;
* missed: neither (the cover joined another dossier or opened one without telling anyone);
* misfiled pages: pages in a dossier whose code is not their own. A page in a dossier
  flagged ``needs_review`` that has no code is not misfiled (the clerk decides); a page whose
  cover was missed is, whether it joined the previous citizen's dossier or a dossier with no
  code that nobody was asked to check;
* wrong-code dossiers: dossiers opened under a code no cover in the run carries;
* content → review: content pages that opened a ``needs_review`` dossier (a clerk's
  keystroke spent for nothing).

A speed line compares capture on ordinary pages (bench/capture.py's pages: 300-dpi A4, a QR
cover every ten) with bench/capture.py's naive baseline (full decode, pyzbar over the whole
page, seal, commit) in the same run: capture's time is that of ``edge capture --once`` less
the same command on an empty inbox (process start), the baseline runs in-process.

``--edge-root DIR`` runs the box from another copy of the ``edge`` package, to measure code
before a change without touching the working tree::

    git archive <commit> edge | tar -x -C /tmp/before
    .venv/bin/python bench/covers.py --edge-root /tmp/before

Scale: ``--covers``/``--content`` (env EDGE_BENCH_COVERS, EDGE_BENCH_CONTENT), ``--only`` to
pick classes by substring, ``--speed-pages``, ``--workers`` for page generation;
``--covers 0`` prints only the speed line, ``--speed-pages 0`` only the table. The defaults
(10 covers, 2 content pages, 46 classes: 1,380 pages) take about 4 minutes on 2 quiet cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capture import generate, naive_rate  # noqa: E402
from edge import receipt_samples as rs  # noqa: E402
from edge.provision import provision  # noqa: E402

PASSWORD = "bench-password"


@dataclass(frozen=True)
class JobPlan:
    """One variation class's scan job: its place in the class list (its seed), its folder name
    and its dossiers."""

    number: int
    folder: str
    variation: rs.VariationClass
    dossiers: tuple[rs.ReceiptDossier, ...]


@dataclass
class Row:
    """One line of the table."""

    name: str
    covers: int = 0
    read: int = 0
    confirmed: int = 0
    review: int = 0
    missed: int = 0
    pages: int = 0
    misfiled: int = 0
    lost: int = 0
    wrong_code: int = 0
    content_review: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Row) -> None:
        for name in ("covers", "read", "confirmed", "review", "missed", "pages", "misfiled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lost += other.lost
        self.wrong_code += other.wrong_code
        self.content_review += other.content_review


def plan(
    classes: Sequence[rs.VariationClass], covers: int, content: int, seed: int = 1
) -> list[JobPlan]:
    """Jobs with codes distinct across the whole run: a known code would append, not open.

    A class's job is numbered by its place in the full list, so a run with `--only` writes the
    same pages (and gets the same line) as a full run.
    """
    plans = []
    seen: set[str] = set()
    numbers = {c.name: n for n, c in enumerate(rs.variation_classes())}
    for variation in classes:
        number = numbers.get(variation.name, len(numbers))
        codes = rs.class_codes(variation, covers, seed=seed * 1000 + number)
        if seen & set(codes) or len(set(codes)) != len(codes):
            raise RuntimeError(f"codes repeat across classes at {variation.name}; change --seed")
        seen |= set(codes)
        kinds = tuple(islice(cycle(variation.content), content))
        dossiers = tuple(rs.ReceiptDossier(code, kinds) for code in codes)
        plans.append(JobPlan(number, f"{number:02d}-{variation.name}", variation, dossiers))
    return plans


def _write(inbox: Path, job: JobPlan) -> dict[str, str | None]:
    cover = job.variation.cover
    return rs.write_receipt_job(inbox, job.folder, job.dossiers, cover, seed=job.number)


def write_jobs(inbox: Path, plans: Sequence[JobPlan], workers: int) -> dict[str, str | None]:
    expected: dict[str, str | None] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_write, inbox, job) for job in plans]
        for future in futures:
            expected.update(future.result())
    return expected


def edge_env(edge_root: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(edge_root), EDGE_PASSWORD=PASSWORD)


def edge(edge_root: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        env=edge_env(edge_root),
        cwd=edge_root,  # `python -m` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"edge {args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def init_box(edge_root: Path, state: Path) -> None:
    edge(edge_root, "init", "--state", str(state), "--office", "BENCH", "--clerk", "bench")


def capture(edge_root: Path, state: Path, inbox: Path) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    out = edge(
        edge_root,
        *("capture", "--state", str(state), "--inbox", str(inbox)),
        *("--once", "--json", "--settle", "0"),
    )
    return json.loads(out), time.perf_counter() - started


def dossiers(edge_root: Path, state: Path) -> list[dict[str, Any]]:
    return json.loads(edge(edge_root, "dossiers", "--state", str(state), "--json"))


def cover_pages(pages: Sequence[str], expected: dict[str, str | None]) -> list[str]:
    """Each dossier's first page: the page where the expected code changes to a new one."""
    covers = []
    previous: str | None = None
    for page in pages:
        code = expected[page]
        if code is not None and code != previous:
            covers.append(page)
        previous = code
    return covers


def score(
    job: JobPlan,
    expected: dict[str, str | None],
    found: list[dict[str, Any]],
    printed_codes: set[str],
) -> Row:
    """One class's line, from what `edge dossiers --json` lists (sources are page files)."""
    row = Row(job.variation.name)
    where: dict[str, dict[str, Any]] = {}
    for dossier in found:
        for source in dossier["sources"]:
            where[source] = dossier
    pages = sorted(p for p in expected if p.startswith(job.folder + "/"))
    covers = set(cover_pages(pages, expected))
    row.pages = len(pages)
    row.covers = len(covers)
    for page in pages:
        dossier = where.get(page)
        if dossier is None:
            row.lost += 1
            row.misfiled += 1
            continue
        own = expected[page]
        review = "needs_review" in dossier["flags"]
        first = dossier["sources"][0] == page
        if dossier["code"] != own and not (dossier["code"] is None and review):
            row.misfiled += 1
        if first and dossier["code"] is not None and dossier["code"] not in printed_codes:
            row.wrong_code += 1
        if page in covers:
            if dossier["code"] == own:
                row.read += 1
                row.confirmed += not review
            elif review and first and dossier["code"] is None:
                row.review += 1
            else:
                row.missed += 1
        elif review and first:
            row.content_review += 1
    return row


def table(rows: Sequence[Row], total: Row) -> str:
    head = (
        "| class | covers | read | confirmed | to review | missed | misfiled pages "
        "| wrong-code dossiers | content → review |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )

    def line(row: Row, bold: bool = False) -> str:
        cells = [
            row.name,
            row.covers,
            row.read,
            row.confirmed,
            row.review,
            row.missed,
            f"{row.misfiled} / {row.pages}",
            row.wrong_code,
            row.content_review,
        ]
        text = [f"**{c}**" if bold else str(c) for c in cells]
        return "| " + " | ".join(text) + " |\n"

    return head + "".join(line(r) for r in rows) + line(total, bold=True)


def speed(work: Path, edge_root: Path, pages: int, baseline_pages: int) -> dict[str, float]:
    """Capture on ordinary pages against the naive baseline, in the same run.

    The baseline runs before and after capture and the two are averaged, so a neighbour's load
    that comes or goes during the run weighs on both sides alike.
    """
    staging = work / "speed-staging"
    files = generate(staging, pages)
    base_state = work / "speed-base"
    provision(base_state, office="BENCH", clerk="bench", password=PASSWORD)
    before = naive_rate(base_state, files[:baseline_pages])
    empty_state, empty_inbox = work / "speed-empty", work / "speed-empty-inbox"
    empty_inbox.mkdir()
    init_box(edge_root, empty_state)
    _, start_cost = capture(edge_root, empty_state, empty_inbox)
    state, inbox = work / "speed-state", work / "speed-inbox"
    init_box(edge_root, state)
    shutil.copytree(staging, inbox)
    report, elapsed = capture(edge_root, state, inbox)
    if report["pages"] != len(files):
        raise RuntimeError(f"captured {report['pages']} of {len(files)} pages")
    after = naive_rate(base_state, files[baseline_pages : 2 * baseline_pages] or files)
    baseline = (before + after) / 2
    rate = len(files) / max(elapsed - start_cost, 1e-3)
    return {
        "pages": len(files),
        "seconds": elapsed,
        "process_start_s": start_cost,
        "rate": rate,
        "baseline_rate": baseline,
        "baseline_before_after": (before, after),
        "baseline_pages": baseline_pages,
        "ratio": rate / baseline,
    }


def covers_table(
    work: Path, edge_root: Path, classes: Sequence[rs.VariationClass], args: argparse.Namespace
) -> dict[str, Any]:
    """Write every class's job, capture them all at once, print the table."""
    started = time.perf_counter()
    plans = plan(classes, args.covers, args.content, args.seed)
    inbox, state = work / "inbox", work / "state"
    inbox.mkdir()
    expected = write_jobs(inbox, plans, args.workers)
    generated = time.perf_counter() - started
    print(f"generated {len(expected)} pages in {generated:.0f} s", file=sys.stderr, flush=True)
    init_box(edge_root, state)
    report, elapsed = capture(edge_root, state, inbox)
    print(
        f"captured {report['pages']} pages in {elapsed:.0f} s "
        f"({report['pages'] / elapsed:.1f} pages/s with process start)",
        file=sys.stderr,
        flush=True,
    )
    found = dossiers(edge_root, state)
    printed = {code for code in expected.values() if code is not None}
    rows = [score(job, expected, found, printed) for job in plans]
    total = Row("all classes")
    for row in rows:
        total.add(row)
    print(table(rows, total), flush=True)
    lost = [r.name for r in rows if r.lost]
    if lost:
        print(f"pages not stored at all in: {', '.join(lost)}")
    return {
        "pages": len(expected),
        "generate_s": round(generated, 1),
        "capture_s": round(elapsed, 1),
        "rows": [vars(r) for r in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--covers", type=int, default=int(env("EDGE_BENCH_COVERS", 10)))
    parser.add_argument("--content", type=int, default=int(env("EDGE_BENCH_CONTENT", 2)))
    parser.add_argument("--only", nargs="*", default=[], help="class-name substrings")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--speed-pages", type=int, default=300, help="0: no speed line")
    parser.add_argument("--baseline-pages", type=int, default=40)
    parser.add_argument("--edge-root", type=Path, default=ROOT, help="where `edge` is imported")
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    edge_root = args.edge_root.resolve()
    if not (edge_root / "edge" / "cli.py").is_file():
        parser.error(f"{edge_root} has no edge/cli.py")
    classes = [
        c for c in rs.variation_classes() if not args.only or any(o in c.name for o in args.only)
    ]
    if not classes:
        parser.error("--only matches no class")

    work = args.keep or Path(tempfile.mkdtemp(prefix="edge-covers-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        result: dict[str, Any] = {"edge_root": str(edge_root)}
        if args.covers > 0:
            result["covers"] = covers_table(work, edge_root, classes, args)
        if args.speed_pages > 0:
            fast = speed(work, edge_root, args.speed_pages, args.baseline_pages)
            result["speed"] = fast
            print(
                f"Speed on ordinary pages ({fast['pages']} pages, 300-dpi A4, a QR cover every "
                f"ten): capture {fast['rate']:.1f} pages/s = {fast['ratio']:.1f}× the naive "
                f"baseline ({fast['baseline_rate']:.1f} pages/s on {fast['baseline_pages']} "
                f"pages, before and after); process start {fast['process_start_s']:.1f} s "
                "subtracted."
            )
        result["total_s"] = round(time.perf_counter() - started, 1)
        result["machine"] = (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(json.dumps({k: v for k, v in result.items() if k != "covers"}, indent=1))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
