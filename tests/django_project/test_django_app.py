"""The Django demo project (examples/django_app) behind the Django middleware, driven by
Django's own test clients: sync (WSGI handler) and async (ASGI handler)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext

from mfa_middleware.stores.base import Store
from tests.django_project.conftest import DATA, PROJECT

FORM = "application/x-www-form-urlencoded"  # what browsers send for the pages' forms


def post_form(client: Client, path: str, data: dict[str, str]) -> Any:
    return client.post(path, urlencode(data), content_type=FORM)


def login(client: Client, username: str) -> None:
    response = client.post(
        "/accounts/login/", {"username": username, "password": f"{username}-password"}
    )
    assert response.status_code == 302, response.content[:300]


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} in page"
    return match.group(1)


def enroll(client: Client) -> pyotp.TOTP:
    page = client.get("/_mfa/enroll/totp")
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", html).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    done = post_form(
        client,
        "/_mfa/enroll/totp",
        {"csrf": form_value(html, "csrf"), "code": totp.now(), "next": "/account/"},
    )
    assert done.status_code == 303
    assert done["Location"] == "/account/"
    return totp


def challenge(client: Client, code: str, next_path: str = "/") -> int:
    page = client.get(f"/_mfa/challenge?next={next_path}")
    assert page.status_code == 200
    answer = post_form(
        client,
        "/_mfa/challenge",
        {"csrf": form_value(page.content.decode(), "csrf"), "code": code, "next": next_path},
    )
    return answer.status_code


def next_step_code(totp: pyotp.TOTP) -> str:
    """A code from the next time step (inside the ±1 window, never used before)."""
    return totp.at(time.time() + 30)


def test_login_enroll_and_reach_the_page(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    first = client.get("/account/")
    assert first.status_code == 303
    assert first["Location"].startswith("/_mfa/enroll")
    assert "Set up two-step verification" in client.get(first["Location"]).content.decode()
    enroll(client)
    page = client.get("/account/")
    assert page.status_code == 200
    assert b"Signed in as <strong>bob</strong>" in page.content


def test_new_login_is_challenged_and_a_wrong_code_counts(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    totp = enroll(client)
    client.post("/accounts/logout/")
    login(client, "bob")  # Django cycles the session key: the old MFA session no longer binds
    assert client.get("/account/")["Location"].startswith("/_mfa/challenge")
    assert challenge(client, "000000" if totp.now() != "000000" else "111111") == 400
    assert challenge(client, next_step_code(totp), "/account/") == 303
    assert client.get("/account/").status_code == 200


def test_api_call_of_unverified_user_gets_401_json(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    response = client.get("/api/whoami/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "mfa_enrollment_required"


def test_admin_site_is_behind_2fa(mfa_store: Store) -> None:
    client = Client()
    login(client, "alice")
    assert client.get("/admin/")["Location"].startswith("/_mfa/enroll")
    enroll(client)
    admin = client.get("/admin/")
    assert admin.status_code == 200
    assert b"Site administration" in admin.content


@pytest.mark.checklist("SES-11")
def test_force_logout_through_manage_py_mfa_logs_alice_out(mfa_store: Store) -> None:
    alice, bob = Client(), Client()
    login(alice, "alice")
    enroll(alice)
    login(bob, "bob")
    enroll(bob)
    call_command("mfa", "logout", "alice")
    expired = alice.get("/account/")
    assert expired.status_code == 303
    assert expired["Location"].startswith(settings.LOGIN_URL)
    assert "_auth_user_id" not in alice.session  # Django's own logout ran
    assert alice.get("/account/")["Location"].startswith(settings.LOGIN_URL)
    assert bob.get("/account/").status_code == 200


def test_manage_py_mfa_refuses_an_unknown_user(mfa_store: Store) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("mfa", "logout", "nobody")


@pytest.mark.checklist("EX-04")
def test_exempt_service_user_api_view_passes(mfa_store: Store) -> None:
    service = Client()
    login(service, "svc-billing")
    assert service.get("/api/whoami/", HTTP_ACCEPT="application/json").status_code == 401
    # An exemption covers API authentication: a browser login with the password is not exempt.
    call_command("mfa", "exempt", "svc-billing")
    assert service.get("/api/whoami/", HTTP_ACCEPT="application/json").status_code == 401
    call_command("mfa", "exempt", "svc-billing", "--browser")  # on purpose, for browsers too
    response = service.get("/api/whoami/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {"username": "svc-billing"}


def test_verified_request_adds_no_database_query(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    client.get("/account/")  # warm the MFA store cache and the cookie cache
    with CaptureQueriesContext(connection) as with_mfa:
        assert client.get("/account/").status_code == 200
    middleware = [m for m in settings.MIDDLEWARE if m != "mfa_middleware.django.MFAMiddleware"]
    with override_settings(MIDDLEWARE=middleware), CaptureQueriesContext(connection) as without:
        bare = Client()  # a client loads its middleware once: a fresh one runs without ours
        bare.cookies = client.cookies
        assert bare.get("/account/").status_code == 200
    assert len(with_mfa.captured_queries) == len(without.captured_queries)
    assert len(with_mfa.captured_queries) > 0  # Django's own session and user queries


def test_verified_request_sets_no_cookie(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    response = client.get("/account/")
    assert response.status_code == 200
    assert "mfa_session" not in response.cookies


def test_django_csrf_still_guards_the_apps_own_forms(mfa_store: Store) -> None:
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    assert refused.status_code == 403


@pytest.mark.checklist("SES-17")
def test_pages_refuse_a_post_without_our_csrf_token(mfa_store: Store) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="bob"))
    response = post_form(client, "/_mfa/enroll/totp", {"code": "123456"})
    assert response.status_code == 403


@pytest.mark.anyio
async def test_async_django_path_with_an_async_view(mfa_store: Store) -> None:
    client = AsyncClient()
    user = await get_user_model().objects.aget(username="bob")
    await client.aforce_login(user)
    gated = await client.get("/api/async-whoami/", headers={"accept": "application/json"})
    assert gated.status_code == 401
    page = await client.get("/_mfa/enroll/totp")
    html = page.content.decode()
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", html).group(1).replace(" ", "")  # type: ignore[union-attr]
    done = await client.post(
        "/_mfa/enroll/totp",
        urlencode({"csrf": form_value(html, "csrf"), "code": pyotp.TOTP(secret).now()}),
        content_type=FORM,
    )
    assert done.status_code == 303
    answer = await client.get("/api/async-whoami/", headers={"accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == {"username": "bob", "async": True}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_manage_py_mfa_runs_as_a_subprocess() -> None:
    env = {"DJANGO_DEMO_DATA": str(DATA), "PATH": "/usr/bin:/bin"}
    subprocess.run(  # the 2FA state is in the project's database: migrate makes its table
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=PROJECT,
        env=env,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "mfa", "--json", "mode", "optional"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"mode": "optional"' in result.stdout


def test_manage_py_mfa_reset_emails_the_enrollment_code_to_the_django_address(
    mfa_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """The enrollment code goes to `User.email` (the demo prints its mail to the terminal);
    the password alone then only reaches the unlock page, the emailed code gets further."""
    import io
    import json

    alice = Client()
    login(alice, "alice")
    enroll(alice)
    capsys.readouterr()
    out = io.StringIO()
    call_command("mfa", "--", "reset", "alice", "--yes", "--json", stdout=out)
    answer = json.loads(out.getvalue())
    assert answer == {"reset": answer["reset"], "enrollment_code_emailed_to": "a***@example.com"}
    mail = capsys.readouterr().out
    assert "alice@example.com" in mail
    code = re.search(r"\b([0-9a-z]{4}(?:-[0-9a-z]{4}){3})\b", mail)
    assert code is not None
    again = Client()
    login(again, "alice")
    blocked = again.get("/_mfa/enroll/totp")
    assert blocked.status_code == 303
    assert blocked["Location"].startswith("/_mfa/enroll/unlock")
    page = again.get("/_mfa/enroll/unlock")
    unlocked = post_form(
        again,
        "/_mfa/enroll/unlock",
        {"csrf": form_value(page.content.decode(), "csrf"), "code": code.group(1)},
    )
    assert unlocked.status_code == 303
    assert again.get("/_mfa/enroll/totp").status_code == 200
