"""The update client as tuf-conformance's client under test (its CLIENT-CLI.md).

A thin layer over ``edge.update.client`` that does what a box's update cycle does with
it (``edge.update.cycle``): pin the first root, build an ``UpdateClient`` per run with
the reference time ``max(time floor, wall clock)``, refresh, look targets up through the
delegations, take them from the cache or download them, pin the newest root after a run
that verified. So the suite judges the box's own code paths, not a second client.

The box keeps its time floor in the store (``meta.floor_ms``); here it is a small file
beside the pinned root, raised the same way, by the verified timestamp's signing time.
The suite's ``faketime`` is ``bin/faketime`` next to this file: it hands the faked time
over in ``EDGE_CONFORMANCE_NOW``, which stands for the wall clock (libfaketime would fake
it for the whole process; the client only ever reads the wall clock once, here).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from edge.durable import write_atomic
from edge.update import UpdateError
from edge.update.client import Source, UpdateClient, pin_root

STATE = "edge-state"
"""The box-like state under the metadata folder: the pinned root and the time floor. The
suite reads only ``*.json`` directly in that folder, so a sub-folder is ours."""
FLOOR = "floor_ms"
FAKE_NOW = "EDGE_CONFORMANCE_NOW"

log = logging.getLogger("edge.conformance")


def wall_ms() -> int:
    faked = os.environ.get(FAKE_NOW)
    if faked:
        return int(datetime.fromisoformat(faked).timestamp() * 1000)
    return int(time.time() * 1000)


def floor_ms(state: Path) -> int:
    try:
        return int((state / FLOOR).read_text("ascii"))
    except (OSError, ValueError):
        return 0


def source(metadata_url: str, targets_url: str | None) -> Source:
    """The suite serves ``<base>/metadata/`` and ``<base>/targets/``, as central and a stick
    do; anything else is a layout the box never meets, so it is refused."""
    base = metadata_url.rstrip("/").removesuffix("/metadata")
    made = Source(metadata_url, base, online=True)
    if made.metadata_url != metadata_url.rstrip("/") + "/":
        raise UpdateError(f"{metadata_url} does not end in /metadata/")
    if targets_url is not None and made.targets_url != targets_url.rstrip("/") + "/":
        raise UpdateError(f"{targets_url} is not {made.targets_url}")
    return made


def open_client(args: argparse.Namespace, targets_url: str | None = None) -> UpdateClient:
    state = Path(args.metadata_dir) / STATE
    client = UpdateClient(
        state,
        source(args.metadata_url, targets_url),
        floor_ms=floor_ms(state),
        wall_ms=wall_ms(),
        metadata_dir=Path(args.metadata_dir),
        targets_dir=Path(args.target_dir) if getattr(args, "target_dir", None) else None,
    )
    client.refresh()
    return client


def finish(client: UpdateClient) -> None:
    """What a box does after a run that verified: shorten the root chain, raise the floor."""
    client.pin_newest()
    signed = client.signed_at_ms()
    if signed is not None and signed > floor_ms(client.state):
        write_atomic(client.state / FLOOR, str(signed).encode("ascii"))


def init(args: argparse.Namespace) -> None:
    state = Path(args.metadata_dir) / STATE
    version = pin_root(state, Path(args.trusted_root).read_bytes())
    log.info("pinned root v%d in %s", version, state)


def refresh(args: argparse.Namespace) -> None:
    client = open_client(args)
    finish(client)
    log.info("refreshed: %s", client.role_versions())


def download(args: argparse.Namespace) -> None:
    client = open_client(args, args.target_base_url)
    for name in args.target_name:
        info = client.lookup(name)
        if info is None:
            raise UpdateError(f"{name}: no signed target of that name")
        log.info("%s: %s", name, client.fetch(info))
    finish(client)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--metadata-dir", required=True)
    cli.add_argument("--metadata-url")
    cli.add_argument("--target-name", action="append", default=[])
    cli.add_argument("--target-base-url")
    cli.add_argument("--target-dir")
    commands = cli.add_subparsers(dest="command", required=True)
    first = commands.add_parser("init")
    first.add_argument("trusted_root")
    first.set_defaults(run=init)
    commands.add_parser("refresh").set_defaults(run=refresh)
    commands.add_parser("download").set_defaults(run=download)
    return cli


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="edge client: %(message)s", stream=sys.stderr)
    args = parser().parse_args(argv)
    needs = {"refresh": ["metadata_url"], "download": ["metadata_url", "target_base_url"]}
    missing = [name for name in needs.get(args.command, []) if not getattr(args, name)]
    if args.command == "download" and not (args.target_name and args.target_dir):
        missing += ["target_name", "target_dir"]
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        log.error("%s needs %s", args.command, flags)
        return 1
    try:
        args.run(args)
    except UpdateError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
