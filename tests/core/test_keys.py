"""`Keyring`: derived keys per purpose, Fernet encryption with rotation, constant-time MACs."""

from __future__ import annotations

import hmac

import pytest
from cryptography.fernet import Fernet

from mfa_middleware.core import keys
from mfa_middleware.core.keys import Keyring

OLD = "old-key-" + "o1Xq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs"
NEW = "new-key-" + "n7Gh2Jk9Pq4Rs6Tu1Vw3Xy5Za8Bc0De"
OTHER = "other-key-" + "x0Yz1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr"


def test_requires_a_key() -> None:
    with pytest.raises(ValueError, match="secret key"):
        Keyring([])


def test_secrets_are_bytes_oldest_first() -> None:
    ring = Keyring([OLD, NEW.encode()])
    assert ring.secrets == [OLD.encode(), NEW.encode()]


def test_derived_keys_are_32_bytes_newest_first_and_per_purpose() -> None:
    ring = Keyring([OLD, NEW])
    a = ring.derive("purpose.a")
    b = ring.derive("purpose.b")
    assert len(a) == 2
    assert all(len(k) == 32 for k in a + b)
    assert a[0] != b[0]
    assert a[0] == Keyring([NEW]).derive("purpose.a")[0]
    assert a[1] == Keyring([OLD]).derive("purpose.a")[0]
    assert OLD.encode() not in a
    assert NEW.encode() not in a


def test_encrypt_decrypt_round_trip() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt("JBSWY3DPEHPK3PXP")
    assert token != "JBSWY3DPEHPK3PXP"
    assert "JBSWY3DPEHPK3PXP" not in token
    assert ring.decrypt(token) == "JBSWY3DPEHPK3PXP"
    # Fernet: random IV, so the same plaintext never gives the same ciphertext.
    assert ring.encrypt("JBSWY3DPEHPK3PXP") != token


def test_ciphertext_is_fernet_under_a_derived_key_not_the_raw_secret() -> None:
    import base64

    ring = Keyring([NEW])
    token = ring.encrypt("hello")
    derived = Fernet(base64.urlsafe_b64encode(ring.derive("mfa.encryption.v1")[0]))
    assert derived.decrypt(token.encode()) == b"hello"


def test_rotation_old_ciphertext_opens_with_old_and_new() -> None:
    old_ring = Keyring([OLD])
    rotated = Keyring([OLD, NEW])
    token = old_ring.encrypt("secret-value")
    assert rotated.decrypt(token) == "secret-value"
    assert rotated.needs_reencryption(token) is True
    fresh = rotated.encrypt(rotated.decrypt(token))
    assert rotated.needs_reencryption(fresh) is False
    assert rotated.decrypt(fresh) == "secret-value"
    # The re-encrypted value no longer needs the old key.
    assert Keyring([NEW]).decrypt(fresh) == "secret-value"
    with pytest.raises(ValueError, match="does not open"):
        old_ring.decrypt(fresh)


def test_needs_reencryption_false_for_newest_key() -> None:
    ring = Keyring([OLD, NEW])
    assert ring.needs_reencryption(ring.encrypt("x")) is False
    assert Keyring([NEW]).needs_reencryption(ring.encrypt("x")) is False


def test_wrong_key_raises_value_error() -> None:
    token = Keyring([OLD]).encrypt("secret-value")
    with pytest.raises(ValueError, match="does not open"):
        Keyring([OTHER]).decrypt(token)
    with pytest.raises(ValueError, match="does not open"):
        Keyring([NEW]).decrypt(token)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "gAAAAA", "gAAAAAB" + "A" * 100])
def test_garbage_ciphertext_raises_value_error(garbage: str) -> None:
    with pytest.raises(ValueError, match="does not open"):
        Keyring([NEW]).decrypt(garbage)


def test_tampered_ciphertext_raises_value_error() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt("secret-value")
    i = len(token) // 2
    flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    with pytest.raises(ValueError, match="does not open"):
        ring.decrypt(flipped)


def test_mac_round_trip_and_binding() -> None:
    ring = Keyring([NEW])
    tag = ring.mac("purpose.a", "message")
    assert tag == ring.mac("purpose.a", "message")
    assert ring.verify_mac("purpose.a", "message", tag) is True
    assert ring.verify_mac("purpose.a", "other message", tag) is False
    assert ring.verify_mac("purpose.b", "message", tag) is False
    assert Keyring([OTHER]).verify_mac("purpose.a", "message", tag) is False
    assert "=" not in tag
    assert "+" not in tag
    assert "/" not in tag


def test_mac_rotation() -> None:
    old_tag = Keyring([OLD]).mac("p", "m")
    rotated = Keyring([OLD, NEW])
    assert rotated.verify_mac("p", "m", old_tag) is True
    new_tag = rotated.mac("p", "m")
    assert new_tag != old_tag
    assert new_tag == Keyring([NEW]).mac("p", "m")
    assert Keyring([OLD]).verify_mac("p", "m", new_tag) is False


@pytest.mark.parametrize("tag", ["", "x" * 129, "x" * 1_000_000])
@pytest.mark.checklist("TOTP-10")
def test_verify_mac_refuses_empty_and_overlong_tags(tag: str) -> None:
    ring = Keyring([NEW])
    assert ring.verify_mac("p", "m", tag) is False


def test_verify_mac_refuses_a_valid_tag_with_junk_appended_or_truncated() -> None:
    ring = Keyring([NEW])
    tag = ring.mac("p", "m")
    assert ring.verify_mac("p", "m", tag + "A") is False
    assert ring.verify_mac("p", "m", tag[:-1]) is False
    assert ring.verify_mac("p", "m", tag.upper()) is False


@pytest.mark.parametrize("tag", ["", "x" * 129, "x" * 1_000_000])
@pytest.mark.checklist("TOTP-10")
def test_verify_mac_refuses_bad_lengths_before_any_work(
    monkeypatch: pytest.MonkeyPatch, tag: str
) -> None:
    def no_mac(key: bytes, message: str) -> str:
        raise AssertionError("a MAC was computed for a tag of the wrong length")

    monkeypatch.setattr(keys, "_mac", no_mac)
    assert Keyring([NEW]).verify_mac("p", "m", tag) is False


@pytest.mark.checklist("TOTP-10")
def test_verify_mac_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = Keyring([OLD, NEW])
    tag = ring.mac("p", "m")
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    assert ring.verify_mac("p", "m", tag) is True
    assert ring.verify_mac("p", "m", "A" * len(tag)) is False
    assert calls
    assert all(b in (tag.encode(), b"A" * len(tag)) for _, b in calls)
