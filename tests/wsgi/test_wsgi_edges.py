"""Edges of the WSGI adapter: a store outage (fail closed, then recover), bad CONTENT_LENGTH
headers, paths that are not ASCII, and the `on_logout` hook on a forced logout."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import pyotp
import pytest
from flask.testing import FlaskClient
from werkzeug.test import Client

from mfa_middleware import MemoryStore
from mfa_middleware.config import MFAConfig
from mfa_middleware.core import ops
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import SETTINGS_KEY, throttle_key, user_key
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.testing import FixedClock
from mfa_middleware.testing import OutageStore as FlakyStore
from mfa_middleware.wsgi import Environ, MFAMiddleware, StartResponse
from tests.wsgi.flask_app import create_app

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
SECRET = "wsgi-edges-" + "Qm4Rt7Yx2Kp9Ls3Vb6Nc8Hd1Fg5Jw0Ze"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000)


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def client(clock: FixedClock, store: FlakyStore) -> FlaskClient:
    return create_app(store=store, clock=clock, cookie_secure=False).test_client()


def field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field on the page"
    return match.group(1)


def login(client: FlaskClient, user: str = "alice") -> None:
    response = client.post("/login", data={"username": user, "password": f"{user}-password"})
    assert response.status_code == 303


def enroll(client: FlaskClient, clock: FixedClock, next_path: str = "/") -> tuple[pyotp.TOTP, Any]:
    page = client.get("/_mfa/enroll/totp", query_string={"next": next_path}).get_data(as_text=True)
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    data = {"csrf": field(page, "csrf"), "code": totp.at(clock()), "next": field(page, "next")}
    done = client.post("/_mfa/enroll/totp", data=data)
    assert done.status_code == 303
    return totp, done


def at_challenge(client: FlaskClient, clock: FixedClock) -> pyotp.TOTP:
    """alice enrolled, then logged in again: the next request needs a code."""
    login(client)
    totp, _ = enroll(client, clock)
    client.post("/logout")
    login(client)
    clock.now += 30
    response = client.get("/", headers=HTML)
    assert response.headers["location"].startswith("/_mfa/challenge")
    return totp


# --- store outage ----------------------------------------------------------------------------


@pytest.mark.checklist("GEN-01")
def test_store_outage_fails_closed_then_recovers(
    client: FlaskClient, clock: FixedClock, store: FlakyStore
) -> None:
    login(client)
    enroll(client, clock)
    assert client.get("/").status_code == 200

    store.down = True
    page = client.get("/", headers=HTML)
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.get_data(as_text=True)
    assert "Hello alice" not in page.get_data(as_text=True)
    api = client.get("/api/profile", headers=JSON)
    assert api.status_code == 503
    assert api.get_json()["error"] == "mfa_unavailable"
    challenge = client.get("/_mfa/challenge", headers=HTML)
    assert challenge.status_code == 503
    assert "Temporarily unavailable" in challenge.get_data(as_text=True)
    assert client.post("/_mfa/challenge", data={"code": "123456"}).status_code == 503
    head = client.head("/", headers=HTML)
    assert head.status_code == 503
    assert head.get_data() == b""
    assert store.calls_while_down >= 5  # every one of them really asked the store

    store.down = False
    assert client.get("/").get_data(as_text=True) == "<p>Hello alice</p>"
    again = client.get("/_mfa/challenge", headers=HTML)
    assert again.status_code == 303  # verified: nothing to do there any more
    assert again.headers["location"] == "/"


def test_store_outage_for_an_unverified_user(
    client: FlaskClient, clock: FixedClock, store: FlakyStore
) -> None:
    totp = at_challenge(client, clock)
    store.down = True
    assert client.get("/", headers=HTML).status_code == 503
    page = client.get("/_mfa/challenge", headers=HTML)
    assert page.status_code == 503
    store.down = False
    page = client.get("/_mfa/challenge", headers=HTML)
    assert page.status_code == 200
    data = {"csrf": field(page.get_data(as_text=True), "csrf"), "code": totp.at(clock())}
    assert client.post("/_mfa/challenge", data=data).status_code == 303
    assert client.get("/").status_code == 200


def test_store_outage_lets_anonymous_requests_through(store: FlakyStore, clock: FixedClock) -> None:
    client = create_app(store=store, clock=clock, cookie_secure=False).test_client()
    store.down = True
    assert client.get("/api/profile").get_json() == {"username": None}
    assert store.calls_while_down == 0
    anonymous_page = client.get("/_mfa/challenge", headers=HTML)
    assert anonymous_page.status_code == 303
    assert anonymous_page.headers["location"] == "/login"


# --- CONTENT_LENGTH ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "", " ", "0x10"])
def test_invalid_content_length_is_an_empty_body(
    client: FlaskClient, clock: FixedClock, store: FlakyStore, length: str
) -> None:
    totp = at_challenge(client, clock)
    page = client.get("/_mfa/challenge", headers=HTML).get_data(as_text=True)
    data = {"csrf": field(page, "csrf"), "code": totp.at(clock())}
    refused = client.post(
        "/_mfa/challenge", data=data, headers=HTML, environ_overrides={"CONTENT_LENGTH": length}
    )
    assert refused.status_code == 403  # the body was not read: no CSRF token, no guess
    assert "Request refused" in refused.get_data(as_text=True)
    assert store.get(throttle_key("alice")) is None  # no attempt was spent
    accepted = client.post("/_mfa/challenge", data=data, headers=HTML)
    assert accepted.status_code == 303


def test_content_length_past_the_limit_is_refused(client: FlaskClient, clock: FixedClock) -> None:
    at_challenge(client, clock)
    page = client.get("/_mfa/challenge", headers=HTML).get_data(as_text=True)
    body = f"csrf={field(page, 'csrf')}&code=123456&pad={'x' * 20_000}"
    response = client.post(
        "/_mfa/challenge",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=HTML,
        environ_overrides={"CONTENT_LENGTH": "99999999999999999999"},
    )
    assert response.status_code == 400
    assert "could not be read" in response.get_data(as_text=True)


# --- paths that are not ASCII -------------------------------------------------------------------

NIHON = "/\u65e5\u672c"  # "/日本"
NIHON_QUOTED = "/%E6%97%A5%E6%9C%AC"


def test_non_ascii_path_under_the_prefix_is_not_found(client: FlaskClient) -> None:
    login(client)
    response = client.get("/_mfa/caf%C3%A9", headers=HTML)
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_non_ascii_path_is_kept_in_next(client: FlaskClient) -> None:
    login(client)
    response = client.get(NIHON_QUOTED, headers=HTML)
    assert response.request.environ["PATH_INFO"] != NIHON  # WSGI: UTF-8 bytes read as latin-1
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == f"/_mfa/enroll?next={NIHON_QUOTED.replace('/', '%2F')}"


def test_invalid_utf8_in_the_path_is_handled(client: FlaskClient) -> None:
    login(client)
    response = client.get("/%FF%FE", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].isascii()
    assert response.headers["location"].startswith("/_mfa/enroll")


def test_back_to_a_non_ascii_path_after_the_step(client: FlaskClient, clock: FixedClock) -> None:
    """The Location header must be an ASCII URI (RFC 9110/3986): a WSGI server sends header
    values as latin-1 and the ASGI adapter encodes them as latin-1, so "/日本" cannot be sent."""
    login(client)
    target = client.get(NIHON_QUOTED, headers=HTML).headers["location"]
    assert unquote(target.split("next=", 1)[1]) == NIHON
    _, done = enroll(client, clock, next_path=NIHON)
    location = done.headers["location"]
    assert location.isascii(), f"non-ASCII Location header {location!r}"
    assert unquote(location) == NIHON


# --- on_logout ----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.environs: list[Environ] = []

    def __call__(self, environ: Environ) -> None:
        self.environs.append(environ)


def tiny_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"app says hi"]


def middleware(
    store: MemoryStore, clock: FixedClock, on_logout: Recorder, mode: str
) -> MFAMiddleware:
    config = MFAConfig(
        secret_keys=[SECRET], store=store, clock=clock, cookie_secure=False, mode=mode
    )
    return MFAMiddleware(
        tiny_app,
        config,
        identify=lambda environ: Principal(id="alice", username="alice"),
        logout_cookies=["app_session"],
        on_logout=on_logout,
    )


def set_cookies(response: Any) -> list[str]:
    return list(response.headers.getlist("set-cookie"))


def test_on_logout_runs_when_all_sessions_are_cleared(clock: FixedClock) -> None:
    store, hook = MemoryStore(), Recorder()
    client = Client(middleware(store, clock, hook, mode="off"))
    first = client.get("/")
    assert first.status_code == 200
    assert first.get_data() == b"app says hi"
    assert any(c.startswith("mfa_session=") for c in set_cookies(first))
    assert client.get_cookie("mfa_session") is not None
    assert client.get("/").status_code == 200
    assert hook.environs == []

    store.update(SETTINGS_KEY, lambda d: {**(d or {}), "global_epoch": 1})
    expired = client.get("/account", headers=HTML)
    assert expired.status_code == 303
    assert expired.headers["location"] == "/login?next=%2Faccount"
    cookies = set_cookies(expired)
    assert any(c.startswith("mfa_session=;") and "Max-Age=0" in c for c in cookies)
    assert any(c.startswith("app_session=;") and "Max-Age=0" in c for c in cookies)
    assert len(hook.environs) == 1
    assert hook.environs[0]["PATH_INFO"] == "/account"
    assert expired.get_data() == b""


def test_on_logout_runs_on_a_forced_logout_of_the_user(clock: FixedClock) -> None:
    store, hook = MemoryStore(), Recorder()
    client = Client(middleware(store, clock, hook, mode="off"))
    assert client.get("/").status_code == 200
    run_sync(ops.force_logout("alice", "test"), store, EventSink())
    assert (store.get(user_key("alice")) or {})["epoch"] == 1
    expired = client.get("/api/thing", headers=JSON)
    assert expired.status_code == 401
    assert expired.get_json()["error"] == "session_expired"
    assert expired.get_json()["reason"] == "user_logged_out"
    assert len(hook.environs) == 1
    # the cookie was cleared: the next request starts a new MFA session and is let through
    assert client.get("/").status_code == 200
    assert len(hook.environs) == 1


def test_on_logout_runs_on_sign_out_from_the_pages(clock: FixedClock) -> None:
    store, hook = MemoryStore(), Recorder()
    client = Client(middleware(store, clock, hook, mode="required"))
    gated = client.get("/", headers=HTML)
    assert gated.status_code == 303
    assert gated.headers["location"].startswith("/_mfa/enroll")
    page = client.get("/_mfa/enroll", headers=HTML)
    assert page.status_code == 200
    assert hook.environs == []
    signed_out = client.post(
        "/_mfa/logout", data={"csrf": field(page.get_data(as_text=True), "csrf")}, headers=HTML
    )
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert len(hook.environs) == 1
    assert hook.environs[0]["PATH_INFO"] == "/_mfa/logout"
    assert any(c.startswith("app_session=;") for c in set_cookies(signed_out))
