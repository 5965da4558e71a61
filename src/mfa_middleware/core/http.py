"""The HTTP facts every layer shares, framework-neutral: what a request says (`RequestFacts`),
the cookies we set (`Cookie`) and a response (`Response`).

Adapters build `RequestFacts` from their framework's request and turn a `Response` back into
theirs; the core, the stores' configuration and the web layer all read the same types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

LANGUAGE_KEY = "mfa_middleware.language"
"""The ASGI scope or WSGI environ key where an app puts the language it chose for a request
("fr", "pt-BR"), so that our pages follow it."""


@dataclass(slots=True)
class RequestFacts:
    """What the gate and the pages read from a request. Header names are lower case.

    `path` is relative to the app's root, as its router matches it (rules and our prefix are
    matched on it); `root_path` is where the app is mounted (ASGI `root_path`, WSGI
    `SCRIPT_NAME`), put back in front of every URL we send the browser to; `language` the
    language the app chose for this request, if it chose one (Django's active language, the
    `LANGUAGE_KEY` of an ASGI scope or WSGI environ)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    scheme: str = "http"
    body: bytes = b""
    is_websocket: bool = False
    root_path: str = ""
    language: str | None = None

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


def set_cookie(name: str, value: str, *, max_age: int, secure: bool, samesite: str) -> Cookie:
    return Cookie(name, value, max_age, secure, samesite)


def clear_cookie(name: str, *, secure: bool, samesite: str) -> Cookie:
    return Cookie(name, "", 0, secure, samesite)
