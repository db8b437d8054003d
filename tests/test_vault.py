"""The vault: what the daemon can and cannot do with the keys it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.vault import (
    Keyring,
    Sealer,
    VaultError,
    WrongPassword,
    field_ad,
    new_recipient_keypair,
    page_ad,
    unwrap_with,
)

from .conftest import PASSWORD


def test_sealer_cannot_open_what_it_sealed_but_the_clerk_can(state: Path) -> None:
    ring = Keyring.load(state)
    sealer = ring.sealer()
    key = sealer.new_key()
    sealed = sealer.seal(key, b"page bytes", page_ad("d1", "p1"))
    assert b"page bytes" not in sealed
    session = ring.unlock("lan", PASSWORD)
    opened = session.open_key(key.key_id, key.wrapped_office)
    assert session.open(opened, sealed, page_ad("d1", "p1")) == b"page bytes"


def test_ciphertext_moved_to_another_page_is_refused(state: Path) -> None:
    ring = Keyring.load(state)
    key = ring.sealer().new_key()
    sealed = Sealer.seal(key, b"page bytes", page_ad("d1", "p1"))
    session = ring.unlock("lan", PASSWORD)
    with pytest.raises(VaultError, match="integrity"):
        session.open(key, sealed, page_ad("d1", "p2"))
    with pytest.raises(VaultError, match="integrity"):
        session.open(key, sealed, field_ad("d1", "p1"))


def test_wrong_password_and_unknown_clerk_say_the_same(state: Path) -> None:
    ring = Keyring.load(state)
    with pytest.raises(WrongPassword):
        ring.unlock("lan", "not-the-password")
    with pytest.raises(WrongPassword):
        ring.unlock("nobody", PASSWORD)


def test_wrapped_key_is_bound_to_its_id(state: Path) -> None:
    ring = Keyring.load(state)
    a = ring.sealer().new_key()
    session = ring.unlock("lan", PASSWORD)
    with pytest.raises(VaultError):
        session.open_key("another-id", a.wrapped_office)


def test_central_and_recovery_can_open(tmp_path: Path) -> None:
    central_private, central_public = new_recipient_keypair()
    recovery_private, recovery_public = new_recipient_keypair()
    ring = Keyring.create(
        tmp_path,
        "H29",
        "lan",
        PASSWORD,
        central_public=central_public,
        recovery_public=recovery_public,
        scrypt_n=2**12,
    )
    key = ring.sealer().new_key()
    assert key.wrapped_central is not None
    assert unwrap_with(central_private, key.key_id, key.wrapped_central) == key.secret
    session = ring.unlock_recovery(recovery_private)
    assert session.open_key(key.key_id, key.wrapped_office).secret == key.secret


def test_short_password_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="at least 8"):
        Keyring.create(tmp_path, "H29", "lan", "short")
    assert not (tmp_path / "keyring.json").exists()


def test_blind_terms_depend_on_the_office_key(tmp_path: Path) -> None:
    terms = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        ring = Keyring.create(tmp_path / name, "H29", "lan", PASSWORD, scrypt_n=2**12)
        terms.append(ring.unlock("lan", PASSWORD).blind_terms(["nguyen"], "name"))
    assert terms[0] != terms[1]
    assert "nguyen" not in terms[0][0]


def test_locked_session_refuses(state: Path) -> None:
    session = Keyring.load(state).unlock("lan", PASSWORD)
    session.close()
    with pytest.raises(VaultError, match="locked"):
        session.blind_terms(["x"], "name")
    with pytest.raises(VaultError, match="locked"):
        session.open_key("k", b"x")


def test_keyring_file_is_private(state: Path) -> None:
    assert (state / "keyring.json").stat().st_mode & 0o077 == 0
