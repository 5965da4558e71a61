"""A small FastAPI app behind the middleware: a session login, and a route that asks for a
second factor from the last five minutes with `Depends(require_mfa(max_age="5m"))`.

    uvicorn --factory examples.fastapi_app.app:create_app --port 8002

(log in as alice / alice-password at http://localhost:8002/login). The route's dependency
returns the request's `MFAState`, so it can say how and when the user verified.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection

from examples.starlette_app.users import DEMO_PASSWORDS
from mfa_middleware import MFAConfig, MFAMiddleware, MFAState, SQLiteStore
from mfa_middleware.fastapi import require_mfa
from mfa_middleware.senders import ConsoleSender


class SessionLogin(AuthenticationBackend):
    """The app's own login: the user name its /login route put in the session."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        if username := conn.session.get("user"):
            return AuthCredentials(["authenticated"]), SimpleUser(username)
        return None


def create_app(**mfa_options: Any) -> FastAPI:
    """The app; tests pass `store`, `clock` and other MFAConfig options."""
    secret = os.environ.get("MFA_SECRET") or secrets.token_urlsafe(48)
    options: dict[str, Any] = {
        "secret_keys": [secret],
        "store": SQLiteStore("fastapi-demo.sqlite3"),
        "login_url": "/login",
        "app_name": "FastAPI demo",
        "cookie_secure": False,  # served over plain HTTP in development
        "sms_sender": ConsoleSender("sms"),
        **mfa_options,
    }
    middleware = [
        Middleware(SessionMiddleware, secret_key=secret),
        Middleware(AuthenticationMiddleware, backend=SessionLogin()),
        Middleware(MFAMiddleware, config=MFAConfig(**options)),  # last: it sees scope["user"]
    ]
    app = FastAPI(middleware=middleware)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form() -> str:
        return (
            '<form method="post"><label>Username <input name="username"></label>'
            '<label>Password <input name="password" type="password"></label>'
            "<button>Log in</button></form>"
        )

    @app.post("/login")
    async def login(
        request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> RedirectResponse:
        request.session.clear()  # a new login, a new MFA session
        if DEMO_PASSWORDS.get(username) != password:
            return RedirectResponse("/login", 303)
        request.session["user"] = username
        return RedirectResponse("/", 303)

    @app.get("/")
    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name})

    @app.get("/billing")
    async def billing(
        request: Request, mfa: Annotated[MFAState, Depends(require_mfa(max_age="5m"))]
    ) -> JSONResponse:
        """Sensitive: a second factor from the last five minutes."""
        return JSONResponse({"user": request.user.display_name, "mfa": mfa.to_dict()})

    return app
