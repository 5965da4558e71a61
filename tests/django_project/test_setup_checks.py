"""The Django middleware in the wrong place (issue 14, point 14), and Django's logout ending
the MFA session server-side (SES-10)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import Client, override_settings

from mfa_middleware.core.effects import Key
from mfa_middleware.stores.base import Store
from tests.django_project.test_django_app import enroll, login

OURS = "mfa_middleware.django.MFAMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def misplaced() -> list[str]:
    order = [m for m in settings.MIDDLEWARE if m != OURS]
    return [*order[: order.index(AUTH)], OURS, *order[order.index(AUTH) :]]


@pytest.mark.checklist("GEN-01")
def test_manage_py_check_reports_the_middleware_before_authentication() -> None:
    assert [m.id for m in run_checks() if m.id.startswith("mfa_middleware")] == []
    with override_settings(MIDDLEWARE=misplaced()):
        errors = [m for m in run_checks() if m.id == "mfa_middleware.E001"]
    assert len(errors) == 1
    assert AUTH in (errors[0].hint or "")


@pytest.mark.checklist("GEN-01", "EX-01")
def test_a_request_without_request_user_is_refused(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    with override_settings(MIDDLEWARE=misplaced()):
        fresh = Client()  # a client loads its middleware chain once
        fresh.cookies = client.cookies
        response = fresh.get("/account/")
    assert response.status_code == 500
    assert b"not set up correctly" in response.content


@pytest.mark.checklist("SES-10")
def test_djangos_logout_signs_the_mfa_session_out(mfa_store: Store) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    assert client.get("/account/").status_code == 200
    client.post("/accounts/logout/")
    ended = [doc for kind, doc in _all(mfa_store) if kind == "session_end"]
    assert len(ended) == 1


def _all(store: Store) -> list[tuple[str, object]]:
    data = getattr(store, "_data", {})
    return [(key.kind, entry[0]) for key, entry in data.items() if isinstance(key, Key)]
