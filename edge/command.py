"""What every ``edge`` sub-command shares: the errors a person can fix, exit codes, the
one-line error report, the password prompt, the box's folders and a clerk's sign-in.

The sub-command modules (``edge.sync.cli``, ``edge.sync.central.cli``,
``edge.update.admin_cli``) and ``edge.cli``, which registers them, all import from
here, so no command module imports the one that registers it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.desk import DeskError
    from edge.vault import Keyring, OfficeSession


class UserError(Exception):
    """A mistake the person can fix; the message says how."""


EXIT_FAIL = 1
"""The command ran and something it reports did not work (scans left in the inbox...)."""
EXIT_USAGE = 2
"""A mistake the person can fix: the one line says how."""
EXIT_BUG = 70
"""Anything else: a defect in this program (EX_SOFTWARE), reported as such, with the
traceback in the log, so that it is never mistaken for a typo."""


def say_error(message: object) -> None:
    """One ``edge: error:`` line on stderr.

    Messages quote paths, file names, configuration values and central's answers: what
    would act on the technician's terminal is shown escaped (``edge.printable``), and
    the message cannot break into lines that look like the command's own.
    """
    from edge.printable import printable

    print(f"edge: error: {printable(message)}", file=sys.stderr)


def ask_password(prompt: str) -> str:
    """EDGE_PASSWORD for scripts and services, else asked on the terminal, never echoed."""
    value = os.environ.get("EDGE_PASSWORD")
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise UserError("no password: set EDGE_PASSWORD or run this on a terminal to be asked")


def _refusal(clerk: str, exc: DeskError) -> str:
    """The sign-in guard's answer as one line of what to do (the desk shows the same)."""
    seconds = int(exc.details.get("seconds", 0) or 0)
    if exc.reason == "locked_out":
        minutes = max(1, (seconds + 59) // 60)
        return (
            f"clerk {clerk} is locked out after too many wrong passwords: try again in "
            f"{minutes} min, or ask regional IT"
        )
    if exc.reason == "wait":
        return f"too many wrong passwords for clerk {clerk}: wait {seconds} s and try again"
    if seconds:
        return f"wrong password: wait {seconds} s, then try again, or ask regional IT to reset it"
    return "wrong password: try again, or ask regional IT to reset it"


def unlock_clerk(state: Path, clerk: str, *, via: str) -> OfficeSession:
    """Sign a clerk in for one command, as the desk does: same guard, same audit log.

    A wrong ``EDGE_PASSWORD`` counts toward the clerk's delays and lockout, and a
    locked-out clerk is refused here as at the desk; the sign-in and, when the
    returned session is closed, the sign-out are audited with ``via`` naming the
    command. A password regional IT set (first boot, a reset) opens nothing here:
    it must first be replaced at the desk.
    """
    from edge.desk import DeskError, LoginGuard, login_name
    from edge.store import Store
    from edge.vault import Keyring

    keyring = Keyring.load(state)
    name = login_name(clerk)
    if not keyring.has_clerk(name):
        raise UserError(f"no clerk named {clerk!r} on this box: check the user name")
    password = ask_password(f"Password for {name}: ")
    store = Store.open(state)
    try:
        guard = LoginGuard(store, keyring)
        try:
            session = guard.sign_in(name, password, via=via)
        except DeskError as exc:
            raise UserError(_refusal(name, exc)) from None
        if keyring.must_change_password(name):
            session.close()
            guard.signed_out(name, "must_change_password", via=via)
            raise UserError(
                f"clerk {name} still has the password regional IT set: sign in at the "
                "clerk's screen ('edge tui') and choose a new one first"
            )
    finally:
        store.close()
    session.on_close(lambda: _signed_out(state, keyring, name, via))
    return session


def _signed_out(state: Path, keyring: Keyring, clerk: str, via: str) -> None:
    """The command's sign-out, in the audit log like the desk's."""
    from edge.desk import LoginGuard
    from edge.store import Store

    store = Store.open(state)
    try:
        LoginGuard(store, keyring).signed_out(clerk, "done", via=via)
    finally:
        store.close()


def state_dir(path: str, *, must_exist: bool = True) -> Path:
    state = Path(path).expanduser().resolve()
    if must_exist and not (state / "edge.db").exists():
        raise UserError(f"{state} is not a provisioned box: run 'edge init --state {path}' first")
    return state


def inbox_dir(path: str) -> Path:
    inbox = Path(path).expanduser().resolve()
    if not inbox.is_dir():
        raise UserError(f"the inbox {inbox} does not exist: create it or check the path")
    return inbox


def add_state(
    parser: argparse.ArgumentParser, *, required: bool = True, help: str | None = None
) -> None:
    """``--state``: the box's state folder, declared the same way by every command."""
    parser.add_argument(
        "--state",
        required=required,
        help=help or "the box's state folder (e.g. /var/lib/edge)",
    )


def add_json(parser: argparse.ArgumentParser, help: str = "print JSON for scripts") -> None:
    parser.add_argument("--json", action="store_true", help=help)
