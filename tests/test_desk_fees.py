"""Fees without the UI: how each dossier's fee is settled, receipt numbers, the hand-back rule."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge import catalogue
from edge.clock import Clock
from edge.desk import RESULT_READY, DeskError, DeskLedger, DeskReader, clean_details
from edge.desk.fees import (
    EXEMPTION_REASONS,
    MAX_REASON,
    FeeKind,
    FeeMode,
    Receipt,
    amount_in_words,
    fee_states,
    number_words,
    parse_amount,
    vnd,
)
from edge.domain import Channel
from edge.store import Store
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.test_desk import TODAY, add_dossier

DEC_31_2026_23H = 1798735200000
"""31/12/2026 23:00 at the counter (16:00 UTC)."""
JAN_1_2027_01H = 1798740000000
"""01/01/2027 01:00 at the counter, still 31/12/2026 in UTC."""


@pytest.fixture
def office(state: Path):
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    yield store, DeskLedger(store, keyring.sealer(), session), DeskReader(store, session)
    session.close()
    store.close()


def filled(ledger: DeskLedger, code: str, procedure: str = "1.004222", channel: int = 1) -> str:
    dossier = add_dossier(ledger, code, pages=2)
    ledger.save_details(
        dossier,
        clean_details(
            {
                "procedure": procedure,
                "full_name": "Lê Thị Hà",
                "cccd": "001190012345",
                "channel": str(channel),
            },
            today=TODAY,
        ),
    )
    return dossier


def events(store: Store, reader: DeskReader, kind: str) -> list[dict]:
    return [reader.event_payload(e) for e in store.events() if e.type == kind]


# -- words and figures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "không"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (15, "mười lăm"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (2_000, "hai nghìn"),
        (8_000, "tám nghìn"),
        (15_000, "mười lăm nghìn"),
        (20_000, "hai mươi nghìn"),
        (50_000, "năm mươi nghìn"),
        (1_005, "một nghìn không trăm linh năm"),
        (1_050, "một nghìn không trăm năm mươi"),
        (105_000, "một trăm linh năm nghìn"),
        (1_500_000, "một triệu năm trăm nghìn"),
        (1_000_005, "một triệu không trăm linh năm"),
        (100_000_000, "một trăm triệu"),
        (2_000_000_000, "hai tỷ"),
        (3_000_000_000_000, "ba nghìn tỷ"),
    ],
)
def test_amounts_read_in_vietnamese_words(amount: int, words: str) -> None:
    assert number_words(amount) == words


def test_a_receipt_writes_the_amount_in_figures_and_words() -> None:
    assert amount_in_words(50_000) == "Năm mươi nghìn đồng"
    assert vnd(50_000) == "50.000 đ"
    assert vnd(1_500_000) == "1.500.000 đ"
    assert vnd(0) == "0 đ"


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("50000", 50000), ("50.000", 50000), ("50,000 đ", 50000), (" 8 000 ", 8000), ("0", 0)],
)
def test_amounts_are_read_as_clerks_type_them(typed: str, amount: int) -> None:
    assert parse_amount(typed) == amount


@pytest.mark.parametrize("typed", ["", "năm mươi", "-5", "5e3", "１２"])
def test_what_is_not_an_amount_is_refused(typed: str) -> None:
    assert parse_amount(typed) is None


def test_exemption_reasons_are_short() -> None:
    assert all(len(r) <= MAX_REASON for r in EXEMPTION_REASONS)


# -- settling -------------------------------------------------------------------------------


def test_the_catalogue_amount_follows_the_dossier_s_channel(office, state: Path) -> None:
    store, ledger, _reader = office
    cat = catalogue.load(state, store)
    direct = filled(ledger, "000.00.01.H29-240115-0101")
    online = filled(ledger, "000.00.01.H29-240115-0102", channel=Channel.TRUC_TUYEN)
    assert ledger.catalogue_fee(direct, cat).charge == 20_000
    assert ledger.catalogue_fee(online, cat).charge == 10_000
    nothing = add_dossier(ledger, "000.00.01.H29-240115-0103")
    assert ledger.catalogue_fee(nothing, cat) is None


def test_collected_at_reception_gives_a_numbered_receipt(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0111")
    receipt = ledger.settle_fee(dossier, "before", 20_000, kind="charge", payer="Lê Thị Hà")
    assert receipt == Receipt("H29.01", 2026, 1)
    assert receipt.text == "H29.01-2026-0000001"
    fee = ledger.fee(dossier)
    assert (fee.mode, fee.kind, fee.amount) == (FeeMode.BEFORE, FeeKind.CHARGE, 20000)
    assert fee.paid
    assert fee.receipt == receipt.text and fee.paid_at
    set_ = events(store, reader, "dossier.fee_set")
    paid = events(store, reader, "dossier.fee_paid")
    assert set_ == [
        {"mode": "before", "kind": "charge", "amount": 20000, "reason": None, "clerk": "lan"}
    ]
    assert paid[0]["receipt"] == receipt.text and paid[0]["payer"] == "Lê Thị Hà"
    assert ledger.paid_fee(dossier)["receipt"] == receipt.text
    # the payer is sealed in the event, never in the projection or in clear anywhere
    for path in (store.path, store.path.with_name(store.path.name + "-wal")):
        assert "Lê Thị Hà".encode() not in (path.read_bytes() if path.exists() else b"")
    # a collected fee no longer changes
    with pytest.raises(DeskError) as err:
        ledger.settle_fee(dossier, "exempt", 0, reason="Người thuộc hộ nghèo")
    assert err.value.reason == "fee_paid"
    assert store.verify_chain() is None


def test_receipt_numbers_run_per_year_survive_restarts_and_are_never_given_twice(
    office, state: Path
) -> None:
    store, ledger, _reader = office
    first = filled(ledger, "000.00.01.H29-240115-0121")
    second = filled(ledger, "000.00.01.H29-240115-0122")
    third = filled(ledger, "000.00.01.H29-240115-0123")
    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: DEC_31_2026_23H)
    assert ledger.settle_fee(first, "before", 20_000).text == "H29.01-2026-0000001"
    # a payment that fails takes no number
    with pytest.raises(DeskError):
        ledger.settle_fee(second, "before", 20_000, payer="\x1b[2J")
    # a restart: a new connection and a new ledger count on from the database
    store2 = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        store2.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: DEC_31_2026_23H)
        again = DeskLedger(store2, keyring.sealer(), session)
        assert again.settle_fee(second, "before", 20_000).text == "H29.01-2026-0000002"
        # 01:00 on 1 January at the counter is a new year, though UTC still says 2026
        store2.clock = Clock(store2.clock.floor_ms, store2.clock.last, wall=lambda: JAN_1_2027_01H)
        assert again.settle_fee(third, "before", 15_000).text == "H29.01-2027-0000001"
    finally:
        session.close()
        store2.close()
    receipts = [r["receipt"] for r in store.conn.execute("SELECT receipt FROM fees")]
    assert len(receipts) == len(set(receipts)) == 3


def test_a_fee_after_must_be_collected_before_the_result_is_handed_back(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0131")
    assert ledger.settle_fee(dossier, "after", 20_000) is None
    fee = ledger.fee(dossier)
    assert fee.due_at_hand_back and not fee.paid
    ledger.complete(dossier)
    with store.transaction():
        store.update_dossier(dossier, central_status=RESULT_READY)
    with pytest.raises(DeskError) as err:
        ledger.hand_back(dossier, "Lê Thị Hà", "001190012345")
    assert err.value.reason == "fee_unpaid" and err.value.details["amount"] == 20_000
    assert store.dossier(dossier)["handed_back_at"] is None
    # the amount can still be corrected before it is collected
    ledger.settle_fee(dossier, "after", 25_000)
    receipt = ledger.collect_fee(dossier, "Lê Thị Hà")
    assert ledger.fee(dossier).amount == 25_000 and ledger.fee(dossier).receipt == receipt.text
    with pytest.raises(DeskError, match="fee_paid"):
        ledger.collect_fee(dossier)
    ledger.hand_back(dossier, "Lê Thị Hà", "001190012345")
    assert store.dossier(dossier)["handed_back_at"]
    with pytest.raises(DeskError, match="already_handed_back"):
        ledger.settle_fee(dossier, "after", 1000)
    assert [p["amount"] for p in events(store, reader, "dossier.fee_paid")] == [25_000]


def test_exempt_needs_a_short_reason_and_collects_nothing(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0141")
    with pytest.raises(DeskError) as err:
        ledger.settle_fee(dossier, "exempt", 20_000, reason="  ")
    assert (err.value.reason, err.value.field) == ("fee_reason_missing", "reason")
    with pytest.raises(DeskError) as err:
        ledger.settle_fee(dossier, "exempt", 20_000, reason="x" * (MAX_REASON + 1))
    assert err.value.reason == "fee_reason_too_long"
    with pytest.raises(DeskError, match="fee_reason_too_long"):
        ledger.settle_fee(dossier, "exempt", 20_000, reason="hộ nghèo\x1b[2J")
    assert ledger.settle_fee(dossier, "exempt", 20_000, reason=" Người  thuộc hộ nghèo ") is None
    fee = ledger.fee(dossier)
    assert (fee.mode, fee.reason, fee.paid) == (FeeMode.EXEMPT, "Người thuộc hộ nghèo", False)
    assert not fee.due_at_hand_back
    with pytest.raises(DeskError, match="fee_not_due"):
        ledger.collect_fee(dossier)
    assert events(store, reader, "dossier.fee_paid") == []


@pytest.mark.parametrize(
    ("mode", "amount", "reason", "field"),
    [
        ("later", 1000, "fee_mode_invalid", "mode"),
        ("before", -1, "fee_amount_invalid", "amount"),
        ("after", 100_000_001, "fee_amount_invalid", "amount"),
        ("before", 0, "fee_amount_zero", "amount"),
        ("after", 0, "fee_amount_zero", "amount"),
    ],
)
def test_what_cannot_be_settled_is_named(
    office, mode: str, amount: int, reason: str, field: str
) -> None:
    store, ledger, _reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0151")
    with pytest.raises(DeskError) as err:
        ledger.settle_fee(dossier, mode, amount)
    assert (err.value.reason, err.value.field) == (reason, field)
    assert ledger.fee(dossier) is None
    assert store.next_receipt_number("H29.01", 2026) == 1  # nothing was counted


def test_nothing_of_the_fee_is_logged(office, caplog: pytest.LogCaptureFixture) -> None:
    _store, ledger, _reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0161")
    with caplog.at_level(logging.DEBUG):
        ledger.settle_fee(dossier, "before", 20_000, payer="Trần Văn Bình")
    assert "Bình" not in caplog.text


def test_fees_of_a_handover_are_read_at_once(office) -> None:
    store, ledger, _reader = office
    paid = filled(ledger, "000.00.01.H29-240115-0171")
    later = filled(ledger, "000.00.01.H29-240115-0172")
    none = filled(ledger, "000.00.01.H29-240115-0173")
    ledger.settle_fee(paid, "before", 20_000)
    ledger.settle_fee(later, "after", 8_000, kind="fee")
    states = fee_states(store, [paid, later, none])
    assert set(states) == {paid, later}
    assert states[later].kind == FeeKind.FEE and states[paid].paid


def test_central_s_last_status_is_read_for_the_fee(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, "000.00.01.H29-240115-0181")
    assert reader.last_central_status(dossier) is None
    with store.transaction():
        ledger.record(dossier, "central.status", {"status": 6, "note": "Nộp lệ phí 20.000 đ"})
    assert reader.last_central_status(dossier) == {"status": 6, "note": "Nộp lệ phí 20.000 đ"}
    with store.transaction():
        ledger.record(dossier, "central.status", {"status": 9, "note": ""})
    assert reader.last_central_status(dossier)["status"] == 9
