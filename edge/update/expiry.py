"""When the signed metadata runs out, and who has to act before it does.

A publish re-signs every role whose keys are at hand, but not root: the root keys are
with custodians who must meet (docs/updates.md, "Root ceremony"). Root lives 365 days;
past that, every box refuses every update ("Final root.json is expired") until a new
root is signed. So its end is shown long before (``ROOT_WARN_DAYS``), on regional IT's
machine (``edge admin status``) and on central's fleet page (``served_root_expiry``).
A province role whose key is kept by the province's own team is the same in small:
only that province's boxes stop, so it is that province's warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.metadata import Metadata, Root

from edge.update.gate import SERVED

ROOT_WARN_DAYS = 90
"""A ceremony needs custodians in several places: three months to arrange one."""
ROLE_WARN_DAYS = 30
"""What ``AdminRepo.refresh`` re-signs ahead of expiry; a role still this close after a
publish is one whose key was not at hand."""

_ROOT_FILE = re.compile(r"^([1-9][0-9]*)\.root\.json$")


@dataclass(frozen=True)
class Expiry:
    role: str
    version: int
    expires: datetime
    now: datetime
    warn_days: int

    @property
    def days_left(self) -> int:
        return (self.expires - self.now) // timedelta(days=1)

    @property
    def expired(self) -> bool:
        return self.expires <= self.now

    @property
    def warning(self) -> str | None:
        """One line for whoever must act, or None while there is time."""
        when = self.expires.strftime("%Y-%m-%d")
        if self.expired:
            return f"{self.role} v{self.version} expired on {when}: {self._remedy()}"
        if self.expires - self.now > timedelta(days=self.warn_days):
            return None
        return (
            f"{self.role} v{self.version} expires on {when}, in {self.days_left} day(s): "
            f"{self._remedy()}"
        )

    def _remedy(self) -> str:
        if self.role == "root":
            return (
                "the root key custodians must sign a new root before then (edge admin rotate "
                "--role root, then publish), or every box refuses every update"
            )
        if self.role.startswith("province-"):
            return (
                f"{self.role}'s key holders must re-sign it (edge admin publish or usb "
                "with --key-dir); only that province's boxes are affected"
            )
        return "publish with its key at hand (edge admin publish or usb)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "version": self.version,
            "expires": self.expires.isoformat().replace("+00:00", "Z"),
            "days_left": self.days_left,
            "warning": self.warning,
        }


def expiry_of(
    role: str, md: Metadata, now: datetime | None = None, warn_days: int | None = None
) -> Expiry:
    if warn_days is None:
        warn_days = ROOT_WARN_DAYS if role == "root" else ROLE_WARN_DAYS
    return Expiry(
        role,
        md.signed.version,
        md.signed.expires,
        now or datetime.now(UTC),
        warn_days,
    )


def newest_root(metadata_dir: Path) -> Path | None:
    """The highest ``N.root.json`` in a repository's (or central's /updates) metadata."""
    found = [
        (int(match.group(1)), path)
        for path in metadata_dir.glob("*.root.json")
        if (match := _ROOT_FILE.match(path.name))
    ]
    return max(found)[1] if found else None


def root_expiry(metadata_dir: Path, now: datetime | None = None) -> Expiry | None:
    """The newest root's expiry, or None when the folder holds no root."""
    path = newest_root(metadata_dir)
    if path is None:
        return None
    md = Metadata[Root].from_bytes(path.read_bytes())
    return expiry_of("root", md, now)


def served_root_expiry(central_data: Path, now: datetime | None = None) -> Expiry | None:
    """For central's fleet page: the expiry of the root central serves to boxes
    (``<data>/updates/metadata``), None before any update was published.

    ``.warning`` is the line to show (None while more than ``ROOT_WARN_DAYS`` are
    left), ``.expires`` and ``.days_left`` the figures, ``.as_dict()`` all of it."""
    return root_expiry(central_data / SERVED / "metadata", now)
