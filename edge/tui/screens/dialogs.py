"""Small modal dialogs: confirm, ask for one value, pick a procedure, look at a page.

Questions and titles carry data (file names, codes, citizens' and procedures' names):
they are ``Plain`` lines and ``plain`` options, never markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from edge.catalogue import Catalogue, Fee, Procedure
from edge.desk.appointment import ProcessingTime
from edge.domain import Channel
from edge.printable import printable
from edge.tui.i18n import N_, _, ngettext, number
from edge.tui.widgets.common import Field, Plain, StatusLine, plain, translate_bindings
from edge.tui.widgets.preview import HalfBlockView, PagePreview


class Dialog(ModalScreen[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), key_display="Esc")
    ]

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(Dialog):
    """Yes or no, with the safe answer focused: Enter on its own never destroys anything.

    ``yes_key`` (for questions that are not dangerous) also answers yes, shown on the button.
    """

    def __init__(
        self, question: str, yes: str, *, danger: bool = False, yes_key: str | None = None
    ) -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.danger = danger
        if yes_key and not danger:
            self._bindings.bind(yes_key, "answer_yes", yes, key_display=yes_key)

    def action_answer_yes(self) -> None:
        self.dismiss(True)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button(_("Cancel"), id="no", compact=True)
                yield Button(
                    self.yes, id="yes", variant="error" if self.danger else "primary", compact=True
                )
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptDialog(Dialog):
    def __init__(self, title: str, label: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(self.title_text, classes="dialog-title")
            yield Label(self.label, markup=False)
            yield Field(value=self.value, id="value", compact=True, max_length=100)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _done(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


def time_text(processing: ProcessingTime | None) -> str:
    """A processing time as the clerk tells the citizen: "3 working days", "same day"."""
    if processing is None:
        return _("time not stated")
    if processing.unit == "days":
        return ngettext("{n} working day", "{n} working days", processing.value).format(
            n=number(processing.value)
        )
    if processing.unit == "hours":
        return ngettext("{n} working hour", "{n} working hours", processing.value).format(
            n=number(processing.value)
        )
    if processing.cutoff is not None:
        return _("same day if received before {time}").format(
            time=processing.cutoff.strftime("%H:%M")
        )
    return _("same day")


def fee_text(fee: Fee | None) -> str:
    """What the citizen pays: "free", "20.000 VND", or that the catalogue does not say."""
    if fee is None:
        return _("fee not stated")
    if not fee.total:
        return _("free")
    amount = _("{amount} VND").format(amount=number(fee.total))
    return f"{amount}/{fee.per}" if fee.per else amount


def procedure_summary(procedure: Procedure, channel: int = Channel.TRUC_TIEP) -> str:
    """Agency, processing time and fee in one line, for the channel the dossier came by."""
    parts = [
        procedure.agency or _("agency not stated"),
        time_text(procedure.time_for(channel)),
        fee_text(procedure.fee_for(channel)),
    ]
    return " · ".join(parts)


class ProcedurePicker(Dialog):
    """Type any part of a procedure's name or code, with or without accents.

    The line under the list says who handles the highlighted procedure, how long it
    takes and what it costs by the dossier's channel: what the citizen asks first.
    """

    DEFAULT_CSS = """
    ProcedurePicker OptionList { height: 1fr; border: none; }
    ProcedurePicker #detail { height: 1; color: $text-muted; }
    """

    def __init__(
        self, catalogue: Catalogue, query: str = "", channel: int = Channel.TRUC_TIEP
    ) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.query_text = query
        self.channel = channel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="picker-box"):
            yield Plain(_("Choose the procedure"), classes="dialog-title")
            yield Field(
                value=self.query_text,
                placeholder=_("Type part of the name or code, e.g. khai sinh"),
                id="filter",
                compact=True,
            )
            yield OptionList(id="choices", markup=False)
            yield Plain("", id="detail")
            yield StatusLine("", id="count")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._fill(self.query_text if not self.catalogue.get(self.query_text) else "")
        self.query_one("#filter", Input).focus()

    def _fill(self, query: str) -> None:
        found = self.catalogue.search(query)
        choices = self.query_one(OptionList)
        choices.clear_options()
        for procedure in found:
            prompt = plain(f"{procedure.code}  {procedure.name}")
            choices.add_option(Option(prompt, id=procedure.code))
        if found:
            choices.highlighted = 0
        self._show_detail()
        self.query_one("#count", StatusLine).say(
            _("{n} of {total} procedures").format(
                n=number(len(found)), total=number(len(self.catalogue.procedures))
            )
        )

    @on(OptionList.OptionHighlighted)
    def _show_detail(self) -> None:
        choices = self.query_one(OptionList)
        procedure = None
        if choices.highlighted is not None and choices.option_count:
            code = choices.get_option_at_index(choices.highlighted).id
            procedure = self.catalogue.get(code or "")
        detail = procedure_summary(procedure, self.channel) if procedure is not None else ""
        self.query_one("#detail", Plain).update(detail)

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#filter")
    def _take_first(self) -> None:
        choices = self.query_one(OptionList)
        if choices.highlighted is not None and choices.option_count:
            option = choices.get_option_at_index(choices.highlighted)
            self.dismiss(option.id)

    def on_key(self, event: Any) -> None:
        if event.key in ("down", "up") and self.focused is self.query_one("#filter"):
            choices = self.query_one(OptionList)
            if event.key == "down":
                choices.action_cursor_down()
            else:
                choices.action_cursor_up()
            event.stop()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PreviewDialog(Dialog):
    """A page as large as the terminal allows."""

    DEFAULT_CSS = """
    PreviewDialog PagePreview, PreviewDialog HalfBlockView { height: 1fr; }
    """

    def __init__(self, title: str, image: Image.Image) -> None:
        super().__init__()
        self.title_text = title
        self.image = image

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="preview-box"):
            yield Plain(self.title_text, classes="dialog-title")
            yield PagePreview()
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(PagePreview).show(self.image)


class FileWrittenDialog(Dialog):
    """Where a written file is, in full (wrapped, never cut at 80 columns), and what next.

    Dismissed with ``"print"``, ``"stick"`` or None; the screen that wrote the file acts.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "choose('print')", N_("Print"), key_display="P"),
        Binding("u", "choose('stick')", N_("Copy to USB stick"), key_display="U"),
    ]

    def __init__(self, summary: str, path: Path) -> None:
        super().__init__()
        self.summary = summary
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(self.summary, classes="dialog-title")
            yield Plain(_("Folder: {folder}").format(folder=self.path.parent), id="folder")
            yield Plain(_("File: {name}").format(name=self.path.name), id="file")
            with Horizontal(classes="dialog-buttons"):
                yield Button(_("Close"), id="close", compact=True)
                yield Button(_("Copy to USB stick"), id="stick", compact=True)
                yield Button(_("Print"), id="print", variant="primary", compact=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#print", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "close" else event.button.id)


class HandBackDialog(Dialog):
    """Who took the result away, and the number of the ID paper they showed."""

    def __init__(self, code: str, citizen: str, procedure: str) -> None:
        super().__init__()
        self.code = code
        self.citizen = citizen
        self.procedure = procedure

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(_("Hand back result {code}").format(code=self.code), classes="dialog-title")
            yield Plain(_("Citizen: {name}").format(name=self.citizen or "—"))
            yield Plain(_("Procedure: {name}").format(name=self.procedure or "—"), classes="muted")
            yield Label(_("Received by (full name)"))
            yield Field(value=printable(self.citizen), id="receiver", compact=True, max_length=100)
            yield Label(_("Number of the ID paper shown (CCCD, passport)"))
            yield Field(id="receiver_id", compact=True, max_length=20)
            yield StatusLine(
                _("Check the ID paper against the person, then press Enter."), id="msg"
            )
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#receiver_id", Input).focus()

    @on(Input.Submitted, "#receiver")
    def _to_id(self) -> None:
        self.query_one("#receiver_id", Input).focus()

    @on(Input.Submitted, "#receiver_id")
    def _done(self) -> None:
        receiver = self.query_one("#receiver", Input).value.strip()
        receiver_id = self.query_one("#receiver_id", Input).value.strip()
        if not receiver:
            self.query_one("#msg", StatusLine).say(_("Type who received the result."), "error")
            self.query_one("#receiver", Input).focus()
            return
        if len(receiver_id) < 6:
            self.query_one("#msg", StatusLine).say(
                _("Type the number of the ID paper the person showed."), "error"
            )
            return
        self.dismiss((receiver, receiver_id))


__all__ = [
    "ConfirmDialog",
    "FileWrittenDialog",
    "HalfBlockView",
    "HandBackDialog",
    "PreviewDialog",
    "ProcedurePicker",
    "PromptDialog",
    "fee_text",
    "procedure_summary",
    "time_text",
]
