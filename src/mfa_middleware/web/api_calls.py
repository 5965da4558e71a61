"""The JSON API's calls: each reads the page's (JSON) form, calls the core action its HTML
page calls, and answers JSON, or an RFC 9457 problem (`web.problems`).

The router (`web.api`) has already checked the body's fields, the CSRF header and that the
call fits the session's state (with the same guards as the pages), so a call does neither.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial
from typing import Any

from mfa_middleware.core import (
    approvals,
    assigned,
    authenticators,
    challenge,
    devices,
    enroll_code,
    enrollment,
    oob,
    ops,
    otp,
    passkeys,
    recovery,
)
from mfa_middleware.core.effects import Doc, Step, get
from mfa_middleware.core.flows import Attempt, Enrolled
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.records import UserRecord
from mfa_middleware.core.tokens import SessionClaims, csrf_token
from mfa_middleware.web.account_pages import (
    authenticator_change,
    carried_on,
    ending_others,
    signing_out,
)
from mfa_middleware.web.approval_pages import ANSWERS, NOT_FOUND, adding_approver
from mfa_middleware.web.attempts import with_lock_notice
from mfa_middleware.web.challenge_pages import approvals_offered, chosen, verified_claims
from mfa_middleware.web.code_context import resend_context
from mfa_middleware.web.device_pages import device_change, device_rows, onward, trust_open
from mfa_middleware.web.enroll_pages import (
    EMAIL_RE,
    adding,
    allowed_phone_regions,
    relogin_target,
    signing_in_again,
    with_enroll_code,
)
from mfa_middleware.web.gate import current_device, state_of
from mfa_middleware.web.outcomes import Answer, Reply
from mfa_middleware.web.page import Page
from mfa_middleware.web.phone import normalise_phone
from mfa_middleware.web.qr import qr_images
from mfa_middleware.web.reset_pages import lost_possible, restarted, send_lost_link

# -- the state --------------------------------------------------------------------------------


def state_get(page: Page) -> Reply:
    """What the session needs next and everything a front end needs to show it."""
    return Step(recovery.codes_left(page.principal.id), partial(_with_enroll_code, page))


def _with_enroll_code(page: Page, left: int | None) -> Reply:
    """And, when enrolling, whether an administrator's reset asks for its code first."""
    if page.state != "enroll":
        return _state(page, left, None)
    blocking = enroll_code.blocking(page.principal.id, page.caller.session_hash)
    return Step(blocking, partial(_state, page, left))


def _state(page: Page, left: int | None, code: enroll_code.EnrollCode | None) -> Reply:
    rt, user = page.rt, page.user
    kinds = authenticators.kinds(user)
    return page.json(
        {
            "state": page.state,
            "enroll_code_required": code is not None,
            "user": page.principal.display_name,
            "csrf_token": csrf_token(rt.keyring, page.view.claims.session_id),
            "methods": list(kinds),
            "method": chosen(page) if kinds else None,
            "enroll_methods": list(rt.enroll_methods),
            "code_digits": {"totp": rt.totp.digits, "sms": rt.oob.digits, "email": rt.oob.digits},
            "recovery_codes_left": left,
            "trust_devices": trust_open(page),
            "mfa": state_of(rt, page.view).to_dict(),
        }
    )


# -- failures ---------------------------------------------------------------------------------


def attempt_problem(page: Page, attempt: Attempt) -> Reply:
    """A code that did not verify: malformed (no attempt used), wrong, or locked out."""
    if attempt.malformed:
        return page.problem(
            400, "malformed_code", N_("Enter your code"), N_("Enter the code, digits only.")
        )
    if attempt.locked:
        return _locked(page, attempt.retry_after)
    return page.problem(
        400,
        "wrong_code",
        N_("Wrong code"),
        N_("That code didn't work. Check it and try again."),
        attempts_left=attempt.attempts_left,
    )


def _locked(page: Page, retry_after: float) -> Reply:
    permanent = math.isinf(retry_after)
    seconds = None if permanent else max(1, math.ceil(retry_after))
    return page.problem(
        429,
        "locked",
        N_("Too many wrong codes"),
        N_("Too many wrong codes were entered. Wait, or contact your administrator."),
        headers=() if seconds is None else (("retry-after", str(seconds)),),
        permanent=permanent,
        retry_after=seconds,
    )


def _unless_locked(page: Page, then: Callable[[], Reply]) -> Reply:
    """`then()` unless this user's verification is locked out now (429 then)."""

    def checked(locked: dict[str, Any]) -> Reply:
        if locked:
            return _locked(page, math.inf if locked["permanent"] else locked["wait_seconds"])
        return then()

    return with_lock_notice(page, checked)


def _sent(page: Page, channel: str, sent: oob.Sent, destination: str = "") -> Reply:
    """How a code was sent: 200 with where it went (masked), else the problem."""
    if sent.ok:
        body: dict[str, Any] = {"sent": True, "channel": channel, "fallback": sent.fallback}
        if destination:
            body["masked"] = oob.mask(channel, destination)
        return page.json(body)
    context = resend_context(sent)
    if context["resend_refused"]:
        return page.problem(
            429,
            "resend_too_soon",
            N_("Wait a moment"),
            N_("A code was sent moments ago. Wait before asking for another."),
            headers=(("retry-after", str(context["resend_refused"])),),
            retry_after=context["resend_refused"],
        )
    if sent.capped:
        return page.problem(
            429,
            "send_limit",
            N_("Too many codes"),
            N_("Too many codes were sent in the last hour. Try again later."),
        )
    return page.problem(
        503,
        "send_failed",
        N_("Code could not be sent"),
        N_("We couldn't send you a code just now. Try again in a moment."),
    )


# -- the challenge ----------------------------------------------------------------------------


def _method(page: Page) -> str | None:
    """The method the call names (`method` in the body or the query), one of the user's (None
    if it is not), else the one the pages would offer."""
    asked = page.form.get("method") or page.facts.query_param("method")
    if asked:
        if asked not in authenticators.kinds(page.user):
            return None
        page.form["via"] = asked
    return chosen(page)


def _not_theirs(page: Page) -> Reply:
    return page.problem(
        400,
        "unknown_method",
        N_("Bad request"),
        N_("That is not one of your ways to sign in."),
        methods=list(authenticators.kinds(page.user)),
    )


def challenge_get(page: Page) -> Reply:
    """Start the chosen method: a passkey's request options, or a code sent by SMS or email
    (sent once: a repeated call says where the live one went)."""
    kind = _method(page)
    if kind is None:
        return _not_theirs(page)
    return _unless_locked(page, partial(_challenge_started, page, kind))


def _challenge_started(page: Page, kind: str) -> Reply:
    if kind == passkeys.KIND:
        asking = passkeys.request_options(page.caller, page.params, page.user)
        return Step(
            asking, lambda options: page.json({"method": kind, "options": json.loads(options)})
        )
    if kind not in challenge.CODE_METHODS:
        return page.json({"method": kind, "digits": page.code_digits(kind)})
    sending = challenge.login_code(page.caller, page.params, page.user, send_first=True)
    return Step(sending, partial(_code_started, page, kind))


def _code_started(
    page: Page, kind: str, found: tuple[oob.Sent | None, oob.PendingCode | None]
) -> Reply:
    sent, live = found
    if sent is not None and not sent.ok:
        return _sent(page, kind, sent)
    body: dict[str, Any] = {"method": kind, "digits": page.code_digits(kind), "sent": True}
    if live is not None:
        body["masked"] = oob.mask(live.channel, live.destination)
        body["fallback"] = bool(sent and sent.fallback)
    return page.json(body)


def challenge_post(page: Page) -> Reply:
    kind = _method(page)
    if kind is None:
        return _not_theirs(page)
    code = page.form.get("credential" if kind == passkeys.KIND else "code", "")
    checking = challenge.verify(page.caller, page.params, page.user, kind, code)
    return Step(checking, partial(_checked, page, kind))


def _checked(page: Page, kind: str, attempt: Attempt) -> Reply:
    if not attempt.ok and kind == passkeys.KIND and not attempt.locked:
        return page.problem(
            400,
            "passkey_refused",
            N_("Bad request"),
            N_("Something went wrong with your passkey. Try again."),
            reason=attempt.reason,
        )
    if not attempt.ok:
        return attempt_problem(page, attempt)
    claims = verified_claims(page, kind, attempt)
    return _verified(page, claims, (page.rt.method_cookie(kind),))


def _verified(page: Page, claims: SessionClaims, cookies: tuple[Any, ...] = ()) -> Reply:
    """The session is verified (its new `claims`); whether the front end should ask "Trust
    this device?" next (as the pages do, or trusted at once by `auto_trust`)."""

    def answered(target: str) -> Reply:
        body = {"state": "done", "verified": True, "trust_offered": target != page.next}
        return page.json(body, claims=claims, cookies=cookies)

    return onward(page, answered)


def send_post(page: Page) -> Reply:
    """Send a new code to the chosen channel (the resend cooldown and hourly cap apply)."""
    kind = _method(page)
    if kind is None:
        return _not_theirs(page)
    if kind not in challenge.CODE_METHODS:
        return page.problem(
            400, "not_a_code_method", N_("Bad request"), N_("This method sends no code.")
        )
    resending = challenge.resend_login_code(page.caller, page.params, page.user)
    return Step(resending, lambda found: _resent(page, kind, *found))


def _resent(page: Page, kind: str, sent: oob.Sent, live: oob.PendingCode | None) -> Reply:
    if live is None:
        return _sent(page, kind, sent)
    return _sent(page, live.channel, sent, live.destination)  # the fallback's, if it went there


def recovery_post(page: Page) -> Reply:
    using = challenge.use_recovery_code(page.caller, page.params, page.form.get("code", ""))
    return Step(using, partial(_recovered, page))


def _recovered(page: Page, result: tuple[Attempt, int]) -> Reply:
    attempt, left = result
    if not attempt.ok:
        return attempt_problem(page, attempt)
    claims = page.rt.upgraded(page.view.claims, epoch=page.user.epoch, method="recovery")
    body = {"state": "done", "verified": True, "recovery_codes_left": left}
    return page.json(body, claims=claims)


# -- enrolling --------------------------------------------------------------------------------


def _enrolled(page: Page, claims: SessionClaims, method: str, user: UserRecord) -> Reply:
    """As the pages' `enrolled`: a first enrollment's recovery codes (once), or, with
    `relogin_after_enrollment`, the login ended and where to sign in again."""
    first = not adding(page)
    finishing = enrollment.finish(
        page.caller, page.params, first=first, before=page.user, after=user
    )
    if first and page.rt.config.pages.relogin_after_enrollment:
        return Step(finishing, partial(_relogin, page))

    def finished(codes: list[str] | None) -> Reply:
        def answered(target: str) -> Reply:  # as the pages: "Trust this device?" or not
            body = {
                "state": "done",
                "enrolled": method,
                "recovery_codes": codes or [],
                "trust_offered": target != page.next,
            }
            return page.json(body, claims=claims)

        return onward(page, answered)

    return Step(finishing, finished)


def _relogin(page: Page, codes: list[str] | None) -> Reply:
    body = {
        "state": "login",
        "enrolled": True,
        "recovery_codes": codes or [],
        "location": relogin_target(page),
    }
    return signing_in_again(page, lambda: page.json(body, ended=True))


def totp_get(page: Page) -> Reply:
    """A secret for an authenticator app: the same for the session (a reload shows the code
    the user may have scanned), as text, as an otpauth:// URI and as an SVG QR code."""
    return Step(enrollment.app_secret(page.caller, page.params), partial(_secret, page))


def _secret(page: Page, secret: str) -> Reply:
    uri = otp.provisioning_uri(secret, page.principal.display_name, page.rt.totp)
    label = page.texts.gettext(N_("QR code to scan with your authenticator app"))
    svg, data_uri = qr_images(uri, label)
    return page.json(
        {
            "secret": secret,
            "otpauth_uri": uri,
            "qr_svg": svg,
            "qr_data_uri": data_uri,
            "digits": page.rt.totp.digits,
        }
    )


def totp_post(page: Page) -> Reply:
    code, name = page.form.get("code", ""), page.form.get("name", "")
    confirming = enrollment.confirm_app(page.caller, page.params, code, name)
    return Step(confirming, partial(_app_confirmed, page))


def _app_confirmed(page: Page, result: Enrolled) -> Reply:
    if result.user is None:
        return attempt_problem(page, result.attempt)
    claims = page.rt.upgraded(page.view.claims, epoch=result.user.epoch, method="totp")
    return _enrolled(page, claims, "totp", result.user)


def passkey_get(page: Page) -> Reply:
    principal = page.principal
    asking = passkeys.creation_options(
        page.caller, page.params, principal.email or principal.display_name, principal.display_name
    )
    return Step(asking, lambda options: page.json({"options": json.loads(options)}))


def passkey_post(page: Page) -> Reply:
    name = authenticators.clean_name(page.form.get("name", ""))
    adding_it = passkeys.add(page.caller, page.params, page.form.get("credential", ""), name)
    return Step(adding_it, partial(_passkey_added, page))


def _passkey_added(page: Page, result: passkeys.Added) -> Reply:
    if result.user is None:
        return page.problem(
            400,
            "passkey_refused",
            N_("Bad request"),
            N_("That passkey could not be added. Try again, or choose another way."),
            reason=result.reason,
        )
    claims = page.rt.upgraded(page.view.claims, epoch=result.user.epoch, method=passkeys.KIND)
    return _enrolled(page, claims, passkeys.KIND, result.user)


def sms_post(page: Page) -> Reply:
    raw, region = page.form.get("phone", "").strip(), page.form.get("region", "")
    try:
        phone = normalise_phone(raw, region, allowed_phone_regions(page))
    except ValueError as exc:
        return page.problem(400, "invalid_phone", N_("Check the number"), str(exc), field="phone")
    return _start(page, "sms", phone)


def email_post(page: Page) -> Reply:
    address = page.principal.email or page.form.get("email", "").strip()
    if not EMAIL_RE.match(address):
        return page.problem(
            400,
            "invalid_email",
            N_("Check the address"),
            N_("Enter a valid email address."),
            field="email",
        )
    return _start(page, "email", address)


def _start(page: Page, channel: str, destination: str) -> Reply:
    starting = enrollment.start(page.caller, page.params, channel, destination)
    return Step(starting, lambda sent: _sent(page, channel, sent, destination))


def code_post(page: Page) -> Reply:
    """The code sent to the new phone or address (or `resend: true` for a new one)."""
    return Step(enrollment.pending(page.caller, page.params), partial(_code_checked, page))


def _code_checked(page: Page, pending: enrollment.PendingEnrollment | None) -> Reply:
    if pending is None:
        return page.problem(
            409,
            "no_pending_code",
            N_("Nothing to confirm"),
            N_("Give a phone number or an address first."),
            state=page.state,
        )
    caller, params = page.caller, page.params
    if page.form.get("resend"):
        resending = enrollment.resend(caller, params, pending)
        return Step(resending, lambda sent: _sent(page, pending.channel, sent, pending.destination))

    def confirmed(result: Enrolled) -> Reply:
        if result.user is None:
            return attempt_problem(page, result.attempt)
        user = result.user
        claims = page.rt.upgraded(page.view.claims, epoch=user.epoch, method=pending.channel)
        done = assigned.fulfilled(page.principal.id, pending.destination)
        return Step(done, lambda _: _enrolled(page, claims, pending.channel, user))

    code = page.form.get("code", "")
    return Step(enrollment.confirm(caller, params, pending, code), confirmed)


def unlock_post(page: Page) -> Reply:
    """The enrollment code an administrator's reset asks for before enrolling: as its page,
    only while one is waiting (else 409), and an expired one says so (no attempt spent)."""

    def entered(code: enroll_code.EnrollCode) -> Reply:
        if code.expires_at <= page.rt.clock():
            return page.problem(
                400,
                "enroll_code_expired",
                N_("Enrollment code"),
                N_(
                    "Your enrollment code has expired. Ask your administrator to reset"
                    " two-step verification again for a new one."
                ),
            )
        unlocking = enrollment.unlock(page.caller, page.params, page.form.get("code", ""))
        return Step(unlocking, partial(_unlocked, page))

    return with_enroll_code(page, entered)


def _unlocked(page: Page, attempt: Attempt) -> Reply:
    if not attempt.ok:
        return attempt_problem(page, attempt)
    return page.json({"state": page.state, "unlocked": True})


# -- after signing in -------------------------------------------------------------------------


def trust_post(page: Page) -> Reply:
    """Trust this browser (`trust: true`) for `trust_duration`, right after a code."""
    if not page.form.get("trust"):
        return page.json({"trusted": False})
    if not page.recently_verified:
        return page.step_up()
    device_id = current_device(page.rt, page.facts, page.principal)
    assert device_id is not None  # the router's `trusting` state
    name = page.form.get("name", "")
    trusting = devices.trust_for(page.caller, device_id, name, page.rt.trust_seconds, "self")
    days = round(page.rt.trust_seconds / 86400)
    return Step(trusting, lambda _: page.json({"trusted": True, "days": days}))


def devices_get(page: Page) -> Reply:
    return Step(devices.devices_of(page.principal.id), partial(_devices, page))


def _devices(page: Page, rows: list[tuple[str, devices.DeviceRecord]]) -> Reply:
    return page.json({"devices": device_rows(page, rows), "trust_devices": trust_open(page)})


def devices_post(page: Page) -> Reply:
    """Rename, trust or delete one of the user's devices (an id not theirs: 404)."""
    device_id, action = page.form.get("device", ""), page.form.get("action", "")
    key = devices.device_key(page.principal.id, device_id)
    return Step(get(key), partial(_device_action, page, device_id, action))


def _device_action(page: Page, device_id: str, action: str, doc: Doc | None) -> Reply:
    if doc is None or not device_id:
        return page.problem(
            404, "not_found", N_("Not found"), N_("That device is not on your list.")
        )
    change = device_change(page, device_id, action, page.url("devices"))
    if change is None:
        return _bad_action(page)
    if isinstance(change, Answer):  # a fresh code first
        return change
    return Step(change, lambda _: devices_get(page))  # the list as it is now


def _bad_action(page: Page) -> Reply:
    return page.problem(400, "bad_action", N_("Bad request"), N_("That action is not offered."))


def authenticators_get(page: Page) -> Reply:
    items = [info.to_dict() for info in ops.authenticator_info(page.user)]
    return page.json({"authenticators": items})


def authenticators_post(page: Page) -> Reply:
    """Rename one, make one the default, or remove one (never the last one)."""
    item_id, action = page.form.get("authenticator", ""), page.form.get("action", "")
    if authenticators.find(page.user, item_id) is None:
        return page.problem(
            404, "not_found", N_("Not found"), N_("That is not one of your ways to sign in.")
        )
    if (changing := authenticator_change(page, item_id, action)) is not None:
        return Step(changing, lambda changed: _listed(page, changed))
    if action == "remove":
        removing = enrollment.remove(page.caller, page.params, item_id)
        return Step(removing, partial(_removed, page))
    return _bad_action(page)


def _listed(page: Page, changed: authenticators.Changed) -> Reply:
    items = [info.to_dict() for info in ops.authenticator_info(changed.user)]
    return page.json({"authenticators": items})


def _removed(page: Page, changed: authenticators.Changed) -> Reply:
    if not changed.ok:
        return page.problem(
            409,
            "last_authenticator",
            N_("Not removed"),
            N_("This is your only way to sign in. Add another first, or turn 2FA off."),
        )
    items = [info.to_dict() for info in ops.authenticator_info(changed.user)]
    return page.json({"authenticators": items}, claims=carried_on(page, changed.user))


def lost_post(page: Page) -> Reply:
    """ "I can't use my device": a link to turn 2FA off, to the app's address of record (its
    page needs the user's login too). `sent` is false where the site cannot send one."""
    if not lost_possible(page):
        return page.json({"sent": False})
    return Step(send_lost_link(page), lambda _: page.json({"sent": True}))


def disable_post(page: Page) -> Reply:
    """Turn 2FA off (a recent code first): the user's factors, recovery codes and trusted
    devices go; this session carries on unverified, every other one ends."""
    resetting = recovery.reset(page.caller, page.params, "self")

    def done(record: UserRecord) -> Reply:
        return page.json({"disabled": True}, claims=restarted(page, record))

    return Step(resetting, done)


def regenerate_post(page: Page) -> Reply:
    """A new set of recovery codes (the old ones stop working)."""
    count = page.rt.config.recovery.code_count or recovery.DEFAULT_COUNT
    issuing = recovery.replace_codes(page.caller, page.params, count)
    return Step(issuing, lambda codes: page.json({"recovery_codes": codes}))


def end_others_post(page: Page) -> Reply:
    """Sign out every other session of this user; this one carries on."""
    return Step(
        ending_others(page),
        lambda record: page.json({"ended_others": True}, claims=carried_on(page, record)),
    )


def logout_post(page: Page) -> Reply:
    """Sign out: this MFA session ends server-side, and the app's login with it."""
    login = page.facts.url(page.rt.config.pages.login_url)
    return signing_out(page, page.json({"state": "login", "location": login}, ended=True))


# -- approving a sign-in from another browser (push) ------------------------------------------


def _push_off(page: Page) -> Reply | None:
    if page.params.push is None:
        return page.problem(404, "not_found", N_("Not found"), N_("There is nothing here."))
    return None


def approval_post(page: Page) -> Reply:
    """Ask the user's approvers to approve this sign-in: the number to show."""
    if (off := _push_off(page)) is not None:
        return off
    if not approvals_offered(page):
        return _no_approver(page)
    asking = approvals.start(page.caller, page.params, page.user, page.url("approve"))
    return Step(asking, partial(_approval_started, page))


def _no_approver(page: Page) -> Reply:
    return page.problem(
        409,
        "no_approver",
        N_("No approver"),
        N_("Make one of your trusted browsers an approver first, in your sign-in settings."),
    )


def _approval_started(page: Page, started: approvals.Started) -> Reply:
    approval = started.approval
    if approval is None and started.reason == "limit":
        return page.problem(
            429,
            "approval_limit",
            N_("Too many approval requests"),
            N_("Wait a few minutes, or use a code."),
            headers=(("retry-after", str(max(1, math.ceil(started.retry_after)))),),
            retry_after=max(1, math.ceil(started.retry_after)),
        )
    if approval is None and started.reason == "none":  # its approvers went meanwhile
        return _no_approver(page)
    if approval is None:  # locked out: for as long as the lockout says (at least a second)
        return _unless_locked(page, lambda: _locked(page, 1.0))
    expires_in = max(0, round(approval.expires_at - page.caller.now))
    body = {"state": approval.state, "number": approval.number, "expires_in": expires_in}
    return page.json({**body, "sent": started.sent})


def approval_finish_post(page: Page) -> Reply:
    """Sign in once an approver approved (as after a right code); else 409 with the state."""
    if (off := _push_off(page)) is not None:
        return off
    return Step(approvals.finish(page.caller, page.params), partial(_approval_finished, page))


def _approval_finished(page: Page, attempt: Attempt) -> Reply:
    if attempt.ok:
        return _verified(page, verified_claims(page, approvals.KIND, attempt))
    return page.problem(
        409,
        "not_approved",
        N_("Not approved"),
        N_("This sign-in was not approved."),
        state=attempt.reason,
    )


APPROVER_REFUSALS = {
    "untrusted": N_(
        "Only a trusted browser can approve sign-ins. Trust this browser first, then try again."
    ),
    "subscription": N_(
        "This browser's notification subscription could not be used. Allow notifications and"
        " try again."
    ),
}


def approvers_post(page: Page) -> Reply:
    """Make this (trusted) browser an approver with its push subscription."""
    if (off := _push_off(page)) is not None:
        return off
    return Step(adding_approver(page), partial(_approver_added, page))


def _approver_added(page: Page, added: approvals.Added) -> Reply:
    if not added.ok or added.item is None:
        detail = APPROVER_REFUSALS.get(added.reason, APPROVER_REFUSALS["subscription"])
        return page.problem(400, f"approver_{added.reason}", N_("Request refused"), detail)
    return page.json({"id": added.item.id, "name": added.item.name})


def approve_get(page: Page) -> Reply:
    """On an approver: the sign-ins waiting for its answer."""
    if (off := _push_off(page)) is not None:
        return off
    device = current_device(page.rt, page.facts, page.principal)
    return Step(approvals.pending(page.caller, device), partial(_waiting_list, page))


def _waiting_list(page: Page, rows: list[approvals.Approval]) -> Reply:
    listed = [
        {
            "id": a.id,
            "browser": a.browser(page.texts),
            "ip": a.ip,
            "created_at": a.created_at,
            "expires_in": max(0, round(a.expires_at - page.caller.now)),
            "choices": a.choices,
        }
        for a in rows
    ]
    return page.json({"approvals": listed})


def approve_post(page: Page) -> Reply:
    """On an approver: the number picked (`choice`), or "deny" for "This wasn't me"."""
    if (off := _push_off(page)) is not None:
        return off
    device = current_device(page.rt, page.facts, page.principal)
    picked = page.form.get("choice", "")
    choice = int(picked) if picked.isdigit() and len(picked) <= 3 else None
    approval_id = page.form.get("approval", "")
    deciding = approvals.decide(page.caller, page.params, device, approval_id, choice)
    return Step(deciding, partial(_decided, page))


def _decided(page: Page, decided: approvals.Decided) -> Reply:
    if decided.outcome in (approvals.APPROVED, approvals.DENIED):
        return page.json({"outcome": decided.outcome})
    status, title, text = ANSWERS.get(decided.outcome, NOT_FOUND)
    return page.problem(status, decided.outcome, title, text)
