"""`MFAConfig` from Django settings, built once per process and rebuilt when settings change."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.principal import Principal
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores import store_from_url


def config_from_settings() -> MFAConfig:
    """`settings.MFA_MIDDLEWARE` as MFAConfig options, with Django's own values as defaults:
    `secret_keys` from SECRET_KEY (and SECRET_KEY_FALLBACKS, oldest first), `login_url` from
    LOGIN_URL. `store` may be a Store or a URL (`sqlite:///path`, `redis://...`)."""
    options: dict[str, Any] = dict(getattr(settings, "MFA_MIDDLEWARE", {}))
    if "secret_keys" not in options:
        fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []))
        options["secret_keys"] = [*reversed(fallbacks), settings.SECRET_KEY]
    options.setdefault("login_url", str(settings.LOGIN_URL))
    options.setdefault("is_admin", _is_staff)
    if isinstance(options.get("store"), str):
        options["store"] = store_from_url(options["store"])
    return MFAConfig(**options)


def _is_staff(principal: Principal) -> bool:
    """The default admin check for the 2FA admin pages: Django's staff flag."""
    return bool(principal.attributes.get("is_staff"))


@cache
def runtime() -> Runtime:
    """The process's runtime (keys, codecs, templates, store), shared by every request."""
    return Runtime(config_from_settings())


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("MFA_MIDDLEWARE", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "LOGIN_URL"):
        runtime.cache_clear()
