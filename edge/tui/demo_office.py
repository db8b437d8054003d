"""A populated desk for ``make demo``, the UI tests and the UI benchmark.

Capture makes dossiers from scans; a real office then has citizens' details
typed in, some dossiers completed, results sent back by central, paper handed
over. ``fill_desk`` does that to freshly captured dossiers through the same
``DeskLedger`` calls the UI makes. ``add_history`` writes many finished
dossiers quickly (one tiny page each, many per transaction) through the
ledger, for a realistic list or the 100,000-dossier benchmark.

Central's statuses are simulated here (``central.status`` events marked
``simulated``) until the sync client writes real ones.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from PIL import Image, ImageDraw

from edge import catalogue, samples
from edge.desk import RESULT_READY, DeskLedger, Details
from edge.domain import PORTAL_TZ
from edge.records import COMPLETE, WAITING_DETAILS, Ledger
from edge.store import Store
from edge.vault import Keyring, OfficeSession

PROCESSING = 4


def set_central_status(ledger: Ledger, dossier_id: str, status: int) -> None:
    """What a downlink status does to the projection, for demo data only."""
    with ledger.store.transaction():
        ledger.store.update_dossier(dossier_id, central_status=status)
        ledger.record(dossier_id, "central.status", {"status": status, "simulated": True})


def _details(person: samples.Person, procedure: catalogue.Procedure, note: str = "") -> Details:
    return Details(
        procedure=procedure.code,
        full_name=person.full_name,
        cccd=person.cccd,
        birth_year=str(person.birth_date.year),
        phone=person.phone,
        appointment="",
        note=note,
    )


@dataclass
class Filled:
    waiting: list[str]
    complete: list[str]
    results: list[str]
    handed_back: list[str]


def fill_desk(state: Path, clerk: str, password: str, *, seed: int = 7) -> Filled:
    """Give captured dossiers a realistic spread of states.

    In receiving order: the first two coded dossiers stay waiting for details
    (one of them half typed), the rest get a citizen and a procedure and are
    completed; of those, central has processed some, has results ready for
    two, and one result was already handed back.
    """
    keyring = Keyring.load(state)
    store = Store.open(state)
    session = keyring.unlock(clerk, password)
    try:
        ledger = DeskLedger(store, keyring.sealer(), session)
        procedures = catalogue.load(state).procedures
        rng = random.Random(f"desk:{seed}")
        people = samples.sample_people(40, seed)
        coded = [r for r in store.list_dossiers() if r["code"] and r["status"] == WAITING_DETAILS]
        # a dossier with flagged pages stays waiting, so the warnings show on the desk
        coded.sort(key=lambda r: not r["flags"])
        filled = Filled([], [], [], [])
        person_of: dict[str, samples.Person] = {}
        for index, row in enumerate(coded):
            dossier_id = row["id"]
            if index < 2:
                if index == 1:
                    ledger.save_details(
                        dossier_id,
                        Details(procedure=procedures[0].code, full_name=people[index].full_name),
                    )
                filled.waiting.append(dossier_id)
                continue
            procedure = rng.choice(procedures)
            person_of[dossier_id] = people[index]
            ledger.save_details(dossier_id, _details(people[index], procedure))
            ledger.complete(dossier_id)
            filled.complete.append(dossier_id)
        for position, dossier_id in enumerate(filled.complete):
            if position < 2:
                set_central_status(ledger, dossier_id, RESULT_READY)
                filled.results.append(dossier_id)
            elif position == 2:
                set_central_status(ledger, dossier_id, RESULT_READY)
                person = person_of[dossier_id]
                ledger.hand_back(dossier_id, person.full_name, person.cccd)
                filled.handed_back.append(dossier_id)
            elif position == 3:
                set_central_status(ledger, dossier_id, PROCESSING)
        return filled
    finally:
        session.close()
        store.close()


def tiny_page(seed: int = 0) -> bytes:
    """A small JPEG that looks like a page with lines of text, for bulk dossiers."""
    image = Image.new("RGB", (62, 88), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    for y in range(10, 80, 5):
        draw.line((6, y, 6 + rng.randint(30, 50), y), fill=(40, 40, 60))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60, dpi=(300, 300))
    return out.getvalue()


def add_history(
    store: Store,
    keyring: Keyring,
    session: OfficeSession,
    n: int,
    *,
    seed: int = 1,
    batch: int = 500,
    open_every: int = 50,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``n`` dossiers with one tiny page, details and (mostly) completion.

    Through the ledger like capture and the desk (sealed fields, blind index,
    events), but many per transaction: the benchmark needs 100,000 quickly.
    Every ``open_every``-th dossier is left waiting for details.
    """
    ledger = Ledger(store, keyring.sealer())
    procedures = catalogue.load().procedures
    codes = samples.sample_codes(n, seed)
    people = samples.sample_people(min(n, 5000), seed)
    page = tiny_page(seed)
    digest = hashlib.sha256(page).hexdigest()
    made = 0
    while made < n:
        with store.transaction():
            for _ in range(min(batch, n - made)):
                number = made
                code = codes[number]
                if store.dossier_by_code(code) is not None:
                    made += 1
                    continue
                dossier_id = ledger.create_dossier(code)
                source = f"{seed}:{number}"
                ledger.add_page(
                    dossier_id,
                    page,
                    media_type="image/jpeg",
                    sha256=digest,
                    source_sha=hashlib.sha256(source.encode()).hexdigest(),
                    source_name=f"history_{number:06d}.jpg",
                    source_index=0,
                    width=62,
                    height=88,
                    dpi=300.0,
                    flags=[],
                    symbols=[],
                )
                if number % open_every:
                    person = people[number % len(people)]
                    procedure = procedures[number % len(procedures)]
                    details = _details(person, procedure)
                    ledger.set_fields(session, dossier_id, details.personal())
                    store.update_dossier(dossier_id, procedure_code=procedure.code, status=COMPLETE)
                    ledger.record(
                        dossier_id,
                        "dossier.completed",
                        {"procedure": procedure.code, "clerk": session.clerk, "bulk": True},
                    )
                made += 1
        if progress is not None:
            progress(made)
    return made


def handed_over_earlier(store: Store, ledger: DeskLedger, on: date, count: int) -> list[str]:
    """Mark the oldest ``count`` completed dossiers as returned to the agency on ``on``."""
    rows = store.conn.execute(
        "SELECT id FROM dossiers WHERE status = ? AND handed_over_on IS NULL "
        "ORDER BY received_at LIMIT ?",
        (COMPLETE, count),
    ).fetchall()
    ids = [r[0] for r in rows]
    return ledger.record_handover(ids, on) if ids else []


def open_demo_desk(state: Path, inbox: Path, clerk: str, password: str) -> None:
    """The end of ``make demo``: a lived-in desk, then the clerk's UI, already signed in.

    Without a terminal (CI, a pipe) the UI cannot run; the command to open it is
    printed instead, so ``make demo`` still succeeds there.
    """
    import sys

    filled = fill_desk(state, clerk, password)
    keyring = Keyring.load(state)
    store = Store.open(state)
    session = keyring.unlock(clerk, password)
    try:
        # earlier scanning sessions of the same day: the clock never runs backwards, so
        # "earlier" dossiers can only be from today on a freshly provisioned box
        history = add_history(store, keyring, session, 24, seed=2025, open_every=8)
        ledger = DeskLedger(store, keyring.sealer(), session)
        rows = store.conn.execute(
            "SELECT id FROM dossiers WHERE status = ? AND procedure_code IS NOT NULL "
            "AND central_status IS NULL ORDER BY received_at LIMIT 12",
            (COMPLETE,),
        ).fetchall()
        for position, row in enumerate(rows):
            set_central_status(ledger, row[0], RESULT_READY if position < 3 else PROCESSING)
        today = datetime.fromtimestamp(store.time_ms() / 1000, PORTAL_TZ).date()
        returned = handed_over_earlier(store, ledger, today, 8)
    finally:
        session.close()
        store.close()
    print(
        f"\nDesk: {len(filled.waiting)} dossier(s) waiting for details, "
        f"{len(filled.complete)} completed, {len(filled.results)} result(s) ready, "
        f"{history} more dossiers received today ({len(returned)} already returned to the agency)."
    )
    command = f"edge tui --state {state} --inbox {inbox}"
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"Open the clerk's UI on a terminal with: .venv/bin/{command}")
        print(f"(clerk {clerk}, password {password})")
        return
    print(f"Opening the clerk's UI, signed in as {clerk} (later: .venv/bin/{command})")
    from edge.tui import run

    run(state, lang="vi", inbox=inbox, sign_in=(clerk, password))
