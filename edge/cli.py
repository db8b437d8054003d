"""The ``edge`` command: what clerks' scripts and regional IT call.

Every user mistake ends in one line on stderr and a non-zero exit, never a
traceback: ``UserError`` carries the line; unexpected exceptions are reported
the same way with a hint to run ``edge doctor``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from edge import __version__
from edge.command import (
    EXIT_BUG,
    EXIT_FAIL,
    EXIT_USAGE,
    UserError,
    add_json,
    add_state,
    ask_password,
    inbox_dir,
    say_error,
    state_dir,
    unlock_clerk,
)


def cmd_init(args: argparse.Namespace) -> int:
    from edge.provision import provision

    state = state_dir(args.state, must_exist=False)
    password = ask_password(f"Temporary password for clerk {args.clerk}: ")
    provision(
        state,
        office=args.office,
        clerk=args.clerk,
        password=password,
        recovery_key=Path(args.recovery_key) if args.recovery_key else None,
        central_key=Path(args.central_key) if args.central_key else None,
        trust_root=Path(args.trust_root) if args.trust_root else None,
        temporary=True,
    )
    print(
        f"provisioned office {args.office} in {state} (clerk {args.clerk}, who chooses "
        "a new password at the first sign-in)"
    )
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
    daemon = Daemon(state_dir(args.state), inbox_dir(args.inbox), _overrides(args))
    try:
        report = daemon.run_once()
        fault = daemon.fault
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
        why = (
            f"{fault.detail}: {fault.fix}"
            if fault is not None
            else "the disk is almost full: free space and run again"
        )
        say_error(f"scans were left in the inbox: {why}")
        return EXIT_FAIL
    if data["failed"]:
        say_error(
            f"{len(data['failed'])} file(s) could not be processed and stay in the inbox "
            "(the log above says why): run 'edge doctor' and report it if it repeats"
        )
        return EXIT_FAIL
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon. The health door opens first, so a box whose disk keeps the database
    from opening still answers /readyz with the reason while it waits for the disk."""
    from edge.daemon import Daemon, open_when_writable
    from edge.observe.health import Vitals
    from edge.observe.server import start_health_server
    from edge.update.schedule import UpdateHook

    if not 0 <= args.http_port <= 65535:
        raise UserError(f"--http-port {args.http_port} is not a port: use 1-65535, or 0 for off")
    state, inbox, overrides = state_dir(args.state), inbox_dir(args.inbox), _overrides(args)
    vitals = Vitals()
    server = start_health_server(state, args.http_port, vitals)
    try:
        daemon = open_when_writable(lambda: Daemon(state, inbox, overrides, vitals=vitals))
        if daemon is None:
            return 0
        try:
            daemon.run(UpdateHook(state, daemon.settings))
        finally:
            daemon.close()
    finally:
        if server is not None:
            server.stop()
    return 0


def cmd_dossiers(args: argparse.Namespace) -> int:
    from edge.store import Store

    store = Store.open(state_dir(args.state))
    try:
        rows = store.list_dossiers()
        purged = store.purged_pages()
    finally:
        store.close()
    for row in rows:
        # pages whose bytes retention purged (edge/retention.py): central keeps them
        row["purged"] = purged.get(row["id"], 0)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        flags = ",".join(row["flags"]) or "-"
        code = row["code"] or "(unassigned)"
        kept = f"  {row['purged']} kept at central" if row["purged"] else ""
        print(f"{row['id']}  {code:32} {row['status']:16} {row['pages']:4} pages  {flags}{kept}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Decrypt a dossier to a bag: a view of its details and pages, audited as at the desk."""
    from edge.archive import export_bag, find_dossier
    from edge.desk import DeskLedger
    from edge.store import Store
    from edge.vault import Keyring

    state = state_dir(args.state)
    session = unlock_clerk(state, args.clerk, via="edge export")
    store = Store.open(state)
    try:
        dossier = find_dossier(store, args.dossier)
        ledger = DeskLedger(store, Keyring.load(state).sealer(), session)
        ledger.viewed(dossier["id"], ["fields", "pages", "export"])
        bag = export_bag(store, session, dossier["id"], Path(args.out))
    finally:
        store.close()
        session.close()
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
    # a crash ends in Textual's traceback and a non-zero exit, not a silent 0
    return run(
        state_dir(args.state), lang=args.lang, inbox=Path(args.inbox) if args.inbox else None
    )


def cmd_share(args: argparse.Namespace) -> int:
    """The copiers' scan-to-folder share (edge/share.py); as root, it writes Samba's side."""
    from edge import share

    if os.geteuid() != 0:
        raise UserError("run 'edge share' as root: it writes Samba's configuration and account")
    if args.ftp:
        return _share_ftp(args)
    samba_dir = Path(args.samba_dir).resolve() if args.samba_dir else None
    conf = samba_dir / "smb.conf" if samba_dir else share.CONF
    dirs = share.SambaDirs.under(samba_dir) if samba_dir else None
    state = state_dir(args.state) if getattr(args, "state", None) else None
    service = not args.no_service
    try:
        if args.action == "enable":
            password = _password_from_stdin() if args.password_stdin else None
            spec, password = share.enable(
                state=state,
                inbox=inbox_dir(args.inbox),
                interfaces=args.interface or share.DEFAULT_INTERFACES,
                conf=conf,
                dirs=dirs,
                port=args.port,
                password=password,
                service=service,
            )
            _print_share(spec, password, hide=args.hide_password or args.password_stdin)
        elif args.action == "disable":
            share.disable(state=state, conf=conf, dirs=dirs, service=service)
            print(
                "scan-to-folder share is off: smbd stopped and masked, the copier account removed"
            )
        elif args.action == "password":
            password = share.reset_password(conf)
            print(f"new password for {share.ACCOUNT}: {password}")
            print("shown once: type it on the copier now (the old one no longer works)")
        else:
            return _share_status(share, conf, state, as_json=args.json, service=service)
    except share.ShareError as exc:
        raise UserError(str(exc)) from None
    return 0


def _share_ftp(args: argparse.Namespace) -> int:
    """FTP for old copiers (edge/ftp.py): the same actions as the SMB share."""
    from edge import ftp, share

    conf = Path(args.ftp_conf) if args.ftp_conf else ftp.CONF
    state = state_dir(args.state) if getattr(args, "state", None) else None
    service = not args.no_service
    try:
        if args.action == "enable":
            password = _password_from_stdin() if args.password_stdin else None
            spec, password = ftp.enable(
                state=state,
                inbox=inbox_dir(args.inbox),
                interfaces=args.interface or share.DEFAULT_INTERFACES,
                conf=conf,
                port=args.port if args.port != 445 else ftp.PORT,
                password=password,
                service=service,
                addresses=args.address,
            )
            hide = args.hide_password or args.password_stdin
            print(f"FTP for copiers is on ({', '.join(spec.interfaces)}); polling watcher on")
            for address in spec.addresses:
                print(f"  server: {address}  port {spec.port}  folder: /")
            print(f"  user: {spec.account}")
            if password is None:
                print("  password: unchanged (lost it? 'edge share password --ftp' sets a new one)")
            elif hide:
                print("  password: set, not shown (a new one: 'edge share password --ftp')")
            else:
                print(f"  password: {password}   <- shown once: write it down for the copier now")
            low, high = spec.passive_ports
            print(f"  passive data ports: {low}-{high}; plain FTP: use SMB where the copier can")
        elif args.action == "disable":
            ftp.disable(state=state, conf=conf, service=service)
            print("FTP for copiers is off: the server stopped and its password removed")
        elif args.action == "password":
            password = ftp.reset_password(conf, service=service)
            print(f"new password for {share.ACCOUNT}: {password}")
            print("shown once: type it on the copier now (the old one no longer works)")
        else:
            on = ftp.is_on(conf)
            data: dict[str, Any] = {"ftp": "on" if on else "off", "conf": str(conf)}
            if on:
                spec = ftp.load(conf)
                data.update(addresses=list(spec.addresses), allowed=[str(n) for n in spec.subnets])
            print(
                json.dumps(data) if args.json else "\n".join(f"{k}: {v}" for k, v in data.items())
            )
    except share.ShareError as exc:
        raise UserError(str(exc)) from None
    return 0


def _password_from_stdin() -> str:
    password = sys.stdin.readline().strip()
    if len(password) < 8:
        raise UserError("the password on stdin is shorter than 8 characters: use longer")
    return password


def cmd_serve_ftp(args: argparse.Namespace) -> int:
    """What edge-ftp.service runs, as user edge: serve the inbox to copiers over FTP."""
    from edge import ftp, share

    try:
        ftp.serve(Path(args.conf))
    except share.ShareError as exc:
        raise UserError(str(exc)) from None
    return 0


def _print_share(spec: Any, password: str | None, *, hide: bool) -> None:
    from edge.share import interface_addresses

    hosts = [str(a.ip) for a in interface_addresses(spec.interfaces) if a.version == 4]
    print(f"scan-to-folder share is on ({', '.join(spec.interfaces)}); polling watcher on")
    print("on the copier (scan to folder / SMB):")
    for host in hosts or ["<box address>"]:
        print(
            f"  folder:   \\\\{host}\\{spec.name}   (some copiers: host {host}, path {spec.name})"
        )
    if spec.port != 445:
        print(f"  port:     {spec.port}")
    print(f"  user:     {spec.account}")
    if password is None:
        print("  password: unchanged (lost it? 'edge share password' sets a new one)")
    elif hide:
        print("  password: set, not shown (a new one: 'edge share password')")
    else:
        print(f"  password: {password}   <- shown once: write it down for the copier now")
    print("  protocol: SMB2 or SMB3 (SMB1/CIFS is refused)")


def _share_status(
    share: Any, conf: Path, state: Path | None, *, as_json: bool, service: bool
) -> int:
    on = share.is_on(conf)
    data: dict[str, Any] = {
        "share": "on" if on else "off",
        "conf": str(conf),
        "smbd": share.service_state() if service else "unknown",
        **share.share_status(state),
    }
    if on:
        data["account"] = share.has_account(conf, share.ACCOUNT)
        data["allowed"] = share.configured_subnets(conf)
    problems = []
    if on and data.get("use_polling") is False:
        problems.append("polling is off: run 'edge share enable' again")
    if on and not data["account"]:
        problems.append(f"no {share.ACCOUNT} account: run 'edge share password'")
    if on and data["smbd"] not in ("active", "unknown"):
        problems.append("smbd is not running: 'systemctl restart smbd', then 'journalctl -u smbd'")
    data["problems"] = problems
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for key, value in data.items():
            if key != "problems":
                print(f"{key}: {value}")
        for problem in problems:
            print(f"problem: {problem}")
    return EXIT_FAIL if problems else 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan one batch into the inbox, list scanners, or answer the scanners' buttons.

    Example: edge scan --state /var/lib/edge --inbox /srv/edge/inbox --duplex
    """
    import signal
    import threading
    from dataclasses import asdict, replace

    from edge.capture.scanner import (
        MESSAGES,
        ButtonWatcher,
        ScanError,
        ScanOptions,
        ScanProblem,
        list_devices,
        scan_batch,
    )
    from edge.store import Store

    try:
        if args.list:
            devices = list_devices()
            if args.json:
                print(json.dumps([asdict(d) for d in devices], ensure_ascii=False))
            for device in [] if args.json else devices:
                print(f"{device.name}\t{device.label} ({device.kind})")
            if not devices and not args.json:
                raise ScanError(ScanProblem.NO_SCANNER)
            return 0
        if not args.state or not args.inbox:
            raise UserError("'edge scan' needs --state and --inbox (or --list)")
        store = Store.open(state_dir(args.state))
        try:
            settings = store.settings()
            into = None
            if args.into:
                row = store.dossier(args.into) or store.dossier_by_code(args.into.upper())
                if row is None:
                    raise UserError(
                        f"no dossier {args.into!r} on this box: give its id or code "
                        "as 'edge dossiers' lists it"
                    )
                into = str(row["id"])
        finally:
            store.close()
        options = ScanOptions.from_settings(settings)
        changes = {
            key: value
            for key, value in (
                ("device", args.device),
                ("source", args.source),
                ("duplex", args.duplex),
                ("dpi", args.dpi),
                ("colour", args.colour),
            )
            if value is not None
        }
        options = replace(options, **changes)
        inbox = inbox_dir(args.inbox)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if args.buttons:
            ButtonWatcher(options, inbox, settings.scan_button_poll_seconds).run(stop.is_set)
            return 0
        try:
            result = scan_batch(
                options,
                inbox,
                into=into,
                on_page=lambda n: print(f"page {n}", file=sys.stderr, flush=True),
                should_stop=stop.is_set,
            )
        except KeyboardInterrupt:
            return 130
    except ScanError as exc:
        detail = f" ({exc.detail})" if exc.detail and args.verbose else ""
        raise UserError(f"{exc}{detail} [{exc.problem.value}]") from None
    if args.json:
        print(
            json.dumps(
                {
                    "job": result.job.name,
                    "device": result.device,
                    "pages": len(result.pages),
                    "cut_short": result.cut_short,
                    "detail": result.detail,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(f"{len(result.pages)} page(s) from {result.device} into {result.job}")
    if result.cut_short is not None:
        say_error(f"cut short: {MESSAGES[result.cut_short]} [{result.cut_short.value}]")
        return EXIT_FAIL
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Commune Edge box")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="provision a box: database, keys, first clerk")
    add_state(p)
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
        add_state(p)
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
    add_state(p)
    add_json(p)
    p.set_defaults(func=cmd_dossiers)

    p = sub.add_parser("export", help="export a dossier as a BagIt bag")
    add_state(p)
    p.add_argument("--dossier", required=True, help="dossier id or code")
    p.add_argument("--clerk", required=True)
    p.add_argument("--out", required=True, help="folder to write the bag into")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("doctor", help="check this box and say how to fix what is wrong")
    add_state(p)
    p.add_argument("--inbox", help="also check the inbox folder")
    add_json(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("tui", help="the clerk's terminal UI (Vietnamese; --lang en for English)")
    add_state(p)
    p.add_argument("--lang", choices=("vi", "en"), default="vi")
    p.add_argument("--inbox", help="the scanner folder, for retrying quarantined files")
    p.set_defaults(func=cmd_tui)

    p = sub.add_parser(
        "share", help="the copiers' scan-to-folder SMB share (as root; off by default)"
    )
    share_sub = p.add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("enable", "switch the share on (again: follows a new address, keeps the password)"),
        ("disable", "switch the share off and remove the copier's account"),
        ("password", "give the copier's account a new password, shown once"),
        ("status", "is the share on, and is everything it needs in place"),
    ):
        q = share_sub.add_parser(action, help=helptext)
        if action != "password":
            q.add_argument(
                "--state",
                required=action == "enable",
                help="the box's state folder (the polling watcher setting lives there)",
            )
        q.add_argument(
            "--samba-dir",
            help="keep smb.conf and Samba's databases here, not in /var/lib/samba (tests)",
        )
        q.add_argument("--no-service", action="store_true", help="do not start or stop smbd")
        q.add_argument(
            "--ftp", action="store_true", help="FTP for old copiers instead of the SMB share"
        )
        q.add_argument("--ftp-conf", help="the FTP server's settings file (tests)")
        if action == "enable":
            q.add_argument(
                "--address", action="append", help="listen on this address only (FTP; tests)"
            )
            q.add_argument("--inbox", default="/srv/edge/inbox")
            q.add_argument(
                "--interface",
                action="append",
                help="the office network's interface (repeatable; default eth0)",
            )
            q.add_argument("--port", type=int, default=445, help="SMB port (tests)")
            q.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
            q.add_argument(
                "--hide-password",
                action="store_true",
                help="generate the password without printing it (first boot: logs keep output)",
            )
        if action == "status":
            q.add_argument("--json", action="store_true")
        q.set_defaults(func=cmd_share)
    q = share_sub.add_parser(
        "serve-ftp", help="serve the inbox over FTP (what edge-ftp.service runs, as edge)"
    )
    q.add_argument("--conf", default="/var/lib/edge/ftp.json")
    q.set_defaults(func=cmd_serve_ftp)

    p = sub.add_parser(
        "scan",
        help="scan a batch from the scanner into the inbox (--list: the scanners)",
        description="Example: edge scan --state /var/lib/edge --inbox /srv/edge/inbox --duplex",
    )
    add_state(p, required=False, help="the box's state folder (for the scan settings)")
    p.add_argument("--inbox", help="the scanner folder capture watches")
    p.add_argument("--list", action="store_true", help="list the scanners SANE finds")
    p.add_argument("--device", help="SANE device name from --list (default: setting, or first)")
    p.add_argument("--source", choices=("adf", "flatbed"), help="feeder or glass")
    p.add_argument("--duplex", action="store_true", default=None, help="both sides")
    p.add_argument("--dpi", type=int, choices=(200, 300), help="resolution")
    p.add_argument("--colour", action="store_true", default=None, help="colour (default)")
    p.add_argument(
        "--grey", dest="colour", action="store_false", default=None, help="shades of grey"
    )
    p.add_argument("--into", help="dossier id or code the pages are added to")
    p.add_argument(
        "--buttons", action="store_true", help="keep scanning a batch at each button press"
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.set_defaults(func=cmd_scan)

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
    from edge.observe.logs import one_line_handler

    # one record, one line: names and texts from outside cannot forge log lines
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        handlers=[one_line_handler(sys.stderr)],
    )
    from edge.errors import ConfigError
    from edge.store import StoreError
    from edge.sync import SyncError
    from edge.sync.central.errors import AdminError
    from edge.update import UpdateError
    from edge.vault import VaultError

    mistakes = (
        UserError,
        ConfigError,
        AdminError,
        StoreError,
        VaultError,
        UpdateError,
        SyncError,
    )
    try:
        return int(args.func(args) or 0)
    except mistakes as exc:
        say_error(exc)
        return EXIT_USAGE
    except PermissionError as exc:
        say_error(f"permission denied on {exc.filename}: check the folder's owner")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("edge").error("internal error in 'edge %s'", args.command, exc_info=exc)
        say_error(
            f"internal error ({type(exc).__name__}: {exc}): this is a defect in edge, not "
            "something you typed; run 'edge doctor' and report it with the lines above"
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
