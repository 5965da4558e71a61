"""`manage.py check` for the middleware's setup: problems found at deploy time, not by users."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

MIDDLEWARE_PATH = "mfa_middleware.django.MFAMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


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
