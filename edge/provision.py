"""Provisioning a box: an empty state folder becomes an office's box."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from edge import __version__
from edge.records import Ledger
from edge.settings import Settings
from edge.stick import StickError, read_handed_file
from edge.store import DB_FILE, Store
from edge.vault import KEYRING_FILE, Keyring, VaultError

OFFICE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{1,31}$")
CLERK_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,31}$")


def read_public_key(path: Path) -> bytes:
    """A raw 32-byte X25519 public key, stored as base64 text (one line)."""
    try:
        raw = base64.b64decode(path.read_text("ascii").strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise VaultError(f"cannot read a public key from {path}: expected one base64 line") from exc
    if len(raw) != 32:
        raise VaultError(f"{path} does not hold a 32-byte X25519 public key")
    return raw


def provision(
    state: Path,
    *,
    office: str,
    clerk: str,
    password: str,
    recovery_key: Path | None = None,
    central_key: Path | None = None,
    trust_root: Path | None = None,
    temporary: bool = False,
) -> None:
    """Make ``state`` an office's box with its first clerk.

    ``temporary``: the password was chosen by regional IT (``edge init``, first boot),
    so the clerk must replace it at the first sign-in before the desk opens.
    """
    office = office.strip().upper()
    if not OFFICE_CODE.match(office):
        raise VaultError(f"office code {office!r} is not valid: use letters, digits, dots, dashes")
    if not CLERK_NAME.match(clerk):
        raise VaultError(
            f"clerk name {clerk!r} is not valid: use lower-case letters, digits, '.', '_' or '-'"
        )
    if (state / DB_FILE).exists() or (state / KEYRING_FILE).exists():
        raise VaultError(f"{state} is already a provisioned box: refusing to overwrite it")
    recovery = read_public_key(recovery_key) if recovery_key else None
    central = read_public_key(central_key) if central_key else None
    root_bytes = _trust_root(trust_root) if trust_root else None
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    state.chmod(0o700)
    keyring = Keyring.create(
        state,
        office,
        clerk,
        password,
        recovery_public=recovery,
        central_public=central,
        temporary=temporary,
    )
    store = Store.open(state, create=True)
    try:
        with store.transaction():
            store.put_settings(Settings())
            store.put_meta("office", office)
            Ledger(store, keyring.sealer()).record(
                None,
                "box.provisioned",
                {"office": office, "clerk": clerk, "version": __version__},
            )
    finally:
        store.close()
    if root_bytes is not None:
        from edge.update.client import pin_root

        pin_root(state, root_bytes)


def _trust_root(path: Path) -> bytes:
    """Regional IT's update root (TUF root.json), checked before anything is written."""
    from edge.update import UpdateError
    from edge.update.client import check_root

    try:
        data = read_handed_file(path)
        check_root(data)
    except (StickError, UpdateError) as exc:
        raise VaultError(f"cannot use {path} as the update trust root: {exc}") from exc
    return data
