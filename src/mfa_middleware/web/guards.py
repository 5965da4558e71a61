"""The session states the built-in pages and the JSON API calls need: a guard calls `go_on()`
when the session is in its state, else answers where to go (a page, or for the API a problem
that names the state)."""

from __future__ import annotations

from collections.abc import Callable

from mfa_middleware.core.effects import Step
from mfa_middleware.core.enroll_code import EnrollCode, blocking
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import (
    ALLOW_NOT_ENROLLED,
    ALLOW_OFF,
    ALLOW_VERIFIED,
    Allow,
    Challenge,
    Enroll,
)
from mfa_middleware.web import device_pages
from mfa_middleware.web.gate import current_device
from mfa_middleware.web.http import with_next
from mfa_middleware.web.messages import denied
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page

GoOn = Callable[[], Reply]
Guard = Callable[[Page, GoOn], Reply]
"""A session state a page needs: `go_on()` when the session is in it, else where to go."""


def anyone(page: Page, go_on: GoOn) -> Reply:
    return go_on()


def challenged(page: Page, go_on: GoOn) -> Reply:
    """Signing in: the code is still to be entered."""
    return go_on() if isinstance(page.decision, Challenge) else page.where_to()


def code_asked(page: Page, go_on: GoOn) -> Reply:
    """A code is asked: signing in, or a verified user confirming it is them (step-up), which
    an enrolled administrator also does while 2FA is off (see `admin`)."""
    decision = page.decision
    confirming = decision == ALLOW_VERIFIED or (decision == ALLOW_OFF and page.has_factor)
    asked = isinstance(decision, Challenge) or (page.reauth and confirming)
    return go_on() if asked else page.where_to()


def allowed(page: Page, go_on: GoOn) -> Reply:
    """Past the second step, or not asked for it (exempt, optional and not enrolled, off)."""
    return go_on() if isinstance(page.decision, Allow) else page.where_to()


def recent(back: str | None = None) -> Guard:
    """Verified, with a code entered within `reauth_window`: else the code is asked first
    (step-up), and the user comes back to this page, or to `back` for a POST (its form cannot
    be replayed)."""

    def guard(page: Page, go_on: GoOn) -> Reply:
        if page.decision != ALLOW_VERIFIED:
            return page.where_to()
        if not page.recently_verified:
            return page.step_up(back=page.url(back) if back else None)
        return go_on()

    return guard


def allowed_recent_if_verified(back: str) -> Guard:
    """Allowed; an enrolled user enters a code first, when none was entered recently."""
    step_up = recent(back)

    def guard(page: Page, go_on: GoOn) -> Reply:
        if page.decision == ALLOW_VERIFIED:
            return step_up(page, go_on)
        return allowed(page, go_on)

    return guard


def enrolling(page: Page, go_on: GoOn) -> Reply:
    """May (re-)enroll now. Replacing a factor needs a recent code (a stolen session cannot
    swap it); the first enrollment after an administrator's reset needs the enrollment code
    first."""
    decision = page.decision
    if isinstance(decision, Enroll) or decision == ALLOW_NOT_ENROLLED:
        return Step(
            blocking(page.principal.id, page.caller.session_hash),
            lambda code: _unlocked(page, code, go_on),
        )
    if decision == ALLOW_VERIFIED:
        return go_on() if page.recently_verified else page.step_up()
    return page.where_to()


def _unlocked(page: Page, code: EnrollCode | None, go_on: GoOn) -> Reply:
    if code is None:
        return go_on()
    return page.go(with_next(page.url("enroll/unlock"), page.next))


def enrolling_by(method: str) -> Guard:
    """`enrolling`, with `method` offered (else the method chooser)."""

    def guard(page: Page, go_on: GoOn) -> Reply:
        def offered() -> Reply:
            if method in page.rt.enroll_methods:
                return go_on()
            if page.api:  # asking the state again would not help: say what is offered
                return page.problem(
                    404,
                    "method_not_offered",
                    N_("Not found"),
                    N_("There is nothing here."),
                    enroll_methods=list(page.rt.enroll_methods),
                )
            return page.go(page.url("enroll"))

        return enrolling(page, offered)

    return guard


def unlocking(page: Page, go_on: GoOn) -> Reply:
    """Not enrolled (the enrollment code comes before enrolling)."""
    decision = page.decision
    if isinstance(decision, Enroll) or decision == ALLOW_NOT_ENROLLED:
        return go_on()
    return page.where_to()


def trusting(page: Page, go_on: GoOn) -> Reply:
    """Verified, trusting on, in a browser with a device record of this user."""
    ready = (
        page.decision == ALLOW_VERIFIED
        and device_pages.trust_open(page)
        and current_device(page.rt, page.facts, page.principal) is not None
    )
    return go_on() if ready else page.where_to()


def admin(page: Page, go_on: GoOn) -> Reply:
    """An administrator (`is_admin`), recently verified; without `is_admin` the pages do not
    exist. While 2FA is off (perhaps turned off on this very page) an administrator still gets
    in, with a recent factor of their own if they have one (asked for as a step-up), so the
    page that turns it on again stays reachable."""
    is_admin = page.rt.config.access.is_admin
    if is_admin is None:
        return page.message(404, N_("Not found"), N_("There is nothing here."), "not_found")
    if not is_admin(page.principal):
        return page.answer(denied(page.rt, page.facts, page.principal))
    if page.decision == ALLOW_OFF:
        if not page.has_factor or page.recent_factor:
            return go_on()
        return page.step_up()
    return recent()(page, go_on)
