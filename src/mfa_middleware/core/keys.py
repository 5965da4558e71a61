"""One keyring derives every purpose-specific key from the configured secrets.

Keys are ordered oldest first, newest last (the itsdangerous convention): the newest signs and
encrypts, every key still verifies and decrypts, so a key can be rotated in without logging
anyone out and dropped once its tokens have expired.

`cryptography` is imported when a key is first derived or a secret first encrypted, not with
the package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet


class Keyring:
    """Derived keys per purpose, so that a token made for one purpose never verifies for another."""

    def __init__(self, secret_keys: Sequence[str | bytes]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        self._secrets = [k.encode() if isinstance(k, str) else bytes(k) for k in secret_keys]
        self._derived: dict[str, list[bytes]] = {}

    @property
    def secrets(self) -> list[bytes]:
        """Raw secrets, oldest first, for itsdangerous (which derives per salt itself)."""
        return list(self._secrets)

    def derive(self, purpose: str) -> list[bytes]:
        """32-byte keys for `purpose`, newest first."""
        keys = self._derived.get(purpose)
        if keys is None:
            keys = [_hkdf(secret, purpose) for secret in reversed(self._secrets)]
            self._derived[purpose] = keys
        return keys

    def mac(self, purpose: str, message: str) -> str:
        """A URL-safe MAC of `message` with the newest key for `purpose`."""
        return _mac(self.derive(purpose)[0], message)

    def macs(self, purpose: str, message: str, *, length: int | None = None) -> list[str]:
        """The MAC of `message` under every key for `purpose`, newest first (cut to `length`):
        the names a record or a cookie may carry from before the newest key was added."""
        return [_mac(key, message)[:length] for key in self.derive(purpose)]

    def verify_mac(self, purpose: str, message: str, tag: str) -> bool:
        """Constant-time check of `tag` against every key for `purpose`."""
        if not tag or len(tag) > 128:
            return False
        return any(equal(_mac(key, message), tag) for key in self.derive(purpose))

    @cached_property
    def _fernet(self) -> MultiFernet:
        from cryptography.fernet import MultiFernet

        return MultiFernet([_fernet(key) for key in self.derive("mfa.encryption.v1")])

    def encrypt(self, plaintext: str) -> str:
        """Fernet-encrypt with the newest key (authenticated encryption)."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt with any key; raises ValueError when no key opens it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("ciphertext does not open with any configured key") from exc

    def needs_reencryption(self, ciphertext: str) -> bool:
        """True when the newest key did not produce `ciphertext`: re-encrypt it to rotate."""
        from cryptography.fernet import InvalidToken

        newest = _fernet(self.derive("mfa.encryption.v1")[0])
        try:
            newest.decrypt(ciphertext.encode())
        except InvalidToken:
            return True
        return False


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two strings as UTF-8 bytes: `hmac.compare_digest` refuses
    non-ASCII str (TypeError), and a value posted by a client may be anything."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _fernet(key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(key))


def _hkdf(secret: bytes, purpose: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"mfa_middleware", info=purpose.encode()
    ).derive(secret)


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
