"""Signed tokens: one itsdangerous salt per purpose, keys that rotate, verified payloads cached.

A token verifies only for the purpose it was made for (the salt is part of the key), so a
session cookie replayed as a device cookie, or a CSRF token replayed as anything else, fails.
Verifying the same exact string again is a dict lookup: the signature cannot have changed.
itsdangerous is imported when the first codec is made (at startup), not with the package.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.keys import Keyring

T = TypeVar("T")

MAX_TOKEN_LENGTH = 4096
CACHE_LIMIT = 10_000  # per generation of each bounded cache below


def new_id(nbytes: int = 18) -> str:
    """An opaque identifier from the OS CSPRNG (144 bits by default).

    It never starts with "-": operators type device and authenticator ids into `mfa-admin`,
    whose argument parser would read such an id as an option (one id in 64 did)."""
    while (value := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return value


class TokenCodec(Generic[T]):
    """Signs and verifies one kind of payload; a bad token is simply no token (None)."""

    def __init__(
        self,
        keyring: Keyring,
        purpose: str,
        dump: Callable[[T], Any],
        load: Callable[[Any], T],
    ) -> None:
        from itsdangerous import BadData, URLSafeSerializer

        self._serializer = URLSafeSerializer(keyring.secrets, salt=purpose)
        self._invalid: type[Exception] = BadData
        self._dump = dump
        self._load = load
        self._cache: Bounded[str, T] = Bounded(CACHE_LIMIT)

    def encode(self, value: T) -> str:
        token = self._serializer.dumps(self._dump(value))
        return token if isinstance(token, str) else token.decode()

    def decode(self, token: str | None) -> T | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        try:
            value = self._load(self._serializer.loads(token))
        except (self._invalid, ValueError, TypeError, KeyError, IndexError):
            return None
        self._cache[token] = value
        return value


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """The MFA session cookie: opaque ids and times only, no personal data.

    `user_tag` is a keyed hash of the user id, so the cookie binds to one user without saying
    who. Times are whole seconds since the epoch; `verified_at` 0 means "not verified yet".
    """

    session_id: str
    user_tag: str
    login_at: int
    verified_at: int
    active_at: int
    epoch: int
    global_epoch: int
    method: str = ""  # how the second factor was satisfied: "totp", "sms", "device", ...
    login_tag: str = ""  # keyed hash of the app's per-login marker, when the app gives one

    @property
    def verified(self) -> bool:
        return self.verified_at > 0


def _dump_claims(c: SessionClaims) -> list[Any]:
    return [
        c.session_id,
        c.user_tag,
        c.login_at,
        c.verified_at,
        c.active_at,
        c.epoch,
        c.global_epoch,
        c.method,
        c.login_tag,
    ]


def _load_claims(raw: Any) -> SessionClaims:
    sid, tag, login_at, verified_at, active_at, epoch, global_epoch, method, login_tag = raw
    texts_ok = type(sid) is str and type(tag) is str and type(method) is str
    ints_ok = type(login_at) is int and type(verified_at) is int and type(active_at) is int
    if not (texts_ok and type(login_tag) is str and ints_ok):
        raise TypeError("bad session claims")
    if not (type(epoch) is int and type(global_epoch) is int):
        raise TypeError("bad session claims")
    return SessionClaims(
        sid, tag, login_at, verified_at, active_at, epoch, global_epoch, method, login_tag
    )


def session_codec(keyring: Keyring) -> TokenCodec[SessionClaims]:
    return TokenCodec(keyring, "mfa.session.v1", _dump_claims, _load_claims)


class UserTagger:
    """Keyed, cached hashes of ids for cookies that must name a user (or a login) without
    saying which.

    A new tag is made with the newest key; a tag is recognised under every configured key, so
    cookies and records named before a new key was rotated in keep working (`tags`)."""

    def __init__(self, keyring: Keyring, purpose: str = "mfa.user-tag.v1") -> None:
        self._keyring = keyring
        self._purpose = purpose
        self._cache: Bounded[str, tuple[str, ...]] = Bounded(CACHE_LIMIT)

    def __call__(self, user_id: str) -> str:
        """The tag of `user_id` under the newest key."""
        return self.tags(user_id)[0]

    def tags(self, user_id: str) -> tuple[str, ...]:
        """The tags of `user_id` under every key, newest first (one unless a key is being
        rotated)."""
        tags = self._cache.get(user_id)
        if tags is None:
            tags = tuple(self._keyring.macs(self._purpose, user_id, length=22))
            self._cache[user_id] = tags
        return tags


def csrf_token(keyring: Keyring, session_id: str) -> str:
    """A CSRF token bound to one MFA session: useless in any other browser or session."""
    return keyring.mac("mfa.csrf.v1", session_id)


def csrf_valid(keyring: Keyring, session_id: str, token: str) -> bool:
    return keyring.verify_mac("mfa.csrf.v1", session_id, token)
