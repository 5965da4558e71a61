"""The second step's pages: the code (an authenticator app's, or one sent by SMS or email,
with resending), and signing in with a recovery code instead."""

from __future__ import annotations

from functools import partial
from typing import Any

from mfa_middleware.core import challenge, oob, recovery
from mfa_middleware.core.effects import Step
from mfa_middleware.core.flows import Attempt
from mfa_middleware.web.attempts import failure_context, failure_status, with_lock_notice
from mfa_middleware.web.code_context import send_status, sent_context
from mfa_middleware.web.device_pages import signed_in
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def _sends_codes(page: Page) -> bool:
    return page.user.method in challenge.CODE_METHODS


def _challenge_page(page: Page, status: int = 200, **context: Any) -> Reply:
    return page.render("challenge.html", status, reauth=page.reauth, **context)


def challenge_get(page: Page) -> Reply:
    return with_lock_notice(page, partial(_challenge_shown, page))


def _challenge_shown(page: Page, locked: dict[str, Any]) -> Reply:
    if locked:
        return _challenge_page(page, 429, **locked)
    if not _sends_codes(page):
        return _challenge_page(page)
    sending = challenge.login_code(page.caller, page.params, page.user, send_first=True)
    return Step(sending, lambda found: _challenge_page(page, **_code_context(page, *found)))


def _code_context(
    page: Page, sent: oob.Sent | None, live: oob.PendingCode | None
) -> dict[str, Any]:
    return {"method": page.user.method, **sent_context(sent, live)}


def challenge_post(page: Page) -> Reply:
    code = page.form.get("code", "")
    return Step(
        challenge.verify(page.caller, page.params, page.user, code), partial(_checked, page)
    )


def _checked(page: Page, attempt: Attempt) -> Reply:
    if attempt.ok:
        method = page.user.method or "totp"
        claims = page.rt.upgraded(page.view.claims, epoch=page.user.epoch, method=method)
        return signed_in(page, claims)
    status, failed = failure_status(attempt), failure_context(attempt)
    if not _sends_codes(page):
        return _challenge_page(page, status, **failed)
    finding = challenge.login_code(page.caller, page.params, page.user, send_first=False)
    return Step(
        finding,
        lambda found: _challenge_page(page, status, **_code_context(page, *found), **failed),
    )


def resend_post(page: Page) -> Reply:
    if not _sends_codes(page):
        return page.where_to()
    resending = challenge.resend_login_code(page.caller, page.params, page.user)
    return Step(resending, partial(_resent, page))


def _resent(page: Page, found: tuple[oob.Sent, oob.PendingCode | None]) -> Reply:
    sent, live = found
    context = _code_context(page, sent, live)
    return _challenge_page(page, send_status(sent), resent=sent.ok, **context)


# -- recovery codes ---------------------------------------------------------------------------


def recovery_get(page: Page) -> Reply:
    return with_lock_notice(
        page, lambda locked: page.render("recovery_use.html", 429 if locked else 200, **locked)
    )


def recovery_post(page: Page) -> Reply:
    code = page.form.get("code", "")
    using = challenge.use_recovery_code(page.caller, page.params, code)
    return Step(using, partial(_recovered, page))


def _recovered(page: Page, result: tuple[Attempt, int]) -> Reply:
    attempt, left = result
    if not attempt.ok:
        context = failure_context(attempt)
        return page.render("recovery_use.html", failure_status(attempt), **context)
    claims = page.rt.upgraded(page.view.claims, epoch=page.user.epoch, method="recovery")
    # how many are left, and a new set offered at once (RC-05); no trust prompt after recovery
    return page.render(
        "recovery_used.html", claims=claims, codes_left=left, few_left=left <= recovery.FEW_LEFT
    )
