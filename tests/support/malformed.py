"""The malformed form values every adapter's pages are posted (issue 14, point 8: no form
value of any page, however malformed, produces a 500). One list, so that the ASGI, Flask and
Django tests post the same values to the same pages."""

from __future__ import annotations

from mfa_middleware.web.router import ROUTES

POSTED = sorted(path for path, route in ROUTES.items() if route.post)
FIELDS = (
    "csrf", "code", "next", "name", "device", "action", "phone", "region", "email", "token",
    "choice", "user", "mode", "lifetime", "reauth",
)  # fmt: skip
NASTY = (
    "é",
    "\u2603" * 300,
    "\x00\x01\x7f",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits
    "a" * 4000,
    "%00%ff",
    '"><script>alert(1)</script>',
    "\r\nSet-Cookie: x=y",
    "//evil.example",
    "",
)
XSS = "<script>alert(1)"  # the NASTY value's markup, which no page may echo unescaped


def forged_forms(csrf: str) -> list[dict[str, str]]:
    """Every field set to each NASTY value, without and with the page's real CSRF token (so
    the value reaches the handler behind the token check as well)."""
    forms: list[dict[str, str]] = []
    for value in NASTY:
        forged = dict.fromkeys(FIELDS, value)
        forms += [forged, {**forged, "csrf": csrf}]
    return forms
