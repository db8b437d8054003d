"""F1 or ?: every key of the screen underneath, with what it does, in the UI's language.

The footer has room for a few hints at 80 columns; this is where the rest are. The list
is read from the bindings active on that screen when F1 was pressed (its focused widget's,
its own, the app's), so it cannot drift from what the keys do; keys that move in a list
or between fields, which carry no description, are added in words. Esc, F1 or ? closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, OptionList, Static

from edge.tui.i18n import N_, _
from edge.tui.widgets.common import NAV_ITEMS, Plain, plain_text, translate_bindings
from edge.tui.widgets.dossier_list import DossierList


@dataclass(frozen=True)
class KeyHelp:
    keys: str
    what: str
    everywhere: bool
    """An app-wide key (navigation, lock, sign out), listed after the screen's own."""


def screen_keys(app: App[Any], screen: Screen[Any]) -> list[KeyHelp]:
    """What each key does on ``screen`` now, keys of one action together, the screen's first.

    A key the screen cannot use at the moment (its ``check_action`` says False) is not
    listed; one shown dimmed in the footer (None) is. Only keys the desk declares are
    listed: Textual's own (a field's cursor keys, "Focus Next") have English
    descriptions and are how every terminal program behaves; the digits that go to the
    screens of the top bar are one line.
    """
    found: dict[tuple[str, str], list[str]] = {}
    everywhere: dict[tuple[str, str], bool] = {}
    screens = False
    for _key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or not declared_here(active.node, binding):
            continue
        if binding.action.rpartition(".")[2].startswith("go("):
            screens = True
            continue
        what = (binding.action, binding.description)
        shown = key_name(binding)
        if shown not in found.setdefault(what, []):
            found[what].append(shown)
        everywhere[what] = everywhere.get(what, True) and active.node is app
    rows = [
        KeyHelp(" / ".join(keys), description, everywhere[(action, description)])
        for (action, description), keys in found.items()
    ]
    rows += list(_unlabelled(screen))
    if screens:
        rows.append(KeyHelp(f"1 … {len(NAV_ITEMS)}", _("Go to a screen of the top bar"), True))
    return sorted(rows, key=lambda row: row.everywhere)


def declared_here(node: object, binding: Binding) -> bool:
    """The binding comes from the BINDINGS of one of the desk's own classes."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("edge."):
            continue
        for declared in cls.__dict__.get("BINDINGS", ()):
            if not isinstance(declared, Binding):
                continue
            if binding.action == declared.action and binding.key in declared.key.split(","):
                return True
    return False


KEY_NAMES = {
    "enter": "Enter",
    "escape": "Esc",
    "space": "Space",
    "tab": "Tab",
    "slash": "/",
    "question_mark": "?",
    "delete": "Delete",
    "backspace": "Backspace",
    "pageup": "PgUp",
    "pagedown": "PgDn",
}


def key_name(binding: Binding) -> str:
    """A key as the keyboard labels it: Ctrl+L and Enter, where the footer says ^l and ⏎."""
    if binding.key_display:
        return binding.key_display
    modifiers, key = binding.parse_key()
    if key in KEY_NAMES:
        name = KEY_NAMES[key]
    elif key[:1] == "f" and key[1:].isdigit():
        name = key.upper()
    else:
        name = format_key(key)
        name = name.upper() if modifiers and len(name) == 1 else name
    return "+".join([*(m.capitalize() for m in modifiers), name])


def _unlabelled(screen: Screen[Any]) -> Iterable[KeyHelp]:
    """Keys that need no hint in the footer but belong in the help: moving about."""
    if bool(screen.query(DossierList)) or bool(screen.query(OptionList)):
        yield KeyHelp("↑ ↓ PgUp PgDn Home End", _("Move in the list"), False)
    if screen.query(Input):
        yield KeyHelp("Tab / Shift+Tab", _("Next / previous field"), False)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened on; Esc, F1 or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark", "close", N_("Close"), key_display="Esc"),
    ]

    AUTO_FOCUS = "#help-keys"

    def __init__(self, keys: list[KeyHelp], about: str = "") -> None:
        super().__init__()
        translate_bindings(self)
        self.keys = keys
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-box"):
            heading = _("Keys")
            if self.about:
                heading += " · " + self.about
            yield Plain(heading, classes="dialog-title")
            with VerticalScroll(id="help-keys"):
                yield Static(self._table())
        yield Footer(compact=True, show_command_palette=False)

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(no_wrap=True, style="bold")
        table.add_column(ratio=1)
        section = None
        for row in self.keys:
            if row.everywhere != section:
                section = row.everywhere
                title = _("On every screen") if section else _("On this screen")
                table.add_row(plain_text(title, "underline"), "")
            table.add_row(plain_text(row.keys, "bold"), plain_text(row.what))
        return table

    def action_close(self) -> None:
        self.dismiss(None)
