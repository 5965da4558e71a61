"""Session lifetime, idle timeout, force-logout, modes and access rules, end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from examples.starlette_app.app import STATIC_FILES
from examples.starlette_app.users import DEMO_API_TOKENS

from mfa_middleware import MemoryStore, MFAConfig, SQLiteStore
from mfa_middleware.admin import Admin
from mfa_middleware.core.records import throttle_key
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores.base import Store
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll,
    is_verified,
    login,
    make_app,
    raw_request,
    relogin,
    set_cookie,
    sign_up,
    submit_code,
    totp,
    wrong_code,
)
from tests.e2e.helpers import cookie as cookie_of

DAY = 86400.0
JSON = {"accept": "application/json"}


def admin_for(store: Store, clock: FixedClock, **options: object) -> Admin:
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock, **options)  # type: ignore[arg-type]
    return Admin(Runtime(config), actor="test:ops")


async def expect_logged_out(c: httpx.AsyncClient) -> None:
    r = await c.get("/account", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    again = await c.get("/account", headers=HTML)
    assert again.headers["location"] == "/login?next=/account"  # the app session is gone too


@pytest.mark.anyio
@pytest.mark.checklist("SES-07")
async def test_session_ends_exactly_at_its_lifetime(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(90 * DAY - 1)
        assert await is_verified(c)
        clock.advance(1)
        await expect_logged_out(c)


@pytest.mark.anyio
@pytest.mark.checklist("SES-07")
async def test_configured_lifetime_and_api_answer(clock: FixedClock) -> None:
    app = make_app(clock, session_lifetime="12h")
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(12 * 3600)
        r = await c.get("/api/profile", headers=JSON)
        assert r.status_code == 401
        assert r.json()["error"] == "session_expired"
        assert r.json()["location"] == "/login"


@pytest.mark.anyio
@pytest.mark.checklist("SES-08")
async def test_idle_timeout_and_background_polling(clock: FixedClock) -> None:
    app = make_app(
        clock,
        idle_timeout="30m",
        background_request=lambda facts: facts.header("x-background") == "1",
    )
    async with client(app) as c:
        await sign_up(c, clock)
        for _ in range(4):  # activity every 20 minutes keeps the session alive
            clock.advance(20 * 60)
            assert await is_verified(c)
        for _ in range(2):  # polling every 10 minutes does not count as activity
            clock.advance(10 * 60)
            r = await c.get("/api/profile", headers={**JSON, "x-background": "1"})
            assert r.status_code == 200
        clock.advance(10 * 60)
        r = await c.get("/api/profile", headers={**JSON, "x-background": "1"})
        assert r.status_code == 401
        assert r.json()["reason"] == "idle_timeout"


@pytest.mark.anyio
@pytest.mark.checklist("SES-11")
async def test_force_logout_reaches_every_device_of_one_user(clock: FixedClock) -> None:
    shared = MemoryStore()
    app = make_app(clock, store=shared)
    async with client(app) as laptop, client(app) as phone, client(app) as bob:
        secret = await sign_up(laptop, clock)
        await login(phone)
        clock.advance(30)
        r = await submit_code(phone, totp(secret, clock()))
        assert r.status_code == 303
        await sign_up(bob, clock, "bob")
        admin_for(shared, clock).logout("alice")
        await expect_logged_out(laptop)
        await expect_logged_out(phone)
        assert await is_verified(bob)


@pytest.mark.anyio
@pytest.mark.checklist("SES-11", "SES-12")
async def test_force_logout_and_clear_all_across_two_instances(
    clock: FixedClock, tmp_path: Path
) -> None:
    path = tmp_path / "mfa.sqlite3"
    first = make_app(clock, store=SQLiteStore(path))
    second = make_app(clock, store=SQLiteStore(path))
    async with client(first) as alice, client(second) as bob:
        await sign_up(alice, clock)
        await sign_up(bob, clock, "bob")
        assert await is_verified(alice)
        assert await is_verified(bob)  # both instances have cached the state now
        ops = admin_for(SQLiteStore(path), clock)
        ops.logout("bob")
        assert await is_verified(alice)
        await expect_logged_out(bob)
        await login(bob, "bob")
        r = await bob.get("/account", headers=HTML)  # a pending (unverified) MFA session
        assert r.headers["location"].startswith("/_mfa/challenge")
        ops.logout_all()
        await expect_logged_out(alice)
        await expect_logged_out(bob)  # pending logins end too


@pytest.mark.anyio
@pytest.mark.checklist("SES-12")
async def test_new_login_after_clear_all_works(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        admin_for(store, clock).logout_all()
        await expect_logged_out(c)
        await login(c)
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        assert await is_verified(c)


@pytest.mark.anyio
@pytest.mark.checklist("ENR-04")
async def test_required_mode_gates_every_kind_of_request(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        for method in ("GET", "HEAD"):
            r = await c.request(method, "/account", headers=HTML)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/_mfa/enroll")
        r = await c.post("/logout")
        assert r.status_code == 401
        assert r.json()["error"] == "mfa_enrollment_required"
        r = await c.get("/api/profile", headers=JSON)
        assert r.status_code == 401
        await enroll(c, clock)
        assert await is_verified(c)
        assert (await c.get("/api/profile", headers=JSON)).status_code == 200


@pytest.mark.anyio
async def test_optional_mode_lets_unenrolled_users_pass_and_enroll_from_settings(
    clock: FixedClock,
) -> None:
    app = make_app(clock, mode="optional")
    async with client(app) as c:
        await login(c)
        assert await is_verified(c)
        page = await c.get("/_mfa/settings", headers=HTML)
        assert page.status_code == 200
        assert "Set up two-step verification" in page.text
        await enroll(c, clock)
        page = await c.get("/_mfa/settings", headers=HTML)
        assert "Authenticator app" in page.text


@pytest.mark.anyio
async def test_two_factor_rule_requires_enrollment_for_a_group_in_optional_mode(
    clock: FixedClock,
) -> None:
    rules = [{"action": "two_factor", "groups": ["staff"]}]
    app = make_app(clock, mode="optional", rules=rules)
    async with client(app) as alice, client(app) as bob:
        await login(alice)  # alice is in the demo's "staff" group
        r = await alice.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")
        await login(bob, "bob")
        assert await is_verified(bob)


@pytest.mark.anyio
async def test_mode_off_then_on_makes_everyone_enroll_again(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    ops = admin_for(store, clock)
    async with client(app) as c:
        await sign_up(c, clock)
        ops.set_mode("off")
        assert await is_verified(c)
        ops.set_mode("required")
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")
        clock.advance(60)
        await enroll(c, clock)
        assert await is_verified(c)
        ops.set_mode("optional")  # required -> optional does not ask anyone to enroll again
        assert await is_verified(c)


@pytest.mark.anyio
@pytest.mark.checklist("SES-07")
async def test_runtime_session_lifetime_applies_on_the_next_request(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(2 * 3600)
        assert await is_verified(c)
        admin_for(store, clock).set_session_lifetime("1h")
        await expect_logged_out(c)


@pytest.mark.anyio
@pytest.mark.checklist("EX-04", "EX-05")
async def test_exempt_service_account_passes_and_normal_user_gets_401(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    admin_for(store, clock).exempt("bob")
    token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", **JSON}
    async with client(app) as service, client(app) as browser, client(app) as user:
        r = await service.get("/api/profile", headers=token)
        assert r.status_code == 200
        assert r.json() == {"username": "bob"}
        assert "set-cookie" not in r.headers  # an API call carries no MFA state
        # the exemption covers API calls: the same account's password opens no session
        await login(browser, "bob")
        assert (await browser.get("/api/profile", headers=JSON)).status_code == 401
        await login(user, "alice")
        r = await user.get("/api/profile", headers=JSON)
        assert r.status_code == 401
        admin_for(store, clock).exempt("bob", False)
        assert (await service.get("/api/profile", headers=token)).status_code == 401
        admin_for(store, clock).exempt("bob", browser=True)  # browsers too, on purpose
        assert (await browser.get("/api/profile", headers=JSON)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/public/../admin", ""),
        ("/public/%2e%2e/admin", ""),
        ("//admin", ""),
        ("/public/..;/admin", ""),
        ("/admin", "x=/public/"),
        ("/admin#/public", ""),
        ("/PUBLIC/../admin", ""),
    ],
)
@pytest.mark.checklist("EX-03")
async def test_bypass_rules_are_not_fooled(clock: FixedClock, path: str, query: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        status, headers, _ = await raw_request(
            app, "GET", path + (f"?{query}" if query else ""), c, HTML
        )
        assert status == 303
        assert headers["location"].startswith("/_mfa/")


@pytest.mark.anyio
@pytest.mark.checklist("EX-02")
async def test_bypass_rules_ignore_rewrite_and_forwarding_headers(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        spoofed = {
            **HTML,
            "x-original-url": "/public/x",
            "x-rewrite-url": "/health",
            "x-forwarded-for": "10.0.0.1",
            "x-forwarded-host": "internal",
        }
        r = await c.get("/admin", headers=spoofed)
        assert r.status_code == 303
        assert (await c.get("/public/page", headers=HTML)).status_code == 200
        assert (await c.get("/health", headers=HTML)).status_code == 200


@pytest.mark.anyio
@pytest.mark.checklist("EX-02")
async def test_network_rules_trust_forwarded_for_only_from_configured_proxies(
    clock: FixedClock,
) -> None:
    rules = [{"action": "bypass", "paths": ["/admin"], "networks": ["10.1.0.0/16"]}]
    direct = make_app(clock, rules=rules)
    proxied = make_app(clock, rules=rules, trusted_proxies=["127.0.0.1/32"])
    for app, expected in ((direct, 303), (proxied, 200)):
        async with client(app) as c:
            await login(c)
            status, _, _ = await raw_request(
                app, "GET", "/admin", c, {**HTML, "x-forwarded-for": "10.1.2.3"}
            )
            assert status == expected


@pytest.mark.anyio
async def test_deny_rule_refuses_with_403(clock: FixedClock) -> None:
    app = make_app(clock, rules=[{"action": "deny", "paths": ["/admin"], "users": ["bob"]}])
    async with client(app) as bob, client(app) as alice:
        await sign_up(bob, clock, "bob")
        assert (await bob.get("/admin", headers=HTML)).status_code == 403
        assert (await bob.get("/admin", headers=JSON)).json()["error"] == "forbidden"
        await sign_up(alice, clock)
        assert (await alice.get("/admin", headers=HTML)).status_code == 200


@pytest.mark.anyio
@pytest.mark.checklist("SES-13")
async def test_log_out_of_all_other_sessions_keeps_this_one(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as here, client(app) as there:
        secret = await sign_up(here, clock)
        await login(there)
        clock.advance(30)
        assert (await submit_code(there, totp(secret, clock()))).status_code == 303
        page = await here.get("/_mfa/settings", headers=HTML)
        r = await here.post(
            "/_mfa/settings/sessions", data={"csrf": csrf_of(page.text)}, headers=HTML
        )
        assert r.status_code == 303
        assert (
            "Your other sessions have been logged out"
            in (await here.get(r.headers["location"], headers=HTML)).text
        )
        assert await is_verified(here)
        await expect_logged_out(there)


@pytest.mark.anyio
@pytest.mark.checklist("ENR-01")
async def test_changing_the_method_needs_a_recent_code(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        clock.advance(3600)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        page = await c.get(r.headers["location"], headers=HTML)
        assert "Confirm it" in page.text
        done = await c.post(
            "/_mfa/challenge",
            data={
                "csrf": csrf_of(page.text),
                "code": totp(secret, clock()),
                "reauth": "1",
                "next": "/_mfa/enroll/totp",
            },
            headers=HTML,
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/_mfa/enroll/totp"
        assert (await c.get("/_mfa/enroll/totp", headers=HTML)).status_code == 200


@pytest.mark.anyio
@pytest.mark.checklist("RL-02")
async def test_wrong_codes_count_per_account_across_logins_cookies_and_addresses(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, trusted_proxies=["127.0.0.1/32"])
    async with client(app) as c:
        secret = await sign_up(c, clock)
    clock.advance(30)
    bad = wrong_code(secret, clock())
    async with client(app) as first:
        first.headers["x-forwarded-for"] = "198.51.100.1"
        await login(first)
        for _ in range(3):
            assert (await submit_code(first, bad)).status_code == 400
    async with client(app) as second:  # a new login, no cookie in common, another address
        second.headers["x-forwarded-for"] = "203.0.113.9"
        await login(second)
        assert (await submit_code(second, bad)).status_code == 400
        assert (await submit_code(second, bad)).status_code == 429  # the fifth, all told
        assert (await submit_code(second, totp(secret, clock()))).status_code == 429
        assert not await is_verified(second)
    assert store.get(throttle_key("alice"))["failures"] == 5


@pytest.mark.anyio
@pytest.mark.checklist("RL-03")
async def test_only_the_users_own_right_code_clears_their_count(clock: FixedClock) -> None:
    """The attacker's successful logins to their own account, and alice's right password
    typed again, leave alice's count where it is; her own right code clears it."""
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        alice_secret = await sign_up(c, clock)
    async with client(app) as c:
        bob_secret = await sign_up(c, clock, "bob")
    clock.advance(30)
    async with client(app) as attacker:
        await login(attacker)  # alice's password
        for _ in range(2):
            await submit_code(attacker, wrong_code(alice_secret, clock()))
        await relogin(attacker, "bob")  # their own account, from the same browser and address
        assert (await submit_code(attacker, totp(bob_secret, clock()))).status_code == 303
        assert store.get(throttle_key("alice"))["failures"] == 2
        await relogin(attacker, "alice")  # the right password again
        assert store.get(throttle_key("alice"))["failures"] == 2
        for _ in range(2):
            await submit_code(attacker, wrong_code(alice_secret, clock()))
        assert store.get(throttle_key("alice"))["failures"] == 4
    async with client(app) as owner:
        await login(owner)
        assert (await submit_code(owner, totp(alice_secret, clock()))).status_code == 303
    assert store.get(throttle_key("alice")) is None


@pytest.mark.anyio
@pytest.mark.checklist("RL-06")
async def test_without_the_password_nobody_spends_the_users_attempts(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        pending = cookie_of(c)  # alice's own pending login
        csrf = csrf_of((await c.get("/_mfa/challenge", headers=HTML)).text)
    code = wrong_code(secret, clock())
    for forged in (pending, "guessed-session-id", ""):
        async with client(app) as attacker:  # no login of the app: no session of alice's
            attacker.cookies.set("mfa_session", forged or "")
            attacker.cookies.set("session", "forged-app-session")
            for headers in (HTML, JSON):
                r = await attacker.post(
                    "/_mfa/challenge", data={"csrf": csrf, "code": code}, headers=headers
                )
                assert r.status_code in (303, 401)
                assert (r.headers.get("location") or r.json()["location"]) == "/login"
    assert store.get(throttle_key("alice")) is None


@pytest.mark.anyio
@pytest.mark.checklist("SES-07", "SES-08")
async def test_activity_never_extends_the_absolute_lifetime(clock: FixedClock) -> None:
    preset = MFAConfig.aal2(secret_keys=[SECRET_KEY])  # 12 hours, 30 minutes idle
    app = make_app(
        clock, session_lifetime=preset.session_lifetime, idle_timeout=preset.idle_timeout
    )
    async with client(app) as c:
        secret = await sign_up(c, clock)
        for _ in range(12 * 12 - 1):  # a request every five minutes
            clock.advance(300)
            assert await is_verified(c)
        clock.advance(300)  # twelve hours after the login
        await expect_logged_out(c)
        await login(c)  # authenticating again starts both clocks again
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        clock.advance(29 * 60)
        assert await is_verified(c)
        clock.advance(29 * 60)
        assert await is_verified(c)
        clock.advance(30 * 60)  # idle
        await expect_logged_out(c)


@pytest.mark.anyio
@pytest.mark.checklist("SES-09")
async def test_after_inactivity_the_password_alone_does_not_verify(clock: FixedClock) -> None:
    """No password-only reauthentication: once a session is idle past its limit, a new login
    (even with the old session's cookie put back) must enter a code again."""
    app = make_app(clock, session_lifetime="12h", idle_timeout="30m")
    async with client(app) as c:
        secret = await sign_up(c, clock)
        old = cookie_of(c)
        assert old is not None
        clock.advance(31 * 60)
        await expect_logged_out(c)
        await login(c)
        assert not await is_verified(c)
        set_cookie(c, old)
        assert not await is_verified(c)
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        assert await is_verified(c)


@pytest.mark.anyio
@pytest.mark.checklist("ENR-05")
async def test_turning_2fa_on_ends_the_users_other_sessions(clock: FixedClock) -> None:
    app = make_app(clock, mode="optional")
    async with client(app) as here, client(app) as there:
        await login(here)
        await login(there)
        assert await is_verified(there)  # optional mode, not enrolled: in
        await enroll(here, clock)
        assert await is_verified(here)
        await expect_logged_out(there)


@pytest.mark.anyio
@pytest.mark.checklist("SES-14")
async def test_changing_the_factor_ends_the_users_other_sessions(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as here, client(app) as there:
        secret = await sign_up(here, clock)
        await login(there)
        clock.advance(30)
        assert (await submit_code(there, totp(secret, clock()))).status_code == 303
        assert await is_verified(there)
        await enroll(here, clock)  # a new authenticator app, with a recent code
        assert await is_verified(here)
        await expect_logged_out(there)


DEMO_EXEMPT = {"/health", "/metrics", "/public/x", *STATIC_FILES}  # the demo's bypass rule


@pytest.mark.anyio
@pytest.mark.checklist("EX-01", "UI-01")
async def test_every_route_is_gated_unless_a_rule_exempts_it(clock: FixedClock) -> None:
    """Every route of the app, and routes it does not have, in every method, for a user who
    passed the password only: refused unless the bypass rule names it."""
    from starlette.routing import Route

    app = make_app(clock)
    paths = [r.path.replace("{rest:path}", "x") for r in app.routes if isinstance(r, Route)]
    paths += ["/no-such-page", "/api/added-later", "/static/app.js"]
    assert {"/account", "/api/profile", "/admin", "/login", "/logout"} <= set(paths)
    async with client(app) as c:
        await sign_up(c, clock)
        await relogin(c)
        for path in paths:
            for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"):
                status, headers, body = await raw_request(app, method, path, c, HTML)
                gated = headers.get("location", "").startswith("/_mfa/challenge")
                assert gated is (path not in DEMO_EXEMPT), (method, path, status)
                if gated:
                    assert (status, body) == (303, b""), (method, path)
        status, headers, _ = await raw_request(app, "GET", "/api/profile", c, JSON)
        assert (status, "location" in headers) == (401, False)


@pytest.mark.anyio
@pytest.mark.checklist("EX-02")
async def test_no_header_or_query_flag_skips_the_second_step(clock: FixedClock) -> None:
    rules = [{"action": "bypass", "paths": ["/admin"], "networks": ["10.0.0.0/8"]}]
    app = make_app(clock, rules=rules)  # no trusted proxies: forwarding headers are the client's
    spoofed = {
        **HTML,
        "x-forwarded-for": "10.1.2.3",
        "x-real-ip": "10.1.2.3",
        "forwarded": "for=10.1.2.3",
        "x-service-account": "1",
        "x-debug": "1",
        "x-mfa": "off",
        "user-agent": "internal-bot",
        "x-original-url": "/health",
    }
    async with client(app) as c:
        await sign_up(c, clock)
        await relogin(c)
        flags = {"mfa": "0", "skip_mfa": "1", "debug": "1", "verified": "1"}
        for path in ("/account", "/admin"):
            r = await c.get(path, params=flags, headers=spoofed)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/_mfa/challenge"), path
        async with client(make_app(clock, rules=rules, trusted_proxies=["127.0.0.1/32"])) as c:
            await login(c)  # the control: from a trusted proxy, X-Forwarded-For is believed
            assert (await c.get("/admin", headers=spoofed)).status_code == 200
