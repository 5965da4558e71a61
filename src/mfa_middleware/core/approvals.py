"""Approving a sign-in from another browser of the user's: push-style approval with number
matching.

An *approver* is a browser the user already trusts that subscribed to Web Push: it is kept as
one of the user's authenticators (kind "approver", the push subscription and the device id in
`credential`). It is not a factor that can stand alone: it never counts as "another way to
sign in" when the last code or passkey would be removed (`authenticators.counted`), since it
works only while that browser stays trusted, and trust comes from a code or passkey.

A sign-in asks for approval (`start`): a pending approval is kept for the MFA session that
asked (2 minutes, one per session, a new request replaces it), a push goes to every approver,
and the login screen shows a two-digit number. The approver's page shows three numbers; the
right one approves, a wrong one or "This wasn't me" denies (`decide`): the attempt counter
takes a failure, an event and a notice email go out, and the pending login is dead. The
waiting session learns the result (`status`) and, once, turns an approval into a verified
session (`finish`). Everything lives in the store, so any worker answers any step.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mfa_middleware.core import authenticators, notices
from mfa_middleware.core.context import Caller, Params, PushSettings
from mfa_middleware.core.devices import DeviceRecord, device_key, name_from_user_agent
from mfa_middleware.core.effects import (
    Deliver,
    Doc,
    Effect,
    Emit,
    Get,
    GetMany,
    Key,
    Put,
    Scan,
    Update,
)
from mfa_middleware.core.flows import Attempt, count_attempt, take_attempt, throttle_state
from mfa_middleware.core.i18n import N_, Texts
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    Authenticator,
    Record,
    RuntimeSettings,
    UserRecord,
    user_key,
)
from mfa_middleware.errors import DeliveryFailed

KIND = "approver"
TTL = 120.0  # a pending approval lives 2 minutes
PUSH_WINDOW = 600.0  # the push limit counts requests in the last 10 minutes
PENDING, APPROVED, DENIED = "pending", "approved", "denied"
MAX_ENDPOINT = 1024
MAX_USER_AGENT = 512  # of the asking browser's, kept to name it


@dataclass(frozen=True, slots=True)
class Approval(Record):
    """One pending sign-in waiting for an approver's answer."""

    id: str = ""  # random, single use: the approval page's `t`
    session_hash: str = ""  # the MFA session that asked
    number: int = 0  # shown on the login screen
    choices: list[int] = field(default_factory=list)  # shown on the approver, the right one among
    created_at: float = 0.0
    expires_at: float = 0.0
    state: str = PENDING
    user_agent: str = ""  # the asking browser's, capped: named in the reader's language
    ip: str = ""  # and its address

    def browser(self, texts: Texts) -> str:
        """The asking browser as `texts`' language names it ("Chrome sous Linux")."""
        return name_from_user_agent(self.user_agent, texts)


def approval_key(user_id: str, session_hash: str) -> Key:
    return Key("approval", user_id, session_hash)


def pushes_key(user_id: str) -> Key:
    return Key("approval_pushes", user_id)


def approvers(user: UserRecord) -> list[Authenticator]:
    return authenticators.of_kind(user, KIND)


def approver_of_device(user: UserRecord, device_id: str) -> Authenticator | None:
    return next(
        (a for a in approvers(user) if (a.credential or {}).get("device") == device_id), None
    )


def _settings(params: Params) -> PushSettings:
    if params.push is None:
        raise LookupError("push approval is off (push_vapid_private_key)")
    return params.push


# -- becoming an approver --------------------------------------------------------------------


def subscription_from(posted: str, allowed: Sequence[str]) -> dict[str, Any] | None:
    """The browser's `PushSubscription.toJSON()`, checked: an endpoint at an allowed push
    service (the server posts to it: never anywhere else), a P-256 key and a 16-byte secret."""
    try:
        doc = json.loads(posted)
        endpoint, keys = doc["endpoint"], doc["keys"]
        p256dh, auth = keys["p256dh"], keys["auth"]
    except (ValueError, TypeError, KeyError):
        return None
    if not all(isinstance(v, str) for v in (endpoint, p256dh, auth)):
        return None
    if len(endpoint) > MAX_ENDPOINT or not any(endpoint.startswith(p) for p in allowed):
        return None
    if _raw(p256dh)[:1] != b"\x04" or len(_raw(p256dh)) != 65 or len(_raw(auth)) != 16:
        return None
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}


def _raw(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return b""


@dataclass(frozen=True, slots=True)
class Added:
    """An approver added (or its subscription renewed), or why not: "subscription" (not a
    usable one), "untrusted" (this browser is not a trusted device of the user)."""

    ok: bool
    reason: str = ""
    item: Authenticator | None = None


def add(
    caller: Caller, params: Params, device_id: str | None, name: str, posted: str
) -> Generator[Effect, Any, Added]:
    """Make this browser (`device_id`, trusted) an approver with its push subscription. The
    same browser subscribing again replaces its subscription (and its name, when one is
    given). Unlike a new factor, it moves no epoch: the browser's own trust is what it stands
    on. One approver per browser, and browsers are capped (`max_devices`), so approvers are."""
    subscription = subscription_from(posted, _settings(params).endpoints)
    if subscription is None:
        return Added(False, "subscription")
    if device_id is None or not (yield from _trusted(caller, device_id)):
        return Added(False, "untrusted")
    renamed = authenticators.clean_name(name)
    item = Authenticator(
        authenticators.new_id(),
        KIND,
        renamed or name_from_user_agent(caller.user_agent),
        caller.now,
        credential={"device": device_id, "subscription": subscription},
    )

    def keep(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        if not authenticators.counted(user):
            return doc  # no factor to stand on (2FA was reset meanwhile)
        old = approver_of_device(user, device_id)
        factors = [f for f in user.factors() if old is None or f.id != old.id]
        new = item if old is None else replace(item, id=old.id, name=renamed or old.name)
        return authenticators.written(
            user, [*factors, new], authenticators.default_id(user)
        ).to_doc()

    _, after = yield Update(user_key(caller.user_id), keep)
    added = approver_of_device(UserRecord.from_doc(after), device_id)
    if added is None:
        return Added(False, "untrusted")
    yield Emit("approver_added", {"user": caller.user_id, "ip": caller.peer})
    yield from notices.notify(caller, params, notices.approver_added(added.name))
    return Added(True, item=added)


def _trusted(caller: Caller, device_id: str) -> Generator[Effect, Any, bool]:
    """This browser is a device of the caller's, trusted now."""
    return (yield from _device_state(caller, device_id))[0]


def _device_state(
    caller: Caller, device_id: str
) -> Generator[Effect, Any, tuple[bool, UserRecord]]:
    """Whether the device is trusted now, and the user's record (one read)."""
    keys = (SETTINGS_KEY, user_key(caller.user_id), device_key(caller.user_id, device_id))
    docs = yield GetMany(keys)
    settings, user = RuntimeSettings.from_doc(docs[0]), UserRecord.from_doc(docs[1])
    device = docs[2]
    trusted = device is not None and DeviceRecord.from_doc(device).trusted(
        caller.now, user, settings
    )
    return trusted, user


def is_approver(caller: Caller, device_id: str | None) -> Generator[Effect, Any, bool]:
    """This browser is one of the caller's approvers, and still a trusted device of theirs
    (deleting it from the device list, or any revocation of trust, ends its approvals)."""
    if device_id is None:
        return False
    trusted, user = yield from _device_state(caller, device_id)
    return trusted and approver_of_device(user, device_id) is not None


# -- asking for approval ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """A pending approval made and pushed (`approval`, `sent`: to how many approvers), or why
    not: "none" (no approver), "locked", "limit" (too many requests lately)."""

    approval: Approval | None
    reason: str = ""
    sent: int = 0
    retry_after: float = 0.0


def start(
    caller: Caller, params: Params, user: UserRecord, approve_url: str
) -> Generator[Effect, Any, Started]:
    """Ask the user's approvers to approve this session's sign-in: at most `limit` requests
    per user per 10 minutes (refused beyond, nothing sent). `approve_url` is the approval
    page's address; the approval's id is appended to it."""
    push = _settings(params)
    targets = approvers(user)
    if not targets:
        return Started(None, "none")
    if (yield from throttle_state(caller.user_id)).locked(caller.now, params.limits):
        return Started(None, "locked")
    now = caller.now

    def recent(doc: Doc | None) -> list[float]:
        return [t for t in (doc or {}).get("times", []) if t > now - PUSH_WINDOW]

    def count(doc: Doc | None) -> Doc:
        times = recent(doc)
        return {"times": [*times, now] if len(times) < push.limit else times}

    before, _ = yield Update(pushes_key(caller.user_id), count, PUSH_WINDOW)
    earlier = recent(before)  # what the winning run of `count` saw
    if len(earlier) >= push.limit:
        fields = {"user": caller.user_id, "reason": "limit", "ip": caller.peer}
        yield Emit("approval_refused", fields)
        return Started(None, "limit", retry_after=max(0.0, min(earlier) + PUSH_WINDOW - now))
    approval = new_approval(caller)
    yield Put(approval_key(caller.user_id, caller.session_hash), approval.to_doc(), TTL + 60)
    texts = params.texts(caller.locale)
    payload = json.dumps(
        {
            "title": params.app_name,
            "body": texts.gettext(N_("Someone is signing in to your account. Is it you?")),
            "url": f"{approve_url}?t={approval.id}",
            "tag": approval.id,
        }
    )
    sent = 0
    for target in targets:
        subscription = json.dumps((target.credential or {}).get("subscription", {}))
        try:
            yield Deliver("push", subscription, "", payload)
            sent += 1
        except DeliveryFailed as exc:  # the others may still get it
            yield Emit("approval_push_failed", {"user": caller.user_id, "reason": exc.reason})
    yield Emit("approval_requested", {"user": caller.user_id, "sent": sent, "ip": caller.peer})
    return Started(approval, sent=sent)


def new_approval(caller: Caller) -> Approval:
    """A number from 10 to 99 and two other distinct ones, in random order."""
    pick = secrets.SystemRandom()
    choices = pick.sample(range(10, 100), 3)
    return Approval(
        id=secrets.token_urlsafe(24),
        session_hash=caller.session_hash,
        number=choices[0],
        choices=sorted(choices, key=lambda _: pick.random()),
        created_at=caller.now,
        expires_at=caller.now + TTL,
        user_agent=caller.user_agent[:MAX_USER_AGENT],
        ip=str(caller.client or caller.peer or ""),
    )


def status(caller: Caller) -> Generator[Effect, Any, Approval | None]:
    """This session's pending approval as it stands, or None (never asked, or expired)."""
    doc = yield Get(approval_key(caller.user_id, caller.session_hash))
    if doc is None:
        return None
    approval = Approval.from_doc(doc)
    return approval if approval.expires_at > caller.now or approval.state != PENDING else None


def finish(caller: Caller, params: Params) -> Generator[Effect, Any, Attempt]:
    """Turn this session's approved request into a sign-in, once (the record is deleted as it
    is read, so a second call finds nothing). Not approved: a refusal with `reason`
    ("pending", "denied", "none")."""
    key = approval_key(caller.user_id, caller.session_hash)

    def consume(doc: Doc | None) -> Doc | None:
        return None if doc is not None and doc.get("state") == APPROVED else doc

    before, _ = yield Update(key, consume)
    if before is None:
        return Attempt(False, reason="none")
    approval = Approval.from_doc(before)
    if approval.state != APPROVED:
        expired = approval.state == PENDING and approval.expires_at <= caller.now
        return Attempt(False, reason="none" if expired else approval.state)
    yield from count_attempt(caller.user_id, caller.now, params.limits, 0)  # clears failures
    return Attempt(True, factor=KIND)


# -- answering on the approver ---------------------------------------------------------------


def pending(caller: Caller, device_id: str | None) -> Generator[Effect, Any, list[Approval]]:
    """The user's pending approvals, for this browser if it is one of their approvers."""
    if not (yield from is_approver(caller, device_id)):
        return []
    rows: list[tuple[str, Doc]] = yield from _scan(caller.user_id)
    found = [Approval.from_doc(doc) for _, doc in rows]
    live = [a for a in found if a.state == PENDING and a.expires_at > caller.now]
    return sorted(live, key=lambda a: a.created_at)


def _scan(user_id: str) -> Generator[Effect, Any, list[tuple[str, Doc]]]:
    rows: list[tuple[str, Doc]] = yield Scan("approval", user_id)
    return rows


@dataclass(frozen=True, slots=True)
class Decided:
    """What an answer did: "approved", "denied", or why nothing: "not_found" (no such
    approval for this user, or this browser is not their approver), "expired", "answered"."""

    outcome: str
    approval: Approval | None = None


def find(
    caller: Caller, device_id: str | None, approval_id: str
) -> Generator[Effect, Any, Decided]:
    """The approval `approval_id` of the caller's, for this browser (one of their approvers)."""
    if not approval_id or not (yield from is_approver(caller, device_id)):
        return Decided("not_found")
    rows = yield from _scan(caller.user_id)
    wanted = approval_id.encode()
    for _, doc in rows:
        approval = Approval.from_doc(doc)
        if hmac.compare_digest(approval.id.encode(), wanted):
            if approval.state != PENDING:
                return Decided("answered", approval)
            if approval.expires_at <= caller.now:
                return Decided("expired", approval)
            return Decided(PENDING, approval)
    return Decided("not_found")


def decide(
    caller: Caller, params: Params, device_id: str | None, approval_id: str, choice: int | None
) -> Generator[Effect, Any, Decided]:
    """The approver's answer: `choice` the number picked, None for "This wasn't me". Only the
    right number approves; anything else kills the pending sign-in and counts as a failed
    attempt, with an event and a notice email."""
    found = yield from find(caller, device_id, approval_id)
    if found.outcome != PENDING or found.approval is None:
        return found
    approval = found.approval
    right = choice is not None and hmac.compare_digest(str(choice), str(approval.number))
    outcome = APPROVED if right else DENIED

    def answer(doc: Doc | None) -> Doc | None:
        if doc is None or doc.get("id") != approval.id or doc.get("state") != PENDING:
            return doc
        return {**doc, "state": outcome}

    before, _ = yield Update(approval_key(caller.user_id, approval.session_hash), answer, TTL + 60)
    if before is None or before.get("id") != approval.id or before.get("state") != PENDING:
        return Decided("answered", approval)
    fields = {"user": caller.user_id, "ip": caller.peer, "asking_ip": approval.ip}
    if right:
        assert device_id is not None
        yield from _mark_used(caller, device_id)
        yield Emit("approval_approved", fields)
        return Decided(APPROVED, approval)
    reason = "not_me" if choice is None else "wrong_number"
    refused = yield from take_attempt(caller.user_id, caller.now, params.limits)
    if refused is None:
        yield from count_attempt(caller.user_id, caller.now, params.limits, None)
    yield Emit("approval_denied", {**fields, "reason": reason})
    texts = params.texts(caller.locale)
    notice = notices.approval_denied(approval.browser(texts), approval.ip, caller, params)
    yield from notices.notify(caller, params, notice)
    return Decided(DENIED, approval)


def _mark_used(caller: Caller, device_id: str) -> Generator[Effect, Any, None]:
    def touch(doc: Doc | None) -> Doc | None:
        user = UserRecord.from_doc(doc)
        item = approver_of_device(user, device_id)
        if item is None:
            return doc
        return authenticators.used(user, item.id, caller.now).to_doc()

    yield Update(user_key(caller.user_id), touch)
