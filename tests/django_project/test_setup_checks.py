"""`manage.py check` (issue 14, point 14; issue 19, point 4): the middleware in the wrong
place, MFA_MIDDLEWARE's options, SECRET_KEY, the store; and Django's logout ending the MFA
session server-side (SES-10)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import CheckMessage, run_checks
from django.test import Client, override_settings

from mfa_middleware.core.effects import Key
from mfa_middleware.django.store import DjangoStore
from mfa_middleware.stores.base import Store
from tests.django_project.test_django_app import enroll, login
from tests.django_project.test_django_store import LOCMEM

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


def mfa_messages(**kwargs: object) -> list[CheckMessage]:
    return [m for m in run_checks(**kwargs) if m.id and m.id.startswith("mfa_middleware")]  # type: ignore[arg-type]


def test_the_demo_passes_every_check() -> None:
    assert mfa_messages() == []
    assert mfa_messages(databases=["default"]) == []  # the table exists, the store answers


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([("mode", "required")], "E002"),  # not a dict
        ({"mdoe": "required"}, "E002"),
        ({"mode": "sometimes"}, "E003"),
        ({"store": "ftp://nowhere"}, "E003"),
        ({"store": DjangoStore(cache="missing")}, "E006"),
        ({"store": DjangoStore(cache="local")}, "W002"),
    ],
)
def test_mfa_middleware_options_are_checked(options: object, expected: str) -> None:
    caches = {**settings.CACHES, "local": LOCMEM}
    with override_settings(MFA_MIDDLEWARE=options, CACHES=caches):
        [message] = mfa_messages()
    assert message.id == f"mfa_middleware.{expected}"
    assert message.msg
    assert message.hint or expected == "E003"


def test_a_misspelt_option_gets_a_suggestion() -> None:
    with override_settings(MFA_MIDDLEWARE={"sesion_lifetime": "1d"}):
        [message] = mfa_messages()
    assert "'sesion_lifetime'" in message.msg
    assert "'session_lifetime'" in (message.hint or "")


@pytest.mark.parametrize("key", ["too-short", "x" * 50])
def test_a_weak_secret_key_is_reported(key: str) -> None:
    with override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=[]):
        [message] = mfa_messages()
    assert message.id == "mfa_middleware.E005"
    assert "get_random_secret_key" in (message.hint or "")


def test_a_weak_secret_key_is_fine_when_mfa_has_its_own_keys() -> None:
    own = {**settings.MFA_MIDDLEWARE, "secret_keys": [secrets.token_urlsafe(48)]}
    with override_settings(SECRET_KEY="too-short", MFA_MIDDLEWARE=own):
        assert mfa_messages() == []


def test_an_unreachable_store_is_reported(tmp_path: Path) -> None:
    from tests.support.redis_servers import free_port

    options = {**settings.MFA_MIDDLEWARE, "store": f"redis://127.0.0.1:{free_port()}/0"}
    with override_settings(MFA_MIDDLEWARE=options):
        [message] = mfa_messages()
    assert message.id == "mfa_middleware.E004"
    assert "cannot be reached" in message.msg


def test_a_missing_table_is_a_warning_that_does_not_stop_migrate(tmp_path: Path) -> None:
    from django.core.management import call_command

    from tests.django_project.conftest import add_database, drop_database

    path = tmp_path / "empty.sqlite3"
    add_database("bare", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    try:
        call_command("migrate", "mfa_middleware", "zero", database="bare", verbosity=0)
        options = {**settings.MFA_MIDDLEWARE, "store": DjangoStore(using="bare")}
        with override_settings(MFA_MIDDLEWARE=options):
            assert mfa_messages() == []  # no query unless asked
            [message] = mfa_messages(databases=["bare"])
            assert message.id == "mfa_middleware.W001"
            assert "migrate" in (message.hint or "")
            call_command("migrate", "mfa_middleware", database="bare", verbosity=0)
            assert mfa_messages(databases=["bare"]) == []
    finally:
        drop_database("bare")
