"""The clerk's terminal UI: ``edge tui --state DIR [--lang vi|en]``.

One Textual app over its own connection to the box's database. A timer looks
at the newest event every second or two and redraws the screen when the
capture daemon (or sync) wrote something, says in a toast which scan brought
new dossiers, and locks the desk after the configured idle minutes. Every few
seconds it also reads the capture daemon's heartbeat: after two minutes without
a running daemon every screen shows a warning line until it is back.

The footer shows each screen's own keys, F1 (help) and, where there is room,
Ctrl+L; F1 or ? lists every key of the screen. The digits 1-7 go to the
top-level screens, ``/`` searches from any list, Enter opens the row under the
cursor on every list. Ctrl+Q signs out (asking first when typing is not saved);
on the sign-in and lock screens it does nothing: on the box's console the UI is
the whole terminal, and quitting it must never leave a shell prompt. F4 on the
home and dossier screens scans a batch into the inbox in a worker thread
(scanimage blocks); the scan is the app's, so its count follows the clerk
between screens, and F4 again or Esc stops it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path
from typing import ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input
from textual.worker import get_current_worker

from edge.capture.scanner import ScanError, ScanOptions, ScanProblem, ScanResult, scan_batch
from edge.desk import DeskError, DeskReason
from edge.printable import printable
from edge.tui.i18n import N_, _, ngettext, number
from edge.tui.messages import explain, scan_problem
from edge.tui.office import Office
from edge.tui.queries import last_seq, new_scans
from edge.tui.screens.base import DeskScreen
from edge.tui.screens.help import HelpScreen, screen_keys
from edge.tui.screens.signin import SignInScreen
from edge.tui.widgets.common import translate_bindings

log = logging.getLogger("edge.tui")

FEW_COLOURS = ("standard", "windows")
TOASTS_PER_LOOK = 3
"""Files named in toasts at one look; the dossiers of any others are told in one more."""
CAPTURE_CHECK_SECONDS = 5.0
CAPTURE_GRACE_SECONDS = 120.0
"""How long the daemon may be away (a restart, an update) before every screen says so."""


def console_theme(color_system: str | None) -> str:
    """The box's own console (``TERM=linux``) has 16 colours, 8 of them as backgrounds.

    The default theme's greys all become black there: empty fields vanished and focus
    showed only as the blinking cursor. The ANSI theme uses the terminal's own palette,
    and app.tcss gives fields and focus colours that survive it.
    """
    return "ansi-dark" if color_system in FEW_COLOURS else "textual-dark"


class ScanProgress(Message):
    """A page of the running batch is on disk (posted from the scan's thread)."""

    def __init__(self, pages: int) -> None:
        super().__init__()
        self.pages = pages


class ScanEnded(Message):
    """The batch is over: ``result`` when pages were kept, ``problem`` when none were."""

    def __init__(self, result: ScanResult | None, problem: ScanProblem | None) -> None:
        super().__init__()
        self.result = result
        self.problem = problem


def scanned_text(pages: int) -> str:
    return ngettext("Scanned {n} page.", "Scanned {n} pages.", pages).format(n=number(pages))


def new_scans_text(name: str, n: int) -> str:
    return ngettext("{n} new dossier from {file}", "{n} new dossiers from {file}", n).format(
        n=number(n), file=printable(name)
    )


class EdgeApp(App[None]):
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "Commune Edge"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "go('home')", N_("Home"), show=False),
        Binding("2", "go('inbox')", N_("Dossiers"), show=False),
        Binding("3", "go('results')", N_("Results"), show=False),
        Binding("4", "go('handover')", N_("Handover"), show=False),
        Binding("5", "go('sync')", N_("Sync"), show=False),
        Binding("6", "go('quarantine')", N_("Quarantine"), show=False),
        Binding("7", "go('tasks')", N_("Tasks"), show=False),
        # the navigation bar already says "/ Search"
        Binding("slash", "search", N_("Search"), key_display="/", show=False),
        Binding("f1", "help", N_("Help"), key_display="F1"),
        Binding("question_mark", "help", N_("Help"), key_display="?", show=False),
        Binding("ctrl+l", "lock", N_("Lock")),
        # priority: the same on every screen and dialog; Textual's own Ctrl+Q quits at once
        Binding("ctrl+q", "quit", N_("Sign out"), show=False, priority=True),
    ]

    OPTIONAL_HINTS = ("choose", "select", "lock")
    """Footer hints left out, from the right, when a screen's line would not fit: Ctrl+L,
    then Enter (it opens the row on every list). F1 lists them all."""

    def __init__(
        self,
        office: Office,
        *,
        idle_minutes: float | None = None,
        refresh_seconds: float = 1.5,
        color_system: str | None = None,
    ) -> None:
        super().__init__()
        translate_bindings(self)
        self.office = office
        self.idle_seconds = 60.0 * (
            idle_minutes if idle_minutes is not None else office.settings.idle_lock_minutes
        )
        self.refresh_seconds = refresh_seconds
        self.last_input = time.monotonic()
        self.seen_seq = 0
        self._scan_stop: threading.Event | None = None
        self.capture_grace = CAPTURE_GRACE_SECONDS
        self.capture_down = False
        """Every screen shows the warning line while this is true."""
        self._capture_seen = time.monotonic()
        self._capture_checked = -CAPTURE_CHECK_SECONDS
        self._sign_out_question: ModalScreen[bool] | None = None
        self.theme = console_theme(color_system or self.console.color_system)

    def on_mount(self) -> None:
        self._settle_memory()
        self.push_screen(SignInScreen())
        if self.office.unlocked is not None:
            self.signed_in(self.office.unlocked.clerk, resume=False)
        self.seen_seq = last_seq(self.office.store)
        self.set_interval(self.refresh_seconds, self.tick)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown):
            self.last_input = time.monotonic()
        await super().on_event(event)

    @staticmethod
    def _settle_memory() -> None:
        """Move what exists now (modules, catalogues, widgets) out of the cyclic collector's way.

        Otherwise a full collection walks all of it now and then, and that pause
        (50-80 ms measured while scrolling) lands on whatever key the clerk pressed.
        """
        gc.collect()
        gc.freeze()

    # -- the periodic look at the database ----------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        idle = now - self.last_input
        if self.office.unlocked is not None and 0 < self.idle_seconds <= idle:
            self.lock("idle")
            return
        if now - self._capture_checked >= CAPTURE_CHECK_SECONDS:
            self._capture_checked = now
            self.check_capture(now)
        seq = last_seq(self.office.store)
        if seq != self.seen_seq:
            if self.office.unlocked is not None:
                # file names can name citizens: nobody at a locked counter reads them
                self.announce_scans(self.seen_seq)
            self.seen_seq = seq
            self.data_changed()

    def announce_scans(self, after_seq: int) -> None:
        """A toast for the dossiers capture opened since the last look, by scanned file."""
        found = new_scans(self.office.store, after_seq)
        for name, n in found[:TOASTS_PER_LOOK]:
            self.notify(new_scans_text(name, n), timeout=6, markup=False)
        more = sum(n for _name, n in found[TOASTS_PER_LOOK:])
        if more:
            text = ngettext(
                "{n} more new dossier from other files",
                "{n} more new dossiers from other files",
                more,
            )
            self.notify(text.format(n=number(more)), timeout=6, markup=False)

    def check_capture(self, now: float) -> None:
        """Warn on every screen once the daemon has not been seen running for a while.

        A restart or an update takes the daemon away for seconds; the line would only
        alarm the clerk for nothing. It goes as soon as the daemon is back.
        """
        if self.office.capture_probe():
            self._capture_seen = now
        down = now - self._capture_seen >= self.capture_grace
        if down == self.capture_down:
            return
        self.capture_down = down
        for screen in self.screen_stack:
            if isinstance(screen, DeskScreen) and screen.is_mounted:
                screen.show_capture_down(down)

    def data_changed(self) -> None:
        """Redraw every signed-in screen on the stack (the one below a dialog too)."""
        if self.office.unlocked is None:
            return
        for screen in self.screen_stack:
            # a screen still being built has nothing to redraw yet (its on_mount loads it)
            if isinstance(screen, DeskScreen) and screen.is_mounted:
                try:
                    screen.refresh_data()
                except NoMatches:
                    # a tick that lands while the app closes finds the screen's widgets
                    # already taken down: nothing is left to redraw
                    continue

    # -- sign-in, lock, sign-out ----------------------------------------------------------------

    def signed_in(self, clerk: str, *, resume: bool) -> None:
        self.last_input = time.monotonic()
        if resume and any(isinstance(s, DeskScreen) for s in self.screen_stack):
            self.pop_screen()
            self.data_changed()
            return
        from edge.tui.screens.home import HomeScreen

        while len(self.screen_stack) > 2:
            self.pop_screen()
        if self.office.must_change_password:
            from edge.tui.screens.signin import ChangePasswordScreen

            self.switch_screen(ChangePasswordScreen())
            return
        self.switch_screen(HomeScreen())
        self.call_after_refresh(self._settle_memory)

    def password_changed(self) -> None:
        from edge.tui.screens.home import HomeScreen

        self.switch_screen(HomeScreen())
        self.notify(_("Your new password is saved. Use it from now on."), timeout=6)

    def lock(self, reason: str) -> None:
        unlocked = self.office.unlocked
        if unlocked is None:
            return
        clerk = unlocked.clerk
        self.office.lock(reason)
        while isinstance(self.screen, ModalScreen):
            self.pop_screen()
        for screen in self.screen_stack:
            if isinstance(screen, DeskScreen) and screen.is_mounted:
                screen.forget()
        self.push_screen(SignInScreen(locked_by=clerk))
        if reason == "idle":
            self.notify(_("Locked after a period without use."), timeout=8)

    def action_help_quit(self) -> None:
        self.notify(_("Ctrl+Q signs out."))

    def action_lock(self) -> None:
        self.lock("manual")

    async def action_quit(self) -> None:
        """Ctrl+Q signs the clerk out, after asking if typing would be left unsaved.

        Never the program: signed out, ``check_action`` turns the key off here and the
        sign-in screen only says so (edge-tui@.service would start the UI again anyway,
        after a flash of shell prompt on the counter's screen).
        """
        if self.screen is self._sign_out_question:
            return
        if not self.unsaved_typing():
            self.sign_out()
            return
        from edge.tui.screens.dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            self._sign_out_question = None
            if yes:
                self.sign_out()

        question = _("Some typing is not saved yet. Sign out anyway?")
        self._sign_out_question = ConfirmDialog(question, _("Sign out"), danger=True)
        self.push_screen(self._sign_out_question, answered)

    def sign_out(self) -> None:
        self.office.lock("signed_out")
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(SignInScreen())

    def unsaved_typing(self) -> bool:
        """Typing signing out would leave: in a form not saved, or in an open dialog.

        The dossier form keeps a sealed draft of what is typed (saved at a pause, and
        here at once), so a draft is unsaved typing; a screen may say so itself
        (``DeskScreen.unsaved_typing``); a dialog's fields are lost if it closes.
        """
        from edge.tui.screens.dossier import DossierScreen

        for screen in self.screen_stack:
            if isinstance(screen, DossierScreen) and screen.editable:
                screen.save_draft()
                if self.office.store.draft(screen.dossier_id) is not None:
                    return True
            if isinstance(screen, DeskScreen) and screen.unsaved_typing():
                return True
            if isinstance(screen, ModalScreen) and any(
                field.value and not field.disabled for field in screen.query(Input)
            ):
                return True
        return False

    def action_help(self) -> None:
        """The keys of the screen on top (the one under a dialog's help is the dialog's)."""
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        about = ""
        if isinstance(self.screen, DeskScreen):
            try:
                about = str(self.screen.query_one("#title").render())
            except NoMatches:
                about = ""
        self.push_screen(HelpScreen(screen_keys(self, self.screen), about))

    # -- scanning (issue 17) -------------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        return self._scan_stop is not None

    def start_scan(self, into: str | None = None) -> None:
        """Scan one batch into the inbox (into a dossier from its screen); pressed again, stop.

        The scan belongs to the app, not to the screen that started it: the clerk may
        move between screens while the feeder runs, and the count follows them.
        """
        if self._scan_stop is not None:
            self.stop_scan()
            return
        inbox = self.office.inbox
        if inbox is None:
            self._scan_say(explain(DeskError(DeskReason.NO_INBOX)), "error")
            return
        self._scan_stop = threading.Event()
        self._scan_say(self._scanning_text(0))
        self._scan_batch(ScanOptions.from_settings(self.office.settings), inbox, into)
        self.screen.refresh_bindings()

    def stop_scan(self) -> None:
        """Stop the feeder; the pages already scanned are kept and handed to capture."""
        if self._scan_stop is None or self._scan_stop.is_set():
            return
        self._scan_stop.set()
        self._scan_say(_("Stopping the scan…"))

    @work(thread=True, exclusive=True, group="scan")
    def _scan_batch(self, options: ScanOptions, inbox: Path, into: str | None) -> None:
        """Runs in its own thread: scanimage blocks for the whole batch."""
        worker = get_current_worker()
        stop = self._scan_stop
        assert stop is not None

        def stopped() -> bool:
            return stop.is_set() or worker.is_cancelled

        def page(count: int) -> None:
            if not worker.is_cancelled:
                self.post_message(ScanProgress(count))

        result: ScanResult | None = None
        problem: ScanProblem | None = None
        try:
            result = scan_batch(options, inbox, into=into, on_page=page, should_stop=stopped)
        except ScanError as exc:
            problem = exc.problem
            log.warning("scan failed: %s %s", exc.problem, exc.detail)
        except Exception:
            problem = ScanProblem.SCAN_FAILED
            log.exception("scan failed")
        if not worker.is_cancelled:
            self.post_message(ScanEnded(result, problem))

    def on_scan_progress(self, message: ScanProgress) -> None:
        if self._scan_stop is not None and not self._scan_stop.is_set():
            self._scan_say(self._scanning_text(message.pages))

    def on_scan_ended(self, message: ScanEnded) -> None:
        self._scan_stop = None
        self.screen.refresh_bindings()
        result = message.result
        if result is None:
            self._scan_say(scan_problem(message.problem or ScanProblem.SCAN_FAILED), "error")
        elif result.cut_short is None:
            self._scan_say(scanned_text(len(result.pages)), "ok")
        else:
            kind = "info" if result.cut_short is ScanProblem.STOPPED else "error"
            self._scan_say(
                scanned_text(len(result.pages)) + " " + scan_problem(result.cut_short), kind
            )

    @staticmethod
    def _scanning_text(pages: int) -> str:
        return ngettext(
            "Scanning… {n} page. F4 or Esc stops.", "Scanning… {n} pages. F4 or Esc stops.", pages
        ).format(n=number(pages))

    def _scan_say(self, message: str, kind: str = "info") -> None:
        """On the topmost desk screen: under a dialog or the lock screen, it is read after."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DeskScreen):
                screen.say(message, kind)
                return
        self.notify(message, severity="error" if kind == "error" else "information")

    # -- navigation ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit":
            # signed out, the key is the sign-in screen's (it says the program stays open)
            return self.office.unlocked is not None
        blocked = self.office.unlocked is None or isinstance(self.screen, ModalScreen)
        if action == "search" and not getattr(self.screen, "searchable", False):
            return False
        return not (action in ("go", "search", "lock") and blocked)

    def action_go(self, name: str) -> None:
        from edge.tui.screens import handover, home, inbox, quarantine, results, sync, tasks

        factories = {
            "home": home.HomeScreen,
            "inbox": inbox.InboxScreen,
            "results": results.ResultsScreen,
            "handover": handover.HandoverScreen,
            "sync": sync.SyncScreen,
            "quarantine": quarantine.QuarantineScreen,
            "tasks": tasks.TasksScreen,
        }
        if getattr(self.screen, "nav", None) == name and len(self.screen_stack) <= 3:
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if name == "home":
            if not isinstance(self.screen, home.HomeScreen):
                self.switch_screen(home.HomeScreen())
            return
        self.push_screen(factories[name]())

    def action_search(self) -> None:
        from edge.tui.screens.search import SearchScreen

        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen())

    def open_dossier(self, dossier_id: str) -> None:
        from edge.tui.screens.dossier import DossierScreen

        self.push_screen(DossierScreen(dossier_id))
