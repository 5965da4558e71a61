"""Framework-neutral request facts and responses, cookies and forms.

Adapters build a `RequestFacts` from their framework's request and turn a `Response` back
into theirs; everything between is shared by ASGI, WSGI and Django.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from mfa_middleware.core.principal import Principal


@dataclass(slots=True)
class RequestFacts:
    """What the gate and the pages read from a request. Header names are lower case.

    `path` is relative to the app's root, as its router matches it (rules and our prefix are
    matched on it); `root_path` is where the app is mounted (ASGI `root_path`, WSGI
    `SCRIPT_NAME`), put back in front of every URL we send the browser to."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    scheme: str = "http"
    body: bytes = b""
    is_websocket: bool = False
    root_path: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def cookie(self, name: str) -> str | None:
        return cookie_value(self.headers.get("cookie", ""), name)

    @property
    def full_path(self) -> str:
        """The path and query as the browser asked for them (with the root path)."""
        path = self.root_path + self.path
        return f"{path}?{self.query}" if self.query else path

    def url(self, path: str) -> str:
        """An app-relative path (`/login`, `/_mfa/challenge`) as the browser must ask for it;
        a full URL (an external login page) is left alone."""
        if not path.startswith("/") or path.startswith("//"):
            return path
        return self.root_path + path

    def query_param(self, name: str) -> str | None:
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            if key == name:
                return value
        return None


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, or None; a malformed header is no cookie.

    Pairs are split as RFC 6265 does (`name=value` separated by `;`): a name counts only at the
    start of a pair, so `tracker=x mfa_session=evil` is one cookie named `tracker`. Found by a
    search, without building a dict of every cookie (this runs on every request)."""
    target = name + "="
    start = header.find(target)
    while start != -1:
        before = start - 1
        while before >= 0 and header[before] in " \t":
            before -= 1
        if before < 0 or header[before] == ";":  # the start of a pair: the whole name
            end = header.find(";", start)
            value = header[start + len(target) : None if end == -1 else end]
            return value.strip().strip('"') or None
        start = header.find(target, start + 1)
    return None


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


@dataclass(frozen=True, slots=True)
class Cookie:
    """A cookie to set; kept apart from other headers because frameworks (Django) set cookies
    through their own API rather than as raw headers."""

    name: str
    value: str
    max_age: int
    secure: bool
    samesite: str

    def header(self) -> str:
        parts = [
            f"{self.name}={self.value}",
            "Path=/",
            f"Max-Age={self.max_age}",
            "HttpOnly",
            f"SameSite={self.samesite.capitalize()}",
        ]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    cookies: list[Cookie] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def raw_headers(self) -> list[tuple[str, str]]:
        """Headers with a Set-Cookie line per cookie, for ASGI and WSGI."""
        return [*self.headers, *(("set-cookie", c.header()) for c in self.cookies)]


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


def html_response(status: int, body: str, cookies: list[Cookie] | None = None) -> Response:
    headers = [("content-type", "text/html; charset=utf-8"), *PAGE_HEADERS]
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


def set_cookie(name: str, value: str, *, max_age: int, secure: bool, samesite: str) -> Cookie:
    return Cookie(name, value, max_age, secure, samesite)


def clear_cookie(name: str, *, secure: bool, samesite: str) -> Cookie:
    return Cookie(name, "", 0, secure, samesite)


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
