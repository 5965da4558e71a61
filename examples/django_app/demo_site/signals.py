"""What the login page says after a logout: the user's own, or a session the 2FA middleware
ended (expired, or signed out everywhere by the user or an administrator)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse

SIGNED_OUT = "You are signed out."
ENDED = (
    "Your session has ended: it expired, or you were signed out on all your devices. "
    "Log in again to continue."
)


@receiver(user_logged_out)
def say_why(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is None or request.path.startswith("/_mfa/enroll"):
        return  # a first enrollment ended it (relogin_after_enrollment): the page says so
    own = request.path == reverse("logout") or request.path.endswith("/_mfa/logout")
    messages.info(request, SIGNED_OUT if own else ENDED, fail_silently=True)
