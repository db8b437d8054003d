"""``edge doctor``: every check a technician would do by hand, with the fix in words."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.clock import iso
from edge.store import DB_FILE, Store, StoreError
from edge.vault import Keyring, VaultError


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_zbar() -> Check:
    try:
        from pyzbar import pyzbar  # noqa: F401
    except (ImportError, OSError) as exc:
        return Check("libzbar", "fail", f"cannot load libzbar ({exc})", "apt-get install libzbar0")
    return Check("libzbar", "ok", "libzbar loads")


def _reviews(store: Store) -> Check:
    """Covers capture could not read for sure hold their pages out of every dossier until a
    clerk decides, so a box where nobody does so is a box filing nothing."""
    waiting = store.open_reviews()
    if not waiting:
        return Check("reviews", "ok", "no scanned cover waits for the clerk")
    return Check(
        "reviews",
        "warn",
        f"{len(waiting)} scanned cover(s) wait for the clerk, the oldest since "
        f"{waiting[0]['received_at']}",
        "ask the clerk to open the dossiers marked 'Cần kiểm tra bìa' and decide each one",
    )


def run_checks(state: Path, inbox: str | None = None) -> list[Check]:
    checks = [check_zbar()]
    if not (state / DB_FILE).exists():
        checks.append(
            Check("state", "fail", f"{state} is not a provisioned box", "run 'edge init'")
        )
        return checks
    try:
        keyring = Keyring.load(state)
        keyring.sealer().new_key()
        checks.append(
            Check("keys", "ok", f"office {keyring.office}, {len(keyring.clerks())} clerk(s)")
        )
    except (VaultError, ValueError, KeyError) as exc:
        checks.append(
            Check("keys", "fail", str(exc), "restore keyring.json from the provisioning backup")
        )
    try:
        store = Store.open(state)
    except StoreError as exc:
        checks.append(Check("database", "fail", str(exc), "restore the database from backup"))
        return checks
    try:
        result = store.integrity_check()
        broken = store.verify_chain()
        if result != "ok":
            checks.append(
                Check("database", "fail", f"integrity_check: {result}", "restore from backup")
            )
        elif broken is not None:
            checks.append(
                Check(
                    "event log",
                    "fail",
                    f"hash chain broken at event {broken}",
                    "report to regional IT: records were altered outside the application",
                )
            )
        else:
            checks.append(
                Check("database", "ok", f"integrity ok, {store.count('events')} events chained")
            )
        settings = store.settings()
        free = shutil.disk_usage(state).free
        need = settings.min_free_mb * 1024 * 1024
        if free < need:
            checks.append(
                Check(
                    "disk",
                    "fail",
                    f"{free // 2**20} MB free, below {settings.min_free_mb} MB",
                    "free space: sync so old pages can be purged, or replace the SD card",
                )
            )
        else:
            checks.append(Check("disk", "ok", f"{free // 2**20} MB free"))
        behind = store.clock.behind_floor_ms()
        if behind > 60_000:
            checks.append(
                Check(
                    "clock",
                    "warn",
                    f"wall clock is {behind // 1000} s behind the newest trusted time "
                    f"{iso(store.clock.floor_ms)}",
                    "connect to the network so the clock syncs, or set it with 'date -s'",
                )
            )
        else:
            checks.append(Check("clock", "ok", "wall clock is not behind the time floor"))
        checks.append(_reviews(store))
    finally:
        store.close()
    if inbox is not None:
        path = Path(inbox).expanduser()
        if not path.is_dir():
            checks.append(Check("inbox", "fail", f"{path} does not exist", f"mkdir -p {path}"))
        elif not os.access(path, os.W_OK | os.X_OK):
            checks.append(
                Check("inbox", "fail", f"{path} is not writable", "fix the folder's owner/mode")
            )
        else:
            checks.append(Check("inbox", "ok", f"{path} is writable"))
    return checks
