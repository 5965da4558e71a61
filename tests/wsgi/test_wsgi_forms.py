"""Issue 14, point 8 under the WSGI adapter: no form value of any page, however malformed,
gets a 500 (the ASGI twin is tests/security/test_forms.py; the values come from
tests/support/malformed.py, so both post the same ones)."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from flask.testing import FlaskClient

from mfa_middleware import MemoryStore
from mfa_middleware.testing import FixedClock, Outbox
from tests.support.malformed import POSTED, XSS, forged_forms
from tests.wsgi.flask_app import create_app
from tests.wsgi.test_flask import challenge, csrf, enroll, login

HTML = {"accept": "text/html"}
State = Callable[[FlaskClient, FixedClock], pyotp.TOTP | None]


def verified(client: FlaskClient, clock: FixedClock) -> pyotp.TOTP | None:
    login(client)
    return enroll(client, clock)


def unverified(client: FlaskClient, clock: FixedClock) -> pyotp.TOTP | None:
    """Enrolled, then a new login: the code is asked."""
    totp = verified(client, clock)
    client.post("/logout")
    login(client)
    return totp


def unenrolled(client: FlaskClient, clock: FixedClock) -> pyotp.TOTP | None:
    login(client)
    return None


@pytest.mark.checklist("UI-06")
@pytest.mark.parametrize("state", [verified, unverified, unenrolled], ids=lambda f: f.__name__)
def test_malformed_values_in_every_field_of_every_form(state: State) -> None:
    clock = FixedClock(1_800_000_000)
    app = create_app(
        store=MemoryStore(),
        clock=clock,
        cookie_secure=False,
        is_admin=lambda p: p.id == "alice",
        email_codes=True,
        email_sender=Outbox(),
        sms_sender=Outbox(),
        trust_duration="30d",
    )
    c = app.test_client()
    totp = state(c, clock)
    page = c.get("/_mfa/settings", headers=HTML).get_data(as_text=True)
    token = csrf(page) if 'name="csrf"' in page else "x"
    for path in POSTED:
        for data in forged_forms(token):
            r = c.post(f"/_mfa{path}", data=data, headers=HTML)
            text = r.get_data(as_text=True)
            assert r.status_code < 500, (path, data["code"][:40], text[:200])
            assert XSS not in text, (path, data["code"][:40])

    # nothing was lost: alice signs in again and gets through the step she is asked for
    # (with the token, /disable may have turned 2FA off: it needs no more than a recent code)
    clock.now += 30
    fresh = app.test_client()
    login(fresh)
    gate = fresh.get("/", headers=HTML).headers["location"]
    if gate.startswith("/_mfa/challenge"):
        assert totp is not None
        assert challenge(fresh, totp.at(clock())).status_code == 303
    else:
        assert gate.startswith("/_mfa/enroll"), gate
        enroll(fresh, clock)
    assert fresh.get("/").get_data(as_text=True) == "<p>Hello alice</p>"
