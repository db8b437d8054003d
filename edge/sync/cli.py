"""The box's sync commands: ``edge enroll`` and ``edge sync``.

Each command turns sync's own failures into one line on stderr (a ``SyncError``,
which ``edge.cli`` reports like its own) and a non-zero exit; ``edge sync --once`` exits 0 only
when central acknowledged everything pending. Lines quote central's URL, folders and
central's unsigned answers, so they are printed through ``edge.printable``: nothing in
them acts on the technician's terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.command import add_json, add_state
from edge.printable import printable
from edge.sync import SyncError


def _session(state: Path, clerk: str | None, command: str) -> Any:
    """An unlocked office when ``--clerk`` is given: needed to re-wrap old keys to central.

    Signed in through the desk's guard (delays, lockout, audit log): ``edge.command.unlock_clerk``.
    """
    if not clerk:
        return None
    from edge.command import unlock_clerk

    return unlock_clerk(state, clerk, via=command)


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.command import state_dir
    from edge.sync.client import Refused, Transient, enroll

    state = state_dir(args.state)
    session = _session(state, args.clerk, "edge enroll")
    try:
        result = enroll(state, args.central, args.token, session=session)
    except Refused as exc:
        raise SyncError(str(exc)) from exc
    except Transient as exc:
        raise SyncError(f"cannot reach central at {args.central} ({exc}): check the link") from exc
    finally:
        if session is not None:
            session.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(printable(f"enrolled as device {result['device']} with {result['central']}"))
    if result["keys_waiting_for_clerk"]:
        print(
            f"edge: warning: {int(result['keys_waiting_for_clerk'])} data key(s) were made before "
            "enrollment; central can read them after 'edge sync --clerk NAME' (or a clerk "
            "signing in)",
            file=sys.stderr,
        )
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from edge.command import EXIT_FAIL, say_error, state_dir

    state = state_dir(args.state)
    modes = [bool(args.once), bool(args.to_dir), bool(args.from_dir)]
    if sum(modes) != 1:
        raise SyncError("say what to do: --once, --to-dir DIR or --from-dir DIR")
    if args.to_dir:
        from edge.sync.usb import to_dir

        result = to_dir(state, Path(args.to_dir).expanduser().resolve())
        _print(args, result, f"wrote {result['batches']} batch(es) to {result['folder']}")
        return 0
    if args.from_dir:
        from edge.sync.usb import from_dir

        result = from_dir(state, Path(args.from_dir).expanduser().resolve())
        _print(args, result, f"took {result['receipts']} receipt(s) from the stick")
        return 0 if result["done"] and not result["rejected"] else EXIT_FAIL
    from edge.sync.client import sync_once

    session = _session(state, args.clerk, "edge sync")
    try:
        report = sync_once(state, session=session)
    finally:
        if session is not None:
            session.close()
    data = report.as_json()
    _print(
        args,
        data,
        f"{report.batches} batch(es), {report.events} event(s), {report.blobs} blob(s) sent; "
        f"{sum(report.downlink.values())} downlink item(s)",
    )
    if report.done:
        return 0
    if report.error:
        say_error(report.error)
    elif report.pending.get("keys_waiting_for_clerk"):
        say_error(
            f"{report.pending['keys_waiting_for_clerk']} data key(s) wait for a clerk: run "
            "'edge sync --once --clerk NAME' so central can read every dossier"
        )
    else:
        say_error("not everything was acknowledged yet: run again")
    return EXIT_FAIL


def _print(args: argparse.Namespace, data: dict[str, Any], line: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(printable(line))


def register(sub: Any) -> None:
    p = sub.add_parser("enroll", help="register this box with central (one-time token)")
    add_state(p)
    p.add_argument("--central", required=True, help="central's URL, e.g. https://central.example")
    p.add_argument("--token", required=True, help="one-time token from 'edge central token'")
    p.add_argument("--clerk", help="also re-wrap earlier data keys to central (asks a password)")
    add_json(p)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("sync", help="sync with central: one round, or by USB stick")
    add_state(p)
    p.add_argument("--once", action="store_true", help="one round over the network, then exit")
    p.add_argument("--to-dir", help="write pending batches to a USB stick folder")
    p.add_argument("--from-dir", help="take central's receipts and downlink from a stick")
    p.add_argument("--clerk", help="re-wrap keys made before enrollment first (asks a password)")
    add_json(p)
    p.set_defaults(func=cmd_sync)
