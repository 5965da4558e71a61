"""The demo app: its own login (session cookie + AuthenticationMiddleware), wrapped by 2FA."""

from __future__ import annotations

import html
import os
import secrets
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from examples.starlette_app.users import USERS, authenticate
from mfa_middleware import MFAConfig, MFAMiddleware, Principal, SQLiteStore
from mfa_middleware.senders import ConsoleSender, Sender
from mfa_middleware.senders.smtp import SMTPSender

DATA_DIR = Path(os.environ.get("MFA_DEMO_DATA", Path(__file__).parent / "data"))


class DemoUser(BaseUser):
    def __init__(self, username: str) -> None:
        self.username = username
        self.email = USERS[username].email
        self.groups = USERS[username].groups

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.username


class SessionBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        username = conn.session.get("user")
        if username not in USERS:
            return None
        return AuthCredentials(["authenticated"]), DemoUser(username)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.6rem 0 .2rem}}input{{font-size:1rem;padding:.4rem}}
nav a{{margin-right:1rem}}</style></head><body><nav><a href="/">Home</a>
<a href="/account">Account</a></nav><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status)


def logout_form(request: Request) -> str:
    return (
        '<form method="post" action="/logout"><button type="submit">Log out</button></form>'
        if request.user.is_authenticated
        else '<p><a href="/login">Log in</a></p>'
    )


async def home(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login", 303)
    name = html.escape(request.user.display_name)
    return page(
        "Home", f"<p>Welcome, {name}. You passed two-step verification.</p>{logout_form(request)}"
    )


async def account(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/account", 303)
    user = request.user
    return page(
        "Account",
        f"<p>Signed in as <strong>{html.escape(user.display_name)}</strong>"
        f" ({html.escape(user.email)}).</p>{logout_form(request)}",
    )


async def api_profile(request: Request) -> Response:
    if not request.user.is_authenticated:
        return JSONResponse({"error": "login_required"}, 401)
    return JSONResponse({"username": request.user.display_name})


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def public(request: Request) -> Response:
    return page("Public", f"<p>A public page: {html.escape(request.path_params['rest'])}</p>")


async def admin(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/admin", 303)
    return page("Admin", "<p>The admin area.</p>")


def login_page(error: str = "", next_path: str = "/", status: int = 200) -> HTMLResponse:
    message = f'<p role="alert" style="color:#b91c1c">{html.escape(error)}</p>' if error else ""
    body = f"""{message}<form method="post" action="/login">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<p><button type="submit">Log in</button></p></form>
<p>Demo accounts: <code>alice</code> / <code>alice-password</code>,
<code>bob</code> / <code>bob-password</code>.</p>"""
    return page("Log in", body, status)


async def login(request: Request) -> Response:
    from mfa_middleware.core.redirects import safe_next

    if request.method == "GET":
        return login_page(next_path=safe_next(request.query_params.get("next")))
    form = await request.form()
    user = authenticate(str(form.get("username", "")), str(form.get("password", "")))
    next_path = safe_next(str(form.get("next", "/")))
    if user is None:
        return login_page("Wrong username or password.", next_path, 400)
    request.session.clear()  # a new login starts a new session: no fixation, no stale 2FA
    request.session["user"] = user.username
    return RedirectResponse(next_path, 303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", 303)


async def live(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"hello": websocket.user.display_name})
    await websocket.close()


def demo_secret() -> str:
    """MFA_SECRET from the environment, or a random key kept in the data folder."""
    if secret := os.environ.get("MFA_SECRET"):
        return secret
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DATA_DIR / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def demo_email_sender() -> Sender:
    """The terminal, or the SMTP server named by MFA_DEMO_SMTP ("host:port", plain SMTP: for
    a local test server only)."""
    if smtp := os.environ.get("MFA_DEMO_SMTP"):
        host, _, port = smtp.rpartition(":")
        return SMTPSender(
            host, int(port), from_addr="demo@example.com", tls="none", allow_insecure=True
        )
    return ConsoleSender("email")


def is_staff(principal: Principal) -> bool:
    """Who may use the 2FA admin pages (/_mfa/admin): the demo's staff (alice)."""
    return "staff" in principal.groups


def create_app(**mfa_options: Any) -> Starlette:
    """The demo app; tests pass `store`, `clock` and other MFAConfig options."""
    options: dict[str, Any] = {
        "store": None,
        "login_url": "/login",
        "app_name": "Demo app",
        # The demo is served over plain HTTP on 127.0.0.1; production keeps the default True.
        "cookie_secure": False,
        # Health checks and public pages need no second factor; everything else does.
        "rules": [{"action": "bypass", "paths": ["/health", "/public/**"]}],
        "is_admin": is_staff,
    }
    # Codes by SMS and email are printed to this terminal in the demo; production passes a
    # TwilioSMSSender and an SMTPSender (see the README).
    options["sms_sender"] = ConsoleSender("sms")
    options["email_sender"] = demo_email_sender()
    options["public_url"] = os.environ.get("MFA_DEMO_PUBLIC_URL", "http://127.0.0.1:8000")
    if brand := os.environ.get("MFA_DEMO_BRAND_COLOR"):  # e.g. "#0f766e": the pages' colour
        options["brand_color"] = brand
    options.update(mfa_options)
    # The demo shows every method, codes by email included (bob uses them); they are off by
    # default because NIST SP 800-63B does not accept email as a second factor.
    options.setdefault("email_codes", options["email_sender"] is not None)
    if "secret_keys" not in options:
        options["secret_keys"] = [demo_secret()]
    if options["store"] is None:
        options["store"] = SQLiteStore(DATA_DIR / "mfa.sqlite3")
    session_secret = options["secret_keys"][-1]
    return Starlette(
        routes=[
            Route("/", home),
            Route("/account", account),
            Route("/api/profile", api_profile),
            Route("/health", health),
            Route("/public/{rest:path}", public),
            Route("/admin", admin),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            WebSocketRoute("/ws", live),
        ],
        middleware=[
            Middleware(
                SessionMiddleware, secret_key=session_secret, https_only=False, same_site="lax"
            ),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
            Middleware(MFAMiddleware, config=MFAConfig(**options)),
        ],
    )
