"""The WSGI adapter: wrap any WSGI app (Flask, Bottle, Pyramid, ...), sync all the way.

    app.wsgi_app = MFAMiddleware(app.wsgi_app, config, identify=who_is_logged_in)

It runs the same gate and page flows as the ASGI adapter with the sync driver; no event loop
is started per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.principal import Principal
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import (
    NO_APP_SESSION,
    UNGATED,
    AppSession,
    access,
    end_session,
    gate,
    remember,
    replay,
)
from mfa_middleware.web.http import Cookie, RequestFacts, Response, clear_cookie, cookie_value
from mfa_middleware.web.routes import handle_page

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
        self.identify = identify
        self.login_marker = login_marker
        self.on_logout = on_logout
        self.logout_cookies = [
            clear_cookie(name, secure=config.cookie_secure, samesite=config.cookie_samesite)
            for name in logout_cookies
        ]
        self._prefix = config.prefix
        self._prefix_slash = config.prefix + "/"

    def logout(self, environ: Environ) -> None:
        """Sign this request's MFA session out server-side: call it from the app's logout view
        (`app.wsgi_app.logout(request.environ)`), so a copied MFA cookie replays nothing after
        the user logged out (SES-10)."""
        principal = self.identify(environ)
        rt = self.runtime
        claims = rt.sessions.decode(cookie_value(environ.get("HTTP_COOKIE", ""), rt.cookie_name))
        if principal is None or claims is None:
            return
        if claims.user_tag not in rt.user_tag.tags(principal.id):
            return
        try:
            rt.run(end_session(rt, claims, principal.id, actor="app_logout"))
        except StoreError as exc:  # the app's logout goes on; the cookie is cleared with it
            logger.error("2FA store unavailable, sign-out not recorded: %s", exc)

    def _app_session(self, environ: Environ) -> AppSession:
        if self.login_marker is None:
            return NO_APP_SESSION
        return AppSession(marker=self.login_marker(environ))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = wsgi_path(environ)
        if path == self._prefix or path.startswith(self._prefix_slash):
            return self._page(environ, start_response)
        principal = self.identify(environ)
        if principal is None:
            return self.app(environ, start_response)
        rt = self.runtime
        app = self._app_session(environ)
        token = cookie_value(environ.get("HTTP_COOKIE", ""), rt.cookie_name)
        ticket = replay(rt, token, app.marker, principal.id)
        if ticket.final:
            return self.app(environ, start_response)
        facts = facts_from_environ(environ)
        action = access(rt, ticket, facts, principal)
        if action == UNGATED:
            return self.app(environ, start_response)
        result = rt.run(gate(rt, facts, principal, app, action))
        remember(rt, ticket, result)
        if result.end_app_session:
            self._end_app_session(environ, result.response)
        if result.response is not None:
            return self._respond(environ, start_response, result.response)
        if result.cookies:
            start_response = _adding_cookies(start_response, result.cookies)
        return self.app(environ, start_response)

    def _end_app_session(self, environ: Environ, response: Response | None) -> None:
        if response is not None:
            response.cookies.extend(self.logout_cookies)
        if self.on_logout is not None:
            self.on_logout(environ)

    def _respond(
        self, environ: Environ, start_response: StartResponse, response: Response
    ) -> list[bytes]:
        start_response(
            status_line(response.status),
            [*response.raw_headers(), ("content-length", str(len(response.body)))],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def _page(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        rt = self.runtime
        body = b""
        if environ.get("REQUEST_METHOD", "GET").upper() == "POST":
            body = read_body(environ, rt.config.max_form_bytes)
        facts = facts_from_environ(environ, body)
        principal = self.identify(environ)
        outcome = rt.run(handle_page(rt, facts, principal, self._app_session(environ)))
        if outcome.end_app_session:
            self._end_app_session(environ, outcome.response)
        return self._respond(environ, start_response, outcome.response)


def _adding_cookies(start_response: StartResponse, cookies: list[Cookie]) -> StartResponse:
    extra = [("set-cookie", c.header()) for c in cookies]

    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, *extra], exc_info)

    return wrapped
