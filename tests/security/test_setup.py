"""Deployment shapes that used to fail open (issue 14, points 5 and 14): a user id taken from a
display name, and the middleware listed outside the app's authentication."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from mfa_middleware import MemoryStore, MFAConfig, MFAMiddleware
from tests.e2e.helpers import SECRET_KEY, FixedClock
from tests.security.support import HeaderLogin, shaped_app

pytestmark = pytest.mark.anyio

API_BYPASS = [{"action": "bypass", "paths": ["/reports/**"], "users": ["svc-report"]}]


def as_user(name: str) -> dict[str, str]:
    return {"x-test-user": name, "accept": "application/json"}


async def get(app: object, path: str, user: str) -> httpx.Response:
    transport = httpx.ASGITransport(app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.get(path, headers=as_user(user))


@pytest.mark.checklist("EX-02")
async def test_a_users_rule_never_matches_a_chosen_display_name(clock: FixedClock) -> None:
    users = {
        "service": {"identity": "svc-report", "display_name": "Report robot"},
        "mallory": {"identity": "u-123", "display_name": "svc-report"},  # she chose that name
    }
    app = shaped_app(clock, users, rules=API_BYPASS)
    assert (await get(app, "/reports/q3", "service")).status_code == 200
    r = await get(app, "/reports/q3", "mallory")
    assert r.status_code == 401
    assert r.json()["error"] == "mfa_enrollment_required"


@pytest.mark.checklist("UI-02")
async def test_a_user_without_a_stable_id_is_refused_not_named_after_its_display_name(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    users = {"mallory": {"display_name": "svc-report"}}  # no identity, no username
    app = shaped_app(clock, users, rules=API_BYPASS)
    r = await get(app, "/reports/q3", "mallory")
    assert r.status_code == 500
    assert r.json()["error"] == "mfa_misconfigured"
    assert "stable `identity`" in caplog.text


@pytest.mark.checklist("GEN-01", "EX-01")
async def test_listed_outside_authentication_every_request_is_refused(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "mfa_middleware")
    app = shaped_app(clock, {"alice": {"identity": "alice"}}, mfa_first=True)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/account", headers={"x-test-user": "alice", "accept": "text/html"})
        assert r.status_code == 500
        assert "not set up correctly" in r.text
        assert "the app's /account" not in r.text
        r = await c.get("/_mfa/settings", headers={"accept": "text/html"})
        assert r.status_code == 500
    assert "after Starlette's AuthenticationMiddleware" in caplog.text


@pytest.mark.checklist("GEN-01")
def test_fastapis_natural_add_middleware_order_fails_loudly(clock: FixedClock) -> None:
    """`add_middleware` puts the last one added outermost: MFA added after authentication
    runs before it and sees no user. That must be a 500, never an open door."""
    api = FastAPI()

    @api.get("/account")
    def account() -> dict[str, str]:
        return {"secret": "the app's data"}

    config = MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), clock=clock)
    api.add_middleware(AuthenticationMiddleware, backend=HeaderLogin({"a": {"identity": "a"}}))
    api.add_middleware(MFAMiddleware, config=config)
    api.add_middleware(SessionMiddleware, secret_key=SECRET_KEY)
    with TestClient(api) as c:
        r = c.get("/account", headers={"x-test-user": "a"})
        assert r.status_code == 500
        assert "the app's data" not in r.text
    with (
        TestClient(api) as c,
        pytest.raises(WebSocketDisconnect) as closed,
        c.websocket_connect("/account", headers={"x-test-user": "a"}),
    ):
        pass  # closed before the app could accept it
    assert closed.value.code == 1011
