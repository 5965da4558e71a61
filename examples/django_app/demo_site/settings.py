"""Settings of the Django demo: a small real project protected by mfa_middleware."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from demo_site.metrics import METRICS
from mfa_middleware.django.impersonation import hijacker
from mfa_middleware.senders import ConsoleSender, Sender
from mfa_middleware.senders.smtp import SMTPSender

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DJANGO_DEMO_DATA", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """DJANGO_SECRET_KEY from the environment, or a random key kept in the data folder."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    key_file = DATA_DIR / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()


def demo_email_sender() -> Sender:
    """Codes by email: printed to the terminal, or sent to the SMTP server in MFA_DEMO_SMTP
    ("host:port", plain SMTP for a local test server)."""
    if smtp := os.environ.get("MFA_DEMO_SMTP"):
        host, _, port = smtp.rpartition(":")
        return SMTPSender(
            host, int(port), from_addr="demo@example.com", tls="none", allow_insecure=True
        )
    return ConsoleSender("email")


DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mfa_middleware.django",
    "hijack",  # support staff signed in as a user (django-hijack): see is_impersonating below
    "hijack.contrib.admin",  # its "impersonate" button in the admin's user list
    "demo_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "demo_site.middleware.ContentSecurityPolicy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # before the 2FA middleware, so the login page can say why a session it ended is over
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mfa_middleware.django.MFAMiddleware",
    # after ours: its banner goes on the app's pages, never on the 2FA pages
    "hijack.middleware.HijackUserMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
ASGI_APPLICATION = "demo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR.parent / "static"]  # demo.css and the icon, shared by both demos
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Two-factor authentication: the MFA state lives in the project's database (DjangoStore, the
# default with "mfa_middleware.django" in INSTALLED_APPS; `manage.py migrate` makes its table),
# or in Redis when REDIS_URL is set. The demo is served over plain HTTP, so its cookies are not
# Secure; production keeps the default (Secure, __Host- prefix).
PUBLIC_URL = os.environ.get(
    "MFA_DEMO_PUBLIC_URL", f"http://localhost:{os.environ.get('PORT', '8001')}"
)


def passkeys_possible(public_url: str) -> bool:
    """Passkeys need a domain name (localhost in development), never an IP address, and
    py_webauthn installed (the dev extra has it)."""
    try:
        ipaddress.ip_address(urlsplit(public_url).hostname or "")
    except ValueError:
        return importlib.util.find_spec("webauthn") is not None
    return False


MFA_MIDDLEWARE = {
    "app_name": "Django demo",
    "cookie_secure": False,
    # links in emails point here: the port `manage.py rundemo` serves on
    "public_url": PUBLIC_URL,
    "webauthn_enabled": passkeys_possible(PUBLIC_URL),  # browsers refuse them on an IP address
    "email_sender": demo_email_sender(),
    "sms_sender": ConsoleSender("sms"),  # text messages are printed to the terminal
    "email_codes": True,  # every method on show; off by default (not NIST-conformant)
    # the icon browsers ask for by themselves needs no login and no second step, nor do the
    # metrics (served to this machine only: demo_site/metrics.py)
    "rules": [{"action": "bypass", "paths": ["/favicon.ico", "/metrics"]}],
    "metrics": METRICS,
    # a staff member signed in as a user through django-hijack passes on their own second
    # factor, cannot open the user's 2FA pages, and each request is an event naming both
    "is_impersonating": hijacker,
}
# staff may sign in as users who are not staff (carol as bob), superusers as anyone
HIJACK_PERMISSION_CHECK = "hijack.permissions.superusers_and_staff"
if redis_url := os.environ.get("REDIS_URL"):
    MFA_MIDDLEWARE["store"] = redis_url
if brand := os.environ.get("MFA_DEMO_BRAND_COLOR"):  # e.g. "#0f766e": the pages' colour
    MFA_MIDDLEWARE["brand_color"] = brand
