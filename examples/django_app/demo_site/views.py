"""The demo's own pages: nothing here knows about 2FA; the middleware does it all."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_site/home.html")


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_site/account.html")


def whoami(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login_required"}, status=401)
    return JsonResponse({"username": request.user.get_username()})


async def async_whoami(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "login_required"}, status=401)
    return JsonResponse({"username": user.get_username(), "async": True})


def favicon(request: HttpRequest) -> HttpResponse:
    """The icon browsers ask for on every page, the 2FA pages included."""
    icon = settings.STATICFILES_DIRS[0] / "favicon.svg"
    return HttpResponse(icon.read_bytes(), content_type="image/svg+xml")
