"""The Django demo's settings for tests that serve it in several processes: its database from
MFA_TEST_DATABASE (a JSON `DATABASES` entry; default the demo's SQLite file, waiting up to
30 s for a lock), the process cache through Redis when MFA_TEST_CACHE_URL is set, and
MFA_TEST_MAX_ATTEMPTS wrong codes before a lockout."""

from __future__ import annotations

import json
import os

from demo_site.settings import *  # noqa: F403 (the demo, changed below)
from demo_site.settings import DATABASES, MFA_MIDDLEWARE

from mfa_middleware.django.store import DjangoStore

if database := os.environ.get("MFA_TEST_DATABASE"):
    DATABASES = {"default": json.loads(database)}
else:
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}

MFA_MIDDLEWARE = {
    **MFA_MIDDLEWARE,
    "max_attempts": int(os.environ.get("MFA_TEST_MAX_ATTEMPTS", "5")),
    "recovery_code_count": 0,
}
if cache_url := os.environ.get("MFA_TEST_CACHE_URL"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": cache_url}
    }
    MFA_MIDDLEWARE["store"] = DjangoStore(
        cache="default", poll_interval=float(os.environ.get("MFA_TEST_POLL_INTERVAL", "0.5"))
    )
