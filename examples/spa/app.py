"""A single-page app that signs in through the 2FA JSON API (issue 20 point 4).

    make spa-demo          (http://localhost:8003, alice / alice-password, bob / bob-password)

The page (`static/index.html`, `static/spa.js`: plain JavaScript, no build step) logs in with
the app's own JSON login, then asks `/_mfa/api/state` what comes next and walks the user
through it: an authenticator app to set up (its QR code and key), or the code to enter, then
the app's data. The server is a small Starlette app: a JSON login and logout, one protected
JSON endpoint, and `MFAMiddleware` with `identify=session_user("user")`. SQLite state in a
`data/` folder beside this file; codes by SMS or email printed to the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from examples.starlette_app.app import demo_secret
from examples.starlette_app.users import authenticate
from mfa_middleware import MFAConfig, MFAMiddleware, SQLiteStore
from mfa_middleware.asgi import session_user
from mfa_middleware.senders import ConsoleSender

STATIC = Path(__file__).parent / "static"
DATA_DIR = Path(os.environ.get("MFA_DEMO_DATA", Path(__file__).parent / "data"))
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
FILES = {"/": "index.html", "/spa.js": "spa.js", "/spa.css": "spa.css"}


async def static(request: Request) -> Response:
    response = FileResponse(STATIC / FILES[request.url.path])
    response.headers["content-security-policy"] = CSP
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["cache-control"] = "no-cache"
    return response


async def read_json(request: Request) -> dict[str, Any] | None:
    """A JSON object body, or None: a cross-site form cannot send one (CSRF) without a CORS
    preflight this app never grants."""
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        return None
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def login(request: Request) -> JSONResponse:
    body = await read_json(request)
    if body is None:
        return JSONResponse({"error": "send JSON"}, 400)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return JSONResponse({"error": "send a username and a password"}, 400)
    user = authenticate(username, password)
    request.session.clear()  # a new login, a new MFA session
    if user is None:
        return JSONResponse({"error": "That username and password don't match."}, 401)
    request.session["user"] = user.username
    return JSONResponse({"user": user.username})


async def logout(request: Request) -> JSONResponse:
    if await read_json(request) is None:
        return JSONResponse({"error": "send JSON"}, 400)
    request.session.clear()
    return JSONResponse({"user": None})


async def me(request: Request) -> JSONResponse:
    """The app's data: the middleware lets this through only after the second step."""
    user = request.session.get("user")
    if user is None:
        return JSONResponse({"error": "login_required"}, 401)
    mfa = request.scope["mfa"]
    return JSONResponse({"user": user, "method": mfa.method, "amr": list(mfa.amr)})


def create_app(**mfa_options: Any) -> Starlette:
    """The SPA's server; tests pass `store` and other MFAConfig options."""
    options: dict[str, Any] = {
        "login_url": "/",
        "app_name": "SPA demo",
        "cookie_secure": False,  # plain HTTP on localhost in development
        "secret_keys": [demo_secret(DATA_DIR)],
        "sms_sender": ConsoleSender("sms"),
        "email_sender": ConsoleSender("email"),
        "email_codes": True,
        "recovery_code_count": 10,
        "rules": [{"action": "bypass", "paths": list(FILES)}],
        **mfa_options,
    }
    if "store" not in options:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        options["store"] = SQLiteStore(DATA_DIR / "mfa.sqlite3")
    config = MFAConfig(**options)
    return Starlette(
        routes=[
            *(Route(path, static) for path in FILES),
            Route("/api/login", login, methods=["POST"]),
            Route("/api/logout", logout, methods=["POST"]),
            Route("/api/me", me),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key=options["secret_keys"][-1], same_site="lax"),
            Middleware(MFAMiddleware, config=config, identify=session_user("user")),
        ],
    )


def main() -> None:
    import uvicorn

    port = int(os.environ.get("PORT", "8003"))
    print(f"SPA demo: http://localhost:{port}  (alice / alice-password)", flush=True)
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
