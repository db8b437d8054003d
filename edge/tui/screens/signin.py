"""Sign-in, and the lock screen after idle minutes or Ctrl+L.

The user name is focused first; Tab goes to the password; Enter signs in.
Checking a password takes a deliberate moment (scrypt), then the office key
is unwrapped into memory. Wrong passwords cost growing delays, then a lockout,
kept in the database so a restart does not reset them.

Ctrl+Q does not leave these screens: on the box's console the UI is all there is,
and a program that quits leaves the counter with a shell prompt. The app signs out
with it once a clerk is signed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from edge import __version__
from edge.desk import DeskError
from edge.tui.i18n import _
from edge.tui.messages import explain
from edge.tui.widgets.common import Field, Plain, StatusLine, translate_bindings

if TYPE_CHECKING:
    from edge.tui.app import EdgeApp


class SignInScreen(Screen[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "stay", show=False),
        # Priority, so Tab moves focus before the next keys are delivered: typed in one
        # burst (a password manager's auto-type, a fast typist over SSH), "lan<Tab>pass"
        # would otherwise land whole in the user-name field.
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def __init__(self, *, locked_by: str | None = None) -> None:
        super().__init__()
        translate_bindings(self)
        self.locked_by = locked_by

    @property
    def edge(self) -> EdgeApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        office = self.edge.office
        with Center(), Vertical(id="box"):
            heading = _("Screen locked") if self.locked_by else _("Sign in")
            yield Static(heading, id="heading")
            yield Plain(
                _("Post office {office} · Commune Edge {version}").format(
                    office=office.office_code, version=__version__
                ),
                id="office",
            )
            yield Label(_("User name"))
            yield Field(value=self.locked_by or "", id="user", compact=True, max_length=64)
            yield Label(_("Password"))
            yield Field(password=True, id="password", compact=True, max_length=256)
            hint = (
                _("Type your password to continue, or sign in as another clerk.")
                if self.locked_by
                else _("Tab moves to the password; Enter signs in.")
            )
            yield StatusLine(hint, id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        target = "#password" if self.locked_by else "#user"
        self.query_one(target, Input).focus()

    def action_stay(self) -> None:
        self.notify(_("This screen stays open: sign in to work."))

    @on(Input.Submitted, "#user")
    def _to_password(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    def _submit(self) -> None:
        user = self.query_one("#user", Input)
        password = self.query_one("#password", Input)
        status = self.query_one("#status", StatusLine)
        if not user.value.strip():
            status.say(_("Type your user name first."), "error")
            user.focus()
            return
        if not password.value:
            status.say(_("Type your password."), "error")
            return
        try:
            unlocked = self.edge.office.sign_in(user.value, password.value)
        except DeskError as exc:
            password.value = ""
            status.say(explain(exc), "error")
            return
        password.value = ""
        self.edge.signed_in(unlocked.clerk, resume=self.locked_by == unlocked.clerk)


class ChangePasswordScreen(Screen[Any]):
    """First sign-in with a password regional IT set: the clerk chooses their own.

    There is no way past it but a new password (``DeskLedger.change_password``): one a
    guesser would reach soon, or the temporary one again, is refused with a line that
    says why, so a stolen box's key is never wrapped under a password others know.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    @property
    def edge(self) -> EdgeApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="box"):
            yield Static(_("Choose your own password"), id="heading")
            yield Static(
                _("The password you were given is for the first sign-in only."), id="office"
            )
            yield Static(
                _(
                    "Use a phrase of 4 unrelated words only you would think of: "
                    "not your name, the office, a date, or 12345678."
                ),
                id="advice",
            )
            yield Label(_("New password (at least 8 characters)"))
            yield Field(password=True, id="new", compact=True, max_length=256)
            yield Label(_("New password again"))
            yield Field(password=True, id="again", compact=True, max_length=256)
            yield StatusLine("", id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#new", Input).focus()

    @on(Input.Submitted, "#new")
    def _to_again(self) -> None:
        self.query_one("#again", Input).focus()

    @on(Input.Submitted, "#again")
    def _submit(self) -> None:
        new = self.query_one("#new", Input)
        again = self.query_one("#again", Input)
        status = self.query_one("#status", StatusLine)
        if new.value != again.value:
            again.value = ""
            status.say(_("The two passwords differ. Type the new password again."), "error")
            return
        office = self.edge.office
        if office.unlocked is None:
            return
        try:
            office.unlocked.ledger.change_password(office.keyring, new.value)
        except DeskError as exc:
            new.value = again.value = ""
            new.focus()
            status.say(explain(exc), "error")
            return
        self.edge.password_changed()
