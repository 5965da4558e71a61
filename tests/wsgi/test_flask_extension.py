"""The Flask extension (issue 20 point 1) in Flask's test client, on examples/flask_app: a
Flask-Login app that adds 2FA in five lines. The whole journey: login, enroll, the challenge
at the next login, trust, step-up, force-logout ending the Flask-Login session, and the app's
logout ending the MFA session server-side."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from examples.flask_app.app import create_app
from flask import Flask
from flask.testing import FlaskClient

from mfa_middleware import MemoryStore
from mfa_middleware.admin import Admin
from mfa_middleware.flask import MFA
from mfa_middleware.testing import FixedClock

HTML = {"accept": "text/html"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000)


@pytest.fixture
def app(clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("MFA_DEMO_DATA", str(tmp_path))
    import examples.flask_app.app as demo

    monkeypatch.setattr(demo, "DATA_DIR", tmp_path)
    return create_app(store=MemoryStore(), clock=clock, recovery_code_count=0, trust_duration="30d")


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def log_in(c: FlaskClient, user: str = "alice") -> str:
    r = c.post("/login", data={"username": user, "password": f"{user}-password"})
    assert r.status_code == 303
    return str(c.get("/", headers=HTML).headers.get("location", ""))


def enroll(c: FlaskClient, clock: FixedClock) -> pyotp.TOTP:
    page = c.get("/_mfa/enroll/totp", headers=HTML).get_data(as_text=True)
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    done = c.post("/_mfa/enroll/totp", data={"csrf": csrf(page), "code": totp.at(clock())})
    assert done.status_code == 303
    return totp


def code_in(c: FlaskClient, code: str, **extra: str) -> str:
    page = c.get("/_mfa/challenge", headers=HTML).get_data(as_text=True)
    done = c.post("/_mfa/challenge", data={"csrf": csrf(page), "code": code, **extra})
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    return str(done.headers["location"])


def test_the_app_side_is_five_lines() -> None:
    source = Path("examples/flask_app/app.py").read_text()
    assert (
        len([line for line in source.splitlines() if line.rstrip().endswith("# 2FA")])
        + len([line for line in source.splitlines() if "# 2FA:" in line])
        <= 5
    )


def test_the_whole_journey_through_the_extension(app: Flask, clock: FixedClock) -> None:
    c = app.test_client()
    assert log_in(c).startswith("/_mfa/enroll")
    totp = enroll(c, clock)
    home = c.get("/", headers=HTML)
    assert home.status_code == 200
    assert "Second step: totp." in home.get_data(as_text=True)  # g.mfa

    # the next login asks for a code; trusting this browser skips it after that
    c.post("/logout")
    assert log_in(c).startswith("/_mfa/challenge")
    clock.advance(30)
    assert code_in(c, totp.at(clock())).startswith("/_mfa/trust")
    page = c.get("/_mfa/trust", headers=HTML).get_data(as_text=True)
    c.post("/_mfa/trust", data={"csrf": csrf(page), "choice": "trust", "name": "Test"})
    c.post("/logout")
    assert log_in(c) == ""  # trusted: straight in
    assert "Second step: device." in c.get("/", headers=HTML).get_data(as_text=True)

    # step-up on /billing (@mfa_required(max_age="5m")): the device's entry is fresh now
    assert c.get("/billing", headers=HTML).status_code == 200
    clock.advance(301)
    stale = c.get("/billing", headers=HTML)
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/_mfa/challenge?reauth=1&stepup=1")

    # an administrator's force-logout ends the Flask-Login session too
    mfa: MFA = app.extensions["mfa"]
    assert mfa.runtime is not None
    Admin(mfa.runtime, "test").logout("alice")
    r = c.get("/", headers=HTML)
    assert r.status_code in (302, 303)
    assert "/login" in r.headers["location"]
    assert c.get("/", headers=HTML).headers["location"].startswith("/login")  # Flask-Login too


def test_the_apps_logout_ends_the_mfa_session_server_side(app: Flask, clock: FixedClock) -> None:
    c = app.test_client()
    log_in(c)
    enroll(c, clock)
    stolen = {name: c.get_cookie(name) for name in ("session", "mfa_session")}
    c.post("/logout")
    thief = app.test_client()
    for name, cookie in stolen.items():
        assert cookie is not None
        thief.set_cookie(name, cookie.value)
    r = thief.get("/", headers=HTML)
    assert r.status_code in (302, 303)
    assert "/login" in r.headers["location"]


def test_the_json_api_through_the_extension(app: Flask, clock: FixedClock) -> None:
    """A front end on a Flask app signs in through /_mfa/api as on any other adapter."""
    c = app.test_client()
    log_in(c)
    state = c.get("/_mfa/api/state").get_json()
    assert state["state"] == "enroll"
    secret = c.get("/_mfa/api/enroll/totp").get_json()["secret"]
    token = {"x-csrf-token": state["csrf_token"]}
    wrong = c.post("/_mfa/api/enroll/totp", json={"code": "12"}, headers=token)
    assert wrong.status_code == 400
    assert wrong.get_json()["code"] == "malformed_code"
    padded = b" " * 20_000 + b'{"code": "12"}'  # WSGI read only a form's 16 KB of it
    read = c.post(
        "/_mfa/api/enroll/totp", data=padded, content_type="application/json", headers=token
    )
    assert read.get_json()["code"] == "malformed_code"  # read whole: parsed, not "bad_json"
    code = pyotp.TOTP(secret).at(clock())
    done = c.post("/_mfa/api/enroll/totp", json={"code": code}, headers=token)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert c.get("/_mfa/api/state").get_json()["state"] == "done"
    assert c.get("/", headers=HTML).status_code == 200
