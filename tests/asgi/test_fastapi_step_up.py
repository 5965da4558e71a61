"""`Depends(require_mfa(max_age="5m"))` in the FastAPI example (issue 18), through httpx
against the app: the route's MFA state when fresh, RFC 9470's 401 for a JSON client and the
challenge page for a browser when stale, and back after the step-up."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from examples.fastapi_app.app import create_app

from mfa_middleware import MemoryStore
from mfa_middleware.testing import FixedClock

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page)
    assert found
    return found.group(1)


async def signed_up(c: httpx.AsyncClient, clock: FixedClock) -> pyotp.TOTP:
    r = await c.post("/login", data={"username": "alice", "password": "alice-password"})
    assert r.status_code == 303
    page = (await c.get("/_mfa/enroll/totp", headers=HTML)).text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    done = await c.post("/_mfa/enroll/totp", data={"csrf": csrf(page), "code": totp.at(clock())})
    assert done.status_code == 303
    return totp


async def test_require_mfa_answers_as_the_middleware_would() -> None:
    clock = FixedClock(1_800_000_000)
    app = create_app(store=MemoryStore(), clock=clock, recovery_code_count=0, trust_duration=0)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        totp = await signed_up(c, clock)
        fresh = await c.get("/billing", headers=JSON)
        assert fresh.status_code == 200
        assert (await c.get("/billing/receipts", headers=JSON)).json()["age"] == 0  # a sync route
        assert fresh.json()["mfa"]["method"] == "totp"
        clock.advance(301)
        assert (await c.get("/", headers=JSON)).status_code == 200  # no requirement there
        assert (await c.get("/billing/receipts", headers=JSON)).status_code == 401
        stale = await c.get("/billing", headers=JSON)
        assert stale.status_code == 401
        assert stale.headers["www-authenticate"] == (
            'Bearer error="insufficient_user_authentication",'
            ' error_description="A more recent second factor is required", max_age=300'
        )
        detail = stale.json()["detail"]
        assert detail["error"] == "insufficient_user_authentication"
        browser = await c.get("/billing", headers=HTML)
        assert browser.status_code == 303
        location = browser.headers["location"]
        assert parse_qs(urlsplit(location).query)["next"] == ["/billing"]
        page = (await c.get(location, headers=HTML)).text
        data = {"csrf": csrf(page), "code": totp.at(clock()), "reauth": "1", "next": "/billing"}
        done = await c.post("/_mfa/challenge", data=data, headers=HTML)
        assert done.headers["location"] == "/billing"
        assert (await c.get("/billing", headers=JSON)).status_code == 200


async def test_without_the_middleware_the_route_is_refused() -> None:
    from fastapi import Depends, FastAPI

    from mfa_middleware.fastapi import require_mfa

    bare = FastAPI()

    @bare.get("/billing", dependencies=[Depends(require_mfa())])
    async def billing() -> dict[str, bool]:
        return {"opened": True}

    transport = httpx.ASGITransport(bare)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/billing")).status_code == 403


async def test_a_dependency_authenticated_app_protects_browsers_and_api_clients() -> None:
    """No AuthenticationMiddleware: the middleware reads the session and the bearer token as
    the app's own dependency does (issue 20 point 2)."""
    from examples.starlette_app.users import DEMO_API_TOKENS

    from mfa_middleware import MFAMiddleware
    from mfa_middleware.admin import Admin

    clock = FixedClock(1_800_000_000)
    app = create_app(store=MemoryStore(), clock=clock, recovery_code_count=0, trust_duration=0)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/login", data={"username": "alice", "password": "alice-password"})
        assert r.status_code == 303
        gated = await c.get("/", headers=HTML)
        assert gated.status_code == 303
        assert gated.headers["location"].startswith("/_mfa/enroll")  # not open: gated
        await signed_up_again(c, clock)
        assert (await c.get("/", headers=JSON)).json() == {"user": "alice"}

        token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", **JSON}
        refused = await c.get("/", headers=token)
        assert refused.status_code == 401  # bob's token, no second factor: JSON, no redirect
        assert refused.json()["error"] in ("mfa_enrollment_required", "mfa_required")
        layer = _mfa_layer(app)
        assert isinstance(layer, MFAMiddleware)
        admin = Admin(layer.runtime, "test")
        admin.exempt("bob", True)  # a service account: its API calls pass
        assert (await c.get("/", headers=token)).json() == {"user": "bob"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as nobody:
        anonymous = await nobody.get("/", headers=JSON)
        assert anonymous.status_code == 401  # the app's own dependency answers


async def signed_up_again(c: httpx.AsyncClient, clock: FixedClock) -> None:
    page = (await c.get("/_mfa/enroll/totp", headers=HTML)).text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    done = await c.post("/_mfa/enroll/totp", data={"csrf": csrf(page), "code": totp.at(clock())})
    assert done.status_code == 303


def _mfa_layer(app: object) -> object:
    """The MFAMiddleware instance in a built FastAPI stack."""
    layer = getattr(app, "middleware_stack", None)
    while layer is not None and type(layer).__name__ != "MFAMiddleware":
        layer = getattr(layer, "app", None)
    assert layer is not None, "build the stack first (send a request)"
    return layer


async def test_the_middleware_outside_the_session_refuses_every_request() -> None:
    """add_middleware in the wrong order fails loudly, never silently open."""
    from fastapi import FastAPI
    from starlette.middleware.sessions import SessionMiddleware

    from mfa_middleware import MFAConfig, MFAMiddleware
    from mfa_middleware.asgi import session_user

    app = FastAPI()

    @app.get("/")
    async def home() -> dict[str, bool]:
        return {"opened": True}

    app.add_middleware(SessionMiddleware, secret_key="s" * 40)
    config = MFAConfig(
        secret_keys=["k" * 10 + "9Jq2Lx9Vw4Rz8Nc3aB7dE1fG5hK0mP6t"], store=MemoryStore()
    )
    app.add_middleware(MFAMiddleware, config=config, identify=session_user())  # outermost
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/")
        assert r.status_code == 500
        assert "opened" not in r.text
