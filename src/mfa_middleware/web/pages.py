"""The built-in pages for the second step itself: challenge, enrollment, settings, sign-out.

Each handler is a flow (see `core.effects`), so ASGI, WSGI and Django serve the very same pages.
Every POST needs the CSRF token bound to the MFA session; every page is `no-store`, framed by
nobody, and sends a strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

from mfa_middleware.core import ops, otp
from mfa_middleware.core.effects import Effect, annotated, emit
from mfa_middleware.core.flows import (
    confirm_totp,
    pending_totp,
    verify_totp,
)
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import (
    ALLOW_EXEMPT,
    ALLOW_VERIFIED,
    Allow,
    Challenge,
)
from mfa_middleware.web.code_pages import (
    OOB_METHODS,
    login_code_context,
    masked_factor,
    verify_login_code,
)
from mfa_middleware.web.gate import end_session
from mfa_middleware.web.http import (
    redirect,
)
from mfa_middleware.web.page import Page, PageOutcome, posted
from mfa_middleware.web.qr import qr_svg
from mfa_middleware.web.recovery_pages import enrolled, settings_extra
from mfa_middleware.web.steps import (
    failure_context,
    failure_status,
    lock_notice,
    not_enrollable,
    record_attempt,
    signed_in,
)


def _wants_code(page: Page) -> bool:
    decision = page.view.decision
    return isinstance(decision, Challenge) or (page.reauth and decision == ALLOW_VERIFIED)


def challenge_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if not _wants_code(page):
        return page.where_to()
    locked = yield from lock_notice(page)
    if locked:
        return page.render("challenge.html", 429, reauth=page.reauth, **locked)
    context: dict[str, Any] = {}
    if page.view.state.user.method in OOB_METHODS:
        context = yield from login_code_context(page, send=True)
    return page.render("challenge.html", reauth=page.reauth, **context)


def challenge_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not _wants_code(page):
        return page.where_to()
    rt = page.rt
    method = page.view.state.user.method or "totp"
    if method in OOB_METHODS:
        attempt = yield from verify_login_code(page)
    else:
        attempt = yield from verify_totp(
            page.principal.id,
            page.form.get("code", ""),
            rt.clock(),
            rt.keyring,
            rt.totp,
            rt.limits,
        )
    yield from record_attempt(page, attempt, method, "challenge")
    if not attempt.ok:
        context: dict[str, Any] = {}
        if method in OOB_METHODS:
            context = yield from login_code_context(page, send=False)
        return page.render(
            "challenge.html",
            failure_status(attempt),
            reauth=page.reauth,
            **context,
            **failure_context(attempt),
        )
    claims = rt.upgraded(page.view.claims, epoch=page.view.state.user.epoch, method=method)
    return (yield from signed_in(page, claims))


def enroll_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    elsewhere = yield from not_enrollable(page)
    if elsewhere is not None:
        return elsewhere
    methods = [("totp", page.url("enroll/totp"))]
    methods += [(c, page.url(f"enroll/{c}")) for c in page.rt.code_channels]
    turned_off = page.facts.query_param("off") == "1"
    return page.render("enroll_choose.html", methods=methods, turned_off=turned_off)


def _totp_page(
    page: Page, status: int = 200, **context: Any
) -> Generator[Effect, Any, PageOutcome]:
    rt = page.rt
    secret = yield from pending_totp(
        page.principal.id, page.view.claims.session_id, rt.clock(), rt.keyring
    )
    uri = otp.provisioning_uri(secret, page.principal.display_name, rt.totp)
    qr = qr_svg(uri, rt.translate(N_("QR code to scan with your authenticator app")))
    return page.render(
        "enroll_totp.html", status, qr_svg=qr, secret_groups=otp.group_secret(secret), **context
    )


def enroll_totp_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    elsewhere = yield from not_enrollable(page)
    if elsewhere is not None:
        return elsewhere
    locked = yield from lock_notice(page)
    return (yield from _totp_page(page, 429 if locked else 200, **locked))


def enroll_totp_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    elsewhere = yield from not_enrollable(page)
    if elsewhere is not None:
        return elsewhere
    rt = page.rt
    result = yield from confirm_totp(
        page.principal.id,
        page.view.claims.session_id,
        page.form.get("code", ""),
        rt.clock(),
        rt.keyring,
        rt.totp,
        rt.limits,
    )
    yield from record_attempt(page, result.attempt, "totp", "enroll")
    if result.user is None:
        attempt = result.attempt
        return (yield from _totp_page(page, failure_status(attempt), **failure_context(attempt)))
    yield from emit("enrolled", user=page.principal.id, method="totp", ip=page.facts.client)
    claims = rt.upgraded(page.view.claims, epoch=result.user.epoch, method="totp")
    return (yield from enrolled(page, claims))


def settings_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    decision = page.view.decision
    if not isinstance(decision, Allow):
        return page.where_to()
    extra = yield from settings_extra(page)
    user = page.view.state.user
    return page.render(
        "settings.html",
        mode=page.view.eff.mode,
        enrolled=user.enrolled_in(page.view.state.settings.enroll_epoch),
        method=user.method,
        destination=masked_factor(user),
        enrolled_at=user.enrolled_at,
        exempt=decision == ALLOW_EXEMPT,
        ended=page.facts.query_param("ended") == "1",
        turned_off=page.facts.query_param("off") == "1",
        **extra,
    )


def end_other_sessions_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    """Log out every other session of this user; this one carries on with the new epoch. An
    enrolled user enters a code first (SES-13): a stolen old session must not evict the owner
    and stay in."""
    if (refused := posted(page)) is not None:
        return refused
    if not isinstance(page.view.decision, Allow):
        return page.where_to()
    if page.view.decision == ALLOW_VERIFIED and not page.recently_verified:
        return page.step_up(back=page.url("settings"))
    record = yield from annotated(
        ops.force_logout(page.principal.id, actor="self"), ip=page.facts.client
    )
    claims = replace(page.view.claims, epoch=record.epoch)
    cookie = page.rt.session_cookie(claims, page.view.eff)
    return page.outcome(redirect(page.url("settings?ended=1"), [cookie]))


def logout_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not page.view.fresh:  # end it server-side too: a copy of the cookie replays nothing
        signing_out = end_session(page.rt, page.view.claims, page.principal.id, actor="self")
        yield from annotated(signing_out, ip=page.facts.client)
    response = redirect(
        page.facts.url(page.rt.config.pages.login_url), [page.rt.clear_session_cookie()]
    )
    return PageOutcome(response, end_app_session=True)
