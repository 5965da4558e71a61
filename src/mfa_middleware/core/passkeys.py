"""Passkeys and security keys as a user's authenticators: adding one, and signing in with one.

`core.webauthn` runs the ceremonies; this module keeps their results where a user's factors
live (an `Authenticator` of kind "webauthn" holding the credential) and counts sign-ins as
the codes do: an assertion takes a slot of the same lockout before it is checked, a failed
one counts as a wrong code, and input that is no assertion at all costs nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core import authenticators
from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.effects import Doc, Effect, Emit, Get, Update
from mfa_middleware.core.flows import MALFORMED, Attempt, count_attempt, take_attempt
from mfa_middleware.core.records import Authenticator, UserRecord, user_key
from mfa_middleware.core.relying_party import WebAuthnSettings
from mfa_middleware.core.webauthn import (
    Credential,
    assertion_shaped,
    authentication_options,
    credential_from_dict,
    credential_to_dict,
    finish_registration,
    from_b64url,
    new_user_handle,
    registration_options,
    to_b64url,
    verify_authentication,
)

KIND = "webauthn"


def credentials(user: UserRecord) -> list[tuple[str, Credential]]:
    """The user's passkeys and security keys: (authenticator id, credential)."""
    found = []
    for item in authenticators.of_kind(user, KIND):
        try:
            found.append((item.id, credential_from_dict(item.credential or {})))
        except ValueError:  # a damaged entry signs nobody in; the others still work
            continue
    return found


def session_method(user: UserRecord, factor: str) -> str:
    """How a session that passed with this passkey says it did (`MFAState.method`): a synced
    passkey (its key may leave the device: amr `swk`) or a device-bound one (`hwk`)."""
    for item_id, credential in credentials(user):
        if item_id == factor and credential.backup_eligible:
            return "webauthn.synced"
    return KIND


def _settings(params: Params) -> WebAuthnSettings:
    if params.webauthn is None:
        raise LookupError("passkeys are off (webauthn_enabled)")
    return params.webauthn


# -- adding one -------------------------------------------------------------------------------


def _user_handle(user_id: str) -> Generator[Effect, Any, tuple[bytes, UserRecord]]:
    """The user's WebAuthn handle and record; the handle is made (once, atomically) on their
    first passkey. Only that first time writes: a write moves every worker's cache on."""
    user = UserRecord.from_doc((yield Get(user_key(user_id))))
    if not user.webauthn_handle:
        made = to_b64url(new_user_handle())

        def keep(doc: Doc | None) -> Doc:
            found = UserRecord.from_doc(doc)
            return (
                doc
                if doc and found.webauthn_handle
                else replace(found, webauthn_handle=made).to_doc()
            )

        _, after = yield Update(user_key(user_id), keep)
        user = UserRecord.from_doc(after)
    return from_b64url(user.webauthn_handle) or b"", user


def creation_options(
    caller: Caller, params: Params, user_name: str, display_name: str
) -> Generator[Effect, Any, str]:
    """The options for the browser's `navigator.credentials.create()`, as JSON (the user's
    passkeys excluded, so one is not added twice)."""
    handle, user = yield from _user_handle(caller.user_id)
    existing = [c for _, c in credentials(user)]
    options: str = yield from registration_options(
        caller, params, _settings(params), handle, user_name, display_name, existing
    )
    return options


@dataclass(frozen=True, slots=True)
class Added:
    """A passkey added (`user` is the new record), or why not (`reason`, one of
    `core.webauthn.REASONS`)."""

    user: UserRecord | None
    reason: str = ""


def add(caller: Caller, params: Params, posted: str, name: str) -> Generator[Effect, Any, Added]:
    """Add the passkey the browser created (its `toJSON()`, as posted) under `name`."""
    user = UserRecord.from_doc((yield Get(user_key(caller.user_id))))
    existing = [c for _, c in credentials(user)]
    result = yield from finish_registration(caller, params, _settings(params), posted, existing)
    if not result.ok or result.credential is None:
        fields = {"user": caller.user_id, "reason": result.reason, "ip": caller.peer}
        yield Emit("webauthn_registration_failed", fields)
        return Added(None, result.reason)
    item = Authenticator(
        authenticators.new_id(),
        KIND,
        authenticators.clean_name(name),
        caller.now,
        credential=credential_to_dict(result.credential),
    )
    added = yield from authenticators.add(caller.user_id, caller.now, item)
    yield Emit("enrolled", {"user": caller.user_id, "method": KIND, "ip": caller.peer})
    return Added(added)


# -- signing in with one -----------------------------------------------------------------------


def request_options(
    caller: Caller, params: Params, user: UserRecord
) -> Generator[Effect, Any, str]:
    """The options for the browser's `navigator.credentials.get()`, as JSON: a new challenge
    for this session, the user's own credentials allowed."""
    allowed = [c for _, c in credentials(user)]
    options: str = yield from authentication_options(caller, params, _settings(params), allowed)
    return options


def verify(
    caller: Caller, params: Params, user: UserRecord, posted: str
) -> Generator[Effect, Any, Attempt]:
    """Check an assertion of one of the user's passkeys. It counts toward the same lockout as
    a code; a success stores the credential's new sign count (refused, as a clone, when
    another sign-in stored a higher one meanwhile)."""
    if params.webauthn is None or not assertion_shaped(posted):
        return MALFORMED
    refused = yield from take_attempt(caller.user_id, caller.now, params.limits)
    if refused is not None:
        return refused
    mine = credentials(user)
    handle = from_b64url(user.webauthn_handle) or b""
    result = yield from verify_authentication(
        caller, params, params.webauthn, posted, [c for _, c in mine], handle
    )
    factor, reason = "", result.reason
    if result.ok and result.credential is not None:
        used = result.credential
        factor = next(i for i, c in mine if c.credential_id == used.credential_id)
        if not (yield from _store_use(caller, factor, used)):
            factor, reason = "", "counter"
    attempt = yield from count_attempt(
        caller.user_id, caller.now, params.limits, 0 if factor else None
    )
    return replace(attempt, factor=factor) if attempt.ok else replace(attempt, reason=reason)


def _store_use(caller: Caller, factor: str, used: Credential) -> Generator[Effect, Any, bool]:
    """Keep the new sign count, when it is still above the stored one (two sign-ins racing
    with one counter are a cloned key's signature: the second is refused)."""

    def keep(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        item = authenticators.find(user, factor)
        if item is None or not _advances(item, used):
            return doc
        credential = credential_to_dict(used)
        return authenticators.used(user, factor, caller.now, credential=credential).to_doc()

    before, _ = yield Update(user_key(caller.user_id), keep)
    item = authenticators.find(UserRecord.from_doc(before), factor)
    return item is not None and _advances(item, used)


def _advances(item: Authenticator, used: Credential) -> bool:
    stored = credential_from_dict(item.credential or {}).sign_count
    return used.sign_count > stored or used.sign_count == stored == 0
