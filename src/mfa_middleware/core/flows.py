"""The steps of 2FA, each written once as a flow of store effects (see `core.effects`).

Flows take every outside fact as an argument (the time, the keyring, parameters) and return a
result dataclass; the web layer turns results into pages and events.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core import authenticators, otp, throttle
from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.effects import Delete, Doc, Effect, Get, Update, get, put
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import (
    Authenticator,
    PendingTotp,
    UserRecord,
    pending_totp_key,
    throttle_key,
    user_key,
)
from mfa_middleware.core.throttle import ThrottleState

PENDING_TOTP_TTL = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one guess."""

    ok: bool
    locked: bool = False
    retry_after: float = 0.0
    attempts_left: int = 0
    replayed: bool = False
    step: int | None = None
    locked_now: bool = False  # this very failure started a lockout
    malformed: bool = False  # not even shaped like a code: no guess was made
    factor: str = ""  # the id of the authenticator that matched
    reason: str = ""  # a refused passkey: why (core.webauthn.REASONS), for the events


MALFORMED = Attempt(False, malformed=True)


def take_attempt(
    user_id: str, now: float, params: ThrottleParams
) -> Generator[Effect, Any, Attempt | None]:
    """Take a slot for one guess in one atomic update: None when the guess may be evaluated,
    else the refusal (locked out, or every slot in use). A guess that gets no slot is never
    evaluated, so parallel requests never evaluate more guesses than the limit."""

    def slot(doc: Doc | None) -> Doc:
        return throttle.take_slot(ThrottleState.from_doc(doc), now, params).to_doc()

    before, after = yield Update(throttle_key(user_id), slot)
    if before != after:
        return None
    state = ThrottleState.from_doc(after)
    return Attempt(False, locked=True, retry_after=state.retry_after(now, params))


def count_attempt(
    user_id: str, now: float, params: ThrottleParams, step: int | None
) -> Generator[Effect, Any, Attempt]:
    """Count an evaluated guess: `step` is the step it was accepted at (>= 0), -1 for a
    replay (a right code spent already), None for no match. Success clears the counters."""
    key = throttle_key(user_id)
    if step is not None and step >= 0:
        yield Delete(key)
        return Attempt(True, step=step)

    def fail(doc: Doc | None) -> Doc:
        return throttle.record_failure(ThrottleState.from_doc(doc), now, params).to_doc()

    previous, failed = yield Update(key, fail)
    state = ThrottleState.from_doc(failed)
    return Attempt(
        False,
        locked=state.locked(now, params),
        retry_after=state.retry_after(now, params),
        attempts_left=state.attempts_left(params),
        replayed=step == -1,
        locked_now=_started_lockout(ThrottleState.from_doc(previous), state, params),
    )


def _started_lockout(before: ThrottleState, after: ThrottleState, params: ThrottleParams) -> bool:
    """Whether this failure itself locked the user (a parallel guess may have done it), so a
    lockout is announced once: a new timed lockout, or the permanent one just reached."""
    reached_ceiling = after.failures >= params.ceiling > before.failures
    return after.lockouts > before.lockouts or reached_ceiling


def throttle_state(user_id: str) -> Generator[Effect, Any, ThrottleState]:
    return ThrottleState.from_doc((yield from get(throttle_key(user_id))))


def verify_totp(
    user_id: str,
    code: str,
    now: float,
    keyring: Keyring,
    params: otp.TotpParams,
    limits: ThrottleParams,
) -> Generator[Effect, Any, Attempt]:
    """Check a code against each of the user's authenticator apps; each time step is accepted
    once per app. Input that cannot be a code (a wrong length, letters) is no guess: answered
    at once, it takes no slot and costs no attempt."""
    if not otp.is_well_formed(code, params.digits):
        return MALFORMED
    refused = yield from take_attempt(user_id, now, limits)
    if refused is not None:
        return refused
    user = UserRecord.from_doc((yield Get(user_key(user_id))))
    step, factor = None, ""
    for app in authenticators.of_kind(user, "totp"):
        if app.secret:
            step = otp.match_step(keyring.decrypt(app.secret), code, now, params)
        if step is not None:
            factor = app.id
            break
    if step is not None:
        step = yield from _spend_step(user_id, factor, step, now, keyring)
    attempt = yield from count_attempt(user_id, now, limits, step)
    return replace(attempt, factor=factor) if attempt.ok else attempt


def _spend_step(
    user_id: str, factor: str, step: int, now: float, keyring: Keyring
) -> Generator[Effect, Any, int]:
    """Record `step` as used by that app: the step itself, or -1 when it (or a later one)
    was used already. Its secret is re-encrypted under the current key on the way."""

    def consume(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        app = authenticators.find(user, factor)
        if app is None or step <= app.last_step:
            return doc
        secret = app.secret
        if secret and keyring.needs_reencryption(secret):
            secret = keyring.encrypt(keyring.decrypt(secret))
        return authenticators.used(user, factor, now, last_step=step, secret=secret).to_doc()

    before, after = yield Update(user_key(user_id), consume)
    return step if before != after else -1


def pending_totp(
    user_id: str, session_id: str, now: float, keyring: Keyring
) -> Generator[Effect, Any, str]:
    """The secret to show on the enrollment page: the same one for the same MFA session
    (a reload shows the QR code the user may already have scanned), a new one otherwise."""
    key = pending_totp_key(user_id)
    pending = PendingTotp.from_doc((yield from get(key)))
    if pending.secret and pending.session_id == session_id:
        return keyring.decrypt(pending.secret)
    secret = otp.new_secret()
    record = PendingTotp(keyring.encrypt(secret), session_id, now)
    yield from put(key, record.to_doc(), ttl=PENDING_TOTP_TTL)
    return secret


@dataclass(frozen=True, slots=True)
class Enrolled:
    attempt: Attempt
    user: UserRecord | None = None


def confirm_totp(
    user_id: str,
    session_id: str,
    code: str,
    now: float,
    keyring: Keyring,
    params: otp.TotpParams,
    limits: ThrottleParams,
    name: str = "",
) -> Generator[Effect, Any, Enrolled]:
    """Add the pending secret as an authenticator app once the user proves they hold it.

    The confirming code's step is recorded as used (it cannot log in again); see
    `authenticators.added` for what else a new factor changes.
    """
    if not otp.is_well_formed(code, params.digits):
        return Enrolled(MALFORMED)
    refused = yield from take_attempt(user_id, now, limits)
    if refused is not None:
        return Enrolled(refused)
    pending = PendingTotp.from_doc((yield Get(pending_totp_key(user_id))))
    step = None
    if pending.secret and pending.session_id == session_id:
        step = otp.match_step(keyring.decrypt(pending.secret), code, now, params)
    user = None
    if step is not None:
        app = Authenticator(
            authenticators.new_id(),
            "totp",
            authenticators.clean_name(name),
            now,
            secret=pending.secret,
            last_step=step,
        )
        user = yield from authenticators.add(user_id, now, app)
        yield Delete(pending_totp_key(user_id))
    return Enrolled((yield from count_attempt(user_id, now, limits, step)), user)
