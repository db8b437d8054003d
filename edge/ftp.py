"""The inbox over FTP, for old copiers that scan to nothing newer (issue 17).

Off by default, like the SMB share (``edge/share.py``), and held to the same rules: one
account with a generated password, reachable only from the office's own network segment
(the server listens on the named LAN interfaces' addresses alone, never on the 3G/4G link,
and hangs up on any client outside their subnets), files written so the daemon can read
and remove them. pyftpdlib serves it, in the ``edge-ftp.service`` unit as user edge.

Plain FTP sends the password in the clear on the office's cable; that is why it is the
fallback for copiers without SMB2, not the default. Three more rules keep a copier's
upload from ever being half-read or lost:

* a file is written under a hidden name (``.name.part-…``, which capture ignores) and
  renamed into place only when the transfer completed, so capture never sees half a scan;
  an interrupted transfer is removed, and the copier sends the page again;
* a name already waiting in the inbox is never overwritten: the second file gets
  ``name (2).pdf``, as two copiers sending ``scan0001.pdf`` would otherwise lose one;
* no append, no resume, no delete, no download: a copier only ever stores whole files.

The password is kept as an scrypt hash in ``CONF`` (readable by the server's group only).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge.share import (
    ACCOUNT,
    DEFAULT_INTERFACES,
    ShareError,
    as_state_owner,
    interface_addresses,
    new_password,
    owner_names,
    polling_for_share,
)

CONF = Path("/var/lib/edge/ftp.json")
SERVICE = "edge-ftp.service"
PORT = 21
PASSIVE_PORTS = (60000, 60019)
"""Twenty data ports: a copier opens one at a time; the box's firewall may open just these."""
PERMISSIONS = "elwm"
"""Change folder, list, store, make folders: what copiers do, nothing that reads or removes."""
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
IDLE_SECONDS = 120


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FtpSpec:
    """What the server serves: written by ``enable`` as root, read by the unit as edge."""

    inbox: Path
    interfaces: tuple[str, ...]
    addresses: tuple[str, ...]
    subnets: tuple[Subnet, ...]
    password_hash: str
    account: str = ACCOUNT
    port: int = PORT
    passive_ports: tuple[int, int] = PASSIVE_PORTS

    def to_json(self) -> str:
        return json.dumps(
            {
                "inbox": str(self.inbox),
                "interfaces": list(self.interfaces),
                "addresses": list(self.addresses),
                "subnets": [str(s) for s in self.subnets],
                "account": self.account,
                "password_hash": self.password_hash,
                "port": self.port,
                "passive_ports": list(self.passive_ports),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> FtpSpec:
        data = json.loads(text)
        low, high = data.get("passive_ports", PASSIVE_PORTS)
        return cls(
            inbox=Path(data["inbox"]),
            interfaces=tuple(data["interfaces"]),
            addresses=tuple(data["addresses"]),
            subnets=tuple(ipaddress.ip_network(s) for s in data["subnets"]),
            password_hash=str(data["password_hash"]),
            account=str(data.get("account", ACCOUNT)),
            port=int(data.get("port", PORT)),
            passive_ports=(int(low), int(high)),
        )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        kind, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt), dklen=32, **_SCRYPT
        )
    except (ValueError, UnicodeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def load(conf: Path = CONF) -> FtpSpec:
    try:
        return FtpSpec.from_json(conf.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShareError(
            f"FTP for copiers is off ({conf} does not exist): 'edge share enable --ftp'"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShareError(
            f"{conf} cannot be read ({exc}): run 'edge share enable --ftp' again"
        ) from None


def is_on(conf: Path = CONF) -> bool:
    return conf.is_file()


def write(conf: Path, spec: FtpSpec, group: str) -> None:
    """Owner root, readable by the server's group only: the hash is still worth guarding."""
    conf.parent.mkdir(parents=True, exist_ok=True)
    tmp = conf.with_name(conf.name + ".tmp")
    tmp.write_text(spec.to_json() + "\n", encoding="utf-8")
    os.chmod(tmp, 0o640)
    with contextlib.suppress(PermissionError, KeyError):  # not root: stays the caller's own
        os.chown(tmp, 0, _gid(group))
    os.replace(tmp, conf)


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid


def enable(
    *,
    state: Path | None,
    inbox: Path,
    interfaces: Sequence[str] = DEFAULT_INTERFACES,
    conf: Path = CONF,
    port: int = PORT,
    password: str | None = None,
    service: bool = True,
    addresses: Sequence[str] | None = None,
) -> tuple[FtpSpec, str | None]:
    """Switch FTP on; returns the spec and the password when one was set.

    Safe to run again (a new address, another interface): ``password=None`` keeps the
    password already set, so a copier set up earlier keeps working.
    """
    if not inbox.is_dir():
        raise ShareError(f"the inbox {inbox} does not exist: 'systemd-tmpfiles --create' makes it")
    found = interface_addresses(interfaces)
    listen = tuple(addresses) if addresses is not None else tuple(str(a.ip) for a in found)
    if not listen:
        raise ShareError(
            f"no address on {', '.join(interfaces)}: connect the office network, or name "
            "its interface with --interface"
        )
    old = load(conf) if is_on(conf) else None
    if password is not None:
        password_hash = hash_password(password)
    elif old is not None:
        password_hash = old.password_hash
    else:
        password = new_password()
        password_hash = hash_password(password)
    spec = FtpSpec(
        inbox=inbox,
        interfaces=tuple(interfaces),
        addresses=listen,
        subnets=tuple(dict.fromkeys(a.network for a in found)),
        password_hash=password_hash,
        port=port,
    )
    write(conf, spec, owner_names(inbox)[1])
    if state is not None:
        as_state_owner(state, lambda: polling_for_share(state, True, "ftp"))
    if service:
        _systemctl("enable", "--now", SERVICE)
        _systemctl("restart", SERVICE)
    return spec, password


def reset_password(conf: Path = CONF, *, service: bool = True) -> str:
    """A new generated password (the old one stops working when the server restarts)."""
    spec = load(conf)
    password = new_password()
    write(conf, replace(spec, password_hash=hash_password(password)), owner_names(spec.inbox)[1])
    if service:
        _systemctl("restart", SERVICE)
    return password


def disable(*, state: Path | None, conf: Path = CONF, service: bool = True) -> None:
    if service:
        _systemctl("disable", "--now", SERVICE)
    conf.unlink(missing_ok=True)
    if state is not None:
        as_state_owner(state, lambda: polling_for_share(state, False, "ftp"))


def _systemctl(*args: str) -> None:
    try:
        subprocess.run(["systemctl", *args], check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise ShareError("systemctl is missing: this is not the box's image") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise ShareError(
            f"systemctl {' '.join(args)} failed ({detail[-1] if detail else exc.returncode}): "
            f"'journalctl -u {SERVICE}' says why"
        ) from None


# -- the server ---------------------------------------------------------------------------


def handler_for(spec: FtpSpec) -> type[Any]:
    """A pyftpdlib handler class holding this spec's account, inbox and subnets."""
    from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler

    class Authorizer(DummyAuthorizer):
        def validate_authentication(self, username: str, password: str, handler: Any) -> None:
            if username != spec.account or not password_matches(spec.password_hash, password):
                raise AuthenticationFailed("Wrong user name or password.")

    authorizer = Authorizer()
    authorizer.add_user(spec.account, "", str(spec.inbox), perm=PERMISSIONS)

    class Handler(FTPHandler):
        banner = "Commune Edge: scans to the inbox"
        max_login_attempts = 3
        timeout = IDLE_SECONDS
        permit_foreign_addresses = False
        permit_privileged_ports = False
        passive_ports = range(spec.passive_ports[0], spec.passive_ports[1] + 1)

        def on_connect(self) -> None:
            self._parts: dict[str, str] = {}
            if spec.subnets and not _inside(self.remote_ip, spec.subnets):
                self.respond("421 Only the office network may send scans here.")
                self.close_when_done()

        def ftp_STOR(self, file: str, mode: str = "w") -> str | None:
            if mode != "w" or getattr(self, "_restart_position", False):
                self._restart_position = 0
                self.respond("550 Appending and resuming are not accepted: send the whole file.")
                return None
            folder, name = os.path.split(file)
            part = os.path.join(folder, f".{name}.part-{secrets.token_hex(4)}")
            self._parts[part] = file
            stored: str | None = super().ftp_STOR(part, mode)
            if stored is None:
                self._parts.pop(part, None)
            return stored

        def ftp_STOU(self, line: str) -> None:
            self.respond("502 Store the file under its own name (STOR).")

        def on_file_received(self, file: str) -> None:
            final = self._parts.pop(file, None)
            if final is not None:
                os.replace(file, _free_name(final))

        def on_incomplete_file_received(self, file: str) -> None:
            if self._parts.pop(file, None) is not None:
                Path(file).unlink(missing_ok=True)

        def on_disconnect(self) -> None:
            for part in getattr(self, "_parts", {}):
                Path(part).unlink(missing_ok=True)

    Handler.authorizer = authorizer
    return Handler


def _inside(address: str, subnets: Sequence[Subnet]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == s.version and ip in s for s in subnets)


def _free_name(path: str) -> str:
    """``path``, or ``stem (2).ext`` and on when a file of that name still waits."""
    if not os.path.lexists(path):
        return path
    stem, ext = os.path.splitext(path)
    number = 2
    while os.path.lexists(f"{stem} ({number}){ext}"):
        number += 1
    return f"{stem} ({number}){ext}"


def servers(spec: FtpSpec, ioloop: Any = None) -> list[Any]:
    """One listening server per address, all on one I/O loop."""
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    loop = ioloop or IOLoop()
    handler = handler_for(spec)
    return [FTPServer((address, spec.port), handler, ioloop=loop) for address in spec.addresses]


def serve(conf: Path = CONF) -> None:
    """What ``edge-ftp.service`` runs: serve until stopped."""
    spec = load(conf)
    if not spec.inbox.is_dir():
        raise ShareError(f"the inbox {spec.inbox} does not exist")
    os.umask(0o007)  # group read/write: the daemon reads each scan and removes it
    # pyftpdlib logs every command with its file name at INFO; a copier's user may type a
    # citizen's name as the file name, and names stay out of the journal
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    listening = servers(spec)
    try:
        listening[0].ioloop.loop()
    finally:
        for server in listening:
            server.close_all()
