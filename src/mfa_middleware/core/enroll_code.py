"""The one-time enrollment code an administrator's reset leaves behind.

After an administrator resets a user's two-step verification, the password alone must not be
enough to enroll again, or whoever knows it could enroll their own authenticator first (NIST SP
800-63B rev 4 §4.1.2.1; RST-09). The reset issues a code that is emailed to the address of
record when there is one and shown to the administrator to hand over otherwise. Until the
user's next enrollment, the enrollment pages ask for it first:

- only a keyed hash is stored; the code expires (`enroll_code_ttl`), the requirement does not;
- a correct code unlocks enrollment for the MFA session that entered it, no other;
- every guess counts toward the user's lockout, like any other code;
- enrolling (by any method) or a later reset by the user ends it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.effects import (
    Deliver,
    Doc,
    Effect,
    Key,
    Update,
    delete,
    emit,
    get,
    put,
)
from mfa_middleware.core.flows import MALFORMED, Attempt, count_attempt, take_attempt
from mfa_middleware.core.i18n import N_, NP_, Texts, TextsFor, untranslated
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import Record
from mfa_middleware.core.recovery import new_code, normalise, reset_user, shaped
from mfa_middleware.errors import DeliveryFailed


def enroll_code_key(user_id: str) -> Key:
    return Key("enroll_code", user_id)


@dataclass(frozen=True, slots=True)
class EnrollCode(Record):
    digest: str = ""
    expires_at: float = 0.0
    unlocked_for: str = ""  # the keyed hash of the MFA session that entered the code


def _digest(keyring: Keyring, user_id: str, code: str) -> str:
    return keyring.mac("mfa.enroll-code.v1", f"{user_id}:{normalise(code)}")


def issue(
    user_id: str, now: float, ttl: float, keyring: Keyring, actor: str
) -> Generator[Effect, Any, str]:
    """A new code for this user, replacing any earlier one; the plain code is returned once.
    Stored without a TTL: an expired code must still block enrollment, not lift the need."""
    code = new_code()
    record = EnrollCode(_digest(keyring, user_id, code), now + ttl)
    yield from put(enroll_code_key(user_id), record.to_doc())
    yield from emit("enroll_code_issued", user=user_id, actor=actor)
    return code


def pending(user_id: str) -> Generator[Effect, Any, EnrollCode | None]:
    """The code this user must enter before enrolling, if any."""
    doc = yield from get(enroll_code_key(user_id))
    return None if doc is None else EnrollCode.from_doc(doc)


def blocking(user_id: str, session_hash: str) -> Generator[Effect, Any, EnrollCode | None]:
    """The code this MFA session must still enter before enrolling; None once it did (or
    when none is asked)."""
    code = yield from pending(user_id)
    return None if code is None or code.unlocked_for == session_hash else code


def unlock(
    user_id: str,
    code: str,
    session_hash: str,
    now: float,
    keyring: Keyring,
    limits: ThrottleParams,
) -> Generator[Effect, Any, Attempt]:
    """Check a typed enrollment code; a correct, unexpired one unlocks this MFA session."""
    if not shaped(code):
        return MALFORMED
    refused = yield from take_attempt(user_id, now, limits)
    if refused is not None:
        return refused
    stored = yield from pending(user_id)
    message = f"{user_id}:{normalise(code)}"  # under any key: a rotation keeps it
    step = None
    if stored is not None and stored.expires_at > now:
        digest = stored.digest
        if keyring.verify_mac("mfa.enroll-code.v1", message, digest):

            def mark(doc: Doc | None) -> Doc | None:
                if doc is None or doc.get("digest") != digest:
                    return doc  # replaced or ended meanwhile
                return replace(EnrollCode.from_doc(doc), unlocked_for=session_hash).to_doc()

            _, after = yield Update(enroll_code_key(user_id), mark)
            unlocked = after is not None and after.get("unlocked_for") == session_hash
            step = 0 if unlocked else None
    attempt = yield from count_attempt(user_id, now, limits, step)
    if attempt.ok:
        yield from emit("enroll_code_used", user=user_id)
    return attempt


def finish(user_id: str) -> Generator[Effect, Any, None]:
    """The user enrolled: no code is needed any more."""
    yield from delete(enroll_code_key(user_id))


@dataclass(frozen=True, slots=True)
class AdminReset:
    """What an administrator's reset left: the enrollment code (None when codes are off), the
    address the user was told at, masked (None when no email went out), and whether that email
    carried the code (else the administrator hands it over)."""

    code: str | None
    emailed_to: str | None = None
    code_sent: bool = False

    @property
    def handover(self) -> str | None:
        """The code the administrator must hand over: one that was not emailed."""
        return None if self.code_sent else self.code


def reset_by_admin(
    user_id: str,
    actor: str,
    now: float,
    keyring: Keyring,
    *,
    ttl: float | None,
    email: str | None = None,
    by: str = "",
    app_name: str = "",
    texts: TextsFor = untranslated,
) -> Generator[Effect, Any, AdminReset]:
    """Reset the user's 2FA and, with a `ttl`, issue their enrollment code. The user is told
    by email at `email`, the app's address of record (never the address enrolled as a factor:
    whoever enrolled it may be who the reset locks out), with the code in it and `by`, the
    administrator's name, when given. Without an address, or when the email fails, the
    administrator hands the code over. The email is in the user's language (of their last
    page), whoever resets."""
    code: str | None = None
    if ttl is None:
        user = yield from reset_user(user_id, actor)
    else:
        # the code first, then the reset that keeps it: at no moment does the password alone
        # enroll
        code = yield from issue(user_id, now, ttl, keyring, actor)
        user = yield from reset_user(user_id, actor, keep_enroll_code=True)
    if not email:
        return AdminReset(code)
    language = texts(user.locale)
    subject, text = _reset_mail(code, ttl, app_name, language)
    if by:
        text += "\n\n" + language.gettext(N_("Reset by: {admin}.")).format(admin=by)
    try:
        yield Deliver("email", email, subject, text + "\n")
    except DeliveryFailed as exc:
        yield from emit("notification_failed", user=user_id, reason=exc.reason)
        return AdminReset(code)
    local, _, domain = email.partition("@")
    return AdminReset(code, f"{local[:1]}***@{domain}", code_sent=code is not None)


def _reset_mail(code: str | None, ttl: float | None, app: str, language: Texts) -> tuple[str, str]:
    """The subject and text of the email an administrator's reset sends the user."""
    if code is None or ttl is None:
        subject = language.gettext(N_("{app}: two-step verification was reset")).format(app=app)
        text = language.gettext(
            N_(
                "An administrator reset two-step verification on your {app} account: your"
                " ways to sign in, trusted devices and recovery codes were removed, and you"
                " set it up again when you next sign in. If you didn't ask your administrator"
                " for this, tell them now."
            )
        ).format(app=app)
        return subject, text
    hours = max(1, round(ttl / 3600))
    values = {"app": app, "code": code, "count": hours}
    subject = language.gettext(N_("{app}: set up two-step verification again")).format(**values)
    text = language.ngettext(
        *NP_(
            "An administrator turned off two-step verification on your {app} account so that"
            " you can set it up again. When you next sign in, enter this enrollment code when"
            " asked:\n\n{code}\n\nIt works once and expires in {count} hour. If you didn't"
            " ask your administrator for this, tell them now: someone else may be trying to"
            " set it up.",
            "An administrator turned off two-step verification on your {app} account so that"
            " you can set it up again. When you next sign in, enter this enrollment code when"
            " asked:\n\n{code}\n\nIt works once and expires in {count} hours. If you didn't"
            " ask your administrator for this, tell them now: someone else may be trying to"
            " set it up.",
        ),
        hours,
    ).format(**values)
    return subject, text
