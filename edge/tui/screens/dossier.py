"""One dossier: the citizen's details on the left, its pages and a preview on the right.

What is typed is kept as a sealed draft at every pause, so a power cut loses
at most the last moment of typing; Ctrl+S saves, F9 saves and completes.
Opening the dossier is an audited view of personal data. The page list
reorders ([ and ]), splits (S), turns (R), deletes (X) and enlarges (Enter, where
+ and - zoom and the arrows move) pages, and tags them (T) with the procedure's
document they are and whether it is an original or a copy. Each line says what capture
saw on the page: the cover, a blank page, an ID card, quality warnings. A deleted
page keeps its sealed scan: D shows the deleted pages and U restores one. F8 merges the
whole dossier into another one. F4 scans a batch straight into this dossier (a
supplement, a forgotten page); its pages appear in the list once capture has filed them.

A dossier whose cover capture could not confirm (``needs_review``) opens with a
panel above the form saying what was read; it has the focus, so N then Enter
("a new dossier", with the code prefilled) or B then Enter ("same as before")
settle it. When a page carries a citizen's ID card QR, the form offers its
name, number and year of birth, filled in with F3.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Static

from edge.catalogue import Procedure, load_calendar
from edge.clock import parse_iso
from edge.desk import (
    COMPLETE,
    MERGED,
    UNASSIGNED,
    DeskError,
    DeskReason,
    check_details,
    clean_details,
    missing_fields,
    parse_date,
)
from edge.desk.appointment import Calendar, suggested_date
from edge.desk.details import parse_channel
from edge.desk.fees import FeeState
from edge.domain import Channel
from edge.printable import printable
from edge.store import PagePurged
from edge.tui.i18n import N_, _, day, local_time, ngettext
from edge.tui.messages import field_label, portal_label, status_label
from edge.tui.queries import pages as page_rows
from edge.tui.queries import previous_dossier
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import (
    ConfirmDialog,
    ProcedurePicker,
    PromptDialog,
    procedure_summary,
)
from edge.tui.screens.document_tag import DocumentTagDialog, TagChoice, numbers_text
from edge.tui.screens.fees import FEE_LABEL, FeeDialog, fee_said
from edge.tui.screens.page_view import PageViewScreen
from edge.tui.widgets.common import ChoiceField, Field, Plain
from edge.tui.widgets.page_list import COVER_KINDS, PageList, kind_name, page_entry
from edge.tui.widgets.preview import PagePreview, page_image, turned
from edge.tui.widgets.review import (
    CardFound,
    Review,
    ReviewPanel,
    best_code,
    candidates,
    card_text,
    card_values,
    find_id_card,
)


def kept_at_central() -> str:
    """What a purged page shows instead of itself."""
    return _(
        "This page left the box after its retention time; central keeps it "
        "(ask regional IT for a copy)."
    )


FORM_FIELDS = (
    "code",
    "procedure",
    "full_name",
    "cccd",
    "birth_year",
    "phone",
    "address",
    "channel",
    "appointment",
    "note",
)
FIRST_FOCUS = ("code", "full_name", "cccd", "birth_year", "phone")
"""Where the cursor starts: the first of these still empty. Never the procedure, which
only takes a choice from the catalogue: a name typed at once must land in the name."""
CHANNEL_NAMES = {
    Channel.TRUC_TIEP: N_("in person"),
    Channel.TRUC_TUYEN: N_("online"),
    Channel.BUU_CHINH_CONG_ICH: N_("by public postal service"),
}
"""How a dossier reached the desk, as the national portal codes it (1, 2, 3)."""
DRAFT_DELAY = 0.3
ENLARGED = 2000
"""Longest side, in pixels, of a page in the enlarged view: a 300-dpi A4 scan nearly whole,
so zooming in shows the typed text as scanned."""
PAGE_ACTIONS = ("rotate_page", "delete_page", "tag_pages")
"""What acts on the highlighted page, which must be one still in the dossier."""


class DossierScreen(DeskScreen):
    searchable = False
    nav = "inbox"

    DEFAULT_CSS = """
    DossierScreen #procedure-detail { height: auto; max-height: 3; color: $text-muted;
                                      padding-left: 16; }
    DossierScreen #channel-name { width: 1fr; color: $text-muted; padding-left: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", N_("Save")),
        Binding("f2", "pick_procedure", N_("Procedure"), key_display="F2"),
        Binding("f3", "fill_from_card", N_("ID card"), key_display="F3"),
        Binding("f9", "complete", N_("Complete"), key_display="F9"),
        Binding("f7", "reopen", N_("Reopen"), key_display="F7"),
        Binding("f8", "merge", N_("Merge"), key_display="F8", show=False),
        Binding("f4", "scan", N_("Scan"), key_display="F4"),
        Binding("f6", "fees", FEE_LABEL, key_display="F6"),
        Binding("escape", "back", N_("Back"), key_display="Esc"),
    ]

    def __init__(self, dossier_id: str) -> None:
        super().__init__()
        self.dossier_id = dossier_id
        self.row: Any = None
        self._loading = False
        self._draft_timer: Timer | None = None
        self._preview_timer: Timer | None = None
        self._pages: list[dict[str, Any]] = []
        """The dossier's pages, in order; the deleted ones are in ``_deleted``."""
        self._deleted: list[dict[str, Any]] = []
        self._show_deleted = False
        self._covers: set[str] = set()
        self._hinted = False
        self._pending: dict[str, str] | None = None
        self._saved: dict[str, str] = {}
        self._symbols: dict[str, list[dict[str, Any]]] = {}
        self._review: Review | None = None
        self._revealed = False
        self._card: CardFound | None = None
        self._suggested = ""
        """The return date last pre-filled; one the clerk typed is never replaced."""
        self._said_saved = False
        self._calendar: Calendar | None = None

    # -- layout -------------------------------------------------------------------------------

    def body(self) -> ComposeResult:
        yield ReviewPanel(id="review")
        with Horizontal(id="main"):
            with Vertical(id="form"):
                yield Static("", id="id-card")
                for name in FORM_FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(_label(name))
                        if name == "channel":
                            yield _channel_field()
                            yield Plain("", id="channel-name")
                            continue
                        kind = ChoiceField if name == "procedure" else Field
                        yield kind(id=name, compact=True, max_length=_MAX.get(name, 100))
                    if name == "procedure":
                        yield Plain("", id="procedure-name")
                        yield Plain("", id="procedure-detail")
                yield Plain("", id="info")
            with Vertical(id="side"):
                yield Plain("", id="pages-title")
                yield PageList(id="pages")
                yield PagePreview(id="preview")

    def on_mount(self) -> None:
        self.load()
        self.desk.ledger.viewed(self.dossier_id, ["fields", "pages"])

    @property
    def editable(self) -> bool:
        return self.row is not None and self.row["status"] not in (COMPLETE, MERGED)

    def load(self) -> None:
        """Fill the form from the saved details, then the draft over them if there is one."""
        self.row = self.office.store.dossier(self.dossier_id)
        if self.row is None:
            self.fail(DeskError(DeskReason.DOSSIER_MISSING))
            return
        reader = self.desk.reader
        values = reader.details(self.dossier_id)
        values["channel"] = str(int(self.desk.ledger.saved_channel(self.dossier_id)))
        draft = reader.draft(self.dossier_id) if self.editable else None
        if draft is not None:
            values.update(draft["values"])
        self._loading = True
        try:
            for name in FORM_FIELDS:
                field = self.query_one(f"#{name}", Input)
                value = values.get(name, "")
                if name == "appointment" and value:
                    parsed = parse_date(value)
                    value = parsed.strftime("%d/%m/%Y") if parsed else value
                field.value = printable(value)
                field.disabled = not self.editable or (name == "code" and bool(self.row["code"]))
        finally:
            self._loading = False
        self._suggested = ""
        self._said_saved = False
        self._suggest_appointment()
        self._saved = self.values()
        self._show_channel()
        self._show_procedure()
        self._show_title()
        self._show_info()
        self.load_pages()
        self._show_review()
        if draft is not None:
            self.say(
                _("Unsaved typing from {time} was restored. Ctrl+S saves it.").format(
                    time=local_time(draft["updated"])
                ),
                "ok",
            )
        elif self.row["status"] == COMPLETE and not self.row["handed_over_on"]:
            self.say(_("This dossier is complete. F7 reopens it to correct it."))
        elif not self.editable:
            self.say(_("This dossier is complete: it can be read, not changed."))
        first = next(
            (
                f
                for f in self.query(Field)
                if f.id in FIRST_FOCUS and not f.disabled and not f.value
            ),
            None,
        )
        if self._review is not None:
            self.query_one(ReviewPanel).focus()
        elif first is not None:
            first.focus()
        elif self.editable:
            self.query_one("#full_name", Input).focus()
        else:
            self.query_one(PageList).focus()

    def _show_title(self) -> None:
        count = len(self.office.store.pages(self.dossier_id))
        reviewing = self.row["needs_review"] and self.editable
        self.set_title(
            _("Dossier {code} · {status} · {pages}").format(
                code=self.row["code"] or _("(no code)"),
                status=_("Check cover") if reviewing else status_label(self.row["status"]),
                pages=ngettext("{n} page", "{n} pages", count).format(n=count),
            )
        )

    def _show_info(self) -> None:
        row = self.row
        parts = [_("Received {time}").format(time=local_time(row["received_at"]))]
        if row["completed_at"]:
            parts.append(_("completed {time}").format(time=local_time(row["completed_at"])))
        if row["central_status"] is not None:
            parts.append(_("agency: {status}").format(status=portal_label(row["central_status"])))
        if row["handed_back_at"]:
            parts.append(
                _("result handed back {time}").format(time=local_time(row["handed_back_at"]))
            )
        if row["handed_over_on"]:
            parsed = parse_date(row["handed_over_on"])
            parts.append(_("paper returned {date}").format(date=day(parsed) if parsed else "—"))
        if row["status"] == MERGED and row["merged_into"]:
            target = self.office.store.dossier(row["merged_into"])
            parts.append(
                _("merged into {code}").format(
                    code=(target["code"] if target else "") or _("(no code)")
                )
            )
        self.query_one("#info", Plain).update(" · ".join(parts))

    def _procedure(self) -> Procedure | None:
        code = self.query_one("#procedure", Input).value.strip()
        return self.office.catalogue.get(code) if code else None

    def _channel(self) -> Channel:
        return parse_channel(self.query_one("#channel", Input).value) or Channel.TRUC_TIEP

    def _show_procedure(self) -> None:
        found = self._procedure()
        label = (
            found.name if found else (_("F2: choose from the catalogue") if self.editable else "")
        )
        self.query_one("#procedure-name", Plain).update(label)
        detail = self.query_one("#procedure-detail", Plain)
        detail.display = found is not None
        detail.update(procedure_summary(found, self._channel()) if found else "")

    def _show_channel(self) -> None:
        channel = parse_channel(self.query_one("#channel", Input).value)
        name = _(CHANNEL_NAMES[channel]) if channel is not None else _("1, 2 or 3")
        self.query_one("#channel-name", Plain).update(name)

    def _suggest_appointment(self) -> None:
        """Pre-fill the return date from the procedure's time, unless the clerk typed one.

        It counts from the dossier's receipt (after closing: the next working day), with the
        procedure's time for the dossier's channel and the published holiday calendar.
        """
        if not self.editable:
            return
        field = self.query_one("#appointment", Input)
        if field.value.strip() and field.value != self._suggested:
            return
        day = self._computed_date()
        text = day.strftime("%d/%m/%Y") if day is not None else ""
        self._suggested = text
        if field.value != text:
            field.value = text

    def _computed_date(self) -> date | None:
        found = self._procedure()
        processing = found.time_for(self._channel()) if found is not None else None
        if processing is None or self.row is None:
            return None
        if self._calendar is None:
            self._calendar = load_calendar(self.office.state, self.office.store).calendar
        received = datetime.fromtimestamp(parse_iso(self.row["received_at"]) / 1000, UTC)
        now = datetime.fromtimestamp(self.office.now_ms() / 1000, UTC)
        return suggested_date(received, now, processing, self._calendar)

    def load_pages(self, keep: str | None = None) -> None:
        """The page list again from the store: labels, turns, tags, deleted pages (with D)."""
        store = self.office.store
        self._pages = page_rows(store, self.dossier_id)
        self._deleted = [dict(r) for r in store.deleted_pages(self.dossier_id)]
        self._symbols = {}
        self._covers = self._cover_pages()
        supplements = self.desk.reader.supplement_pages(self.dossier_id)
        shown = self._pages + (self._deleted if self._show_deleted else [])
        page_list = self.query_one(PageList)
        page_list.show(
            [
                page_entry(
                    p,
                    self._page_symbols(p),
                    cover=p["id"] in self._covers,
                    supplement=p["id"] in supplements,
                )
                for p in shown
            ],
            keep=keep,
        )
        title = ngettext("{n} page", "{n} pages", len(self._pages)).format(n=len(self._pages))
        if self._deleted:
            title += " · " + _("{n} deleted (D)").format(n=len(self._deleted))
        self.query_one("#pages-title", Plain).update(title)
        if shown:
            self._preview_later()
        else:
            self.query_one(PagePreview).show_message(_("No pages."))
        self.refresh_bindings()
        # page numbers in the ID-card hint and the cover to check follow the pages
        self._show_card()
        if self._review is not None:
            self._show_review()

    # -- drafts -------------------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#{name}", Input).value for name in FORM_FIELDS}

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.input.remove_class("-invalid")
        if event.input.id not in FORM_FIELDS:
            return
        if event.input.id == "channel":
            self._show_channel()
        if event.input.id in ("procedure", "channel"):
            self._show_procedure()
            if not self._loading:
                self._suggest_appointment()
        if self._loading or not self.editable:
            return
        values = self.values()
        if values == self._saved:
            return
        if self._said_saved:
            # "Saved." was true until this edit: leaving it would claim this one is saved too
            self._said_saved = False
            self.say("")
        self._pending = values
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_DELAY, self.save_draft)

    def save_draft(self) -> None:
        """Seal what is typed so far (at a pause in typing, and when the screen goes)."""
        self._draft_timer = None
        pending, self._pending = self._pending, None
        if pending is None or self.office.unlocked is None or not self.editable:
            return
        self.desk.ledger.save_draft(self.dossier_id, pending)

    def on_unmount(self) -> None:
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self.save_draft()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        if event.input.id not in FORM_FIELDS:
            return
        if event.input.id == "procedure" and not self.office.catalogue.get(event.value):
            self.action_pick_procedure()
            return
        # a CCCD that disagrees with the year of birth is said when either is typed
        related = {event.input.id}
        if event.input.id == "birth_year":
            related.add("cccd")
        problems = [p for p in self._problems() if p.field in related]
        if problems:
            self._mark(problems[0])
            return
        self.focus_next()

    # -- saving -------------------------------------------------------------------------------

    def _detail_values(self) -> dict[str, str]:
        values = self.values()
        values.pop("code")
        return values

    def _problems(self) -> list[DeskError]:
        _details, problems = check_details(
            self._detail_values(),
            today=self.office.today(),
            procedures=self.office.catalogue.codes(),
            saved_appointment=self.row["appointment"] or "",
        )
        return problems

    def _mark_all(self, problems: list[DeskError]) -> None:
        """Every field to fix is marked at once; the cursor goes to the first of them."""
        order = {name: i for i, name in enumerate(FORM_FIELDS)}
        problems = sorted(problems, key=lambda p: order.get(p.field or "", len(order)))
        for problem in problems:
            if problem.field:
                for field in self.query("#" + problem.field):
                    field.add_class("-invalid")
        first = next((p for p in problems if p.field), None)
        if first is not None:
            self.query_one("#" + str(first.field)).focus()
        if len(problems) == 1:
            self.fail(problems[0])
            return
        labels = ", ".join(_label(str(p.field)) for p in problems if p.field)
        self.say(_("Fix the marked fields: {fields}.").format(fields=labels), "error")

    def _mark(self, exc: DeskError) -> None:
        if exc.field:
            field = self.query("#" + exc.field)
            if field:
                field.first().add_class("-invalid")
                field.first().focus()
        self.fail(exc)

    def save(self) -> bool:
        if not self.editable:
            return False
        try:
            details = clean_details(
                self._detail_values(),
                today=self.office.today(),
                procedures=self.office.catalogue.codes(),
                saved_appointment=self.row["appointment"] or "",
            )
        except DeskError as exc:
            self._mark(exc)
            return False
        ledger = self.desk.ledger
        code = self.query_one("#code", Input).value.strip()
        if self.row["status"] == UNASSIGNED and code:
            try:
                ledger.assign_code(self.dossier_id, code, self.office.patterns)
            except DeskError as exc:
                if exc.reason == "code_taken":
                    self._offer_merge(exc.details["dossier_id"], exc.details["code"])
                    return False
                self._mark(exc)
                return False
        try:
            ledger.save_details(self.dossier_id, details)
        except DeskError as exc:
            self._mark(exc)
            return False
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        self._pending = None
        self._saved = self.values()
        self.row = self.office.store.dossier(self.dossier_id)
        self.query_one("#code", Input).disabled = bool(self.row["code"])
        self._show_title()
        return True

    def action_save(self) -> None:
        if self.save():
            self.say(_("Saved."), "ok")
            self._said_saved = True

    def action_complete(self) -> None:
        """Check everything first, then ask: a completed dossier goes to the agency.

        Every problem and every empty field completion needs is marked at once, before
        any question: asking "complete?" only to report one missing field after another
        wasted the clerk's time.
        """
        if not self.editable:
            return
        problems = self._problems()
        flagged = {p.field for p in problems}
        problems += [
            DeskError(DeskReason.MISSING, field=name)
            for name in missing_fields(self.values())
            if name not in flagged
        ]
        if not self._pages:
            problems.append(DeskError(DeskReason.NO_PAGES))
        if problems:
            self._mark_all(problems)
            return

        def confirmed(yes: bool | None) -> None:
            if not yes or not self.save():
                return
            try:
                self.desk.ledger.complete(self.dossier_id)
            except DeskError as exc:
                self._mark(exc)
                return
            self.dismiss_with(_("Dossier {code} is complete.").format(code=self.row["code"]))

        question = _(
            "Complete dossier {code}? It goes to the agency; until its paper is handed over, "
            "F7 reopens it."
        ).format(code=self.row["code"] or _("(no code)"))
        self.app.push_screen(ConfirmDialog(question, _("Complete")), confirmed)

    def action_reopen(self) -> None:
        """A completed dossier back to the form, while its paper is still at the counter."""

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.reopen(self.dossier_id)
            except DeskError as exc:
                self.fail(exc)
                return
            self.load()
            self.say(
                _("Dossier {code} is open again: correct it, then F9 completes it.").format(
                    code=self.row["code"] or _("(no code)")
                ),
                "ok",
            )
            self.refresh_bindings()

        question = _("Reopen dossier {code} to correct it? The reopening is recorded.").format(
            code=self.row["code"] or _("(no code)")
        )
        self.app.push_screen(ConfirmDialog(question, _("Reopen")), confirmed)

    def dismiss_with(self, message: str) -> None:
        self.app.pop_screen()
        screen = self.app.screen
        if isinstance(screen, DeskScreen):
            screen.refresh_data()
            screen.say(message, "ok")

    @property
    def scan_into(self) -> str | None:
        """A scan from here joins this dossier: the supplement, the page forgotten."""
        return self.dossier_id

    def action_back(self) -> None:
        """Esc stops a running scan first, as on the home screen; then it goes back."""
        if self.edge.scanning:
            self.edge.stop_scan()
            return
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "pick_procedure", "move_page", "split"):
            return self.editable
        if action in PAGE_ACTIONS:
            return self.editable and bool(self._pages) and self._page_is("live")
        if action == "restore_page":
            return self.editable and self._page_is("deleted")
        if action == "reopen":
            return (
                self.row is not None
                and self.row["status"] == COMPLETE
                and not self.row["handed_over_on"]
            )
        if action in ("complete", "merge"):
            # the cover comes first: "a new dossier" or "same as before" (n, b)
            return self.editable and self._review is None
        if action in ("review_new", "review_previous"):
            return self._review is not None and not self._typing_code
        if action == "review_reveal":
            return (
                self._review is not None
                and self._review.has_hidden
                and not self._revealed
                and not self._typing_code
            )
        if action == "fees":
            return self.row is not None and self.row["status"] != MERGED
        if action == "fill_from_card":
            return self.editable and self._card is not None
        if action == "scan":
            # pages scanned into a merged dossier belong to the one it went into
            return self.row is not None and self.row["status"] != MERGED
        return True

    # -- procedure ----------------------------------------------------------------------------

    @on(ChoiceField.Wanted, "#procedure")
    def _procedure_typed(self, event: ChoiceField.Wanted) -> None:
        self.action_pick_procedure(event.typed)

    def action_pick_procedure(self, typed: str | None = None) -> None:
        current = typed if typed is not None else self.query_one("#procedure", Input).value

        def chosen(code: str | None) -> None:
            field = self.query_one("#procedure", Input)
            if code:
                field.value = code
                # the return date follows now, not when Input.Changed comes round
                self._suggest_appointment()
                self.query_one("#full_name", Input).focus()
            else:
                field.focus()

        self.app.push_screen(
            ProcedurePicker(self.office.catalogue, current, self._channel()), chosen
        )

    # -- pages --------------------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#pages")
    def _highlighted(self) -> None:
        self._preview_later()

    def _preview_later(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.12, self._preview)

    def _current_page(self) -> dict[str, Any] | None:
        """The highlighted page, deleted or not (a deleted one is only shown after D)."""
        found = self.query_one(PageList).current_id
        return next((p for p in self._pages + self._deleted if p["id"] == found), None)

    def _current_live(self) -> dict[str, Any] | None:
        page = self._current_page()
        return page if page is not None and page["deleted_at"] is None else None

    def _cover_pages(self) -> set[str]:
        try:
            return self.desk.reader.cover_pages(self.dossier_id)
        except Exception:
            return set()

    def _image(self, page: dict[str, Any], longest: int = 400) -> Any:
        """The page as the clerk turned it (the sealed scan itself never changes)."""
        image = page_image(self.desk.reader.page_bytes(page), page["media_type"], longest)
        return turned(image, int(page["rotation"] or 0))

    def _preview(self) -> None:
        page = self._current_page()
        preview = self.query_one(PagePreview)
        if page is None or self.office.unlocked is None:
            return
        try:
            preview.show(self._image(page))
        except PagePurged:
            preview.show_message(kept_at_central())
        except Exception:
            preview.show_message(_("This page cannot be shown; it is stored unchanged."))

    @on(OptionList.OptionSelected, "#pages")
    def _enlarge(self) -> None:
        page = self._current_page()
        if page is None:
            return
        try:
            image = self._image(page, ENLARGED)
        except PagePurged:
            self.say(kept_at_central())
            return
        except Exception:
            self.say(_("This page cannot be shown; it is stored unchanged."), "error")
            return
        if page["deleted_at"] is None:
            title = _("Page {n}").format(n=page["position"])
        else:
            title = _("Deleted page (was page {n})").format(n=page["position"])
        self.app.push_screen(PageViewScreen(title, image))

    @on(OptionList.OptionHighlighted, "#pages")
    def _page_keys(self) -> None:
        # turning, deleting and restoring depend on the page: the footer follows it
        self.refresh_bindings()

    def on_descendant_focus(self, event: Any) -> None:
        """The page keys, once a visit: the footer has no room for them at 80 columns."""
        if isinstance(event.widget, PageList) and self._pages and not self._hinted:
            self._hinted = True
            if self.editable:
                self.say(_("Pages: Enter enlarges, R turns, X deletes, T document; F1: every key."))

    def action_move_page(self, delta: int) -> None:
        page = self._current_live()
        if page is None:
            return
        ids = [p["id"] for p in self._pages]
        index = ids.index(page["id"])
        target = index + delta
        if not 0 <= target < len(ids):
            return
        ids[index], ids[target] = ids[target], ids[index]
        try:
            self.desk.ledger.reorder(self.dossier_id, ids)
        except DeskError as exc:
            self.fail(exc)
            return
        self.load_pages(keep=page["id"])
        self.say(_("Page moved to position {n}.").format(n=target + 1), "ok")

    def action_split(self) -> None:
        page = self._current_live()
        if page is None:
            return
        if page["position"] == 1:
            self.fail(DeskError(DeskReason.SPLIT_FIRST_PAGE))
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.split(self.dossier_id, page["id"])
            except DeskError as exc:
                self.fail(exc)
                return
            self.load_pages()
            self._show_title()
            self.say(_("Split: the new dossier waits in the list, without a code."), "ok")

        question = _("Move pages {n} to the end into a new dossier?").format(n=page["position"])
        self.app.push_screen(ConfirmDialog(question, _("Split")), confirmed)

    def _page_is(self, state: str) -> bool:
        page = self._current_page()
        if page is None:
            return False
        return (page["deleted_at"] is None) == (state == "live")

    def action_rotate_page(self, degrees: int) -> None:
        """R turns the page a quarter clockwise (Shift+R back); only how it is shown changes."""
        page = self._current_live()
        if page is None or not self.editable:
            return
        try:
            rotation = self.desk.ledger.rotate_page(self.dossier_id, page["id"], degrees)
        except DeskError as exc:
            self.fail(exc)
            self.load_pages(keep=page["id"])
            return
        self.load_pages(keep=page["id"])
        if rotation:
            self.say(
                _("Page {n} is shown turned {degrees}°; the scan itself is unchanged.").format(
                    n=page["position"], degrees=rotation
                ),
                "ok",
            )
        else:
            self.say(_("Page {n} is shown as scanned.").format(n=page["position"]), "ok")

    def action_delete_page(self) -> None:
        """X or Delete, once confirmed: the page leaves the dossier; its scan is kept."""
        page = self._current_live()
        if page is None or not self.editable:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.delete_page(self.dossier_id, page["id"])
            except DeskError as exc:
                self.fail(exc)
                self.load_pages()
                return
            self.load_pages(keep=self._neighbour(page))
            self._show_title()
            self.say(
                _("Page {n} was deleted. D shows deleted pages; U restores one.").format(
                    n=page["position"]
                ),
                "ok",
            )

        question = _(
            "Delete page {n} from dossier {code}? Its scan is kept and can be restored (D, U)."
        ).format(n=page["position"], code=self.row["code"] or _("(no code)"))
        self.app.push_screen(ConfirmDialog(question, _("Delete page"), danger=True), confirmed)

    def _neighbour(self, page: dict[str, Any]) -> str | None:
        """The page to stay on once ``page`` left the list: the next one, else the one before."""
        ids = [p["id"] for p in self._pages]
        index = ids.index(page["id"]) if page["id"] in ids else -1
        rest = ids[index + 1 :] + ids[:index][::-1]
        return rest[0] if rest else None

    def action_show_deleted(self) -> None:
        """D shows the deleted pages under the others, or hides them again."""
        if not self._deleted and not self._show_deleted:
            self.say(_("No page of this dossier was deleted."))
            return
        self._show_deleted = not self._show_deleted
        current = self._current_page()
        self.load_pages(keep=current["id"] if current else None)
        if self._show_deleted:
            self.say(_("Deleted pages are at the end of the list: U restores the highlighted one."))
            if self._deleted and (current is None or current["deleted_at"] is None):
                page_list = self.query_one(PageList)
                page_list.highlighted = page_list.get_option_index(self._deleted[0]["id"])
        else:
            self.say("")

    def action_restore_page(self) -> None:
        page = self._current_page()
        if page is None or page["deleted_at"] is None or not self.editable:
            return
        try:
            position = self.desk.ledger.restore_page(self.dossier_id, page["id"])
        except DeskError as exc:
            self.fail(exc)
            self.load_pages()
            return
        if len(self._deleted) <= 1:
            self._show_deleted = False
        self.load_pages(keep=page["id"])
        self._show_title()
        self.say(_("The page is back in the dossier as page {n}.").format(n=position), "ok")

    def action_tag_pages(self) -> None:
        """T: which of the procedure's documents this page (or run of pages) is, and its kind."""
        page = self._current_live()
        if page is None or not self.editable:
            return
        procedure = self._procedure()
        if procedure is None:
            self.fail(DeskError(DeskReason.PROCEDURE_FIRST))
            return
        tagged: dict[str, list[int]] = {}
        for each in self._pages:
            if each["document"]:
                tagged.setdefault(each["document"], []).append(int(each["position"]))
        numbers: tuple[int, ...] = (int(page["position"]),)
        if page["document"]:
            # the whole run of pages carrying the same tag, so it is changed at once
            run = [
                int(p["position"])
                for p in self._pages
                if (p["document"], p["document_kind"]) == (page["document"], page["document_kind"])
            ]
            start = run.index(int(page["position"]))
            low = high = start
            while low > 0 and run[low - 1] == run[low] - 1:
                low -= 1
            while high < len(run) - 1 and run[high + 1] == run[high] + 1:
                high += 1
            numbers = tuple(run[low : high + 1])
        dialog = DocumentTagDialog(
            procedure.documents,
            tagged,
            numbers=numbers,
            last=len(self._pages),
            current=(page["document"], page["document_kind"]),
        )
        self.app.push_screen(dialog, lambda choice: self._tagged(choice, page["id"]))

    def _tagged(self, choice: TagChoice | None, keep: str) -> None:
        if choice is None:
            return
        by_number = {int(p["position"]): p["id"] for p in self._pages}
        ids = [by_number[n] for n in choice.pages if n in by_number]
        try:
            self.desk.ledger.tag_pages(self.dossier_id, ids, choice.document, choice.kind)
        except DeskError as exc:
            self.fail(exc)
            self.load_pages(keep=keep)
            return
        self.load_pages(keep=keep)
        pages, count = numbers_text(choice.pages), len(choice.pages)
        if choice.document is None:
            said = ngettext(
                "Page {pages}: no document.", "Pages {pages}: no document.", count
            ).format(pages=pages)
        else:
            said = ngettext(
                "Page {pages}: {document} ({kind}).", "Pages {pages}: {document} ({kind}).", count
            ).format(pages=pages, document=printable(choice.document), kind=kind_name(choice.kind))
        self.say(said, "ok")

    # -- merge --------------------------------------------------------------------------------

    def action_merge(self) -> None:
        def typed(code: str | None) -> None:
            if not code:
                return
            normal = self.office.patterns.match(code)
            target = self.office.store.dossier_by_code(normal) if normal else None
            if target is None:
                self.say(
                    _("No dossier has the code {code}. Check the receipt.").format(code=code),
                    "error",
                )
                return
            self._offer_merge(target["id"], target["code"])

        self.app.push_screen(
            PromptDialog(_("Merge into another dossier"), _("Code of the dossier to merge into")),
            typed,
        )

    def _offer_merge(self, target_id: str, code: str) -> None:
        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.merge(self.dossier_id, target_id)
            except DeskError as exc:
                self.fail(exc)
                return
            self.app.pop_screen()
            self.edge.open_dossier(target_id)

        question = _("Dossier {code} exists. Move these pages into it?").format(code=code)
        self.app.push_screen(ConfirmDialog(question, _("Merge")), confirmed)

    def refresh_data(self) -> None:
        """New pages may have arrived for this dossier (a second scan of its code)."""
        row = self.office.store.dossier(self.dossier_id)
        if row is None:
            return
        reviewing = bool(self.row["needs_review"]) if self.row is not None else False
        self.row = row
        count = len(self.office.store.pages(self.dossier_id))
        deleted = len(self.office.store.deleted_pages(self.dossier_id))
        if (count, deleted) != (len(self._pages), len(self._deleted)):
            current = self._current_page()
            self.load_pages(keep=current["id"] if current else None)
        if self._review is not None or reviewing != bool(row["needs_review"]):
            self._show_review()
        self._show_title()
        self._show_info()

    # -- what the pages say: the cover to check, an ID card ------------------------------------

    def _page_symbols(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        """A page's sealed symbols, opened once per page list."""
        if page["id"] not in self._symbols:
            try:
                self._symbols[page["id"]] = self.desk.reader.page_symbols(page)
            except Exception:
                self._symbols[page["id"]] = []
        return self._symbols[page["id"]]

    @property
    def _typing_code(self) -> bool:
        return bool(self.query_one("#review-new").display)

    def _show_review(self) -> None:
        """The panel above the form while the cover waits for the clerk; hidden otherwise."""
        panel = self.query_one(ReviewPanel)
        if self.row is None or not self.row["needs_review"] or not self.editable:
            had = self._review is not None
            self._review = None
            panel.display = False
            self.query_one("#review-new").display = False
            if had and panel.has_focus_within:
                if self.editable:
                    self.query_one("#full_name", Input).focus()
                else:
                    self.query_one(PageList).focus()
            self.refresh_bindings()
            return
        payload = self.desk.reader.review(self.dossier_id)
        cover = next(
            (
                p
                for p in self._pages
                if any(
                    s.get("kind") == "receipt_like"
                    or (s.get("kind") in COVER_KINDS and s.get("confirmed") is False)
                    for s in self._page_symbols(p)
                )
            ),
            None,
        )
        previous = previous_dossier(self.office.store, self.row)
        found = tuple(candidates(payload))
        self._review = Review(
            found=found,
            page=int(cover["position"]) if cover else 1,
            previous_code=previous["code"] if previous is not None else None,
            has_previous=previous is not None,
            best=best_code(found, self.office.patterns),
        )
        panel.show(self._review, revealed=self._revealed)
        panel.display = True
        self.refresh_bindings()

    def _show_card(self) -> None:
        hint = self.query_one("#id-card", Static)
        found = None
        if self.editable:
            found = find_id_card(
                ((int(p["position"]), self._page_symbols(p)) for p in self._pages),
                self.office.today(),
            )
        self._card = found
        hint.display = found is not None
        if found is not None:
            hint.update(card_text(found))
        self.refresh_bindings()

    def action_fees(self) -> None:
        """F6: the dossier's fee, how it is settled, and its receipt."""

        def done(state: FeeState | None) -> None:
            if state is not None:
                self.say(fee_said(state), "ok")

        self.app.push_screen(FeeDialog(self.dossier_id), done)

    def action_fill_from_card(self) -> None:
        """Put the ID card's details into the form; nothing is saved until Ctrl+S."""
        if self._card is None or not self.editable:
            return
        for name, value in card_values(self._card.card).items():
            field = self.query_one(f"#{name}", Input)
            field.value = value
            field.remove_class("-invalid")
        self.query_one("#full_name", Input).focus()
        self.say(_("Filled in from the ID card. Check against the paper, then Ctrl+S saves."), "ok")

    def action_review_new(self) -> None:
        """N: a new dossier. The code capture read best is offered; Enter confirms it."""
        if self._review is None:
            return
        row = self.query_one("#review-new")
        field = self.query_one("#review-code", Input)
        if not row.display:
            field.value = self._review.best
            row.display = True
        field.focus()
        field.cursor_position = len(field.value)
        self.say(_("Check the code against the receipt, then press Enter."))
        self.refresh_bindings()

    def action_review_cancel(self) -> None:
        self.query_one("#review-new").display = False
        self.query_one("#review-code", Input).remove_class("-invalid")
        self.query_one(ReviewPanel).focus()
        self.say("")
        self.refresh_bindings()

    def action_review_reveal(self) -> None:
        """V: show what capture hid as personal; opening it is in the audit log."""
        if self._review is None or not self._review.has_hidden:
            return
        self.desk.ledger.viewed(self.dossier_id, ["symbols"])
        self._revealed = True
        self.query_one(ReviewPanel).show(self._review, revealed=True)
        self.refresh_bindings()

    @on(Input.Submitted, "#review-code")
    def _review_code(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input
        self._flush_typing()
        try:
            target = self.desk.ledger.confirm_new_dossier(
                self.dossier_id, event.value.strip(), self.office.patterns
            )
        except DeskError as exc:
            if exc.reason == "code_invalid":
                field.add_class("-invalid")
                field.focus()
                self.fail(exc)
                return
            self.fail(exc)
            self._after_review_failed()
            return
        row = self.office.store.dossier(target)
        code = row["code"] if row is not None else ""
        if target == self.dossier_id:
            message = _("Cover checked: dossier {code} is a new dossier.").format(code=code)
        else:
            message = _("Dossier {code} was already here: the pages were added to it.").format(
                code=code
            )
        self._go_to(target, message)

    def action_review_previous(self) -> None:
        """B: same as before. The pages go to the end of the dossier before it, once confirmed."""
        if self._review is None:
            return
        previous = previous_dossier(self.office.store, self.row)
        if previous is None:
            self.fail(DeskError(DeskReason.REVIEW_NO_PREVIOUS))
            return
        code = previous["code"] or _("(no code yet)")
        count = len(self._pages)

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            self._flush_typing()
            try:
                target = self.desk.ledger.join_previous(self.dossier_id)
            except DeskError as exc:
                self.fail(exc)
                self._after_review_failed()
                return
            self._go_to(
                target,
                ngettext(
                    "Same as before: {n} page added to dossier {code}.",
                    "Same as before: {n} pages added to dossier {code}.",
                    count,
                ).format(n=count, code=code),
            )

        question = ngettext(
            "Same as before: add {n} page to the end of dossier {code}?",
            "Same as before: add {n} pages to the end of dossier {code}?",
            count,
        ).format(n=count, code=code)
        self.app.push_screen(
            ConfirmDialog(question, _("Add to that dossier"), yes_key="y"), confirmed
        )

    def _flush_typing(self) -> None:
        """Seal what is typed now, before the pages move (a merge drops the draft with them)."""
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        self.save_draft()

    def _after_review_failed(self) -> None:
        """Someone else settled it meanwhile (another desk, a merge): show what is true now."""
        self.query_one("#review-new").display = False
        row = self.office.store.dossier(self.dossier_id)
        if row is not None:
            self.row = row
        self._show_review()
        self._show_title()

    def _go_to(self, dossier_id: str, message: str) -> None:
        """Open the dossier that now holds the pages, in place of this one."""
        self.app.pop_screen()
        self.edge.open_dossier(dossier_id)
        self.app.notify(printable(message), markup=False, timeout=6)


_MAX = {
    "note": 500,
    "full_name": 100,
    "cccd": 20,
    "phone": 20,
    "birth_year": 4,
    "appointment": 10,
    "address": 200,
}


def _channel_field() -> Field:
    """One digit, 1 to 3; narrow (inline, as app.tcss gives every form field the row's width)."""
    field = Field(id="channel", compact=True, max_length=1, restrict="[1-3]?")
    field.styles.width = 3
    return field


def _label(name: str) -> str:
    return field_label(name)
