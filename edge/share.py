"""The inbox as an SMB share, for copiers that "scan to folder".

Off by default. ``edge share enable`` (as root, by a technician or by first boot) writes
the box's whole Samba configuration, gives the copier's account a generated password,
turns the polling watcher on and starts smbd; ``edge share disable`` undoes all of it.

The configuration is generated here rather than edited in place so that it can be tested
and is the same on every box: SMB2 and later only (SMB1 is what worms and downgrade
attacks use, and every copier sold in the last decade speaks SMB2), one account and no
guest, no printers, no home folders, and only the office's own network segment: smbd
binds to the named LAN interfaces, never to the 3G/4G link, and refuses any address
outside their subnets. Files are written as the daemon's user with group read/write, so
the daemon can read each scan and remove it once it is stored.

``/etc/samba/smb.conf`` on the image only includes ``CONF`` (under /var/lib, which first
boot may write while /etc stays read-only), so Samba's own tools (smbstatus, pdbedit,
testparm) see the same configuration as smbd.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONF = Path("/var/lib/samba/edge-share.conf")
SHARE = "scans"
ACCOUNT = "edge-scan"
DEFAULT_INBOX = Path("/srv/edge/inbox")
DEFAULT_INTERFACES = ("eth0",)
SERVICE = "smbd.service"
# nmbd (NetBIOS names) and the AD domain controller are never wanted: copiers are given
# the box's address, and a name service would only answer on more ports.
NEVER_UNITS = ("nmbd.service", "samba-ad-dc.service")
MARKER = "# Commune Edge scan-to-folder share"
# lower-case letters and digits a copier's touch keyboard has on its first page, without
# the look-alikes 0/o, 1/l/i: 16 of them are about 78 bits
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS = 4
SAMBA_TIMEOUT = 60


class ShareError(Exception):
    """The share could not be set up; the message says what to do next."""


@dataclass(frozen=True)
class SambaDirs:
    """Where Samba keeps its databases; ``None`` keeps Debian's default.

    Tests and staging put every one of them in a folder of their own, so that a smbd
    they start touches nothing of the machine's.
    """

    private: Path | None = None
    lock: Path | None = None
    state: Path | None = None
    cache: Path | None = None
    pid: Path | None = None
    ncalrpc: Path | None = None
    log_file: Path | None = None

    @classmethod
    def under(cls, base: Path) -> SambaDirs:
        return cls(
            private=base / "private",
            lock=base / "lock",
            state=base / "state",
            cache=base / "cache",
            pid=base / "run",
            ncalrpc=base / "run" / "ncalrpc",
            log_file=base / "log" / "smbd.log",
        )

    def create(self) -> None:
        for path in (self.private, self.lock, self.state, self.cache, self.pid):
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
        if self.private is not None:
            self.private.chmod(0o700)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class ShareSpec:
    """Everything the generated configuration depends on."""

    inbox: Path
    interfaces: tuple[str, ...]
    subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    owner: str
    group: str
    account: str = ACCOUNT
    name: str = SHARE
    port: int = 445
    dirs: SambaDirs = field(default_factory=SambaDirs)


def _global(dirs: SambaDirs, port: int) -> list[str]:
    lines = [
        "[global]",
        "server role = standalone server",
        "server string = Commune Edge",
        "workgroup = WORKGROUP",
        "security = user",
        "server min protocol = SMB2_02",
        "ntlm auth = ntlmv2-only",
        "map to guest = Never",
        "restrict anonymous = 2",
        "disable netbios = yes",
        f"smb ports = {port}",
        "load printers = no",
        "printing = bsd",
        "printcap name = /dev/null",
        "disable spoolss = yes",
        "show add printer wizard = no",
        "usershare max shares = 0",
        "usershare allow guests = no",
        "allow insecure wide links = no",
        "unix password sync = no",
        "pam password change = no",
        # failed logins in the log: "login failed" on a copier is then one grep away
        "log level = 1 auth_audit:3",
    ]
    if dirs.log_file is None:
        lines.append("logging = systemd")
    else:
        lines += ["logging = file", f"log file = {dirs.log_file}"]
    if dirs.private is not None:
        lines += [
            f"private dir = {dirs.private}",
            f"passdb backend = tdbsam:{dirs.private}/passdb.tdb",
        ]
    else:
        lines.append("passdb backend = tdbsam")
    for key, value in (
        ("lock directory", dirs.lock),
        ("state directory", dirs.state),
        ("cache directory", dirs.cache),
        ("pid directory", dirs.pid),
        ("ncalrpc dir", dirs.ncalrpc),
    ):
        if value is not None:
            lines.append(f"{key} = {value}")
    return lines


def render(spec: ShareSpec) -> str:
    """The whole smb.conf with the share on."""
    allow = ["127.0.0.1", "::1", *(str(net) for net in spec.subnets)]
    lines = [
        f"{MARKER}: on. Written by 'edge share enable'; change it with 'edge share', not by hand.",
        *_global(spec.dirs, spec.port),
        f"interfaces = lo {' '.join(spec.interfaces)}",
        "bind interfaces only = yes",
        f"hosts allow = {' '.join(dict.fromkeys(allow))}",
        "hosts deny = ALL",
        "",
        f"[{spec.name}]",
        "comment = Commune Edge inbox",
        f"path = {spec.inbox}",
        f"valid users = {spec.account}",
        "guest ok = no",
        "read only = no",
        "browseable = yes",
        # the daemon's user owns every file, group read/write, nothing executable
        f"force user = {spec.owner}",
        f"force group = {spec.group}",
        "create mask = 0660",
        "force create mode = 0660",
        "directory mask = 0770",
        "force directory mode = 0770",
        "inherit permissions = no",
        "map archive = no",
        "store dos attributes = no",
        "ea support = no",
        "follow symlinks = no",
        "wide links = no",
    ]
    return (
        "\n".join(
            line if not line or line.startswith(("[", "#")) else "   " + line for line in lines
        )
        + "\n"
    )


def render_off(dirs: SambaDirs | None = None) -> str:
    """smb.conf with no share at all: what the image ships and ``disable`` writes back."""
    lines = [
        f"{MARKER}: off. Written by 'edge share disable'; turn it on with 'edge share enable'.",
        *_global(dirs or SambaDirs(), 445),
        "interfaces = lo",
        "bind interfaces only = yes",
        "hosts allow = 127.0.0.1 ::1",
        "hosts deny = ALL",
    ]
    return "\n".join(line if line.startswith(("[", "#")) else "   " + line for line in lines) + "\n"


def is_on(conf: Path) -> bool:
    try:
        first = conf.read_text("utf-8").partition("\n")[0]
    except FileNotFoundError:
        return False
    return first.startswith(f"{MARKER}: on")


def configured_subnets(conf: Path) -> list[str]:
    """The networks the written configuration lets in (loopback left out)."""
    for line in conf.read_text("utf-8").splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() == "hosts allow":
            return [v for v in value.split() if v not in ("127.0.0.1", "::1")]
    return []


def new_password() -> str:
    groups = (
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(PASSWORD_GROUPS)
    )
    return "-".join(groups)


Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def interface_addresses(names: Sequence[str]) -> tuple[Address, ...]:
    """The box's addresses on the named interfaces now, from ``ip -json addr``.

    IPv6 link-local addresses are left out: a copier that speaks IPv6 at all also has a
    routable or unique-local address on an office network, and fe80::/10 names no segment.
    """
    found: list[Address] = []
    for name in names:
        result = _run(["ip", "-json", "addr", "show", "dev", name], check=False)
        if result.returncode != 0:
            raise ShareError(
                f"the box has no network interface {name!r}: 'ip addr' lists them; "
                "name the office network's one with --interface"
            )
        before = len(found)
        for link in json.loads(result.stdout or "[]"):
            for info in link.get("addr_info", []):
                address = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
                if address.version == 6 and address.is_link_local:
                    continue
                found.append(address)
        if len(found) == before:
            raise ShareError(
                f"{name} has no address yet: connect the box to the office network "
                "(or name another interface with --interface) and run this again"
            )
    return tuple(found)


def _run(
    argv: list[str], *, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        package = "iproute2" if argv[0] == "ip" else "samba"
        raise ShareError(f"{argv[0]} is missing: apt-get install {package} (the image has it)")
    result = subprocess.run(
        argv, input=input, capture_output=True, text=True, timeout=SAMBA_TIMEOUT, check=False
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ShareError(
            f"{' '.join(argv[:2])} failed ({detail[-1] if detail else result.returncode}): "
            "see 'journalctl -u smbd' and run this again"
        )
    return result


def write_conf(conf: Path, text: str) -> None:
    """Replace ``conf`` whole and check it with testparm before smbd can read it."""
    conf.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=conf.parent, prefix=".edge-share.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        result = _run(["testparm", "-s", "--suppress-prompt", tmp], check=False)
        if result.returncode != 0:
            raise ShareError(
                f"Samba refused the generated configuration ({result.stderr.strip()[-200:]}): "
                "report this to the project team"
            )
        os.replace(tmp, conf)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_account(account: str) -> None:
    """The copier's Unix account: no shell, no home, no password of its own."""
    try:
        pwd.getpwnam(account)
        return
    except KeyError:
        pass
    _run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "Commune Edge copier scan-to-folder",
            account,
        ]
    )


def set_password(conf: Path, account: str, password: str) -> None:
    """Add or replace the account in Samba's own database (not /etc/shadow)."""
    _run(["smbpasswd", "-c", str(conf), "-s", "-a", account], input=f"{password}\n{password}\n")
    _run(["smbpasswd", "-c", str(conf), "-e", account])


def remove_account(conf: Path, account: str) -> None:
    listed = _run(["pdbedit", "-s", str(conf), "-L"], check=False)
    if any(line.split(":", 1)[0] == account for line in listed.stdout.splitlines()):
        _run(["smbpasswd", "-c", str(conf), "-x", account])


def has_account(conf: Path, account: str) -> bool:
    listed = _run(["pdbedit", "-s", str(conf), "-L"], check=False)
    return any(line.split(":", 1)[0] == account for line in listed.stdout.splitlines())


def systemctl(*args: str) -> None:
    result = _run(["systemctl", *args], check=False)
    if result.returncode != 0:
        raise ShareError(
            f"systemctl {' '.join(args)} failed ({result.stderr.strip()}): "
            "see 'journalctl -u smbd -b' and run this again"
        )


def service_on() -> None:
    systemctl("unmask", SERVICE)
    systemctl("enable", SERVICE)
    # --no-block: first boot runs this from a unit that smbd's start may wait behind
    systemctl("restart", "--no-block", SERVICE)


def service_off() -> None:
    result = _run(["systemctl", "disable", "--now", SERVICE], check=False)
    if result.returncode != 0 and "does not exist" not in result.stderr:
        raise ShareError(f"cannot stop smbd ({result.stderr.strip()}): run 'systemctl stop smbd'")
    systemctl("mask", SERVICE)


def service_state() -> str:
    if shutil.which("systemctl") is None:
        return "unknown"
    return _run(["systemctl", "is-active", SERVICE], check=False).stdout.strip() or "unknown"


def owner_names(inbox: Path) -> tuple[str, str]:
    """The inbox owner's user and group: the daemon's, which must own every scan."""
    import grp

    st = inbox.stat()
    try:
        return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
    except KeyError as exc:
        raise ShareError(
            f"{inbox} belongs to no known user: 'systemd-tmpfiles --create' gives it back to edge"
        ) from exc


def as_state_owner(state: Path, work: Callable[[], None]) -> None:
    """Run ``work`` as the user who owns the state folder.

    ``edge share`` runs as root for Samba, but the database must keep its owner: a
    write-ahead log first created by root would keep the daemon (user edge) out.
    """
    st = state.stat()
    if os.geteuid() != 0 or st.st_uid == 0:
        work()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(st.st_gid)
            os.setuid(st.st_uid)
            work()
            code = 0
        except BaseException as exc:
            print(f"edge: error: {exc}", file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ShareError(
            f"could not change the settings in {state} (the line above says why): "
            "check the folder's owner with 'edge doctor'"
        )


POLLING_BEFORE = "share.use_polling_before"


def polling_for_share(state: Path, enabled: bool, protocol: str = "smb") -> None:
    """Turn the polling watcher on with the share (or back to what it was), and audit it.

    Scans written by smbd reach the inbox through the box's own kernel, but the share
    exists for other machines' writes, and a copier that holds a file open and pauses is
    settled by size and time alone; polling plus the periodic rescan never depend on an
    event arriving.
    """
    from edge.records import Ledger
    from edge.store import Store
    from edge.vault import Keyring

    store = Store.open(state)
    try:
        settings = store.settings()
        with store.transaction():
            if enabled:
                if store.meta(POLLING_BEFORE) is None:
                    store.put_meta(POLLING_BEFORE, json.dumps(settings.use_polling))
                store.put_meta("share.protocol", protocol)
                store.put_settings(settings.with_changes(use_polling=True))
            else:
                before = store.meta(POLLING_BEFORE)
                if before is not None:
                    store.put_settings(settings.with_changes(use_polling=json.loads(before)))
                store.conn.execute(
                    "DELETE FROM meta WHERE key IN (?, ?)", (POLLING_BEFORE, "share.protocol")
                )
            Ledger(store, Keyring.load(state).sealer()).record(
                None, "share.enabled" if enabled else "share.disabled", {"protocol": protocol}
            )
    finally:
        store.close()


def share_status(state: Path | None) -> dict[str, object]:
    from edge.store import Store

    if state is None:
        return {}
    store = Store.open(state)
    try:
        return {
            "use_polling": store.settings().use_polling,
            "protocol": store.meta("share.protocol"),
        }
    finally:
        store.close()


def enable(
    *,
    state: Path | None,
    inbox: Path,
    interfaces: Sequence[str],
    conf: Path = CONF,
    dirs: SambaDirs | None = None,
    port: int = 445,
    password: str | None = None,
    service: bool = True,
) -> tuple[ShareSpec, str | None]:
    """Switch the share on; returns the spec and the password when one was set.

    Safe to run again (a new address, another interface): ``password=None`` keeps the
    password the account already has, so a copier set up earlier keeps working, and only
    a new account gets a generated one.
    """
    if not inbox.is_dir():
        raise ShareError(f"the inbox {inbox} does not exist: 'systemd-tmpfiles --create' makes it")
    owner, group = owner_names(inbox)
    dirs = dirs or SambaDirs()
    spec = ShareSpec(
        inbox=inbox,
        interfaces=tuple(interfaces),
        subnets=tuple(dict.fromkeys(a.network for a in interface_addresses(interfaces))),
        owner=owner,
        group=group,
        port=port,
        dirs=dirs,
    )
    dirs.create()
    ensure_account(spec.account)
    write_conf(conf, render(spec))
    if password is None and not has_account(conf, spec.account):
        password = new_password()
    if password is not None:
        set_password(conf, spec.account, password)
    if state is not None:
        as_state_owner(state, lambda: polling_for_share(state, True))
    if service:
        service_on()
    return spec, password


def reset_password(conf: Path = CONF) -> str:
    """A new generated password for the copier's account (the old one stops working)."""
    if not is_on(conf):
        raise ShareError("the share is off: 'edge share enable' switches it on with a password")
    password = new_password()
    set_password(conf, ACCOUNT, password)
    return password


def disable(
    *,
    state: Path | None,
    conf: Path = CONF,
    dirs: SambaDirs | None = None,
    service: bool = True,
) -> None:
    """Switch the share off: smbd stopped and masked, no share, no account."""
    if service:
        service_off()
    write_conf(conf, render_off(dirs))
    if shutil.which("pdbedit") is not None:
        remove_account(conf, ACCOUNT)
    if state is not None and share_status(state).get("protocol") is not None:
        as_state_owner(state, lambda: polling_for_share(state, False))
