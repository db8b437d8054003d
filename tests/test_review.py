"""Every page in the right dossier (issue 10): what capture does when it is not sure, and
how the clerk settles it.

The rule: a 1-D code is trusted only when two independent reads agree; a page with a
receipt-like symbol capture could not confirm opens a dossier marked `needs_review` instead
of joining the dossier before it; the clerk then says "a new dossier" (typing or confirming
the code) or "same as before", and both are audited events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.capture import barcodes
from edge.capture.barcodes import PageReading, Read, Symbol, confirm
from edge.capture.grouping import place
from edge.capture.pipeline import interpret
from edge.desk import MERGED, DeskError, DeskLedger, DeskReader
from edge.domain import CodePatterns
from edge.records import UNASSIGNED, WAITING_DETAILS
from edge.store import Store
from edge.symbols import ReceiptRules
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.test_desk import add_dossier, add_pages

PATTERNS = CodePatterns.default()
RULES = ReceiptRules()
CODE = "H26.22.16-251111-3366"
MISREAD = "HP6.2(.16-251111-3366"
BAR_BOX = (1500, 400, 2200, 520)


def c128(text: str, box: barcodes.Box | None = BAR_BOX) -> Symbol:
    return Symbol(text, "code128", box)


class FixedConfirmer(barcodes.Confirmer):
    """Stands in for the full-resolution decoders with what they would read there."""

    def __init__(self, found: list[tuple[str, Symbol]]) -> None:
        self.found = found
        self.asked = 0

    def reads(  # type: ignore[override]
        self,
        full: object,
        box: object,
        enough: object = None,
        *,
        scale: int = 1,
    ) -> list[tuple[str, Symbol]]:
        self.asked += 1
        return list(self.found)


# -- the confirmation rule ------------------------------------------------------------------


def test_a_half_scale_misread_is_overruled_by_two_full_scale_reads() -> None:
    """The reproduction of issue 10: half scale read a checksum-valid wrong text."""
    again = FixedConfirmer([("zxing@1", c128(CODE)), ("zbar@1", c128(CODE))])
    reads = confirm([("zxing@2", c128(MISREAD))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert reads == [Read(c128(CODE), True, (MISREAD,))]


def test_two_scales_that_agree_confirm_a_code() -> None:
    again = FixedConfirmer([("zxing@1", c128(CODE))])
    reads = confirm([("zxing@2", c128(CODE))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert reads == [Read(c128(CODE), True)]


def test_scales_that_disagree_with_no_second_decoder_are_uncertain() -> None:
    again = FixedConfirmer([("zxing@1", c128(CODE))])
    reads = confirm([("zxing@2", c128(MISREAD))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert {r.symbol.text: r.confirmed for r in reads} == {MISREAD: False, CODE: False}
    assert all(r.alternatives for r in reads)


def test_a_code_only_one_decoder_at_one_scale_reads_is_uncertain() -> None:
    again = FixedConfirmer([])
    reads = confirm([("zxing@1", c128(CODE))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert reads == [Read(c128(CODE), False)]


def test_the_same_decoder_twice_at_one_scale_is_not_a_confirmation() -> None:
    again = FixedConfirmer([("zxing@1", c128(CODE))])
    reads = confirm([("zxing@1", c128(CODE))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert reads == [Read(c128(CODE), False)]


def test_two_d_symbols_need_no_second_read() -> None:
    again = FixedConfirmer([])
    reads = confirm([("zxing@2", Symbol(CODE, "qr"))], full=object(), confirmer=again)  # type: ignore[arg-type]
    assert reads == [Read(Symbol(CODE, "qr"), True)]
    assert again.asked == 0


def test_two_one_d_symbols_in_different_places_are_confirmed_apart() -> None:
    tracking = c128("EB123456785VN", (200, 3000, 700, 3100))
    again = FixedConfirmer(
        [("zbar@1", c128(CODE)), ("zbar@1", tracking)],
    )
    reads = confirm(
        [("zxing@2", c128(CODE)), ("zxing@2", tracking)],
        full=object(),  # type: ignore[arg-type]
        confirmer=again,
    )
    assert sorted((r.symbol.text, r.confirmed) for r in reads) == [
        ("EB123456785VN", True),
        (CODE, True),
    ]


# -- what a page's symbols mean for grouping ------------------------------------------------


def reading(*reads: Read) -> PageReading:
    return PageReading(tuple(reads))


def test_a_confirmed_code_opens_its_dossier() -> None:
    code, attrs, review = interpret(reading(Read(c128(CODE), True)), PATTERNS, RULES)
    assert (code, attrs, review) == (CODE, [], [])


def test_an_unconfirmed_code_goes_to_the_clerk_not_to_a_dossier() -> None:
    code, _, review = interpret(reading(Read(c128(CODE), False)), PATTERNS, RULES)
    assert code is None
    assert [(r["text"], r["why"]) for r in review] == [(CODE, "unconfirmed")]


def test_a_receipt_like_bar_code_that_matches_no_pattern_goes_to_the_clerk() -> None:
    code, attrs, review = interpret(reading(Read(c128(MISREAD), True)), PATTERNS, RULES)
    assert code is None
    assert [(r["text"], r["why"]) for r in review] == [(MISREAD, "no_pattern")]
    assert attrs[0]["kind"] == "receipt_like"


def test_a_portal_url_gives_its_code_and_is_marked_personal() -> None:
    url = f"https://dichvucong.hanoi.gov.vn/portaldvc/tra-cuu?SGT=001203012345&MHS={CODE}"
    code, attrs, review = interpret(reading(Read(Symbol(url, "qr"), True)), PATTERNS, RULES)
    assert code == CODE and review == []
    assert attrs == [{"text": url, "symbology": "qr", "kind": "dossier_code"}]


def test_a_portal_url_whose_code_matches_nothing_goes_to_the_clerk_withheld() -> None:
    url = "https://dichvucong.hanoi.gov.vn/portaldvc/tra-cuu?SGT=001203012345&MHS=XX-1"
    code, _, review = interpret(reading(Read(Symbol(url, "qr"), True)), PATTERNS, RULES)
    assert code is None
    assert review[0]["personal"] is True


@pytest.mark.parametrize(
    "symbol",
    [
        Symbol("001203012345|123456789|Nguyễn Văn An|15031990|Nam|Thôn 3, Xã X|20042021", "qr"),
        Symbol("EB123456785VN", "code128"),
        Symbol("https://example.com/hoa-don?id=42", "qr"),
        Symbol("INV-2025-000123", "qr"),
    ],
    ids=["cccd", "tracking", "plain-url", "other-agency-qr"],
)
def test_content_symbols_never_open_a_boundary(symbol: Symbol) -> None:
    for confirmed in (True, False):
        code, attrs, review = interpret(reading(Read(symbol, confirmed)), PATTERNS, RULES)
        assert (code, review) == (None, [])
        assert attrs[0]["text"] == symbol.text


def test_two_different_confirmed_codes_on_one_page_go_to_the_clerk() -> None:
    other = "000.00.01.H29-240115-0001"
    code, _, review = interpret(
        reading(Read(Symbol(CODE, "qr"), True), Read(Symbol(other, "qr"), True)), PATTERNS, RULES
    )
    assert code is None
    assert {r["code"] for r in review} == {CODE, other}


def test_placement_of_an_uncertain_page_remembers_the_dossier_before_it() -> None:
    placement = place(None, "d-open", None, uncertain=True)
    assert (placement.creates, placement.review, placement.follows) == (True, True, "d-open")
    assert place(CODE, "d-open", None, uncertain=True).review is False


# -- the clerk settles it --------------------------------------------------------------------


@pytest.fixture
def desk(state: Path):
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    yield store, DeskLedger(store, keyring.sealer(), session), DeskReader(store, session)
    session.close()
    store.close()


def uncertain_after(ledger: DeskLedger, previous: str | None) -> str:
    with ledger.store.transaction():
        return ledger.create_dossier(
            None,
            review=[{"text": MISREAD, "symbology": "code128", "why": "no_pattern"}],
            follows=previous,
        )


def events(store: Store, reader: DeskReader, kind: str) -> list[dict]:
    return [reader.event_payload(e) for e in store.events() if e.type == kind]


def test_an_uncertain_cover_is_listed_first_and_flagged(desk) -> None:
    store, ledger, _ = desk
    before = add_dossier(ledger, CODE)
    review = uncertain_after(ledger, before)
    assert [r["id"] for r in store.open_reviews()] == [review]
    assert store.review_count() == 1
    flags = {d["id"]: d["flags"] for d in store.list_dossiers()}
    assert "needs_review" in flags[review] and "needs_review" not in flags[before]


def test_new_dossier_takes_the_typed_code_and_clears_the_review(desk) -> None:
    store, ledger, reader = desk
    before = add_dossier(ledger, "000.00.01.H29-240115-0001")
    review = uncertain_after(ledger, before)
    assert ledger.confirm_new_dossier(review, CODE.lower(), PATTERNS) == review
    row = store.dossier(review)
    assert (row["code"], row["status"], row["needs_review"]) == (CODE, WAITING_DETAILS, 0)
    assert events(store, reader, "dossier.reviewed") == [
        {"decision": "new", "code": CODE, "clerk": "lan"}
    ]
    with pytest.raises(DeskError) as err:
        ledger.confirm_new_dossier(review, CODE, PATTERNS)
    assert err.value.reason == "review_done"


def test_new_dossier_refuses_a_code_that_is_no_code(desk) -> None:
    _, ledger, _ = desk
    review = uncertain_after(ledger, None)
    with pytest.raises(DeskError) as err:
        ledger.confirm_new_dossier(review, MISREAD, PATTERNS)
    assert (err.value.reason, err.value.field) == ("code_invalid", "code")


def test_a_known_code_sends_the_pages_to_that_dossier(desk) -> None:
    store, ledger, reader = desk
    known = add_dossier(ledger, CODE, pages=1)
    review = uncertain_after(ledger, None)
    add_pages(ledger, review, 2, first=10)
    assert ledger.confirm_new_dossier(review, CODE, PATTERNS) == known
    assert len(store.pages(known)) == 3
    assert store.dossier(review)["status"] == MERGED
    assert events(store, reader, "dossier.reviewed")[0]["decision"] == "known_code"


def test_same_as_before_moves_the_pages_back_and_keeps_them_readable(desk) -> None:
    store, ledger, reader = desk
    before = add_dossier(ledger, CODE, pages=2)
    review = uncertain_after(ledger, before)
    add_pages(ledger, review, 3, first=10)
    assert ledger.join_previous(review) == before
    pages = store.pages(before)
    assert len(pages) == 5
    assert all(reader.page_bytes(p) for p in pages)
    row = store.dossier(review)
    assert (row["status"], row["merged_into"], row["needs_review"]) == (MERGED, before, 0)
    assert store.review_count() == 0
    decision = events(store, reader, "dossier.reviewed")
    assert decision == [{"decision": "previous", "into": before, "clerk": "lan"}]


def test_same_as_before_follows_a_previous_dossier_that_was_merged_since(desk) -> None:
    _, ledger, _ = desk
    first = add_dossier(ledger, CODE, pages=1)
    second = uncertain_after(ledger, first)
    third = uncertain_after(ledger, second)
    ledger.join_previous(second)
    assert ledger.join_previous(third) == first


def test_same_as_before_needs_a_dossier_before(desk) -> None:
    store, ledger, _ = desk
    review = uncertain_after(ledger, None)
    with pytest.raises(DeskError) as err:
        ledger.join_previous(review)
    assert err.value.reason == "review_no_previous"
    assert store.dossier(review)["status"] == UNASSIGNED


def test_the_review_survives_sync_as_sealed_events(desk) -> None:
    """Nothing about the candidates is in clear in the database: they can be a portal URL
    carrying a citizen's ID number."""
    store, ledger, _ = desk
    secret = "https://dichvucong.hanoi.gov.vn/tra-cuu?SGT=001203012345&MHS=XX"
    with store.transaction():
        ledger.create_dossier(None, review=[{"text": secret, "why": "no_pattern"}])
    dump = "\n".join(store.conn.iterdump())
    assert "001203012345" not in dump
    assert json.dumps(secret) not in dump


# -- end to end through `edge capture` -------------------------------------------------------


def test_a_cover_with_a_code_that_matches_nothing_waits_for_the_clerk(
    state: Path, inbox: Path
) -> None:
    """A Code 128 of dossier-code shape whose date is impossible (so no pattern takes it):
    the pages after it must not join the citizen before, and the report says so."""
    from edge import samples
    from tests.test_capture_e2e import capture_once, dossiers, edge

    job = inbox / "batch"
    job.mkdir()
    suspect = "H26.22.16-251199-3366"
    pages = [
        samples.cover_page(CODE, 1, symbology="qr"),
        samples.text_page(2),
        samples.cover_page(suspect, 3, symbology="code128"),
        samples.text_page(4),
        samples.text_page(5),
    ]
    for index, page in enumerate(pages, 1):
        samples.save_jpeg(page, job / f"scan_{index}.jpg")
    report = capture_once(state, inbox)
    assert [(u["file"], u["page"]) for u in report["uncertain"]] == [("batch/scan_3.jpg", 1)]
    assert report["uncertain"][0]["candidates"][0]["texts"][0] == suspect
    listed = {tuple(d["sources"]): d for d in dossiers(state)}
    first = listed[("batch/scan_1.jpg", "batch/scan_2.jpg")]
    held = listed[("batch/scan_3.jpg", "batch/scan_4.jpg", "batch/scan_5.jpg")]
    assert (first["code"], "needs_review" in first["flags"]) == (CODE, False)
    assert (held["code"], "needs_review" in held["flags"]) == (None, True)
    doctor = json.loads(
        edge("doctor", "--state", str(state), "--inbox", str(inbox), "--json", check=False).stdout
    )
    assert {c["name"]: c["status"] for c in doctor}["reviews"] == "warn"
