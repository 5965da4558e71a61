"""The Django app, installed so that `manage.py mfa` is found."""

from django.apps import AppConfig


class MFAMiddlewareConfig(AppConfig):
    name = "mfa_middleware.django"
    label = "mfa_middleware"
    verbose_name = "Two-factor authentication"
