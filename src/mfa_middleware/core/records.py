"""Typed records kept in the store, and the keys they live under.

Records are frozen dataclasses; stores only see their dict form. Unknown fields are ignored
and missing ones take their defaults, so records written by an older or newer version load.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from mfa_middleware.core.effects import Doc, Effect, GetMany, Key, update

R = TypeVar("R", bound="Record")


class Record:
    """Mixin: conversion to and from the store's dict form."""

    def to_doc(self) -> Doc:
        """The fields as a dict; lists and dicts are copied, so the document shares nothing
        with the record (as `dataclasses.asdict` does, at a fraction of its cost: this runs
        on every store write)."""
        doc: Doc = {}
        for name in (_FIELDS.get(type(self)) or _fields(type(self)))[0]:
            value = getattr(self, name)
            doc[name] = copy.deepcopy(value) if isinstance(value, list | dict) else value
        return doc

    @classmethod
    def from_doc(cls, doc: Doc | None) -> Self:
        if not doc:
            return cls()
        names = (_FIELDS.get(cls) or _fields(cls))[1]
        if names.issuperset(doc):  # the common case: a document this version wrote
            return cls(**doc)
        return cls(**{k: v for k, v in doc.items() if k in names})


_FIELDS: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _fields(cls: type) -> tuple[tuple[str, ...], frozenset[str]]:
    """The record's field names in declaration order, and as a set for lookups."""
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        known = _FIELDS[cls] = (names, frozenset(names))
    return known


@dataclass(frozen=True, slots=True)
class Authenticator(Record):
    """One way a user proves the second factor: an authenticator app (`totp`), a phone for
    text messages (`sms`), an address for email codes (`email`), or a passkey or security key
    (`webauthn`). A user may hold several apps and keys, and one phone or one address."""

    id: str = ""
    kind: str = ""
    name: str = ""
    created_at: float = 0.0
    last_used_at: float = 0.0
    secret: str | None = None  # totp: Fernet ciphertext, never the plain base32 secret
    last_step: int = -1  # totp: replay guard, a step at or below this is refused
    destination: str | None = None  # sms: the E.164 number; email: the address
    credential: dict[str, Any] | None = None  # webauthn: the credential (core.webauthn)


LEGACY_ID = "legacy"  # the one factor of a record written before users had several


@dataclass(frozen=True, slots=True)
class UserRecord(Record):
    """A user's 2FA state. A user with no record has never enrolled and has no flags.

    `authenticators` holds the user's factors (as dicts, see `Authenticator`). Records written
    before users could have several held one factor in `method`, `totp_secret`,
    `last_totp_step`, `phone` and `email`: those are read as one authenticator (`factors`)
    and cleared the first time the record is written again, so no migration step is needed.
    """

    authenticators: list[dict[str, Any]] = field(default_factory=list)
    default_authenticator: str = ""  # the id of the one the challenge opens on
    webauthn_handle: str = ""  # random per user, the WebAuthn user handle (never the user id)
    method: str | None = None  # legacy: the one factor's kind
    totp_secret: str | None = None  # legacy
    last_totp_step: int = -1  # legacy
    phone: str | None = None  # legacy
    email: str | None = None  # legacy
    enroll_epoch: int = 0  # the global enrollment epoch this enrollment belongs to
    enrolled_at: float = 0.0
    epoch: int = 0  # bumped to end every session of this user (force-logout, reset)
    device_epoch: int = 0  # bumped to stop every trusted device of this user skipping 2FA
    exempt: bool = False  # API calls (a token principal) pass without a second factor
    exempt_browser: bool = False  # ... and so do this user's browser logins (explicitly asked)
    required: bool = False
    locale: str = ""  # the language of the user's last page: what notices from elsewhere use

    def factors(self) -> list[Authenticator]:
        """The user's authenticators, the old single factor included."""
        if self.authenticators:
            return [Authenticator.from_doc(doc) for doc in self.authenticators]
        if self.method is None:
            return []
        legacy = Authenticator(
            LEGACY_ID,
            self.method,
            "",
            self.enrolled_at,
            secret=self.totp_secret,
            last_step=self.last_totp_step,
            destination=self.phone if self.method == "sms" else self.email,
        )
        return [legacy]

    @property
    def has_factors(self) -> bool:
        return bool(self.authenticators) or self.method is not None

    def exempt_for(self, api: bool) -> bool:
        """Exempt for this kind of caller: an exemption covers API authentication only, unless
        an operator exempted browser logins as well (EX-04: an exempt service account's
        password must not open an interactive session without a second factor)."""
        return self.exempt and (api or self.exempt_browser)

    def enrolled_in(self, enroll_epoch: int) -> bool:
        """Enrolled, and not from before 2FA was last switched off and on again."""
        return self.has_factors and self.enroll_epoch == enroll_epoch


@dataclass(frozen=True, slots=True)
class RuntimeSettings(Record):
    """Values ops change without a redeploy; None means "use the configured default"."""

    mode: str | None = None
    session_lifetime: float | None = None
    idle_timeout: float | None = None
    global_epoch: int = 0  # bumped by "clear all sessions"
    enroll_epoch: int = 0  # bumped when 2FA is switched off and on again
    device_epoch: int = 0  # bumped to stop every trusted device of every user skipping 2FA


@dataclass(frozen=True, slots=True)
class PendingTotp(Record):
    """A TOTP secret shown on the enrollment page and not yet confirmed with a code."""

    secret: str = ""  # Fernet ciphertext
    session_id: str = ""
    created_at: float = 0.0


SETTINGS_KEY = Key("settings", "_", "global")


def user_key(user_id: str) -> Key:
    return Key("user", user_id)


def pending_totp_key(user_id: str) -> Key:
    return Key("pending_totp", user_id)


def throttle_key(user_id: str) -> Key:
    return Key("throttle", user_id)


def session_end_key(user_id: str, session_tag: str) -> Key:
    """Marks one MFA session as signed out (kept until the session would have expired)."""
    return Key("session_end", user_id, session_tag)


@dataclass(frozen=True, slots=True)
class HotState:
    """What the gate needs on every request, read in one store round trip."""

    settings: RuntimeSettings
    user: UserRecord
    session_ended: bool = False  # this MFA session was signed out (logout)


def remember_locale(user_id: str, locale: str) -> Generator[Effect, Any, None]:
    """Keep the language of the user's page on their record, for what is sent to them
    without a request of theirs (an administrator's reset from the CLI). The caller writes
    only when it changed, so a page view costs no write."""

    def keep(doc: Doc | None) -> Doc:
        return {**(doc or {}), "locale": locale}

    yield from update(user_key(user_id), keep)


def load_hot_state(
    user_id: str, session_tags: Sequence[str] | None = None
) -> Generator[Effect, Any, HotState]:
    """Settings and the user's record, and whether the MFA session named by `session_tags`
    (its names under each key: one unless a key is being rotated) was signed out: one read,
    from the store's coherent cache when it has one."""
    keys = [SETTINGS_KEY, Key("user", user_id)]
    for tag in session_tags or ():
        keys.append(session_end_key(user_id, tag))
    docs: list[Doc | None] = yield GetMany(tuple(keys), True)
    ended = docs[2:].count(None) < len(docs) - 2
    return HotState(RuntimeSettings.from_doc(docs[0]), UserRecord.from_doc(docs[1]), ended)
