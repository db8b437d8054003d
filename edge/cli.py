"""The ``edge`` command: what clerks' scripts and regional IT call.

Every user mistake ends in one line on stderr and a non-zero exit, never a
traceback: ``UserError`` carries the line; unexpected exceptions are reported
the same way with a hint to run ``edge doctor``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from edge import __version__


class UserError(Exception):
    """A mistake the person can fix; the message says how."""


EXIT_USAGE = 2
EXIT_FAIL = 1


def _password(prompt: str) -> str:
    value = os.environ.get("EDGE_PASSWORD")
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise UserError("no password: set EDGE_PASSWORD or run this on a terminal to be asked")


def _state(path: str, *, must_exist: bool = True) -> Path:
    state = Path(path).expanduser().resolve()
    if must_exist and not (state / "edge.db").exists():
        raise UserError(f"{state} is not a provisioned box: run 'edge init --state {path}' first")
    return state


def _inbox(path: str) -> Path:
    inbox = Path(path).expanduser().resolve()
    if not inbox.is_dir():
        raise UserError(f"the inbox {inbox} does not exist: create it or check the path")
    return inbox


def cmd_init(args: argparse.Namespace) -> int:
    from edge.provision import provision

    state = _state(args.state, must_exist=False)
    password = _password(f"New password for clerk {args.clerk}: ")
    provision(
        state,
        office=args.office,
        clerk=args.clerk,
        password=password,
        recovery_key=Path(args.recovery_key) if args.recovery_key else None,
        central_key=Path(args.central_key) if args.central_key else None,
        trust_root=Path(args.trust_root) if args.trust_root else None,
    )
    print(f"provisioned office {args.office} in {state} (clerk {args.clerk})")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if getattr(args, "settle", None) is not None:
        values["settle_seconds"] = args.settle
    if getattr(args, "poll", False):
        values["use_polling"] = True
    if getattr(args, "idle", None) is not None:
        values["job_idle_seconds"] = args.idle
    return values


def cmd_capture(args: argparse.Namespace) -> int:
    from edge.daemon import Daemon

    if not args.once:
        raise UserError("'edge capture' needs --once (use 'edge run' to keep watching)")
    daemon = Daemon(_state(args.state), _inbox(args.inbox), _overrides(args))
    try:
        report = daemon.run_once()
    finally:
        daemon.close()
    data = report.as_json()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(
            f"{data['files']} file(s), {data['pages']} page(s), "
            f"{len(data['dossiers'])} dossier(s), {len(data['quarantined'])} quarantined, "
            f"{len(data['duplicates'])} duplicate(s)"
        )
    if report.deferred:
        print(
            f"edge: error: the disk is almost full; {len(report.deferred)} file(s) left in the "
            "inbox: free space and run again",
            file=sys.stderr,
        )
        return EXIT_FAIL
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge.daemon import Daemon
    from edge.observe.server import start_health_server

    if not 0 <= args.http_port <= 65535:
        raise UserError(f"--http-port {args.http_port} is not a port: use 1-65535, or 0 for off")
    daemon = Daemon(_state(args.state), _inbox(args.inbox), _overrides(args))
    server = start_health_server(daemon.state, args.http_port, daemon.vitals)
    try:
        daemon.run()
    finally:
        if server is not None:
            server.stop()
        daemon.close()
    return 0


def cmd_dossiers(args: argparse.Namespace) -> int:
    from edge.store import Store

    store = Store.open(_state(args.state))
    try:
        rows = store.list_dossiers()
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        flags = ",".join(row["flags"]) or "-"
        code = row["code"] or "(unassigned)"
        print(f"{row['id']}  {code:32} {row['status']:16} {row['pages']:4} pages  {flags}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edge.archive import export_bag
    from edge.store import Store
    from edge.vault import Keyring, WrongPassword

    state = _state(args.state)
    keyring = Keyring.load(state)
    if not keyring.has_clerk(args.clerk):
        raise UserError(f"no clerk named {args.clerk!r} on this box")
    password = _password(f"Password for {args.clerk}: ")
    try:
        session = keyring.unlock(args.clerk, password)
    except WrongPassword as exc:
        raise UserError("wrong password: try again, or ask regional IT to reset it") from exc
    store = Store.open(state)
    try:
        bag = export_bag(store, session, args.dossier, Path(args.out))
    finally:
        session.close()
        store.close()
    print(bag)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge.doctor import run_checks

    checks = run_checks(Path(args.state).expanduser().resolve(), args.inbox)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], ensure_ascii=False))
    else:
        for check in checks:
            line = f"[{check.status:4}] {check.name}: {check.detail}"
            if check.fix and check.status != "ok":
                line += f" -> {check.fix}"
            print(line)
    return EXIT_FAIL if failed else 0


def cmd_tui(args: argparse.Namespace) -> int:
    from edge.tui import run

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UserError("'edge tui' needs a terminal: run it from a console or over SSH with -t")
    run(_state(args.state), lang=args.lang, inbox=Path(args.inbox) if args.inbox else None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Commune Edge box")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="provision a box: database, keys, first clerk")
    p.add_argument("--state", required=True)
    p.add_argument("--office", required=True, help="office (agency) code")
    p.add_argument("--clerk", required=True, help="first clerk's user name")
    p.add_argument("--recovery-key", help="regional IT recovery public key file (raw, base64)")
    p.add_argument("--central-key", help="central recipient public key file (raw, base64)")
    p.add_argument("--trust-root", help="regional IT's update root.json, pinned for updates")
    p.set_defaults(func=cmd_init)

    for name, func, helptext in (
        ("capture", cmd_capture, "capture what is in the inbox"),
        ("run", cmd_run, "the daemon: watch the inbox until stopped"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--state", required=True)
        p.add_argument("--inbox", required=True)
        p.add_argument("--settle", type=float, help="seconds a file must stay unchanged")
        p.add_argument("--idle", type=float, help="seconds before a loose-file job closes")
        p.add_argument("--poll", action="store_true", help="poll instead of inotify (SMB/NFS)")
        if name == "capture":
            p.add_argument("--once", action="store_true", help="process the inbox and exit")
            p.add_argument("--json", action="store_true", help="print one JSON summary")
        else:
            p.add_argument(
                "--http-port",
                type=int,
                default=8770,
                help="loopback port for /healthz, /readyz, /metrics (0: off)",
            )
        p.set_defaults(func=func)

    p = sub.add_parser("dossiers", help="list dossiers (metadata only)")
    p.add_argument("--state", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossiers)

    p = sub.add_parser("export", help="export a dossier as a BagIt bag")
    p.add_argument("--state", required=True)
    p.add_argument("--dossier", required=True, help="dossier id or code")
    p.add_argument("--clerk", required=True)
    p.add_argument("--out", required=True, help="folder to write the bag into")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("doctor", help="check this box and say how to fix what is wrong")
    p.add_argument("--state", required=True)
    p.add_argument("--inbox", help="also check the inbox folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("tui", help="the clerk's terminal UI (Vietnamese; --lang en for English)")
    p.add_argument("--state", required=True)
    p.add_argument("--lang", choices=("vi", "en"), default="vi")
    p.add_argument("--inbox", help="the scanner folder, for retrying quarantined files")
    p.set_defaults(func=cmd_tui)

    from edge.update.admin_cli import register as register_update

    register_update(sub)

    from edge.sync.central.cli import register as register_central
    from edge.sync.cli import register as register_sync

    register_sync(sub)
    register_central(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from edge.store import StoreError
    from edge.sync import SyncError
    from edge.update import UpdateError
    from edge.vault import VaultError

    try:
        return int(args.func(args) or 0)
    except (UserError, StoreError, VaultError, UpdateError, SyncError, ValueError) as exc:
        print(f"edge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PermissionError as exc:
        print(
            f"edge: error: permission denied on {exc.filename}: check the folder's owner",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(
            f"edge: error: unexpected {type(exc).__name__}: {exc} (run 'edge doctor')",
            file=sys.stderr,
        )
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
