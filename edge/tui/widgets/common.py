"""Small shared pieces: translated key hints, a form field, the navigation bar."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.dom import DOMNode
from textual.widgets import Input, Static

from edge.tui.i18n import N_, _

NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("1", "home", N_("Home")),
    ("2", "inbox", N_("Dossiers")),
    ("3", "results", N_("Results")),
    ("4", "handover", N_("Handover")),
    ("5", "sync", N_("Sync")),
    ("6", "quarantine", N_("Quarantine")),
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


class Field(Input):
    """A one-line form field; its cursor does not blink in headless runs (stable snapshots)."""

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False


class NavBar(Static):
    """The top line: where the clerk is, and the digit that goes to every other screen."""

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
        line.append(" / ", style="bold")
        line.append(_("Search"))
        return line


class Title(Static):
    """The screen's title line, with a count or context on the right."""

    DEFAULT_CSS = """
    Title { height: 1; text-style: bold; padding: 0 1; color: $text; background: $boost; }
    """


class StatusLine(Static):
    """One line for what just happened or what went wrong, and what to do next."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; color: $text-muted; }
    StatusLine.-error { color: $text-error; text-style: bold; }
    StatusLine.-ok { color: $text-success; }
    """

    def say(self, message: str, kind: str = "info") -> None:
        self.set_classes(f"-{kind}")
        self.update(message)
