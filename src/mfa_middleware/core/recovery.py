"""Recovery codes, and resetting a user's 2FA (by the user, through a lost-device link, or by
an admin), written once as flows.

Recovery codes carry 80 bits each (16 characters of Crockford's base32, shown in four groups),
come from `secrets`, and are stored only as keyed hashes with a salt per code. Each works once;
regenerating replaces the whole set. Guesses go through the same attempt limit as codes.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from mfa_middleware.core import authenticators, notices
from mfa_middleware.core.context import Caller, Params, ThrottleParams
from mfa_middleware.core.devices import DEVICE_KIND, device_key
from mfa_middleware.core.effects import (
    Doc,
    Effect,
    Emit,
    Get,
    Key,
    Update,
    annotated,
    delete,
    emit,
    get,
    put,
    scan,
    update,
)
from mfa_middleware.core.flows import MALFORMED, Attempt, count_attempt, take_attempt
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import (
    Record,
    UserRecord,
    pending_totp_key,
    throttle_key,
    user_key,
)

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
CODE_LENGTH = 16
DEFAULT_COUNT = 10
FEW_LEFT = 3
_LOOKALIKES = str.maketrans("oil", "011")


def recovery_key(user_id: str) -> Key:
    return Key("recovery", user_id)


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise(code: str) -> str:
    """What the user typed, as stored: case, spaces and dashes ignored; o->0, i/l->1."""
    cleaned = code.strip().lower().replace("-", "").replace(" ", "")
    return cleaned.translate(_LOOKALIKES)


PURPOSE = "mfa.recovery-code.v1"


def shaped(code: str) -> bool:
    """Whether `code`, as typed, can be one of our codes (16 of Crockford's characters once
    case, spaces and dashes are set aside): anything else is no guess."""
    cleaned = normalise(code)
    return len(cleaned) == CODE_LENGTH and all(ch in ALPHABET for ch in cleaned)


def _hash(keyring: Keyring, salt: str, code: str) -> str:
    return keyring.mac(PURPOSE, f"{salt}:{normalise(code)}")


@dataclass(frozen=True, slots=True)
class RecoverySet(Record):
    hashes: list[list[str]] = field(default_factory=list)  # [salt, keyed hash] per unused code
    created_at: float = 0.0


def issue_codes(
    user_id: str, now: float, keyring: Keyring, count: int = DEFAULT_COUNT
) -> Generator[Effect, Any, list[str]]:
    """A new set of codes, replacing any earlier set; the plain codes are returned once."""
    codes = [new_code() for _ in range(count)]
    hashes = []
    for code in codes:
        salt = secrets.token_urlsafe(8)
        hashes.append([salt, _hash(keyring, salt, code)])
    yield from put(recovery_key(user_id), RecoverySet(hashes, now).to_doc())
    yield from emit("recovery_codes_generated", user=user_id, count=count)
    return codes


def codes_left(user_id: str) -> Generator[Effect, Any, int | None]:
    """How many unused codes the user has; None when they never had any."""
    doc = yield from get(recovery_key(user_id))
    return None if doc is None else len(RecoverySet.from_doc(doc).hashes)


def use_code(
    user_id: str, code: str, now: float, keyring: Keyring, limits: ThrottleParams
) -> Generator[Effect, Any, Attempt]:
    """Spend one recovery code; each works once, even under parallel requests."""
    if not shaped(code):
        return MALFORMED
    refused = yield from take_attempt(user_id, now, limits)
    if refused is not None:
        return refused
    cleaned = normalise(code)
    stored = RecoverySet.from_doc((yield Get(recovery_key(user_id))))
    match: list[str] | None = None
    for salt, digest in stored.hashes:  # under any key: codes outlive a key rotation
        if keyring.verify_mac(PURPOSE, f"{salt}:{cleaned}", digest) and match is None:
            match = [salt, digest]
    step = None
    if match is not None:
        spent = match

        def spend(doc: Doc | None) -> Doc | None:
            current = RecoverySet.from_doc(doc)
            if spent not in current.hashes:
                return doc
            return replace(current, hashes=[h for h in current.hashes if h != spent]).to_doc()

        before, after = yield Update(recovery_key(user_id), spend)
        step = 0 if before != after else -1
    attempt = yield from count_attempt(user_id, now, limits, step)
    if attempt.ok:
        left = yield from codes_left(user_id)
        yield Emit("recovery_code_used", {"user": user_id, "left": left})
    return attempt


def reset_user(
    user_id: str, actor: str, *, keep_enroll_code: bool = False
) -> Generator[Effect, Any, UserRecord]:
    """Forget a user's 2FA: enrollment and every factor's contact data (a phone or an address
    given when enrolling: whoever enrolled it may be who the reset locks out), recovery codes,
    pending codes, devices and attempt counters; end their sessions and device trust. Only
    this user is affected; flags set by ops (exempt, required) stay."""

    def clear(doc: Doc | None) -> Doc:
        record = UserRecord.from_doc(doc)
        return replace(
            authenticators.written(record, [], ""),
            enroll_epoch=0,
            enrolled_at=0.0,
            epoch=record.epoch + 1,
            device_epoch=record.device_epoch + 1,
        ).to_doc()

    _, after = yield from update(user_key(user_id), clear)
    for key in (
        recovery_key(user_id),
        pending_totp_key(user_id),
        throttle_key(user_id),
        Key("oob", user_id, "login"),
        Key("oob", user_id, "enroll"),
        Key("pending_oob", user_id),
        reset_link_key(user_id),
        *(() if keep_enroll_code else (Key("enroll_code", user_id),)),  # core.enroll_code
    ):
        yield from delete(key)
    for name, _doc in (yield from scan(DEVICE_KIND, user_id)):
        yield from delete(device_key(user_id, name))
    yield from emit("mfa_reset", user=user_id, actor=actor)
    return UserRecord.from_doc(after)


def reset_link_key(user_id: str) -> Key:
    return Key("reset_link", user_id)


@dataclass(frozen=True, slots=True)
class ResetLink(Record):
    digest: str = ""
    expires_at: float = 0.0


def issue_reset_link(
    user_id: str, now: float, ttl: float, keyring: Keyring
) -> Generator[Effect, Any, str]:
    """A single-use token for the lost-device email; only its keyed hash is stored."""
    token = secrets.token_urlsafe(24)
    digest = keyring.mac("mfa.reset-link.v1", f"{user_id}:{token}")
    yield from put(reset_link_key(user_id), ResetLink(digest, now + ttl).to_doc(), ttl=ttl)
    yield from emit("reset_link_sent", user=user_id)
    return token


def _live_reset_link(
    user_id: str, token: str, now: float, keyring: Keyring
) -> Generator[Effect, Any, str | None]:
    """The stored digest of this user's token while it is valid and unexpired; else None.
    Checked under every configured key, so a link survives a key rotation."""
    if not token or len(token) > 100:
        return None
    link = ResetLink.from_doc((yield from get(reset_link_key(user_id))))
    if not link.digest or link.expires_at <= now:
        return None
    if not keyring.verify_mac("mfa.reset-link.v1", f"{user_id}:{token}", link.digest):
        return None
    return link.digest


def reset_link_valid(
    user_id: str, token: str, now: float, keyring: Keyring
) -> Generator[Effect, Any, bool]:
    """Whether the token would work now, without spending it (the page that opens the link
    says at once when it was used or has expired)."""
    return (yield from _live_reset_link(user_id, token, now, keyring)) is not None


def spend_reset_link(
    user_id: str, token: str, now: float, keyring: Keyring
) -> Generator[Effect, Any, bool]:
    """True once for a valid, unexpired token of this user; False for anything else."""
    digest = yield from _live_reset_link(user_id, token, now, keyring)
    if digest is None:
        return False

    def spend(doc: Doc | None) -> Doc | None:
        return None if doc is not None and doc.get("digest") == digest else doc

    before, after = yield from update(reset_link_key(user_id), spend)
    return before is not None and after is None


RESEND_LINK_AFTER = 300.0  # one lost-device email per 5 minutes, however often it is asked


def send_reset_link(
    caller: Caller, params: Params, ttl: float, confirm_url: str
) -> Generator[Effect, Any, None]:
    """Email the user a single-use link (`confirm_url?token=...`) that resets their 2FA when
    opened while signed in; to the app's address of record only (see `notices.notify`)."""
    link = ResetLink.from_doc((yield Get(reset_link_key(caller.user_id))))
    if link.expires_at - ttl > caller.now - RESEND_LINK_AFTER:
        return  # one was sent a moment ago: the same mailbox needs no second one
    token = yield from issue_reset_link(caller.user_id, caller.now, ttl, params.keyring)
    notice = notices.reset_link(f"{confirm_url}?token={token}", ttl)
    yield from notices.notify(caller, params, notice)


def reset(caller: Caller, params: Params, actor: str) -> Generator[Effect, Any, UserRecord]:
    """The user resets their own 2FA (a lost device's link, or turning it off), and is told."""
    record = yield from annotated(reset_user(caller.user_id, actor), ip=caller.peer)
    yield from notices.notify(caller, params, notices.RESET_DONE)
    return record


def replace_codes(caller: Caller, params: Params, count: int) -> Generator[Effect, Any, list[str]]:
    """A new set of codes on the user's request (the old set stops working); the user is told."""
    codes = yield from issue_codes(caller.user_id, caller.now, params.keyring, count)
    yield from notices.notify(caller, params, notices.RECOVERY_CODES_REPLACED)
    return codes
