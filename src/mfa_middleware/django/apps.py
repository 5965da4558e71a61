"""The Django app: `manage.py mfa`, the system checks, and sign-out at Django's logout."""

from typing import Any

from django.apps import AppConfig


class MFAMiddlewareConfig(AppConfig):
    name = "mfa_middleware.django"
    label = "mfa_middleware"
    verbose_name = "Two-factor authentication"
    default_auto_field = "django.db.models.BigAutoField"  # fixed: no migration per project

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from mfa_middleware.django import checks  # noqa: F401 (registers the checks)
        from mfa_middleware.django.middleware import end_session_at_logout

        def on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
            end_session_at_logout(request, user)

        user_logged_out.connect(on_logout, dispatch_uid="mfa_middleware.end_session", weak=False)
