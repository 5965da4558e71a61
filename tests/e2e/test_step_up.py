"""Step-up (issue 18): what the app sees of the second factor (`scope["mfa"]`), rules that ask
for a fresh one (`max_age`, `device_ok: false`), and how a browser, a single-page app's JSON
request and a form POST are answered. The demo's /billing has the rule
{"action": "two_factor", "paths": ["/billing"], "max_age": "5m", "device_ok": False}."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from examples.starlette_app.users import DEMO_API_TOKENS

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core.rules import Rule
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    login,
    logout,
    make_app,
    sign_up,
    totp,
    visible,
)
from tests.e2e.test_devices import answer_prompt, enroll_to_prompt

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}


def text_of(r: httpx.Response) -> str:
    return " ".join(visible(r).split())


async def step_up_with(c: httpx.AsyncClient, location: str, code: str) -> httpx.Response:
    """On the challenge page a step-up sent us to: enter the code, follow back."""
    page = await c.get(location, headers=HTML)
    assert page.status_code == 200, page.text
    nxt = parse_qs(urlsplit(location).query)["next"][0]
    data = {"csrf": csrf_of(page.text), "code": code, "reauth": "1", "next": nxt, "via": "totp"}
    return await c.post("/_mfa/challenge", data=data, headers=HTML)


async def mfa_of(c: httpx.AsyncClient, headers: dict[str, str] = JSON) -> dict[str, object]:
    """What the app sees of the second factor (the demo's /api/mfa shows `scope["mfa"]`)."""
    r = await c.get("/api/mfa", headers=headers)
    assert r.status_code == 200, r.text
    state = r.json()
    assert isinstance(state, dict)
    return state


async def test_the_app_reads_how_and_when_the_user_verified(clock: FixedClock) -> None:
    async with client(make_app(clock, idle_timeout="1h")) as c:
        await sign_up(c, clock)
        state = await mfa_of(c)
        assert state["verified"] is True
        assert state["reason"] == "verified"
        assert state["method"] == "totp"
        assert state["amr"] == ["otp"]
        assert state["verified_at"] == int(clock())
        assert state["trusted_device"] is False
        assert state["expires_at"] == float(str(state["login_at"])) + 90 * 86400
        assert state["idle_expires_at"] is not None
        clock.advance(42)
        assert (await mfa_of(c))["age"] == 42  # a memo hit: the same state, its age now
        account = await c.get("/account", headers=HTML)
        assert "Second step: an authenticator app code, 42 seconds ago." in text_of(account)


async def test_max_age_steps_up_a_browser_and_brings_it_back(clock: FixedClock) -> None:
    async with client(make_app(clock)) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/billing", headers=HTML)).status_code == 200  # fresh
        clock.advance(301)
        assert (await c.get("/account", headers=HTML)).status_code == 200  # no rule there
        r = await c.get("/billing?tab=cards", headers=HTML)
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/_mfa/challenge?reauth=1&stepup=1")
        assert parse_qs(urlsplit(location).query)["next"] == ["/billing?tab=cards"]
        page = await c.get(location, headers=HTML)
        assert "This page asks you to confirm it's you again" in text_of(page)
        done = await step_up_with(c, location, totp(secret, clock()))
        assert done.status_code == 303
        assert done.headers["location"] == "/billing?tab=cards"
        assert (await c.get("/billing", headers=HTML)).status_code == 200  # no new login
        clock.advance(301)
        assert (await c.get("/billing", headers=HTML)).status_code == 303  # stale again


async def test_a_json_request_gets_rfc_9470s_challenge(clock: FixedClock) -> None:
    async with client(make_app(clock)) as c:
        await sign_up(c, clock)
        clock.advance(301)
        r = await c.get("/billing", headers=JSON)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == (
            'Bearer error="insufficient_user_authentication",'
            ' error_description="A more recent second factor is required", max_age=300'
        )
        body = r.json()
        assert body["error"] == "insufficient_user_authentication"
        assert body["max_age"] == 300
        assert body["location"].startswith("/_mfa/challenge?reauth=1&stepup=1")


async def test_a_refused_post_returns_to_the_page_that_made_it(clock: FixedClock) -> None:
    rules = [Rule("two_factor", paths=["/account"], methods=["POST"], max_age=60)]
    async with client(make_app(clock, rules=rules)) as c:
        secret = await sign_up(c, clock)
        clock.advance(61)
        r = await c.post(
            "/account",
            data={"x": "1"},
            headers={**HTML, "referer": "http://testserver/account?edit=1"},
        )
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/_mfa/challenge?reauth=1&stepup=post")
        assert parse_qs(urlsplit(location).query)["next"] == ["/account?edit=1"]
        page = await c.get(location, headers=HTML)
        assert "What you sent was not saved. After confirming, send it again." in text_of(page)
        done = await step_up_with(c, location, totp(secret, clock()))
        assert done.headers["location"] == "/account?edit=1"
        # a Referer from another site is never followed
        clock.advance(61)
        r = await c.post("/account", headers={**HTML, "referer": "https://evil.example/x"})
        assert parse_qs(urlsplit(r.headers["location"]).query).get("next") is None


@pytest.mark.checklist("SES-18", "TD-01")
async def test_a_trusted_device_session_is_stepped_up_where_devices_do_not_count(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    async with client(make_app(clock, store=store, trust_duration="30d")) as c:
        await login(c)
        secret, _ = await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        await logout(c)
        await login(c)  # the trusted browser: no code
        state = await mfa_of(c)
        assert state["method"] == "device"
        assert state["amr"] == ["device"]
        assert state["trusted_device"] is True
        assert (await c.get("/account", headers=HTML)).status_code == 200
        r = await c.get("/billing", headers=HTML)
        assert r.status_code == 303  # fresh, but a device's: not enough here
        clock.advance(30)
        done = await step_up_with(c, r.headers["location"], totp(secret, clock()))
        assert done.headers["location"] == "/billing"
        assert (await c.get("/billing", headers=HTML)).status_code == 200
        state = await mfa_of(c)
        assert state["method"] == "totp"
        assert state["trusted_device"] is False


async def test_exempt_and_not_enrolled_users_are_not_stepped_up(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, mode="optional")
    async with client(app) as c:
        await login(c)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        state = await mfa_of(c)
        assert state["verified"] is False
        assert state["reason"] == "not_enrolled"
        assert state["amr"] == []
        r = await c.get("/billing", headers=HTML)  # the rule asks for 2FA: enroll first
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)
    Admin(Runtime(config), "test").exempt("bob")  # a service account's API token
    token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", **JSON}
    async with client(app) as api:
        state = await mfa_of(api, token)
        assert (state["verified"], state["reason"], state["amr"]) == (False, "exempt", ["exempt"])
        assert (await api.get("/billing", headers=token)).status_code == 200  # no step-up


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": "bypass", "paths": ["/x"], "max_age": "5m"}, "belong to a two_factor rule"),
        ({"action": "two_factor", "max_age": "soon"}, r"rules\[0\]\.max_age"),
        ({"action": "two_factor", "device_ok": "no"}, "device_ok must be True or False"),
    ],
)
def test_a_bad_freshness_rule_fails_loudly(
    clock: FixedClock, rule: dict[str, object], message: str
) -> None:
    from mfa_middleware.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_app(clock, rules=[rule])
