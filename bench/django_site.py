"""The Django project of the Django benchmark: a hello-world view behind Django's auth, and a
login view (no password check: the benchmark only needs a logged-in session)."""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def hello(request: HttpRequest) -> HttpResponse:
    """What a protected view does: read the user. Under django-otp it also checks
    `is_verified()` (what `otp_required` does); ours enforces 2FA in the middleware."""
    user = request.user
    if not user.is_authenticated:
        return HttpResponse("login required", status=401)
    is_verified = getattr(user, "is_verified", None)
    if is_verified is not None and not is_verified():
        return HttpResponse("second factor required", status=403)
    return HttpResponse(f"Hello, {user.get_username()}!")


@csrf_exempt
def login(request: HttpRequest) -> HttpResponse:
    user, _ = get_user_model().objects.get_or_create(username=request.POST["username"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if request.POST.get("otp"):
        import django_otp  # type: ignore[import-untyped]
        from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped]

        device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", confirmed=True)
        django_otp.login(request, device)
    return HttpResponse("logged in")


urlpatterns = [path("", hello), path("login/", login)]
