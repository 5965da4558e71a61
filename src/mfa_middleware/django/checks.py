"""`manage.py check` for the middleware's setup: problems found at deploy time, not by users.

E001 the middleware before AuthenticationMiddleware; E002 MFA_MIDDLEWARE not a dict, or an
unknown option; E003 an option's value; E004 a store that cannot be reached; E005 a
SECRET_KEY too weak to sign with; E006 DjangoStore's cache alias missing from CACHES; W001
DjangoStore's table missing (`check --database` and `migrate` only: no query otherwise);
W002 DjangoStore's cache not shared by the workers; W003 LocaleMiddleware after ours (our
pages would not follow Django's language).
"""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning
from django.utils.module_loading import import_string

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.records import SETTINGS_KEY
from mfa_middleware.django.settings import runtime
from mfa_middleware.errors import ConfigError, StoreError
from mfa_middleware.options import MIN_SECRET_LENGTH
from mfa_middleware.stores.base import Store

MIDDLEWARE_PATH = "mfa_middleware.django.MFAMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
LOCALE_MIDDLEWARE = "django.middleware.locale.LocaleMiddleware"


def _is_authentication(path: str) -> bool:
    """Django's AuthenticationMiddleware or a subclass of it (what sets `request.user`)."""
    if path == AUTH_MIDDLEWARE:
        return True
    try:
        from django.contrib.auth.middleware import AuthenticationMiddleware

        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, AuthenticationMiddleware)


@register()
def middleware_order(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The middleware reads `request.user`: it must come after AuthenticationMiddleware."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = [
        i
        for i, path in enumerate(middleware)
        if path in (MIDDLEWARE_PATH, "mfa_middleware.django.middleware.MFAMiddleware")
    ]
    if not ours:
        return []
    auth = [i for i, path in enumerate(middleware) if _is_authentication(path)]
    if auth and auth[0] < ours[0]:
        return []
    return [
        Error(
            "mfa_middleware.django.MFAMiddleware runs before AuthenticationMiddleware: it would"
            " see no user, and every request is refused with a 500 page.",
            hint=f"In MIDDLEWARE, list {MIDDLEWARE_PATH!r} after {AUTH_MIDDLEWARE!r}.",
            id="mfa_middleware.E001",
        )
    ]


@register()
def locale_middleware_order(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """LocaleMiddleware activates the request's language; listed after ours, it does so too
    late for our pages, which then follow the browser instead of the site's choice."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware or LOCALE_MIDDLEWARE not in middleware:
        return []
    if middleware.index(LOCALE_MIDDLEWARE) < middleware.index(MIDDLEWARE_PATH):
        return []
    return [
        CheckWarning(
            "LocaleMiddleware runs after mfa_middleware's: the 2FA pages cannot follow the"
            " language it activates and follow the browser's instead.",
            hint=f"In MIDDLEWARE, list {LOCALE_MIDDLEWARE!r} before {MIDDLEWARE_PATH!r}"
            " (after SessionMiddleware, as Django's documentation places it).",
            id="mfa_middleware.W003",
        )
    ]


OPTIONS = frozenset(f.name for f in fields(MFAConfig))
NOT_SHARED = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps its data in one process",
    "django.core.cache.backends.dummy.DummyCache": "keeps nothing",
    "django.core.cache.backends.filebased.FileBasedCache": "has no atomic increment",
    "django.core.cache.backends.db.DatabaseCache": "has no atomic increment",
}


@register()
def mfa_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """MFA_MIDDLEWARE must be a dict of MFAConfig options with valid values (E002, E003),
    SECRET_KEY good enough to sign with when it is the key (E005), and the store reachable
    (E004; DjangoStore: its table, cache alias and cache backend, W001, E006, W002)."""
    options = getattr(settings, "MFA_MIDDLEWARE", {})
    if not isinstance(options, dict):
        return [
            Error(
                "MFA_MIDDLEWARE must be a dict of MFAConfig options, "
                f"not {type(options).__name__}.",
                hint='e.g. MFA_MIDDLEWARE = {"mode": "required"}',
                id="mfa_middleware.E002",
            )
        ]
    unknown = [
        Error(
            f"MFA_MIDDLEWARE has an unknown option {name!r}.",
            hint=_suggestion(name),
            id="mfa_middleware.E002",
        )
        for name in options
        if name not in OPTIONS
    ]
    if unknown:
        return list(unknown)
    try:
        rt = runtime()
    except ConfigError as exc:
        return [_config_error(exc, own_keys="secret_keys" in options)]
    except (ValueError, TypeError, ImportError) as exc:  # a store URL, a wrong type
        return [Error(f"MFA_MIDDLEWARE: {exc}", id="mfa_middleware.E003")]
    return _store_checks(rt.store, kwargs.get("databases"))


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, OPTIONS, n=1)
    known = "the options are MFAConfig's fields (see the README's Configuration table)"
    return f"Did you mean {close[0]!r}? ({known})" if close else f"Remove it: {known}."


def _config_error(exc: ConfigError, *, own_keys: bool) -> CheckMessage:
    if exc.field == "secret_keys" and not own_keys:
        return Error(
            f"SECRET_KEY cannot sign 2FA cookies: {exc.problem}.",
            hint=(
                f"Use a random SECRET_KEY of at least {MIN_SECRET_LENGTH} characters "
                "(django.core.management.utils.get_random_secret_key()), or give "
                'MFA_MIDDLEWARE its own "secret_keys".'
            ),
            id="mfa_middleware.E005",
        )
    return Error(str(exc), hint=exc.allowed, id="mfa_middleware.E003")


def _store_checks(store: Store, databases: Any) -> list[CheckMessage]:
    from mfa_middleware.django.store import DjangoStore

    if not isinstance(store, DjangoStore):
        return _reachable(store)
    found: list[CheckMessage] = []
    if store.cache_alias is not None:
        found += _cache_checks(store.cache_alias)
    db = store.database(write=True)
    if databases and db in databases:  # Django's rule: no query unless asked (check --database)
        from django.db import connections

        from mfa_middleware.django.models import Document

        if Document._meta.db_table not in connections[db].introspection.table_names():
            found.append(
                CheckWarning(
                    f"The 2FA table is missing from database {db!r}: every protected request "
                    "will answer 503.",
                    hint="Run `manage.py migrate`.",
                    id="mfa_middleware.W001",
                )
            )
        else:
            found += _reachable(store)
    return found


def _reachable(store: Store) -> list[CheckMessage]:
    try:
        store.get(SETTINGS_KEY)
    except StoreError as exc:
        return [
            Error(
                f"The 2FA store cannot be reached: {exc}",
                hint="Every protected request answers 503 until it can: check MFA_MIDDLEWARE"
                '["store"] and that the server is running.',
                id="mfa_middleware.E004",
            )
        ]
    return []


def _cache_checks(alias: str) -> list[CheckMessage]:
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            Error(
                f"DjangoStore(cache={alias!r}) names no cache in CACHES.",
                hint="Name a cache every worker shares (Redis or Memcached), or drop `cache`.",
                id="mfa_middleware.E006",
            )
        ]
    backend = str(caches[alias].get("BACKEND", ""))
    if backend in NOT_SHARED:
        return [
            CheckWarning(
                f"DjangoStore's cache {alias!r} ({backend.rsplit('.', 1)[-1]}) "
                f"{NOT_SHARED[backend]}: other workers' changes reach this one only after "
                "max_age.",
                hint="Use a cache every worker shares with atomic increments: Django's "
                "RedisCache or a Memcached backend.",
                id="mfa_middleware.W002",
            )
        ]
    return []
