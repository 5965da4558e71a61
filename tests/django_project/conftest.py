"""Set up the real Django demo project (examples/django_app) with a throwaway data folder and
Django's test database; every test gets a fresh MFA store through `override_settings`."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_app"
DATA = Path(tempfile.mkdtemp(prefix="mfa-django-demo-"))

os.environ["DJANGO_DEMO_DATA"] = str(DATA)
os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
os.environ["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
os.environ.pop("REDIS_URL", None)
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

import django  # noqa: E402

django.setup()

from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
    teardown_test_environment,
)

from mfa_middleware import MemoryStore  # noqa: E402
from mfa_middleware.stores.base import Store  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def django_test_database() -> Iterator[None]:
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    yield
    teardown_databases(old, verbosity=0)
    teardown_test_environment()


@pytest.fixture
def mfa_store() -> Iterator[Store]:
    """A fresh MFA store for one test, installed through the project's settings."""
    from django.conf import settings

    store = MemoryStore()
    options = {
        **settings.MFA_MIDDLEWARE,
        "store": store,
        "trust_duration": 0,
        "recovery_code_count": 0,
    }
    with override_settings(MFA_MIDDLEWARE=options):
        yield store
