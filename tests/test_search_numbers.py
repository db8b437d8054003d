"""Search by part of a CCCD or phone number and by any written form of a phone (issue 12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import records, text
from edge.desk import MERGED, DeskLedger, DeskReader, clean_details
from edge.desk.search import INDEX_REBUILDING, NUMBER_TOO_SHORT
from edge.provision import provision
from edge.records import Ledger, Reader, index_terms, number_tokens
from edge.store import MIGRATIONS, Store
from edge.vault import Keyring, OfficeSession
from tests.conftest import PASSWORD

TODAY = date(2026, 11, 27)
CODE = "000.00.01.H29-240115-{:04d}"

PEOPLE = [
    ("Nguyễn Văn Đức", "036085012345", "0912345678"),
    ("Trần Thị Ánh", "001190023456", "+84 983 112 233"),
    ("Lê Văn Bình", "036085099999", "0987.654.321"),
    ("Phạm Thị Hà", "079301445566", "84355667788"),
]


@pytest.fixture
def office(state: Path) -> Iterator[tuple[Store, DeskLedger, DeskReader]]:
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    yield store, DeskLedger(store, keyring.sealer(), session), DeskReader(store, session)
    session.close()
    store.close()


def add_person(ledger: Ledger, number: int, name: str, cccd: str, phone: str) -> str:
    with ledger.store.transaction():
        dossier_id = ledger.create_dossier(CODE.format(number))
    assert isinstance(ledger, DeskLedger)
    raw = {"full_name": name, "cccd": cccd, "phone": phone}
    ledger.save_details(dossier_id, clean_details(raw, today=TODAY))
    return dossier_id


@pytest.fixture
def people(office: tuple[Store, DeskLedger, DeskReader]) -> dict[str, str]:
    _store, ledger, _reader = office
    return {
        name: add_person(ledger, n, name, cccd, phone)
        for n, (name, cccd, phone) in enumerate(PEOPLE, 1)
    }


def names(reader: DeskReader, query: str) -> list[str]:
    return sorted(f.name for f in reader.find(query).rows)


# -- written forms -------------------------------------------------------------------------------

_SEPARATORS = st.sampled_from([" ", ".", "-", "", "  ", " - "])


@st.composite
def written_phone(draw: st.DrawFn) -> tuple[str, str]:
    """A national number and one way a citizen or clerk may write it."""
    first = draw(st.sampled_from("2357890"))
    rest = draw(st.text("0123456789", min_size=9 if first == "2" else 8, max_size=9))
    subscriber = first + rest if first != "0" else "9" + rest[:8]
    prefix = draw(st.sampled_from(["0", "+84", "84", "0084", "+84 (0)", "(+84) ", "+84-", ""]))
    if prefix == "84" and len(subscriber) not in (9, 10):
        prefix = "0"
    cuts = sorted(draw(st.sets(st.integers(1, len(subscriber) - 1), max_size=4)))
    groups = [subscriber[a:b] for a, b in zip([0, *cuts], [*cuts, len(subscriber)], strict=True)]
    body = ""
    for group in groups:
        body += (draw(_SEPARATORS) if body else "") + group
    space = draw(st.sampled_from(["", " "]))
    return "0" + subscriber, prefix + space + body


@given(written_phone())
def test_every_written_form_of_a_phone_is_one_number(case: tuple[str, str]) -> None:
    national, written = case
    assert text.phone_digits(written) == national
    assert text.phone_digits(national) == national
    assert number_tokens("phone", written) == number_tokens("phone", national)


@given(written_phone())
def test_full_width_digits_are_the_same_number(case: tuple[str, str]) -> None:
    national, written = case
    wide = written.translate({ord(d): chr(0xFF10 + int(d)) for d in "0123456789"})
    assert text.phone_digits(wide) == national


@given(
    st.text("0123456789", min_size=12, max_size=12),
    st.lists(_SEPARATORS, min_size=11, max_size=11),
)
def test_a_cccd_written_in_groups_is_its_digits(cccd: str, separators: list[str]) -> None:
    written = cccd[0] + "".join(s + d for s, d in zip(separators, cccd[1:], strict=True))
    assert text.number_digits(written) == cccd
    assert number_tokens("cccd", written) == number_tokens("cccd", cccd)


def test_foreign_and_partial_numbers_stay_apart() -> None:
    assert text.phone_digits("+1 555 123 4567") == "0015551234567"
    assert text.phone_digits("345 678") == "345678"
    assert text.phone_digits("+84 24 3812 3456") == "02438123456"
    assert text.phone_digits("") == ""


def test_terms_per_number_are_bounded() -> None:
    cccd = number_tokens("cccd", "036085012345")
    assert cccd["cccd"] == ["036085012345"]
    assert cccd["cccd-end"] == [
        "2345", "12345", "012345", "5012345", "85012345", "085012345", "6085012345", "36085012345",
    ]  # fmt: skip
    assert cccd["cccd-start"][0] == "036085" and len(cccd["cccd-start"]) == 6
    phone = number_tokens("phone", "0912 345 678")
    assert phone == {
        "phone": ["0912345678"],
        "phone-end": ["5678", "45678", "345678", "2345678", "12345678", "912345678"],
    }
    pasted = number_tokens("cccd", "1" * 400)
    assert sum(len(v) for v in pasted.values()) <= 1 + 2 * records.NUMBER_PART_MAX


# -- through the store ---------------------------------------------------------------------------


def test_part_of_a_cccd_finds_its_dossier(office, people) -> None:
    _store, _ledger, reader = office
    assert names(reader, "2345") == ["Nguyễn Văn Đức"]
    assert names(reader, "012345") == ["Nguyễn Văn Đức"]
    assert names(reader, "5012345") == ["Nguyễn Văn Đức"]
    assert names(reader, "036085") == ["Lê Văn Bình", "Nguyễn Văn Đức"]
    assert names(reader, "036 085 012") == ["Nguyễn Văn Đức"]
    assert names(reader, "036085012345") == ["Nguyễn Văn Đức"]
    assert names(reader, "036.085.012.345") == ["Nguyễn Văn Đức"]
    assert names(reader, "8501") == []  # from the middle: not what a clerk types


def test_part_and_any_form_of_a_phone_finds_its_dossier(office, people) -> None:
    _store, _ledger, reader = office
    for query in (
        "5678",
        "345 678",
        "0912345678",
        "0912.345.678",
        "0912-345-678",
        "+84 912 345 678",
        "+84912345678",
        "(+84) 912 345 678",
        "+84 (0) 912 345 678",
        "84912345678",
        "912345678",
    ):
        assert names(reader, query) == ["Nguyễn Văn Đức"], query
    for query in ("0983112233", "0983 112 233", "2233", "84983112233"):
        assert names(reader, query) == ["Trần Thị Ánh"], query
    assert names(reader, "+84 355 667 788") == ["Phạm Thị Hà"]  # typed as 84355667788
    assert names(reader, "654.321") == ["Lê Văn Bình"]


def test_a_short_number_gives_a_hint_and_codes_still_match(office, people) -> None:
    _store, _ledger, reader = office
    short = reader.find("345")
    assert short.hint == NUMBER_TOO_SHORT and short.rows == []
    code = reader.find("02")
    assert code.hint == NUMBER_TOO_SHORT
    assert [f.name for f in code.rows] == ["Trần Thị Ánh"]  # ...-0002
    assert reader.find("5678").hint is None
    assert reader.find("nguyen").hint is None
    assert [f.name for f in reader.find("240115-0003").rows] == ["Lê Văn Bình"]
    assert [f.name for f in reader.find("H29-240115-0004").rows] == ["Phạm Thị Hà"]


def test_partial_terms_are_blind(office, people, state: Path) -> None:
    store, _ledger, _reader = office
    terms = [r[0] for r in store.conn.execute("SELECT term FROM blind_index")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in terms)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = b"".join(p.read_bytes() for p in state.glob("edge.db*"))
    for _name, cccd, phone in PEOPLE:
        national = text.phone_digits(phone)
        for needle in (cccd, cccd[:7], cccd[-7:], national, national[-7:], phone):
            assert needle.encode() not in data, needle


def test_rows_per_dossier_before_and_after(office, people) -> None:
    """Whole numbers only were 2 rows; parts add 14 for a CCCD and 6 for a mobile number."""
    store, _ledger, reader = office
    dossier = people["Nguyễn Văn Đức"]
    rows = store.conn.execute("SELECT COUNT(*) FROM blind_index WHERE dossier_id=?", (dossier,))
    name = len(text.prefix_tokens("Nguyễn Văn Đức"))
    assert rows.fetchone()[0] == name + 15 + 7
    assert reader.session.blind_terms(["2345"], "cccd-end")[0] in index_terms(
        reader.session, {"cccd": "036085012345"}
    )


def test_a_merged_dossier_stays_out_of_search(office, people) -> None:
    store, ledger, reader = office
    source = people["Lê Văn Bình"]
    ledger.merge(source, people["Nguyễn Văn Đức"])
    assert store.dossier(source)["status"] == MERGED
    assert names(reader, "654321") == []


# -- a store indexed by the release before -------------------------------------------------------


def _old_terms(session: OfficeSession, clean: dict[str, str]) -> list[str]:
    """The terms ``Ledger.set_fields`` wrote before issue 12: whole digits only."""
    terms: set[str] = set()
    name = " ".join(clean.get(k, "") for k in ("family", "middle", "given")).strip()
    name = name or clean.get("full_name", "")
    terms.update(session.blind_terms(text.prefix_tokens(name), "name"))
    for field_name in ("cccd", "phone"):
        value = "".join(ch for ch in clean.get(field_name, "") if ch.isdigit())
        if value:
            terms.update(session.blind_terms([value], field_name))
    return sorted(terms)


@pytest.fixture
def old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A box at schema 9 whose dossiers were indexed the old way, one of them merged."""
    monkeypatch.setattr("edge.store.MIGRATIONS", MIGRATIONS[:9])
    state = tmp_path / "state"
    provision(state, office="H29.01", clerk="lan", password=PASSWORD)
    store = Store.open(state)
    assert store.schema_version == 9
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    ledger = Ledger(store, keyring.sealer())
    ids: dict[str, str] = {}
    for n, (name, cccd, phone) in enumerate(PEOPLE, 1):
        fields = {"full_name": name, "cccd": cccd, "phone": phone}
        with store.transaction():
            dossier_id = ledger.create_dossier(CODE.format(n))
            ledger.set_fields(session, dossier_id, fields)
            stored = Reader(store, session).fields(dossier_id)
            store.replace_blind_terms(dossier_id, _old_terms(session, stored))
        ids[name] = dossier_id
    with store.transaction():
        store.update_dossier(ids["Lê Văn Bình"], status=MERGED)
        store.replace_blind_terms(ids["Lê Văn Bình"], ())
    session.close()
    store.close()
    monkeypatch.undo()
    ids["state"] = str(state)
    return ids


def test_an_old_store_is_reindexed_at_first_search(old_state: dict[str, str]) -> None:
    state = Path(old_state["state"])
    store = Store.open(state)
    assert store.schema_version == len(MIGRATIONS)
    assert store.search_reindex_cursor() == ""
    rows_before = store.count("blind_index")
    session = Keyring.load(state).unlock("lan", PASSWORD)
    reader = DeskReader(store, session)
    assert names(reader, "2345") == ["Nguyễn Văn Đức"]
    assert store.search_reindex_cursor() is None
    assert names(reader, "+84 355 667 788") == ["Phạm Thị Hà"]
    assert names(reader, "nguyen van duc") == ["Nguyễn Văn Đức"]
    assert names(reader, "654321") == []  # merged: still no terms
    merged = old_state["Lê Văn Bình"]
    assert (
        store.conn.execute(
            "SELECT COUNT(*) FROM blind_index WHERE dossier_id=?", (merged,)
        ).fetchone()[0]
        == 0
    )
    assert store.count("blind_index") == rows_before + 3 * 20
    assert DeskReader(store, session).reindex() == 0
    session.close()
    store.close()


def test_a_cut_reindex_resumes(old_state: dict[str, str], monkeypatch) -> None:
    state = Path(old_state["state"])
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    calls = 0
    real = records.index_terms

    def cut_after_one(session: OfficeSession, fields: dict[str, str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise KeyboardInterrupt  # a power cut, as far as the transaction sees
        return real(session, fields)

    monkeypatch.setattr("edge.desk.search.index_terms", cut_after_one)
    with pytest.raises(KeyboardInterrupt):
        DeskReader(store, session).reindex(batch=1)
    first = old_state["Nguyễn Văn Đức"]
    assert store.search_reindex_cursor() == first
    monkeypatch.undo()
    assert DeskReader(store, session).reindex(batch=1) == 3
    assert store.search_reindex_cursor() is None
    assert names(DeskReader(store, session), "2233") == ["Trần Thị Ánh"]
    session.close()
    store.close()


def test_a_large_old_store_answers_while_it_is_rebuilt(
    old_state: dict[str, str], monkeypatch
) -> None:
    """A search never waits for the whole rebuild; it says numbers may be missed meanwhile."""
    monkeypatch.setattr("edge.desk.search.FIND_REINDEX_BUDGET_S", 0.0)
    state = Path(old_state["state"])
    store = Store.open(state)
    session = Keyring.load(state).unlock("lan", PASSWORD)
    reader = DeskReader(store, session)
    whole = reader.find("036085012345")
    assert [f.name for f in whole.rows] == ["Nguyễn Văn Đức"]  # the old whole-number term
    assert whole.hint == INDEX_REBUILDING
    assert reader.find("nguyen").hint is None
    assert reader.find("2345").rows == []
    assert reader.reindex(batch=1, budget_s=0.0) == 0
    assert reader.reindex(batch=2, budget_s=60) == 4
    assert not reader.reindex_pending
    assert names(reader, "2345") == ["Nguyễn Văn Đức"]
    assert reader.find("2345").hint is None
    session.close()
    store.close()


def test_a_dossier_that_cannot_be_opened_keeps_its_terms(old_state: dict[str, str]) -> None:
    state = Path(old_state["state"])
    store = Store.open(state)
    damaged = old_state["Trần Thị Ánh"]
    sealed = bytearray(store.dossier(damaged)["fields"])
    sealed[-1] ^= 1
    with store.transaction():
        store.update_dossier(damaged, fields=bytes(sealed))
    before = store.conn.execute(
        "SELECT term FROM blind_index WHERE dossier_id=? ORDER BY term", (damaged,)
    ).fetchall()
    session = Keyring.load(state).unlock("lan", PASSWORD)
    reader = DeskReader(store, session)
    assert reader.reindex() == 4 and not reader.reindex_pending
    after = store.conn.execute(
        "SELECT term FROM blind_index WHERE dossier_id=? ORDER BY term", (damaged,)
    ).fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert names(reader, "2345") == ["Nguyễn Văn Đức"]
    session.close()
    store.close()


def test_a_new_store_needs_no_reindex(state: Path) -> None:
    store = Store.open(state)
    assert store.search_reindex_cursor() is None
    store.close()
