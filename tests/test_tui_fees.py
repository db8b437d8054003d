"""The fee dialog, the receipt and fees on the handover list, driven through the real app."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from edge import samples
from edge.desk import DeskLedger, DeskReader, clean_details
from edge.desk.fees import FeeMode, FeeState
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ConfirmDialog, FileWrittenDialog, HandBackDialog
from edge.tui.screens.fees import FeeDialog, ReasonPicker, amount_shown
from edge.tui.screens.handover import HandoverScreen
from edge.tui.screens.results import ResultsScreen
from edge.tui.widgets.common import StatusLine
from edge.tui.widgets.dossier_list import DossierList
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.tui_fixtures import SEED, Desk, make_app, sign_in, use_box_console, wait_until

RESIDENCE = "1.004222"
"""Đăng ký thường trú: a charge of 20.000 đồng in person (10.000 online)."""
PAYER = "Trần Thị Bích Ngọc"


@contextmanager
def ledger_for(desk: Desk) -> Iterator[tuple[Store, DeskLedger]]:
    store = Store.open(desk.state)
    keyring = Keyring.load(desk.state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        yield store, DeskLedger(store, keyring.sealer(), session)
    finally:
        session.close()
        store.close()


def with_procedure(desk: Desk, dossier_id: str, procedure: str = RESIDENCE) -> None:
    with ledger_for(desk) as (_store, ledger):
        ledger.save_details(
            dossier_id,
            clean_details(
                {"procedure": procedure, "full_name": PAYER, "cccd": "001190012345"},
                today=date(2026, 11, 27),
            ),
        )


def text_of(app: EdgeApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def pdf_text(path: Path) -> tuple[str, tuple[int, int]]:
    pdf = pypdfium2.PdfDocument(path)
    try:
        width, height = pdf[0].get_size()
        text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        return text, (round(width), round(height))
    finally:
        pdf.close()


async def open_fees(
    pilot: Pilot[None], dossier_id: str, results: list[FeeState | None], **kwargs: Any
) -> FeeDialog:
    dialog = FeeDialog(dossier_id, **kwargs)
    pilot.app.push_screen(dialog, results.append)
    await wait_until(pilot, lambda: pilot.app.screen is dialog)
    await pilot.pause()
    return dialog


@pytest.mark.parametrize(
    ("typed", "cursor", "shown", "after"),
    [
        ("50000", 5, "50.000", 6),
        ("1.500.0000", 10, "15.000.000", 10),
        ("1.50.000", 4, "150.000", 3),  # the digits right of the cursor stay there
        ("", 0, "", 0),
    ],
)
def test_the_amount_field_writes_thousands_as_vietnamese_do(
    typed: str, cursor: int, shown: str, after: int
) -> None:
    assert amount_shown(typed, cursor) == (shown, after)


async def test_collected_at_reception_writes_an_a5_receipt(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    target = desk.filled.waiting[0]
    with_procedure(desk, target)
    results: list[FeeState | None] = []
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        dialog = await open_fees(pilot, target, results)
        assert "20.000 đồng/lần" in text_of(app, "#catalogue")
        assert "Thông tư 75/2022/TT-BTC" in text_of(app, "#catalogue")
        assert app.screen.query_one("#mode", Input).value == "1"
        assert app.screen.query_one("#kind", Input).value == "1"
        assert app.screen.query_one("#amount", Input).value == "20.000"
        assert text_of(app, "#amount-words") == "Hai mươi nghìn đồng"
        assert app.screen.query_one("#payer", Input).value == PAYER
        assert not app.screen.query_one("#reason-row").display
        # a copy of the fee is typed: the amount follows as Vietnamese write it
        amount = app.screen.query_one("#amount", Input)
        amount.focus()
        amount.value = ""
        await pilot.press(*"25000")
        await pilot.pause()
        assert amount.value == "25.000"
        assert text_of(app, "#amount-words") == "Hai mươi lăm nghìn đồng"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        receipt = dialog.last_receipt
        assert receipt is not None and "0000001" in text_of(app, "#file")
        await pilot.press("escape")
        await wait_until(pilot, lambda: results != [])
    app.office.close()
    state = results[0]
    assert state is not None and state.mode == FeeMode.BEFORE and state.paid
    assert state.amount == 25_000 and state.receipt == "H29.01-2026-0000001"
    assert receipt.name == "bien-lai-H29.01-2026-0000001.pdf"
    assert receipt.parent == desk.state / "handover"
    assert stat.S_IMODE(receipt.stat().st_mode) == 0o600
    text, size = pdf_text(receipt)
    assert size == (420, 595)  # A5
    for words in (
        "BIÊN LAI THU PHÍ, LỆ PHÍ",
        "Số: 0000001",
        "Ký hiệu: H29.01-2026",
        "25.000 đ",
        "Hai mươi lăm nghìn đồng",
        "Lệ phí",
        "Đăng ký thường trú",
        PAYER,
        "08:30 27/11/2026",
        "NGƯỜI NỘP TIỀN",
        "NGƯỜI THU TIỀN",
    ):
        assert words in text, words
    assert PAYER not in caplog.text
    assert PAYER not in receipt.name


async def test_a_collected_fee_is_read_only_and_its_receipt_printed_again(desk: Desk) -> None:
    target = desk.filled.waiting[0]
    with_procedure(desk, target)
    with ledger_for(desk) as (_store, ledger):
        ledger.settle_fee(target, "before", 20_000, payer=PAYER)
    results: list[FeeState | None] = []
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        dialog = await open_fees(pilot, target, results)
        assert "biên lai số 0000001" in text_of(app, "#paid")
        assert all(f.disabled for f in app.screen.query(Input))
        await pilot.press("ctrl+s")  # nothing to save
        assert app.screen is dialog
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        await pilot.press("escape")
        await wait_until(pilot, lambda: results != [])
    app.office.close()
    text, _size = pdf_text(dialog.last_receipt)
    assert PAYER in text and "20.000 đ" in text


async def test_exempt_with_a_reason_from_the_list(desk: Desk) -> None:
    target = desk.filled.waiting[0]
    with_procedure(desk, target)
    results: list[FeeState | None] = []
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_fees(pilot, target, results)
        app.screen.query_one("#mode", Input).focus()
        await pilot.press("backspace", "3")
        await pilot.pause()
        assert app.screen.query_one("#reason-row").display
        assert not app.screen.query_one("#payer-row").display
        await pilot.press("ctrl+s")  # no reason yet
        await pilot.pause()
        assert "lý do" in str(app.screen.query_one("#msg", StatusLine).render()).lower()
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonPicker))
        options = app.screen.query_one(OptionList)
        options.highlighted = 1
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FeeDialog))
        assert app.screen.query_one("#reason", Input).value == "Người thuộc hộ nghèo"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: results != [])
    app.office.close()
    state = results[0]
    assert state is not None and state.mode == FeeMode.EXEMPT
    assert state.reason == "Người thuộc hộ nghèo" and not state.paid


async def test_central_s_request_for_payment_is_shown(desk: Desk) -> None:
    target = desk.filled.complete[-1]
    with ledger_for(desk) as (store, ledger), store.transaction():
        ledger.record(
            target, "central.status", {"status": 6, "note": "Nộp lệ phí trước ngày 30/11"}
        )
    other = desk.filled.complete[-2]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_fees(pilot, target, [])
        shown = text_of(app, "#central")
        assert app.screen.query_one("#central").display
        assert "nghĩa vụ tài chính: Nộp lệ phí trước ngày 30/11" in shown
        await pilot.press("escape")
        await pilot.pause()
        await open_fees(pilot, other, [])
        assert not app.screen.query_one("#central").display
    app.office.close()


async def test_a_fee_due_at_hand_back_is_collected_before_the_result_goes(desk: Desk) -> None:
    target = desk.filled.results[0]
    with ledger_for(desk) as (store, ledger):
        ledger.settle_fee(target, "after", 8_000, kind="fee")
        code = store.dossier(target)["code"]
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        listing = app.screen.query_one(DossierList)
        listing.cursor = next(i for i in range(listing.total) if listing.row(i)["id"] == target)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, FeeDialog))
        assert app.screen.collect and code in text_of(app, "#fee-title")
        assert app.screen.query_one("#mode", Input).value == "2"
        assert app.screen.query_one("#amount", Input).value == "8.000"
        await pilot.press("escape")  # not collected: the result stays
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen))
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, FeeDialog))
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, HandBackDialog))
        await pilot.press(*"001190012345", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen))
    app.office.close()
    store = Store.open(desk.state)
    try:
        assert store.dossier(target)["handed_back_at"]
        assert store.fee(target)["receipt"] == "H29.01-2026-0000001"
    finally:
        store.close()


async def test_the_handover_list_gives_each_dossier_s_documents_and_fee(desk: Desk) -> None:
    """Circular 17/2017/TT-BTTTT: documents with originals and copies, the fee and how it
    was settled, the total collected, both signature blocks; still no citizen's name."""
    complete = desk.filled.complete
    with ledger_for(desk) as (store, ledger):
        codes = {d: store.dossier(d)["code"] for d in complete}
        ledger.settle_fee(complete[0], "before", 20_000, payer=PAYER)
        ledger.settle_fee(complete[1], "after", 8_000, kind="fee")
        ledger.settle_fee(complete[3], "exempt", 20_000, reason="Người thuộc hộ nghèo")
        procedures = {d: store.dossier(d)["procedure_code"] for d in complete}
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HandoverScreen)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        await pilot.press("escape")
        await pilot.pause()
        written = screen.last_pdf
    app.office.close()
    text, size = pdf_text(written)
    flat = " ".join(text.split())
    assert size == (595, 842)
    assert "Thông tư số 17/2017/TT-BTTTT" in flat
    assert "Thành phần hồ sơ" in flat
    for dossier_id in complete:
        assert codes[dossier_id] in flat
    assert "Lệ phí 20.000 đ" in flat and "Đã thu" in flat and "Biên lai số 0000001" in flat
    assert "Phí 8.000 đ" in flat and "Thu khi trả kết quả" in flat
    assert "Miễn" in flat and "Người thuộc hộ nghèo" in flat
    assert "Phí, lệ phí đã thu: 20.000 đ (Hai mươi nghìn đồng)" in flat
    assert "Còn thu khi trả kết quả: 8.000 đ" in flat
    assert flat.count("Họ và tên:") == 2 and flat.count("Ngày:") >= 2
    assert "BÊN GIAO" in flat and "BÊN NHẬN" in flat
    # each procedure's documents, as tagged or as the catalogue asks for them
    from edge import catalogue

    cat = catalogue.load(desk.state)
    for dossier_id in complete:
        procedure = cat.get(procedures[dossier_id] or "")
        if procedure is not None and procedure.documents:
            first = procedure.documents[0].name
            assert " ".join(first.split()[:3]) in flat, first
    people = samples.sample_people(40, SEED)
    assert PAYER not in flat
    assert not any(p.full_name in flat for p in people)
    assert not any(p.cccd in flat for p in people)


async def _hand_over_all(desk: Desk) -> str:
    """Record today's handover of every waiting dossier; the list's text on one line."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HandoverScreen)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        written = screen.last_pdf
    app.office.close()
    assert written is not None
    return " ".join(pdf_text(written)[0].split())


async def test_the_list_names_documents_as_tagged_on_the_pages(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documents as DeskReader.documents gives them: kind and pages of each."""
    calls: list[str] = []

    def documents(self: DeskReader, dossier_id: str) -> list[dict[str, Any]]:
        calls.append(dossier_id)
        return [
            {"name": "Tờ khai thay đổi thông tin cư trú", "kind": "original", "pages": [1, 2]},
            {"name": "Giấy tờ chứng minh chỗ ở hợp pháp", "kind": "certified_copy", "pages": [3]},
            {"name": "Văn bản đồng ý cho đăng ký", "kind": "electronic", "pages": []},
        ]

    monkeypatch.setattr(DeskReader, "documents", documents, raising=False)
    flat = await _hand_over_all(desk)
    assert set(calls) == set(desk.filled.complete)
    assert "1. Tờ khai thay đổi thông tin cư trú (bản chính, tr. 1-2)" in flat
    assert "2. Giấy tờ chứng minh chỗ ở hợp pháp (bản sao có chứng thực, tr. 3)" in flat
    assert "3. Văn bản đồng ý cho đăng ký (bản điện tử)" in flat


async def test_the_list_names_the_catalogue_s_documents_before_pages_are_tagged(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DeskReader.documents: what the catalogue asks, originals and copies."""
    from edge import catalogue

    monkeypatch.delattr(DeskReader, "documents", raising=False)
    flat = await _hand_over_all(desk)
    cat = catalogue.load(desk.state)
    store = Store.open(desk.state)
    try:
        procedures = {store.dossier(d)["procedure_code"] for d in desk.filled.complete}
    finally:
        store.close()
    listed = [cat.get(code) for code in procedures if code]
    papers = [d for p in listed if p is not None for d in p.documents]
    assert papers
    for paper in papers:
        counts = []
        if paper.originals:
            counts.append(f"{paper.originals} bản chính")
        if paper.copies:
            counts.append(f"{paper.copies} bản sao")
        assert f"{paper.name} ({', '.join(counts)})" in flat, paper.name


# -- snapshots: the dialog in Vietnamese at 80×24, in truecolor and on the box's console -----


def _fee_dialog(desk: Desk) -> Callable[[Pilot[None]], Any]:
    target = desk.filled.waiting[0]
    with_procedure(desk, target)

    async def run(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        await open_fees(pilot, target, [])
        await pilot.pause(0.2)

    return run


@pytest.mark.parametrize("console", [False, True], ids=["truecolor", "box_console"])
def test_fee_dialog_snapshot(
    snap_compare, desk: Desk, console: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if console:
        use_box_console(monkeypatch)
    run_before = _fee_dialog(desk)
    app = make_app(desk, console=console)
    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        app.office.store.close()


async def test_f6_on_the_dossier_screen_opens_the_fee_and_says_what_was_settled(
    desk: Desk,
) -> None:
    """The clerk reaches the fee from the dossier itself, where the citizen's papers are."""
    from edge.tui.screens.dossier import DossierScreen

    target = desk.filled.waiting[0]
    with_procedure(desk, target)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(target)
        await wait_until(pilot, lambda: isinstance(app.screen, DossierScreen))
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, FeeDialog))
        assert app.screen.query_one("#amount", Input).value == "20.000"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, FileWrittenDialog))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DossierScreen))
        said = str(app.screen.query_one(StatusLine).render())
        assert said.startswith("Đã thu 20.000 đồng, biên lai số"), said
    app.office.close()
