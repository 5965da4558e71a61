"""Sessions under attack (issue 14, points 3, 7, 9, 10, 12, 13): trusting a device, logging
out, logging others out, cookies hidden in other cookies, HEAD, and cookieless callers."""

from __future__ import annotations

import httpx
import pytest
from examples.starlette_app.users import DEMO_API_TOKENS

from mfa_middleware import MemoryStore
from mfa_middleware.core.effects import Key
from tests.e2e.helpers import (
    COOKIE,
    HTML,
    FixedClock,
    client,
    cookie,
    csrf_of,
    enroll,
    is_verified,
    login,
    make_app,
    raw_request,
    sign_up,
    submit_code,
    totp,
)
from tests.security.support import CountingStore

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
REAUTH_WINDOW = 15 * 60


def copy_of(c: httpx.AsyncClient) -> dict[str, str]:
    """Every cookie a browser holds, as a thief would copy them."""
    return {k.name: k.value for k in c.cookies.jar}


async def replays(app: object, stolen: dict[str, str]) -> bool:
    """Whether a browser holding only `stolen` reaches the protected page."""
    async with client(app) as thief:  # type: ignore[arg-type]
        for name, value in stolen.items():
            thief.cookies.set(name, value)
        return await is_verified(thief)


@pytest.mark.checklist("TD-08", "SES-18")
async def test_trusting_this_device_needs_a_code_entered_just_now(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, trust_duration="30d")
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)  # on to "Trust this device?"
        prompt = await c.get("/_mfa/trust?next=/account", headers=HTML)
        assert prompt.status_code == 200
        clock.advance(REAUTH_WINDOW + 60)  # a stolen session, long after the code
        r = await c.post(
            "/_mfa/trust",
            headers=HTML,
            data={"csrf": csrf_of(prompt.text), "choice": "trust", "next": "/account"},
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        assert not any(d.get("trusted_until") for _, d in store.scan("device", "alice"))
        page = await c.get("/_mfa/trust?next=/account", headers=HTML)
        assert page.headers["location"].startswith("/_mfa/challenge?reauth=1")


@pytest.mark.checklist("SES-10")
async def test_the_apps_logout_ends_the_mfa_session_server_side(clock: FixedClock) -> None:
    """Starlette's session lives in a signed cookie: a copy of it and of our cookie, taken
    before the user logged out, must not be a verified session afterwards."""
    app = make_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        stolen = copy_of(c)
        assert await replays(app, stolen)  # the copy works while she is logged in
        account = await c.get("/account", headers=HTML)
        r = await c.post("/logout", data={"csrf": csrf_of(account.text)}, headers=HTML)
        assert r.status_code == 303  # the app's own logout
    assert not await replays(app, stolen)


@pytest.mark.checklist("SES-10")
async def test_signing_out_from_our_pages_ends_the_mfa_session_server_side(
    clock: FixedClock,
) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        stolen = copy_of(c)
        page = await c.get("/_mfa/settings", headers=HTML)
        r = await c.post("/_mfa/logout", data={"csrf": csrf_of(page.text)}, headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        assert cookie(c) is None
    assert not await replays(app, stolen)


@pytest.mark.checklist("SES-13")
async def test_logging_out_other_sessions_needs_a_recent_code(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as owner, client(app) as stolen:
        secret = await sign_up(owner, clock)
        await login(stolen)
        clock.advance(30)
        assert (await submit_code(stolen, totp(secret, clock()))).status_code == 303
        clock.advance(REAUTH_WINDOW + 60)  # the thief's session is old now
        page = await stolen.get("/_mfa/settings", headers=HTML)
        r = await stolen.post(
            "/_mfa/settings/sessions", data={"csrf": csrf_of(page.text)}, headers=HTML
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/challenge?reauth=1&next=%2F_mfa%2Fsettings"
        assert await is_verified(owner)  # not evicted


async def test_a_cookie_name_inside_another_cookies_value_is_not_ours(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c, client(app) as bare:
        await sign_up(c, clock)
        real = cookie(c)
        assert real is not None
        session = copy_of(c)["session"]
        # our real cookie after a tracker whose value contains "mfa_session=evil"
        header = f"session={session}; tracker=x {COOKIE}=evil; {COOKIE}={real}"
        status, _, _ = await raw_request(app, "GET", "/account", bare, {**HTML, "cookie": header})
        assert status == 200
        # and our cookie's value hidden inside another cookie is not a session at all
        header = f"session={session}; tracker=x {COOKIE}={real}"
        status, _, _ = await raw_request(app, "GET", "/account", bare, {**HTML, "cookie": header})
        assert status == 303


@pytest.mark.checklist("EX-06")
async def test_head_meets_a_deny_rule_written_for_get(clock: FixedClock) -> None:
    rules = [{"action": "deny", "paths": ["/admin"], "methods": ["GET", "POST"]}]
    app = make_app(clock, rules=rules)
    async with client(app) as c:
        await sign_up(c, clock)
        status, headers, body = await raw_request(app, "HEAD", "/admin", c, HTML)
        assert status == 403
        assert body == b""
        assert headers["content-length"] != str(len(b"The admin area."))


@pytest.mark.checklist("EX-04")
async def test_cookieless_api_calls_write_nothing_and_set_no_cookie(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store)
    from mfa_middleware.admin import Admin
    from mfa_middleware.config import MFAConfig
    from mfa_middleware.runtime import Runtime
    from tests.e2e.helpers import SECRET_KEY

    Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "t").exempt("bob")
    token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", **JSON}
    before = len(store.writes)
    async with client(app) as api:
        for _ in range(100):
            r = await api.get("/api/profile", headers=token)
            assert r.status_code == 200
            assert "set-cookie" not in r.headers
    assert len(store.writes) == before
    assert store.scan("device", "bob") == []


async def test_a_browser_that_never_meets_a_2fa_page_gets_no_device(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store, mode="optional")
    async with client(app) as c:
        await login(c)
        for _ in range(10):
            assert (await c.get("/account", headers=HTML)).status_code == 200
    assert store.scan("device", "alice") == []
    # only her directory entry, once for the login (the admin pages find and list users by it)
    assert [k for k in store.writes if k.kind != "settings"] == [Key("directory", "_", "alice")]
    assert store.get(Key("user", "alice")) is None


@pytest.mark.checklist("SES-11", "SES-12", "SES-06")
@pytest.mark.parametrize("how", ["dropped", "replaced"])
async def test_dropping_the_mfa_cookie_does_not_escape_a_force_logout(
    clock: FixedClock, how: str
) -> None:
    """Found by the stateful fuzzer: where no factor is asked (here mode off), a login whose MFA
    cookie went missing used to get a fresh MFA session under the new epochs and lifetime."""
    store = MemoryStore()
    app = make_app(clock, store=store, mode="off")
    from mfa_middleware.admin import Admin
    from mfa_middleware.config import MFAConfig
    from mfa_middleware.runtime import Runtime
    from tests.e2e.helpers import SECRET_KEY

    ops = Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "t")
    async with client(app) as thief, client(app) as other:
        await login(thief)
        await login(other, "bob")
        assert await is_verified(thief)  # mode off: no factor asked
        assert await is_verified(other)
        ops.logout("alice")
        if how == "dropped":
            thief.cookies.delete(COOKIE)
        else:
            value = cookie(other)
            assert value is not None
            thief.cookies.delete(COOKIE)
            thief.cookies.set(COOKIE, value)
        r = await thief.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
        assert not await is_verified(thief)  # the app's own session ended too
