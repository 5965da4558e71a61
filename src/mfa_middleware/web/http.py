"""The responses of the built-in pages (HTML, JSON, redirects, security headers) and their
forms; the neutral request and response types themselves are in `core.http`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from mfa_middleware.core.http import (
    Cookie,
    RequestFacts,
    Response,
)
from mfa_middleware.core.principal import Principal


def wants_json(facts: RequestFacts, principal: Principal | None) -> bool:
    """API callers get JSON answers they can act on instead of redirects to HTML pages."""
    if principal is not None and principal.is_token:
        return True
    accept = facts.header("accept")
    if "text/html" in accept:
        return False
    if "json" in accept or facts.header("x-requested-with").lower() == "xmlhttprequest":
        return True
    return facts.method not in ("GET", "HEAD")


PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", PAGE_CSP),
)


def with_hsts(response: Response, facts: RequestFacts, max_age: int) -> Response:
    """`response` with Strict-Transport-Security when it answers an HTTPS request: a browser
    that once reached the 2FA pages over TLS never falls back to plain HTTP for them."""
    if facts.scheme != "https" or max_age <= 0:
        return response
    hsts = ("strict-transport-security", f"max-age={max_age}")
    return replace(response, headers=[*response.headers, hsts])


SCRIPT_PAGE_HEADERS = tuple(
    (
        name,
        f"{value}; script-src 'self'; connect-src 'self'"
        if name == "content-security-policy"
        else value,
    )
    for name, value in PAGE_HEADERS
)


def html_response(
    status: int, body: str, cookies: list[Cookie] | None = None, *, scripts: bool = False
) -> Response:
    """A page; `scripts`: it loads same-origin scripts (no inline script, ever)."""
    page_headers = SCRIPT_PAGE_HEADERS if scripts else PAGE_HEADERS
    headers = [("content-type", "text/html; charset=utf-8"), *page_headers]
    return Response(status, headers, body.encode(), list(cookies or ()))


def json_response(
    status: int,
    payload: Mapping[str, Any],
    cookies: list[Cookie] | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    headers = [("content-type", "application/json"), *PAGE_HEADERS, *(extra or [])]
    return Response(status, headers, json.dumps(payload).encode(), list(cookies or ()))


LOCATION_SAFE = "/?#[]@!$&'()*+,;=:%~-._"


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response:
    """A 303; the location is percent-encoded (UTF-8) since headers carry only ASCII safely,
    existing escapes are kept."""
    headers = [
        ("location", quote(location, safe=LOCATION_SAFE)),
        ("cache-control", "no-store"),
        ("content-type", "text/plain; charset=utf-8"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    return Response(303, headers, b"", list(cookies or ()))


def with_next(url: str, next_path: str) -> str:
    if next_path == "/":
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'next': next_path}, quote_via=quote)}"


class FormError(ValueError):
    """The body is not a form we accept (type, size, encoding, a repeated field)."""


def parse_form(facts: RequestFacts, limit: int) -> dict[str, str]:
    """A urlencoded form with each field at most once (one request is one guess)."""
    content_type = facts.header("content-type").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError("expected an application/x-www-form-urlencoded form")
    if len(facts.body) > limit:
        raise FormError("the form is too large")
    try:
        text = facts.body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=64, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("the form is not valid UTF-8 urlencoded data") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise FormError(f"the field {key!r} appears more than once")
        form[key] = value
    return form
