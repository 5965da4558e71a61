"""The table of built-in pages and the entry point adapters call for any path under the prefix."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

from mfa_middleware.core.effects import Effect
from mfa_middleware.core.http import RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import (
    Expired,
)
from mfa_middleware.core.principal import Principal
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.admin_pages import admin_get, admin_post
from mfa_middleware.web.code_pages import (
    enroll_code_get,
    enroll_code_post,
    enroll_email_get,
    enroll_email_post,
    enroll_sms_get,
    enroll_sms_post,
    resend_login_post,
)
from mfa_middleware.web.device_pages import devices_get, devices_post, trust_get, trust_post
from mfa_middleware.web.gate import (
    AppSession,
    expired_response,
    register_device,
    resolve_session,
)
from mfa_middleware.web.http import json_response, redirect, wants_json, with_hsts
from mfa_middleware.web.messages import message, unavailable
from mfa_middleware.web.page import Handler, Page, PageOutcome
from mfa_middleware.web.pages import (
    challenge_get,
    challenge_post,
    end_other_sessions_post,
    enroll_get,
    enroll_totp_get,
    enroll_totp_post,
    logout_post,
    settings_get,
)
from mfa_middleware.web.recovery_pages import (
    disable_get,
    disable_post,
    lost_confirm_get,
    lost_confirm_post,
    lost_get,
    lost_post,
    recovery_get,
    recovery_post,
    regenerate_post,
    unlock_get,
    unlock_post,
)

ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/challenge"): challenge_get,
    ("POST", "/challenge"): challenge_post,
    ("GET", "/enroll"): enroll_get,
    ("GET", "/enroll/totp"): enroll_totp_get,
    ("POST", "/enroll/totp"): enroll_totp_post,
    ("POST", "/challenge/resend"): resend_login_post,
    ("GET", "/enroll/sms"): enroll_sms_get,
    ("POST", "/enroll/sms"): enroll_sms_post,
    ("GET", "/enroll/email"): enroll_email_get,
    ("POST", "/enroll/email"): enroll_email_post,
    ("GET", "/enroll/code"): enroll_code_get,
    ("POST", "/enroll/code"): enroll_code_post,
    ("GET", "/settings"): settings_get,
    ("POST", "/settings/sessions"): end_other_sessions_post,
    ("GET", "/trust"): trust_get,
    ("POST", "/trust"): trust_post,
    ("GET", "/devices"): devices_get,
    ("POST", "/devices"): devices_post,
    ("GET", "/recovery"): recovery_get,
    ("POST", "/recovery"): recovery_post,
    ("GET", "/enroll/unlock"): unlock_get,
    ("POST", "/enroll/unlock"): unlock_post,
    ("POST", "/recovery/regenerate"): regenerate_post,
    ("GET", "/lost"): lost_get,
    ("POST", "/lost"): lost_post,
    ("GET", "/lost/confirm"): lost_confirm_get,
    ("POST", "/lost/confirm"): lost_confirm_post,
    ("GET", "/disable"): disable_get,
    ("POST", "/disable"): disable_post,
    ("GET", "/admin"): admin_get,
    ("POST", "/admin"): admin_post,
    ("POST", "/logout"): logout_post,
}
KNOWN_PATHS = {path for _, path in ROUTES}


def stylesheet(rt: Runtime) -> Response:
    headers = [
        ("content-type", "text/css; charset=utf-8"),
        ("cache-control", "public, max-age=3600"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    return Response(200, headers, rt.renderer.stylesheet)


def handle_page(
    rt: Runtime, facts: RequestFacts, principal: Principal | None, app: AppSession
) -> Generator[Effect, Any, PageOutcome]:
    """Serve one request under the prefix."""
    outcome = yield from _dispatch(rt, facts, principal, app)
    response = with_hsts(outcome.response, facts, rt.config.sessions.hsts_max_age)
    return replace(outcome, response=response) if response is not outcome.response else outcome


def _dispatch(
    rt: Runtime, facts: RequestFacts, principal: Principal | None, app: AppSession
) -> Generator[Effect, Any, PageOutcome]:
    sub = facts.path[len(rt.prefix) :] or "/"
    method = "GET" if facts.method == "HEAD" else facts.method
    if sub == "/static/mfa.css" and method == "GET":
        return PageOutcome(stylesheet(rt))
    if principal is None:
        if wants_json(facts, None):
            login = facts.url(rt.config.pages.login_url)
            return PageOutcome(json_response(401, {"error": "login_required", "location": login}))
        return PageOutcome(redirect(facts.url(rt.config.pages.login_url)))
    try:
        return (yield from _serve(rt, facts, principal, app, sub, method))
    except StoreError as exc:
        logger.error("2FA store unavailable, page refused: %s", exc)
        return PageOutcome(unavailable(rt, facts, principal))


def _serve(
    rt: Runtime, facts: RequestFacts, principal: Principal, app: AppSession, sub: str, method: str
) -> Generator[Effect, Any, PageOutcome]:
    view = yield from resolve_session(rt, facts, principal, app)
    if isinstance(view.decision, Expired):
        return PageOutcome(
            expired_response(rt, facts, principal, view.decision.reason), end_app_session=True
        )
    yield from register_device(rt, facts, principal, view)
    page = Page(rt, facts, principal, view, app)
    if sub == "/":
        return page.where_to()
    handler = ROUTES.get((method, sub))
    if handler is None:
        status, title = (
            (405, N_("Method not allowed")) if sub in KNOWN_PATHS else (404, N_("Not found"))
        )
        return page.outcome(
            message(
                rt,
                facts,
                principal,
                status,
                title,
                N_("There is nothing here."),
                title.lower().replace(" ", "_"),
            )
        )
    return (yield from handler(page))
