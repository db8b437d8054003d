"""The procedure catalogue and holiday calendar as signed reference data, and the channel.

Published sets go through the same ``apply`` the signed update client calls once the
metadata verified, into a real store; the downlink's return date through the box's
own downlink handler.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from edge import catalogue
from edge.catalogue import CatalogueError, parse
from edge.desk import DeskLedger, DeskReader, check_details
from edge.desk.details import Details
from edge.domain import Channel
from edge.records import Ledger
from edge.store import Store
from edge.sync import contract as c
from edge.sync import downlink
from edge.update.apply import Content, apply
from edge.vault import Keyring
from tests.conftest import PASSWORD

SAMPLE = catalogue.load()
TODAY = date(2026, 11, 27)


def publish(state: Path, sets: dict[str, Any]) -> None:
    """What a verified signed update does with a reference.json carrying ``sets``."""
    store = Store.open(state)
    try:
        ledger = Ledger(store, Keyring.load(state).sealer())
        content = Content(
            references=[("fleet/reference.json", {"sets": sets})],
            hashes={"fleet/reference.json": json.dumps(sets, sort_keys=True)},
        )
        apply(store, ledger, content, keyring=Keyring.load(state), metadata={}, signed_at_ms=None)
    finally:
        store.close()


def loaded(state: Path) -> catalogue.Catalogue:
    store = Store.open(state)
    try:
        return catalogue.load(state, store)
    finally:
        store.close()


# -- the shipped sample ---------------------------------------------------------------------


def test_the_sample_carries_the_corrections_of_issue_12() -> None:
    residence = SAMPLE.get("1.004222")
    assert residence is not None and residence.name == "Đăng ký thường trú"
    assert residence.agency == "Công an cấp xã" and residence.receipt_form == "CT04"
    assert residence.documents[0].form == "CT01"
    assert SAMPLE.get("2.001218") is None
    guardian = SAMPLE.get("1.004837")
    assert guardian is not None and guardian.name == "Đăng ký giám hộ"
    copy, signature = SAMPLE.get("2.000815"), SAMPLE.get("2.000884")
    assert copy is not None and copy.name.startswith("Chứng thực bản sao từ bản chính")
    assert signature is not None and signature.name.startswith("Chứng thực chữ ký")
    birth = SAMPLE.get("1.001193")
    assert birth is not None and birth.time is not None and birth.time.unit == "same_day"
    assert birth.fee is not None and birth.fee.total == 0


def test_every_shipped_procedure_says_its_agency_time_and_papers() -> None:
    assert SAMPLE.source == "sample" and not SAMPLE.problem
    for procedure in SAMPLE.procedures:
        assert procedure.agency in ("UBND cấp xã", "Công an cấp xã"), procedure.code
        assert procedure.time is not None, procedure.code
        assert procedure.documents, procedure.code
        assert all(d.originals + d.copies for d in procedure.documents), procedure.code


@pytest.mark.parametrize(
    "code", ["1.004222", "1.004222.000.00.00.H38", "1.004222.h38", " 1.004222 "]
)
def test_a_code_matches_with_or_without_the_portals_suffix(code: str) -> None:
    found = SAMPLE.get(code)
    assert found is not None and found.code == "1.004222"


@pytest.mark.parametrize("code", ["1.0042221", "1.00422", "", "2.004222"])
def test_other_codes_do_not_match(code: str) -> None:
    assert SAMPLE.get(code) is None


def test_time_and_fee_follow_the_channel() -> None:
    residence = SAMPLE.get("1.004222")
    assert residence is not None
    direct, online = residence.fee_for(Channel.TRUC_TIEP), residence.fee_for(Channel.TRUC_TUYEN)
    assert direct is not None and direct.charge == 20_000
    assert online is not None and online.charge == 10_000
    assert residence.fee_for(Channel.BUU_CHINH_CONG_ICH) == direct
    assert residence.time_for(Channel.TRUC_TUYEN) == residence.time


def test_search_ignores_accents() -> None:
    assert [p.code for p in SAMPLE.search("dang ky khai sinh")] == ["1.001193", "1.004884"]
    assert [p.code for p in SAMPLE.search("thuong tru")] == ["1.004222"]


# -- checking every field -------------------------------------------------------------------

GOOD = {"code": "1.001193", "name": "Đăng ký khai sinh"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Không mã"}, r"entry 1: code is missing"),
        ({**GOOD, "code": "1.0011"}, r"entry 1 \(1.0011\): code must look like"),
        ({**GOOD, "name": ""}, r"\(1.001193\): name is missing"),
        ({**GOOD, "time": {"unit": "days", "value": 0}}, r"\(1.001193\): time: days must be"),
        ({**GOOD, "time": {"unit": "days", "value": 3}, "days": 3}, "not both"),
        ({**GOOD, "fee": {"charge": -1}}, r"fee: charge must be a whole number"),
        ({**GOOD, "fee": {"charge": "20.000"}}, r"fee: charge must be a whole number"),
        ({**GOOD, "fee": {"vnd": 0}}, r"fee: unknown keys vnd"),
        ({**GOOD, "documents": [{"originals": 1}]}, r"document 1: name is missing"),
        ({**GOOD, "documents": [{"name": "Tờ khai", "copies": 99}]}, r"document 1: copies"),
        ({**GOOD, "documents": "Tờ khai"}, "documents must be a list"),
        ({**GOOD, "channels": {"4": {"fee": {"charge": 0}}}}, "channel '4' is not 1, 2 or 3"),
        ({**GOOD, "channels": {"2": {}}}, "channel 2 must give"),
        ({**GOOD, "channels": {"2": {"time": {"unit": "x"}}}}, "channels.2.time: unit"),
        ({**GOOD, "agency": "UBND\x1b[31m cấp xã"}, "agency must be one line"),
        ({**GOOD, "name": "Khai sinh\x9b2J"}, "name must be one line"),  # C1 CSI
        ({**GOOD, "agency": 5}, "agency must be text"),
        ({**GOOD, "fees": {}}, "unknown keys fees"),
        ("1.001193", r"procedures entry 1 must be an object"),
    ],
)
def test_a_bad_entry_is_refused_in_one_line_naming_it(entry: object, message: str) -> None:
    with pytest.raises(CatalogueError, match=message) as caught:
        parse({"procedures": [entry]})
    assert "\n" not in str(caught.value)


def test_a_catalogue_that_lists_a_code_twice_is_refused() -> None:
    twice = [GOOD, {"code": "1.001193.000.00.00.H38", "name": "Khai sinh"}]
    with pytest.raises(CatalogueError, match=r"entry 2 .*listed twice"):
        parse({"procedures": twice})


def test_a_catalogue_from_a_newer_schema_is_refused() -> None:
    with pytest.raises(CatalogueError, match="newer release"):
        parse({"schema": 2, "procedures": [GOOD]})


def test_the_older_format_with_days_still_loads() -> None:
    _version, (procedure,) = parse([{**GOOD, "field": "Hộ tịch", "days": 1}])
    assert procedure.time is not None and (procedure.time.unit, procedure.time.value) == ("days", 1)
    assert procedure.fee is None  # not said is not free
    _version, (untimed,) = parse([{**GOOD, "days": 0}])
    assert untimed.time is None


# -- published through signed configuration ----------------------------------------------


def test_a_published_catalogue_replaces_the_sample(state: Path) -> None:
    entry = {
        "code": "2.002165",
        "name": "Cấp hộ chiếu phổ thông",
        "agency": "Công an cấp tỉnh",
        "time": {"unit": "days", "value": 8},
        "fee": {"charge": 200_000, "basis": "sample"},
        "documents": [{"name": "Tờ khai", "form": "TK01", "originals": 1}],
    }
    publish(state, {"procedures": {"version": "2026-12", "procedures": [entry]}})
    updated = loaded(state)
    assert updated.source == "published" and updated.version == "2026-12"
    assert updated.codes() == ["2.002165"] and not updated.problem


def test_a_bad_published_catalogue_keeps_the_counter_working(state: Path) -> None:
    bad = {"procedures": [GOOD, {"code": "1.004222", "name": "Thường trú", "fee": {"charge": -5}}]}
    publish(state, {"procedures": bad})
    used = loaded(state)
    assert used.source == "sample" and used.get("1.001193") is not None
    assert used.problem.startswith("published catalogue not used: procedures entry 2 (1.004222)")
    assert "\n" not in used.problem


def test_a_hand_set_file_is_honoured_and_a_broken_one_said(state: Path) -> None:
    folder = state / "reference"
    folder.mkdir()
    (folder / "procedures.json").write_text(json.dumps([GOOD]), "utf-8")
    assert loaded(state).source == "file"
    (folder / "procedures.json").write_text("{not json", "utf-8")
    used = loaded(state)
    assert used.source == "sample" and used.problem.startswith("file catalogue not used")


def test_the_holiday_calendar_is_published_the_same_way(state: Path) -> None:
    holidays = {
        "version": "2027",
        "working_hours": [["08:00", "11:30"], ["13:00", "16:30"]],
        "holidays": [{"from": "2027-02-05", "to": "2027-02-10", "name": "Tết Đinh Mùi"}],
    }
    publish(state, {"holidays": holidays})
    store = Store.open(state)
    try:
        loaded_calendar = catalogue.load_calendar(state, store)
    finally:
        store.close()
    assert loaded_calendar.source == "published"
    assert not loaded_calendar.calendar.is_working_day(date(2027, 2, 8))
    assert loaded_calendar.calendar.closing.strftime("%H:%M") == "16:30"
    publish(state, {"holidays": {"holidays": [{"date": "2027-02-30", "name": "Sai"}]}})
    store = Store.open(state)
    try:
        refused = catalogue.load_calendar(state, store)
    finally:
        store.close()
    assert refused.source == "sample" and "holidays entry 1 (Sai)" in refused.problem


# -- the agency's own return date, through the downlink ------------------------------------


def downlink_status(state: Path, body: dict[str, Any], item: int = 1) -> Any:
    store = Store.open(state)
    try:
        ledger = Ledger(store, Keyring.load(state).sealer())
        doc = c.DownlinkDoc(
            v=1,
            id=item,
            device=None,
            office=None,
            kind="status",
            body=body,
            at=int(time.time() * 1000),
        )
        assert downlink.apply(store, ledger, doc) == "status"
        return store.dossier_by_code(body["code"])
    finally:
        store.close()


@pytest.fixture
def coded(state: Path) -> str:
    store = Store.open(state)
    try:
        ledger = Ledger(store, Keyring.load(state).sealer())
        with store.transaction():
            dossier_id = ledger.create_dossier("000.00.01.H29-261127-0001")
            store.update_dossier(dossier_id, appointment="2026-11-30")
    finally:
        store.close()
    return "000.00.01.H29-261127-0001"


def test_the_agencys_return_date_wins(state: Path, coded: str) -> None:
    row = downlink_status(state, {"code": coded, "status": 4, "appointment": "20261204170000"})
    assert row["central_status"] == 4 and row["appointment"] == "2026-12-04"
    row = downlink_status(state, {"code": coded, "status": 4, "appointment": "2026-12-07"}, 2)
    assert row["appointment"] == "2026-12-07"


def test_a_status_without_a_date_keeps_the_desks_date(state: Path, coded: str) -> None:
    row = downlink_status(state, {"code": coded, "status": 2, "note": ""})
    assert row["central_status"] == 2 and row["appointment"] == "2026-11-30"


def test_an_unreadable_date_is_dropped_but_the_status_applies(state: Path, coded: str) -> None:
    row = downlink_status(state, {"code": coded, "status": 5, "appointment": "31/02/2026"})
    assert row["central_status"] == 5 and row["appointment"] == "2026-11-30"


# -- the channel, saved with the details and synced -----------------------------------------


def test_the_channel_is_checked_and_defaults_to_in_person() -> None:
    details, problems = check_details({"channel": ""}, today=TODAY)
    assert details.channel == Channel.TRUC_TIEP and not problems
    details, problems = check_details({"channel": "3"}, today=TODAY)
    assert details.channel == Channel.BUU_CHINH_CONG_ICH and not problems
    _details, problems = check_details({"channel": "4"}, today=TODAY)
    assert [(p.reason, p.field) for p in problems] == [("channel_invalid", "channel")]


def test_the_channel_travels_in_the_details_event(state: Path, coded: str) -> None:
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    try:
        ledger = DeskLedger(store, keyring.sealer(), session)
        dossier_id = store.dossier_by_code(coded)["id"]
        assert ledger.saved_channel(dossier_id) == Channel.TRUC_TIEP
        ledger.save_details(dossier_id, Details(procedure="1.004222", channel=Channel.TRUC_TUYEN))
        assert ledger.saved_channel(dossier_id) == Channel.TRUC_TUYEN
        event = store.last_event(dossier_id, "dossier.details_set")
        assert event is not None
        payload = DeskReader(store, session).event_payload(event)
        assert payload["channel"] == 2 and payload["procedure"] == "1.004222"
    finally:
        session.close()
        store.close()


def test_regional_it_checks_a_file_before_publishing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.catalogue.__main__ import main

    assert main(["procedures", str(catalogue.SHIPPED)]) == 0
    assert "13 procedures, version mau-xa-2025-07-01" in capsys.readouterr().out
    assert main(["holidays", str(catalogue.SHIPPED_HOLIDAYS)]) == 0
    bad = tmp_path / "procedures.json"
    bad.write_text(json.dumps([GOOD, {"code": "1.004222", "name": "x", "days": "7"}]), "utf-8")
    assert main(["procedures", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{bad}: procedures entry 2 (1.004222): days must be a whole number from 0 to 365"


def test_regional_it_cannot_publish_a_catalogue_a_box_would_refuse(tmp_path: Path) -> None:
    """``edge admin reference`` checks the procedure catalogue and the holiday calendar as
    every box will, before anything is signed."""
    from edge.cli import main

    repo = tmp_path / "repo"
    assert main(["admin", "init", "--repo", str(repo)]) == 0
    bad = tmp_path / "procedures.json"
    bad.write_text(json.dumps({"version": "x", "procedures": [{"code": "1.001193"}]}), "utf-8")
    args = ["admin", "reference", "--repo", str(repo), "--file", str(bad)]
    assert main([*args, "--name", "procedures"]) == 2
    assert not list(repo.rglob("reference.json"))  # nothing was signed
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps({"holidays": ["31/02/2026"]}), "utf-8")
    args = ["admin", "reference", "--repo", str(repo), "--file", str(holidays)]
    assert main([*args, "--name", "holidays"]) == 2
    good = tmp_path / "shipped.json"
    good.write_bytes((Path(catalogue.__file__).parent / "procedures.json").read_bytes())
    args = ["admin", "reference", "--repo", str(repo), "--file", str(good)]
    assert main([*args, "--name", "procedures"]) == 0
