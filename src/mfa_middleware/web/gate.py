"""The gate: for every request of an authenticated user, resolve the MFA session and decide.

`resolve_session` is shared with the built-in pages. The verified-session path reads the
signed cookie (a cached dict lookup after the first request), one coherent cached store read,
and compares a few integers; it renders nothing and sets no cookie.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from mfa_middleware.core import devices, directory, ops
from mfa_middleware.core.addresses import Address
from mfa_middleware.core.effects import Effect, emit, get
from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.core.i18n import N_, Texts
from mfa_middleware.core.mfa_state import (
    BYPASS_STATE,
    EXEMPT,
    MODE_OFF,
    NOT_ENROLLED,
    VERIFIED,
    MFAState,
    amr_of,
)
from mfa_middleware.core.policy import (
    ALLOW_EXEMPT,
    ALLOW_OFF,
    ALLOW_VERIFIED,
    Allow,
    Challenge,
    Decision,
    Effective,
    Enroll,
    Expired,
    decide,
    effective,
    idle_refresh_after,
    needs_activity_refresh,
)
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import HotState, load_hot_state
from mfa_middleware.core.redirects import safe_next
from mfa_middleware.core.rules import Rule
from mfa_middleware.core.tokens import SessionClaims, new_id
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.http import json_response, redirect, wants_json, with_hsts, with_next
from mfa_middleware.web.messages import denied, is_api, unavailable
from mfa_middleware.web.problems import problem_response
from mfa_middleware.web.stepup import Need, step_up


@dataclass(frozen=True, slots=True)
class AppSession:
    """How the MFA session is bound to one login of the app, so a new login needs a new code.

    `writable`: the adapter stores the MFA session id in the app's own session (Starlette's
    `scope["session"]`) and `marker` is what it reads back; a new login clears the app session
    and the marker no longer matches. Otherwise `marker` is a value the app changes at every
    login (Django's session key, a login nonce in a Flask session) and the MFA cookie keeps a
    keyed hash of it. With neither, the MFA session is bound to the user only.
    """

    writable: bool = False
    marker: str | None = None


NO_APP_SESSION = AppSession()


def _login_tag(rt: Runtime, app: AppSession) -> str:
    return rt.login_tag(app.marker) if app.marker and not app.writable else ""


def _login_tags(rt: Runtime, app: AppSession) -> tuple[str, ...]:
    return rt.login_tag.tags(app.marker) if app.marker and not app.writable else ("",)


def bound(
    rt: Runtime,
    claims: SessionClaims,
    principal: Principal,
    app: AppSession,
    *,
    agent: bool = False,
) -> bool:
    """Whether the cookie belongs to this user and to this login of the app (its tags made
    under any configured key: rotating a key in logs nobody out). `agent`: the cookie of a
    support agent acting as a user, whose app may have switched to a new login to do so
    (django-hijack logs the agent in as the user): it must be the agent's, and still the app
    session's own where the app keeps it, but need not be of this login."""
    return (
        claims.user_tag in rt.user_tag.tags(principal.id)
        and (agent or claims.login_tag in _login_tags(rt, app))
        and (not app.writable or app.marker == claims.session_id)
    )


@dataclass(slots=True)
class SessionView:
    claims: SessionClaims
    state: HotState
    eff: Effective
    decision: Decision
    fresh: bool
    cookies: list[Cookie] = field(default_factory=list)
    api: bool = False  # a token caller: no MFA state is kept for it

    def marker(self, app: AppSession) -> str | None:
        """The new MFA session id for the adapter to keep in the app's session, if any."""
        return self.claims.session_id if self.fresh and app.writable and not self.api else None


def resolve_session(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal,
    app: AppSession,
    *,
    require: bool = False,
    agent: bool = False,
) -> Generator[Effect, Any, SessionView]:
    """The user's MFA session for this request (a new one when the cookie is missing, foreign
    or from another login) and the decision on it. `require`: a two_factor rule matched;
    `agent`: `principal` is a support agent acting as the signed-in user (see `gate_agent`).

    A token caller (an API client) carries no MFA state: nothing is written and no cookie is
    set for it, whatever the answer."""
    now = rt.clock()
    claims = rt.sessions.decode(facts.cookie(rt.cookie_name))
    fresh = claims is None or not bound(rt, claims, principal, app, agent=agent)
    tags = None if fresh or claims is None else rt.session_tag.tags(claims.session_id)
    state = yield from load_hot_state(principal.id, tags)
    eff = effective(state.settings, rt.defaults)
    api = principal.is_token
    device_cookie: Cookie | None = None
    if claims is None or fresh:
        claims = SessionClaims(
            new_id(),
            rt.user_tag(principal.id),
            int(now),
            0,
            int(now),
            state.user.epoch,
            state.settings.global_epoch,
            login_tag=_login_tag(rt, app),
        )
        if not api and not agent:
            yield from directory.note(principal, now)  # the admin pages find users by name
            claims, device_cookie = yield from _start_on_device(rt, facts, principal, state, claims)
    lost = fresh and app.writable and app.marker is not None and not api
    decision = decide(claims, state, now, eff, require=require, api=api, lost=lost)
    view = SessionView(claims, state, eff, decision, fresh, api=api)
    if api:
        return view
    if device_cookie is not None:
        view.cookies.append(device_cookie)
    background = rt.config.sessions.background_request
    refresh = needs_activity_refresh(claims, now, eff) and not (background and background(facts))
    if not isinstance(decision, Expired) and (fresh or refresh):
        view.claims = replace(claims, active_at=int(now))
        view.cookies.append(rt.session_cookie(view.claims, eff))
    return view


def _start_on_device(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal,
    state: HotState,
    claims: SessionClaims,
) -> Generator[Effect, Any, tuple[SessionClaims, Cookie | None]]:
    """A new login session in a browser that already has a device of this user: note its use,
    and skip the code when it is trusted under the current epochs. A browser without one gets
    its device record only when it reaches a 2FA page (`register_device`)."""
    now = rt.clock()
    found = yield from devices.recognise(
        principal.id,
        rt.devices.decode(facts.cookie(rt.device_cookie_name)),
        rt.user_tag.tags(principal.id),
        now,
        facts.client or "",
        facts.header("user-agent"),
        state.user,
        state.settings,
    )
    if found is None:
        return claims, None
    cookie = rt.device_cookie(found.device_id, claims.user_tag)
    enrolled = state.user.enrolled_in(state.settings.enroll_epoch)
    if found.trusted and rt.trust_seconds > 0 and enrolled:
        yield from emit("trusted_device_used", user=principal.id, ip=facts.client)
        claims = replace(claims, verified_at=int(now), method="device")
    return claims, cookie


def register_device(
    rt: Runtime, facts: RequestFacts, principal: Principal, view: SessionView, texts: Texts
) -> Generator[Effect, Any, None]:
    """Give a browser that reached a 2FA page without a device of this user its device record
    (named in the page's language, `texts`) and cookie (the trust prompt and the device list
    need one)."""
    if principal.is_token:
        return
    known = current_device(rt, facts, principal)
    if known is not None and (yield from get(devices.device_key(principal.id, known))):
        return
    device_id = yield from devices.register(
        principal.id,
        rt.clock(),
        facts.client or "",
        facts.header("user-agent"),
        rt.config.devices.max_devices,
        texts,
    )
    view.cookies.append(rt.device_cookie(device_id, rt.user_tag(principal.id)))


def end_session(
    rt: Runtime, claims: SessionClaims, user_id: str, actor: str
) -> Generator[Effect, Any, None]:
    """Sign the MFA session `claims` out server-side (a logout): see `ops.end_session`."""
    state = yield from load_hot_state(user_id)
    until = claims.login_at + effective(state.settings, rt.defaults).session_lifetime
    tag = rt.session_tag(claims.session_id)
    yield from ops.end_session(user_id, tag, rt.clock(), until, actor)


def current_device(rt: Runtime, facts: RequestFacts, principal: Principal) -> str | None:
    """This browser's device id, when its device cookie belongs to this user."""
    cookie = rt.devices.decode(facts.cookie(rt.device_cookie_name))
    if cookie is None or cookie.user_tag not in rt.user_tag.tags(principal.id):
        return None
    return cookie.device_id


def state_of(rt: Runtime, view: SessionView) -> MFAState:
    """The app's view of a session the gate lets through (see `core.mfa_state`)."""
    claims, eff, decision = view.claims, view.eff, view.decision
    reasons: dict[Decision, str] = {
        ALLOW_VERIFIED: VERIFIED,
        ALLOW_EXEMPT: EXEMPT,
        ALLOW_OFF: MODE_OFF,
    }
    reason = reasons.get(decision, NOT_ENROLLED)
    verified = decision == ALLOW_VERIFIED
    idle = None if eff.idle_timeout is None else claims.active_at + eff.idle_timeout
    return MFAState(
        verified,
        reason,
        method=claims.method if verified else "",
        amr=amr_of(claims.method) if verified else ("exempt",) if reason == EXEMPT else (),
        verified_at=float(claims.verified_at) if verified else None,
        trusted_device=verified and claims.method == "device",
        login_at=float(claims.login_at),
        expires_at=claims.login_at + eff.session_lifetime,
        idle_expires_at=idle,
        clock=rt.clock,
        runtime=rt,
    )


@dataclass(slots=True)
class GateResult:
    """Pass the request on (adding `cookies` to the app's response), or answer with `response`.

    `marker` is a new MFA session id for the adapter to store in the app's session;
    `end_app_session` asks the adapter to log the user out of the app as well."""

    response: Response | None
    cookies: list[Cookie] = field(default_factory=list)
    marker: str | None = None
    end_app_session: bool = False
    replay_until: float | None = None  # a verified session's answer holds until then
    mfa: MFAState | None = None  # what the app may read of the session (when passed)


def client_address(rt: Runtime, facts: RequestFacts) -> Address | None:
    """The client's address, through `trusted_proxies` and their forwarding header; None when
    it is unknown."""
    clients = rt.config.access.rules.clients
    return clients.resolve(facts.client, facts.header(clients.header))


def rule_for(rt: Runtime, facts: RequestFacts, principal: Principal) -> Rule | None:
    """The access rule for this request (None: follow the mode)."""
    rules = rt.config.access.rules
    if not rules.rules:
        return rules.default_rule
    client = client_address(rt, facts) if rules.uses_networks else None
    return rules.rule_for(facts.path, facts.method, principal, client)


REPLAYABLE = (ALLOW_VERIFIED, ALLOW_EXEMPT, ALLOW_OFF)
"""Answers the memo (web.memo) may replay: they hold for any rule but deny (an exempt user or
mode off is allowed before a `two_factor` rule is considered). Not `ALLOW_NOT_ENROLLED`: a
`two_factor` rule turns that into enrollment."""


def next_target(facts: RequestFacts) -> str:
    """Where to return after the step: the requested page for GET/HEAD, else the home page."""
    home = facts.url("/")
    return safe_next(facts.full_path, home) if facts.method in ("GET", "HEAD") else home


def expired_response(
    rt: Runtime, facts: RequestFacts, principal: Principal, reason: str
) -> Response:
    cookies = [rt.clear_session_cookie()]
    login = facts.url(rt.config.pages.login_url)
    if is_api(rt, facts):
        texts = rt.languages.texts(rt.locale_of(facts, principal))
        title = texts.gettext(N_("Session ended"))
        members = {"reason": reason, "location": login}
        return problem_response(401, "session_expired", title, "", members, cookies)
    if wants_json(facts, principal):
        return json_response(
            401, {"error": "session_expired", "reason": reason, "location": login}, cookies
        )
    return redirect(with_next(login, next_target(facts)), cookies)


def gate(
    rt: Runtime, facts: RequestFacts, principal: Principal, app: AppSession, rule: Rule | None
) -> Generator[Effect, Any, GateResult]:
    """The decision on one request, given the access `rule` for it (see `memo.access`)."""
    result = yield from _decide(rt, facts, principal, app, rule)
    if result.response is not None:
        result.response = with_hsts(result.response, facts, rt.config.sessions.hsts_max_age)
    return result


def _decide(
    rt: Runtime, facts: RequestFacts, principal: Principal, app: AppSession, rule: Rule | None
) -> Generator[Effect, Any, GateResult]:
    action = None if rule is None else rule.action
    if action == "bypass":
        return GateResult(None, mfa=BYPASS_STATE)
    if action == "deny":
        return GateResult(denied(rt, facts, principal))
    try:
        view = yield from resolve_session(rt, facts, principal, app, require=action == "two_factor")
    except StoreError as exc:
        passes = survives_outage(rt, facts, principal, app, exc)
        yield from emit(
            "store_unavailable",
            user=principal.id,
            where="gate",
            answered="passed" if passes else 503,
            ip=facts.client,
        )
        return GateResult(None) if passes else GateResult(unavailable(rt, facts, principal))
    decision = view.decision
    marker = view.marker(app)
    if isinstance(decision, Allow):
        state = state_of(rt, view)
        if (
            rule is not None
            and rule.wants_fresh
            and not state.fresh(rule.max_age, device_ok=rule.device_ok)
        ):
            need = Need(rule.max_age, rule.device_ok)
            yield from emit("step_up_required", user=principal.id, path=facts.path, ip=facts.client)
            return GateResult(step_up(rt, facts, principal, need, view.cookies), marker=marker)
        until = None
        if decision in REPLAYABLE and not view.cookies and marker is None:
            claims, eff = view.claims, view.eff
            until = claims.login_at + eff.session_lifetime
            if eff.idle_timeout is not None:
                until = min(until, claims.active_at + idle_refresh_after(eff.idle_timeout))
        return GateResult(None, view.cookies, marker, replay_until=until, mfa=state)
    if isinstance(decision, Expired):
        yield from emit(
            "session_expired", user=principal.id, reason=decision.reason, ip=facts.client
        )
        return GateResult(
            expired_response(rt, facts, principal, decision.reason), end_app_session=True
        )
    page = "challenge" if isinstance(decision, Challenge) else "enroll"
    assert isinstance(decision, Challenge | Enroll)
    location = with_next(facts.url(rt.url(page)), next_target(facts))
    if wants_json(facts, principal) or facts.is_websocket:
        body = {"error": decision.reason, "location": location}
        return GateResult(json_response(401, body, view.cookies), marker=marker)
    return GateResult(redirect(location, view.cookies), marker=marker)


def gate_agent(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal,
    agent_id: str,
    app: AppSession,
    rule: Rule | None,
) -> Generator[Effect, Any, GateResult]:
    """A request of a support agent signed in as `principal` (`MFAConfig.is_impersonating`):
    it passes on the agent's own second factor, never the user's (whose code or phone the agent
    must neither trigger nor need), and is an `impersonated_request` event naming both. A
    session where the agent's own factor is not settled ends: the agent signs in again. A page
    asking for a fresher factor is refused (403): the agent cannot confirm it's them while
    signed in as someone else. Never remembered by the memo, so every request is recorded."""
    named = {"user": principal.id, "actor": f"agent:{agent_id}", "ip": facts.client}
    where = {"method": facts.method, "path": facts.path}
    hsts = rt.config.sessions.hsts_max_age
    action = None if rule is None else rule.action
    if action == "deny":
        yield from emit("impersonation_refused", **named, **where, reason="denied")
        return GateResult(with_hsts(denied(rt, facts, principal), facts, hsts))
    try:
        view = yield from resolve_session(rt, facts, Principal(agent_id), app, agent=True)
    except StoreError as exc:
        logger.error("2FA store unavailable: %s", exc)
        yield from emit("store_unavailable", **named, where="gate", answered=503)
        return GateResult(with_hsts(unavailable(rt, facts, principal), facts, hsts))
    decision = view.decision
    if not isinstance(decision, Allow):
        yield from emit("impersonation_refused", **named, **where, reason=decision.reason)
        response = expired_response(rt, facts, principal, "impersonation_unverified")
        return GateResult(with_hsts(response, facts, hsts), end_app_session=True)
    state = replace(state_of(rt, view), impersonator=agent_id)
    if (
        rule is not None
        and action != "bypass"
        and not state.fresh(rule.max_age, device_ok=rule.device_ok)
    ):
        yield from emit("impersonation_refused", **named, **where, reason="not_recent")
        return GateResult(with_hsts(denied(rt, facts, principal), facts, hsts), view.cookies)
    yield from emit("impersonated_request", **named, **where)
    return GateResult(None, view.cookies, view.marker(app), mfa=state)


def survives_outage(
    rt: Runtime, facts: RequestFacts, principal: Principal, app: AppSession, exc: StoreError
) -> bool:
    """Whether a request may pass while the store is unreachable: never by default (fail
    closed); with `on_store_error="verified_sessions"`, a verified session of this user and
    login within the configured lifetime passes, unchecked against epochs meanwhile."""
    logger.error("2FA store unavailable: %s", exc)
    if rt.config.sessions.on_store_error != "verified_sessions":
        return False
    claims = rt.sessions.decode(facts.cookie(rt.cookie_name))
    if claims is None or not claims.verified or not bound(rt, claims, principal, app):
        return False
    now = rt.clock()
    idle = rt.defaults.idle_timeout
    return now - claims.login_at < rt.defaults.session_lifetime and (
        idle is None or now - claims.active_at < idle
    )
