"""Signed fleet updates: regional IT publishes, boxes verify, apply, install and roll back.

Trust is The Update Framework's (python-tuf): ``repository`` is the admin side that
keeps keys and signs metadata, ``client`` is the box side built on
``tuf.ngclient.Updater``, ``apply`` writes verified configuration, reference data
and clerk changes into the store, ``install`` switches releases and rolls back,
``health`` is the self-test a new release must pass, ``schedule`` is the daemon's
hook. ``gate`` is central's side of publishing, ``publish`` regional IT's HTTP
upload to it. TUF signing keys are TUF's domain and stay inside this package; the
box's own keys and ciphertext stay in ``edge.vault``. docs/updates.md has the whole
story.
"""

from __future__ import annotations

import logging
import re

# python-tuf narrates each signature check at INFO ("No signature for keyid …");
# what matters reaches people as this package's own one-line outcomes.
logging.getLogger("tuf").setLevel(logging.WARNING)
logging.getLogger("securesystemslib").setLevel(logging.WARNING)

USB_FOLDER = "commune-edge-updates"
"""The folder on a USB stick (or served by central) that holds ``metadata/`` and ``targets/``."""

PROVINCE_PREFIX = "province-"
FLEET_ROLE = "fleet"
"""The delegated role for fleet-wide content (``fleet/*``): changing the fleet's
configuration then re-signs this small role, not the targets role that carries every
province delegation, so a box downloads ~0.5 KB of metadata instead of ~13 KB."""
FLEET_PATHS = ["fleet/*"]
RELEASE_PREFIX = "releases/commune-edge-"
UPDATE_HINT = "update.hint"
"""Store meta key: the update timestamp version central last said it serves (sync writes
it from the downlink; the daemon's hook checks for updates when it is newer)."""
SIGNED_AT = "x-edge-signed-at"
"""Extra field in timestamp metadata: when it was signed. Covered by the signature, it
raises the box's time floor (DESIGN.md section 4)."""

VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
CODE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,31}$")


class UpdateError(Exception):
    """An update step that cannot go on; the message is one line a person can act on."""


class Refused(UpdateError):
    """Verification refused something: nothing from this attempt was applied."""


def version_key(version: str) -> tuple[int, ...]:
    """Numeric ordering for release versions ('1.10' after '1.9')."""
    if not VERSION.match(version):
        raise UpdateError(
            f"release version {version!r} is not valid: use digits and dots, e.g. 1.1"
        )
    return tuple(int(part) for part in version.split("."))


def office_prefixes(office: str) -> list[str]:
    """Every prefix of an office code at a '.' or '-' boundary, shortest first.

    'H29.01.05' gives ['H29', 'H29.01', 'H29.01.05']: the scopes whose configuration
    applies to that office, from the province down to the office itself.
    """
    prefixes = []
    for index, char in enumerate(office):
        if char in ".-" and index > 0:
            prefixes.append(office[:index])
    prefixes.append(office)
    return prefixes


def province_paths(code: str) -> list[str]:
    """TUF path patterns for the offices a province may sign for.

    ngclient matches patterns segment by segment (``*`` never crosses '/'), so
    ``o/H29.*/*`` covers ``o/H29.01/config.json`` but not ``o/H290/...``: a
    province code only covers codes that continue it at a '.' or '-' boundary.
    """
    return [f"o/{code}/*", f"o/{code}.*/*", f"o/{code}-*/*"]
