"""The generic WSGI middleware around a Flask app: the same flow, pages and JSON answers."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient

from mfa_middleware import MemoryStore
from mfa_middleware.core.records import SETTINGS_KEY
from mfa_middleware.stores.base import Store
from mfa_middleware.testing import FixedClock
from tests.wsgi.flask_app import create_app


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000)


@pytest.fixture
def store() -> Store:
    return MemoryStore()


@pytest.fixture
def client(clock: FixedClock, store: Store) -> FlaskClient:
    return create_app(store=store, clock=clock, cookie_secure=False).test_client()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def login(client: FlaskClient, user: str = "alice") -> None:
    response = client.post("/login", data={"username": user, "password": f"{user}-password"})
    assert response.status_code == 303


def enroll(client: FlaskClient, clock: FixedClock) -> pyotp.TOTP:
    page = client.get("/_mfa/enroll/totp").get_data(as_text=True)
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    done = client.post("/_mfa/enroll/totp", data={"csrf": csrf(page), "code": totp.at(clock())})
    assert done.status_code == 303
    return totp


def challenge(client: FlaskClient, code: str) -> Any:
    page = client.get("/_mfa/challenge").get_data(as_text=True)
    return client.post("/_mfa/challenge", data={"csrf": csrf(page), "code": code})


def test_core_flow_through_the_wsgi_middleware(client: FlaskClient, clock: FixedClock) -> None:
    login(client)
    gated = client.get("/", headers={"accept": "text/html"})
    assert gated.status_code == 303
    assert gated.headers["location"].startswith("/_mfa/enroll")
    totp = enroll(client, clock)
    assert client.get("/").get_data(as_text=True) == "<p>Hello alice</p>"

    client.post("/logout")
    login(client)  # a new login nonce: the old MFA session does not count
    assert (
        client.get("/", headers={"accept": "text/html"})
        .headers["location"]
        .startswith("/_mfa/challenge")
    )
    wrong = challenge(client, "000000" if totp.at(clock()) != "000000" else "111111")
    assert wrong.status_code == 400
    assert "attempts left" in wrong.get_data(as_text=True)
    clock.now += 30
    assert challenge(client, totp.at(clock())).status_code == 303
    assert client.get("/").status_code == 200


def test_api_call_gets_401_json(client: FlaskClient) -> None:
    login(client)
    response = client.get("/api/profile", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "mfa_enrollment_required"
    assert response.get_json()["location"].startswith("/_mfa/enroll")


def test_anonymous_requests_pass(client: FlaskClient) -> None:
    assert client.get("/api/profile").get_json() == {"username": None}


def test_head_gets_no_body(client: FlaskClient) -> None:
    login(client)
    response = client.head("/", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.get_data() == b""


def test_forced_logout_clears_the_flask_session(
    client: FlaskClient, clock: FixedClock, store: Store
) -> None:
    login(client)
    enroll(client, clock)
    store.update(SETTINGS_KEY, lambda d: {**(d or {}), "global_epoch": 1})
    expired = client.get("/", headers={"accept": "text/html"})
    assert expired.status_code == 303
    assert expired.headers["location"].startswith("/login")
    cleared = [c for c in expired.headers.getlist("set-cookie") if c.startswith("session=")]
    assert cleared
    assert "Max-Age=0" in cleared[0]
    assert client.get("/api/profile").get_json() == {"username": None}  # logged out of Flask


@pytest.mark.checklist("SES-10")
def test_logout_ends_the_mfa_session_so_copied_cookies_replay_nothing(
    clock: FixedClock, store: Store
) -> None:
    app = create_app(store=store, clock=clock, cookie_secure=False)
    client = app.test_client()
    login(client)
    enroll(client, clock)
    stolen = {c.key: c.value for c in client._cookies.values()}  # what a thief copied
    assert client.get("/").status_code == 200
    client.post("/logout")
    thief = app.test_client()
    for name, value in stolen.items():
        thief.set_cookie(name, value)
    answer = thief.get("/", headers={"accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


@pytest.mark.checklist("EX-03")
def test_links_carry_the_script_name(client: FlaskClient) -> None:
    login(client)
    gated = client.get("/", headers={"accept": "text/html"}, base_url="http://localhost/app/")
    assert gated.headers["location"].startswith("/app/_mfa/enroll")


def test_mfa_required_steps_up_a_stale_session(client: FlaskClient, clock: FixedClock) -> None:
    """`@mfa_required(max_age="5m")` on a Flask view (issue 18), and `environ["mfa"]`."""
    login(client)
    totp = enroll(client, clock)
    fresh = client.get("/billing", headers={"accept": "application/json"})
    assert fresh.status_code == 200
    assert fresh.get_json()["mfa"]["amr"] == ["otp"]
    clock.advance(301)
    stale = client.get("/billing", headers={"accept": "application/json"})
    assert stale.status_code == 401
    assert "max_age=300" in stale.headers["www-authenticate"]
    browser = client.get("/billing", headers={"accept": "text/html"})
    assert browser.status_code == 303
    location = browser.headers["location"]
    assert location.startswith("/_mfa/challenge?reauth=1&stepup=1")
    page = client.get(location).get_data(as_text=True)
    data = {"csrf": csrf(page), "code": totp.at(clock()), "reauth": "1", "next": "/billing"}
    done = client.post("/_mfa/challenge", data=data)
    assert done.status_code == 303
    assert done.headers["location"] == "/billing"
    assert client.get("/billing", headers={"accept": "application/json"}).status_code == 200
