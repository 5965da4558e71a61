"""What every built-in page handler works with: one request, the user's MFA session as the
gate sees it, the posted form, and the ways a page answers (render, redirect, step up).

A handler is a plain function `(Page) -> Reply`: it reads what it needs from the page, calls
one core action (returning `Step(action, then)`), and renders the result in `then`. The router
(`web.router`) has already parsed and CSRF-checked a POST's form and checked that the page is
open in the session's state, so a handler does neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import Challenge, Decision, Enroll
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import UserRecord
from mfa_middleware.core.redirects import safe_next
from mfa_middleware.core.tokens import SessionClaims, csrf_token
from mfa_middleware.i18n import Texts
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import AppSession, SessionView, client_address, state_of
from mfa_middleware.web.http import html_response, json_response, redirect, with_hsts, with_next
from mfa_middleware.web.messages import message
from mfa_middleware.web.outcomes import Answer, Reply
from mfa_middleware.web.problems import problem_response
from mfa_middleware.web.stepup import INSUFFICIENT, Need, insufficient_challenge, step_up


@dataclass(slots=True)
class Page:
    """One request to a built-in page, with what every handler needs."""

    rt: Runtime
    facts: RequestFacts
    principal: Principal
    view: SessionView
    app: AppSession
    form: dict[str, str] = field(default_factory=dict)
    api: bool = False  # a call to the JSON API (web.api): JSON answers, RFC 9457 problems
    _caller: Caller | None = None
    _locale: str | None = None

    @property
    def locale(self) -> str:
        """This page's language, negotiated once (see `Runtime.locale_of`)."""
        if self._locale is None:
            self._locale = self.rt.locale_of(self.facts, self.principal)
        return self._locale

    @property
    def texts(self) -> Texts:
        return self.rt.languages.texts(self.locale)

    @property
    def user(self) -> UserRecord:
        return self.view.state.user

    @property
    def decision(self) -> Decision:
        return self.view.decision

    @property
    def params(self) -> Params:
        return self.rt.params

    @property
    def caller(self) -> Caller:
        """Who asks, for the core actions: this user, MFA session, address and time."""
        if self._caller is None:
            rt, facts, session_id = self.rt, self.facts, self.view.claims.session_id
            self._caller = Caller(
                self.principal.id,
                session_id,
                rt.session_tag(session_id),
                rt.clock(),
                peer=facts.client,
                client=client_address(rt, facts),
                user_agent=facts.header("user-agent"),
                email=self.principal.email,
                locale=self.locale,
            )
        return self._caller

    @property
    def next(self) -> str:
        home = self.facts.url("/")
        return safe_next(self.form.get("next") or self.facts.query_param("next"), home)

    def code_digits(self, via: str | None = None) -> int:
        """How many digits the code asked for here has: a code sent by SMS or email (`via`
        names the channel), or an authenticator app's."""
        return self.rt.oob.digits if via in ("sms", "email") else self.rt.totp.digits

    @property
    def prefix(self) -> str:
        """Where our pages are, as the browser asks for them (the templates' `prefix`)."""
        return self.facts.url(self.rt.prefix)

    def url(self, page: str) -> str:
        """The URL of one of our pages (`challenge`, `enroll/totp?x=1`), with the root path."""
        return self.facts.url(self.rt.url(page))

    @property
    def reauth(self) -> bool:
        """A verified user confirming it is them before a sensitive change (step-up)."""
        return "1" in (self.form.get("reauth"), self.facts.query_param("reauth"))

    @property
    def sensitive(self) -> Need:
        """What our sensitive pages ask (turning 2FA off, changing a factor, new recovery
        codes, trusting a device, the admin pages): a real factor, not a trusted device's,
        within `reauth_window`. The same requirement a rule or a view decorator may set."""
        return Need(self.rt.config.sessions.reauth_window, device_ok=False)

    @property
    def has_factor(self) -> bool:
        """The user has a way to sign in that counts now (enrolled under the current epoch)."""
        return self.user.enrolled_in(self.view.state.settings.enroll_epoch)

    @property
    def recent_factor(self) -> bool:
        """A real factor (not a trusted device) was entered in this session within
        `reauth_window`, whatever the mode: what the admin pages ask while 2FA is off."""
        claims, need = self.view.claims, self.sensitive
        fresh = need.max_age is None or self.rt.clock() - claims.verified_at <= need.max_age
        return claims.verified and claims.method != "device" and fresh

    @property
    def recently_verified(self) -> bool:
        """Verified, and the session meets `sensitive`."""
        state = state_of(self.rt, self.view)
        need = self.sensitive
        return state.verified and state.fresh(need.max_age, device_ok=need.device_ok)

    # -- answers -------------------------------------------------------------------------

    def answer(
        self,
        response: Response,
        claims: SessionClaims | None = None,
        *,
        end_app_session: bool = False,
    ) -> Answer:
        """`response` as this page's answer; with `claims`, the session it starts (a new id
        after a verification: the adapter keeps it in the app's session); `end_app_session`
        logs the user out of the app too."""
        response = with_hsts(response, self.facts, self.rt.config.sessions.hsts_max_age)
        if end_app_session:
            return Answer(response, end_app_session=True)
        if claims is None:
            return Answer(response, self.view.marker(self.app))
        return Answer(response, claims.session_id if self.app.writable else None)

    def render(
        self,
        template: str,
        status: int = 200,
        *,
        claims: SessionClaims | None = None,
        scripts: bool = False,
        **context: Any,
    ) -> Answer:
        """The page `template` with `context`; with `claims`, as the first page of the session
        they start (its cookie, and its CSRF token in the page's forms); `scripts`: the page
        loads our same-origin script (the passkey pages)."""
        session_id = self.view.claims.session_id if claims is None else claims.session_id
        digits = self.code_digits(context.get("channel") or context.get("method"))
        body = self.rt.renderer.render(
            template,
            self.texts,
            csrf_token=csrf_token(self.rt.keyring, session_id),
            next=self.next,
            user=self.principal.display_name,
            prefix=self.prefix,
            **{"code_digits": digits, **context},
        )
        if claims is None:
            return self.answer(html_response(status, body, self.view.cookies, scripts=scripts))
        cookie = self.rt.session_cookie(claims, self.view.eff)
        return self.answer(html_response(status, body, [cookie], scripts=scripts), claims)

    def json(
        self,
        payload: dict[str, Any],
        status: int = 200,
        *,
        claims: SessionClaims | None = None,
        cookies: tuple[Cookie, ...] = (),
        ended: bool = False,
    ) -> Answer:
        """A JSON API answer; with `claims`, the session it starts (its cookie and CSRF token);
        `ended`: the MFA session and the app's login are over (the cookie cleared)."""
        if ended:
            response = json_response(status, payload, [self.rt.clear_session_cookie()])
            return self.answer(response, end_app_session=True)
        if claims is None:
            jar = [*self.view.cookies, *cookies]
        else:  # a new session id: its CSRF token comes with it
            jar = [self.rt.session_cookie(claims, self.view.eff), *cookies]
            payload = {**payload, "csrf_token": csrf_token(self.rt.keyring, claims.session_id)}
        return self.answer(json_response(status, payload, jar), claims)

    def problem(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        *,
        headers: tuple[tuple[str, str], ...] = (),
        **members: Any,
    ) -> Answer:
        """An RFC 9457 problem (see `web.problems`), `title` and `detail` in the page's
        language; `headers` such as Retry-After beside it."""
        gettext = self.texts.gettext
        response = problem_response(
            status, code, gettext(title), gettext(detail) if detail else "", members,
            self.view.cookies, headers,
        )  # fmt: skip
        return self.answer(response)

    def go(self, location: str, cookies: list[Cookie] | None = None) -> Answer:
        if self.api:  # a page of ours comes first (a guard's answer): the API says which
            return self._not_now(location)
        return self.answer(redirect(location, self.view.cookies if cookies is None else cookies))

    def message(self, status: int, title: str, text: str, error: str) -> Answer:
        return self.answer(
            message(self.rt, self.facts, self.principal, status, title, text, error, self.locale)
        )

    def where_to(self) -> Answer:
        """The page the decision calls for, when it is not the one asked for."""
        decision = self.decision
        if isinstance(decision, Challenge):
            return self.go(with_next(self.url("challenge"), self.next))
        if isinstance(decision, Enroll):
            return self.go(with_next(self.url("enroll"), self.next))
        return self.go(self.next)

    @property
    def state(self) -> str:
        """What this session needs next, as the JSON API names it: "challenge", "enroll",
        or "done" (verified, or not asked for a second factor)."""
        if isinstance(self.decision, Challenge):
            return "challenge"
        if isinstance(self.decision, Enroll):
            return "enroll"
        return "done"

    def _not_now(self, location: str) -> Answer:
        """A call this session cannot make in its state: 409, with the state and the page the
        HTML flow would go to."""
        return self.problem(
            409,
            "wrong_state",
            N_("Not now"),
            N_("This step does not fit where you are in signing in. Ask for the state again."),
            state=self.state,
            location=location,
        )

    def step_up(self, back: str | None = None) -> Answer:
        """Ask for a code before a sensitive change, then come back here (a GET), or to `back`
        (the page a refused POST came from: its form cannot be replayed). The JSON API answers
        401 with the requirement (RFC 9470's error name); the client confirms with a code at
        `/api/challenge` (`reauth: true`) and calls again."""
        if self.api:
            age = self.sensitive.max_age
            max_age = None if age is None else int(age)
            return self.problem(
                401,
                INSUFFICIENT,
                N_("Confirm it's you"),
                N_("Enter a code first: this change needs a recent second factor."),
                headers=(("www-authenticate", insufficient_challenge(max_age)),),
                max_age=max_age,
            )
        back = back or safe_next(self.facts.full_path, self.facts.url("/"))
        rt, cookies = self.rt, self.view.cookies
        return self.answer(
            step_up(rt, self.facts, self.principal, self.sensitive, cookies, back=back, own=True)
        )


Handler = Callable[[Page], Reply]
