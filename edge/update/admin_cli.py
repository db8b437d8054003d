"""The update commands of ``edge``: ``admin …`` for regional IT, and the box's own.

Registered by ``edge.cli.build_parser`` with one call, so the update feature
keeps its command-line surface in its own package. Every failure is one line
(``edge: error: …``): ``edge.cli.main`` reports ``UpdateError`` like its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.command import add_json, add_state
from edge.update import UpdateError

Command = Callable[[argparse.Namespace], int]


def _repo(args: argparse.Namespace):
    from edge.update.repository import AdminRepo

    key_dirs = [Path(d).expanduser() for d in args.key_dir or ()]
    for folder in key_dirs:
        if not folder.is_dir():
            raise UpdateError(f"--key-dir {folder} is not a folder: mount the key holder's medium")
    return AdminRepo(Path(args.repo).expanduser(), key_dirs=key_dirs)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- edge admin ---------------------------------------------------------------------------


def cmd_admin_init(args: argparse.Namespace) -> int:
    from edge.update.repository import AdminRepo

    repo = AdminRepo.create(
        Path(args.repo).expanduser(), threshold=args.threshold, root_keys=args.root_keys
    )
    print(f"update repository created in {repo.path}")
    print(f"trusted root for boxes: {repo.metadata_dir / '1.root.json'}")
    return 0


def cmd_admin_delegate(args: argparse.Namespace) -> int:
    role = _repo(args).delegate(args.province, rotate=args.rotate_key)
    print(f"{role} may now sign for offices under {args.province.upper()}")
    return 0


def cmd_admin_release(args: argparse.Namespace) -> int:
    path = _repo(args).release(
        args.version, Path(args.wheels).expanduser(), allow_incomplete=args.allow_incomplete
    )
    print(f"release {args.version} published as {path}")
    return 0


def cmd_admin_config(args: argparse.Namespace) -> int:
    changes = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UpdateError(f"--set {item!r}: use KEY=VALUE")
        changes[key.strip()] = _value(value)
    if not changes and not args.unset:
        raise UpdateError("nothing to change: give --set KEY=VALUE or --unset KEY")
    path = _repo(args).set_config(changes, unset=args.unset, office=args.office)
    print(f"configuration published as {path}")
    return 0


def _check_reference(name: str, data: Any, source: str) -> None:
    """The procedure catalogue and the holiday calendar are checked as every box will check
    them, before anything is signed: a set a box would refuse must not reach the fleet."""
    from edge.catalogue import CatalogueError, parse
    from edge.desk.appointment import Calendar

    try:
        if name == "procedures":
            parse(data)
        elif name == "holidays":
            Calendar.from_data(data)
    except (CatalogueError, ValueError) as exc:
        raise UpdateError(f"{source} is not a usable {name} set, nothing published: {exc}") from exc


def cmd_admin_reference(args: argparse.Namespace) -> int:
    try:
        data = json.loads(Path(args.file).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UpdateError(f"cannot read JSON from {args.file} ({exc})") from exc
    _check_reference(args.name, data, args.file)
    path = _repo(args).set_reference(args.name, data, office=args.office)
    print(f"reference data {args.name!r} published as {path}")
    return 0


def cmd_admin_clerk(args: argparse.Namespace) -> int:
    from edge.provision import CLERK_NAME, read_public_key

    op, name = next((op, n) for op in ("add", "reset", "disable") if (n := getattr(args, op)))
    if not CLERK_NAME.match(name):
        raise UpdateError(f"clerk name {name!r} is not valid")
    keys = [read_public_key(Path(p)) for p in args.office_key or []]
    password = _repo(args).clerk(
        args.office,
        op,
        name,
        office_keys=keys,
        password=os.environ.get("EDGE_CLERK_PASSWORD"),
    )
    if password and "EDGE_CLERK_PASSWORD" not in os.environ:
        print(f"initial password for {name} (tell the clerk, it is not stored): {password}")
    print(f"clerk change '{op} {name}' published for office {args.office.upper()}")
    return 0


def cmd_admin_rotate(args: argparse.Namespace) -> int:
    repo = _repo(args)
    version = repo.rotate(args.role, threshold=args.threshold, keys=args.keys, stage=args.stage)
    if args.role == "fleet":
        print("fleet key replaced: targets now delegates fleet/* to the new key only")
    elif repo.root_md().signed.version != version:
        staged = repo.path / "staged" / "root.json"
        print(
            f"root version {version} is staged in {staged}, short of root signatures: each "
            "custodian signs a copy ('edge admin sign --file COPY --key-dir MEDIUM'), then "
            f"'edge admin sign --repo {repo.path} --merge COPY…' commits it"
        )
    else:
        print(f"{args.role} keys replaced; root is now version {version}")
    return 0


def cmd_admin_sign(args: argparse.Namespace) -> int:
    from edge.update.repository import sign_file

    if args.file:
        key_dirs = [Path(d).expanduser() for d in args.key_dir or ()]
        if not key_dirs:
            raise UpdateError("--file needs --key-dir: the custodian's medium with their key")
        signed = sign_file(Path(args.file).expanduser(), key_dirs)
        print(f"{args.file} signed by {len(signed)} key(s): send it back to regional IT")
        return 0
    if not args.repo:
        raise UpdateError("give --repo (to add signatures to the staged root) or --file")
    missing, version = _repo(args).sign_staged([Path(f).expanduser() for f in args.merge or ()])
    if missing:
        print(f"root version {version} still needs {missing} root signature(s)")
    else:
        print(f"root version {version} is signed and committed: publish it")
    return 0


def cmd_admin_custody(args: argparse.Namespace) -> int:
    moved = _repo(args).custody(args.role, Path(args.out).expanduser())
    print(f"one {args.role} key moved to {moved}: keep that medium offline with its custodian")
    return 0


def _warn(lines: list[str]) -> None:
    """Expiry warnings go to stderr: the command still did its job, someone must act."""
    for line in lines:
        print(f"edge: warning: {line}", file=sys.stderr)


def cmd_admin_publish(args: argparse.Namespace) -> int:
    repo = _repo(args)
    print(repo.publish(args.central))
    _warn(repo.warnings())
    return 0


def cmd_admin_usb(args: argparse.Namespace) -> int:
    repo = _repo(args)
    dest = repo.usb(Path(args.out).expanduser())
    print(f"update written to {dest}")
    _warn(repo.warnings())
    return 0


def cmd_admin_status(args: argparse.Namespace) -> int:
    status = _repo(args).status()
    print(json.dumps(status, indent=1, ensure_ascii=False))
    _warn(status["warnings"])
    return 0


# -- the box --------------------------------------------------------------------------------


def default_root() -> Path | None:
    """The release root: explicit, or the one this very launcher runs from, or /opt/edge."""
    from edge.update.install import CURRENT, DEFAULT_ROOT

    if os.environ.get("EDGE_RELEASE_ROOT"):
        return Path(os.environ["EDGE_RELEASE_ROOT"])
    if os.environ.get("EDGE_RELEASE"):
        return Path(os.environ["EDGE_RELEASE"]).parent.parent
    return DEFAULT_ROOT if (DEFAULT_ROOT / CURRENT).is_symlink() else None


def _box_state(path: str) -> Path:
    state = Path(path).expanduser().resolve()
    if not (state / "edge.db").exists():
        raise UpdateError(f"{state} is not a provisioned box: run 'edge init --state {path}' first")
    return state


def _options(args: argparse.Namespace):
    from edge.update.cycle import Options
    from edge.update.install import PROBATION_SECONDS, default_restart

    root = Path(args.root).expanduser() if args.root else default_root()
    if args.restart is not None:
        restart = shlex.split(args.restart) or None
    elif os.environ.get("EDGE_RESTART_CMD"):
        restart = shlex.split(os.environ["EDGE_RESTART_CMD"])
    else:
        restart = default_restart() if root is not None else None
    return Options(
        source=args.source,
        root=root,
        restart=restart,
        python=os.environ.get("EDGE_RELEASE_PYTHON"),
        health_timeout=args.health_timeout,
        probation=PROBATION_SECONDS if args.probation is None else args.probation,
        retry_bad=args.retry_failed,
    )


def cmd_update(args: argparse.Namespace) -> int:
    from edge.update.client import pin_root
    from edge.update.cycle import update_once

    state = _box_state(args.state)
    if args.trust_root:
        version = pin_root(state, Path(args.trust_root).read_bytes())
        print(f"trusted update root version {version} pinned")
        if not args.once:
            return 0
    if not args.once:
        raise UpdateError("'edge update' needs --once ('edge run' checks on a schedule)")
    report = update_once(state, _options(args))
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    elif report.exit_code == 0:
        print(report.line())
    if report.exit_code != 0:
        print(f"edge: error: {report.line()}", file=sys.stderr)
    return report.exit_code


def cmd_config(args: argparse.Namespace) -> int:
    from edge.store import Store
    from edge.update.apply import effective_config
    from edge.update.cycle import running_version
    from edge.update.install import Installer
    from edge.vault import Keyring

    state = _box_state(args.state)
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        data = effective_config(store, keyring)
    finally:
        store.close()
    root = Path(args.root).expanduser() if args.root else default_root()
    installer = Installer(root, state) if root is not None else None
    data["version"] = running_version(installer)
    data["release"] = installer.status() if installer is not None else None
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    roles = data["metadata"].get("roles", {})
    print(f"office {data['office']}, release {data['version']}")
    print(f"metadata: {', '.join(f'{k} v{v}' for k, v in sorted(roles.items())) or 'none yet'}")
    for key, value in sorted(data["settings"].items()):
        source = data["sources"].get(key, "default")
        print(f"  {key} = {json.dumps(value, ensure_ascii=False)}  ({source})")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from edge.update.selftest import selftest

    results = selftest(Path(args.state).expanduser().resolve(), args.probe)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for result in results:
            print(f"[{'ok' if result['ok'] else 'fail':4}] {result['check']}: {result['detail']}")
    failed = [r for r in results if not r["ok"]]
    if failed:
        print(
            f"edge: error: self-test failed: {failed[0]['check']}: {failed[0]['detail']}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_clerks(args: argparse.Namespace) -> int:
    from edge.command import unlock_clerk
    from edge.records import Ledger
    from edge.store import Store
    from edge.update.apply import activate_pending, pending_clerks
    from edge.vault import Keyring

    state = _box_state(args.state)
    keyring = Keyring.load(state)
    store = Store.open(state)
    try:
        if args.activate:
            if not args.clerk:
                raise UpdateError("--activate needs --clerk NAME (a clerk who can sign in)")
            session = unlock_clerk(state, args.clerk, via="edge clerks --activate")
            try:
                done = activate_pending(store, keyring, session, Ledger(store, keyring.sealer()))
            finally:
                session.close()
            print(f"activated: {', '.join(done) or 'nothing pending'}")
            return 0
        data: dict[str, Any] = {"active": keyring.clerks(), "pending": pending_clerks(store)}
    finally:
        store.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print("clerks: " + ", ".join(data["active"]))
        for row in data["pending"]:
            print(f"  pending {row['op']} {row['name']} ({row['status']})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``admin``, ``update``, ``config``, ``selftest`` and ``clerks`` to ``edge``."""
    admin = sub.add_parser("admin", help="regional IT: sign and publish updates")
    verbs = admin.add_subparsers(dest="admin_command", required=True)

    def verb(name: str, func: Command, helptext: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=helptext)
        p.add_argument("--repo", required=True, help="the update repository folder")
        p.add_argument(
            "--key-dir",
            action="append",
            metavar="DIR",
            help="another folder with private keys (a custodian's stick); repeatable",
        )
        p.set_defaults(func=func)
        return p

    p = verb("init", cmd_admin_init, "create keys and the first root")
    p.add_argument("--threshold", type=int, default=1, help="root signatures required")
    p.add_argument("--root-keys", type=int, help="root keys to create (default: threshold)")
    p = verb("delegate", cmd_admin_delegate, "give a province a key for its offices")
    p.add_argument("--province", required=True, help="office-code prefix, e.g. H29")
    p.add_argument("--rotate-key", action="store_true", help="replace the province's key")
    p = verb("release", cmd_admin_release, "publish a release (wheels → bundle)")
    p.add_argument("--version", required=True)
    p.add_argument("--wheels", required=True, help="folder with the project and dependency wheels")
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="publish even if some dependency wheels are missing (development only)",
    )
    p = verb("config", cmd_admin_config, "change settings for the fleet or an office prefix")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--unset", action="append", metavar="KEY")
    p.add_argument("--office", help="office-code prefix (default: the whole fleet)")
    p = verb("reference", cmd_admin_reference, "publish a reference data set (JSON)")
    p.add_argument("--name", required=True, help="e.g. procedures, agencies")
    p.add_argument("--file", required=True)
    p.add_argument("--office", help="office-code prefix (default: the whole fleet)")
    p = verb("clerk", cmd_admin_clerk, "add, reset or disable a clerk of one office")
    p.add_argument("--office", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--add", metavar="NAME")
    group.add_argument("--reset", metavar="NAME")
    group.add_argument("--disable", metavar="NAME")
    p.add_argument(
        "--office-key", action="append", help="a box's office public key file (repeatable)"
    )
    p = verb("rotate", cmd_admin_rotate, "replace a top-level role's keys, or the fleet key")
    p.add_argument(
        "--role", required=True, choices=["root", "targets", "snapshot", "timestamp", "fleet"]
    )
    p.add_argument("--threshold", type=int)
    p.add_argument("--keys", type=int, help="how many new keys (default: as many as before)")
    p.add_argument(
        "--stage",
        action="store_true",
        help="short of root signatures: keep the new root for custodians elsewhere to sign",
    )
    p = verbs.add_parser("sign", help="sign a staged root: a custodian's copy, or merge copies")
    p.add_argument("--repo", help="the repository whose staged root gets the signatures")
    p.add_argument("--file", help="a copy of the staged root to sign (no repository needed)")
    p.add_argument("--merge", action="append", metavar="COPY", help="a signed copy; repeatable")
    p.add_argument("--key-dir", action="append", metavar="DIR", help="a medium with private keys")
    p.set_defaults(func=cmd_admin_sign)
    p = verb("publish", cmd_admin_publish, "refresh the timestamp and publish to central")
    p.add_argument(
        "--central",
        required=True,
        help="central's URL (http(s)://…), or on central's machine the folder it serves",
    )
    p = verb("usb", cmd_admin_usb, "write the repository to a USB stick")
    p.add_argument("--out", required=True, help="the stick's mount point")
    p = verb("custody", cmd_admin_custody, "move one key of a role to a custodian's medium")
    p.add_argument("--role", required=True, choices=["root", "targets", "snapshot", "timestamp"])
    p.add_argument("--out", required=True, help="the custodian's mounted medium")
    verb("status", cmd_admin_status, "versions, provinces and the published release")

    p = sub.add_parser("update", help="check for signed updates and apply them")
    add_state(p)
    p.add_argument("--once", action="store_true", help="check once and exit")
    p.add_argument("--from", dest="source", help="central URL or a folder (USB stick)")
    p.add_argument("--root", help="release root (default: $EDGE_RELEASE_ROOT or /opt/edge)")
    p.add_argument(
        "--restart",
        help="restart command (default: $EDGE_RESTART_CMD, else the edge-restart.path request "
        "inside edge-update.service, else systemctl restart edge.service)",
    )
    p.add_argument("--health-timeout", type=float, default=120.0, help="seconds")
    p.add_argument(
        "--probation",
        type=float,
        help="seconds a restarted release's daemon must keep beating before the release "
        "is confirmed (default 360: longer than edge.service's watchdog)",
    )
    p.add_argument("--trust-root", help="pin the first trusted root (unprovisioned boxes only)")
    p.add_argument("--retry-failed", action="store_true", help="retry a release that failed")
    add_json(p)
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("config", help="the effective configuration and where it came from")
    add_state(p)
    p.add_argument("--root", help="release root (default: $EDGE_RELEASE_ROOT or /opt/edge)")
    add_json(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("selftest", help="prove this release works (run after an update)")
    add_state(p)
    p.add_argument("--probe", help="URL that must answer (central)")
    add_json(p)
    p.set_defaults(func=cmd_selftest)

    p = sub.add_parser("clerks", help="clerk accounts, and changes waiting for a sign-in")
    add_state(p)
    p.add_argument("--activate", action="store_true", help="sign in and apply waiting changes")
    p.add_argument("--clerk", help="who signs in for --activate")
    add_json(p)
    p.set_defaults(func=cmd_clerks)
