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
from mfa_middleware.errors import StoreError
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import GateResult, rule_action


def token(rt: Runtime, cookies: str) -> str | None:
    """Our MFA cookie in a raw Cookie header."""
    return cookie_value(cookies, rt.cookie_name)


class Replay:
    """What the memo of passed requests knows of one request: `hit` when it repeats a request
    the gate let through, `final` when that alone decides (no deny rule could refuse it)."""

    __slots__ = ("final", "generation", "hit", "key")

    def __init__(
        self,
        key: tuple[str, str | None, str] | None,
        generation: int | None,
        hit: bool,
        final: bool = False,
    ) -> None:
        self.key = key
        self.generation = generation
        self.hit = hit
        self.final = final


NO_REPLAY = Replay(None, None, False)
FINAL_HIT = Replay(None, None, True, True)  # nothing to remember after it


def replay(rt: Runtime, cookies: str, marker: str | None, user_id: str) -> Replay:
    """Whether this request repeats one the gate already let through on a verified session: the
    same MFA cookie in `cookies`, the same app login `marker`, the same user, nothing written to the
    store since (its cache generation) and no deadline passed. Then the gate's answer is the
    same, and the request passes without building the request facts.

    Only a `deny` rule can refuse such a request (`bypass` and `two_factor` both let it
    through: see `gate.REPLAYABLE`), so `final` is set when no rule denies; otherwise
    `access` is asked first."""
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
    hit = seen is not None and seen[0] == generation and rt.clock() < seen[1]
    if hit and not rt.config.access.rules.may_deny:
        return FINAL_HIT
    return Replay(key, generation, hit)


UNGATED = "ungated"


def access(rt: Runtime, ticket: Replay, facts: RequestFacts, principal: Principal) -> str | None:
    """`UNGATED` when the request passes without running the gate: a memo hit no rule denies, or
    a bypass rule (an exempt API client, a health check). Otherwise the rule action the gate
    is to apply, so the rules are evaluated once per request."""
    action = rule_action(rt, facts, principal)
    if action == "bypass" or (ticket.hit and action != "deny"):
        return UNGATED
    return action


def remember(rt: Runtime, ticket: Replay, result: GateResult) -> None:
    if ticket.key is None or ticket.generation is None or result.replay_until is None:
        return
    rt.verified_memo[ticket.key] = (ticket.generation, result.replay_until)
