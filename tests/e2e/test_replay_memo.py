"""The memo of requests the gate let through (`replay`, `access`, `remember`), end to end.

A memo hit replays only an answer that holds for any rule but `deny` (verified, exempt, mode
off) and only while the store is unchanged; these tests check that rules are still applied on
a hit, that answers which a rule could change are never replayed, and that any store change
(an admin operation included) ends the replay.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mfa_middleware import MemoryStore, MFAConfig, MFAMiddleware
from mfa_middleware.admin import Admin
from mfa_middleware.core.effects import Key
from mfa_middleware.core.mfa_state import MFAState
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import GateResult
from mfa_middleware.web.memo import Replay, remember, replay
from mfa_middleware.web.outcomes import Pass
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    cookie,
    is_verified,
    login,
    make_app,
    mfa_set_cookie,
    sign_up,
    submit_code,
    totp,
)

pytestmark = pytest.mark.anyio


class StoreReads:
    """Counts the gate's store reads (its one `get_many` of settings and user per request)."""

    def __init__(self, store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = store.get_many

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(store, "get_many", counting)


def ops_for(store: MemoryStore, clock: FixedClock) -> Admin:
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)
    return Admin(Runtime(config), "ops")


def mfa_runtime(app: Starlette) -> Runtime:
    """The runtime of the app's MFA middleware (the stack is built at the first request)."""
    layer: Any = app.middleware_stack
    while not isinstance(layer, MFAMiddleware):
        assert layer is not None, "no MFA middleware in the app"
        layer = layer.app
    return layer.runtime


async def get_page(c: httpx.AsyncClient, path: str) -> httpx.Response:
    return await c.get(path, headers=HTML)


# --- 1. a deny rule is evaluated on a memo hit ------------------------------------------------


async def test_deny_rule_still_refuses_on_a_memoized_session(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, rules=[{"action": "deny", "paths": ["/admin/**"]}])
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await sign_up(c, clock)
        assert await is_verified(c)  # the gate runs once and remembers the answer
        rt = mfa_runtime(app)
        assert rt.config.access.rules.may_deny
        assert len(rt.verified_memo) == 1
        before = reads.count
        for _ in range(10):
            assert (await get_page(c, "/account")).status_code == 200
        assert reads.count == before  # every one of them was a memo hit
        for _ in range(2):
            r = await get_page(c, "/admin/x")
            assert r.status_code == 403  # `denied`: the rule was evaluated despite the hit
            assert "Access denied" in r.text
        r = await c.get("/admin/x", headers={"accept": "application/json"})
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden"
        assert (await get_page(c, "/account")).status_code == 200  # the memo is still good


# --- 2. a two_factor rule lets a verified session through, first time and repeats -----------


async def test_two_factor_rule_passes_a_verified_session_first_and_on_repeats(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, rules=[{"action": "two_factor", "paths": ["/admin"]}])
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await sign_up(c, clock)
        before = reads.count
        first = await get_page(c, "/admin")  # no memo yet: the gate runs with the rule
        assert first.status_code == 200, first.headers
        assert "The admin area." in first.text
        assert reads.count == before + 1
        assert len(mfa_runtime(app).verified_memo) == 1
        for _ in range(5):
            again = await get_page(c, "/admin")
            assert again.status_code == 200, again.headers
        assert reads.count == before + 1  # the repeats were replayed
        assert (await get_page(c, "/account")).status_code == 200


# --- 3. ALLOW_NOT_ENROLLED is not replayed ----------------------------------------------------


async def test_optional_mode_not_enrolled_is_never_replayed_past_a_two_factor_rule(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    rules = [{"action": "two_factor", "paths": ["/admin"]}]
    app = make_app(clock, store=store, mode="optional", rules=rules)
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await login(c)
        for _ in range(4):
            assert (await get_page(c, "/account")).status_code == 200
        assert len(mfa_runtime(app).verified_memo) == 0  # nothing kept for a not-enrolled pass
        before = reads.count
        assert (await get_page(c, "/account")).status_code == 200
        assert reads.count == before + 1  # the gate ran again
        r = await get_page(c, "/admin")  # right after the passes
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")
        assert (await get_page(c, "/account")).status_code == 200  # optional elsewhere


# --- 4. an exempt user's memo ends when the exemption is lifted -------------------------------


@pytest.mark.checklist("EX-05")
async def test_exempt_memo_ends_when_the_exemption_is_lifted(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    ops = ops_for(store, clock)
    ops.exempt("alice", browser=True)  # her browser logins too: what this browser test needs
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await login(c)
        for _ in range(2):  # a new MFA session (cookie set), then one the memo keeps
            assert (await get_page(c, "/account")).status_code == 200
        assert len(mfa_runtime(app).verified_memo) == 1
        before = reads.count
        for _ in range(5):
            assert (await get_page(c, "/account")).status_code == 200
        assert reads.count == before  # replayed (a final hit: the demo rules cannot deny)
        ops.exempt("alice", False)  # Admin has no `unexempt`: this is how it is lifted
        r = await get_page(c, "/account")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")
        assert reads.count == before + 1


# --- 5. mode off, then required at runtime ----------------------------------------------------


async def test_mode_off_memo_ends_when_the_mode_is_set_to_required(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, mode="off")
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await login(c)
        for _ in range(2):
            assert (await get_page(c, "/account")).status_code == 200
        assert len(mfa_runtime(app).verified_memo) == 1
        before = reads.count
        for _ in range(5):
            assert (await get_page(c, "/account")).status_code == 200
        assert reads.count == before
        ops_for(store, clock).set_mode("required")
        r = await get_page(c, "/account")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")


# --- 6. a memo hit belongs to one user and one login; a forced logout ends it -----------------


async def test_memo_of_one_user_is_not_used_for_another_login_in_the_same_browser(
    clock: FixedClock,
) -> None:
    app = make_app(clock)
    async with client(app) as c, client(app) as elsewhere:
        await sign_up(elsewhere, clock, "bob")  # bob is enrolled, verified in another browser
        await sign_up(c, clock)
        for _ in range(3):
            assert await is_verified(c)
        alice_cookie = cookie(c)
        assert alice_cookie is not None
        assert len(mfa_runtime(app).verified_memo) >= 1
        await login(c, "bob")  # the app's login, in alice's browser with her MFA cookie
        assert cookie(c) == alice_cookie
        r = await get_page(c, "/account")
        assert r.status_code == 303, "bob passed on alice's memoized session"
        assert r.headers["location"].startswith("/_mfa/challenge")
        assert (await get_page(c, "/account")).status_code == 303  # and on the repeat
        assert await is_verified(elsewhere)  # bob's own session is untouched


async def test_forced_logout_ends_a_memoized_session(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, rules=[{"action": "deny", "paths": ["/admin/**"]}])
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c, client(app) as api:
        secret = await sign_up(c, clock)
        await login(api)  # a second browser of alice, asking for JSON
        clock.advance(30)
        assert (await submit_code(api, totp(secret, clock()))).status_code == 303
        for browser in (c, api):
            assert (await browser.get("/api/profile")).status_code == 200
            assert (await browser.get("/api/profile")).status_code == 200
        before = reads.count
        assert await is_verified(c)
        assert (await api.get("/api/profile")).status_code == 200
        assert reads.count == before  # both are memo hits
        ops_for(store, clock).logout("alice")
        r = await get_page(c, "/account")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
        again = await get_page(c, "/account")
        assert again.headers["location"] == "/login?next=/account"  # the app session is gone
        r = await api.get("/api/profile", headers={"accept": "application/json"})
        assert r.status_code == 401
        assert r.json()["error"] == "session_expired"
        assert r.json()["reason"] == "user_logged_out"


# --- 7. a bypass rule skips the gate flow entirely --------------------------------------------


async def test_bypass_rule_passes_without_a_session_check(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, rules=[{"action": "bypass", "paths": ["/public/**"]}])
    reads = StoreReads(store, monkeypatch)
    async with client(app) as c:
        await login(c)  # required mode, alice is not enrolled
        before = reads.count
        for _ in range(2):
            r = await get_page(c, "/public/x")
            assert r.status_code == 200
            assert "A public page: x" in r.text
            assert mfa_set_cookie(r) is None  # no MFA session was started
        assert reads.count == before  # and nothing was read
        assert cookie(c) is None
        r = await get_page(c, "/account")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")
        assert (await get_page(c, "/public/x")).status_code == 200


@pytest.mark.checklist("SES-08")
async def test_memo_never_outlives_a_short_idle_timeout(clock: FixedClock) -> None:
    app = make_app(clock, idle_timeout="30s")
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(1)
        assert await is_verified(c)  # remembered
        clock.advance(40)  # idle for 41 s > 30 s: the session is over
        r = await get_page(c, "/account")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")


@pytest.mark.checklist("SES-08")
async def test_activity_keeps_a_short_idle_timeout_alive(clock: FixedClock) -> None:
    """An idle timeout under a minute is still moved by activity (every quarter of it)."""
    app = make_app(clock, idle_timeout="30s")
    async with client(app) as c:
        await sign_up(c, clock)
        for _ in range(12):  # two minutes of a request every 10 s
            clock.advance(10)
            assert await is_verified(c)


# --- the memo itself --------------------------------------------------------------------------


def hits(ticket: Replay | Pass) -> bool:
    """A memo hit: the gate's `Pass` itself (final), or a `Replay` holding it."""
    return isinstance(ticket, Pass) or ticket.passed is not None


def test_replay_hits_only_the_same_request_while_nothing_changed(clock: FixedClock) -> None:
    store = MemoryStore()
    rt = Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock))
    passed = Pass(mfa=MFAState(True, "verified"))

    def cookies(token: str) -> str:  # a Cookie header holding our cookie
        return f"other=1; {rt.cookie_name}={token}"

    assert not rt.config.access.rules.may_deny

    def remembered(until: float) -> None:
        ticket = replay(rt, cookies("token"), "marker", "alice", "/", "GET")
        assert isinstance(ticket, Replay)
        assert not hits(ticket)
        remember(rt, ticket, GateResult(None, replay_until=until), passed)

    ticket = replay(rt, cookies("token"), "marker", "alice", "/", "GET")
    assert isinstance(ticket, Replay)
    assert not hits(ticket)
    remember(rt, ticket, GateResult(None), passed)  # an answer without a deadline is not kept
    assert len(rt.verified_memo) == 0
    assert not hits(replay(rt, cookies("token"), "marker", "alice", "/", "GET"))

    until = clock() + 100
    remembered(until)
    hit = replay(rt, cookies("token"), "marker", "alice", "/", "GET")
    assert hit is passed  # no rule can deny: the hit decides alone, with the session's state
    assert not hits(replay(rt, cookies("token"), "other-marker", "alice", "/", "GET"))
    assert not hits(replay(rt, cookies("token"), None, "alice", "/", "GET"))
    assert not hits(replay(rt, cookies("token"), "marker", "bob", "/", "GET"))
    assert not hits(replay(rt, cookies("other-token"), "marker", "alice", "/", "GET"))
    for empty in ("", "other=1", cookies("")):  # no cookie of ours, or an empty one
        miss = replay(rt, empty, "marker", "alice", "/", "GET")
        assert isinstance(miss, Replay)
        assert not hits(miss)
        assert miss.key is None

    store.put(Key("anything", "_", "x"), {"v": 1})  # any write changes the generation
    assert not hits(replay(rt, cookies("token"), "marker", "alice", "/", "GET"))

    remembered(until)
    assert hits(replay(rt, cookies("token"), "marker", "alice", "/", "GET"))
    clock.set(until - 1)
    assert hits(replay(rt, cookies("token"), "marker", "alice", "/", "GET"))
    clock.set(until)
    assert not hits(replay(rt, cookies("token"), "marker", "alice", "/", "GET"))


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "deny", "paths": ["/admin/**"]},
        {"action": "two_factor", "paths": ["/billing/**"], "max_age": "5m"},
    ],
)
def test_replay_hit_is_not_final_when_a_rule_may_deny_or_step_up(
    clock: FixedClock, rule: dict[str, Any]
) -> None:
    rt = Runtime(
        MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), clock=clock, rules=[rule])
    )
    rules = rt.config.access.rules
    assert rules.may_deny or rules.may_step_up
    cookies = f"{rt.cookie_name}=token"
    ticket = replay(rt, cookies, None, "alice", "/", "GET")
    assert isinstance(ticket, Replay)
    passed = Pass(mfa=MFAState(True, "verified"))
    remember(rt, ticket, GateResult(None, replay_until=clock() + 100), passed)
    assert replay(rt, cookies, None, "alice", "/", "GET") is passed  # path settles it: no rule
    ruled = "/admin/x" if rule["action"] == "deny" else "/billing/x"
    hit = replay(rt, cookies, None, "alice", ruled, "GET")
    assert isinstance(hit, Replay)  # a deny, or a rule asking more: the gate must run
    assert hit.passed is passed


def test_a_rule_that_looks_at_the_user_is_left_to_the_gate(clock: FixedClock) -> None:
    rules = [{"action": "deny", "groups": ["contractors"]}]
    rt = Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), clock=clock, rules=rules))
    cookies = f"{rt.cookie_name}=token"
    ticket = replay(rt, cookies, None, "alice", "/", "GET")
    assert isinstance(ticket, Replay)
    passed = Pass(mfa=MFAState(True, "verified"))
    remember(rt, ticket, GateResult(None, replay_until=clock() + 100), passed)
    hit = replay(rt, cookies, None, "alice", "/", "GET")
    assert isinstance(hit, Replay)  # only the principal can tell: `access` asks
    assert hit.passed is passed
