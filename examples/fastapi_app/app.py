"""A small FastAPI app whose authentication lives in a dependency (no AuthenticationMiddleware),
protected by the middleware: browsers log in to a session, API clients send a bearer token.

    uvicorn --factory examples.fastapi_app.app:create_app --port 8002

(log in as alice / alice-password at http://localhost:8002/login; bob's API token is in
examples/starlette_app/users.py). The middleware reads the user the same way the app's
dependency does, with `identify=first_of(bearer_token(...), session_user("user"))`; /billing
asks for a second factor from the last five minutes with `Depends(require_mfa(max_age="5m"))`,
which returns the request's `MFAState`; /docs describes the app and the 2FA JSON API
(`include_mfa_api`), which a single-page front end uses to sign in.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from examples.starlette_app.users import DEMO_PASSWORDS, user_for_token
from mfa_middleware import MFAConfig, MFAMiddleware, MFAState, Principal, SQLiteStore
from mfa_middleware.asgi import bearer_token, first_of, session_user
from mfa_middleware.fastapi import include_mfa_api, require_mfa
from mfa_middleware.senders import ConsoleSender


def token_principal(token: str) -> Principal | None:
    """An API client: `auth_method="token"` (JSON answers; an operator may exempt it)."""
    user = user_for_token(token)
    return None if user is None else Principal(user.username, user.username, auth_method="token")


def current_user(request: Request) -> str:
    """The app's own authentication, as a dependency: a bearer token or the session's user."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        found = token_principal(header[7:].strip())
        if found is not None:
            return found.id
    if user := request.session.get("user"):
        return str(user)
    raise HTTPException(401, "login required")


User = Annotated[str, Depends(current_user)]


def create_app(**mfa_options: Any) -> FastAPI:
    """The app; tests pass `store`, `clock` and other MFAConfig options."""
    secret = os.environ.get("MFA_SECRET") or secrets.token_urlsafe(48)
    options: dict[str, Any] = {
        "secret_keys": [secret],
        "login_url": "/login",
        "app_name": "FastAPI demo",
        "cookie_secure": False,  # served over plain HTTP in development
        "sms_sender": ConsoleSender("sms"),
        **mfa_options,
    }
    options.setdefault("store", None)
    if options["store"] is None:  # made only when the caller gives none (no file otherwise)
        options["store"] = SQLiteStore("fastapi-demo.sqlite3")
    app = FastAPI()

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
    async def home(user: User) -> JSONResponse:
        return JSONResponse({"user": user})

    @app.get("/billing")
    async def billing(
        user: User, mfa: Annotated[MFAState, Depends(require_mfa(max_age="5m"))]
    ) -> JSONResponse:
        """Sensitive: a second factor from the last five minutes."""
        return JSONResponse({"user": user, "mfa": mfa.to_dict()})

    @app.get("/billing/receipts")
    def receipts(
        user: User, mfa: Annotated[MFAState, Depends(require_mfa(max_age="5m"))]
    ) -> dict[str, Any]:
        """The same requirement on a sync route (FastAPI runs it in its thread pool)."""
        return {"user": user, "age": mfa.age}

    # add_middleware wraps what was added before: MFAMiddleware first, inside the session
    config = MFAConfig(**options)
    include_mfa_api(app, config)  # /docs shows the 2FA JSON API under /_mfa/api too
    identify = first_of(bearer_token(token_principal), session_user("user"))
    app.add_middleware(MFAMiddleware, config=config, identify=identify)
    app.add_middleware(SessionMiddleware, secret_key=secret)
    return app
