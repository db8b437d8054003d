"""Small shared pieces: translated key hints, a form field, the navigation bar, plain text.

Data the screens show (file names, codes and texts read from paper, citizens' names,
procedure names from reference data, central's answers, configuration values) is
outside text: it is never parsed as Textual markup, where ``[@click=app.quit]`` in a
file name would be a button and ``[a="]`` would stop the app, and its control
characters are made visible (``edge.printable``) before they reach the terminal.
:class:`Plain` is the widget for lines that carry such data, :func:`plain` and
:func:`plain_text` the values for the places that take a renderable (options, tables).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.dom import DOMNode
from textual.message import Message
from textual.visual import VisualType
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from edge.printable import printable
from edge.tui.i18n import N_, _

NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("1", "home", N_("Home")),
    ("2", "inbox", N_("Dossiers")),
    ("3", "results", N_("Results")),
    ("4", "handover", N_("Handover")),
    ("5", "sync", N_("Sync")),
    ("6", "quarantine", N_("Quarantine")),
    ("7", "tasks", N_("Tasks")),
)
"""Key, screen name and (English message id of) the label of each top-level screen."""


def translate_bindings(node: DOMNode) -> None:
    """Key hints in the footer in the UI language.

    Textual copies a class's BINDINGS into each instance; descriptions there are
    message ids (marked with N_), replaced here once the language is chosen.
    """
    for key, bindings in node._bindings.key_to_bindings.items():
        node._bindings.key_to_bindings[key] = [
            replace(b, description=_(b.description)) if b.description else b for b in bindings
        ]


def plain(value: object) -> Content:
    """``value`` as text that is shown exactly, whatever characters it holds."""
    return Content(printable(value))


def plain_text(value: object, style: str = "") -> Text:
    """``plain`` for Rich renderables (table cells, where a string would be markup)."""
    return Text(printable(value), style=style)


class Plain(Static):
    """A Static whose strings are shown as they are: never markup, control characters visible.

    A translated sentence with data formatted into it is a string like any other, so
    every line that may carry outside data is a Plain (titles, status lines, dialogs).
    """

    def __init__(
        self,
        content: VisualType = "",
        *,
        expand: bool = False,
        shrink: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(
            _shown(content),
            expand=expand,
            shrink=shrink,
            markup=False,
            name=name,
            id=id,
            classes=classes,
            disabled=disabled,
        )

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(_shown(content), layout=layout)


def _shown(content: VisualType) -> VisualType:
    return plain(content) if isinstance(content, str) else content


class Field(Input):
    """A one-line form field; its cursor does not blink in headless runs (stable snapshots).

    Pasted text is outside text: its control characters are made visible rather than
    typed into the value, where the field would echo them to the terminal.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The screens mark fields themselves (``-invalid``); Textual's own validation would
        # clear the mark when the cursor leaves the field, before the clerk fixed it.
        kwargs.setdefault("validate_on", ())
        super().__init__(*args, **kwargs)

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False

    def _on_paste(self, event: events.Paste) -> None:
        # Textual calls this before Input's own handler, which inserts the (first line of) text
        lines = event.text.splitlines()
        event.text = printable(lines[0]) if lines else ""


class ChoiceField(Field):
    """A field that takes only a choice from a list: typing opens the list instead.

    A printable key posts ``Wanted`` with the character (the screen opens its picker with
    it as the first letter of the search); Backspace and Delete clear the choice; a paste
    is ignored. So a citizen's name typed into the wrong field never becomes a procedure.
    """

    class Wanted(Message):
        def __init__(self, field: ChoiceField, typed: str) -> None:
            super().__init__()
            self.field = field
            self.typed = typed

        @property
        def control(self) -> ChoiceField:
            return self.field

    async def _on_key(self, event: events.Key) -> None:
        if self.disabled:
            return
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self.post_message(self.Wanted(self, event.character))
        elif event.key in ("backspace", "delete", "ctrl+u", "ctrl+k", "ctrl+w"):
            event.stop()
            event.prevent_default()
            self.value = ""

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()


class NavBar(Static):
    """The top line: where the clerk is, and the digit that goes to every other screen.

    "/ Search" closes the line where it fits; at 80 columns the seven screens take the
    whole line in Vietnamese, and a cut "/ Tìm" helped nobody (F1 and the home screen say /).
    """

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        for number, name, label in NAV_ITEMS:
            style = "bold reverse" if name == self.current else ""
            line.append(f" {number} ", style="bold " + ("reverse" if style else ""))
            line.append(f"{_(label)} ", style=style)
        search = Text.assemble((" / ", "bold"), _("Search"))
        if not self.size.width or line.cell_len + search.cell_len <= self.size.width:
            line.append_text(search)
        return line


class Title(Plain):
    """The screen's title line, with a count or context on the right."""

    DEFAULT_CSS = """
    Title { height: 1; text-style: bold; padding: 0 1; color: $text; background: $boost; }
    """


class StatusLine(Plain):
    """One line for what just happened or what went wrong, and what to do next."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; color: $text-muted; }
    StatusLine.-error { color: $text-error; text-style: bold; }
    StatusLine.-ok { color: $text-success; }
    """

    def say(self, message: str, kind: str = "info") -> None:
        self.set_classes(f"-{kind}")
        self.update(message)


class DeskFooter(Footer):
    """The key hints of a desk screen, in one line that fits the terminal.

    The screen's own keys and F1 (which lists every key) come first; hints for keys that
    work everywhere and are also in the help (``optional``, e.g. Ctrl+L) are left out,
    last first, when the line would be cut off at the right edge, as "^l Khóa" was at
    80 columns.
    """

    def __init__(self, *, optional: tuple[str, ...] = ()) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self.optional = optional
        self._width = 0

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        self._width = room = self.app.size.width
        while hint_width(keys) > room:
            spare = [k for k in keys if isinstance(k, FooterKey) and k.action in self.optional]
            if not spare:
                break
            keys.remove(spare[-1])
        yield from keys

    def on_resize(self, event: events.Resize) -> None:
        if self.app.size.width != self._width:
            self.refresh(recompose=True)


def hint_width(keys: list[Any]) -> int:
    """Cells the compact footer takes for these hints: "key description", a space between."""
    widths = [
        cell_len(k.key_display) + (1 + cell_len(k.description) if k.description else 0)
        for k in keys
        if isinstance(k, FooterKey)
    ]
    return sum(widths) + max(0, len(widths) - 1)
