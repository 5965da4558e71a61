"""With Django, our pages follow Django's active language when the project uses Django's
translations (LocaleMiddleware, or one language for the whole project), and the browser's
otherwise (issue 19 point 6)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import run_checks
from django.test import Client, override_settings

from mfa_middleware.stores.base import Store
from tests.django_project.test_django_app import login

LANG = re.compile(r'<html lang="([^"]+)" dir="([^"]+)">')


def page_language(client: Client, **headers: str) -> tuple[str, str]:
    page = client.get("/_mfa/enroll", **headers)  # type: ignore[arg-type]
    assert page.status_code == 200
    match = LANG.search(page.content.decode())
    assert match
    return match.group(1), match.group(2)


def with_locale_middleware() -> list[str]:
    """The demo's middleware with Django's LocaleMiddleware where Django's docs put it:
    after the session middleware, so before ours."""
    middleware = list(settings.MIDDLEWARE)
    after = middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    middleware.insert(after + 1, "django.middleware.locale.LocaleMiddleware")
    return middleware


def test_without_djangos_translations_the_pages_follow_the_browser(mfa_store: Store) -> None:
    client = Client()
    login(client, "alice")
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9") == ("de", "ltr")


def test_with_locale_middleware_the_pages_follow_djangos_active_language(
    mfa_store: Store,
) -> None:
    """The user chose French on the site (Django's language cookie); the browser says
    German: the site's choice wins, as on the project's own pages."""
    with override_settings(MIDDLEWARE=with_locale_middleware()):
        client = Client()
        login(client, "alice")
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
        assert page_language(client, HTTP_ACCEPT_LANGUAGE="de") == ("fr", "ltr")
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
        assert page_language(client, HTTP_ACCEPT_LANGUAGE="de") == ("ar", "rtl")
        del client.cookies[settings.LANGUAGE_COOKIE_NAME]
        # LocaleMiddleware reads the browser's header itself, then falls back to LANGUAGE_CODE
        assert page_language(client, HTTP_ACCEPT_LANGUAGE="ja") == ("ja", "ltr")


def test_a_single_language_project_gets_its_language(mfa_store: Store) -> None:
    with override_settings(USE_I18N=False, LANGUAGE_CODE="pt-br"):
        client = Client()
        login(client, "alice")
        assert page_language(client, HTTP_ACCEPT_LANGUAGE="de") == ("pt-BR", "ltr")


def test_manage_py_check_warns_of_locale_middleware_listed_after_ours() -> None:
    with override_settings(MIDDLEWARE=with_locale_middleware()):
        assert [m.id for m in run_checks() if m.id == "mfa_middleware.W003"] == []
    late = [*settings.MIDDLEWARE, "django.middleware.locale.LocaleMiddleware"]
    with override_settings(MIDDLEWARE=late):
        warnings = [m for m in run_checks() if m.id == "mfa_middleware.W003"]
    assert len(warnings) == 1
    assert "LocaleMiddleware" in (warnings[0].hint or "")
