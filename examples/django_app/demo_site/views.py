"""The demo's own pages: the middleware does the 2FA; the billing views ask for a recent second
factor themselves (`mfa_required`, `MFARequiredMixin`) and read `request.mfa`."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import View

from mfa_middleware.django.decorators import MFARequiredMixin, mfa_required, mfa_state


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


@login_required
@mfa_required(max_age="5m", device_ok=False)
def billing(request: HttpRequest) -> HttpResponse:
    """A sensitive page: a second factor from the last five minutes, never a trusted device's."""
    return render(request, "demo_site/billing.html", {"mfa": mfa_state(request)})


@mfa_required(max_age="5m")
async def api_billing(request: HttpRequest) -> JsonResponse:
    """The same requirement on an async JSON view: 401 with RFC 9470's challenge when stale."""
    return JsonResponse({"mfa": mfa_state(request).to_dict()})


class BillingHistory(MFARequiredMixin, View):
    """A class-based view with the same requirement."""

    mfa_max_age = "5m"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "demo_site/billing.html", {"mfa": mfa_state(request)})
