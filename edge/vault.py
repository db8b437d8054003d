"""Keys, envelope encryption, the blind index and clerk unlock.

This is the only module that touches key material or ciphertext. Everything
else handles opaque ``bytes`` it gets from here.

The shape follows DESIGN.md section 5:

* one random data key per dossier (per capture session of a dossier, see
  ``Sealer.new_key``), used with ChaCha20-Poly1305 and associated data that binds
  each ciphertext to what it is (dossier, page, field);
* each data key is wrapped with HPKE (RFC 9180, X25519 / HKDF-SHA256 /
  ChaCha20-Poly1305) to the office public key and, once it is known, to
  central's recipient key;
* the office private key is kept only wrapped: under each clerk's password
  (scrypt) and, when provisioned, under regional IT's recovery key;
* the capture daemon holds a ``Sealer`` (public keys only): it can seal but
  never open. Opening needs an ``OfficeSession`` from ``Keyring.unlock``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEYRING_FILE = "keyring.json"
_FORMAT = b"\x01"
_NONCE = 12
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_SCRYPT_N = 2**15
_MIN_PASSWORD = 8


class VaultError(Exception):
    """A key could not be used; the message says what the person can do."""


def json_object(value: object) -> dict[str, Any]:
    """A sealed record's JSON, which is always an object: anything else is damage."""
    if not isinstance(value, dict):
        raise VaultError("a sealed record does not hold what it should: run 'edge doctor'")
    return value


class WrongPassword(VaultError):
    """The password did not open the clerk's wrapped office key."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _raw_public(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def _aead_seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return _FORMAT + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)


def _aead_open(key: bytes, sealed: bytes, ad: bytes) -> bytes:
    if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _FORMAT:
        raise VaultError("sealed data is damaged or of an unknown format")
    nonce = sealed[1 : 1 + _NONCE]
    return ChaCha20Poly1305(key).decrypt(nonce, sealed[1 + _NONCE :], ad)


def _kek(password: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(password.encode("utf-8"))


def wrap_info(key_id: str) -> bytes:
    """HPKE info binding a wrapped data key to its id, so wraps cannot be swapped."""
    return b"commune-edge/data-key/v1|" + key_id.encode("ascii")


def wrap_to(public_key: bytes, key_id: str, secret: bytes) -> bytes:
    """Wrap ``secret`` with HPKE to a raw X25519 public key."""
    return _SUITE.encrypt(secret, X25519PublicKey.from_public_bytes(public_key), wrap_info(key_id))


def unwrap_with(private_key: bytes, key_id: str, wrapped: bytes) -> bytes:
    """Open an HPKE wrap with a raw X25519 private key (central uses this too)."""
    try:
        return _SUITE.decrypt(
            wrapped, X25519PrivateKey.from_private_bytes(private_key), wrap_info(key_id)
        )
    except (InvalidTag, ValueError) as exc:
        raise VaultError("a data key could not be unwrapped with this key") from exc


def new_recipient_keypair() -> tuple[bytes, bytes]:
    """A raw (private, public) X25519 pair, for central or a recovery key."""
    private = X25519PrivateKey.generate()
    return _raw_private(private), _raw_public(private.public_key())


def new_signing_keypair() -> tuple[bytes, bytes]:
    """A raw (private, public) Ed25519 pair: central's receipt key, or a test device's."""
    private = Ed25519PrivateKey.generate()
    return _raw_private(private), _raw_public(private.public_key())


def sign_with(private_key: bytes, message: bytes) -> bytes:
    """Ed25519-sign with a raw private key (central signs receipts and downlink this way)."""
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


def signing_public(private_key: bytes) -> bytes:
    """The raw public half of a raw Ed25519 private key."""
    return _raw_public(Ed25519PrivateKey.from_private_bytes(private_key).public_key())


def recipient_public(private_key: bytes) -> bytes:
    """The raw public half of a raw X25519 private key."""
    return _raw_public(X25519PrivateKey.from_private_bytes(private_key).public_key())


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature; any malformed key or signature is simply 'no'."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class DataKey:
    """A per-dossier data key. ``secret`` lives in memory only."""

    key_id: str
    secret: bytes = field(repr=False)
    wrapped_office: bytes
    wrapped_central: bytes | None


def page_ad(dossier_id: str, page_id: str) -> bytes:
    return f"page|{dossier_id}|{page_id}".encode()


def field_ad(dossier_id: str, name: str) -> bytes:
    return f"field|{dossier_id}|{name}".encode()


def event_ad(key_id: str, dossier_id: str | None, event_type: str) -> bytes:
    return f"event|{key_id}|{dossier_id or '-'}|{event_type}".encode()


def chunk_ad(scope: str, index: int) -> bytes:
    return f"chunk|{scope}|{index}".encode()


class Sealer:
    """Seals with public keys only: what the capture daemon holds."""

    def __init__(self, office_public: bytes, central_public: bytes | None = None) -> None:
        self.office_public = office_public
        self.central_public = central_public

    def new_key(self) -> DataKey:
        key_id = secrets.token_hex(16)
        secret = ChaCha20Poly1305.generate_key()
        central = wrap_to(self.central_public, key_id, secret) if self.central_public else None
        return DataKey(key_id, secret, wrap_to(self.office_public, key_id, secret), central)

    @staticmethod
    def seal(key: DataKey, plaintext: bytes, ad: bytes) -> bytes:
        return _aead_seal(key.secret, plaintext, ad)

    def seal_json(self, key: DataKey, value: object, ad: bytes) -> bytes:
        return self.seal(key, json.dumps(value, ensure_ascii=False).encode("utf-8"), ad)


class OfficeSession:
    """An unlocked office: opens data keys and computes blind-index terms.

    Held only in memory while a clerk is signed in; ``close`` drops the keys.
    """

    def __init__(self, clerk: str, office_private: bytes, index_key: bytes, sealer: Sealer) -> None:
        self.clerk = clerk
        self._office_private: bytes | None = office_private
        self._index_key: bytes | None = index_key
        self.sealer = sealer
        self._on_close: Callable[[], None] | None = None

    def on_close(self, action: Callable[[], None]) -> None:
        """Run ``action`` once when the session closes: a command's sign-out is audited then."""
        self._on_close = action

    def _private(self) -> bytes:
        if self._office_private is None:
            raise VaultError("the office is locked: sign in again")
        return self._office_private

    def open_key(self, key_id: str, wrapped_office: bytes) -> DataKey:
        secret = unwrap_with(self._private(), key_id, wrapped_office)
        return DataKey(key_id, secret, wrapped_office, None)

    @staticmethod
    def open(key: DataKey, sealed: bytes, ad: bytes) -> bytes:
        try:
            return _aead_open(key.secret, sealed, ad)
        except InvalidTag as exc:
            raise VaultError(
                "sealed data failed its integrity check (tampered or misplaced)"
            ) from exc

    def open_json(self, key: DataKey, sealed: bytes, ad: bytes) -> object:
        return json.loads(self.open(key, sealed, ad))

    def rewrap_for(self, recipient_public: bytes, key_id: str, wrapped_office: bytes) -> bytes:
        """Wrap an existing data key to another recipient (central, once enrolled)."""
        return wrap_to(
            recipient_public, key_id, unwrap_with(self._private(), key_id, wrapped_office)
        )

    def blind_terms(self, tokens: Iterable[str], scope: str) -> list[str]:
        """Keyed HMAC of normalised tokens: searchable without storing the words."""
        if self._index_key is None:
            raise VaultError("the office is locked: sign in again")
        key = self._index_key
        return [
            hmac.new(key, f"{scope}|{t}".encode(), hashlib.sha256).hexdigest()[:32] for t in tokens
        ]

    def close(self) -> None:
        self._office_private = None
        self._index_key = None
        action, self._on_close = self._on_close, None
        if action is not None:
            action()


class RecipientSession:
    """Central's side of the envelope: opens data keys wrapped to its recipient key.

    Only ``edge central export`` builds one, from the private key file regional IT
    keeps offline; the receiver processes never hold it.
    """

    def __init__(self, recipient_private: bytes) -> None:
        if len(recipient_private) != 32:
            raise VaultError("central's recipient private key must be 32 raw bytes")
        self._private = recipient_private

    def open_key(self, key_id: str, wrapped_central: bytes) -> DataKey:
        secret = unwrap_with(self._private, key_id, wrapped_central)
        return DataKey(key_id, secret, b"", wrapped_central)

    open = staticmethod(OfficeSession.open)

    def open_json(self, key: DataKey, sealed: bytes, ad: bytes) -> object:
        return json.loads(self.open(key, sealed, ad))


class Keyring:
    """The box's key file: public keys, wrapped private keys, the device key.

    Stored as ``keyring.json`` in the state folder, replaced atomically. It holds
    nothing that opens dossier data without a clerk password or the recovery key.
    The device key is in clear: the daemon must sign sync requests unattended; a
    thief who takes it can impersonate the box until central revokes it, but can
    read nothing (see docs/threat-model.md).
    """

    def __init__(self, path: Path, data: dict) -> None:
        self.path = path
        self._data = data

    @classmethod
    def load(cls, state: Path) -> Keyring:
        path = state / KEYRING_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise VaultError(f"no keyring at {path}: run 'edge init' first") from exc
        except (OSError, ValueError) as exc:
            raise VaultError(f"the keyring {path} is unreadable: restore it from backup") from exc
        return cls(path, data)

    @classmethod
    def create(
        cls,
        state: Path,
        office: str,
        clerk: str,
        password: str,
        *,
        recovery_public: bytes | None = None,
        central_public: bytes | None = None,
        scrypt_n: int = _SCRYPT_N,
        temporary: bool = False,
    ) -> Keyring:
        path = state / KEYRING_FILE
        if path.exists():
            raise VaultError(f"{path} exists already: this box is provisioned")
        office_key = X25519PrivateKey.generate()
        office_private = _raw_private(office_key)
        office_public = _raw_public(office_key.public_key())
        device = Ed25519PrivateKey.generate()
        index_key = secrets.token_bytes(32)
        data: dict = {
            "version": 1,
            "office": office,
            "office_public": _b64(office_public),
            "device_private": _b64(_raw_private(device)),
            "device_public": _b64(_raw_public(device.public_key())),
            "index_key": _b64(wrap_to(office_public, "index-key", index_key)),
            "central_public": _b64(central_public) if central_public else None,
            "recovery": (
                _b64(wrap_to(recovery_public, "office-key", office_private))
                if recovery_public
                else None
            ),
            "clerks": {},
        }
        ring = cls(path, data)
        ring._add_clerk(clerk, password, office_private, scrypt_n)
        if temporary:
            ring._data["clerks"][clerk]["must_change"] = True
        ring.save()
        return ring

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @property
    def office(self) -> str:
        return self._data["office"]

    @property
    def office_public(self) -> bytes:
        return _unb64(self._data["office_public"])

    @property
    def central_public(self) -> bytes | None:
        value = self._data.get("central_public")
        return _unb64(value) if value else None

    def set_central_public(self, key: bytes) -> None:
        self._data["central_public"] = _b64(key)
        self.save()

    @property
    def central_receipt_public(self) -> bytes | None:
        """Central's Ed25519 key for receipts and downlink, learned at enrollment."""
        value = self._data.get("central_receipt_public")
        return _unb64(value) if value else None

    def set_central(self, recipient_public: bytes, receipt_public: bytes) -> None:
        """Record central's keys from enrollment; refuse a different recipient key.

        A box provisioned with ``--central-key`` already wraps every data key to
        that key: enrolling with a central holding another key would leave those
        wraps unreadable, so it is a mistake to stop, not to paper over.
        """
        known = self.central_public
        if known is not None and known != recipient_public:
            raise VaultError(
                "this box was provisioned for another central (its recipient key differs): "
                "check the central URL, or re-provision the box"
            )
        self._data["central_public"] = _b64(recipient_public)
        self._data["central_receipt_public"] = _b64(receipt_public)
        self.save()

    @property
    def device_public(self) -> bytes:
        return _unb64(self._data["device_public"])

    def sign(self, message: bytes) -> bytes:
        """Sign with the device key (the box's identity toward central)."""
        device = Ed25519PrivateKey.from_private_bytes(_unb64(self._data["device_private"]))
        return device.sign(message)

    def sealer(self) -> Sealer:
        return Sealer(self.office_public, self.central_public)

    def clerks(self) -> list[str]:
        return sorted(self._data["clerks"])

    def has_clerk(self, name: str) -> bool:
        return name in self._data["clerks"]

    def _add_clerk(self, name: str, password: str, office_private: bytes, scrypt_n: int) -> None:
        if len(password) < _MIN_PASSWORD:
            raise VaultError(f"the password must have at least {_MIN_PASSWORD} characters")
        salt = os.urandom(16)
        kek = _kek(password, salt, scrypt_n)
        self._data["clerks"][name] = {
            "salt": _b64(salt),
            "n": scrypt_n,
            "office_private": _b64(_aead_seal(kek, office_private, f"clerk|{name}".encode())),
        }

    def add_clerk(self, session: OfficeSession, name: str, password: str) -> None:
        """Give another clerk the office key; needs an unlocked office."""
        self._add_clerk(name, password, session._private(), _SCRYPT_N)
        self.save()

    @property
    def office_key_id(self) -> str:
        return office_key_id(self.office_public)

    def enroll_sealed_clerk(
        self, session: OfficeSession, change_id: str, name: str, sealed: bytes
    ) -> None:
        """Give a clerk the office key with the initial password regional IT sealed to this box.

        The password was sealed to the office public key, so only an unlocked office can
        open it: that is why a new clerk becomes usable at the next sign-in of any clerk.
        The clerk must choose a new password at first sign-in.
        """
        office_private = session._private()
        password = unwrap_with(office_private, _clerk_info(change_id, name), sealed)
        self._add_clerk(name, password.decode("utf-8"), office_private, _SCRYPT_N)
        self._data["clerks"][name]["must_change"] = True
        self.save()

    def must_change_password(self, name: str) -> bool:
        """The clerk's password was set by someone else (first boot, a reset): it opens the
        desk only to choose a new one."""
        return bool(self._data["clerks"].get(name, {}).get("must_change"))

    def login_tag(self, name: str) -> str:
        """What the sign-in guard may keep of a user name that is no clerk's.

        Such a name is often a password typed into the wrong field, so it is kept only
        as scrypt (the clerks' own cost) salted with a secret of this box's keyring:
        without the keyring it matches nothing, and with it every guess at it costs as
        much as a guess at a clerk's wrapped key, so it is no shortcut to one. Computing
        it takes as long as checking a real clerk's password, so the time an answer
        takes does not tell which names exist.
        """
        salt = hmac.new(
            _unb64(self._data["device_private"]), b"commune-edge/login-tag/v1", hashlib.sha256
        ).digest()
        return Scrypt(salt=salt, length=16, n=_SCRYPT_N, r=8, p=1).derive(name.encode()).hex()

    def remove_clerk(self, name: str) -> bool:
        """Drop a clerk's wrapped office key: that password opens nothing any more."""
        if self._data["clerks"].pop(name, None) is None:
            return False
        self.save()
        return True

    def unlock(self, clerk: str, password: str) -> OfficeSession:
        entry = self._data["clerks"].get(clerk)
        if entry is None:
            raise WrongPassword("unknown clerk or wrong password")
        kek = _kek(password, _unb64(entry["salt"]), int(entry["n"]))
        try:
            office_private = _aead_open(
                kek, _unb64(entry["office_private"]), f"clerk|{clerk}".encode()
            )
        except InvalidTag as exc:
            raise WrongPassword("unknown clerk or wrong password") from exc
        return self._session(clerk, office_private)

    def unlock_recovery(self, recovery_private: bytes) -> OfficeSession:
        """Regional IT's way in when every clerk password is lost."""
        wrapped = self._data.get("recovery")
        if not wrapped:
            raise VaultError("this box was provisioned without a recovery key")
        office_private = unwrap_with(recovery_private, "office-key", _unb64(wrapped))
        return self._session("recovery", office_private)

    def _session(self, clerk: str, office_private: bytes) -> OfficeSession:
        index_key = unwrap_with(office_private, "index-key", _unb64(self._data["index_key"]))
        return OfficeSession(clerk, office_private, index_key, self.sealer())


def office_key_id(office_public: bytes) -> str:
    """A short name for a box's office key, so regional IT can seal to the right box."""
    return hashlib.sha256(b"commune-edge/office-key|" + office_public).hexdigest()[:16]


def _clerk_info(change_id: str, name: str) -> str:
    return f"clerk-password:{change_id}:{name}"


def seal_clerk_password(office_public: bytes, change_id: str, name: str, password: str) -> bytes:
    """Regional IT's side: a clerk's initial password sealed (HPKE) to one box's office key.

    Bound to the change id and clerk name, so a sealed password cannot be replayed
    under another name or another change.
    """
    if len(password) < _MIN_PASSWORD:
        raise VaultError(f"the password must have at least {_MIN_PASSWORD} characters")
    return wrap_to(office_public, _clerk_info(change_id, name), password.encode("utf-8"))


def seal_chunks(sealer: Sealer, key: DataKey, scope: str, stream, chunk_size: int = 4 << 20):
    """Seal a byte stream in fixed-size chunks, so large files never sit whole in memory."""
    index = 0
    while True:
        chunk = stream.read(chunk_size)
        if not chunk and index > 0:
            return
        yield sealer.seal(key, chunk, chunk_ad(scope, index))
        index += 1
        if not chunk:
            return


def open_chunks(session: OfficeSession, key: DataKey, scope: str, chunks: Iterable[bytes]) -> bytes:
    return b"".join(session.open(key, c, chunk_ad(scope, i)) for i, c in enumerate(chunks))


def ciphertext_id(sealed: bytes) -> str:
    """Content address of a sealed blob: what sync and central name it by."""
    return hashlib.sha256(sealed).hexdigest()
