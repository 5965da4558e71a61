"""Step-up: asking a verified session for a fresh factor.

A `two_factor`
rule with `max_age` or `device_ok=False`, and the views' own requirements (`require` in the
adapters: Django's `mfa_required`, FastAPI's `require_mfa`, the WSGI decorator), answer a
session that does not meet them the same way: a browser goes to the challenge page to confirm
it's them, then back (to the page it asked for; after a POST, to the page that made it, since
the body cannot be kept safely); an API client gets 401 with RFC 9470's
`WWW-Authenticate: Bearer error="insufficient_user_authentication"` and `max_age`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.core.mfa_state import NOT_ENROLLED, MFAState
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.redirects import safe_next
from mfa_middleware.errors import ConfigError
from mfa_middleware.events import logger
from mfa_middleware.options import Duration, seconds
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.http import json_response, redirect, wants_json, with_next

INSUFFICIENT = "insufficient_user_authentication"  # RFC 9470


@dataclass(frozen=True, slots=True)
class Need:
    """What a page asks of the session's last factor: at most `max_age` seconds old, and
    (`device_ok` False) not a trusted device's."""

    max_age: float | None = None
    device_ok: bool = True


def _back_to(facts: RequestFacts) -> str:
    """Where to return after the step-up: the page asked for (GET), else the page the form
    was on when the browser says so (its Referer, on this origin), else the home page."""
    home = facts.url("/")
    if facts.method in ("GET", "HEAD"):
        return safe_next(facts.full_path, home)
    referer = urlsplit(facts.header("referer"))
    if referer.scheme != facts.scheme or referer.netloc != facts.header("host"):
        return home
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), home)


def step_up(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal | None,
    need: Need,
    cookies: Sequence[Cookie] = (),
    *,
    back: str | None = None,
    own: bool = False,
) -> Response:
    """Ask for a fresh factor (see the module docstring); `back`: where to return instead
    (a page of ours after its refused POST); `own`: for a sensitive page of ours (the
    challenge page then speaks of sign-in settings, not of the app's page)."""
    posted = facts.method not in ("GET", "HEAD")
    why = "" if own else "&stepup=" + ("post" if posted else "1")
    page = rt.url("challenge?reauth=1" + why)
    location = with_next(facts.url(page), back or _back_to(facts))
    if wants_json(facts, principal) or facts.is_websocket:
        max_age = None if need.max_age is None else int(need.max_age)
        body = {"error": INSUFFICIENT, "location": location, "max_age": max_age}
        answer = json_response(401, body, list(cookies))
        challenge = insufficient_challenge(max_age)
        return replace(answer, headers=[*answer.headers, ("www-authenticate", challenge)])
    return redirect(location, list(cookies))


def insufficient_challenge(max_age: int | None) -> str:
    """RFC 9470's WWW-Authenticate value: a more recent factor, within `max_age` seconds."""
    challenge = (
        f'Bearer error="{INSUFFICIENT}",'
        ' error_description="A more recent second factor is required"'
    )
    return challenge if max_age is None else f"{challenge}, max_age={max_age}"


UNGATED = Response(403, [("content-type", "text/plain; charset=utf-8")], b"Forbidden\n")


def answer_requirement(
    state: MFAState, facts: RequestFacts, principal: Principal | None, need: Need
) -> Response | None:
    """What a view's own requirement answers (None: go on), the same as a `two_factor` rule
    with `need` would: a session that owes no factor or meets `need` goes on; one not enrolled
    yet is sent to enroll; a verified one steps up. A request the gate never looked at (behind
    a bypass rule, or without the middleware) is refused and logged, never let through."""
    if state.fresh(need.max_age, device_ok=need.device_ok):
        return None
    rt = state.runtime
    if not isinstance(rt, Runtime):
        logger.error(
            "a view requires 2FA on a request the middleware did not gate (%s): refused; see"
            " the README's Step-up section",
            state.reason,
        )
        return UNGATED
    if state.reason == NOT_ENROLLED:
        location = with_next(facts.url(rt.url("enroll")), _back_to(facts))
        if wants_json(facts, principal):
            return json_response(401, {"error": "mfa_enrollment_required", "location": location})
        return redirect(location)
    return step_up(rt, facts, principal, need)


def need_of(max_age: Duration | None, device_ok: bool) -> Need:
    """A view's requirement from its decorator's arguments (durations as everywhere)."""
    if not isinstance(device_ok, bool):
        raise ConfigError("device_ok", "must be True or False")
    return Need(None if max_age is None else seconds("max_age", max_age), device_ok)
