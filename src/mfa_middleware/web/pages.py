"""The built-in pages for the second step itself: challenge, enrollment, settings, sign-out.

Each handler is a flow (see `core.effects`), so ASGI, WSGI and Django serve the very same pages.
Every POST needs the CSRF token bound to the MFA session; every page is `no-store`, framed by
nobody, and sends a strict Content-Security-Policy.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import segno

from mfa_middleware.core import ops, otp
from mfa_middleware.core.effects import Effect, emit
from mfa_middleware.core.flows import (
    Attempt,
    confirm_totp,
    pending_totp,
    throttle_state,
    verify_totp,
)
from mfa_middleware.core.policy import (
    ALLOW_EXEMPT,
    ALLOW_NOT_ENROLLED,
    ALLOW_VERIFIED,
    Allow,
    Challenge,
    Enroll,
)
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.device_pages import after_verification
from mfa_middleware.web.http import (
    redirect,
)
from mfa_middleware.web.page import Page, PageOutcome, posted, wait_text


def _failure_context(attempt: Attempt) -> dict[str, Any]:
    if attempt.locked:
        return {
            "locked": True,
            "permanent": math.isinf(attempt.retry_after),
            "wait": wait_text(attempt.retry_after),
        }
    left = attempt.attempts_left
    noun = "attempt" if left == 1 else "attempts"
    return {"error": f"That code didn't work. Check your app and try again ({left} {noun} left)."}


def _failure_status(attempt: Attempt) -> int:
    return 429 if attempt.locked else 400


def _record_attempt(
    page: Page, attempt: Attempt, method: str, step: str
) -> Generator[Effect, Any, None]:
    fields = {"user": page.principal.id, "method": method, "step": step, "ip": page.facts.client}
    if attempt.ok:
        yield from emit("verify_succeeded", **fields)
        return
    if attempt.replayed:
        yield from emit("totp_replay", **fields)
    yield from emit("verify_failed", **fields, locked=attempt.locked)


def _wants_code(page: Page) -> bool:
    decision = page.view.decision
    return isinstance(decision, Challenge) or (page.reauth and decision == ALLOW_VERIFIED)


def challenge_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if not _wants_code(page):
        return page.where_to()
    state = yield from throttle_state(page.principal.id)
    now = page.rt.clock()
    if state.locked(now, page.rt.limits):
        retry = state.retry_after(now, page.rt.limits)
        return page.render(
            "challenge.html",
            429,
            locked=True,
            permanent=math.isinf(retry),
            wait=wait_text(retry),
            reauth=page.reauth,
        )
    return page.render("challenge.html", reauth=page.reauth)


def challenge_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not _wants_code(page):
        return page.where_to()
    rt = page.rt
    attempt = yield from verify_totp(
        page.principal.id, page.form.get("code", ""), rt.clock(), rt.keyring, rt.totp, rt.limits
    )
    yield from _record_attempt(page, attempt, "totp", "challenge")
    if not attempt.ok:
        return page.render(
            "challenge.html",
            _failure_status(attempt),
            reauth=page.reauth,
            **_failure_context(attempt),
        )
    claims = rt.upgraded(page.view.claims, epoch=page.view.state.user.epoch, method="totp")
    return (yield from _signed_in(page, claims))


def _signed_in(page: Page, claims: SessionClaims) -> Generator[Effect, Any, PageOutcome]:
    """The session is verified: on to `next`, by way of "Trust this device?" when trusting is
    on and this browser is not trusted yet (or trusted at once when `auto_trust` says so)."""
    cookie = page.rt.session_cookie(claims, page.view.eff)
    marker = claims.session_id if page.app.writable else None
    target = yield from after_verification(page)
    return PageOutcome(redirect(target, [cookie]), marker)


def _not_enrollable(page: Page) -> PageOutcome | None:
    """None when this user may (re-)enroll now; else where to go instead. Replacing a factor
    needs a recent verification (step-up), so a stolen session cannot swap the factor."""
    decision = page.view.decision
    if isinstance(decision, Enroll) or decision == ALLOW_NOT_ENROLLED:
        return None
    if decision == ALLOW_VERIFIED:
        if page.recently_verified:
            return None
        return page.step_up()
    return page.where_to()


def enroll_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (elsewhere := _not_enrollable(page)) is not None:
        return elsewhere
    yield from ()
    return page.render("enroll_choose.html", methods=[("totp", page.rt.url("enroll/totp"))])


def _totp_page(
    page: Page, status: int = 200, **context: Any
) -> Generator[Effect, Any, PageOutcome]:
    rt = page.rt
    secret = yield from pending_totp(
        page.principal.id, page.view.claims.session_id, rt.clock(), rt.keyring
    )
    uri = otp.provisioning_uri(secret, page.principal.display_name, rt.totp)
    qr = segno.make(uri, error="m").svg_inline(scale=5, omitsize=False, title="QR code")
    return page.render(
        "enroll_totp.html", status, qr_svg=qr, secret_groups=otp.group_secret(secret), **context
    )


def enroll_totp_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (elsewhere := _not_enrollable(page)) is not None:
        return elsewhere
    return (yield from _totp_page(page))


def enroll_totp_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if (elsewhere := _not_enrollable(page)) is not None:
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
    yield from _record_attempt(page, result.attempt, "totp", "enroll")
    if result.user is None:
        attempt = result.attempt
        return (yield from _totp_page(page, _failure_status(attempt), **_failure_context(attempt)))
    yield from emit("enrolled", user=page.principal.id, method="totp", ip=page.facts.client)
    claims = rt.upgraded(page.view.claims, epoch=result.user.epoch, method="totp")
    return (yield from _signed_in(page, claims))


def settings_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    decision = page.view.decision
    if not isinstance(decision, Allow):
        return page.where_to()
    yield from ()
    user = page.view.state.user
    return page.render(
        "settings.html",
        mode=page.view.eff.mode,
        enrolled=user.enrolled_in(page.view.state.settings.enroll_epoch),
        method=user.method,
        enrolled_at=user.enrolled_at,
        exempt=decision == ALLOW_EXEMPT,
        ended=page.facts.query_param("ended") == "1",
    )


def end_other_sessions_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    """Log out every other session of this user; this one carries on with the new epoch."""
    if (refused := posted(page)) is not None:
        return refused
    if not isinstance(page.view.decision, Allow):
        return page.where_to()
    record = yield from ops.force_logout(page.principal.id, actor="self")
    claims = replace(page.view.claims, epoch=record.epoch)
    cookie = page.rt.session_cookie(claims, page.view.eff)
    return page.outcome(redirect(page.rt.url("settings?ended=1"), [cookie]))


def logout_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    yield from emit("signed_out", user=page.principal.id, ip=page.facts.client)
    response = redirect(page.rt.config.login_url, [page.rt.clear_session_cookie()])
    return PageOutcome(response, end_app_session=True)
