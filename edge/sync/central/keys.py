"""Central's own keys, kept as files under its data folder.

* the receipt key (Ed25519) signs receipts, downlink items and clock
  statements; every receiver process needs it, so it stays in the data folder
  (mode 0600), shared by the processes like the blob folder;
* the recipient key (X25519) is what every data key is wrapped to. Receivers
  never read its private half: ``edge central serve`` writes it once to
  ``keys/recipient.key`` so regional IT can move it offline, and only
  ``edge central export --key FILE`` uses it.
"""

from __future__ import annotations

import base64
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from edge import vault

KEYS_DIR = "keys"


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read(path: Path) -> bytes:
    try:
        raw = base64.b64decode(path.read_text("ascii").strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise vault.VaultError(f"cannot read a key from {path}: expected one base64 line") from exc
    if len(raw) != 32:
        raise vault.VaultError(f"{path} does not hold a 32-byte key")
    return raw


def read_key_file(path: Path) -> bytes:
    """A raw 32-byte key stored as one base64 line (what ``--key FILE`` takes)."""
    return _read(path)


@dataclass(frozen=True)
class CentralKeys:
    receipt_private: bytes
    receipt_public: bytes
    recipient_public: bytes

    def sign(self, message: bytes) -> bytes:
        return vault.sign_with(self.receipt_private, message)

    @classmethod
    def load_or_create(cls, data: Path) -> CentralKeys:
        """Load the keys, creating them on first use; processes starting together agree."""
        folder = data / KEYS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            receipt = folder / "receipt.key"
            if not receipt.exists():
                private, _public = vault.new_signing_keypair()
                _write_new(receipt, base64.b64encode(private).decode("ascii"))
            recipient_pub = folder / "recipient.pub"
            if not recipient_pub.exists():
                private, public = vault.new_recipient_keypair()
                _write_new(folder / "recipient.key", base64.b64encode(private).decode("ascii"))
                _write_new(recipient_pub, base64.b64encode(public).decode("ascii"))
                (folder / "recipient.pub").chmod(0o644)
        receipt_private = _read(receipt)
        return cls(
            receipt_private=receipt_private,
            receipt_public=vault.signing_public(receipt_private),
            recipient_public=_read(recipient_pub),
        )
