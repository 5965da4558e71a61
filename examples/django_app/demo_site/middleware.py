"""A Content-Security-Policy on the demo's own pages. Django's SecurityMiddleware and
XFrameOptionsMiddleware already send nosniff, a Referrer-Policy and X-Frame-Options; the 2FA
pages send their own, stricter policy, which is kept."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# No script, styles and images only from this site, forms only to it, never framed.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/admin/"):  # Django's own admin runs its scripts
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
