"""Django integration: a middleware for `settings.MIDDLEWARE` and a `manage.py mfa` command.

INSTALLED_APPS = [..., "mfa_middleware.django"]
MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
              "mfa_middleware.django.MFAMiddleware", ...]
MFA_MIDDLEWARE = {"store": "sqlite:///var/lib/app/mfa.sqlite3", ...}  # MFAConfig options
"""

from mfa_middleware.django.middleware import MFAMiddleware

__all__ = ["MFAMiddleware"]
