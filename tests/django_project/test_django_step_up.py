"""`request.mfa`, `@mfa_required` and `MFARequiredMixin` in the Django demo (issue 18), through
Django's test clients: a sync view, an async JSON view and a class-based view, each asking for
a factor from the last 5 minutes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client, override_settings

from mfa_middleware import MemoryStore
from mfa_middleware.testing import FixedClock
from tests.django_project.test_django_app import FORM, form_value, login, post_form

JSON = {"accept": "application/json"}
START = 1_800_000_000.0


@pytest.fixture
def clock() -> Iterator[FixedClock]:
    fixed = FixedClock(START)
    options = {
        **settings.MFA_MIDDLEWARE,
        "store": MemoryStore(),
        "clock": fixed,
        "trust_duration": 0,
        "recovery_code_count": 0,
    }
    with override_settings(MFA_MIDDLEWARE=options):
        yield fixed


def enroll_now(client: Client, clock: FixedClock) -> pyotp.TOTP:
    page = client.get("/_mfa/enroll/totp").content.decode()
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    data = {"csrf": form_value(page, "csrf"), "code": totp.at(clock())}
    assert post_form(client, "/_mfa/enroll/totp", data).status_code == 303
    return totp


def step_up(client: Client, location: str, code: str) -> str:
    page = client.get(location).content.decode()
    nxt = parse_qs(urlsplit(location).query)["next"][0]
    data = {"csrf": form_value(page, "csrf"), "code": code, "reauth": "1", "next": nxt}
    done = post_form(client, "/_mfa/challenge", data)
    assert done.status_code == 303, done.content[:300]
    return str(done["Location"])


@pytest.mark.parametrize("path", ["/billing/", "/billing/history/"])
def test_a_sync_view_and_a_class_based_view_step_up_a_stale_session(
    clock: FixedClock, path: str
) -> None:
    client = Client()
    login(client, "alice")
    totp = enroll_now(client, clock)
    page = client.get(path)
    assert page.status_code == 200
    assert "Second step: totp, 0 seconds ago." in page.content.decode()
    clock.advance(301)
    assert client.get("/account/").status_code == 200  # no requirement there
    stale = client.get(path)
    assert stale.status_code == 303
    location = stale["Location"]
    assert location.startswith("/_mfa/challenge?reauth=1&stepup=1")
    assert step_up(client, location, totp.at(clock())) == path
    assert client.get(path).status_code == 200  # the same session, no new login


def test_an_anonymous_user_is_sent_to_log_in(clock: FixedClock) -> None:
    response = Client().get("/billing/")
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)


@pytest.mark.anyio
async def test_an_async_json_view_answers_rfc_9470(clock: FixedClock) -> None:
    client = AsyncClient()
    user = await get_user_model().objects.aget(username="bob")
    await client.aforce_login(user)
    page = (await client.get("/_mfa/enroll/totp")).content.decode()
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    done = await client.post(
        "/_mfa/enroll/totp",
        urlencode({"csrf": form_value(page, "csrf"), "code": totp.at(clock())}),
        content_type=FORM,
    )
    assert done.status_code == 303
    fresh = await client.get("/api/billing/", headers=JSON)
    assert fresh.status_code == 200
    state = fresh.json()["mfa"]
    assert state["verified"] is True
    assert state["amr"] == ["otp"]
    clock.advance(301)
    stale = await client.get("/api/billing/", headers=JSON)
    assert stale.status_code == 401
    assert stale["WWW-Authenticate"].startswith('Bearer error="insufficient_user_authentication"')
    assert stale["WWW-Authenticate"].endswith("max_age=300")
    assert stale.json()["error"] == "insufficient_user_authentication"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
