"""Steps shared by the code pages: what a failed guess shows, what a success does."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from mfa_middleware.core import enroll_code
from mfa_middleware.core.devices import name_from_user_agent
from mfa_middleware.core.effects import Effect, emit
from mfa_middleware.core.flows import Attempt, throttle_state
from mfa_middleware.core.i18n import N_, NP_
from mfa_middleware.core.policy import ALLOW_NOT_ENROLLED, ALLOW_VERIFIED, Enroll
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.device_pages import after_verification
from mfa_middleware.web.gate import client_address
from mfa_middleware.web.http import redirect, with_next
from mfa_middleware.web.notices import notify
from mfa_middleware.web.page import Page, PageOutcome, locked_context


def lock_notice(page: Page) -> Generator[Effect, Any, dict[str, Any]]:
    """The locked-out notice for a page that asks for a code, when this user's verification is
    locked now (so a GET shows it, not only a wrong guess); empty otherwise."""
    state = yield from throttle_state(page.principal.id)
    now = page.rt.clock()
    if not state.locked(now, page.rt.limits):
        return {}
    return locked_context(state.retry_after(now, page.rt.limits))


def failure_context(attempt: Attempt) -> dict[str, Any]:
    if attempt.malformed:  # not a guess: say what a code looks like, no attempt was used
        return {"malformed": True}
    if attempt.locked:
        return locked_context(attempt.retry_after)
    return {"wrong_code": True, "attempts_left": attempt.attempts_left}


def failure_status(attempt: Attempt) -> int:
    return 429 if attempt.locked else 400


def record_attempt(
    page: Page, attempt: Attempt, method: str, step: str
) -> Generator[Effect, Any, None]:
    if attempt.malformed:  # no guess was made: nothing to record
        return
    fields = {"user": page.principal.id, "method": method, "step": step, "ip": page.facts.client}
    if attempt.ok:
        yield from emit("verify_succeeded", **fields)
        return
    if attempt.locked:
        yield from emit("locked_out", **fields)
    if attempt.replayed:
        yield from emit("totp_replay", **fields)
    yield from emit("verify_failed", **fields, locked=attempt.locked)
    if attempt.locked_now and (step == "challenge" or method == "enroll_code"):
        yield from notify_failed_codes(page)  # whoever it is got past the password


def notify_failed_codes(page: Page) -> Generator[Effect, Any, None]:
    """Someone got past the password and then failed the code until locked out: tell the user
    when, from which browser and address (once per lockout, so at most a few mails)."""
    rt, facts = page.rt, page.facts
    address = client_address(rt, facts)
    yield from notify(
        page,
        N_("wrong sign-in codes"),
        NP_(
            "Someone signed in to your account with your password and then entered {count}"
            " wrong code, on {time} from {browser} (IP address {ip}). Further tries are"
            " blocked for a while.\n\nIf this was you, you can ignore this message. If it"
            " wasn't, someone knows your password: change it now, and tell your administrator.",
            "Someone signed in to your account with your password and then entered {count}"
            " wrong codes, on {time} from {browser} (IP address {ip}). Further tries are"
            " blocked for a while.\n\nIf this was you, you can ignore this message. If it"
            " wasn't, someone knows your password: change it now, and tell your administrator.",
        ),
        count=rt.config.attempts.limit,
        footer=False,  # the text says what to do either way
        time=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(rt.clock())),
        browser=name_from_user_agent(facts.header("user-agent")),
        ip=address or "-",
    )


def signed_in(page: Page, claims: SessionClaims) -> Generator[Effect, Any, PageOutcome]:
    """The session is verified: on to `next`, by way of "Trust this device?" when trusting is
    on and this browser is not trusted yet (or trusted at once when `auto_trust` says so)."""
    cookie = page.rt.session_cookie(claims, page.view.eff)
    marker = claims.session_id if page.app.writable else None
    target = yield from after_verification(page)
    return PageOutcome(redirect(target, [cookie]), marker)


def not_enrollable(page: Page) -> Generator[Effect, Any, PageOutcome | None]:
    """None when this user may (re-)enroll now; else where to go instead. Replacing a factor
    needs a recent verification (step-up), so a stolen session cannot swap the factor; the
    first enrollment after an administrator's reset needs the enrollment code first."""
    decision = page.view.decision
    if isinstance(decision, Enroll) or decision == ALLOW_NOT_ENROLLED:
        code = yield from enroll_code.blocking(page.principal.id, page.session_hash)
        if code is None:
            return None
        return page.go(with_next(page.url("enroll/unlock"), page.next))
    if decision == ALLOW_VERIFIED:
        if page.recently_verified:
            return None
        return page.step_up()
    return page.where_to()
