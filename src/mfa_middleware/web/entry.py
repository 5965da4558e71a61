"""The one call every adapter makes: `Entry.handle(incoming)`.

An adapter reads its framework's request into an `Incoming` (the few values the
verified-request path needs, and the request itself for what is read only on demand), calls
`handle`, and writes back what it gets:

- `Pass`: let the app answer, adding our cookies, storing a new MFA session id in the app's
  session (`marker`), ending the app's session first (`end_app_session`);
- `Answer`: answer with our response (a page, a redirect, a refusal) instead of the app;
- `Work`: a flow to run with the adapter's driver (sync or async); its result is a `Pass` or
  an `Answer`.

Behind the call: our pages under the prefix, the memo of verified requests, the access rules
and the gate. A verified request the memo knows is answered without building anything.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mfa_middleware.core.effects import Effect
from mfa_middleware.core.http import RequestFacts
from mfa_middleware.core.impersonation import agent_id
from mfa_middleware.core.mfa_state import BYPASS_STATE
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.rules import Rule
from mfa_middleware.errors import SetupError, StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web import memo
from mfa_middleware.web.gate import (
    AppSession,
    GateResult,
    bound,
    end_session,
    gate,
    gate_agent,
    rule_for,
)
from mfa_middleware.web.messages import misconfigured
from mfa_middleware.web.outcomes import BYPASSED, PASS, Answer, Outcome, Pass, Work
from mfa_middleware.web.problems import API_MAX_BODY


@dataclass(slots=True)
class Incoming:
    """What an adapter read of one request. `path` is app-relative; `cookies` the raw Cookie
    header; `marker` the app login's marker (the MFA session id kept in a writable app
    session, or a value the app changes at every login); `source` the framework's request,
    read further only when needed (see `Entry`); `body` a page POST's body."""

    path: str
    method: str
    cookies: str
    marker: str | None
    writable: bool
    source: Any
    body: bytes = b""

    @property
    def app(self) -> AppSession:
        return AppSession(writable=self.writable, marker=self.marker)


UserIdOf = Callable[[Any], str | None]
AuthMethodOf = Callable[[Any], str]
PrincipalOf = Callable[[Any], Principal | None]
FactsOf = Callable[[Any, bytes], RequestFacts]


class Entry:
    """Our side of every request. The adapter gives readers of its request: `principal_of`
    (the whole `Principal`), `facts_of` (the `RequestFacts`, with a body) and, where it is
    cheaper than the principal, `user_id_of` (what the verified-request path reads). Either
    may raise SetupError: the request is then refused, never passed."""

    def __init__(
        self,
        rt: Runtime,
        *,
        principal_of: PrincipalOf,
        facts_of: FactsOf,
        user_id_of: UserIdOf | None = None,
        auth_method_of: AuthMethodOf | None = None,
        request_of: Callable[[Any], Any] | None = None,
    ) -> None:
        self.rt = rt
        self.user_id_of = user_id_of
        self.auth_method_of = auth_method_of
        self.principal_of = principal_of
        self.facts_of = facts_of
        self.request_of = request_of  # the framework's own request, for the config's hooks
        # the pages and the JSON API load with the app (an import error fails at startup),
        # not with `import mfa_middleware` (a fifth of its import time)
        from mfa_middleware.web.router import page_work

        self._page_work = page_work
        self._prefix = rt.prefix
        self._prefix_slash = rt.prefix + "/"
        self._api_slash = rt.prefix + "/api/"

    def is_page(self, path: str) -> bool:
        """A request for one of our pages (the adapter reads a POST's body for it first)."""
        return path == self._prefix or path.startswith(self._prefix_slash)

    def body_limit(self, path: str) -> int | None:
        """How much of a POST's body the adapter reads for `path` (None: not ours, the app's
        to read): a form's `max_form_bytes`, or a JSON API call's larger limit (a passkey's
        attestation). A body cut there is refused as too large, never parsed."""
        if not self.is_page(path):
            return None
        if path.startswith(self._api_slash):
            return API_MAX_BODY
        return self.rt.config.pages.max_form_bytes

    def agent_of(self, source: Any) -> str | None:
        """The support agent signed in as this request's user (`is_impersonating`), if any."""
        hook = self.rt.config.access.is_impersonating
        if hook is None:
            return None
        return agent_id(hook(source if self.request_of is None else self.request_of(source)))

    def handle(self, incoming: Incoming) -> Outcome | Work:
        try:
            if incoming.path == self._prefix or incoming.path.startswith(self._prefix_slash):
                facts = self.facts_of(incoming.source, incoming.body)
                principal = self.principal_of(incoming.source)
                agent = None if principal is None else self.agent_of(incoming.source)
                return self._page_work(self.rt, facts, principal, incoming.app, agent)
            principal = None
            if self.user_id_of is not None:
                user_id = self.user_id_of(incoming.source)
            else:
                principal = self.principal_of(incoming.source)
                user_id = None if principal is None else principal.id
            if user_id is None:
                return PASS
            rt = self.rt
            ticket = memo.replay(
                rt, incoming.cookies, incoming.marker, user_id, incoming.path, incoming.method
            )
            if isinstance(ticket, Pass):  # a verified session seen before: nothing else to do
                return ticket
            if principal is None:
                if self._bypassed(incoming):  # e.g. an API token exempt by its auth method
                    return BYPASSED
                principal = self.principal_of(incoming.source)
        except SetupError as exc:
            return self._misconfigured(incoming, exc)
        assert principal is not None
        facts = self.facts_of(incoming.source, b"")
        agent = self.agent_of(incoming.source)
        if agent is not None:  # never remembered: each of its requests is recorded
            return Work(self._gate_agent(facts, principal, incoming.app, agent))
        rule = memo.access(rt, ticket, facts, principal)
        if isinstance(rule, Pass):
            return rule
        return Work(self._gate(facts, principal, incoming.app, ticket, rule))

    def _bypassed(self, incoming: Incoming) -> bool:
        """A bypass rule that the request line and the app's auth method settle (see
        `RuleSet.rule_by_path`): no principal, no request facts, no store."""
        if self.auth_method_of is None:
            return False
        auth_method = self.auth_method_of(incoming.source)
        rule = self.rt.config.access.rules.rule_by_path(incoming.path, incoming.method, auth_method)
        return isinstance(rule, Rule) and rule.action == "bypass"

    def _gate(
        self,
        facts: RequestFacts,
        principal: Principal,
        app: AppSession,
        ticket: memo.Replay,
        rule: Rule | None,
    ) -> Generator[Effect, Any, Outcome]:
        result: GateResult = yield from gate(self.rt, facts, principal, app, rule)
        if result.response is not None:
            return Answer(result.response, result.marker, result.end_app_session)
        mfa = result.mfa or BYPASS_STATE
        passed = Pass(tuple(result.cookies), result.marker, result.end_app_session, mfa)
        memo.remember(self.rt, ticket, result, passed)
        return passed

    def _gate_agent(
        self, facts: RequestFacts, principal: Principal, app: AppSession, agent: str
    ) -> Generator[Effect, Any, Outcome]:
        rule = rule_for(self.rt, facts, principal)
        result: GateResult = yield from gate_agent(self.rt, facts, principal, agent, app, rule)
        if result.response is not None:
            return Answer(result.response, result.marker, result.end_app_session)
        return Pass(tuple(result.cookies), result.marker, False, result.mfa or BYPASS_STATE)

    def after(self, incoming: Incoming, outcome: Pass, marker_now: str | None) -> Work | None:
        """Once the app answered: when it cleared its session meanwhile (its logout, or a new
        login over an old one), that MFA session is over, server-side, so its cookie replays
        nothing. Only a writable app session tells (a Starlette-style session dict)."""
        expected = outcome.marker or incoming.marker
        if expected is None or marker_now == expected or not incoming.writable:
            return None
        claims = self.rt.sessions.decode(memo.token(self.rt, incoming.cookies))
        principal = self.principal_of(incoming.source)
        if claims is None or claims.session_id != expected or principal is None:
            return None
        return Work(self._signed_out(claims, principal.id))

    def sign_out(self, incoming: Incoming) -> Work | None:
        """The app is logging the user out (its logout view, Django's `user_logged_out`): end
        this browser's MFA session server-side, so a copy of its cookie replays nothing."""
        principal = self.principal_of(incoming.source)
        claims = self.rt.sessions.decode(memo.token(self.rt, incoming.cookies))
        if principal is None or claims is None:
            return None
        agent = self.agent_of(incoming.source)  # signed in as a user: the session is the agent's
        if agent is not None:
            principal = Principal(agent)
        if not bound(self.rt, claims, principal, incoming.app, agent=agent is not None):
            return None
        return Work(self._signed_out(claims, principal.id))

    def _signed_out(self, claims: Any, user_id: str) -> Generator[Effect, Any, Outcome]:
        try:
            yield from end_session(self.rt, claims, user_id, actor="app_logout")
        except StoreError as exc:  # the response is sent; the session's cookie is gone too
            logger.error("2FA store unavailable, sign-out not recorded: %s", exc)
        return PASS

    def _misconfigured(self, incoming: Incoming, exc: SetupError) -> Answer:
        logger.error("%s", exc)
        return Answer(misconfigured(self.rt, self.facts_of(incoming.source, b"")))
