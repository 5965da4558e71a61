"""The steps of 2FA, each written once as a flow of store effects (see `core.effects`).

Flows take every outside fact as an argument (the time, the keyring, parameters) and return a
result dataclass; the web layer turns results into pages and events.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core import otp, throttle
from mfa_middleware.core.effects import Doc, Effect, delete, get, put, update
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    PendingTotp,
    RuntimeSettings,
    UserRecord,
    pending_totp_key,
    throttle_key,
    user_key,
)
from mfa_middleware.core.throttle import ThrottleParams, ThrottleState

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


MALFORMED = Attempt(False, malformed=True)


def throttled(
    user_id: str,
    now: float,
    params: ThrottleParams,
    check: Callable[[], Generator[Effect, Any, int | None]],
    *,
    well_formed: bool = True,
) -> Generator[Effect, Any, Attempt]:
    """Take a slot, run `check` (the step it accepted, -1 for a replay, None for no match),
    and count the outcome. A guess that gets no slot is never evaluated. Input that cannot be
    a code (`well_formed` false: a wrong length, letters) is no guess: it is answered at once,
    takes no slot and costs no attempt."""
    if not well_formed:
        return MALFORMED
    key = throttle_key(user_id)

    def slot(doc: Doc | None) -> Doc:
        return throttle.take_slot(ThrottleState.from_doc(doc), now, params).to_doc()

    before, after = yield from update(key, slot)
    state = ThrottleState.from_doc(after)
    if before == after:
        return Attempt(False, locked=True, retry_after=state.retry_after(now, params))
    step = yield from check()
    if step is not None and step >= 0:
        yield from delete(key)
        return Attempt(True, step=step)

    def fail(doc: Doc | None) -> Doc:
        return throttle.record_failure(ThrottleState.from_doc(doc), now, params).to_doc()

    previous, failed = yield from update(key, fail)
    state = ThrottleState.from_doc(failed)
    locked = state.locked(now, params)
    return Attempt(
        False,
        locked=locked,
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
    """Check a code against the user's enrolled secret; each time step is accepted once."""

    def check() -> Generator[Effect, Any, int | None]:
        user = UserRecord.from_doc((yield from get(user_key(user_id))))
        if user.method != "totp" or not user.totp_secret:
            return None
        step = otp.match_step(keyring.decrypt(user.totp_secret), code, now, params)
        if step is None:
            return None

        def consume(doc: Doc | None) -> Doc | None:
            record = UserRecord.from_doc(doc)
            if step <= record.last_totp_step:
                return doc
            secret = record.totp_secret
            if secret and keyring.needs_reencryption(secret):
                secret = keyring.encrypt(keyring.decrypt(secret))
            return replace(record, last_totp_step=step, totp_secret=secret).to_doc()

        before, after = yield from update(user_key(user_id), consume)
        return step if before != after else -1

    shaped = otp.is_well_formed(code, params.digits)
    return (yield from throttled(user_id, now, limits, check, well_formed=shaped))


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
) -> Generator[Effect, Any, Enrolled]:
    """Activate the pending secret once the user proves they hold it.

    The confirming code's step is recorded as used (it cannot log in again), the user's epoch
    moves on so every other session of theirs must verify again, and so does their device
    epoch: a browser trusted under the old factor (perhaps the reason for the change) must
    enter a code again.
    """
    enrolled: list[UserRecord] = []

    def check() -> Generator[Effect, Any, int | None]:
        pending = PendingTotp.from_doc((yield from get(pending_totp_key(user_id))))
        if not pending.secret or pending.session_id != session_id:
            return None
        step = otp.match_step(keyring.decrypt(pending.secret), code, now, params)
        if step is None:
            return None
        settings = RuntimeSettings.from_doc((yield from get(SETTINGS_KEY)))

        def activate(doc: Doc | None) -> Doc:
            record = UserRecord.from_doc(doc)
            return replace(
                record,
                method="totp",
                totp_secret=pending.secret,
                phone=None,  # the factor replaced: its contact data goes with it
                email=None,
                last_totp_step=step,
                enroll_epoch=settings.enroll_epoch,
                enrolled_at=now,
                epoch=record.epoch + 1,
                device_epoch=record.device_epoch + 1,  # a new factor: no browser trusted
            ).to_doc()

        _, after = yield from update(user_key(user_id), activate)
        enrolled.append(UserRecord.from_doc(after))
        yield from delete(pending_totp_key(user_id))
        return step

    shaped = otp.is_well_formed(code, params.digits)
    attempt = yield from throttled(user_id, now, limits, check, well_formed=shaped)
    return Enrolled(attempt, enrolled[0] if enrolled else None)
