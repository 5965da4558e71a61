"""The memo of requests the gate let through, so a verified session's next request costs a
dict lookup: no `Principal`, no request facts, no store read, no flow.

An entry is keyed by the exact MFA cookie, the app login's marker and the user id, and holds
while the store's cache generation is unchanged (nothing was written anywhere since) and until
the session's next deadline. Only a `deny` rule can refuse a remembered answer (`bypass` and
`two_factor` both let a verified, exempt or mode-off session through), so the rules are
evaluated on a hit only when a rule may deny.
"""

from __future__ import annotations

from mfa_middleware.core.http import RequestFacts, cookie_value
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.rules import Rule, Unknown
from mfa_middleware.errors import StoreError
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import GateResult, rule_for
from mfa_middleware.web.outcomes import BYPASSED, Pass


def token(rt: Runtime, cookies: str) -> str | None:
    """Our MFA cookie in a raw Cookie header."""
    return cookie_value(cookies, rt.cookie_name)


class Replay:
    """What the memo of passed requests knows of one request: `passed` (the gate's `Pass`)
    when it repeats a request the gate let through."""

    __slots__ = ("generation", "key", "passed")

    def __init__(
        self,
        key: tuple[str, str | None, str] | None,
        generation: int | None,
        passed: Pass | None,
    ) -> None:
        self.key = key
        self.generation = generation
        self.passed = passed


NO_REPLAY = Replay(None, None, None)


def replay(
    rt: Runtime, cookies: str, marker: str | None, user_id: str, path: str, method: str
) -> Replay | Pass:
    """Whether this request repeats one the gate already let through on a verified session: the
    same MFA cookie in `cookies`, the same app login `marker`, the same user, nothing written to the
    store since (its cache generation) and no deadline passed. Then the gate's answer is the
    same, and the request passes without building the request facts: the `Pass` is returned.

    Only a `deny` rule, or a rule asking for a fresher factor than the session's, can refuse
    such a request (`bypass` and `two_factor` both let it through: see `gate.REPLAYABLE`).
    Where path and method settle the rule, it is asked here; where a rule that looks at the
    user or the client matches them, a `Replay` is returned and `access` asks it."""
    mfa_cookie = cookie_value(cookies, rt.cookie_name)
    if not mfa_cookie:
        return NO_REPLAY
    try:
        generation = rt.store.cache_generation()
    except StoreError:  # the gate flow will meet the outage and answer it
        return NO_REPLAY
    if generation is None:
        return NO_REPLAY
    key = (mfa_cookie, marker, user_id)
    seen = rt.verified_memo.get(key)
    passed: Pass | None = None
    now: float | None = None  # read only for an entry of this generation: what a hit needs
    if seen is not None and seen[0] == generation:
        now = rt.clock()
        if now < seen[1]:
            passed = seen[2]
    rules = rt.config.access.rules
    if passed is not None and not (rules.may_deny or rules.may_step_up):
        return passed
    if passed is not None:
        rule = rules.rule_by_path(path, method)
        settled = None if isinstance(rule, Unknown) else _settled(passed, rule, now)
        if settled is not None:
            return settled
    return Replay(key, generation, passed)


def _settled(passed: Pass, rule: Rule | None, now: float | None = None) -> Pass | None:
    """The answer to a memo hit under `rule` (at `now`: the memo's own reading of the
    clock), or None when the gate must run (a deny, or a factor older than the rule
    allows)."""
    if rule is None:
        return passed
    action = rule.action
    if action == "bypass":
        return BYPASSED
    if action == "deny" or not passed.mfa.fresh(rule.max_age, device_ok=rule.device_ok, now=now):
        return None
    return passed


def access(
    rt: Runtime, ticket: Replay, facts: RequestFacts, principal: Principal
) -> Pass | Rule | None:
    """A `Pass` when the request passes without running the gate: a bypass rule (an exempt API
    client, a health check), or a memo hit that no rule denies and whose factor is fresh
    enough for the rule. Otherwise the rule the gate is to apply (None: follow the mode), so
    the rules are evaluated once per request."""
    rule = rule_for(rt, facts, principal)
    if rule is not None and rule.action == "bypass":
        return BYPASSED
    passed = ticket.passed
    settled = None if passed is None else _settled(passed, rule)
    return rule if settled is None else settled


def remember(rt: Runtime, ticket: Replay, result: GateResult, passed: Pass) -> None:
    if ticket.key is None or ticket.generation is None or result.replay_until is None:
        return
    rt.verified_memo[ticket.key] = (ticket.generation, result.replay_until, passed)
