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
from edge.sync.central.errors import AdminError

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

    from edge.sync.central.app import Limits, asgi

    limits = Limits(
        inflight=args.max_inflight,
        receiving=args.max_receiving,
        body_memory=args.max_body_memory << 20,
        body_idle=args.body_idle,
        body_grace=args.body_grace,
        body_rate=args.body_min_rate,
    )
    with _opened(args) as central:
        log.info(
            "central receiver on http://%s:%d (data %s); recipient key %s",
            args.host,
            args.port,
            central.data,
            central.data / "keys" / "recipient.pub",
        )
        uvicorn.run(
            asgi(central, limits, threads=args.threads, silent_after=args.silent_after),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            http=header_deadline_protocol(args.header_timeout),
        )
    return 0


def header_deadline_protocol(seconds: float) -> Any:
    """uvicorn's HTTP protocol, with a deadline for a request's headers.

    uvicorn gives a connection that never finishes its request line and headers no
    timeout at all (its keep-alive timer starts only after a response), so a classic
    slowloris could hold sockets until the process runs out of file descriptors. Here
    the headers must be complete within ``seconds`` of the connection opening or of the
    previous response; the body has its own deadlines in the gateway (app.Limits).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's own choice, without the deadline
        log.warning("httptools is missing: no header deadline (use a reverse proxy's)")
        return "auto"

    class HeaderDeadline(HttpToolsProtocol):
        _deadline: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if (self.cycle is None or self.cycle.response_complete) and not (
                self.transport.is_closing()
            ):
                self.transport.close()

    return HeaderDeadline


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
        try:
            ids = central.notify(args.code, args.status, args.note or "", args.appointment)
        except AdminError as exc:
            raise SyncError(str(exc)) from exc
    when = f" (return date {args.appointment})" if args.appointment else ""
    print(f"queued status {args.status}{when} for {args.code} to {len(ids)} box(es)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        try:
            central.revoke(args.device)
        except AdminError as exc:
            raise SyncError(str(exc)) from exc
    print(f"device {args.device} is refused from now on")
    return 0


def cmd_assign_code(args: argparse.Namespace) -> int:
    with _opened(args) as central:
        try:
            previous = central.assign_code(args.code, args.office)
        except AdminError as exc:
            raise SyncError(str(exc)) from exc
    print(
        f"dossier code {args.code.strip().upper()} now belongs to office "
        f"{args.office.strip().upper()} (before: {previous or 'nobody'}); its boxes' next "
        "sync goes through"
    )
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
        try:
            pushed = central.configure(settings, args.office)
        except AdminError as exc:
            raise SyncError(str(exc)) from exc
    print(pushed.summary())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from edge.command import EXIT_FAIL
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above zero")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above zero")
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
    p.add_argument(
        "--max-inflight",
        type=_positive_int,
        default=256,
        help="requests worked on at once; above this central answers 503 busy (default 256)",
    )
    p.add_argument(
        "--max-receiving",
        type=_positive_int,
        default=1024,
        help="requests still sending their body, kept apart from --max-inflight (default 1024)",
    )
    p.add_argument(
        "--max-body-memory",
        type=_positive_int,
        default=256,
        metavar="MIB",
        help="request body bytes held at once; above it 503 busy (default 256 MiB)",
    )
    p.add_argument(
        "--body-idle",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="a body that pauses this long is refused, 408 too_slow (default 15)",
    )
    p.add_argument(
        "--body-grace",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="after this, a body must average --body-min-rate (default 20)",
    )
    p.add_argument(
        "--body-min-rate",
        type=_seconds,
        default=1024.0,
        metavar="BYTES_PER_S",
        help="slowest average body rate accepted after the grace (default 1024)",
    )
    p.add_argument(
        "--header-timeout",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="a request's headers must be complete this soon after connecting (default 20)",
    )
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
    p.add_argument("--note", help="what the agency says (5: what is missing; 6: what to pay)")
    p.add_argument(
        "--appointment",
        metavar="DATE",
        help="the agency's return date, dd/mm/yyyy or yyyy-mm-dd (e.g. 04/12/2026): "
        "it replaces the date the box computed",
    )

    p = command("revoke", cmd_revoke, "refuse a device from now on (stolen or rogue)")
    p.add_argument("--device", required=True)

    p = command(
        "assign-code",
        cmd_assign_code,
        "settle which office owns a dossier code (after a 'dossier_claimed' refusal)",
    )
    p.add_argument("--code", required=True)
    p.add_argument("--office", required=True)

    p = command("config", cmd_config, "push settings (e.g. code_patterns) to boxes")
    p.add_argument(
        "--office",
        help="an office scope: 'H29' reaches H29 and the offices under it (H29.01, …); "
        "a more specific scope's settings win",
    )
    p.add_argument("--set", action="append", help="NAME=VALUE (VALUE as JSON)")

    p = command("import", cmd_import, "accept batches from a USB stick, write receipts back")
    p.add_argument("folder")
    p.add_argument("--json", action="store_true")
