"""The built-in pages: which page opens in which state of the MFA session (one table, checked
once here), and serving a request under the prefix.

Serving one page: resolve the session as the gate does (an expired one ends here), give the
browser its device record, find the route (404, 405), read and CSRF-check a POST's form, check
the route's state, and call the handler. The handler returns an `Answer` or a `Step`; the
driver runs the steps, so the router's own flow is over before the handler's begins.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import cache
from typing import Any

from mfa_middleware.core.effects import Effect, emit
from mfa_middleware.core.http import RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import Expired
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import remember_locale
from mfa_middleware.core.tokens import csrf_valid
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web import (
    account_pages,
    admin_pages,
    api,
    approval_pages,
    challenge_pages,
    device_pages,
    enroll_pages,
    recovery_pages,
    reset_pages,
)
from mfa_middleware.web.gate import (
    AppSession,
    expired_response,
    register_device,
    resolve_session,
)
from mfa_middleware.web.guards import (
    Guard,
    admin,
    allowed,
    allowed_recent_if_verified,
    anyone,
    challenged,
    code_asked,
    enrolling,
    enrolling_by,
    recent,
    trusting,
    unlocking,
)
from mfa_middleware.web.http import (
    FormError,
    json_response,
    parse_form,
    redirect,
    wants_json,
    with_hsts,
)
from mfa_middleware.web.messages import forbidden, is_api, message, unavailable
from mfa_middleware.web.openapi import openapi_response
from mfa_middleware.web.outcomes import Answer, Outcome, Reply, Work
from mfa_middleware.web.page import Handler, Page
from mfa_middleware.web.problems import problem_response

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
    "/challenge/approve": Route(challenged, approval_pages.wait_get, approval_pages.wait_post),
    "/challenge/approve/status": Route(challenged, approval_pages.status_get),
    "/approvers": Route(
        recent("approvers"), approval_pages.approvers_get, approval_pages.approvers_post
    ),
    "/approve": Route(allowed, approval_pages.approve_get, approval_pages.approve_post),
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
    return script("webauthn.js")


def script(name: str, max_age: int = 3600) -> Response:
    """One of our same-origin scripts (a service worker is asked for afresh: `max_age` 0)."""
    headers = [
        ("content-type", "text/javascript; charset=utf-8"),
        ("cache-control", f"public, max-age={max_age}" if max_age else "no-cache"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    return Response(200, headers, _script_bytes(name))


@cache
def _script_bytes(name: str = "webauthn.js") -> bytes:
    from importlib.resources import files

    return (files("mfa_middleware") / "web/static" / name).read_bytes()


PUSH_SCRIPTS = {  # served when push approval is on: the pages' script, the service worker
    "/static/approval.js": ("approval.js", 3600),
    "/approver-sw.js": ("approver-sw.js", 0),  # at the prefix: its scope covers our pages
}


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
    if sub in PUSH_SCRIPTS and method == "GET" and rt.config.push is not None:
        name, max_age = PUSH_SCRIPTS[sub]
        return Answer(with_hsts(script(name, max_age), facts, hsts))
    if sub == api.OPENAPI and method == "GET":
        return Answer(with_hsts(openapi_response(rt, facts), facts, hsts))
    if principal is None:
        login = facts.url(rt.config.pages.login_url)
        if is_api(rt, facts):
            refused = problem_response(
                401, "login_required", "Sign in first", members={"location": login}
            )
            return Answer(with_hsts(refused, facts, hsts))
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
    if sub.startswith("/api/"):
        return api.dispatch(page, sub, method)
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
