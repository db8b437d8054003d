"""Covers capture could not confirm, and ID cards among the pages, as the clerk meets them.

Issue 10: a page with a receipt-like symbol the box could not confirm opens a dossier
marked ``needs_review``. The clerk sees those first, reads what capture saw (texts from
paper, so hostile: shown literally, personal ones hidden until asked), and settles each
with two keys: N Enter ("a new dossier", code prefilled) or B Enter ("same as before").
"""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import Input, Static

from edge import samples
from edge.records import WAITING_DETAILS
from edge.store import Store
from edge.tui.app import EdgeApp
from edge.tui.screens.dialogs import ConfirmDialog
from edge.tui.screens.dossier import DossierScreen
from edge.tui.screens.home import HomeScreen
from edge.tui.screens.inbox import InboxScreen
from edge.tui.widgets.dossier_list import DossierList
from edge.tui.widgets.review import ReviewPanel, safe_text
from tests.test_tui_flows import payloads, reader_for, status
from tests.tui_fixtures import (
    MISREAD,
    REVIEW_CODE,
    Desk,
    add_dossier_pages,
    add_review,
    id_card_text,
    make_app,
    page_bytes,
    sign_in,
    wait_until,
)


def review_text(app: EdgeApp) -> str:
    return str(app.screen.query_one("#review-text", Static).render())


def screen_text(app: EdgeApp) -> str:
    """What the terminal shows, as plain text (the snapshot's words, without its colours)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def notified(app: EdgeApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def on_dossier(app: EdgeApp, dossier_id: str) -> bool:
    screen = app.screen
    return (
        isinstance(screen, DossierScreen)
        and screen.dossier_id == dossier_id
        and screen.row is not None
    )


async def open_review(pilot, review_id: str) -> DossierScreen:
    """From home: 2, then Enter on the first row, which is the cover to check."""
    await pilot.press("2")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, InboxScreen))
    listing = pilot.app.screen.query_one(DossierList)
    assert listing.row(0)["id"] == review_id
    await pilot.press("enter")
    await wait_until(pilot, lambda: on_dossier(pilot.app, review_id))
    return pilot.app.screen


# -- seen first ----------------------------------------------------------------------------------


async def test_a_cover_to_check_is_listed_first_with_its_mark_in_words(desk: Desk) -> None:
    review = add_review(desk, follows=desk.filled.waiting[1])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, HomeScreen)
        home = " ".join(screen_text(app).split())
        assert "│ trong đó bìa cần kiểm tra 1 │" in home
        first_step = "Nhấn 2: kiểm tra 1 bìa trước (hồ sơ mới, hay cùng hồ sơ trước)."
        assert f"Việc cần làm • {first_step}" in home
        await pilot.press("2")
        await pilot.pause()
        listing = app.screen.query_one(DossierList)
        first = listing.row(0)
        # newest of all, yet first: the queue is worked from its head
        assert first["id"] == review
        assert listing.row(1)["received_at"] < first["received_at"]
        line = listing.render_line(1).text
        assert "⚠ Cần kiểm tra bìa" in line
        assert [listing.row(i)["needs_review"] for i in range(listing.total)].count(1) == 1
        title = str(app.screen.query_one("#title").render())
        assert title.endswith("· 1 bìa cần kiểm tra trước")
        await pilot.press("t")  # every dossier: newest first, the mark stays
        await pilot.pause()
        assert "⚠ Cần kiểm tra bìa" in listing.render_line(1).text
    app.office.close()


async def test_english_names_the_cover_to_check(desk: Desk) -> None:
    add_review(desk, follows=desk.filled.waiting[1])
    app = make_app(desk, lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert "of which covers to check" in screen_text(app)
        await pilot.press("2")
        await pilot.pause()
        assert "⚠ Check cover" in app.screen.query_one(DossierList).render_line(1).text
        await pilot.press("enter")
        await pilot.pause(0.3)
        text = review_text(app)
        assert "The box could not read the receipt on page 1 for sure." in text
        assert "same as before: " in text
    app.office.close()


# -- n Enter: a new dossier ------------------------------------------------------------------


async def test_new_dossier_with_the_prefilled_code_clears_the_review(desk: Desk) -> None:
    review = add_review(desk, follows=desk.filled.waiting[1])
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        screen = await open_review(pilot, review)
        panel = screen.query_one(ReviewPanel)
        assert panel.display and app.focused is panel
        text = review_text(app)
        assert "Máy chưa đọc chắc chắn được phiếu tiếp nhận ở trang 1." in text
        assert f"«{REVIEW_CODE}» hoặc «{MISREAD}»" in text
        assert "Code 128 (chưa xác nhận): «" in text
        # a wrong code keeps the input open, with the one-line reason
        await pilot.press("n")
        await pilot.pause()
        field = screen.query_one("#review-code", Input)
        assert field.value == REVIEW_CODE  # the candidate that is a valid code
        assert app.focused is field
        field.value = MISREAD
        await pilot.press("enter")
        await pilot.pause()
        assert status(app).startswith("Mã hồ sơ không hợp lệ")
        assert app.focused is field and field.has_class("-invalid") and field.value == MISREAD
        # Esc puts the question back; n offers the code again
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is panel and not screen.query_one("#review-new").display
        await pilot.press("n")
        await pilot.pause()
        assert field.value == REVIEW_CODE  # Esc threw the typing away: offered afresh
        field.value = REVIEW_CODE.lower()
        await pilot.press("enter")
        await wait_until(pilot, lambda: on_dossier(app, review) and app.screen is not screen)
        assert not app.screen.query_one(ReviewPanel).display
        assert app.screen.query_one("#code", Input).value == REVIEW_CODE
        assert any(f"Đã kiểm tra bìa: {REVIEW_CODE} là hồ sơ mới." == m for m in notified(app))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, InboxScreen)
        title = app.screen.query_one("#title")
        await wait_until(pilot, lambda: "bìa cần kiểm tra" not in str(title.render()))
    app.office.close()
    store = Store.open(desk.state)
    row = store.dossier(review)
    assert (row["code"], row["status"], row["needs_review"]) == (REVIEW_CODE, WAITING_DETAILS, 0)
    assert store.review_count() == 0
    store.close()
    assert payloads(desk.state, "dossier.reviewed") == [
        {"decision": "new", "code": REVIEW_CODE, "clerk": "lan"}
    ]


async def test_new_dossier_with_a_known_code_opens_that_dossier(desk: Desk) -> None:
    known = desk.filled.waiting[0]
    store = Store.open(desk.state)
    code = store.dossier(known)["code"]
    before = len(store.pages(known))
    store.close()
    review = add_review(
        desk,
        [{"text": code, "symbology": "code128", "code": code, "alternatives": [],
          "why": "unconfirmed", "personal": False}],
        follows=desk.filled.waiting[1],
    )  # fmt: skip
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_review(pilot, review)
        await pilot.press("n", "enter")
        await wait_until(pilot, lambda: on_dossier(app, known))
        assert any(code in m and "đã có trên máy" in m for m in notified(app))
    app.office.close()
    store = Store.open(desk.state)
    assert len(store.pages(known)) == before + 2
    assert store.dossier(review)["status"] == "merged"
    store.close()


# -- b Enter: same as before -------------------------------------------------------------------


async def test_same_as_before_moves_the_pages_to_the_previous_dossier(desk: Desk) -> None:
    previous = desk.filled.waiting[1]
    store = Store.open(desk.state)
    before = [p["id"] for p in store.pages(previous)]
    previous_code = store.dossier(previous)["code"]
    store.close()
    review = add_review(desk, follows=previous, pages=3)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        screen = await open_review(pilot, review)
        assert f"cùng hồ sơ trước: {previous_code}" in review_text(app)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = str(app.screen.query_one(".dialog-title", Static).render())
        assert question == f"Cùng hồ sơ trước: thêm 3 trang vào cuối hồ sơ {previous_code}?"
        await pilot.press("escape")  # changing one's mind changes nothing
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await wait_until(pilot, lambda: on_dossier(app, previous))
        assert not app.screen.query_one(ReviewPanel).display
        assert f"Cùng hồ sơ trước: đã thêm 3 trang vào hồ sơ {previous_code}." in notified(app)
        assert str(app.screen.query_one("#pages-title").render()) == f"{len(before) + 3} trang"
    app.office.close()
    store, reader = reader_for(desk.state)
    pages = store.pages(previous)
    assert [p["id"] for p in pages][: len(before)] == before and len(pages) == len(before) + 3
    assert all(reader.page_bytes(p)[:2] == b"\xff\xd8" for p in pages)
    row = store.dossier(review)
    assert (row["status"], row["merged_into"], row["needs_review"]) == ("merged", previous, 0)
    store.close()


async def test_y_answers_the_same_as_before_question(desk: Desk) -> None:
    previous = desk.filled.waiting[1]
    review = add_review(desk, follows=previous, pages=1)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await open_review(pilot, review)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: on_dossier(app, previous))
    app.office.close()
    assert payloads(desk.state, "dossier.reviewed")[0]["decision"] == "previous"


async def test_same_as_before_without_a_dossier_before_says_what_to_do(desk: Desk) -> None:
    review = add_review(desk, follows=None)
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        screen = await open_review(pilot, review)
        assert "không có hồ sơ nào trước nó" in review_text(app)
        await pilot.press("b")
        await pilot.pause()
        assert app.screen is screen
        assert status(app).startswith("Trong lượt quét không có hồ sơ nào trước hồ sơ này.")
    app.office.close()


# -- what capture read is shown, never obeyed ---------------------------------------------------


HOSTILE = ["[reverse]x[/]", "[@click=app.quit]q", "a\x1b[2Jb\u202eevil"]


async def test_candidate_texts_are_shown_literally_and_do_nothing(desk: Desk) -> None:
    secret = "https://dichvucong.hanoi.gov.vn/tra-cuu?SGT=001203012345&MHS=XX-1"
    review = add_review(
        desk,
        [
            *(
                {"text": t, "symbology": "code128", "code": None, "alternatives": [],
                 "why": "no_pattern", "personal": False}
                for t in HOSTILE[:2]
            ),
            {"text": secret, "symbology": "qr", "code": None, "alternatives": [],
             "why": "no_pattern", "personal": True},
        ],
        follows=desk.filled.waiting[1],
    )  # fmt: skip
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        screen = await open_review(pilot, review)
        text = review_text(app)
        assert "«[reverse]x[/]»" in text and "«[@click=app.quit]q»" in text
        # the personal one is hidden until asked, and nothing is offered from it
        assert "001203012345" not in text
        assert "QR (không đúng dạng mã): đã ẩn vì là dữ liệu cá nhân (nhấn v để xem)" in text
        panel = screen.query_one(ReviewPanel)
        text_widget = screen.query_one("#review-text", Static)
        for row in range(1, 4):
            for column in range(2, 76, 2):
                await pilot.click(text_widget, offset=(column, row))
        await pilot.pause()
        assert app.is_running and app.screen is screen
        app.screen.set_focus(panel)
        await pilot.press("v")
        await pilot.pause()
        assert secret[:50] in review_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert screen.query_one("#review-code", Input).value == ""
    app.office.close()
    viewed = payloads(desk.state, "audit.viewed")
    assert {"clerk": "lan", "what": ["symbols"]} in viewed


def test_control_and_bidi_characters_are_made_visible_and_long_texts_cut() -> None:
    shown = safe_text(HOSTILE[2])
    assert "\x1b" not in shown and "\u202e" not in shown
    assert shown == "a\\x1b[2Jb\\u202eevil"
    assert safe_text("x" * 500, 20) == "x" * 19 + "…"


# -- an ID card among the pages --------------------------------------------------------------


async def test_the_id_card_on_a_page_fills_the_form_with_one_key(desk: Desk) -> None:
    person = samples.sample_people(1, 4242)[0]
    code = samples.sample_codes(1, 4242)[0]
    card = [{"text": id_card_text(person), "symbology": "qr", "kind": "cccd"}]
    dossier = add_dossier_pages(
        desk,
        code,
        [
            (page_bytes(samples.cover_page(code, 5, 100)), []),
            (page_bytes(samples.text_page(6, 100)), card),
        ],
    )
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(dossier)
        await wait_until(pilot, lambda: on_dossier(app, dossier))
        screen = app.screen
        hint = str(screen.query_one("#id-card", Static).render())
        born = person.birth_date.strftime("%d/%m/%Y")
        assert f"Từ CCCD ở trang 2: {person.full_name}, {person.cccd}, sinh ngày {born}" in hint
        assert "Kiểm tra lại thẻ" not in hint
        # the form starts on the name (issue 12): the procedure only takes a choice
        assert app.focused is screen.query_one("#full_name", Input)
        await pilot.press("f3")
        await pilot.pause()
        filled = ("full_name", "cccd", "birth_year", "address")
        values = {n: screen.query_one(f"#{n}", Input).value for n in filled}
        assert values == {
            "full_name": person.full_name,
            "cccd": person.cccd,
            "birth_year": str(person.birth_date.year),
            "address": person.address,
        }
        assert status(app).startswith("Đã điền từ CCCD.")
        # the clerk can still edit; nothing is saved until Ctrl+S
        store, reader = reader_for(desk.state)
        assert reader.fields(dossier) == {}
        store.close()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert status(app) == "Đã lưu."
    app.office.close()
    store, reader = reader_for(desk.state)
    fields = reader.fields(dossier)
    store.close()
    assert (fields["full_name"], fields["cccd"]) == (person.full_name, person.cccd)
    # the permanent address is sealed with the other details, never in plaintext
    assert fields["address"] == person.address
    stored = [p.read_bytes() for p in desk.state.glob("edge.db*")]
    assert stored and not any(person.address.encode() in data for data in stored)


async def test_an_odd_id_card_is_offered_with_its_warnings_in_words(desk: Desk) -> None:
    person = samples.sample_people(1, 4243)[0]
    number = "999" + person.cccd[3:]  # no province has code 999
    card = [{"text": id_card_text(person, number=number), "symbology": "qr", "kind": "cccd"}]
    code = samples.sample_codes(1, 4243)[0]
    dossier = add_dossier_pages(desk, code, [(page_bytes(samples.text_page(7, 100)), card)])
    app = make_app(desk, lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(dossier)
        await wait_until(pilot, lambda: on_dossier(app, dossier))
        hint = str(app.screen.query_one("#id-card", Static).render())
        assert f"From the ID card on page 1: {person.full_name}, {number}, born" in hint
        assert "Check the card: the first 3 digits are not a province code." in hint
    app.office.close()


async def test_no_id_card_no_suggestion(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.open_dossier(desk.filled.waiting[0])
        await wait_until(pilot, lambda: on_dossier(app, desk.filled.waiting[0]))
        assert not app.screen.query_one("#id-card").display
        assert not app.screen.query_one(ReviewPanel).display
        keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
        assert "f3" not in keys and "n" not in keys and "b" not in keys
    app.office.close()


def test_two_codes_on_one_cover_are_both_shown_and_the_first_is_offered() -> None:
    from edge.domain import CodePatterns
    from edge.tui.widgets.review import Review, best_code, candidates, review_text

    other = "000.00.01.H29-240115-0001"
    found = candidates(
        {
            "needs_review": True,
            "review": [
                {"text": c, "symbology": "", "code": c, "alternatives": [], "why": "two_codes",
                 "personal": False}
                for c in (REVIEW_CODE, other)
            ],
        }
    )  # fmt: skip
    best = best_code(found, CodePatterns.default())
    assert best == REVIEW_CODE
    text = review_text(
        Review(tuple(found), 1, None, has_previous=True, best=best), revealed=False
    ).plain
    assert f"• hai mã trên một trang: «{REVIEW_CODE}»" in text
    assert f"• hai mã trên một trang: «{other}»" in text
    assert "cùng hồ sơ trước: (chưa có mã)" in text


def test_a_personal_text_is_never_offered_as_the_code() -> None:
    from edge.domain import CodePatterns
    from edge.tui.widgets.review import best_code, candidates

    found = candidates(
        {"review": [{"text": REVIEW_CODE, "symbology": "qr", "code": None, "alternatives": [],
                     "why": "no_pattern", "personal": True}]}
    )  # fmt: skip
    assert best_code(found, CodePatterns.default()) == ""
    assert candidates({"review": "not a list"}) == [] and candidates(None) == []
