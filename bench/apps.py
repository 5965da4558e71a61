"""The hello-world Starlette app the in-process ASGI benchmarks drive, and the steps that give
them real cookies: log in, enroll TOTP through our real pages, then replay the raw request.

Variants of the app (each adds to the one before):
  bare          one route, no middleware
  session       + Starlette's SessionMiddleware
  session_auth  + AuthenticationMiddleware (a session login, or an API bearer token)
  ours          + MFAMiddleware (what an app adds to get 2FA)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from time import perf_counter_ns
from typing import Any

import httpx
import pyotp
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bench.common import SESSION_SECRET
from mfa_middleware import MFAConfig, MFAMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]
Headers = list[tuple[bytes, bytes]]

HTML = {"accept": "text/html,application/xhtml+xml"}
API_TOKENS = {"bench-api-token-0123456789": "api-client"}
TOKEN_BYPASS_RULE = {"action": "bypass", "attributes": {"auth_method": "token"}}

_SECRET_RE = re.compile(r"<code>([A-Z2-7 ]+)</code>")
_CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


class BenchUser(BaseUser):
    def __init__(self, username: str, auth_method: str = "session") -> None:
        self.username = username
        self.auth_method = auth_method

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.username


class BenchBackend(AuthenticationBackend):
    """A session login (`session["user"]`), or an API client by bearer token."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        authorization = conn.headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            client = API_TOKENS.get(authorization[7:])
            if client is None:
                return None
            return AuthCredentials(["authenticated"]), BenchUser(client, "token")
        username = conn.session.get("user")
        if not username:
            return None
        return AuthCredentials(["authenticated"]), BenchUser(username)


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


async def login(request: Request) -> Response:
    """The app's own login (a benchmark needs no password check): a new session per login."""
    form = await request.form()
    request.session.clear()
    request.session["user"] = str(form["username"])
    return RedirectResponse("/", 303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", 303)


LAYERS = ("bare", "session", "session_auth", "ours")


def bench_app(layer: str, config: MFAConfig | None = None) -> Starlette:
    """The hello-world app with the middleware of `layer` (see the module docstring)."""
    if layer not in LAYERS:
        raise ValueError(layer)
    middleware: list[Middleware] = []
    if layer != "bare":
        middleware.append(
            Middleware(SessionMiddleware, secret_key=SESSION_SECRET, https_only=False)
        )
    if layer in ("session_auth", "ours"):
        middleware.append(Middleware(AuthenticationMiddleware, backend=BenchBackend()))
    if layer == "ours":
        if config is None:
            raise ValueError("the 'ours' layer needs an MFAConfig")
        middleware.append(Middleware(MFAMiddleware, config=config))
    routes = [
        Route("/", hello),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=middleware)


def mfa_layer(app: Starlette) -> MFAMiddleware:
    """Our middleware instance inside a built app (to reach its runtime and store)."""
    node: Any = app.middleware_stack or app.build_middleware_stack()
    app.middleware_stack = node
    while node is not None:
        if isinstance(node, MFAMiddleware):
            return node
        node = getattr(node, "app", None)
    raise LookupError("no MFAMiddleware in this app")


# -- driving through the real pages ----------------------------------------------------------


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def cookie_header(c: httpx.AsyncClient) -> str:
    return "; ".join(f"{k.name}={k.value}" for k in c.cookies.jar)


def csrf_of(page: str) -> str:
    match = _CSRF_RE.search(page)
    if match is None:
        raise AssertionError("no csrf field on the page")
    return match.group(1)


async def log_in(c: httpx.AsyncClient, username: str) -> None:
    r = await c.post("/login", data={"username": username})
    if r.status_code != 303:
        raise AssertionError(f"login failed: {r.status_code}")


async def enroll_totp(c: httpx.AsyncClient) -> pyotp.TOTP:
    """Enroll the logged-in user through the real enrollment pages; the session is verified."""
    page = await c.get("/_mfa/enroll/totp", headers=HTML)
    if page.status_code != 200:
        raise AssertionError(f"enrollment page: {page.status_code}")
    match = _SECRET_RE.search(page.text)
    if match is None:
        raise AssertionError("no TOTP secret on the enrollment page")
    totp = pyotp.TOTP(match.group(1).replace(" ", ""))
    done = await c.post(
        "/_mfa/enroll/totp",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "code": totp.now(), "next": "/"},
    )
    if done.status_code not in (200, 303):  # 200: the recovery codes, shown once
        raise AssertionError(f"enrollment refused: {done.status_code} {done.text[:200]}")
    return totp


async def verified_session(app: Any, username: str) -> tuple[Headers, pyotp.TOTP]:
    """Log in and enroll through the pages; the request headers of that verified session."""
    async with client(app) as c:
        await log_in(c, username)
        totp = await enroll_totp(c)
        r = await c.get("/", headers=HTML)
        if r.status_code != 200:
            raise AssertionError(f"not verified after enrolling: {r.status_code}")
        return request_headers(cookie_header(c)), totp


async def trusted_device_login(app: Any, username: str) -> Headers:
    """Enroll, trust this browser on the prompt, log out and log in again: the headers of that
    second login, without its MFA session cookie, so every replay of them is the first request
    of a login session and enters through the trusted-device cookie."""
    layer = mfa_layer(app)
    session_cookie = layer.runtime.cookie_name
    async with client(app) as c:
        await log_in(c, username)
        await enroll_totp(c)
        prompt = await c.get("/_mfa/trust?next=/", headers=HTML)
        if prompt.status_code != 200 or 'value="trust"' not in prompt.text:
            raise AssertionError(f"no trust prompt: {prompt.status_code}")
        trusted = await c.post(
            "/_mfa/trust", headers=HTML, data={"csrf": csrf_of(prompt.text), "choice": "trust"}
        )
        if trusted.status_code != 303:
            raise AssertionError(f"trust refused: {trusted.status_code}")
        await c.post("/logout")
        await log_in(c, username)
        kept = [k for k in c.cookies.jar if k.name != session_cookie]
        return request_headers("; ".join(f"{k.name}={k.value}" for k in kept))


async def session_of(app: Any, username: str) -> Headers:
    """Log in and make one request (which mints the MFA session cookie when ours is there)."""
    async with client(app) as c:
        await log_in(c, username)
        r = await c.get("/", headers=HTML)
        if r.status_code != 200:
            raise AssertionError(f"{username}: {r.status_code}")
        return request_headers(cookie_header(c))


def request_headers(cookie: str = "", extra: Sequence[tuple[str, str]] = ()) -> Headers:
    """What a browser sends for a page, as raw ASGI headers."""
    headers = [
        (b"host", b"testserver"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) bench"),
        (b"accept", HTML["accept"].encode()),
        (b"accept-language", b"en-GB,en;q=0.9"),
        (b"accept-encoding", b"gzip, deflate"),
    ]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    headers += [(k.encode(), v.encode()) for k, v in extra]
    return headers


def token_headers() -> Headers:
    token = next(iter(API_TOKENS))
    return [
        (b"host", b"testserver"),
        (b"user-agent", b"bench-api-client/1.0"),
        (b"accept", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]


# -- raw ASGI replay -------------------------------------------------------------------------


def http_scope(headers: Headers, path: str = "/", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> Message:
    return _REQUEST


async def _discard(message: Message) -> None:
    return None


async def replay(app: ASGIApp, template: dict[str, Any], n: int) -> int:
    """Send the same raw request `n` times straight into the app; nanoseconds taken."""
    start = perf_counter_ns()
    for _ in range(n):
        scope = dict(template)
        scope["state"] = {}
        await app(scope, _receive, _discard)
    return perf_counter_ns() - start


async def status_of(
    app: ASGIApp, template: dict[str, Any]
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """One replay, keeping the status and headers (to check a variant answers as it should)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = dict(template)
    scope["state"] = {}
    await app(scope, _receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), list(start.get("headers", []))


def sampler(app: ASGIApp, template: dict[str, Any]) -> Callable[[int], Awaitable[int]]:
    async def run(n: int) -> int:
        return await replay(app, template, n)

    return run


async def post_form(app: ASGIApp, headers: Headers, path: str, form: dict[str, str]) -> int:
    """One form POST straight into the app (as a browser submits a page); the status."""
    from urllib.parse import urlencode

    body = urlencode(form).encode()
    scope = http_scope(
        [
            *headers,
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        path=path,
        method="POST",
    )
    statuses: list[int] = []
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    await app(scope, receive, send)
    return statuses[0]
