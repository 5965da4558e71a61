"""The second step's pages: the code of the method the user chose (an authenticator app's, or
one sent by SMS or email, with resending) or their passkey, "Try another way", and signing in
with a recovery code instead."""

from __future__ import annotations

from functools import partial
from typing import Any

from mfa_middleware.core import approvals, authenticators, challenge, oob, passkeys, recovery
from mfa_middleware.core.effects import Step
from mfa_middleware.core.flows import Attempt
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.runtime import METHOD_COOKIE
from mfa_middleware.web.attempts import failure_context, failure_status, with_lock_notice
from mfa_middleware.web.code_context import send_status, sent_context
from mfa_middleware.web.device_pages import signed_in
from mfa_middleware.web.http import with_next
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def chosen(page: Page) -> str:
    """The kind of authenticator this challenge asks for: the one the user picked ("Try
    another way"), else the one this browser used last, else the user's default."""
    offered = authenticators.kinds(page.user)
    wanted = (page.form.get("via"), page.facts.query_param("via"), page.facts.cookie(METHOD_COOKIE))
    for kind in wanted:
        if kind in offered:
            return kind
    return offered[0] if offered else "totp"


def _stepup(page: Page) -> str:
    """Why a page of the app sent a verified user here ("1"; "post": a form was refused),
    or "" (signing in, or a sensitive change of our own)."""
    asked = page.form.get("stepup") or page.facts.query_param("stepup") or ""
    return asked if page.reauth and asked in ("1", "post") else ""


def _challenge_page(page: Page, kind: str, status: int = 200, **context: Any) -> Reply:
    others = len(authenticators.kinds(page.user)) > 1
    return page.render(
        "challenge.html",
        status,
        reauth=page.reauth,
        stepup=_stepup(page),
        method=kind,
        others=others,
        approvable=approvals_offered(page),
        **context,
    )


def approvals_offered(page: Page) -> bool:
    """ "Approve on another device" (`web.approval_pages`): push is on, the user has an
    approver, and this is a sign-in (a step-up asks for a code or passkey)."""
    push_on = page.params.push is not None
    return push_on and bool(approvals.approvers(page.user)) and not page.reauth


def challenge_get(page: Page) -> Reply:
    return with_lock_notice(page, partial(_challenge_shown, page, chosen(page)))


def _challenge_shown(page: Page, kind: str, locked: dict[str, Any]) -> Reply:
    if locked:
        return _challenge_page(page, kind, 429, **locked)
    if kind == passkeys.KIND:
        return _passkey_challenge(page)
    if kind not in challenge.CODE_METHODS:
        return _challenge_page(page, kind)
    sending = challenge.login_code(page.caller, page.params, page.user, send_first=True)
    return Step(sending, lambda found: _challenge_page(page, kind, **sent_context(*found)))


def _passkey_challenge(page: Page, status: int = 200, **context: Any) -> Reply:
    """The passkey prompt, with a new challenge for this session."""
    asking = passkeys.request_options(page.caller, page.params, page.user)
    return Step(
        asking,
        lambda options: _challenge_page(
            page, passkeys.KIND, status, options=options, scripts=True, **context
        ),
    )


def challenge_post(page: Page) -> Reply:
    kind = chosen(page)
    code = page.form.get("credential" if kind == passkeys.KIND else "code", "")
    checking = challenge.verify(page.caller, page.params, page.user, kind, code)
    return Step(checking, partial(_checked, page, kind))


def verified_claims(page: Page, kind: str, attempt: Attempt) -> SessionClaims:
    """The session's claims after a right answer of `kind` (a synced passkey or a device-bound
    one named apart: `amr` swk or hwk)."""
    method = passkeys.session_method(page.user, attempt.factor) if kind == "webauthn" else kind
    return page.rt.upgraded(page.view.claims, epoch=page.user.epoch, method=method)


def _checked(page: Page, kind: str, attempt: Attempt) -> Reply:
    if attempt.ok:
        claims = verified_claims(page, kind, attempt)
        return signed_in(page, claims, page.rt.method_cookie(kind))
    status, failed = failure_status(attempt), failure_context(attempt)
    if kind == passkeys.KIND and not attempt.locked:
        return _passkey_challenge(page, status, **failed)
    if kind not in challenge.CODE_METHODS:
        return _challenge_page(page, kind, status, **failed)
    finding = challenge.login_code(page.caller, page.params, page.user, send_first=False)
    return Step(
        finding, lambda found: _challenge_page(page, kind, status, **sent_context(*found), **failed)
    )


def resend_post(page: Page) -> Reply:
    kind = chosen(page)
    if kind not in challenge.CODE_METHODS:
        return page.where_to()
    resending = challenge.resend_login_code(page.caller, page.params, page.user)
    return Step(resending, partial(_resent, page, kind))


def _resent(page: Page, kind: str, found: tuple[oob.Sent, oob.PendingCode | None]) -> Reply:
    sent, live = found
    status = send_status(sent)
    return _challenge_page(page, kind, status, resent=sent.ok, **sent_context(sent, live))


def other_ways_get(page: Page) -> Reply:
    """Every method the user has, a recovery code, and "I can't use any of these"."""
    reauth = "&reauth=1" if page.reauth else ""
    methods = [
        (kind, with_next(page.url(f"challenge?via={kind}{reauth}"), page.next))
        for kind in authenticators.kinds(page.user)
    ]
    back = with_next(page.url("challenge" + ("?reauth=1" if page.reauth else "")), page.next)
    return page.render("challenge_other.html", methods=methods, reauth=page.reauth, back=back)


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
