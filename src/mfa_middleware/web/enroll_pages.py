"""The enrollment pages: choosing a method, a passkey or security key (the browser's WebAuthn
ceremony), an authenticator app (QR code and a confirming code), a phone or an address
(verified by a sent code before it is saved), and the enrollment code an administrator's reset
asks for first.

A malformed phone number or address re-renders the page with a message and costs no attempt;
a wrong code costs one. The router lets these pages open only while this session may enroll
(see `web.router.enrolling`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from mfa_middleware.core import (
    assigned,
    authenticators,
    challenge,
    enroll_code,
    enrollment,
    oob,
    otp,
    passkeys,
)
from mfa_middleware.core.effects import Step, annotated
from mfa_middleware.core.flows import Attempt, Enrolled
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.records import UserRecord
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.attempts import failure_context, failure_status, with_lock_notice
from mfa_middleware.web.code_context import resend_context, send_status
from mfa_middleware.web.device_pages import onward, signed_in
from mfa_middleware.web.gate import end_session
from mfa_middleware.web.http import html_response, redirect, with_next
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page
from mfa_middleware.web.phone import allowed_regions, normalise_phone, region_choices
from mfa_middleware.web.qr import qr_svg
from mfa_middleware.web.recovery_pages import codes_download, codes_page

EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def adding(page: Page) -> bool:
    """Enrolled already: a new authenticator is added beside the others."""
    return page.user.enrolled_in(page.view.state.settings.enroll_epoch)


ENROLL_PAGES = {"webauthn": "enroll/passkey", "totp": "enroll/totp", "sms": "enroll/sms"}


def enroll_get(page: Page) -> Reply:
    """The methods to choose from; first, a phone number an administrator set for this user
    (core.assigned), unless they asked for another way."""
    if "sms" not in page.rt.enroll_methods or page.facts.query_param("other") == "1":
        return _choices(page)
    return Step(assigned.pending(page.principal.id), partial(_assigned_first, page))


def _assigned_first(page: Page, phone: assigned.AssignedPhone | None) -> Reply:
    if phone is None:
        return _choices(page)
    return page.go(with_next(page.url("enroll/assigned"), page.next))


def enroll_assigned_get(page: Page) -> Reply:
    """The number an administrator set: a code goes to it at once, as at a sign-in; the code
    page says who set it."""
    return Step(assigned.pending(page.principal.id), partial(_assigned_send, page))


def _assigned_send(page: Page, phone: assigned.AssignedPhone | None) -> Reply:
    if phone is None:
        return page.go(with_next(page.url("enroll?other=1"), page.next))
    starting = enrollment.start(page.caller, page.params, "sms", phone.destination)
    return Step(
        starting,
        lambda sent: page.go(
            with_next(page.url(f"enroll/code?sent={'1' if sent.ok else '0'}&assigned=1"), page.next)
        ),
    )


def _choices(page: Page) -> Reply:
    methods = [(m, page.url(ENROLL_PAGES.get(m, f"enroll/{m}"))) for m in page.rt.enroll_methods]
    turned_off = page.facts.query_param("off") == "1"
    current = authenticators.code_factor(page.user) if adding(page) else None
    return page.render(
        "enroll_choose.html",
        methods=methods,
        turned_off=turned_off,
        adding=adding(page),
        replaces=current.kind if current else "",
        passkeys="webauthn" in page.rt.enroll_methods,
    )


RELOGIN_QUERY = "mfa=enrolled"
"""What the login page's URL carries after a first enrollment ended the app's login
(`relogin_after_enrollment`), so the app can say why its user signs in again."""


def enrolled(page: Page, claims: SessionClaims, user: UserRecord) -> Reply:
    """After an enrollment (the session's new `claims`, the user's new record): a first one
    shows the recovery codes once, then carries on (or, with `relogin_after_enrollment`, ends
    the app's login: the user signs in again with the password and the new factor); a change
    of method keeps the codes and goes straight on."""
    first = not adding(page)
    finishing = enrollment.finish(
        page.caller, page.params, first=first, before=page.user, after=user
    )
    if first and page.rt.config.pages.relogin_after_enrollment:
        return Step(finishing, partial(_sign_in_again, page))
    return Step(finishing, partial(_after_enrollment, page, claims))


def relogin_target(page: Page) -> str:
    """The login page with `?mfa=enrolled` (and `next`), where a first enrollment sends the
    user under `relogin_after_enrollment`."""
    login = page.facts.url(page.rt.config.pages.login_url)
    return with_query(login, RELOGIN_QUERY, page.next)


def signing_in_again(page: Page, then: Callable[[], Reply]) -> Reply:
    """End this MFA session server-side (the answer `then` gives ends the app's login)."""
    ending = end_session(page.rt, page.view.claims, page.principal.id, "system:relogin")
    return Step(annotated(ending, ip=page.facts.client), lambda _: then())


def _sign_in_again(page: Page, codes: list[str] | None) -> Reply:
    """End this login, here and in the app (its MFA session server-side too), and send the
    user to the login page with `?mfa=enrolled`, by way of the recovery codes (shown once, on
    a page that belongs to no session any more)."""
    rt = page.rt
    target = relogin_target(page)
    cookies = [rt.clear_session_cookie()]

    def ended() -> Reply:
        if codes is None:
            return page.answer(redirect(target, cookies), end_app_session=True)
        body = rt.renderer.render(
            "recovery_codes.html",
            page.texts,
            csrf_token="",  # no sign-out form: the session is over
            user="",
            next=page.next,
            prefix=page.prefix,
            codes=codes,
            continue_to=target,
            download=codes_download(rt.config.pages.app_name, codes),
            relogin=True,
        )
        return page.answer(html_response(200, body, cookies), end_app_session=True)

    return signing_in_again(page, ended)


def with_query(url: str, query: str, next_path: str) -> str:
    """`url` with `query` and, unless it is the home page, `next` added."""
    return with_next(f"{url}{'&' if '?' in url else '?'}{query}", next_path)


def _after_enrollment(page: Page, claims: SessionClaims, codes: list[str] | None) -> Reply:
    if codes is None:
        return signed_in(page, claims)
    return onward(page, lambda target: codes_page(page, codes, target, claims))


# -- an authenticator app ---------------------------------------------------------------------


def enroll_totp_get(page: Page) -> Reply:
    return with_lock_notice(page, lambda locked: _app_page(page, 429 if locked else 200, **locked))


def _app_page(page: Page, status: int = 200, **context: Any) -> Reply:
    """The QR code and the secret (the same for the same session: a reload shows the code the
    user may already have scanned)."""
    return Step(
        enrollment.app_secret(page.caller, page.params),
        lambda secret: _app_page_with(page, secret, status, context),
    )


def _app_page_with(page: Page, secret: str, status: int, context: dict[str, Any]) -> Reply:
    rt = page.rt
    uri = otp.provisioning_uri(secret, page.principal.display_name, rt.totp)
    qr = qr_svg(uri, page.texts.gettext(N_("QR code to scan with your authenticator app")))
    groups = otp.group_secret(secret)
    return page.render(
        "enroll_totp.html", status, qr_svg=qr, secret_groups=groups, adding=adding(page), **context
    )


def enroll_totp_post(page: Page) -> Reply:
    code, name = page.form.get("code", ""), page.form.get("name", "")
    confirming = enrollment.confirm_app(page.caller, page.params, code, name)
    return Step(confirming, partial(_app_confirmed, page))


def _app_confirmed(page: Page, result: Enrolled) -> Reply:
    if result.user is None:
        attempt = result.attempt
        return _app_page(page, failure_status(attempt), **failure_context(attempt))
    claims = page.rt.upgraded(page.view.claims, epoch=result.user.epoch, method="totp")
    return enrolled(page, claims, result.user)


# -- a passkey or a security key --------------------------------------------------------------


def enroll_passkey_get(page: Page) -> Reply:
    return _passkey_page(page)


def _passkey_page(page: Page, status: int = 200, reason: str = "", name: str = "") -> Reply:
    """The page that asks the browser for a new passkey (a new challenge each time)."""
    principal = page.principal
    asking = passkeys.creation_options(
        page.caller, page.params, principal.email or principal.display_name, principal.display_name
    )
    return Step(
        asking,
        lambda options: page.render(
            "enroll_passkey.html",
            status,
            options=options,
            reason=reason,
            name=name,
            adding=adding(page),
            scripts=True,
        ),
    )


def enroll_passkey_post(page: Page) -> Reply:
    name = authenticators.clean_name(page.form.get("name", ""))
    adding = passkeys.add(page.caller, page.params, page.form.get("credential", ""), name)
    return Step(adding, partial(_passkey_added, page, name))


def _passkey_added(page: Page, name: str, result: passkeys.Added) -> Reply:
    if result.user is None:
        return _passkey_page(page, 400, result.reason, name)
    claims = page.rt.upgraded(page.view.claims, epoch=result.user.epoch, method=passkeys.KIND)
    return enrolled(page, claims, result.user)


# -- a phone or an address --------------------------------------------------------------------


def allowed_phone_regions(page: Page) -> tuple[str, ...] | None:
    return allowed_regions(page.rt.config.codes.sms_regions)


def _phone_page(
    page: Page, status: int = 200, error: str = "", phone: str = "", region: str = ""
) -> Reply:
    return page.render(
        "enroll_phone.html",
        status,
        error=error,
        phone=phone,
        regions=region_choices(allowed_phone_regions(page), page.texts),
        region=(region or page.rt.config.codes.default_region).upper(),
    )


def enroll_sms_get(page: Page) -> Reply:
    return _phone_page(page)


def enroll_sms_post(page: Page) -> Reply:
    raw, region = page.form.get("phone", "").strip(), page.form.get("region", "")
    try:
        phone = normalise_phone(raw, region, allowed_phone_regions(page))
    except ValueError as exc:
        return _phone_page(page, 400, str(exc), raw[:40], region[:3])
    return _verify_contact(page, "sms", phone)


def enroll_email_get(page: Page) -> Reply:
    email = page.principal.email
    return page.render("enroll_email.html", email=email or "", fixed=bool(email))


def enroll_email_post(page: Page) -> Reply:
    address = page.principal.email or page.form.get("email", "").strip()
    if not EMAIL_RE.match(address):
        return page.render(
            "enroll_email.html",
            400,
            email=address[:254],
            fixed=False,
            error=N_("Enter a valid email address."),
        )
    return _verify_contact(page, "email", address)


def _verify_contact(page: Page, channel: str, destination: str) -> Reply:
    starting = enrollment.start(page.caller, page.params, channel, destination)
    return Step(starting, partial(_code_sent, page))


def _code_sent(page: Page, sent: oob.Sent) -> Reply:
    sent_flag = "1" if sent.ok else "0"
    return page.go(with_next(page.url(f"enroll/code?sent={sent_flag}"), page.next))


def enroll_code_get(page: Page) -> Reply:
    return Step(enrollment.pending(page.caller, page.params), partial(_code_get, page))


def _code_get(page: Page, pending: enrollment.PendingEnrollment | None) -> Reply:
    if pending is None:
        return page.go(page.url("enroll"))
    failed = page.facts.query_param("sent") == "0"

    def shown(locked: dict[str, Any], by: str = "") -> Reply:
        status = 429 if locked else 503 if failed else 200
        return _code_page(page, pending, status, send_failed=failed, assigned_by=by, **locked)

    if page.facts.query_param("assigned") == "1" and pending.channel == "sms":
        # who set this number: the user is told, and may choose another way
        def told(phone: assigned.AssignedPhone | None) -> Reply:
            mine = phone is not None and phone.destination == pending.destination
            by = phone.set_by if mine and phone is not None else ""
            return with_lock_notice(page, lambda locked: shown(locked, by))

        return Step(assigned.pending(page.principal.id), told)
    return with_lock_notice(page, shown)


def _code_page(
    page: Page, pending: enrollment.PendingEnrollment, status: int = 200, **context: Any
) -> Reply:
    def shown(live: oob.PendingCode | None) -> Reply:
        return page.render(
            "enroll_code.html",
            status,
            channel=pending.channel,
            masked=oob.mask(pending.channel, pending.destination),
            expired=live is None,
            **context,
        )

    return Step(challenge.live_code(page.caller, "enroll"), shown)


def enroll_code_post(page: Page) -> Reply:
    return Step(enrollment.pending(page.caller, page.params), partial(_code_post, page))


def _code_post(page: Page, pending: enrollment.PendingEnrollment | None) -> Reply:
    if pending is None:
        return page.go(page.url("enroll"))
    caller, params = page.caller, page.params
    if page.form.get("action") == "resend":

        def resent(sent: oob.Sent) -> Reply:
            context = resend_context(sent)
            return _code_page(page, pending, send_status(sent), resent=sent.ok, **context)

        return Step(enrollment.resend(caller, params, pending), resent)

    def confirmed(result: Enrolled) -> Reply:
        if result.user is None:
            attempt = result.attempt
            return _code_page(page, pending, failure_status(attempt), **failure_context(attempt))
        user = result.user
        claims = page.rt.upgraded(page.view.claims, epoch=user.epoch, method=pending.channel)
        done = assigned.fulfilled(page.principal.id, pending.destination)
        return Step(done, lambda _: enrolled(page, claims, user))

    code = page.form.get("code", "")
    return Step(enrollment.confirm(caller, params, pending, code), confirmed)


# -- the enrollment code after an administrator's reset ---------------------------------------


def with_enroll_code(page: Page, then: Callable[[enroll_code.EnrollCode], Reply]) -> Reply:
    """`then` with the enrollment code this session must still enter; when there is none
    (entered already, or none asked), on to enrolling."""

    def found(code: enroll_code.EnrollCode | None) -> Reply:
        if code is None:
            return page.go(with_next(page.url("enroll"), page.next))
        return then(code)

    return Step(enroll_code.blocking(page.principal.id, page.caller.session_hash), found)


def unlock_get(page: Page) -> Reply:
    def shown(code: enroll_code.EnrollCode) -> Reply:
        expired = code.expires_at <= page.rt.clock()
        return with_lock_notice(
            page,
            lambda locked: page.render(
                "enroll_unlock.html", 429 if locked else 200, expired=expired, **locked
            ),
        )

    return with_enroll_code(page, shown)


def unlock_post(page: Page) -> Reply:
    def entered(code: enroll_code.EnrollCode) -> Reply:
        if code.expires_at <= page.rt.clock():
            return page.render("enroll_unlock.html", 400, expired=True)
        unlocking = enrollment.unlock(page.caller, page.params, page.form.get("code", ""))
        return Step(unlocking, partial(_unlocked, page))

    return with_enroll_code(page, entered)


def _unlocked(page: Page, attempt: Attempt) -> Reply:
    if not attempt.ok:
        status, context = failure_status(attempt), failure_context(attempt)
        return page.render("enroll_unlock.html", status, **context)
    return page.go(with_next(page.url("enroll"), page.next))
