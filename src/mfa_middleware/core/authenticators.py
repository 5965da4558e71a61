"""A user's authenticators: adding, removing, renaming and choosing the default one.

The rules are pure functions from one `UserRecord` to the next, so they run inside the store's
atomic `update`; the flows at the end apply them. A record of the old single-factor shape is
read as one authenticator and written in the new shape by whichever change comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core import tokens
from mfa_middleware.core.effects import Doc, Effect, Emit, Get, Update
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    Authenticator,
    RuntimeSettings,
    UserRecord,
    user_key,
)

CODE_KINDS = ("sms", "email")  # a code sent per sign-in; a user has one of them at most
KINDS = ("webauthn", "totp", "sms", "email")  # the order the challenge offers them in
MAX_NAME = 40
MAX_AUTHENTICATORS = 20


def new_id() -> str:
    """A short id an operator can type: 48 bits, unique within one user's list."""
    return tokens.new_id(6)


def clean_name(name: str) -> str:
    """A name as the user typed it, control characters as spaces, at most 40 characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in name)
    return " ".join(printable.split())[:MAX_NAME]


def kinds(user: UserRecord) -> list[str]:
    """The kinds of the user's authenticators, the default one's first."""
    factors = user.factors()
    default = find(user, default_id(user))
    present = {f.kind for f in factors}
    ordered = [k for k in KINDS if k in present]
    if default is not None:
        ordered.remove(default.kind)
        ordered.insert(0, default.kind)
    return ordered


def default_id(user: UserRecord) -> str:
    """The default authenticator's id: the one chosen, else the first."""
    factors = user.factors()
    if any(f.id == user.default_authenticator for f in factors):
        return user.default_authenticator
    return factors[0].id if factors else ""


def find(user: UserRecord, authenticator_id: str) -> Authenticator | None:
    return next((f for f in user.factors() if f.id == authenticator_id), None)


def of_kind(user: UserRecord, kind: str) -> list[Authenticator]:
    return [f for f in user.factors() if f.kind == kind]


def counted(user: UserRecord) -> list[Authenticator]:
    """The authenticators that stand on their own: every one but approvers (an approver is a
    trusted browser answering for the user, and trust comes from one of these)."""
    return [f for f in user.factors() if f.kind != "approver"]


def code_factor(user: UserRecord) -> Authenticator | None:
    """The user's phone or address for codes, if any."""
    return next((f for f in user.factors() if f.kind in CODE_KINDS), None)


def written(user: UserRecord, factors: list[Authenticator], default: str) -> UserRecord:
    """`user` holding `factors` in the current shape (the old single-factor fields cleared)."""
    if not any(f.id == default for f in factors):
        default = factors[0].id if factors else ""
    return replace(
        user,
        authenticators=[f.to_doc() for f in factors],
        default_authenticator=default,
        method=None,
        totp_secret=None,
        last_totp_step=-1,
        phone=None,
        email=None,
    )


def added(
    user: UserRecord, settings: RuntimeSettings, now: float, item: Authenticator
) -> UserRecord:
    """`item` added to the user's authenticators. A phone or an address replaces the one the
    user had (SMS and email are never active together); a first authenticator after 2FA was
    switched off and on again starts a new list. Every other session of the user must verify
    again, and every trusted browser too: a new factor may be the answer to a stolen one."""
    current = user.enrolled_in(settings.enroll_epoch)
    factors = user.factors() if current else []
    if item.kind in CODE_KINDS:
        factors = [f for f in factors if f.kind not in CODE_KINDS]
    previous = default_id(user) if current else ""
    keep_default = any(f.id == previous for f in factors)
    return replace(
        written(user, [*factors, item], previous if keep_default else item.id),
        enroll_epoch=settings.enroll_epoch,
        enrolled_at=user.enrolled_at if factors else now,
        epoch=user.epoch + 1,
        device_epoch=user.device_epoch + 1,
    )


def removed(user: UserRecord, authenticator_id: str) -> UserRecord:
    """Without that authenticator; other sessions and trusted browsers verify again (it may
    have been lost or stolen). The caller refuses removing the last one."""
    factors = [f for f in user.factors() if f.id != authenticator_id]
    return replace(
        written(user, factors, default_id(user)),
        epoch=user.epoch + 1,
        device_epoch=user.device_epoch + 1,
    )


def renamed(user: UserRecord, authenticator_id: str, name: str) -> UserRecord:
    factors = [
        replace(f, name=clean_name(name)) if f.id == authenticator_id else f for f in user.factors()
    ]
    return written(user, factors, default_id(user))


def made_default(user: UserRecord, authenticator_id: str) -> UserRecord:
    """The challenge opens on that one (an approver is offered beside the default, never as
    it: the record is unchanged)."""
    item = find(user, authenticator_id)
    if item is None or item.kind == "approver":
        return user
    return written(user, user.factors(), authenticator_id)


def used(user: UserRecord, authenticator_id: str, now: float, **changes: Any) -> UserRecord:
    """The authenticator was just used (`changes`: its new replay guard or sign count)."""
    factors = [
        replace(f, last_used_at=now, **changes) if f.id == authenticator_id else f
        for f in user.factors()
    ]
    return written(user, factors, default_id(user))


# -- flows ------------------------------------------------------------------------------------


def add(user_id: str, now: float, item: Authenticator) -> Generator[Effect, Any, UserRecord]:
    """Add `item` (see `added`) and return the new record."""
    settings = RuntimeSettings.from_doc((yield Get(SETTINGS_KEY)))

    def change(doc: Doc | None) -> Doc:
        return added(UserRecord.from_doc(doc), settings, now, item).to_doc()

    _, after = yield Update(user_key(user_id), change)
    return UserRecord.from_doc(after)


def last_one(user: UserRecord, authenticator_id: str) -> bool:
    """Removing that one would leave no authenticator that stands on its own (`counted`)."""
    return not [f for f in counted(user) if f.id != authenticator_id]


@dataclass(frozen=True, slots=True)
class Changed:
    """The outcome of a change to one authenticator: done, or why not."""

    ok: bool
    user: UserRecord
    reason: str = ""  # "not_found", "last_one"
    item: Authenticator | None = None  # the authenticator as it was before the change


def change(
    user_id: str,
    authenticator_id: str,
    how: Callable[[UserRecord], UserRecord],
    event: str,
    actor: str,
    *,
    keep_one: bool = False,
) -> Generator[Effect, Any, Changed]:
    """Apply `how` to the user's record when it holds that authenticator (and, with
    `keep_one`, another one besides); the event names the kind, never a secret."""

    def apply(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        if find(user, authenticator_id) is None or (keep_one and last_one(user, authenticator_id)):
            return doc
        return how(user).to_doc()

    before, after = yield Update(user_key(user_id), apply)
    user, seen = UserRecord.from_doc(after), UserRecord.from_doc(before)
    item = find(seen, authenticator_id)
    if item is None:
        return Changed(False, user, "not_found")
    if keep_one and last_one(seen, authenticator_id):
        return Changed(False, user, "last_one")
    yield Emit(event, {"user": user_id, "kind": item.kind, "actor": actor})
    return Changed(True, user, item=item)
