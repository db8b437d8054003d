"""Clerk UI benchmark: 100,000 dossiers, cold start, search, scrolling, memory.

Run with ``make bench`` (or ``.venv/bin/python bench/tui.py``). The store of
100,000 dossiers (one tiny page each, details sealed and indexed, written
through the ledger) is built once and kept in ``bench/out/`` (about 15 minutes
of one core and 700 MB the first time). Every measurement runs in a fresh
process, headless, next to a baseline measured in the same run:

* cold start: process start to the sign-in screen, and Enter on the password
  to an interactive home screen (scrypt and the home counts over 100,000
  dossiers included), against a bare Textual app that shows one line;
* search: a mix of codes, CCCD and phone numbers, names without accents and
  single common words, each answered through the blind index and ordered by
  Vietnamese collation, against opening every dossier's sealed fields and
  comparing folded names (the naive way, timed on a sample and scaled);
* scrolling: key presses on the list of all 100,000 dossiers (page down,
  jumps to the end and back), each timed to the end of its handling, against
  loading the same rows into a Textual DataTable;
* memory: RSS of the UI process after all of that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

T0 = time.perf_counter()

import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
PASSWORD = "bench-password"
CLERK = "bench"
SEED = 1
GENERATOR = "tui-v1"


def build_state(n: int) -> Path:
    """The benchmark office with ``n`` dossiers, reused while the generator is unchanged."""
    state = OUT / f"tui-{n}"
    marker = state / f".ready-{GENERATOR}"  # newer migrations apply when the store opens
    if marker.exists():
        return state
    from edge.provision import provision
    from edge.store import Store
    from edge.tui.demo_office import add_history
    from edge.vault import Keyring

    shutil.rmtree(state, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    provision(state, office="H29.01", clerk=CLERK, password=PASSWORD)
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock(CLERK, PASSWORD)
    started = time.perf_counter()

    def progress(made: int) -> None:
        if made % 10_000 == 0 or made == n:
            rate = made / (time.perf_counter() - started)
            print(f"  generated {made:,} dossiers ({rate:.0f}/s)", flush=True)

    try:
        add_history(store, keyring, session, n, seed=SEED, progress=progress)
    finally:
        session.close()
        store.close()
    marker.write_text(f"{n} dossiers in {time.perf_counter() - started:.0f} s\n")
    return state


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


class LoopLag:
    """How long the event loop was kept from running: what a clerk feels as a frozen key.

    A task asks to wake every 2 ms; each wake-up's lateness is time during which
    no key press could have been handled.
    """

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + 0.002
            await asyncio.sleep(0.002)
            self.lags.append(max(0.0, loop.time() - expected) * 1000)

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return max(self.lags, default=0.0)


# -- children: each measurement in a fresh process -----------------------------------------


def child_baseline_start() -> dict:
    from textual.app import App
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield Static("Commune Edge")

    async def run() -> float:
        async with Bare().run_test(size=(80, 24)) as pilot:
            await pilot.press("x")
            return time.perf_counter() - T0

    return {"ready_s": asyncio.run(run())}


def child_start(state: Path) -> dict:
    from textual.widgets import Input

    from edge.tui.app import EdgeApp
    from edge.tui.i18n import set_language
    from edge.tui.office import Office
    from edge.tui.screens.home import HomeScreen

    imported = time.perf_counter() - T0
    set_language("vi")
    office = Office(state)

    async def run() -> dict:
        app = EdgeApp(office)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("l")
            sign_in_screen = time.perf_counter() - T0
            screen = app.screen
            screen.query_one("#user", Input).value = CLERK
            field = screen.query_one("#password", Input)
            field.value = PASSWORD
            field.focus()
            submitted = time.perf_counter()
            await pilot.press("enter")
            while not (isinstance(app.screen, HomeScreen) and app.screen.is_mounted):
                await asyncio.sleep(0.002)
            await asyncio.sleep(0)  # the first frame of the home screen is drawn
            home = time.perf_counter() - submitted
            return {
                "imports_s": imported,
                "sign_in_screen_s": sign_in_screen,
                "sign_in_to_home_s": home,
                "rss_mb": rss_mb(),
            }

    try:
        return asyncio.run(run())
    finally:
        office.close()


def search_queries(n: int, rng: random.Random) -> list[tuple[str, str]]:
    from edge import samples, text

    codes = samples.sample_codes(min(n, 10_000), SEED)
    people = samples.sample_people(5000, SEED)
    queries: list[tuple[str, str]] = []
    for _ in range(40):
        queries.append(("code", rng.choice(codes)[-11:]))
        person = rng.choice(people)
        queries.append(("cccd", person.cccd))
        queries.append(("phone", rng.choice(people).phone))
        queries.append(("name", text.fold(rng.choice(people).full_name)))
        word = rng.choice([person.family_name, person.given_name])
        queries.append(("word", text.fold(word)))
    return queries


def child_session(state: Path, n: int) -> dict:
    from textual.widgets import Input

    from edge.tui.app import EdgeApp
    from edge.tui.i18n import set_language
    from edge.tui.office import Office
    from edge.tui.screens.home import HomeScreen
    from edge.tui.screens.search import SearchScreen
    from edge.tui.widgets.dossier_list import DossierList

    set_language("vi")
    office = Office(state)
    rng = random.Random(7)

    async def run() -> dict:
        app = EdgeApp(office)
        result: dict = {}
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.screen.query_one("#user", Input).value = CLERK
            field = app.screen.query_one("#password", Input)
            field.value = PASSWORD
            field.focus()
            await pilot.press("enter")
            while not isinstance(app.screen, HomeScreen):
                await pilot.pause(0.005)
            await pilot.press("2", "t")
            listing = app.screen.query_one(DossierList)
            assert listing.total >= n * 0.99, listing.total
            keys: list[float] = []
            work: list[float] = []
            lag = LoopLag()
            lag.start()
            plan = ["pagedown"] * 300 + ["end", "pageup", "up", "home"] * 5 + ["down"] * 50
            for key in plan:
                started = time.perf_counter()
                await pilot.press(key)
                keys.append((time.perf_counter() - started) * 1000)
            result["scroll_loop_lag_max_ms"] = lag.stop()
            # the widget's own work for one key: move, then draw every visible line
            actions = [lambda: listing.action_page(1)] * 300 + [
                lambda: listing.action_jump(-1),
                lambda: listing.action_jump(0),
            ] * 20
            for action in actions:
                started = time.perf_counter()
                action()
                for y in range(listing.size.height):
                    listing.render_line(y)
                work.append((time.perf_counter() - started) * 1000)
            result["scroll_work_p95_ms"] = percentile(work, 95)
            result["scroll_work_max_ms"] = max(work)
            result["keys"] = len(keys)
            result["key_p50_ms"] = percentile(keys, 50)
            result["key_p95_ms"] = percentile(keys, 95)
            result["key_max_ms"] = max(keys)
            result["rows_total"] = listing.total
            await pilot.press("slash")
            screen = app.screen
            assert isinstance(screen, SearchScreen)
            reader = office.unlocked.reader  # type: ignore[union-attr]
            queries = search_queries(n, rng)
            by_kind: dict[str, list[float]] = {}
            answers: list[float] = []
            full: list[float] = []
            found: dict[str, list[int]] = {}
            lag.start()
            for kind, query in queries:
                started = time.perf_counter()
                answer = reader.find(query, 100)
                elapsed = (time.perf_counter() - started) * 1000
                answers.append(elapsed)
                by_kind.setdefault(kind, []).append(elapsed)
                found.setdefault(kind, []).append(answer.total)
                screen.query_one("#query", Input).value = query
                started = time.perf_counter()
                screen.search()  # the screen's own path: answer, list, audit event
                full.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.005)  # let the lag watcher see the loop between searches
            result["search_loop_lag_max_ms"] = lag.stop()
            result["search_p50_ms"] = percentile(answers, 50)
            result["search_p95_ms"] = percentile(answers, 95)
            result["search_max_ms"] = max(answers)
            result["search_screen_p95_ms"] = percentile(full, 95)
            result["search_by_kind_p95_ms"] = {k: percentile(v, 95) for k, v in by_kind.items()}
            result["search_median_matches"] = {k: statistics.median(v) for k, v in found.items()}
            result["rss_mb"] = rss_mb()
        return result

    try:
        return asyncio.run(run())
    finally:
        office.close()


def child_baseline_search(state: Path, sample: int) -> dict:
    """The naive search: open every dossier's sealed fields and compare folded names."""
    from edge import text
    from edge.desk import DeskReader
    from edge.store import Store
    from edge.vault import Keyring

    store = Store.open(state)
    session = Keyring.load(state).unlock(CLERK, PASSWORD)
    reader = DeskReader(store, session)
    ids = [r[0] for r in store.conn.execute("SELECT id FROM dossiers LIMIT ?", (sample,))]
    started = time.perf_counter()
    hits = 0
    for dossier_id in ids:
        fields = reader.fields(dossier_id)
        if "nguyen van" in text.fold(fields.get("full_name", "")):
            hits += 1
    elapsed = time.perf_counter() - started
    total = store.count("dossiers")
    session.close()
    store.close()
    return {"sample": sample, "sample_s": elapsed, "scaled_s": elapsed * total / sample}


def child_baseline_datatable(state: Path) -> dict:
    """Every row into a DataTable, the obvious widget for a list."""
    from textual.app import App
    from textual.widgets import DataTable

    from edge.store import Store

    store = Store.open(state)
    started = time.perf_counter()
    rows = store.conn.execute(
        "SELECT code, received_at, status FROM dossiers ORDER BY received_at DESC"
    ).fetchall()
    store.close()

    class Table(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield DataTable()

    async def run() -> dict:
        app = Table()
        async with app.run_test(size=(80, 24)) as pilot:
            lag = LoopLag()
            lag.start()
            await asyncio.sleep(0.01)
            table = app.query_one(DataTable)
            table.add_columns("code", "received", "status")
            table.add_rows([tuple(r) for r in rows])
            await pilot.press("pagedown")
            ready = time.perf_counter() - started
            blocked = lag.stop()
            keys = []
            for _ in range(50):
                t = time.perf_counter()
                await pilot.press("pagedown")
                keys.append((time.perf_counter() - t) * 1000)
            return {
                "load_s": ready,
                "load_loop_lag_max_ms": blocked,
                "key_p95_ms": percentile(keys, 95),
                "rss_mb": rss_mb(),
            }

    return asyncio.run(run())


# -- parent ------------------------------------------------------------------------------------


def run_child(*args: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TEXTUAL": "", "TERM": "xterm-256color"},
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="cold starts to take the median of")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "baseline-start":
            out = child_baseline_start()
        elif mode == "start":
            out = child_start(Path(rest[0]))
        elif mode == "session":
            out = child_session(Path(rest[0]), int(rest[1]))
        elif mode == "baseline-search":
            out = child_baseline_search(Path(rest[0]), int(rest[1]))
        else:
            out = child_baseline_datatable(Path(rest[0]))
        print(json.dumps(out))
        return

    t = time.perf_counter()
    state = build_state(args.dossiers)
    print(f"store: {args.dossiers:,} dossiers ready in {time.perf_counter() - t:.0f} s", flush=True)
    size_mb = sum(p.stat().st_size for p in state.glob("edge.db*")) / 2**20

    bare = [run_child("baseline-start") for _ in range(args.runs)]
    starts = [run_child("start", str(state)) for _ in range(args.runs)]
    bare_ready = statistics.median(r["ready_s"] for r in bare)
    screen = statistics.median(r["sign_in_screen_s"] for r in starts)
    home = statistics.median(r["sign_in_to_home_s"] for r in starts)
    print(
        f"cold start: sign-in screen {screen:.2f} s (bare Textual app {bare_ready:.2f} s), "
        f"Enter to interactive home {home:.2f} s, together {screen + home:.2f} s (target 1.5 s)",
        flush=True,
    )
    session = run_child("session", str(state), str(args.dossiers))
    print(
        f"search: p50 {session['search_p50_ms']:.1f} ms, p95 {session['search_p95_ms']:.1f} ms "
        f"(target 50 ms), max {session['search_max_ms']:.1f} ms; through the screen "
        f"(list and audit event included) p95 {session['search_screen_p95_ms']:.1f} ms",
        flush=True,
    )
    print(f"  p95 by kind: {session['search_by_kind_p95_ms']}", flush=True)
    naive = run_child("baseline-search", str(state), "2000")
    print(
        f"  naive (open every dossier): {naive['sample_s'] * 1000:.0f} ms for 2,000 dossiers, "
        f"~{naive['scaled_s']:.1f} s for all",
        flush=True,
    )
    print(
        f"scrolling {session['rows_total']:,} rows: event loop never blocked more than "
        f"{session['scroll_loop_lag_max_ms']:.1f} ms; widget work per key p95 "
        f"{session['scroll_work_p95_ms']:.1f} ms, max {session['scroll_work_max_ms']:.1f} ms; "
        f"Pilot round trip per key p95 {session['key_p95_ms']:.1f} ms",
        flush=True,
    )
    table = run_child("baseline-datatable", str(state))
    print(
        f"  DataTable baseline: {table['load_s']:.1f} s to load, loop blocked up to "
        f"{table['load_loop_lag_max_ms']:.0f} ms, Pilot round trip per key p95 "
        f"{table['key_p95_ms']:.1f} ms, RSS {table['rss_mb']:.0f} MB",
        flush=True,
    )
    print(f"memory: RSS after the session {session['rss_mb']:.0f} MB (target 200 MB)", flush=True)
    summary = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
        "dossiers": args.dossiers,
        "db_mb": size_mb,
        "bare_textual_ready_s": bare_ready,
        "sign_in_screen_s": screen,
        "sign_in_to_home_s": home,
        "start_rss_mb": statistics.median(r["rss_mb"] for r in starts),
        "session": session,
        "naive_search": naive,
        "datatable": table,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
