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
from mfa_middleware.testing import FixedClock, Outbox  # noqa: E402


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


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    """The demo's settings with every email kept in memory."""
    from django.conf import settings

    box = Outbox()
    options = {**settings.MFA_MIDDLEWARE, "email_sender": box}
    with override_settings(MFA_MIDDLEWARE=options):
        yield box


@pytest.fixture
def clocked(mfa_store: Store, outbox: Outbox) -> Iterator[FixedClock]:
    """The demo's settings on a clock the test moves (codes are still typed at wall time)."""
    import time

    from django.conf import settings

    clock = FixedClock(time.time())
    options = {**settings.MFA_MIDDLEWARE, "clock": clock}
    with override_settings(MFA_MIDDLEWARE=options):
        yield clock


def add_database(alias: str, entry: dict[str, object]) -> None:
    """Register a database alias at run time (DATABASES is read once) and create the 2FA
    table there with our migrations."""
    from django.core.management import call_command
    from django.db import connections

    configured = connections.configure_settings({**connections.settings, alias: dict(entry)})
    connections.settings[alias] = configured[alias]
    call_command("migrate", "mfa_middleware", database=alias, verbosity=0)


def drop_database(alias: str) -> None:
    from django.db import connections

    connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One real PostgreSQL server for the Django tests that need one."""
    from tests.support.postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_alias(postgres: object) -> Iterator[str]:
    """The database alias "pg": a migrated database on the test PostgreSQL server."""
    from tests.support.postgres_server import PostgresServer

    assert isinstance(postgres, PostgresServer)
    postgres.create_database("mfa_store")
    add_database("pg", postgres.django_settings("mfa_store"))
    yield "pg"
    drop_database("pg")


@pytest.fixture(scope="session")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database alias "sqlite_file": a migrated SQLite file (Django's test database is in
    memory, which other connections of other threads share but other processes cannot)."""
    path = tmp_path_factory.mktemp("sqlite") / "mfa.sqlite3"
    add_database("sqlite_file", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    yield "sqlite_file"
    drop_database("sqlite_file")
