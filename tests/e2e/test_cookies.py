"""Bad MFA session cookies count as no cookie; cookie attributes and page security headers."""

from __future__ import annotations

import httpx
import pytest

from .helpers import (
    COOKIE,
    HTML,
    FixedClock,
    challenge_page,
    client,
    cookie,
    enroll,
    is_verified,
    login,
    logout,
    make_app,
    mfa_set_cookie,
    relogin,
    set_cookie,
    sign_up,
    submit_code,
    totp,
)

pytestmark = pytest.mark.anyio


def _flip(value: str, index: int) -> str:
    """`value` with one letter or digit at or after `index` changed."""
    while not value[index].isalnum():
        index += 1
    replacement = "B" if value[index] == "A" else "A"
    return value[:index] + replacement + value[index + 1 :]


async def _assert_challenged(c: httpx.AsyncClient, clock: FixedClock, secret: str) -> None:
    """Not let through; sent to the challenge, which then works with a new code."""
    r = await c.get("/account", headers=HTML)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
    r = await c.get("/api/profile", headers={"accept": "application/json"})
    assert r.status_code == 401
    assert r.json()["error"] == "mfa_required"
    clock.advance(30)
    r = await submit_code(c, totp(secret, clock()))
    assert r.status_code == 303
    assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.parametrize("where", ["payload", "signature"])
@pytest.mark.checklist("SES-02", "SES-03", "SES-06")
async def test_tampered_cookie_is_absent(clock: FixedClock, where: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        value = cookie(c)
        assert value is not None
        dot = value.rindex(".")
        index = 2 if where == "payload" else dot + (len(value) - dot) // 2
        tampered = _flip(value, index)
        assert tampered != value
        set_cookie(c, tampered)
        await _assert_challenged(c, clock, secret)


@pytest.mark.parametrize("value", ["garbage", "", "x" * 5000, "a.b.c", '"quoted"'])
@pytest.mark.checklist("SES-02")
async def test_garbage_cookie_is_absent(clock: FixedClock, value: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        set_cookie(c, value)
        await _assert_challenged(c, clock, secret)


@pytest.mark.parametrize("value", ["garbage", "", "x" * 5000])
async def test_garbage_cookie_before_enrollment_is_absent(clock: FixedClock, value: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        set_cookie(c, value)
        for path in ("/account", "/_mfa/challenge", "/_mfa/enroll/totp"):
            r = await c.get(path, headers=HTML)
            assert r.status_code in (200, 303), (path, r.status_code)
            if path == "/account":
                assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        secret = await enroll(c, clock)
        assert secret
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("SES-03")
async def test_other_users_cookie_is_absent(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as bob, client(app) as alice:
        await sign_up(bob, clock, "bob")
        alice_secret = await sign_up(alice, clock, "alice")
        assert (await bob.get("/account", headers=HTML)).status_code == 200
        bobs_cookie = cookie(bob)
        assert bobs_cookie is not None
        await relogin(alice)
        assert (await alice.get("/account", headers=HTML)).status_code == 303
        set_cookie(alice, bobs_cookie)
        r = await alice.get("/account", headers=HTML)
        assert r.status_code == 303
        assert "bob" not in r.text
        await _assert_challenged(alice, clock, alice_secret)
        # Bob's own session is untouched.
        r = await bob.get("/account", headers=HTML)
        assert r.status_code == 200
        assert "Signed in as <strong>bob</strong>" in r.text


@pytest.mark.checklist("SES-06")
async def test_expired_session_is_never_let_through(clock: FixedClock) -> None:
    app = make_app(clock, session_lifetime="1h")
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        expired = cookie(c)
        assert expired is not None
        clock.advance(3601)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Faccount"
        assert cookie(c) is None  # cleared
        # The app session was ended as well: the demo itself asks for a login.
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/account"
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
        # Bringing the expired cookie back into the new login does not help.
        set_cookie(c, expired)
        await _assert_challenged(c, clock, secret)


@pytest.mark.checklist("SES-01", "SES-03")
async def test_cookie_of_a_previous_login_is_absent(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        previous = cookie(c)
        assert previous is not None
        await relogin(c)
        assert (await c.get("/account", headers=HTML)).status_code == 303
        set_cookie(c, previous)
        await _assert_challenged(c, clock, secret)


async def test_expired_session_api_gets_json(clock: FixedClock) -> None:
    app = make_app(clock, session_lifetime="1h")
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(3601)
        r = await c.get("/api/profile", headers={"accept": "application/json"})
        assert r.status_code == 401
        body = r.json()
        assert body["error"] == "session_expired"
        assert body["location"] == "/login"


@pytest.mark.checklist("SES-05")
async def test_cookie_attributes_plain_http(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        header = mfa_set_cookie(r)
        assert header is not None, r.headers
        attributes = [part.strip() for part in header.split(";")]
        assert "HttpOnly" in attributes
        assert "SameSite=Lax" in attributes
        assert "Path=/" in attributes
        assert "Secure" not in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)
        # Pages setting the cookie too.
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.status_code == 200


@pytest.mark.checklist("SES-05", "SES-16")
async def test_cookie_secure_uses_host_prefix(clock: FixedClock) -> None:
    app = make_app(clock, cookie_secure=True)
    async with client(app, base_url="https://testserver") as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        header = mfa_set_cookie(r, "__Host-mfa_session")
        assert header is not None, r.headers
        assert mfa_set_cookie(r) is None
        attributes = [part.strip() for part in header.split(";")]
        for expected in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
            assert expected in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)
        # The whole flow works with the prefixed cookie.
        await enroll(c, clock)
        assert cookie(c, "__Host-mfa_session") is not None
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("UI-03")
async def test_pages_send_security_headers(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        responses = [
            await c.get("/_mfa/enroll", headers=HTML),
            await c.get("/_mfa/enroll/totp", headers=HTML),
            await c.get("/_mfa/nowhere", headers=HTML),
            await c.post("/_mfa/enroll/totp", data={"code": "1"}, headers=HTML),
        ]
        secret = await enroll(c, clock)
        await relogin(c)
        responses.append(await challenge_page(c))
        clock.advance(30)
        responses.append(await submit_code(c, "000"))
        for r in responses:
            assert r.status_code in (200, 400, 403, 404), r.status_code
            assert r.headers["cache-control"] == "no-store"
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"
        # Redirects from the gate are not cached either.
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["cache-control"] == "no-store"
        r = await submit_code(c, totp(secret, clock()))
        assert r.status_code == 303
        assert r.headers["cache-control"] == "no-store"


@pytest.mark.checklist("SES-02")
async def test_a_planted_session_cookie_is_never_adopted(clock: FixedClock) -> None:
    """Session fixation: a value the attacker chose, or the attacker's own pending session of
    the same account, planted in the victim's browser before she logs in, never becomes her
    verified session, and the attacker's copy stays unverified."""
    app = make_app(clock)
    async with client(app) as victim:
        secret = await sign_up(victim, clock)
        await logout(victim)
    async with client(app) as attacker:
        await login(attacker)  # knows the password, not the second factor
        assert not await is_verified(attacker)
        theirs = cookie(attacker)
        assert theirs is not None
        for planted in ("attacker-chosen", theirs):
            async with client(app) as victim:
                victim.cookies.set(COOKIE, planted, domain="testserver.local")  # as ours
                await login(victim)
                clock.advance(30)
                assert (await submit_code(victim, totp(secret, clock()))).status_code == 303
                assert await is_verified(victim)
                issued = cookie(victim)
                assert issued not in (planted, theirs)
            assert not await is_verified(attacker)
            set_cookie(attacker, issued or "")  # even her new cookie: bound to her login
            assert not await is_verified(attacker)
            set_cookie(attacker, theirs)
