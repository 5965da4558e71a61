"""The ASGI adapter: a pure ASGI middleware (never `BaseHTTPMiddleware`).

It turns the scope into `RequestFacts`, runs the shared gate or page flow with the async
driver, and turns the result back into ASGI messages. It holds no policy of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.principal import Principal
from mfa_middleware.errors import SetupError, StoreError
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
from mfa_middleware.web.http import Cookie, RequestFacts, Response, cookie_value
from mfa_middleware.web.messages import misconfigured
from mfa_middleware.web.routes import handle_page

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Identify = Callable[[Scope], Principal | None]
OnLogout = Callable[[Scope], Awaitable[None] | None]

SESSION_MARKER = "_mfa_sid"
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
WEBSOCKET_CLOSE = {503: TRY_AGAIN_LATER, 500: INTERNAL_ERROR}


NO_USER = (
    "MFAMiddleware found no scope['user']: it must run after Starlette's "
    "AuthenticationMiddleware (list it after AuthenticationMiddleware in middleware=[...], or "
    "call app.add_middleware(MFAMiddleware, ...) before add_middleware(AuthenticationMiddleware,"
    " ...)), or pass identify= to read the user some other way. Every request is refused until"
    " then."
)
NO_USER_ID = (
    "MFAMiddleware: the authenticated user object has neither `identity` nor `username`: give "
    "your user class a stable `identity` (never the display name, which users may choose), or "
    "pass identify=."
)


def user_id_from_scope(scope: Scope) -> str | None:
    """The logged-in user's id in Starlette's `scope["user"]`: its `identity`, else its
    `username` attribute (Starlette's SimpleUser); never `display_name`, which a user may be
    free to choose. None for an anonymous user. All the verified-request path reads.

    Raises SetupError when the scope has no user at all (the middleware sits outside
    AuthenticationMiddleware) or the user has no stable id."""
    try:
        user = scope["user"]
    except KeyError:
        raise SetupError(NO_USER) from None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        user_id = user.identity
    except (AttributeError, NotImplementedError):
        user_id = getattr(user, "username", None)
    if user_id is None or user_id == "":
        raise SetupError(NO_USER_ID)
    return str(user_id)


def principal_from_scope(scope: Scope) -> Principal | None:
    """The default `identify`: Starlette's `scope["user"]` (AuthenticationMiddleware).

    Reads the id as `user_id_from_scope` does, and `email`, `phone`, `groups` and `auth_method`
    where the user object has them; an anonymous or missing user is None.
    """
    user_id = user_id_from_scope(scope)
    if user_id is None:
        return None
    user = scope["user"]
    return Principal(
        id=user_id,
        username=str(_display_name(user) or user_id),
        email=getattr(user, "email", None),
        phone=getattr(user, "phone", None),
        groups=frozenset(getattr(user, "groups", ()) or ()),
        auth_method=str(getattr(user, "auth_method", "session")),
    )


def _display_name(user: Any) -> str:
    try:
        return str(user.display_name or "")
    except (AttributeError, NotImplementedError):
        return ""


class ScopeHeaders(Mapping[str, str]):
    """The scope's headers, decoded only when asked for: the verified-request path reads just
    the Cookie header. Repeated lines are joined as HTTP says (RFC 9110 §5.3; Cookie lines of
    HTTP/2 with "; "), so a second X-Forwarded-For line is read, not ignored."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def _find(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        found = [v for k, v in self._raw if k == wanted]  # ASGI servers send lower-case names
        if not found:
            found = [v for k, v in self._raw if k.lower() == wanted]
        if not found:
            return None
        return (b"; " if name == "cookie" else b", ").join(found).decode("latin-1")

    def __getitem__(self, name: str) -> str:
        value = self._find(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = self._find(name)
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.decode("latin-1").lower() for k, _ in self._raw))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def cookie_header(raw: list[tuple[bytes, bytes]]) -> str:
    """The Cookie header of raw ASGI headers (repeated ones joined, as `ScopeHeaders` does),
    found without building the headers mapping: all the verified-request path needs."""
    found: bytes | None = None
    for key, value in raw:
        if key == b"cookie":
            found = value if found is None else found + b"; " + value
    if found is None:
        return str(ScopeHeaders(raw).get("cookie", ""))  # upper-case names, or none at all
    return found.decode("latin-1")


def split_root(scope: Scope) -> tuple[str, str]:
    """(root path, path relative to it) as Starlette's router splits them: the scope's `path`
    holds `root_path` in front under `uvicorn --root-path` or inside a `Mount`."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if not root or not path.startswith(root):
        return "", path
    rest = path[len(root) :]
    if not rest:
        return root, "/"
    return (root, rest) if rest[0] == "/" else ("", path)


def facts_from_scope(scope: Scope, body: bytes = b"") -> RequestFacts:
    headers = ScopeHeaders(scope.get("headers") or [])
    client = scope.get("client")
    root, path = split_root(scope)
    return RequestFacts(
        method=scope.get("method", "GET"),
        path=path,
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        client=peer_text(client[0]) if client else None,
        scheme=scope.get("scheme", "http"),
        body=body,
        is_websocket=scope["type"] == "websocket",
        root_path=root,
    )


def session_marker(scope: Scope) -> str | None:
    """The MFA session id kept in the app's session (Starlette's `scope["session"]`)."""
    session = scope.get("session")
    if session is None or not (type(session) is dict or isinstance(session, MutableMapping)):
        return None
    marker = session.get(SESSION_MARKER)
    return marker if isinstance(marker, str) else None


def app_session(scope: Scope) -> AppSession:
    session = scope.get("session")
    if session is None or not (type(session) is dict or isinstance(session, MutableMapping)):
        return NO_APP_SESSION
    return AppSession(writable=True, marker=session_marker(scope))


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, cut off just past `limit` (the form parser then refuses it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        if size <= limit:
            chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Send, response: Response, *, head: bool = False) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.raw_headers()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


class MFAMiddleware:
    """Wrap an ASGI app: `app.add_middleware(MFAMiddleware, config=MFAConfig(...))`.

    Place it inside the app's session and authentication middleware (added before them with
    `add_middleware`, listed after them in `middleware=[...]`) so it sees `scope["user"]`.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: MFAConfig,
        identify: Identify | None = None,
        on_logout: OnLogout | None = None,
    ) -> None:
        self.app = app
        self.runtime = Runtime(config)
        self.identify = identify or principal_from_scope
        self._default_identify = identify is None
        self.on_logout = on_logout
        self._prefix = config.prefix
        self._prefix_slash = config.prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if not scope.get("root_path") else split_root(scope)[1]
        if kind == "http" and (path == self._prefix or path.startswith(self._prefix_slash)):
            await self._page(scope, receive, send)
            return
        rt = self.runtime
        try:
            if self._default_identify:
                principal = None
                user_id = user_id_from_scope(scope)
            else:
                principal = self.identify(scope)
                user_id = None if principal is None else principal.id
        except SetupError as exc:
            await self._misconfigured(scope, receive, send, exc)
            return
        if user_id is None:
            await self.app(scope, receive, send)
            return
        token = cookie_value(cookie_header(scope.get("headers") or []), rt.cookie_name)
        marker = session_marker(scope)
        ticket = replay(rt, token, marker, user_id)
        if ticket.final:  # a verified session seen before: nothing else to build or check
            await self.app(scope, receive, send)
            if marker is not None and session_marker(scope) != marker:
                await self._app_logged_out(scope, token, marker, user_id)
            return
        principal = principal or self.identify(scope)
        assert principal is not None
        facts = facts_from_scope(scope)
        action = access(rt, ticket, facts, principal)
        if action != UNGATED:
            app = app_session(scope)
            flow = gate(rt, facts, principal, app, action)
            # An in-process store answers in microseconds (its async twins call the sync
            # methods anyway), so the gate skips the coroutine per store call; the gate never
            # sends codes.
            result = rt.run(flow) if rt.store.in_process else await rt.arun(flow)
            remember(rt, ticket, result)
            if result.marker is not None:
                scope["session"][SESSION_MARKER] = marker = result.marker
            if result.end_app_session:
                await self._end_app_session(scope)
            if result.response is not None:
                await self._refuse(scope, receive, send, result.response)
                return
            if result.cookies:
                send = _adding_cookies(send, result.cookies)
        await self.app(scope, receive, send)
        if marker is not None and session_marker(scope) != marker:
            await self._app_logged_out(scope, token, marker, user_id)

    async def _app_logged_out(
        self, scope: Scope, token: str | None, marker: str, user_id: str
    ) -> None:
        """The app cleared its session during this request (its logout, or a new login over
        an old one): that MFA session is over, server-side, so its cookie replays nothing."""
        rt = self.runtime
        claims = rt.sessions.decode(token)
        if claims is None or claims.session_id != marker:
            return
        flow = end_session(rt, claims, user_id, actor="app_logout")
        try:
            await rt.arun(flow)
        except StoreError as exc:  # the response is sent; the session's cookie is gone too
            logger.error("2FA store unavailable, sign-out not recorded: %s", exc)

    async def _misconfigured(
        self, scope: Scope, receive: Receive, send: Send, exc: SetupError
    ) -> None:
        logger.error("%s", exc)
        facts = facts_from_scope(scope)
        await self._refuse(scope, receive, send, misconfigured(self.runtime, facts))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            code = WEBSOCKET_CLOSE.get(response.status, POLICY_VIOLATION)
            await send({"type": "websocket.close", "code": code})
            return
        await send_response(send, response, head=scope.get("method") == "HEAD")

    async def _end_app_session(self, scope: Scope) -> None:
        session = scope.get("session")
        if isinstance(session, MutableMapping):
            session.clear()
        if self.on_logout is not None:
            result = self.on_logout(scope)
            if inspect.isawaitable(result):
                await result

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.runtime
        body = b""
        if scope.get("method") == "POST":
            body = await read_body(receive, rt.config.max_form_bytes)
        facts = facts_from_scope(scope, body)
        try:
            principal = self.identify(scope)
        except SetupError as exc:
            await self._misconfigured(scope, receive, send, exc)
            return
        outcome = await rt.arun(handle_page(rt, facts, principal, app_session(scope)))
        if outcome.marker is not None and isinstance(scope.get("session"), MutableMapping):
            scope["session"][SESSION_MARKER] = outcome.marker
        if outcome.end_app_session:
            await self._end_app_session(scope)
        await send_response(send, outcome.response, head=scope.get("method") == "HEAD")


def _adding_cookies(send: Send, cookies: list[Cookie]) -> Send:
    """Add our Set-Cookie headers to the app's response start, touching nothing else."""
    extra = [(b"set-cookie", c.header().encode("latin-1")) for c in cookies]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return wrapped
