"""One page as the clerk handles it (issue 12): turned, deleted and restored, tagged with
the required document it is; and what the desk reads back (covers, the documents list)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from edge.archive import box_dossier
from edge.catalogue import Catalogue, Document, Procedure
from edge.catalogue import load as load_catalogue
from edge.desk import DeskError, DeskLedger, DeskReader, clean_details
from edge.store import MIGRATIONS, Store
from edge.sync.contract import WireEvent, event_to_wire
from edge.vault import Keyring
from tests.conftest import PASSWORD
from tests.test_desk import TODAY, add_dossier, add_pages

CODE = "000.00.01.H29-240115-0021"
BIRTH = "1.001193"
"""Đăng ký khai sinh in the shipped sample: a form and a birth certificate, originals."""


@pytest.fixture
def office(state: Path):
    store = Store.open(state)
    keyring = Keyring.load(state)
    session = keyring.unlock("lan", PASSWORD)
    yield store, DeskLedger(store, keyring.sealer(), session), DeskReader(store, session)
    session.close()
    store.close()


def payloads(store: Store, reader: DeskReader, event_type: str) -> list[dict]:
    return [reader.event_payload(e) for e in store.events() if e.type == event_type]


def ids(store: Store, dossier_id: str) -> list[str]:
    return [p["id"] for p in store.pages(dossier_id)]


def filled(ledger: DeskLedger, code: str = CODE, pages: int = 3) -> str:
    dossier = add_dossier(ledger, code, pages=pages)
    ledger.save_details(
        dossier,
        clean_details(
            {"procedure": BIRTH, "full_name": "Lê Thị Hà", "cccd": "001190012345"}, today=TODAY
        ),
    )
    return dossier


# -- rotation -------------------------------------------------------------------------------


def test_a_page_is_turned_by_quarter_turns_and_its_scan_never_changes(office) -> None:
    store, ledger, reader = office
    dossier = add_dossier(ledger, CODE, pages=2)
    page = store.pages(dossier)[1]
    scan = reader.page_bytes(page)
    assert ledger.rotate_page(dossier, page["id"]) == 90
    assert ledger.rotate_page(dossier, page["id"], 180) == 270
    assert ledger.rotate_page(dossier, page["id"], -90) == 180
    row = store.page(page["id"])
    assert row["rotation"] == 180
    assert row["blob_id"] == page["blob_id"]
    assert reader.page_bytes(row) == scan
    turns = payloads(store, reader, "page.rotated")
    assert [(t["page"], t["degrees"], t["by"], t["clerk"]) for t in turns] == [
        (page["id"], 90, 90, "lan"),
        (page["id"], 270, 180, "lan"),
        (page["id"], 180, 270, "lan"),
    ]
    with pytest.raises(ValueError):
        ledger.rotate_page(dossier, page["id"], 45)
    assert store.verify_chain() is None


def test_a_completed_dossier_cannot_be_turned_deleted_or_tagged(office) -> None:
    store, ledger, _reader = office
    dossier = filled(ledger)
    ledger.complete(dossier)
    page = store.pages(dossier)[0]["id"]
    for act in (
        lambda: ledger.rotate_page(dossier, page),
        lambda: ledger.delete_page(dossier, page),
        lambda: ledger.tag_pages(dossier, [page], "Tờ khai đăng ký khai sinh", "original"),
    ):
        with pytest.raises(DeskError) as err:
            act()
        assert err.value.reason == "already_complete"
    assert store.page(page)["rotation"] == 0


# -- deletion -----------------------------------------------------------------------------------


def test_a_deleted_page_leaves_list_counts_and_exports_but_its_scan_is_kept(
    office, tmp_path: Path
) -> None:
    store, ledger, reader = office
    dossier = add_dossier(ledger, CODE, pages=3)
    before = store.pages(dossier)
    gone = before[1]
    ledger.delete_page(dossier, gone["id"])

    assert ids(store, dossier) == [before[0]["id"], before[2]["id"]]
    assert [p["position"] for p in store.pages(dossier)] == [1, 2]
    listed = next(d for d in store.list_dossiers() if d["id"] == dossier)
    assert listed["pages"] == 2
    exported = box_dossier(store, reader.session, CODE)
    assert [p.position for p in exported.pages] == [1, 2]

    kept = store.page(gone["id"])
    assert kept["deleted_by"] == "lan" and kept["deleted_at"]
    assert [p["id"] for p in store.deleted_pages(dossier)] == [gone["id"]]
    assert reader.page_bytes(kept) == reader.page_bytes(gone)
    [deleted] = payloads(store, reader, "page.deleted")
    assert deleted == {"page": gone["id"], "position": 2, "clerk": "lan"}

    with pytest.raises(DeskError) as err:
        ledger.rotate_page(dossier, gone["id"])
    assert err.value.reason == "page_deleted"
    with pytest.raises(DeskError) as err:
        ledger.delete_page(dossier, gone["id"])
    assert err.value.reason == "page_deleted"
    assert store.verify_chain() is None


def test_a_deleted_page_is_restored_where_it_was(office) -> None:
    store, ledger, reader = office
    dossier = add_dossier(ledger, CODE, pages=4)
    before = ids(store, dossier)
    ledger.delete_page(dossier, before[1])
    ledger.rotate_page(dossier, before[3])
    assert ledger.restore_page(dossier, before[1]) == 2
    assert ids(store, dossier) == before
    assert [p["position"] for p in store.pages(dossier)] == [1, 2, 3, 4]
    assert store.page(before[1])["deleted_at"] is None
    assert payloads(store, reader, "page.restored") == [
        {"page": before[1], "position": 2, "clerk": "lan"}
    ]
    with pytest.raises(DeskError) as err:
        ledger.restore_page(dossier, before[1])
    assert err.value.reason == "pages_changed"


def test_pages_come_back_where_they_were_when_deleted_and_new_scans_follow_the_rest(
    office,
) -> None:
    store, ledger, _reader = office
    dossier = add_dossier(ledger, CODE, pages=3)
    before = ids(store, dossier)
    ledger.delete_page(dossier, before[0])
    ledger.delete_page(dossier, before[2])
    add_pages(ledger, dossier, 1, first=7)
    assert [p["position"] for p in store.pages(dossier)] == [1, 2]
    scanned = ids(store, dossier)[-1]
    assert ledger.restore_page(dossier, before[2]) == 2  # it was second when deleted
    assert ledger.restore_page(dossier, before[0]) == 1
    assert ids(store, dossier) == [before[0], before[1], before[2], scanned]


def test_a_dossier_whose_pages_are_all_deleted_cannot_be_completed(office) -> None:
    store, ledger, _reader = office
    dossier = filled(ledger, pages=1)
    ledger.delete_page(dossier, ids(store, dossier)[0])
    with pytest.raises(DeskError) as err:
        ledger.complete(dossier)
    assert err.value.reason == "no_pages"


def test_deleted_pages_follow_a_merge_and_stay_restorable(office) -> None:
    store, ledger, reader = office
    source = add_dossier(ledger, None, pages=2)
    target = add_dossier(ledger, CODE, pages=1)
    gone = ids(store, source)[0]
    ledger.delete_page(source, gone)
    ledger.merge(source, target)
    assert len(store.pages(target)) == 2
    [moved] = store.deleted_pages(target)
    assert moved["id"] == gone and moved["deleted_by"] == "lan"
    assert reader.page_bytes(moved)
    ledger.restore_page(target, gone)
    assert len(store.pages(target)) == 3


def test_a_page_another_desk_moved_away_is_not_changed_here(office) -> None:
    store, ledger, _reader = office
    first = add_dossier(ledger, CODE, pages=3)
    page = ids(store, first)[2]
    ledger.split(first, page)
    with pytest.raises(DeskError) as err:
        ledger.delete_page(first, page)
    assert err.value.reason == "pages_changed"


# -- document tags ------------------------------------------------------------------------------

FORM = "Tờ khai"
PROOF = "Giấy tờ chứng minh"
CATALOGUE = Catalogue(
    "test",
    (
        Procedure(
            BIRTH,
            "Đăng ký khai sinh",
            documents=(
                Document(FORM, originals=1),
                Document(PROOF, copies=1),
                Document("Văn bản ủy quyền", originals=1),
            ),
        ),
    ),
)


def test_documents_lists_the_tagged_pages_in_catalogue_order(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, pages=5)
    pages = ids(store, dossier)
    ledger.tag_pages(dossier, pages[3:5], PROOF, "certified_copy")
    ledger.tag_pages(dossier, pages[0:2], FORM, "original")
    ledger.tag_pages(dossier, [pages[2]], PROOF, "copy")
    assert reader.documents(dossier, CATALOGUE) == [
        {"name": FORM, "kind": "original", "pages": [1, 2]},
        {"name": PROOF, "kind": "certified_copy", "pages": [4, 5]},
        {"name": PROOF, "kind": "copy", "pages": [3]},
        {"name": "Văn bản ủy quyền", "kind": "original", "pages": []},
    ]
    [first, *_] = payloads(store, reader, "page.tagged")
    assert first == {
        "pages": pages[3:5],
        "document": PROOF,
        "kind": "certified_copy",
        "clerk": "lan",
    }
    assert store.page(pages[0])["document"] == FORM
    assert store.page(pages[0])["document_kind"] == "original"


def test_documents_follow_deletions_and_renumbering_and_keep_unknown_names(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, pages=4)
    pages = ids(store, dossier)
    ledger.tag_pages(dossier, [pages[3]], "Giấy tờ khác", "electronic")
    ledger.tag_pages(dossier, pages[1:3], FORM, "original")
    ledger.delete_page(dossier, pages[1])
    assert reader.documents(dossier, CATALOGUE) == [
        {"name": FORM, "kind": "original", "pages": [2]},
        {"name": PROOF, "kind": "copy", "pages": []},
        {"name": "Văn bản ủy quyền", "kind": "original", "pages": []},
        {"name": "Giấy tờ khác", "kind": "electronic", "pages": [3]},
    ]
    ledger.tag_pages(dossier, [pages[2]], None)
    assert reader.documents(dossier, CATALOGUE)[0]["pages"] == []
    assert store.page(pages[2])["document"] is None


def test_documents_reads_the_box_s_catalogue_by_default(office) -> None:
    store, ledger, reader = office
    dossier = filled(ledger, pages=2)
    required = load_catalogue(store.path.parent, store).get(BIRTH).documents
    first = required[0].name
    ledger.tag_pages(dossier, ids(store, dossier), first, "original")
    listed = reader.documents(dossier)
    assert [d["name"] for d in listed] == [d.name for d in required]
    assert listed[0] == {"name": first, "kind": "original", "pages": [1, 2]}
    assert all(d["pages"] == [] for d in listed[1:])


def test_a_dossier_without_procedure_lists_only_its_tags(office) -> None:
    store, ledger, reader = office
    dossier = add_dossier(ledger, CODE, pages=1)
    assert reader.documents(dossier) == []
    ledger.tag_pages(dossier, ids(store, dossier), "Tờ khai", "copy")
    assert reader.documents(dossier) == [{"name": "Tờ khai", "kind": "copy", "pages": [1]}]


@pytest.mark.parametrize(
    ("document", "kind"),
    [("", "original"), ("Tờ khai", "photocopy"), ("Tờ khai", None), ("a\x1b[2J", "copy")],
)
def test_a_tag_must_name_a_document_and_a_kind(office, document: str, kind: str | None) -> None:
    store, ledger, _reader = office
    dossier = add_dossier(ledger, CODE, pages=1)
    with pytest.raises(DeskError) as err:
        ledger.tag_pages(dossier, ids(store, dossier), document, kind)
    assert err.value.reason == "document_invalid"


def test_tagging_again_the_same_way_records_nothing(office) -> None:
    store, ledger, _reader = office
    dossier = add_dossier(ledger, CODE, pages=2)
    pages = ids(store, dossier)
    ledger.tag_pages(dossier, pages, FORM, "original")
    count = len(store.events())
    ledger.tag_pages(dossier, pages, " Tờ  khai ", "original")
    assert len(store.events()) == count


# -- covers -------------------------------------------------------------------------------------


def test_the_cover_is_the_page_capture_opened_the_dossier_on(office) -> None:
    store, ledger, reader = office
    coded = add_dossier(ledger, CODE, pages=2)
    loose = add_dossier(ledger, None, pages=2)
    cover = ids(store, coded)[0]
    assert reader.cover_pages(coded) == {cover}
    assert reader.cover_pages(loose) == set()
    ledger.reorder(coded, list(reversed(ids(store, coded))))
    assert reader.cover_pages(coded) == {cover}
    other = add_dossier(ledger, "000.00.01.H29-240115-0022", pages=1)
    ledger.merge(other, coded)
    assert reader.cover_pages(coded) == {cover, ids(store, coded)[-1]}


# -- schema and sync ------------------------------------------------------------------------------


def test_the_migration_gives_every_page_its_columns(office) -> None:
    store, ledger, _reader = office
    assert store.schema_version == len(MIGRATIONS)
    dossier = add_dossier(ledger, CODE, pages=1)
    page = store.pages(dossier)[0]
    assert (page["rotation"], page["deleted_at"], page["document"]) == (0, None, None)


def test_the_new_events_travel_like_every_other(office) -> None:
    """Central takes any event type its pattern allows; these must match it."""
    store, ledger, _reader = office
    dossier = add_dossier(ledger, CODE, pages=2)
    pages = ids(store, dossier)
    ledger.rotate_page(dossier, pages[0])
    ledger.tag_pages(dossier, pages, FORM, "original")
    ledger.delete_page(dossier, pages[1])
    ledger.restore_page(dossier, pages[1])
    new = [e for e in store.events() if e.type.startswith("page.") and e.type != "page.added"]
    assert [e.type for e in new] == ["page.rotated", "page.tagged", "page.deleted", "page.restored"]
    for event in new:
        wire = msgspec.json.encode(event_to_wire(event, []))
        assert msgspec.json.decode(wire, type=WireEvent).type == event.type
    assert store.dossier(dossier)["sync"] == "pending"
