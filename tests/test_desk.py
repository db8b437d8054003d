"""The clerk's desk operations (edge/desk.py) without the UI: rules, sealing, events."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from edge import samples
from edge.clock import Clock
from edge.desk import (
    MERGED,
    DeskError,
    DeskLedger,
    DeskReader,
    LoginGuard,
    LoginPolicy,
    check_details,
    clean_details,
    missing_fields,
    parse_date,
)
from edge.domain import CodePatterns
from edge.records import COMPLETE, UNASSIGNED, Ledger
from edge.store import Store
from edge.tui.demo_office import tiny_page
from edge.vault import Keyring, VaultError, page_ad
from tests.conftest import PASSWORD

TODAY = date(2026, 11, 27)


@pytest.fixture
def office(state: Path):
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    yield store, DeskLedger(store, keyring.sealer(), session), DeskReader(store, session)
    session.close()
    store.close()


def add_dossier(ledger: Ledger, code: str | None, pages: int = 2) -> str:
    with ledger.store.transaction():
        dossier_id = ledger.create_dossier(code)
    add_pages(ledger, dossier_id, pages, symbols=[{"text": "X", "symbology": "qr"}])
    return dossier_id


def add_pages(
    ledger: Ledger,
    dossier_id: str,
    count: int,
    *,
    first: int = 0,
    symbols: list[dict[str, str]] | None = None,
) -> None:
    """Small real pages, as capture adds them; ``symbols`` go on the first page only."""
    with ledger.store.transaction():
        for index in range(first, first + count):
            ledger.add_page(
                dossier_id,
                tiny_page(index),
                media_type="image/jpeg",
                sha256=f"{index:064x}",
                source_sha=f"{dossier_id}-{index}".encode().hex()[:64].ljust(64, "0"),
                source_name=f"p{index}.jpg",
                source_index=index,
                width=62,
                height=88,
                dpi=300.0,
                flags=[],
                symbols=(symbols or []) if index == first else [],
            )


def test_login_policy_grows_then_locks() -> None:
    policy = LoginPolicy()
    assert [policy.delay_ms(n) for n in range(1, 6)] == [0, 0, 2000, 4000, 8000]
    assert policy.lockout_duration_ms(1) == 15 * 60_000
    assert policy.lockout_duration_ms(2) == 30 * 60_000
    assert policy.lockout_duration_ms(99) == 24 * 3_600_000


def test_guard_counts_failures_in_the_database(state: Path) -> None:
    now = [1_800_000_000_000]
    store = Store.open(state)
    from edge.clock import Clock

    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: now[0])
    guard = LoginGuard(store, Keyring.load(state))
    for _ in range(2):
        with pytest.raises(DeskError) as err:
            guard.sign_in("LAN ", "sai")
        assert err.value.reason == "wrong_password"
    with pytest.raises(DeskError) as err:
        guard.sign_in("lan", "sai")
    assert err.value.details["seconds"] == 2
    with pytest.raises(DeskError) as err:
        guard.sign_in("lan", PASSWORD)
    assert err.value.reason == "wait"
    now[0] += 2_000
    session = guard.sign_in("Lan", PASSWORD)
    assert session.clerk == "lan"
    assert guard.wait_ms("lan") == 0
    store.close()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("cccd", "00119001234", "cccd_length"),
        ("cccd", "003190012345", "cccd_province"),
        ("cccd", "00119O012345", "cccd_digits"),
        ("phone", "12345", "phone_invalid"),
        ("appointment", "31/02/2026", "date_invalid"),
        ("birth_year", "85", "birth_year_invalid"),
        ("procedure", "khai sinh", "procedure_unknown"),
        ("full_name", "12345", "name_invalid"),
    ],
)
def test_details_are_checked_field_by_field(field: str, value: str, reason: str) -> None:
    with pytest.raises(DeskError) as err:
        clean_details({field: value}, today=TODAY)
    assert (err.value.reason, err.value.field) == (reason, field)


def test_details_are_normalised() -> None:
    decomposed = "Nguye\u0302\u0303n Va\u0306n \u0110u\u031b\u0301c"
    details = clean_details(
        {
            "procedure": "1.001193",
            "full_name": f"  {decomposed} ",
            "cccd": "001 090 012 345",
            "birth_year": "1990",
            "phone": "+84 912 345 678",
            "appointment": "1.12.2026",
        },
        today=TODAY,
    )
    assert details.full_name == "Nguyễn Văn Đức"  # NFC, trimmed
    assert details.cccd == "001090012345"
    assert details.phone == "0912345678"
    assert details.appointment == "2026-12-01"
    with pytest.raises(DeskError) as err:
        clean_details({"cccd": "001090012345", "birth_year": "1991"}, today=TODAY)
    assert err.value.reason == "cccd_birth_year"
    assert parse_date("2026-12-01") == date(2026, 12, 1)
    assert parse_date("tomorrow") is None


def test_moved_pages_are_sealed_again_for_their_new_dossier(office) -> None:
    store, ledger, reader = office
    source = add_dossier(ledger, None, pages=2)
    target = add_dossier(ledger, "000.00.01.H29-240115-0001", pages=1)
    before = {p["id"]: reader.page_bytes(p) for p in store.pages(source)}
    old_blobs = {p["blob_id"] for p in store.pages(source)}
    ledger.merge(source, target)
    pages = store.pages(target)
    assert [p["position"] for p in pages] == [1, 2, 3]
    for page in pages[1:]:
        assert reader.page_bytes(page) == before[page["id"]]
        assert page["blob_id"] not in old_blobs
        with pytest.raises(VaultError):  # bound to its new dossier: the old binding fails
            reader.session.open(
                reader.key(page["key_id"]), store.blob(page["blob_id"]), page_ad(source, page["id"])
            )
    assert all(store.blob(b) for b in old_blobs)  # kept for events not yet synced
    assert store.dossier(source)["status"] == MERGED
    assert store.verify_chain() is None


def test_split_then_assign_then_complete(office) -> None:
    store, ledger, reader = office
    patterns = CodePatterns.default()
    first = add_dossier(ledger, "000.00.01.H29-240115-0002", pages=3)
    pages = store.pages(first)
    with pytest.raises(DeskError, match="split_first_page"):
        ledger.split(first, pages[0]["id"])
    second = ledger.split(first, pages[2]["id"])
    assert [p["id"] for p in store.pages(second)] == [pages[2]["id"]]
    assert store.dossier(second)["status"] == UNASSIGNED
    with pytest.raises(DeskError) as err:
        ledger.assign_code(second, "000.00.01.H29-240115-0002", patterns)
    assert err.value.reason == "code_taken"
    assert ledger.assign_code(second, "000.00.01.h29-240115-0003", patterns).endswith("0003")
    with pytest.raises(DeskError) as err:
        ledger.complete(second)
    assert (err.value.reason, err.value.field) == ("missing", "procedure")
    ledger.save_details(
        second,
        clean_details(
            {"procedure": "1.001193", "full_name": "Lê Thị Hà", "cccd": "001190012345"},
            today=TODAY,
        ),
    )
    ledger.complete(second)
    assert store.dossier(second)["status"] == COMPLETE
    with pytest.raises(DeskError, match="already_complete"):
        ledger.save_details(second, clean_details({}, today=TODAY))
    assert reader.details(second)["full_name"] == "Lê Thị Hà"


def test_drafts_are_sealed_and_replaced(office, state: Path) -> None:
    store, ledger, reader = office
    dossier = add_dossier(ledger, None, pages=1)
    events = store.count("events")
    ledger.save_draft(dossier, {"full_name": "Phạm Thị Xuân Quỳnh"})
    ledger.save_draft(dossier, {"full_name": "Phạm Thị Xuân Quỳnh Như"})
    assert store.count("events") == events  # drafts are scratch work, not history
    assert reader.draft(dossier)["values"] == {"full_name": "Phạm Thị Xuân Quỳnh Như"}
    assert "Quỳnh".encode() not in (state / "edge.db").read_bytes()
    ledger.discard_draft(dossier)
    assert reader.draft(dossier) is None


def test_search_orders_by_vietnamese_given_name(office) -> None:
    _store, ledger, reader = office
    names = ["Trần Văn Bình", "Nguyễn Thị Ánh", "Đặng Văn An", "Nguyễn Văn Ân", "Lê Văn Đức"]
    for number, name in enumerate(names, 1):
        dossier = add_dossier(ledger, f"000.00.01.H29-240115-{number:04d}", pages=1)
        ledger.save_details(dossier, clean_details({"full_name": name}, today=TODAY))
    found = reader.find("van")
    assert [f.name for f in found.rows] == [
        "Đặng Văn An",
        "Nguyễn Văn Ân",
        "Trần Văn Bình",
        "Lê Văn Đức",
    ]
    assert [f.name for f in reader.find("le van duc").rows] == ["Lê Văn Đức"]
    assert [f.name for f in reader.find("ANH").rows] == ["Nguyễn Thị Ánh"]
    assert reader.find("H29-240115-0002").rows[0].name == "Nguyễn Thị Ánh"
    limited = reader.find("van", limit=2)
    assert limited.total == 4 and len(limited.rows) == 2 and limited.truncated


def test_quarantine_retry_and_discard(office, tmp_path: Path) -> None:
    import io

    store, ledger, _reader = office
    with store.transaction():
        first = ledger.quarantine(
            name="job/ban-scan.jpg",
            reason="damaged",
            message="damaged",
            sha256="a" * 64,
            size=5,
            stream=io.BytesIO(b"hello"),
        )
        second = ledger.quarantine(name="link.jpg", reason="symlink", message="link")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "ban-scan.jpg").write_bytes(b"other")
    path = ledger.retry_quarantined(first, inbox)
    assert path.name.startswith("lai-") and path.read_bytes() == b"hello"
    with pytest.raises(DeskError, match="quarantine_changed"):
        ledger.retry_quarantined(first, inbox)
    with pytest.raises(DeskError, match="quarantine_no_original"):
        ledger.retry_quarantined(second, inbox)
    ledger.discard_quarantined(second)
    statuses = dict(store.conn.execute("SELECT id, status FROM quarantine").fetchall())
    assert statuses == {first: "retried", second: "discarded"}


def test_list_blocks_read_from_either_end_agree(office) -> None:
    from edge.tui.demo_office import add_history
    from edge.tui.queries import AllSource

    store, _ledger, reader = office
    keyring = Keyring.load(store.path.parent)
    add_history(store, keyring, reader.session, 23, seed=5, batch=10)
    source = AllSource(store)
    total = source.count()
    assert total == 23
    rows = source.rows(0, 100)
    whole = [r["id"] for r in rows]
    times = [r["received_at"] for r in rows]
    assert times == sorted(times, reverse=True)  # newest first
    blocks = [r["id"] for offset in range(0, total, 5) for r in source.rows(offset, 5)]
    assert blocks == whole


def test_the_procedure_catalogue_regional_it_publishes_replaces_the_sample(state: Path) -> None:
    from edge import catalogue

    store = Store.open(state)
    sample = catalogue.load(state, store)
    assert sample.get("1.001193").name == "Đăng ký khai sinh"
    assert [p.code for p in sample.search("dang ky khai sinh")] == ["1.001193", "1.004884"]
    published = {"version": "2026-01", "procedures": [{"code": "2.002165", "name": "Cấp hộ chiếu"}]}
    with store.transaction():
        store.conn.execute(
            "INSERT INTO reference_data(name, data, source, updated) VALUES (?, ?, ?, ?)",
            ("procedures", json.dumps(published), "test", "2026-01-01"),
        )
    updated = catalogue.load(state, store)
    store.close()
    assert updated.version == "2026-01" and updated.codes() == ["2.002165"]


def test_signing_in_wraps_earlier_keys_for_central(tmp_path: Path) -> None:
    """Pages scanned before enrollment become readable by central at the next sign-in."""
    from edge.daemon import Daemon
    from edge.provision import provision
    from edge.tui.office import Office
    from edge.vault import new_recipient_keypair

    state, inbox = tmp_path / "state", tmp_path / "inbox"
    inbox.mkdir()
    provision(state, office="H29.01", clerk="lan", password=PASSWORD)
    samples.write_job(inbox, [samples.DossierSpec(samples.sample_codes(1)[0], 1)], "jpeg", dpi=100)
    daemon = Daemon(state, inbox, {"settle_seconds": 0})
    daemon.run_once()
    daemon.close()
    _private, public = new_recipient_keypair()
    Keyring.load(state).set_central_public(public)
    office = Office(state)
    office.sign_in("lan", PASSWORD)
    missing = office.store.conn.execute(
        "SELECT COUNT(*) FROM data_keys WHERE wrapped_central IS NULL"
    ).fetchone()[0]
    office.close()
    assert missing == 0


def test_retrying_a_quarantined_file_never_writes_through_a_planted_link(
    office, tmp_path: Path
) -> None:
    """Issue 11, item 12: anyone who can write the inbox (an SMB share) could plant a link at
    the partial name the retry used to write, and have it overwrite the file it points to."""
    import io

    store, ledger, _reader = office
    with store.transaction():
        held = ledger.quarantine(
            name="ho-so.jpg",
            reason="damaged",
            message="damaged",
            sha256="b" * 64,
            size=5,
            stream=io.BytesIO(b"scan!"),
        )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    victim = tmp_path / "keyring-copy.json"
    victim.write_bytes(b"secret keys")
    (inbox / "ho-so.jpg.part").symlink_to(victim)
    (inbox / "ho-so.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    path = ledger.retry_quarantined(held, inbox)
    assert victim.read_bytes() == b"secret keys"
    assert not (tmp_path / "elsewhere.jpg").exists()
    assert not path.is_symlink() and path.read_bytes() == b"scan!"
    assert sorted(p.name for p in inbox.iterdir()) == sorted(["ho-so.jpg.part", path.name])


# -- issue 12: what the desk got wrong ----------------------------------------------------------


def _filled(ledger: DeskLedger, code: str) -> str:
    dossier = add_dossier(ledger, code, pages=2)
    ledger.save_details(
        dossier,
        clean_details(
            {"procedure": "1.001193", "full_name": "Lê Thị Hà", "cccd": "001190012345"},
            today=TODAY,
        ),
    )
    return dossier


def test_completion_names_every_missing_field_at_once(office) -> None:
    _store, ledger, _reader = office
    dossier = add_dossier(ledger, "000.00.01.H29-240115-0010", pages=1)
    with pytest.raises(DeskError) as err:
        ledger.complete(dossier)
    assert err.value.reason == "missing"
    assert err.value.field == "procedure"
    assert err.value.details["fields"] == ["procedure", "full_name", "cccd"]


def test_every_problem_of_the_form_is_listed_at_once() -> None:
    details, problems = check_details(
        {"cccd": "123", "phone": "12", "full_name": "Hà", "birth_year": "85"}, today=TODAY
    )
    assert [(p.reason, p.field) for p in problems] == [
        ("birth_year_invalid", "birth_year"),
        ("cccd_length", "cccd"),
        ("phone_invalid", "phone"),
    ]
    assert details.full_name == "Hà"
    assert missing_fields({"code": "X", "full_name": " "}) == ["procedure", "full_name", "cccd"]


def test_an_address_is_kept_on_one_line_and_a_runaway_one_refused() -> None:
    typed = {"address": "  Thôn Đông,\n xã  Hoà Bình,   tỉnh Phú Thọ "}
    assert clean_details(typed, today=TODAY).address == "Thôn Đông, xã Hoà Bình, tỉnh Phú Thọ"
    assert clean_details(typed, today=TODAY).personal()["address"].startswith("Thôn")
    with pytest.raises(DeskError) as err:
        clean_details({"address": "Thôn " * 50}, today=TODAY)
    assert (err.value.reason, err.value.field) == ("address_too_long", "address")


def test_a_year_of_birth_in_the_future_is_not_called_a_digit_problem() -> None:
    with pytest.raises(DeskError) as err:
        clean_details({"birth_year": "2031"}, today=TODAY)
    assert (err.value.reason, err.value.field) == ("birth_year_future", "birth_year")
    with pytest.raises(DeskError) as err:
        clean_details({"birth_year": "1850"}, today=TODAY)
    assert err.value.reason == "birth_year_old"


def test_a_return_date_in_the_past_is_refused_unless_already_saved() -> None:
    with pytest.raises(DeskError) as err:
        clean_details({"appointment": "26/11/2026"}, today=TODAY)
    assert (err.value.reason, err.value.field) == ("date_past", "appointment")
    kept = clean_details({"appointment": "26/11/2026"}, today=TODAY, saved_appointment="2026-11-26")
    assert kept.appointment == "2026-11-26"
    assert clean_details({"appointment": "27/11/2026"}, today=TODAY).appointment == "2026-11-27"


def test_a_completed_dossier_is_reopened_until_its_paper_leaves(office, state: Path) -> None:
    store, ledger, reader = office
    dossier = _filled(ledger, "000.00.01.H29-240115-0011")
    with pytest.raises(DeskError, match="not_complete"):
        ledger.reopen(dossier)
    ledger.complete(dossier)
    ledger.reopen(dossier)
    row = store.dossier(dossier)
    assert (row["status"], row["completed_at"]) == ("waiting_details", None)
    reopened = [e for e in store.events() if e.type == "dossier.reopened"]
    assert len(reopened) == 1 and reader.event_payload(reopened[0])["clerk"] == "lan"
    ledger.save_details(dossier, clean_details({"full_name": "Lê Thị Hà"}, today=TODAY))
    ledger.save_details(
        dossier,
        clean_details(
            {"procedure": "1.001193", "full_name": "Lê Thị Hằng", "cccd": "001190012345"},
            today=TODAY,
        ),
    )
    ledger.complete(dossier)
    ledger.record_handover([dossier], TODAY)
    with pytest.raises(DeskError, match="already_handed_over"):
        ledger.reopen(dossier)
    assert store.verify_chain() is None


def test_split_pages_go_back_into_a_completed_dossier(office) -> None:
    store, ledger, _reader = office
    first = _filled(ledger, "000.00.01.H29-240115-0012")
    add_pages(ledger, first, 1, first=5)
    pages = store.pages(first)
    split_off = ledger.split(first, pages[2]["id"])
    ledger.complete(first)
    ledger.merge(split_off, first)
    assert [p["id"] for p in store.pages(first)] == [p["id"] for p in pages]
    assert store.dossier(first)["status"] == COMPLETE
    assert store.dossier(split_off)["status"] == MERGED


def test_a_merge_into_a_merged_dossier_names_that_dossier(office) -> None:
    _store, ledger, _reader = office
    gone = add_dossier(ledger, "000.00.01.H29-240115-0013", pages=1)
    kept = add_dossier(ledger, "000.00.01.H29-240115-0014", pages=1)
    loose = add_dossier(ledger, None, pages=1)
    ledger.merge(gone, kept)
    with pytest.raises(DeskError) as err:
        ledger.merge(loose, gone)
    assert err.value.reason == "target_merged"
    assert err.value.details["code"] == "000.00.01.H29-240115-0013"


def test_completion_after_a_clock_that_ran_ahead_is_dated_today(office) -> None:
    """The order stamp stays where a wall clock set to 2031 once left it; the completion
    date (on the handover list, at central) is the corrected clock's day."""
    store, ledger, _reader = office
    ahead = int(datetime(2031, 6, 1, tzinfo=UTC).timestamp() * 1000)
    today = int(datetime(2026, 11, 27, 2, 0, tzinfo=UTC).timestamp() * 1000)
    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: ahead)
    dossier = _filled(ledger, "000.00.01.H29-240115-0012")
    store.clock = Clock(store.clock.floor_ms, store.clock.last, wall=lambda: today)
    ledger.complete(dossier)
    assert store.dossier(dossier)["completed_at"].startswith("2026-11-27")
    assert store.clock.last.ms >= ahead  # the log's order is kept
