"""Pages for getting back in and starting over: recovery codes (shown once at enrollment,
used at the challenge, regenerated from the settings), the lost-device email link, and turning
2FA off. Each change is confirmed, needs a recent code where it weakens the account, and is
announced to the user by email."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from mfa_middleware.core import enroll_code, recovery
from mfa_middleware.core.effects import Effect, Key, annotated, get
from mfa_middleware.core.i18n import N_, NP_
from mfa_middleware.core.policy import ALLOW_NOT_ENROLLED, ALLOW_VERIFIED, Allow, Challenge, Enroll
from mfa_middleware.core.tokens import SessionClaims, csrf_token
from mfa_middleware.web.device_pages import after_verification
from mfa_middleware.web.http import html_response, redirect, with_next
from mfa_middleware.web.notices import notify
from mfa_middleware.web.page import Page, PageOutcome, posted
from mfa_middleware.web.steps import failure_context, failure_status, lock_notice, record_attempt

RESEND_LINK_AFTER = 300.0


def enrolled(page: Page, claims: SessionClaims) -> Generator[Effect, Any, PageOutcome]:
    """After a first enrollment: show the recovery codes once, then carry on. Later
    enrollments (a change of method) keep the existing codes and go straight on."""
    yield from enroll_code.finish(page.principal.id)
    cookie = page.rt.session_cookie(claims, page.view.eff)
    marker = claims.session_id if page.app.writable else None
    target = yield from after_verification(page)
    left = yield from recovery.codes_left(page.principal.id)
    first = page.view.state.user.method is None
    yield from notify(
        page,
        N_("two-step verification turned on") if first else N_("two-step verification changed"),
        N_("Two-step verification is now on for your account.")
        if first
        else N_("The way you receive sign-in codes was changed."),
    )
    if left is not None or page.rt.config.recovery.code_count == 0:
        return PageOutcome(redirect(target, [cookie]), marker)
    count = page.rt.config.recovery.code_count
    codes = yield from recovery.issue_codes(
        page.principal.id, page.rt.clock(), page.rt.keyring, count
    )
    return PageOutcome(_codes_page(page, codes, target, [cookie]), marker)


def _codes_page(page: Page, codes: list[str], target: str, cookies: Any = None) -> Any:
    body = page.rt.renderer.render(
        "recovery_codes.html",
        codes=codes,
        continue_to=target,
        csrf_token=page.csrf,
        next=page.next,
        user=page.principal.display_name,
        prefix=page.prefix,
        download="data:text/plain;charset=utf-8,"
        + quote(f"{page.rt.config.pages.app_name} recovery codes\n\n" + "\n".join(codes) + "\n"),
    )
    return html_response(200, body, cookies if cookies is not None else page.view.cookies)


def recovery_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if not isinstance(page.view.decision, Challenge):
        return page.where_to()
    locked = yield from lock_notice(page)
    return page.render("recovery_use.html", 429 if locked else 200, **locked)


def recovery_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not isinstance(page.view.decision, Challenge):
        return page.where_to()
    rt = page.rt
    attempt = yield from recovery.use_code(
        page.principal.id, page.form.get("code", ""), rt.clock(), rt.keyring, rt.limits
    )
    yield from record_attempt(page, attempt, "recovery", "challenge")
    if not attempt.ok:
        context = failure_context(attempt)
        return page.render("recovery_use.html", failure_status(attempt), **context)
    left = (yield from recovery.codes_left(page.principal.id)) or 0
    yield from notify(
        page,
        N_("a recovery code was used"),
        N_(
            "One of your recovery codes was just used to sign in. It no longer works; you have"
            " {left} unused codes left."
        ),
        left=left,
    )
    claims = rt.upgraded(page.view.claims, epoch=page.view.state.user.epoch, method="recovery")
    cookie = rt.session_cookie(claims, page.view.eff)
    marker = claims.session_id if page.app.writable else None
    # how many are left, and a new set offered at once (RC-05); no trust prompt after recovery
    body = rt.renderer.render(
        "recovery_used.html",
        codes_left=left,
        few_left=left <= recovery.FEW_LEFT,
        csrf_token=csrf_token(rt.keyring, claims.session_id),  # the new session's
        next=page.next,
        user=page.principal.display_name,
        prefix=page.prefix,
    )
    return PageOutcome(html_response(200, body, [cookie]), marker)


def _unlock_page(page: Page, status: int = 200, **context: Any) -> PageOutcome:
    return page.render("enroll_unlock.html", status, **context)


def _unlock_state(page: Page) -> Generator[Effect, Any, PageOutcome | enroll_code.EnrollCode]:
    """The pending enrollment code, or where to go when none is asked of this session."""
    if not (isinstance(page.view.decision, Enroll) or page.view.decision == ALLOW_NOT_ENROLLED):
        return page.where_to()
    code = yield from enroll_code.blocking(page.principal.id, page.session_hash)
    if code is None:
        return page.go(with_next(page.url("enroll"), page.next))
    return code


def unlock_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    state = yield from _unlock_state(page)
    if isinstance(state, PageOutcome):
        return state
    locked = yield from lock_notice(page)
    expired = state.expires_at <= page.rt.clock()
    return _unlock_page(page, 429 if locked else 200, expired=expired, **locked)


def unlock_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    state = yield from _unlock_state(page)
    if isinstance(state, PageOutcome):
        return state
    rt = page.rt
    if state.expires_at <= rt.clock():
        return _unlock_page(page, 400, expired=True)
    attempt = yield from enroll_code.unlock(
        page.principal.id,
        page.form.get("code", ""),
        page.session_hash,
        rt.clock(),
        rt.keyring,
        rt.limits,
    )
    yield from record_attempt(page, attempt, "enroll_code", "enroll")
    if not attempt.ok:
        return _unlock_page(page, failure_status(attempt), **failure_context(attempt))
    return page.go(with_next(page.url("enroll"), page.next))


def regenerate_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if page.view.decision != ALLOW_VERIFIED:
        return page.where_to()
    if not page.recently_verified:
        return page.go(with_next(page.url("challenge?reauth=1"), page.url("settings")))
    count = page.rt.config.recovery.code_count or recovery.DEFAULT_COUNT
    codes = yield from recovery.issue_codes(
        page.principal.id, page.rt.clock(), page.rt.keyring, count
    )
    yield from notify(
        page,
        N_("new recovery codes"),
        N_("New recovery codes were created; the old ones no longer work."),
    )
    back = page.next if "next" in page.form else page.url("settings")
    return page.outcome(_codes_page(page, codes, back))


# -- lost device ----------------------------------------------------------------------------


def _lost_possible(page: Page) -> bool:
    """The link goes to the app's address of record only, never to one a factor's enrollment
    supplied (which an attacker with the password could have set)."""
    return (
        bool(page.rt.config.recovery.public_url)
        and "email" in page.rt.delivery.channels()
        and bool(page.principal.email)
    )


def lost_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if not isinstance(page.view.decision, Challenge):
        return page.where_to()
    yield from ()
    return page.render("lost.html", possible=_lost_possible(page))


def lost_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not isinstance(page.view.decision, Challenge):
        return page.where_to()
    rt = page.rt
    if _lost_possible(page):
        link = recovery.ResetLink.from_doc((yield from get(Key("reset_link", page.principal.id))))
        recently = (
            link.expires_at - rt.config.recovery.reset_link_ttl > rt.clock() - RESEND_LINK_AFTER
        )
        if not recently:
            token = yield from recovery.issue_reset_link(
                page.principal.id, rt.clock(), rt.config.recovery.reset_link_ttl, rt.keyring
            )
            url = f"{rt.config.recovery.public_url}{page.url('lost/confirm')}?token={token}"
            yield from notify(
                page,
                N_("reset two-step verification"),
                NP_(
                    "Someone signed in with your password and asked to reset two-step "
                    "verification because they can't use their device.\n\nTo reset it and set "
                    "it up again, open this link while signed in (it works once, for {count} "
                    "minute):\n\n{url}",
                    "Someone signed in with your password and asked to reset two-step "
                    "verification because they can't use their device.\n\nTo reset it and set "
                    "it up again, open this link while signed in (it works once, for {count} "
                    "minutes):\n\n{url}",
                ),
                count=max(1, round(rt.config.recovery.reset_link_ttl / 60)),
                url=url,
            )
    return page.render("lost.html", sent=True, possible=True)


def lost_confirm_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    token = (page.facts.query_param("token") or "")[:100]
    rt = page.rt
    if not (yield from recovery.reset_link_valid(page.principal.id, token, rt.clock(), rt.keyring)):
        return page.render("lost_confirm.html", 400, token="", invalid=True)
    return page.render("lost_confirm.html", token=token)


def lost_confirm_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    """Spending the emailed link needs the same user's primary login (this request's user),
    so the email alone never removes the second factor."""
    if (refused := posted(page)) is not None:
        return refused
    rt = page.rt
    ok = yield from recovery.spend_reset_link(
        page.principal.id, page.form.get("token", ""), rt.clock(), rt.keyring
    )
    if not ok:
        return page.render("lost_confirm.html", 400, token="", invalid=True)
    return (yield from _reset_and_restart(page, "self:lost-device"))


def _reset_and_restart(page: Page, actor: str) -> Generator[Effect, Any, PageOutcome]:
    """Reset the user's 2FA and carry on in this browser as an unverified session (every other
    session ends): the user enrolls again, or continues unenrolled in optional mode."""
    record = yield from annotated(
        recovery.reset_user(page.principal.id, actor), ip=page.facts.client
    )
    yield from notify(
        page,
        N_("two-step verification was reset"),
        N_(
            "Two-step verification was turned off for your account, and your "
            "trusted devices and recovery codes were removed."
        ),
    )
    claims = replace(page.view.claims, epoch=record.epoch, verified_at=0, method="")
    cookie = page.rt.session_cookie(claims, page.view.eff)
    return page.outcome(redirect(page.url("enroll?off=1"), [cookie]))


# -- turning 2FA off --------------------------------------------------------------------------


def disable_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if page.view.decision != ALLOW_VERIFIED:
        return page.where_to()
    if not page.recently_verified:
        return page.step_up()
    yield from ()
    return page.render("disable.html", required=page.view.eff.mode == "required")


def disable_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if page.view.decision != ALLOW_VERIFIED:
        return page.where_to()
    if not page.recently_verified:
        return page.step_up()
    outcome = yield from _reset_and_restart(page, "self")
    if page.view.eff.mode != "required":  # else: set it up again (enroll?off=1 says it is off)
        outcome.response = redirect(page.url("settings?off=1"), outcome.response.cookies)
    return outcome


def settings_extra(page: Page) -> Generator[Effect, Any, dict[str, Any]]:
    left = yield from recovery.codes_left(page.principal.id)
    return {
        "codes_left": left,
        "few_left": left is not None and left <= recovery.FEW_LEFT,
        "can_disable": isinstance(page.view.decision, Allow),
    }
