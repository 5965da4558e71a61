"""The second step at sign-in (and at step-up): check the code of the user's method or a
recovery code, record the guess, warn the user when someone fails it until locked out, and
send SMS and email users their login code."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mfa_middleware.core import authenticators, notices, oob, passkeys, recovery
from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.effects import Doc, Effect, Emit, Get, Update
from mfa_middleware.core.flows import Attempt, verify_totp
from mfa_middleware.core.records import UserRecord, user_key

CODE_METHODS = authenticators.CODE_KINDS  # a code sent per sign-in


def verify(
    caller: Caller, params: Params, user: UserRecord, kind: str, code: str
) -> Generator[Effect, Any, Attempt]:
    """Check a sign-in code of the `kind` the user chose: from any of their authenticator
    apps, or the one sent to this session by SMS or email; for a passkey, `code` is the
    assertion the browser posted."""
    if kind == passkeys.KIND:
        attempt = yield from passkeys.verify(caller, params, user, code)
    elif kind in CODE_METHODS:
        attempt, _ = yield from oob.verify_code(
            caller.user_id,
            caller.session_id,
            "login",
            code,
            caller.now,
            params.keyring,
            params.oob,
            params.limits,
        )
        factor = authenticators.code_factor(user)
        if attempt.ok and factor is not None:
            yield from used(caller, factor.id)
    else:
        attempt = yield from verify_totp(
            caller.user_id, code, caller.now, params.keyring, params.totp, params.limits
        )
    yield from record(caller, params, attempt, kind, "challenge")
    return attempt


def used(caller: Caller, factor: str) -> Generator[Effect, Any, None]:
    """Note when the authenticator was last used (the settings page shows it)."""

    def touch(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        if authenticators.find(user, factor) is None:
            return doc
        return authenticators.used(user, factor, caller.now).to_doc()

    yield Update(user_key(caller.user_id), touch)


def use_recovery_code(
    caller: Caller, params: Params, code: str
) -> Generator[Effect, Any, tuple[Attempt, int]]:
    """Sign in with a recovery code; on success the user is told, with how many are left."""
    attempt = yield from recovery.use_code(
        caller.user_id, code, caller.now, params.keyring, params.limits
    )
    yield from record(caller, params, attempt, "recovery", "challenge")
    if not attempt.ok:
        return attempt, 0
    left = (yield from recovery.codes_left(caller.user_id)) or 0
    yield from notices.notify(caller, params, notices.recovery_code_used(left))
    return attempt, left


def record(
    caller: Caller, params: Params, attempt: Attempt, method: str, step: str
) -> Generator[Effect, Any, None]:
    """The events of one guess (none for input that was no guess); a guess at sign-in or at
    an enrollment code that started a lockout also warns the user by email: whoever it is
    got past the password."""
    if attempt.malformed:
        return
    fields = {"user": caller.user_id, "method": method, "step": step, "ip": caller.peer}
    if attempt.ok:
        yield Emit("verify_succeeded", fields)
        return
    if attempt.locked:
        yield Emit("locked_out", fields)
    if attempt.replayed:
        yield Emit("totp_replay", fields)
    reason = {"reason": attempt.reason} if attempt.reason else {}
    yield Emit("verify_failed", {**fields, **reason, "locked": attempt.locked})
    if attempt.locked_now and (step == "challenge" or method == "enroll_code"):
        yield from notices.notify(caller, params, notices.failed_codes(caller, params))


def login_routes(user: UserRecord, email: str | None, params: Params) -> list[tuple[str, str]]:
    """Where a login code goes: the enrolled phone, then (`sms_fallback`: with `email_codes`,
    or asked for) the app's address of record if the SMS fails. A user who enrolled by email
    keeps receiving codes there even if `email_codes` was turned off since, or they could not
    sign in."""
    factor = authenticators.code_factor(user)
    if factor is None or not factor.destination:
        return []
    if factor.kind == "sms":
        fallback = [("email", email)] if email and params.sms_fallback else []
        return [("sms", factor.destination), *fallback]
    return [("email", factor.destination)]


def send(
    caller: Caller,
    params: Params,
    purpose: str,
    routes: list[tuple[str, str]],
    *,
    first: bool = False,
) -> Generator[Effect, Any, oob.Sent]:
    """Send a new code for `purpose` ("login", "enroll") to this session, along the first of
    `routes` that works; every event names the address that asked."""
    sent: oob.Sent = yield from oob.send_code(
        caller.user_id,
        caller.session_id,
        purpose,
        routes,
        caller.now,
        params.keyring,
        params.oob,
        params.app_name,
        caller.session_hash,
        first=first,
        ip=oob.rate_limit_address(caller.client),
        texts=params.texts(caller.locale),
        peer=caller.peer,
    )
    return sent


def live_code(caller: Caller, purpose: str) -> Generator[Effect, Any, oob.PendingCode | None]:
    """The code sent to this session for `purpose`, while it still works."""
    doc = yield Get(oob.code_key(caller.user_id, purpose))
    if doc is None:
        return None
    pending = oob.PendingCode.from_doc(doc)
    if pending.expires_at <= caller.now or pending.session_hash != caller.session_hash:
        return None
    return pending


def login_code(
    caller: Caller, params: Params, user: UserRecord, *, send_first: bool
) -> Generator[Effect, Any, tuple[oob.Sent | None, oob.PendingCode | None]]:
    """The login code of this session (while it works) and, with `send_first`, the sending
    of one when there is none yet (the challenge page's first visit)."""
    live = yield from live_code(caller, "login")
    if not send_first or live is not None:
        return None, live
    routes = login_routes(user, caller.email, params)
    sent = yield from send(caller, params, "login", routes, first=True)
    if sent.ok:
        live = yield from live_code(caller, "login")
    return sent, live


def resend_login_code(
    caller: Caller, params: Params, user: UserRecord
) -> Generator[Effect, Any, tuple[oob.Sent, oob.PendingCode | None]]:
    """A new login code on request (the resend cooldown and hourly caps apply)."""
    sent = yield from send(caller, params, "login", login_routes(user, caller.email, params))
    live = yield from live_code(caller, "login")
    return sent, live
