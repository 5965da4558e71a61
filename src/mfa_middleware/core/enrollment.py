"""Setting up a factor: an authenticator app (a secret confirmed by a code), or a phone or an
address (verified by a sent code before it is saved), which replaces the user's other phone or
address. After the first enrollment the user gets recovery codes, shown once; every enrollment
is announced by email."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mfa_middleware.core import authenticators, enroll_code, notices, oob, recovery
from mfa_middleware.core.challenge import record, send
from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.effects import Delete, Effect, Emit, Get, Key, Put
from mfa_middleware.core.flows import Attempt, Enrolled, confirm_totp, pending_totp
from mfa_middleware.core.i18n import Texts
from mfa_middleware.core.records import Authenticator, Record, UserRecord

PENDING_TTL = 15 * 60.0


@dataclass(frozen=True, slots=True)
class PendingEnrollment(Record):
    """A phone number or address being verified; it becomes the factor only after the code."""

    channel: str = ""
    destination: str = ""
    session_hash: str = ""


def pending_key(user_id: str) -> Key:
    return Key("pending_oob", user_id)


def app_secret(caller: Caller, params: Params) -> Generator[Effect, Any, str]:
    """The secret the enrollment page shows (the same one for the same session)."""
    secret: str = yield from pending_totp(
        caller.user_id, caller.session_id, caller.now, params.keyring
    )
    return secret


def confirm_app(
    caller: Caller, params: Params, code: str, name: str = ""
) -> Generator[Effect, Any, Enrolled]:
    """Add the authenticator app (named `name`) once the user typed one of its codes."""
    result = yield from confirm_totp(
        caller.user_id,
        caller.session_id,
        code,
        caller.now,
        params.keyring,
        params.totp,
        params.limits,
        name,
    )
    yield from record(caller, params, result.attempt, "totp", "enroll")
    if result.user is not None:
        yield Emit("enrolled", {"user": caller.user_id, "method": "totp", "ip": caller.peer})
    return result


def start(
    caller: Caller, params: Params, channel: str, destination: str
) -> Generator[Effect, Any, oob.Sent]:
    """Remember the phone or address being verified and send it a code."""
    pending = PendingEnrollment(channel, destination, caller.session_hash)
    yield Put(pending_key(caller.user_id), pending.to_doc(), PENDING_TTL)
    sent: oob.Sent = yield from send(caller, params, "enroll", [(channel, destination)], first=True)
    return sent


def pending(caller: Caller, params: Params) -> Generator[Effect, Any, PendingEnrollment | None]:
    """The phone or address this session is verifying, while its method is still offered
    (`email_codes` may have been turned off since the code was sent)."""
    doc = yield Get(pending_key(caller.user_id))
    if doc is None:
        return None
    found = PendingEnrollment.from_doc(doc)
    mine = found.session_hash == caller.session_hash
    return found if mine and found.channel in params.code_channels else None


def resend(
    caller: Caller, params: Params, found: PendingEnrollment
) -> Generator[Effect, Any, oob.Sent]:
    sent: oob.Sent = yield from send(caller, params, "enroll", [(found.channel, found.destination)])
    return sent


def confirm(
    caller: Caller, params: Params, found: PendingEnrollment, code: str
) -> Generator[Effect, Any, Enrolled]:
    """Make the verified phone or address the user's factor once the sent code is typed,
    replacing any other (SMS and email are never active together)."""
    attempt, spent = yield from oob.verify_code(
        caller.user_id,
        caller.session_id,
        "enroll",
        code,
        caller.now,
        params.keyring,
        params.oob,
        params.limits,
    )
    yield from record(caller, params, attempt, found.channel, "enroll")
    if not attempt.ok or spent is None:
        return Enrolled(attempt)
    contact = Authenticator(
        authenticators.new_id(), found.channel, "", caller.now, destination=found.destination
    )
    user = yield from authenticators.add(caller.user_id, caller.now, contact)
    yield Delete(pending_key(caller.user_id))
    yield Delete(oob.code_key(caller.user_id, "enroll"))
    masked = oob.mask(found.channel, found.destination)
    yield Emit(
        "enrolled",
        {"user": caller.user_id, "method": found.channel, "to": masked, "ip": caller.peer},
    )
    return Enrolled(attempt, user)


def finish(
    caller: Caller, params: Params, *, first: bool, before: UserRecord, after: UserRecord
) -> Generator[Effect, Any, list[str] | None]:
    """After an enrollment (the user's record `before` and `after` it): no enrollment code is
    needed any more, the user is told, and a first enrollment gets its recovery codes
    (returned once, to show; None otherwise: a change of method keeps the codes the user
    has)."""
    yield Delete(enroll_code.enroll_code_key(caller.user_id))
    for notice in enrolled_notices(first, before, after, params.texts(caller.locale)):
        yield from notices.notify(caller, params, notice)
    left = yield from recovery.codes_left(caller.user_id)
    if left is not None or params.recovery_count == 0:
        return None
    codes: list[str] = yield from recovery.issue_codes(
        caller.user_id, caller.now, params.keyring, params.recovery_count
    )
    return codes


def enrolled_notices(
    first: bool, before: UserRecord, after: UserRecord, texts: Texts
) -> list[notices.Notice]:
    """What an enrollment tells the user: two-step verification is on (a first factor), the
    way codes come changed (a phone or an address replaced the other), or which authenticator
    was added beside the others: each one new since `before`, so an addition that raced this
    one (another tab, or someone else with the session) is named too, never hidden behind
    this one's name."""
    if first:
        return [notices.factor_set(first=True)]
    had = {f.id for f in before.factors()}
    kept = {f.id for f in after.factors()}
    new = [f for f in after.factors() if f.id not in had]
    code = authenticators.code_factor(before)
    if (code is not None and code.id not in kept) or not new:
        return [notices.factor_set(first=False)]
    return [notices.authenticator_added(item.kind, item.name, texts) for item in new]


def unlock(caller: Caller, params: Params, code: str) -> Generator[Effect, Any, Attempt]:
    """The enrollment code an administrator's reset left: a right one lets this session
    enroll (see `core.enroll_code`)."""
    attempt = yield from enroll_code.unlock(
        caller.user_id, code, caller.session_hash, caller.now, params.keyring, params.limits
    )
    yield from record(caller, params, attempt, "enroll_code", "enroll")
    return attempt


def remove(
    caller: Caller, params: Params, authenticator_id: str
) -> Generator[Effect, Any, authenticators.Changed]:
    """Remove one of the caller's authenticators (never the last one: the user turns 2FA off
    instead); every other session verifies again, and the user is told by email."""
    changed = yield from authenticators.change(
        caller.user_id,
        authenticator_id,
        lambda user: authenticators.removed(user, authenticator_id),
        "authenticator_removed",
        "self",
        keep_one=True,
    )
    if changed.ok:
        item = changed.item
        assert item is not None
        notice = notices.authenticator_removed(item.kind, item.name, params.texts(caller.locale))
        yield from notices.notify(caller, params, notice)
    return changed
