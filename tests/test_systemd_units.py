"""The units in systemd/ are checked by systemd's own tools, the way the box will load them.

``systemd-analyze verify`` runs against a throwaway root holding this machine's stock
units, the project's units where the image installs them, and the programs their
``Exec*=`` lines name (a stub for the ``edge`` entry point, the real first-boot script),
so a wrong path, an unknown setting or a bad dependency fails here. ``security
--offline`` enforces the hardening budget: the daemon at 2.0 or lower, central's
receiver at 2.5 or lower (``--threshold`` counts tenths: 20 and 25). sysusers.d and
tmpfiles.d are applied to the same kind of root; the udev rule is parsed by udevadm
inside a private mount namespace. Each check also runs once on a broken input, to prove
it can fail.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "systemd"
FIRSTBOOT = REPO / "image-build" / "stage-edge" / "00-edge" / "files" / "edge-firstboot"
SERVICES = [
    "edge.service",
    "edge-central.service",
    "edge-tui@.service",
    "edge-update.service",
    "edge-update-usb.service",
    "edge-firstboot.service",
    "edge-restart.service",
    "edge-scan-button.service",
    "edge-ftp.service",
]
ALL_UNITS = [
    *SERVICES,
    "edge-update.timer",
    "edge-restart.path",
    "edge-update-request.path",
    "media-edge\\x2dusb.mount",
]
BUDGET = {
    "edge.service": 20,
    "edge-central.service": 25,
    "edge-scan-button.service": 20,
    "edge-ftp.service": 20,
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run 'make system-deps' (it installs it with apt)")
    return path


def instance(unit: str) -> str:
    return unit.replace("@.", "@tty1.")


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with stock units, ours under /usr/lib/systemd/system, and their programs."""
    root = tmp_path_factory.mktemp("root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in ALL_UNITS:
        shutil.copy(UNITS / unit, root / "usr/lib/systemd/system" / unit)
    edge = root / "opt/edge/releases/0.0.0/bin/edge"
    edge.parent.mkdir(parents=True)
    edge.write_text("#!/bin/sh\n")
    edge.chmod(0o755)
    (root / "opt/edge/current").symlink_to("releases/0.0.0")
    (root / "usr/lib/edge").mkdir(parents=True)
    shutil.copy(FIRSTBOOT, root / "usr/lib/edge/edge-firstboot")
    (root / "bin").mkdir()
    for program in ("sh", "rm", "systemctl"):
        shutil.copy(f"/bin/{program}", root / "bin" / program)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_unit_verifies_clean(fake_root: Path, unit: str) -> None:
    result = verify(fake_root, instance(unit))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", result.stdout + result.stderr


def test_a_mounted_stick_starts_the_usb_updater_with_the_stick_as_source(
    fake_root: Path,
) -> None:
    """Enabling the unit hooks it to the stick's mount, the way the image enables it."""
    done = subprocess.run(
        [tool("systemctl"), f"--root={fake_root}", "enable", "edge-update-usb.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    wants = fake_root / "etc/systemd/system/media-edge\\x2dusb.mount.wants"
    assert (wants / "edge-update-usb.service").is_symlink()
    text = (UNITS / "edge-update-usb.service").read_text()
    assert "--from /media/edge-usb" in text
    assert "After=media-edge\\x2dusb.mount" in text
    install = (REPO / "image-build/stage-edge/00-edge/files/install-edge.sh").read_text()
    assert "edge-update-usb.service" in install


def test_verify_catches_a_typo_and_a_missing_program(fake_root: Path) -> None:
    text = (UNITS / "edge.service").read_text()
    units = fake_root / "usr/lib/systemd/system"
    (units / "typo.service").write_text(text.replace("ProtectSystem=", "ProtectSytem="))
    (units / "lost.service").write_text(text.replace("/opt/edge/current/bin/edge", "/opt/nope"))
    try:
        typo = verify(fake_root, "typo.service")
        lost = verify(fake_root, "lost.service")
    finally:
        (units / "typo.service").unlink()
        (units / "lost.service").unlink()
    assert "Unknown key" in typo.stderr
    assert lost.returncode != 0 and "/opt/nope" in lost.stderr


def exposure(root: Path, unit: str, threshold: int) -> tuple[int, float]:
    result = subprocess.run(
        [
            tool("systemd-analyze"),
            "security",
            "--offline=yes",
            f"--threshold={threshold}",
            f"--root={root}",
            "--no-pager",
            unit,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    return result.returncode, float(found.group(1))


@pytest.mark.parametrize("unit", sorted(BUDGET))
def test_hardening_stays_within_budget(fake_root: Path, unit: str) -> None:
    code, score = exposure(fake_root, unit, BUDGET[unit])
    assert code == 0 and score <= BUDGET[unit] / 10, f"{unit} exposure {score}"


def test_threshold_fails_an_unhardened_unit(fake_root: Path) -> None:
    units = fake_root / "usr/lib/systemd/system"
    plain = [
        line
        for line in (UNITS / "edge.service").read_text().splitlines()
        if not re.match(r"(Protect|Private|Restrict|System|Capability|NoNew|Memory|Lock)", line)
    ]
    (units / "plain.service").write_text("\n".join(plain) + "\n")
    try:
        code, score = exposure(fake_root, "plain.service", BUDGET["edge.service"])
    finally:
        (units / "plain.service").unlink()
    assert code != 0 and score > 2.0


def exec_args(unit: str, key: str = "ExecStart") -> list[str]:
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith(f"{key}="):
            return shlex.split(line.split("=", 1)[1])
    raise AssertionError(f"{unit} has no {key}")


@pytest.mark.parametrize(
    "unit",
    [
        "edge.service",
        "edge-central.service",
        "edge-tui@.service",
        "edge-update.service",
        "edge-scan-button.service",
    ],
)
def test_exec_lines_are_commands_the_cli_accepts(unit: str) -> None:
    argv = exec_args(unit)
    assert argv[0] == "/opt/edge/current/bin/edge"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert argv[1] in commands.choices, f"unit {unit} runs 'edge {argv[1]}', which does not exist"
    parser.parse_args(argv[1:])


def test_daemon_unit_matches_what_the_daemon_does() -> None:
    text = (UNITS / "edge.service").read_text()
    assert "Type=notify" in text and "NotifyAccess=main" in text
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert "Restart=on-failure" in text and "StartLimitBurst=" in text
    assert "--http-port 8770" in text
    assert "MemoryDenyWriteExecute=yes" in text  # tested for real in test_notify.py
    central = (UNITS / "edge-central.service").read_text()
    assert "--host 127.0.0.1" in central and "IPAddressAllow=localhost" in central


def test_users_and_folders_come_out_right(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    conf = [str(p) for p in sorted((UNITS / "sysusers.d").glob("*.conf"))]
    result = subprocess.run(
        [tool("systemd-sysusers"), f"--root={tmp_path}", *conf], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    users = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc/passwd").read_text().splitlines()
    }
    assert users["edge"][5] == "/var/lib/edge" and users["edge"][6].endswith("nologin")
    assert users["edge-central"][5] == "/var/lib/edge-central"
    assert int(users["edge"][2]) < 1000  # a system user
    result = subprocess.run(
        [
            tool("systemd-tmpfiles"),
            f"--root={tmp_path}",
            "--create",
            str(UNITS / "tmpfiles.d/edge.conf"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    inbox = (tmp_path / "srv/edge/inbox").stat()
    assert oct(inbox.st_mode & 0o7777) == "0o770" and str(inbox.st_uid) == users["edge"][2]
    assert str((tmp_path / "opt/edge/releases").stat().st_uid) == users["edge"][2]
    assert (tmp_path / "media/edge-usb").is_dir()


def udev_test(rules: Path) -> str:
    """udevadm's parse of the rules in ``rules``, seen through a private mount namespace."""
    udevadm = tool("udevadm")
    device = next(iter(sorted(Path("/sys/class/block").iterdir())), None)
    if device is None:
        pytest.fail("no block device in /sys/class/block to run udevadm test against")
    script = (
        f"mount --bind {shlex.quote(str(rules))} /etc/udev/rules.d && "
        f"{udevadm} test --action=add {device} 2>&1"
    )
    result = subprocess.run(
        [tool("unshare"), "--mount", "sh", "-c", script], capture_output=True, text=True
    )
    assert "Reading rules file: /etc/udev/rules.d/" in result.stdout, result.stdout[-2000:]
    return result.stdout


def test_usb_rule_parses_and_the_check_can_fail(tmp_path: Path) -> None:
    if not Path("/etc/udev/rules.d").is_dir():
        pytest.fail("/etc/udev/rules.d is missing: run 'make system-deps' (installs udev)")
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(UNITS / "80-edge-usb.rules", good)
    output = udev_test(good)
    ours = [line for line in output.splitlines() if "80-edge-usb.rules:" in line]
    assert ours == [], ours
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "80-edge-usb.rules").write_text(
        (UNITS / "80-edge-usb.rules").read_text().replace("SYMLINK+=", "SYMLNK+=")
    )
    assert "80-edge-usb.rules:" in udev_test(bad)


def test_usb_mount_is_read_only_and_inert() -> None:
    mount = (UNITS / "media-edge\\x2dusb.mount").read_text()
    options = re.search(r"^Options=(.*)$", mount, re.M)
    assert options is not None
    assert {"ro", "noexec", "nosuid", "nodev"} <= set(options.group(1).split(","))
    assert "Where=/media/edge-usb" in mount


def test_the_daemons_update_request_is_the_file_the_path_unit_watches() -> None:
    """edge.service tells the daemon where to ask; edge-update-request.path watches there;
    edge-update.service removes it before it runs, so one request starts one run."""
    service = (UNITS / "edge.service").read_text()
    watched = (UNITS / "edge-update-request.path").read_text()
    update = (UNITS / "edge-update.service").read_text()
    request = "/var/lib/edge/run/update-request"
    assert f"Environment=EDGE_UPDATE_REQUEST={request}" in service
    assert f"PathExists={request}" in watched and "Unit=edge-update.service" in watched
    assert f"ExecStartPre=/bin/rm -f {request}" in update


def test_the_clerk_ui_can_reach_scanners_and_nothing_beyond_the_lan() -> None:
    """The scan key runs scanimage from the UI's own unit (issue 17)."""
    text = (UNITS / "edge-tui@.service").read_text()
    assert "SupplementaryGroups=scanner" in text
    assert "DeviceAllow=char-usb_device rw" in text and "DevicePolicy=closed" in text
    assert "PrivateNetwork=" not in text  # airscan's network scanners are on the LAN
    assert "IPAddressDeny=any" in text
    allowed = " ".join(re.findall(r"^IPAddressAllow=(.*)$", text, re.M)).split()
    assert "any" not in allowed and "0.0.0.0/0" not in allowed and "::/0" not in allowed
    assert "ReadWritePaths=-/srv/edge/inbox" in text
    argv = exec_args("edge-tui@.service")
    assert argv[argv.index("--inbox") + 1] == "/srv/edge/inbox"
