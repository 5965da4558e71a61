"""The ASGI adapter: a pure ASGI middleware (never `BaseHTTPMiddleware`).

It reads the scope into an `Incoming`, makes the one call (`web.entry.Entry.handle`), runs the
flow it may get with the async driver, and writes the outcome back as ASGI messages. It holds
no policy of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.http import LANGUAGE_KEY, Cookie, RequestFacts, Response
from mfa_middleware.core.principal import Principal
from mfa_middleware.errors import SetupError
from mfa_middleware.web.outcomes import PASS, Answer, Outcome, Pass, Work

if TYPE_CHECKING:
    from mfa_middleware.web.entry import Incoming

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
    if type(user_id) is str and user_id:
        return user_id
    if user_id is None or user_id == "":
        raise SetupError(NO_USER_ID)
    return str(user_id)


def auth_method_from_scope(scope: Scope) -> str:
    """How the app authenticated the request, as `principal_from_scope` reads it (bypass rules
    on `auth_method` are settled from it without building the principal)."""
    return str(getattr(scope.get("user"), "auth_method", "session"))


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


NO_SESSION = (
    "MFAMiddleware found no scope['session']: SessionMiddleware must run before it (with"
    " FastAPI or Starlette's add_middleware, add MFAMiddleware first, then SessionMiddleware;"
    " in middleware=[...], list SessionMiddleware first). Every request is refused until then."
)


def session_user(
    key: str = "user", principal: Callable[[Any], Principal | None] | None = None
) -> Identify:
    """An `identify` for apps whose login lives in Starlette's session (a FastAPI dependency
    reads it too): the value at `key` is the user id, or `principal(value)` makes the
    `Principal`. A scope without a session (the middleware listed outside SessionMiddleware)
    is refused with a SetupError, never taken as anonymous."""

    def identify(scope: Scope) -> Principal | None:
        try:
            session = scope["session"]
        except KeyError:
            raise SetupError(NO_SESSION) from None
        value = session.get(key)
        if value is None:
            return None
        return principal(value) if principal is not None else Principal(str(value), str(value))

    return identify


def bearer_token(lookup: Callable[[str], Principal | None]) -> Identify:
    """An `identify` for API clients: `lookup(token)` of an `Authorization: Bearer` token
    gives the `Principal` (make its `auth_method` "token": such callers get JSON answers and
    may be exempted), or None for an unknown token."""

    def identify(scope: Scope) -> Principal | None:
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return lookup(token.strip())
        return None

    return identify


def first_of(*identifies: Identify) -> Identify:
    """An `identify` that asks each in turn: the first `Principal` wins."""

    def identify(scope: Scope) -> Principal | None:
        for each in identifies:
            found = each(scope)
            if found is not None:
                return found
        return None

    return identify


def _display_name(user: Any) -> str:
    try:
        return str(user.display_name or "")
    except (AttributeError, NotImplementedError):
        return ""


def scope_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The scope's headers by lower-case name (built only off the verified-request path,
    which reads just `cookie_header`). Repeated lines are joined as HTTP says (RFC 9110 §5.3;
    Cookie lines of HTTP/2 with "; "), so a second X-Forwarded-For line is read, not
    ignored."""
    headers: dict[str, str] = {}
    for key, value in raw:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        if name in headers:
            text = headers[name] + ("; " if name == "cookie" else ", ") + text
        headers[name] = text
    return headers


def cookie_header(raw: list[tuple[bytes, bytes]]) -> str:
    """The Cookie header of raw ASGI headers (repeated ones joined, as `scope_headers` does),
    found without building the headers mapping: all the verified-request path needs."""
    found: bytes | None = None
    for key, value in raw:
        if key == b"cookie":
            found = value if found is None else found + b"; " + value
    if found is None:
        return scope_headers(raw).get("cookie", "")  # upper-case names, or none at all
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
    headers = scope_headers(scope.get("headers") or [])
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
        language=scope.get(LANGUAGE_KEY),
    )


def _marker_in(session: Any) -> str | None:
    marker = session.get(SESSION_MARKER)
    return marker if type(marker) is str else None


def session_marker(scope: Scope) -> str | None:
    """The MFA session id kept in the app's session (Starlette's `scope["session"]`)."""
    session = scope.get("session")
    if session is None or not (type(session) is dict or isinstance(session, MutableMapping)):
        return None
    marker = session.get(SESSION_MARKER)
    return marker if isinstance(marker, str) else None


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
        # the request machinery loads with the app, not with `import mfa_middleware`
        from mfa_middleware.runtime import Runtime
        from mfa_middleware.web.entry import Entry, Incoming

        self.app = app
        self.runtime = Runtime(config)
        self._incoming = Incoming
        self.on_logout = on_logout
        self.entry = Entry(
            self.runtime,
            principal_of=identify or principal_from_scope,
            facts_of=facts_from_scope,
            user_id_of=user_id_from_scope if identify is None else None,  # the cheap reads
            auth_method_of=auth_method_from_scope if identify is None else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if isinstance(session, dict):  # Starlette's Session is a dict: no ABC check
            writable = True
            marker = session.get(SESSION_MARKER)
            if type(marker) is not str:
                marker = None
        elif session is not None and isinstance(session, MutableMapping):
            writable = True
            marker = _marker_in(session)
        else:
            writable = False
            marker = None
        incoming = self._incoming(
            scope["path"] if not scope.get("root_path") else split_root(scope)[1],
            scope.get("method", "GET"),
            cookie_header(scope.get("headers") or []),
            marker,
            writable,
            scope,
        )
        entry = self.entry
        if kind == "http" and incoming.method == "POST":
            limit = entry.body_limit(incoming.path)
            if limit is not None:
                incoming.body = await read_body(receive, limit)
        outcome = entry.handle(incoming)
        if outcome.__class__ is Pass and outcome.plain:
            # the common case: a verified session, an anonymous request
            scope["mfa"] = outcome.mfa
            await self.app(scope, receive, send)
            if (
                marker is not None
                and session is not None
                and session.get(SESSION_MARKER) is not marker  # the same object: unchanged
                and _marker_in(session) != marker
            ):
                await self._after(incoming, PASS, scope)
            return
        if isinstance(outcome, Work):
            done: Outcome = await self.runtime.arun(outcome.flow, outcome.recover)
            outcome = done
        await self._apply(scope, receive, send, incoming, outcome)

    async def _apply(
        self, scope: Scope, receive: Receive, send: Send, incoming: Incoming, outcome: Outcome
    ) -> None:
        if outcome.marker is not None and incoming.writable:
            scope["session"][SESSION_MARKER] = outcome.marker
        if outcome.end_app_session:
            await self._end_app_session(scope)
        if isinstance(outcome, Answer):
            await self._refuse(scope, receive, send, outcome.response)
            return
        if outcome.cookies:
            send = _adding_cookies(send, outcome.cookies)
        scope["mfa"] = outcome.mfa
        await self.app(scope, receive, send)
        if incoming.writable:
            await self._after(incoming, outcome, scope)

    async def _after(self, incoming: Incoming, outcome: Pass, scope: Scope) -> None:
        """The app may have cleared its session (its logout): see `Entry.after`."""
        follow = self.entry.after(incoming, outcome, session_marker(scope))
        if follow is not None:
            await self.runtime.arun(follow.flow, follow.recover)

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


def _adding_cookies(send: Send, cookies: tuple[Cookie, ...]) -> Send:
    """Add our Set-Cookie headers to the app's response start, touching nothing else."""
    extra = [(b"set-cookie", c.header().encode("latin-1")) for c in cookies]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return wrapped
