"""End to end through `edge capture`: receipt covers as the world prints them (issue 10).

One test per variation class of `edge.receipt_samples`. Each class is one scan job (an inbox
sub-folder) of two covers of the class, each followed by a content page of the class. The
selected classes' jobs share one inbox, one `edge init`, one `edge capture --once --json` and
one `edge dossiers --json`, all real processes; each test then checks its own job, as a clerk
would:

* no page is filed under a code that is not its own;
* each cover opens the dossier with its own code, or opens a dossier flagged `needs_review`
  (the clerk decides), never joins the dossier before it;
* a content page's symbol (CCCD QR, tracking number, payment QR, an e-invoice's Code 128)
  never opens a dossier.

EDGE_COVERS_EDGE_ROOT=DIR runs the box from another copy of the `edge` package, e.g. the code
before a fix (`git archive <commit> edge | tar -x -C DIR`); the pages still come from here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge import receipt_samples as rs
from edge import samples
from edge.domain import CodePatterns
from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EDGE_ROOT = Path(os.environ.get("EDGE_COVERS_EDGE_ROOT", ROOT)).resolve()
COVERS = 2
"""Covers per job: the first shows whether a cover is read at all, the second also whether a
missed one joins the dossier before it."""
CONTENT_KINDS_THAT_NEVER_OPEN = {"cccd", "tracking", "payment", "other_agency"}


def _param(variation: rs.VariationClass) -> Any:
    return pytest.param(variation.name, id=variation.name)


# -- the shared run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    number: int
    folder: str
    variation: rs.VariationClass
    dossiers: tuple[rs.ReceiptDossier, ...]


@dataclass
class Run:
    """What one capture made of the selected classes' jobs."""

    jobs: dict[str, Job]
    expected: dict[str, str | None]
    dossiers: list[dict[str, Any]]

    def dossier_of(self, page: str) -> dict[str, Any] | None:
        for dossier in self.dossiers:
            if page in dossier["sources"]:
                return dossier
        return None


def _jobs(names: list[str]) -> list[Job]:
    """Each class's job is numbered (and seeded) by its place in the full list, so a test run
    alone sees the same pages as in a run of the whole file."""
    numbers = {c.name: n for n, c in enumerate(rs.variation_classes())}
    jobs = []
    seen: set[str] = set()
    for name in names:
        number = numbers[name]
        variation = rs.variation_class(name)
        codes = rs.class_codes(variation, COVERS, seed=300 + number)
        assert not seen & set(codes), f"codes repeat at {name}"
        seen |= set(codes)
        kind = variation.content[0]
        dossiers = tuple(rs.ReceiptDossier(code, (kind,)) for code in codes)
        jobs.append(Job(number, f"{number:02d}-{name}", variation, dossiers))
    return jobs


def _write(inbox: Path, job: Job) -> dict[str, str | None]:
    cover = job.variation.cover
    return rs.write_receipt_job(inbox, job.folder, job.dossiers, cover, seed=job.number)


def edge(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(EDGE_ROOT), EDGE_PASSWORD=PASSWORD)
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=EDGE_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"edge {args[0]} failed: {result.stderr}"
    return result.stdout


def _selected(session: pytest.Session) -> list[str]:
    """The classes whose tests this session runs: only those are generated and captured."""
    names = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is sys.modules[__name__] and callspec and "name" in callspec.params:
            names.append(callspec.params["name"])
    return list(dict.fromkeys(names))


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    names = _selected(request.session) or [c.name for c in rs.variation_classes()]
    jobs = {job.variation.name: job for job in _jobs(names)}
    work = tmp_path_factory.mktemp("covers")
    inbox, state = work / "inbox", work / "state"
    inbox.mkdir()
    expected: dict[str, str | None] = {}
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_write, inbox, job) for job in jobs.values()]
        for future in futures:
            expected.update(future.result())
    edge("init", "--state", str(state), "--office", "H29.01", "--clerk", "lan")
    args = ("--state", str(state), "--inbox", str(inbox), "--once", "--json", "--settle", "0")
    report = json.loads(edge("capture", *args))
    assert report["pages"] == len(expected) and not report["quarantined"], report
    found = json.loads(edge("dossiers", "--state", str(state), "--json"))
    return Run(jobs, expected, found)


# -- what a clerk cares about ----------------------------------------------------------------


def _pages(run: Run, job: Job) -> list[str]:
    return sorted(p for p in run.expected if p.startswith(job.folder + "/"))


def _covers(pages: list[str], expected: dict[str, str | None]) -> set[str]:
    covers, previous = set(), None
    for page in pages:
        if expected[page] is not None and expected[page] != previous:
            covers.add(page)
        previous = expected[page]
    return covers


def problems(run: Run, job: Job) -> Iterator[str]:
    """Every way this job's pages went wrong, in words a clerk would use."""
    pages = _pages(run, job)
    covers = _covers(pages, run.expected)
    for page in pages:
        own = run.expected[page]
        dossier = run.dossier_of(page)
        if dossier is None:
            yield f"{page} ({own}) was not filed at all"
            continue
        code, review = dossier["code"], "needs_review" in dossier["flags"]
        opens = dossier["sources"][0] == page
        if code is not None and code != own:
            yield f"{page}, a page of {own}, was filed under {code}"
        if page in covers:
            if not (opens and (code == own or (code is None and review))):
                where = code or ("a dossier to review" if review else "an unassigned dossier")
                yield f"{page}, the cover of {own}, did not open its dossier: it joined {where}"
        elif opens:
            kind = job.variation.content[0]
            if kind in CONTENT_KINDS_THAT_NEVER_OPEN:
                yield f"{page}, a {kind} page of {own}, opened a dossier ({code or 'to review'})"
            elif code is not None:
                yield f"{page}, a {kind} page of {own}, opened a dossier under {code}"


@pytest.mark.parametrize("name", [_param(c) for c in rs.variation_classes()])
def test_every_page_lands_in_its_own_dossier_or_goes_to_the_clerk(run: Run, name: str) -> None:
    found = list(problems(run, run.jobs[name]))
    assert not found, "\n".join(found)


# -- the generator's own promises (no capture) -----------------------------------------------


def test_generated_payloads_are_what_they_claim_to_be() -> None:
    import random

    patterns = CodePatterns.default()
    for variation in rs.variation_classes():
        for code in rs.class_codes(variation, 3, seed=1):
            assert patterns.match(code) == code, (variation.name, code)
    assert rs.s10_check_digit("12345678") == 5
    assert rs.s10_check_digit("00000000") == 5  # 11 - 0 = 11 -> 5
    assert rs.crc16_ccitt_false(b"123456789") == 0x29B1  # the CRC's standard check value
    rng = random.Random(1)
    for _ in range(50):
        number = rs.s10_number(rng)
        assert len(number) == 13 and number.endswith("VN")
        assert int(number[10]) == rs.s10_check_digit(number[2:10])
        payload = rs.vietqr_payload("970436", "0011223344", 20000, "NOP LE PHI")
        assert payload.startswith("000201") and payload[-8:-4] == "6304"
        assert patterns.match(rs.invoice_code(rng)) is None
        person = samples.sample_people(1, seed=rng.randrange(1000))[0]
        fields = rs.cccd_payload(person, rng).split("|")
        assert len(fields) == 7 and fields[0] == person.cccd and len(fields[6]) == 8
        url = rs.portal_url("000.00.01.H29-240115-0001", person.cccd, person.province)
        assert url.startswith("https://dichvucong.") and url.endswith(
            f"?SGT={person.cccd}&MHS=000.00.01.H29-240115-0001"
        )


def test_a_job_maps_every_page_to_its_dossier(tmp_path: Path) -> None:
    codes = samples.sample_codes(2, seed=8)
    expected = rs.write_receipt_job(
        tmp_path,
        "job-1",
        [
            rs.ReceiptDossier(None, ("text",)),
            rs.ReceiptDossier(codes[0], ("cccd",)),
            rs.ReceiptDossier(codes[1], ()),
        ],
        rs.CoverVariant("datamatrix", rotation=90),
        seed=3,
    )
    assert expected == {
        "job-1/scan_0001.jpg": None,
        "job-1/scan_0002.jpg": codes[0],
        "job-1/scan_0003.jpg": codes[0],
        "job-1/scan_0004.jpg": codes[1],
    }
    assert sorted(p.name for p in (tmp_path / "job-1").iterdir()) == [
        "scan_0001.jpg",
        "scan_0002.jpg",
        "scan_0003.jpg",
        "scan_0004.jpg",
    ]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
