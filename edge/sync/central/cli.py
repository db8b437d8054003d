"""``edge central …``: run the receiver and look after what it holds.

Every command takes ``--data DIR`` (keys, blobs and, by default, the SQLite
database) and ``--db URL`` (or ``EDGE_CENTRAL_DB``) for PostgreSQL, where
several ``serve`` processes share one database and one data folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.sync import SyncError

log = logging.getLogger("edge.central")


def _central(args: argparse.Namespace) -> Any:
    from edge.sync.central.receiver import Central
    from edge.sync.central.storage import StorageError

    data = Path(args.data).expanduser().resolve()
    url = args.db or os.environ.get("EDGE_CENTRAL_DB") or None
    try:
        return Central(data, url)
    except StorageError as exc:
        raise SyncError(str(exc)) from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg")):
            raise SyncError(
                f"cannot open central's database ({type(exc).__name__}): {exc}"
            ) from exc
        raise


@contextlib.contextmanager
def _opened(args: argparse.Namespace) -> Iterator[Any]:
    """Central for one command, closed however the command ends."""
    central = _central(args)
    try:
        yield central
    finally:
        central.close()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from edge.sync.central.app import asgi

    with _opened(args) as central:
        log.info(
            "central receiver on http://%s:%d (data %s); recipient key %s",
            args.host,
            args.port,
            central.data,
            central.data / "keys" / "recipient.pub",
        )
        uvicorn.run(
            asgi(
                central,
                limit=args.max_inflight,
                threads=args.threads,
                silent_after=args.silent_after,
            ),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
        )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from edge.provision import OFFICE_CODE

    office = args.office.strip().upper()
    if not OFFICE_CODE.match(office):
        raise SyncError(f"office code {office!r} is not valid: use letters, digits, dots, dashes")
    with _opened(args) as central:
        print(central.issue_token(office))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        print((central.data / "keys" / "recipient.pub").read_text("ascii").strip())
    return 0


def cmd_trust_updates(args: argparse.Namespace) -> int:
    from edge.update import UpdateError
    from edge.update.gate import Gate

    data = Path(args.data).expanduser().resolve()
    try:
        root = Path(args.root).read_bytes()
    except OSError as exc:
        raise SyncError(f"cannot read {args.root}: {exc.strerror}") from exc
    try:
        version = Gate(data).pin(root)
    except UpdateError as exc:
        raise SyncError(str(exc)) from exc
    print(
        f"central trusts update root version {version}: regional IT can now run "
        "'edge admin publish --central URL', and boxes that enroll receive this root"
    )
    return 0


def cmd_dossiers(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        rows = central.list_dossiers()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        code = row["code"] or "(unassigned)"
        readable = "" if row["readable"] else "  (keys pending)"
        print(
            f"{row['device']}  {code:32} {row['pages']:4} pages {row['events']:5} events{readable}"
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        rows = central.devices_status()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        print(
            f"{row['device']}  {row['office']:12} last contact {row['last_contact'] or '-':24} "
            f"seq {row['last_seq']:6}  downlink pending {row['pending_downlink']}  "
            f"{row['software']}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edge.sync.central.export import export
    from edge.sync.central.keys import read_key_file

    key = read_key_file(Path(args.key).expanduser())
    with _opened(args) as central:
        print(export(central, args.dossier, key, Path(args.out).expanduser().resolve()))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        ids = central.notify(args.code, args.status, args.note or "")
    print(f"queued status {args.status} for {args.code} to {len(ids)} box(es)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        central.revoke(args.device)
    print(f"device {args.device} is refused from now on")
    return 0


def cmd_config(args: argparse.Namespace) -> int:

    settings: dict[str, Any] = {}
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SyncError(f"--set takes NAME=VALUE (VALUE in JSON); got {item!r}")
        try:
            settings[name.strip()] = json.loads(value)
        except ValueError:
            settings[name.strip()] = value
    if not settings:
        raise SyncError("nothing to push: give --set NAME=VALUE at least once")
    with _opened(args) as central:
        central.configure(settings, args.office.strip().upper() if args.office else None)
    print(f"queued settings {sorted(settings)} for {args.office or 'every box'}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_FAIL
    from edge.sync.central.importer import import_stick

    with _opened(args) as central:
        report = import_stick(central, Path(args.folder).expanduser().resolve())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(
            f"{report['accepted']} batch(es) accepted, {report['already']} already held, "
            f"{len(report['rejected'])} rejected"
        )
        for item in report["rejected"]:
            print(f"  rejected {item['file'] or item['device']}: {item['code']} {item['detail']}")
    return EXIT_FAIL if report["rejected"] else 0


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes above zero")
    return value


def register(sub: Any) -> None:
    central = sub.add_parser("central", help="central's receiver and its administration")
    csub = central.add_subparsers(dest="central_command", required=True)

    def command(name: str, func: Any, helptext: str) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=helptext)
        p.add_argument("--data", required=True, help="central's data folder (keys, blobs)")
        p.add_argument("--db", help="database URL (postgresql://…); default SQLite in --data")
        p.set_defaults(func=func)
        return p

    p = command("serve", cmd_serve, "run the receiver (HTTP)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8470)
    p.add_argument("--max-inflight", type=int, default=256, help="shed load above this")
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("EDGE_CENTRAL_THREADS", "8")),
        help="worker threads for database work",
    )
    p.add_argument(
        "--silent-after",
        type=_minutes,
        default=60.0,
        metavar="MINUTES",
        help="the fleet page (/fleet) flags a box not heard from for this long (default 60)",
    )

    p = command("token", cmd_token, "print a one-time enrollment token for a new box")
    p.add_argument("--office", required=True)

    command(
        "keys", cmd_keys, "print central's recipient public key (for 'edge init --central-key')"
    )

    p = command(
        "trust-updates",
        cmd_trust_updates,
        "pin regional IT's update root: central then verifies every publish against it",
    )
    p.add_argument("--root", required=True, help="the repository's 1.root.json")

    p = command("dossiers", cmd_dossiers, "list the dossiers central holds")
    p.add_argument("--json", action="store_true")

    p = command("status", cmd_status, "list boxes: last contact, last sequence, pending downlink")
    p.add_argument("--json", action="store_true")

    p = command("export", cmd_export, "decrypt a dossier into a BagIt bag")
    p.add_argument("--dossier", required=True, help="dossier id or code")
    p.add_argument("--key", required=True, help="central's recipient private key file")
    p.add_argument("--out", required=True)

    p = command("notify", cmd_notify, "send a dossier's portal status (1-10) to its box")
    p.add_argument("--code", required=True)
    p.add_argument("--status", required=True, type=int, choices=range(1, 11), metavar="1-10")
    p.add_argument("--note")

    p = command("revoke", cmd_revoke, "refuse a device from now on (stolen or rogue)")
    p.add_argument("--device", required=True)

    p = command("config", cmd_config, "push settings (e.g. code_patterns) to boxes")
    p.add_argument("--office", help="only this office's boxes")
    p.add_argument("--set", action="append", help="NAME=VALUE (VALUE as JSON)")

    p = command("import", cmd_import, "accept batches from a USB stick, write receipts back")
    p.add_argument("folder")
    p.add_argument("--json", action="store_true")
