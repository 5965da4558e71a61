"""What every built-in page handler works with: the request, the user's MFA session, the form,
rendering, redirects, and the CSRF check every POST goes through."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from mfa_middleware.core.effects import Effect
from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import (
    Challenge,
    Enroll,
)
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.redirects import safe_next
from mfa_middleware.core.tokens import csrf_token, csrf_valid
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import AppSession, SessionView
from mfa_middleware.web.http import FormError, html_response, parse_form, redirect, with_next
from mfa_middleware.web.messages import forbidden, message


@dataclass(slots=True)
class PageOutcome:
    response: Response
    marker: str | None = None
    end_app_session: bool = False


@dataclass(slots=True)
class Page:
    """One request to a built-in page, with what every handler needs."""

    rt: Runtime
    facts: RequestFacts
    principal: Principal
    view: SessionView
    app: AppSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def next(self) -> str:
        home = self.facts.url("/")
        return safe_next(self.form.get("next") or self.facts.query_param("next"), home)

    def code_digits(self, channel: str | None = None) -> int:
        """How many digits the code asked for here has: a code sent by SMS or email (this
        page's `channel`, else the user's method), or an authenticator app's."""
        via = channel or self.view.state.user.method
        config = self.rt.config
        return config.codes.params.digits if via in ("sms", "email") else config.totp.digits

    @property
    def prefix(self) -> str:
        """Where our pages are, as the browser asks for them (the templates' `prefix`)."""
        return self.facts.url(self.rt.prefix)

    def url(self, page: str) -> str:
        """The URL of one of our pages (`challenge`, `enroll/totp?x=1`), with the root path."""
        return self.facts.url(self.rt.url(page))

    @property
    def csrf(self) -> str:
        return csrf_token(self.rt.keyring, self.view.claims.session_id)

    @property
    def session_hash(self) -> str:
        """A keyed hash of this MFA session's id: what the store keeps to name it."""
        return self.rt.session_tag(self.view.claims.session_id)

    @property
    def reauth(self) -> bool:
        """A verified user confirming it is them before a sensitive change (step-up)."""
        return "1" in (self.form.get("reauth"), self.facts.query_param("reauth"))

    @property
    def recently_verified(self) -> bool:
        """A code entered in the last `reauth_window`; a trusted device does not count."""
        claims = self.view.claims
        age = self.rt.clock() - claims.verified_at
        return (
            claims.verified
            and claims.method != "device"
            and (age <= self.rt.config.sessions.reauth_window)
        )

    def step_up(self, back: str | None = None) -> PageOutcome:
        """Ask for a code before a sensitive change, then come back here (a GET), or to `back`
        (the page a refused POST came from: its form cannot be replayed)."""
        return self.go(with_next(self.url("challenge?reauth=1"), back or self.facts.full_path))

    def render(self, template: str, status: int = 200, **context: Any) -> PageOutcome:
        body = self.rt.renderer.render(
            template,
            csrf_token=self.csrf,
            next=self.next,
            user=self.principal.display_name,
            prefix=self.prefix,
            **{"code_digits": self.code_digits(context.get("channel")), **context},
        )
        return self.outcome(html_response(status, body, self.view.cookies))

    def outcome(self, response: Response) -> PageOutcome:
        marker = self.view.marker(self.app)
        return PageOutcome(response, marker)

    def go(self, location: str, cookies: list[Cookie] | None = None) -> PageOutcome:
        return self.outcome(redirect(location, self.view.cookies if cookies is None else cookies))

    def where_to(self) -> PageOutcome:
        """The page the decision calls for, when it is not the one asked for."""
        decision = self.view.decision
        if isinstance(decision, Challenge):
            return self.go(with_next(self.url("challenge"), self.next))
        if isinstance(decision, Enroll):
            return self.go(with_next(self.url("enroll"), self.next))
        return self.go(self.next)


Handler = Callable[[Page], Generator[Effect, Any, PageOutcome]]


def posted(page: Page) -> PageOutcome | None:
    """Parse and CSRF-check a POST; an outcome means "refuse with this"."""
    try:
        page.form = parse_form(page.facts, page.rt.config.pages.max_form_bytes)
    except FormError:
        return page.outcome(
            message(
                page.rt,
                page.facts,
                page.principal,
                400,
                N_("Bad request"),
                N_("The form could not be read. Reload the page and try again."),
                "bad_form",
            )
        )
    if not csrf_valid(page.rt.keyring, page.view.claims.session_id, page.form.get("csrf", "")):
        return page.outcome(forbidden(page.rt, page.facts, page.principal))
    return None


def locked_context(retry_after: float) -> dict[str, Any]:
    """What the locked-out notice shows: forever, or the whole seconds left."""
    if math.isinf(retry_after):
        return {"locked": True, "permanent": True, "wait_seconds": 0}
    return {"locked": True, "permanent": False, "wait_seconds": max(1, math.ceil(retry_after))}
