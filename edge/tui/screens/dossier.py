"""One dossier: the citizen's details on the left, its pages and a preview on the right.

What is typed is kept as a sealed draft at every pause, so a power cut loses
at most the last moment of typing; Ctrl+S saves, F9 saves and completes.
Opening the dossier is an audited view of personal data. The page list
reorders ([ and ]), splits (S) and previews (Enter) pages; F8 merges the whole
dossier into another one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from edge.desk import COMPLETE, MERGED, UNASSIGNED, DeskError, clean_details, parse_date
from edge.tui.i18n import N_, _, day, local_time, ngettext
from edge.tui.messages import field_label, flag_label, portal_label, status_label
from edge.tui.queries import pages as page_rows
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.dialogs import ConfirmDialog, PreviewDialog, ProcedurePicker, PromptDialog
from edge.tui.widgets.common import Field, translate_bindings
from edge.tui.widgets.preview import PagePreview, page_image

FORM_FIELDS = (
    "code",
    "procedure",
    "full_name",
    "cccd",
    "birth_year",
    "phone",
    "appointment",
    "note",
)
DRAFT_DELAY = 0.3
MEDIA = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF", "application/pdf": "PDF"}


class PageList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "left_square_bracket,ctrl+up", "screen.move_page(-1)", N_("Move"), key_display="[ ]"
        ),
        Binding("right_square_bracket,ctrl+down", "screen.move_page(1)", N_("Down"), show=False),
        Binding("s", "screen.split", N_("Split here")),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        translate_bindings(self)


class DossierScreen(DeskScreen):
    searchable = False
    nav = "inbox"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", N_("Save")),
        Binding("f2", "pick_procedure", N_("Procedure"), key_display="F2"),
        Binding("f9", "complete", N_("Complete"), key_display="F9"),
        Binding("f8", "merge", N_("Merge"), key_display="F8"),
        Binding("escape", "back", N_("Back"), key_display="Esc"),
    ]

    DEFAULT_CSS = """
    DossierScreen #main { height: 1fr; }
    DossierScreen #form { width: 1fr; min-width: 40; padding: 0 1; }
    DossierScreen #side { width: 42%; min-width: 34; border-left: vkey $primary-darken-2; }
    DossierScreen #procedure-name { height: 1; color: $text-muted; padding-left: 16; }
    DossierScreen #info { height: auto; color: $text-muted; margin-top: 1; }
    DossierScreen #pages-title { height: 1; text-style: bold; padding: 0 1; }
    DossierScreen PageList { height: 40%; min-height: 3; border: none; padding: 0; }
    """

    def __init__(self, dossier_id: str) -> None:
        super().__init__()
        self.dossier_id = dossier_id
        self.row: Any = None
        self._loading = False
        self._draft_timer: Timer | None = None
        self._preview_timer: Timer | None = None
        self._pages: list[dict[str, Any]] = []
        self._pending: dict[str, str] | None = None
        self._saved: dict[str, str] = {}

    # -- layout -------------------------------------------------------------------------------

    def body(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="form"):
                for name in FORM_FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(field_label(name))
                        yield Field(id=name, compact=True, max_length=_MAX.get(name, 100))
                    if name == "procedure":
                        yield Static("", id="procedure-name")
                yield Static("", id="info")
            with Vertical(id="side"):
                yield Static("", id="pages-title")
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
            self.fail(DeskError("dossier_missing"))
            return
        reader = self.desk.reader
        values = reader.details(self.dossier_id)
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
                field.value = value
                field.disabled = not self.editable or (name == "code" and bool(self.row["code"]))
        finally:
            self._loading = False
        self._saved = self.values()
        self._show_procedure()
        self._show_title()
        self._show_info()
        self.load_pages()
        if draft is not None:
            self.say(
                _("Unsaved typing from {time} was restored. Ctrl+S saves it.").format(
                    time=local_time(draft["updated"])
                ),
                "ok",
            )
        elif not self.editable:
            self.say(_("This dossier is complete: it can be read, not changed."))
        first = next(
            (f for f in self.query(Field) if not f.disabled and not f.value and f.id != "note"),
            None,
        )
        if first is not None:
            first.focus()
        elif self.editable:
            self.query_one("#full_name", Input).focus()
        else:
            self.query_one(PageList).focus()

    def _show_title(self) -> None:
        count = len(self.office.store.pages(self.dossier_id))
        self.set_title(
            _("Dossier {code} · {status} · {pages}").format(
                code=self.row["code"] or _("(no code)"),
                status=status_label(self.row["status"]),
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
        self.query_one("#info", Static).update(" · ".join(parts))

    def _show_procedure(self) -> None:
        code = self.query_one("#procedure", Input).value.strip()
        found = self.office.catalogue.get(code) if code else None
        label = (
            found.name if found else (_("F2: choose from the catalogue") if self.editable else "")
        )
        self.query_one("#procedure-name", Static).update(label)

    def load_pages(self, keep: str | None = None) -> None:
        self._pages = page_rows(self.office.store, self.dossier_id)
        page_list = self.query_one(PageList)
        page_list.clear_options()
        for page in self._pages:
            label = Text(f"{page['position']:>2}. {MEDIA.get(page['media_type'], '?')}")
            if page["dpi"]:
                label.append(f" {int(page['dpi'])} dpi", style="dim")
            if page["flags"]:
                label.append(
                    " ⚠ " + ", ".join(flag_label(f) for f in page["flags"]), style="yellow"
                )
            page_list.add_option(Option(label, id=page["id"]))
        self.query_one("#pages-title", Static).update(
            ngettext("{n} page", "{n} pages", len(self._pages)).format(n=len(self._pages))
        )
        if self._pages:
            index = next((i for i, p in enumerate(self._pages) if p["id"] == keep), 0)
            page_list.highlighted = index
            self._preview_later()
        else:
            self.query_one(PagePreview).show_message(_("No pages."))

    # -- drafts -------------------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#{name}", Input).value for name in FORM_FIELDS}

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.input.remove_class("-invalid")
        if event.input.id == "procedure":
            self._show_procedure()
        if self._loading or not self.editable:
            return
        values = self.values()
        if values == self._saved:
            return
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
        if event.input.id == "procedure" and not self.office.catalogue.get(event.value):
            self.action_pick_procedure()
            return
        try:
            clean_details(
                self._detail_values(),
                today=self.office.today(),
                procedures=self.office.catalogue.codes(),
            )
        except DeskError as exc:
            # a CCCD that disagrees with the year of birth is said when either is typed
            related = {event.input.id}
            if event.input.id == "birth_year":
                related.add("cccd")
            if exc.field in related:
                self._mark(exc)
                return
        self.focus_next()

    # -- saving -------------------------------------------------------------------------------

    def _detail_values(self) -> dict[str, str]:
        values = self.values()
        values.pop("code")
        return values

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

    def action_complete(self) -> None:
        """Save, then ask: a completed dossier goes to the agency and is not edited again."""
        if not self.save():
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.desk.ledger.complete(self.dossier_id)
            except DeskError as exc:
                self._mark(exc)
                return
            self.dismiss_with(_("Dossier {code} is complete.").format(code=self.row["code"]))

        question = _("Complete dossier {code}? It cannot be changed afterwards.").format(
            code=self.row["code"] or _("(no code)")
        )
        self.app.push_screen(ConfirmDialog(question, _("Complete")), confirmed)

    def dismiss_with(self, message: str) -> None:
        self.app.pop_screen()
        screen = self.app.screen
        if isinstance(screen, DeskScreen):
            screen.refresh_data()
            screen.say(message, "ok")

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "complete", "merge", "pick_procedure", "move_page", "split"):
            return self.editable
        return True

    # -- procedure ----------------------------------------------------------------------------

    def action_pick_procedure(self) -> None:
        current = self.query_one("#procedure", Input).value

        def chosen(code: str | None) -> None:
            field = self.query_one("#procedure", Input)
            if code:
                field.value = code
                found = self.office.catalogue.get(code)
                appointment = self.query_one("#appointment", Input)
                if found and found.days and not appointment.value:
                    appointment.value = _working_days(self.office.today(), found.days).strftime(
                        "%d/%m/%Y"
                    )
                self.query_one("#full_name", Input).focus()
            else:
                field.focus()

        self.app.push_screen(ProcedurePicker(self.office.catalogue, current), chosen)

    # -- pages --------------------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#pages")
    def _highlighted(self) -> None:
        self._preview_later()

    def _preview_later(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.12, self._preview)

    def _current_page(self) -> dict[str, Any] | None:
        index = self.query_one(PageList).highlighted
        if index is None or not 0 <= index < len(self._pages):
            return None
        return self._pages[index]

    def _preview(self) -> None:
        page = self._current_page()
        preview = self.query_one(PagePreview)
        if page is None or self.office.unlocked is None:
            return
        try:
            data = self.desk.reader.page_bytes(page)
            preview.show(page_image(data, page["media_type"]))
        except Exception:
            preview.show_message(_("This page cannot be shown; it is stored unchanged."))

    @on(OptionList.OptionSelected, "#pages")
    def _enlarge(self) -> None:
        page = self._current_page()
        if page is None:
            return
        try:
            image = page_image(self.desk.reader.page_bytes(page), page["media_type"], 1200)
        except Exception:
            self.say(_("This page cannot be shown; it is stored unchanged."), "error")
            return
        title = _("Page {n}").format(n=page["position"])
        self.app.push_screen(PreviewDialog(title, image))

    def action_move_page(self, delta: int) -> None:
        page = self._current_page()
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
        page = self._current_page()
        if page is None:
            return
        if page["position"] == 1:
            self.fail(DeskError("split_first_page"))
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
        self.row = row
        count = len(self.office.store.pages(self.dossier_id))
        if count != len(self._pages):
            current = self._current_page()
            self.load_pages(keep=current["id"] if current else None)
        self._show_title()
        self._show_info()


_MAX = {"note": 500, "full_name": 100, "cccd": 20, "phone": 20, "birth_year": 4, "appointment": 10}


def _working_days(start: Any, days: int) -> Any:
    """The suggested return date: the catalogue's processing time in working days."""
    from datetime import timedelta

    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current
