"""What each kind of request gets: API JSON, browser redirects, HEAD, WebSockets, anonymous."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from mfa_middleware import MemoryStore, MFAConfig, MFAMiddleware
from tests.security.support import HeaderLogin

from .helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll,
    enroll_sync,
    login,
    login_sync,
    logout_sync,
    make_app,
    mfa_set_cookie,
    raw_request,
    relogin,
    sign_up,
)

JSON = {"accept": "application/json"}
XHR = {"x-requested-with": "XMLHttpRequest"}


@pytest.mark.anyio
@pytest.mark.checklist("ENR-04")
async def test_api_requests_of_unenrolled_user_get_json_401(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        for headers in (JSON, XHR, {**XHR, "accept": "*/*"}):
            r = await c.get("/api/profile", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["content-type"].startswith("application/json")
            assert r.json() == {
                "error": "mfa_enrollment_required",
                "location": "/_mfa/enroll?next=%2Fapi%2Fprofile",
            }
        # A POST that does not ask for HTML is an API call too (next is home for POSTs).
        r = await c.post("/api/profile", content=b"{}", headers={"content-type": "text/plain"})
        assert r.status_code == 401
        assert r.json() == {"error": "mfa_enrollment_required", "location": "/_mfa/enroll"}
        # The app never ran: nothing of alice's profile leaked.
        assert "alice" not in r.text


@pytest.mark.anyio
@pytest.mark.checklist("UI-01")
async def test_api_requests_of_unverified_user_get_json_401(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        r = await c.get("/api/profile", headers=JSON)
        assert r.status_code == 200
        assert r.json() == {"username": "alice"}
        await relogin(c)
        for headers in (JSON, XHR):
            r = await c.get("/api/profile", headers=headers)
            assert r.status_code == 401
            assert r.json() == {
                "error": "mfa_required",
                "location": "/_mfa/challenge?next=%2Fapi%2Fprofile",
            }
        r = await c.post("/api/profile")
        assert r.status_code == 401
        assert r.json() == {"error": "mfa_required", "location": "/_mfa/challenge"}


@pytest.mark.anyio
async def test_browser_requests_get_303_with_safe_next(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account?tab=1&x=%2F", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount%3Ftab%3D1%26x%3D%252F"
        assert r.content == b""
        # A browser GET that does not say what it accepts is a browser too.
        r = await c.get("/account")
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        # A browser form POST (Accept: text/html) is redirected, with home as next.
        r = await c.post("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/enroll"


@pytest.mark.anyio
@pytest.mark.checklist("EX-06", "UI-01")
async def test_head_is_redirected_like_get_without_body(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        get = await c.get("/account", headers=HTML)
        head = await c.head("/account", headers=HTML)
        assert head.status_code == get.status_code == 303
        assert head.headers["location"] == get.headers["location"]
        assert head.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        status, headers, body = await raw_request(app, "HEAD", "/account", c, HTML)
        assert status == 303
        assert headers["location"] == "/_mfa/enroll?next=%2Faccount"
        assert body == b""
        # A page with a body: HEAD sends its headers and length, and no body.
        status, headers, body = await raw_request(app, "GET", "/_mfa/enroll/totp", c, HTML)
        assert status == 200
        assert len(body) > 0
        status, headers, body = await raw_request(app, "HEAD", "/_mfa/enroll/totp", c, HTML)
        assert status == 200
        assert body == b""
        assert int(headers["content-length"]) > 0
        assert headers["cache-control"] == "no-store"
        # The same for the challenge page and the gate of an enrolled user.
        await enroll(c, clock)
        await relogin(c)
        status, headers, body = await raw_request(app, "HEAD", "/_mfa/challenge", c, HTML)
        assert status == 200
        assert body == b""
        status, headers, body = await raw_request(app, "HEAD", "/account", c, HTML)
        assert status == 303
        assert headers["location"] == "/_mfa/challenge?next=%2Faccount"
        assert body == b""


@pytest.mark.checklist("EX-06", "UI-01")
def test_websocket_of_unverified_user_is_closed_before_accept(clock: FixedClock) -> None:
    app = make_app(clock)
    with TestClient(app, follow_redirects=False) as tc:
        login_sync(tc)
        with pytest.raises(WebSocketDisconnect) as exc, tc.websocket_connect("/ws"):
            pass
        assert exc.value.code == 1008
        enroll_sync(tc, clock)
        with tc.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"hello": "alice"}

        # A new login: enrolled but not verified in this session -> closed again.
        logout_sync(tc)
        login_sync(tc)
        with pytest.raises(WebSocketDisconnect) as exc, tc.websocket_connect("/ws"):
            pass
        assert exc.value.code == 1008


@pytest.mark.checklist("GEN-01")
def test_websocket_when_store_is_down_is_closed_1013(clock: FixedClock) -> None:
    from .test_stores import FlakyStore

    store = FlakyStore()
    app = make_app(clock, store=store)
    with TestClient(app, follow_redirects=False) as tc:
        login_sync(tc)
        enroll_sync(tc, clock)
        store.down = True
        with pytest.raises(WebSocketDisconnect) as exc, tc.websocket_connect("/ws"):
            pass
        assert exc.value.code == 1013
        store.down = False
        with tc.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"hello": "alice"}


def test_anonymous_websocket_passes_to_app(clock: FixedClock) -> None:
    """Anonymous connections are the app's business (the demo greets an anonymous user)."""
    app = make_app(clock)
    with TestClient(app, follow_redirects=False) as tc, tc.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"hello": ""}


@pytest.mark.anyio
async def test_anonymous_requests_pass_through(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        r = await c.get("/", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/account"
        r = await c.get("/api/profile", headers=JSON)
        assert r.status_code == 401
        assert r.json() == {"error": "login_required"}  # the demo's own answer
        r = await c.get("/login?next=/account", headers=HTML)
        assert r.status_code == 200
        assert 'name="next" value="/account"' in r.text
        forged = {"username": "alice", "password": "alice-password"}  # a form from elsewhere
        r = await c.post("/login", data=forged)
        assert r.status_code == 403  # the demo's own login form carries a CSRF token
        assert "This form expired" in r.text
        assert (await c.get("/account", headers=HTML)).status_code == 303  # not logged in
        form = await c.get("/login", headers=HTML)
        wrong = {"username": "alice", "password": "wrong", "csrf": csrf_of(form.text)}
        r = await c.post("/login", data=wrong)
        assert r.status_code == 400
        assert "Wrong username or password." in r.text
        r = await c.get("/health")
        assert r.status_code == 200
        assert r.json() == {"ok": True}
        assert "mfa_session" not in c.cookies
        # The 2FA pages send anonymous visitors to the app's login.
        r = await c.get("/_mfa/challenge", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        r = await c.get("/_mfa/challenge", headers=JSON)
        assert r.status_code == 401
        assert r.json()["error"] == "login_required"
        # The demo's login then redirects where it was asked to.
        right = {**wrong, "password": "alice-password", "next": "/account"}
        r = await c.post("/login", data=right)
        assert r.status_code == 303
        assert r.headers["location"] == "/account"


@pytest.mark.anyio
async def test_health_is_bypassed_for_anyone(clock: FixedClock) -> None:
    """The demo's bypass rule: /health answers anonymous, verified and unverified users alike."""
    app = make_app(clock)
    async with client(app) as anonymous, client(app) as unverified, client(app) as verified:
        r = await anonymous.get("/health")
        assert r.status_code == 200
        assert r.json() == {"ok": True}

        await sign_up(verified, clock)
        r = await verified.get("/health")
        assert r.status_code == 200
        assert r.json() == {"ok": True}

        await login(unverified)
        r = await unverified.get("/health")
        assert r.status_code == 200
        assert r.json() == {"ok": True}


@pytest.mark.anyio
async def test_verified_request_sets_no_cookie(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 200
        assert mfa_set_cookie(r) is None


@pytest.mark.checklist("EX-06")
def test_lifespan_passes_through_to_the_app(clock: FixedClock) -> None:
    """Only `http` and `websocket` scopes are gated; the app's startup and shutdown run."""
    ran: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ran.append("startup")
        yield
        ran.append("shutdown")

    config = MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), clock=clock)
    app = Starlette(
        lifespan=lifespan,
        middleware=[
            Middleware(AuthenticationMiddleware, backend=HeaderLogin({})),
            Middleware(MFAMiddleware, config=config),
        ],
    )
    with TestClient(app):
        assert ran == ["startup"]
    assert ran == ["startup", "shutdown"]
