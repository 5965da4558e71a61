"""`MFAConfig` from Django settings, built once per process and rebuilt when settings change."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.principal import Principal
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores import store_from_url

APP = "mfa_middleware.django"


def config_from_settings() -> MFAConfig:
    """`settings.MFA_MIDDLEWARE` as MFAConfig options, with Django's own values as defaults:
    `secret_keys` from SECRET_KEY (and SECRET_KEY_FALLBACKS, oldest first), `login_url` from
    LOGIN_URL, the store in the project's database (`DjangoStore`) when this app is in
    INSTALLED_APPS, templates overridden from the project's template folders, and the events
    sent as Django signals too. `store` may be a Store or a URL (`sqlite:///path`,
    `redis://...`)."""
    options: dict[str, Any] = dict(getattr(settings, "MFA_MIDDLEWARE", {}))
    if "secret_keys" not in options:
        fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []))
        options["secret_keys"] = [*reversed(fallbacks), settings.SECRET_KEY]
    options.setdefault("login_url", str(settings.LOGIN_URL))
    options.setdefault("is_admin", _is_staff)
    options.setdefault("is_superadmin", _is_superuser)
    if isinstance(options.get("store"), str):
        options["store"] = store_from_url(options["store"])
    elif options.get("store") is None and apps.is_installed(APP):
        from mfa_middleware.django.store import DjangoStore

        options["store"] = DjangoStore()
    options["template_dir"] = template_dirs(options.get("template_dir"))
    if apps.is_installed(APP):
        from mfa_middleware.django.signals import signalling

        options["on_event"] = signalling(options.get("on_event"))
    return MFAConfig(**options)


def template_dirs(own: str | Path | None) -> list[Path] | None:
    """Where the pages' templates are looked up before the built-in ones: `template_dir`,
    then an `mfa_middleware/` folder in each folder Django's template engines search (their
    DIRS, then the apps' template folders), as for any reusable app. The files are Jinja2
    templates, like the built-in ones they replace."""
    from django.template import engines

    found = [Path(own)] if own is not None else []
    for engine in engines.all():
        for folder in engine.template_dirs:
            candidate = Path(folder) / "mfa_middleware"
            if candidate.is_dir() and candidate not in found:
                found.append(candidate)
    return found or None


def _is_staff(principal: Principal) -> bool:
    """The default admin check for the 2FA admin pages: Django's staff flag."""
    return bool(principal.attributes.get("is_staff"))


def _is_superuser(principal: Principal) -> bool:
    """The default superadmin check (the mode, the session lifetime, everyone's sessions,
    exemptions): Django's superuser flag. Staff without it are helpdesk administrators."""
    return bool(principal.attributes.get("is_superuser"))


@cache
def runtime() -> Runtime:
    """The process's runtime (keys, codecs, templates, store), shared by every request."""
    return Runtime(config_from_settings())


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in RUNTIME_SETTINGS:
        runtime.cache_clear()


RUNTIME_SETTINGS = frozenset(
    {"MFA_MIDDLEWARE", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "LOGIN_URL", "TEMPLATES"}
)
