"""Helpers of the security regression tests: clients with a chosen peer address, a store that
counts its writes, and small apps whose users are shaped as an attack needs."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mfa_middleware import MemoryStore, MFAConfig, MFAMiddleware
from mfa_middleware.core.effects import Doc, Key, Updater
from tests.e2e.helpers import SECRET_KEY, FixedClock


def client_from(app: Any, peer: str, root_path: str = "") -> httpx.AsyncClient:
    """A browser whose requests reach the app from `peer` (the ASGI scope's client)."""
    transport = httpx.ASGITransport(app, client=(peer, 50000), root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class CountingStore(MemoryStore):
    """A memory store that counts the writes it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Key] = []

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self.writes.append(key)
        super().put(key, doc, ttl=ttl)

    def delete(self, key: Key) -> None:
        self.writes.append(key)
        super().delete(key)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        self.writes.append(key)
        return super().update(key, fn, ttl=ttl)


class ShapedUser(BaseUser):
    """A user with exactly the attributes a test gives it (a missing one raises, as on
    Starlette's BaseUser)."""

    def __init__(self, **attributes: Any) -> None:
        self._attributes = attributes

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return str(self._attributes.get("display_name", ""))

    @property
    def identity(self) -> str:
        if "identity" not in self._attributes:
            raise NotImplementedError
        return str(self._attributes["identity"])

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_attributes"][name]
        except KeyError:
            raise AttributeError(name) from None


class HeaderLogin(AuthenticationBackend):
    """Logs a request in as `USERS[x-test-user]` (a test stands in for the app's login)."""

    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        self.users = users

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.headers.get("x-test-user")
        if name not in self.users:
            return None
        return AuthCredentials(["authenticated"]), ShapedUser(**self.users[name])


async def _whoami(request: Request) -> Response:
    user = request.user
    if not user.is_authenticated:
        return JSONResponse({"user": None})
    return JSONResponse({"user": user.display_name})


async def _text(request: Request) -> Response:
    return PlainTextResponse(f"the app's {request.url.path}")


def shaped_app(
    clock: FixedClock,
    users: dict[str, dict[str, Any]],
    *,
    mfa_first: bool = False,
    **options: Any,
) -> Starlette:
    """An app whose login is the `x-test-user` header; `mfa_first` lists the middleware
    outside the authentication middleware (the misplaced order)."""
    options.setdefault("store", MemoryStore())
    config = MFAConfig(
        secret_keys=[SECRET_KEY], clock=clock, cookie_secure=False, trust_duration=0, **options
    )
    mfa = Middleware(MFAMiddleware, config=config)
    auth = Middleware(AuthenticationMiddleware, backend=HeaderLogin(users))
    session = Middleware(SessionMiddleware, secret_key=SECRET_KEY, https_only=False)
    stack = [session, mfa, auth] if mfa_first else [session, auth, mfa]
    return Starlette(
        routes=[Route("/whoami", _whoami), Route("/{rest:path}", _text)], middleware=stack
    )
