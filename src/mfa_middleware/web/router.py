"""The built-in pages: which page opens in which state of the MFA session (one table, checked
once here), and serving a request under the prefix.

Serving one page: resolve the session as the gate does (an expired one ends here), give the
browser its device record, find the route (404, 405), read and CSRF-check a POST's form, check
the route's state, and call the handler. The handler returns an `Answer` or a `Step`; the
driver runs the steps, so the router's own flow is over before the handler's begins.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import cache
from typing import Any

from mfa_middleware.core.effects import Effect, Step, emit
from mfa_middleware.core.enroll_code import EnrollCode, blocking
from mfa_middleware.core.http import RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import (
    ALLOW_NOT_ENROLLED,
    ALLOW_OFF,
    ALLOW_VERIFIED,
    Allow,
    Challenge,
    Enroll,
    Expired,
)
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import remember_locale
from mfa_middleware.core.tokens import csrf_valid
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web import (
    account_pages,
    admin_pages,
    challenge_pages,
    device_pages,
    enroll_pages,
    recovery_pages,
    reset_pages,
)
from mfa_middleware.web.gate import (
    AppSession,
    current_device,
    expired_response,
    register_device,
    resolve_session,
)
from mfa_middleware.web.http import (
    FormError,
    json_response,
    parse_form,
    redirect,
    wants_json,
    with_hsts,
    with_next,
)
from mfa_middleware.web.messages import denied, forbidden, message, unavailable
from mfa_middleware.web.outcomes import Answer, Outcome, Reply, Work
from mfa_middleware.web.page import Handler, Page

GoOn = Callable[[], Reply]
Guard = Callable[[Page, GoOn], Reply]
"""A session state a page needs: `go_on()` when the session is in it, else where to go."""


# -- the states -----------------------------------------------------------------------------


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


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    when: Guard
    get: Handler | None = None
    post: Handler | None = None


ROUTES: dict[str, Route] = {
    "/challenge": Route(code_asked, challenge_pages.challenge_get, challenge_pages.challenge_post),
    "/challenge/resend": Route(code_asked, post=challenge_pages.resend_post),
    "/challenge/other": Route(code_asked, challenge_pages.other_ways_get),
    "/recovery": Route(challenged, challenge_pages.recovery_get, challenge_pages.recovery_post),
    "/lost": Route(challenged, reset_pages.lost_get, reset_pages.lost_post),
    "/lost/confirm": Route(anyone, reset_pages.lost_confirm_get, reset_pages.lost_confirm_post),
    "/enroll": Route(enrolling, enroll_pages.enroll_get),
    "/enroll/totp": Route(enrolling, enroll_pages.enroll_totp_get, enroll_pages.enroll_totp_post),
    "/enroll/passkey": Route(
        enrolling_by("webauthn"), enroll_pages.enroll_passkey_get, enroll_pages.enroll_passkey_post
    ),
    "/enroll/sms": Route(
        enrolling_by("sms"), enroll_pages.enroll_sms_get, enroll_pages.enroll_sms_post
    ),
    "/enroll/email": Route(
        enrolling_by("email"), enroll_pages.enroll_email_get, enroll_pages.enroll_email_post
    ),
    "/enroll/code": Route(enrolling, enroll_pages.enroll_code_get, enroll_pages.enroll_code_post),
    "/enroll/assigned": Route(enrolling_by("sms"), enroll_pages.enroll_assigned_get),
    "/enroll/unlock": Route(unlocking, enroll_pages.unlock_get, enroll_pages.unlock_post),
    "/settings": Route(allowed, account_pages.settings_get),
    "/authenticators": Route(
        recent("settings"), account_pages.authenticators_get, account_pages.authenticators_post
    ),
    "/settings/sessions": Route(
        allowed_recent_if_verified("settings"), post=account_pages.end_other_sessions_post
    ),
    "/recovery/regenerate": Route(recent("settings"), post=recovery_pages.regenerate_post),
    "/trust": Route(trusting, device_pages.trust_get, device_pages.trust_post),
    "/devices": Route(allowed, device_pages.devices_get, device_pages.devices_post),
    "/devices/recognised": Route(
        trusting, device_pages.recognised_get, device_pages.recognised_post
    ),
    "/disable": Route(recent(), reset_pages.disable_get, reset_pages.disable_post),
    "/admin": Route(admin, admin_pages.admin_get, admin_pages.admin_post),
    "/admin/users": Route(admin, admin_pages.users_get),
    "/logout": Route(anyone, post=account_pages.logout_post),
}


# -- serving ----------------------------------------------------------------------------------


def stylesheet(rt: Runtime) -> Response:
    headers = [
        ("content-type", "text/css; charset=utf-8"),
        ("cache-control", "public, max-age=3600"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    return Response(200, headers, rt.renderer.stylesheet)


def passkey_script() -> Response:
    """The passkey pages' one script (same origin: the pages allow no other)."""
    headers = [
        ("content-type", "text/javascript; charset=utf-8"),
        ("cache-control", "public, max-age=3600"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    return Response(200, headers, _script_bytes())


@cache
def _script_bytes() -> bytes:
    from importlib.resources import files

    return (files("mfa_middleware") / "web/static/webauthn.js").read_bytes()


def page_work(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal | None,
    app: AppSession,
    agent: str | None = None,
) -> Answer | Work:
    """A request under the prefix: the stylesheet and the way to the login page at once, a
    page as work for the driver (a store failure answers "temporarily unavailable"). `agent`:
    a support agent signed in as `principal` gets 403 on every page, the user's 2FA being
    theirs alone (see `core.impersonation`)."""
    hsts = rt.config.sessions.hsts_max_age
    sub = facts.path[len(rt.prefix) :] or "/"
    method = "GET" if facts.method == "HEAD" else facts.method
    if sub == "/static/mfa.css" and method == "GET":
        return Answer(with_hsts(stylesheet(rt), facts, hsts))
    if sub == "/static/webauthn.js" and method == "GET" and rt.config.webauthn is not None:
        return Answer(with_hsts(passkey_script(), facts, hsts))
    if principal is None:
        login = facts.url(rt.config.pages.login_url)
        if wants_json(facts, None):
            body = {"error": "login_required", "location": login}
            return Answer(with_hsts(json_response(401, body), facts, hsts))
        return Answer(with_hsts(redirect(login), facts, hsts))

    def recover(exc: StoreError) -> Outcome:
        logger.error("2FA store unavailable, page refused: %s", exc)
        fields = {"user": principal.id, "where": "page", "answered": 503, "ip": facts.client}
        rt.events.emit_now("store_unavailable", fields)
        return Answer(with_hsts(unavailable(rt, facts, principal), facts, hsts))

    if agent is not None:
        return Work(_refused_to_agent(rt, facts, principal, agent), recover)
    return Work(serve(rt, facts, principal, app, sub, method), recover)


def _refused_to_agent(
    rt: Runtime, facts: RequestFacts, principal: Principal, agent: str
) -> Generator[Effect, Any, Reply]:
    """A support agent signed in as a user: none of our pages, which show or change that
    user's 2FA (or sign their session out), is theirs to see."""
    yield from emit(
        "impersonation_refused",
        user=principal.id,
        actor=f"agent:{agent}",
        ip=facts.client,
        method=facts.method,
        path=facts.path,
        reason="mfa_page",
    )
    response = message(
        rt,
        facts,
        principal,
        403,
        N_("Not while signed in as someone else"),
        N_(
            "You are signed in as another user, on their behalf. Their two-step verification"
            " is theirs alone: you can neither see nor change it. Stop acting as them to"
            " manage your own."
        ),
        "impersonating",
    )
    return Answer(with_hsts(response, facts, rt.config.sessions.hsts_max_age))


def serve(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal,
    app: AppSession,
    sub: str,
    method: str,
) -> Generator[Effect, Any, Reply]:
    view = yield from resolve_session(rt, facts, principal, app)
    if isinstance(view.decision, Expired):
        response = expired_response(rt, facts, principal, view.decision.reason)
        hsts = rt.config.sessions.hsts_max_age
        return Answer(with_hsts(response, facts, hsts), end_app_session=True)
    page = Page(rt, facts, principal, view, app)
    yield from register_device(rt, facts, principal, view, page.texts)
    if not principal.is_token and page.locale != view.state.user.locale:
        yield from remember_locale(principal.id, page.locale)  # only when it changed
    return dispatch(page, sub, method)


def dispatch(page: Page, sub: str, method: str) -> Reply:
    if sub == "/":
        return page.where_to()
    route = ROUTES.get(sub)
    if route is None:
        return page.message(404, N_("Not found"), N_("There is nothing here."), "not_found")
    handler = route.get if method == "GET" else route.post if method == "POST" else None
    if handler is None:
        return page.message(
            405, N_("Method not allowed"), N_("There is nothing here."), "method_not_allowed"
        )
    if method == "POST" and (refused := _posted(page)) is not None:
        return refused
    return route.when(page, lambda: handler(page))


def _posted(page: Page) -> Answer | None:
    """Read and CSRF-check a POST's form (once, for every page); an answer means "refused"."""
    try:
        page.form = parse_form(page.facts, page.rt.config.pages.max_form_bytes)
    except FormError:
        return page.message(
            400,
            N_("Bad request"),
            N_("The form could not be read. Reload the page and try again."),
            "bad_form",
        )
    if not csrf_valid(page.rt.keyring, page.view.claims.session_id, page.form.get("csrf", "")):
        return page.answer(forbidden(page.rt, page.facts, page.principal))
    return None
