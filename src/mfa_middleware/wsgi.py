"""The WSGI adapter: wrap any WSGI app (Flask, Bottle, Pyramid, ...), sync all the way.

    app.wsgi_app = MFAMiddleware(app.wsgi_app, config, identify=who_is_logged_in)

It reads the environ into an `Incoming`, makes the same one call as the ASGI adapter
(`web.entry.Entry.handle`) and runs the flow it may get with the sync driver; no event loop is
started per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.http import LANGUAGE_KEY, Cookie, RequestFacts, Response, clear_cookie
from mfa_middleware.core.principal import Principal
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.entry import Entry, Incoming
from mfa_middleware.web.outcomes import Answer, Work

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Identify = Callable[[Environ], Principal | None]
LoginMarker = Callable[[Environ], str | None]
OnLogout = Callable[[Environ], None]


def wsgi_path(environ: Environ) -> str:
    """PATH_INFO as the text the client sent (WSGI hands it over as latin-1 decoded bytes)."""
    raw: str = environ.get("PATH_INFO", "") or "/"
    return raw.encode("latin-1").decode("utf-8", "replace")


def script_name(environ: Environ) -> str:
    """Where the app is mounted (WSGI's SCRIPT_NAME), as text, without a trailing slash."""
    raw: str = environ.get("SCRIPT_NAME", "") or ""
    return raw.encode("latin-1").decode("utf-8", "replace").rstrip("/")


def facts_from_environ(environ: Environ, body: bytes = b"") -> RequestFacts:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return RequestFacts(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=wsgi_path(environ),
        query=environ.get("QUERY_STRING", ""),
        headers=headers,
        client=peer_text(environ.get("REMOTE_ADDR")),
        scheme=environ.get("wsgi.url_scheme", "http"),
        body=body,
        root_path=script_name(environ),
        language=environ.get(LANGUAGE_KEY),
    )


def read_body(environ: Environ, limit: int) -> bytes:
    """At most `limit + 1` bytes of the body: enough for the form parser to refuse a big one."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(min(length, limit + 1))
    return data


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class MFAMiddleware:
    """Two-factor authentication around a WSGI app.

    `identify(environ)` returns the logged-in `Principal` or None. `login_marker(environ)`, when
    given, returns a value the app changes at every login (e.g. a nonce it keeps in its session):
    a new login then always needs a new code. `logout_cookies` names the app's session cookies
    to clear when a session expires or is forced out; `on_logout(environ)` runs then as well.
    """

    def __init__(
        self,
        app: WSGIApp,
        config: MFAConfig,
        identify: Identify,
        *,
        login_marker: LoginMarker | None = None,
        logout_cookies: Iterable[str] = (),
        on_logout: OnLogout | None = None,
    ) -> None:
        self.app = app
        self.runtime = Runtime(config)
        self.login_marker = login_marker
        self.on_logout = on_logout
        self.logout_cookies = [
            clear_cookie(
                name, secure=config.sessions.cookie_secure, samesite=config.sessions.cookie_samesite
            )
            for name in logout_cookies
        ]
        self.entry = Entry(self.runtime, principal_of=identify, facts_of=facts_from_environ)

    def logout(self, environ: Environ) -> None:
        """Sign this request's MFA session out server-side: call it from the app's logout view
        (`app.wsgi_app.logout(request.environ)`), so a copied MFA cookie replays nothing after
        the user logged out (SES-10)."""
        work = self.entry.sign_out(self._incoming(environ))
        if work is not None:
            self.runtime.run(work.flow, work.recover)

    def _incoming(self, environ: Environ) -> Incoming:
        marker = None if self.login_marker is None else self.login_marker(environ)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        cookies = environ.get("HTTP_COOKIE", "")
        return Incoming(wsgi_path(environ), method, cookies, marker, False, environ)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        incoming = self._incoming(environ)
        limit = self.entry.body_limit(incoming.path) if incoming.method == "POST" else None
        if limit is not None:
            incoming.body = read_body(environ, limit)
        outcome = self.entry.handle(incoming)
        if isinstance(outcome, Work):
            outcome = self.runtime.run(outcome.flow, outcome.recover)
        ended: list[Cookie] = []
        if outcome.end_app_session:
            ended = self.logout_cookies
            if self.on_logout is not None:
                self.on_logout(environ)
        if isinstance(outcome, Answer):
            return self._respond(environ, start_response, outcome.response, ended)
        if outcome.cookies:
            start_response = _adding_cookies(start_response, outcome.cookies)
        environ["mfa"] = outcome.mfa
        return self.app(environ, start_response)

    def _respond(
        self,
        environ: Environ,
        start_response: StartResponse,
        response: Response,
        more_cookies: list[Cookie],
    ) -> list[bytes]:
        cookies = [("set-cookie", c.header()) for c in more_cookies]
        start_response(
            status_line(response.status),
            [*response.raw_headers(), *cookies, ("content-length", str(len(response.body)))],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]


def _adding_cookies(start_response: StartResponse, cookies: tuple[Cookie, ...]) -> StartResponse:
    extra = [("set-cookie", c.header()) for c in cookies]

    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, *extra], exc_info)

    return wrapped
