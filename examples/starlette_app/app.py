"""The demo app: its own login (session cookie + AuthenticationMiddleware), wrapped by 2FA."""

from __future__ import annotations

import html
import importlib.util
import ipaddress
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route, WebSocketRoute
from starlette.types import Scope
from starlette.websockets import WebSocket

from examples.starlette_app.headers import SecurityHeaders
from examples.starlette_app.pages import (
    STATIC,
    csrf_field,
    csrf_valid,
    leave_notice,
    page,
    take_notice,
)
from examples.starlette_app.users import USERS, authenticate, user_for_token
from mfa_middleware import MFAConfig, MFAMiddleware, MFAState, Principal, SQLiteStore
from mfa_middleware.core.impersonation import session_flag
from mfa_middleware.senders import ConsoleSender, Sender
from mfa_middleware.senders.smtp import SMTPSender

DATA_DIR = Path(os.environ.get("MFA_DEMO_DATA", Path(__file__).parent / "data"))


class DemoUser(BaseUser):
    """The signed-in user as mfa_middleware reads it: `identity` (the stable id), `email` (the
    address of record for notices), `groups` and `auth_method` ("token" for API calls)."""

    def __init__(self, username: str, auth_method: str = "session") -> None:
        self.username = username
        self.email = USERS[username].email
        self.groups = USERS[username].groups
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


class SessionBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:  # an API call: no browser session involved
            api_user = user_for_token(token.strip())
            if api_user is None:
                return None
            return AuthCredentials(["authenticated"]), DemoUser(api_user.username, "token")
        username = conn.session.get("user")
        if username not in USERS:
            return None
        return AuthCredentials(["authenticated"]), DemoUser(username)


def logout_form(request: Request) -> str:
    if not request.user.is_authenticated:
        return '<p><a href="/login">Log in</a></p>'
    return (
        f'<form method="post" action="/logout">{csrf_field(request)}'
        '<button type="submit">Log out</button></form>'
    )


async def home(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login", 303)
    name = html.escape(request.user.display_name)
    return page(
        request,
        "Home",
        f"<p>Welcome, {name}. You passed two-step verification.</p>"
        '<p>Manage it on the <a href="/_mfa/settings">two-step verification settings</a>'
        f" page.</p>{logout_form(request)}",
    )


async def account(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/account", 303)
    user = request.user
    state = request.scope.get("mfa")
    settings = (
        ""  # a support agent acting as the user: the user's 2FA is not theirs to see
        if isinstance(state, MFAState) and state.impersonator
        else '<p><a href="/_mfa/settings">Two-step verification settings</a>: how you get'
        " codes, recovery codes, your devices.</p>"
    )
    return page(
        request,
        "Account",
        f"<p>Signed in as <strong>{html.escape(user.display_name)}</strong>"
        f" ({html.escape(user.email)}).</p>{settings}"
        f"<p>{how_verified(state)}</p>"
        f"{logout_form(request)}",
    )


def how_verified(state: MFAState | None) -> str:
    """What the app knows of the second factor (`scope["mfa"]`), in words."""
    if state is None or not state.verified:
        return "No second step in this session."
    whose = f" ({html.escape(state.impersonator)}'s own)" if state.impersonator else ""
    how = {"device": "a trusted device", "totp": "an authenticator app code"}.get(
        state.method, state.method.replace("webauthn", "a passkey").replace(".synced", "")
    )
    return f"Second step{whose}: {html.escape(how)}, {int(state.age or 0)} seconds ago."


async def api_profile(request: Request) -> Response:
    if not request.user.is_authenticated:
        return JSONResponse({"error": "login_required"}, 401)
    return JSONResponse({"username": request.user.display_name})


async def api_mfa(request: Request) -> Response:
    """What the app knows of the second factor (`scope["mfa"]`), as JSON."""
    if not request.user.is_authenticated:
        return JSONResponse({"error": "login_required"}, 401)
    state = request.scope.get("mfa")
    return JSONResponse(state.to_dict() if isinstance(state, MFAState) else None)


async def billing(request: Request) -> Response:
    """A sensitive page: its rule asks for a factor from the last 5 minutes, not a trusted
    device's (see STEP_UP_RULE), so even a trusted browser confirms it's the user here."""
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/billing", 303)
    return page(
        request,
        "Billing",
        "<p>Payment details would be here: this page needs a second step from the last five"
        f" minutes.</p><p>{how_verified(request.scope.get('mfa'))}</p>",
    )


def is_support(request: Request) -> bool:
    """Support staff (carol) and staff (alice) may sign in as a customer ("Login with Access")."""
    return bool({"staff", "helpdesk"} & set(getattr(request.user, "groups", ())))


async def support(request: Request) -> Response:
    """Login with Access: support staff sign in as a customer to see what they see, on their
    own second factor; the 2FA middleware keeps the customer's 2FA out of their reach and
    records every request (MFAConfig.is_impersonating reads the session's "impersonator")."""
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/support", 303)
    if "impersonator" in request.session:
        return page(request, "Support", f"<p>{stop_form(request)}</p>")
    if not is_support(request):
        return page(request, "Support", "<p>Only support staff can sign in as a customer.</p>", 403)
    others = [name for name in USERS if name != request.user.display_name]
    options = "".join(f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in others)
    return page(
        request,
        "Support",
        f"""<form method="post" action="/support/act-as">{csrf_field(request)}
<label for="customer">Customer</label><select id="customer" name="customer">{options}</select>
<p><button type="submit">Sign in as this customer</button></p></form>
<p>You keep your own sign-in and its second step; the customer's two-step verification stays
theirs: its pages are closed to you, and every request you make is recorded.</p>""",
    )


def stop_form(request: Request) -> str:
    return (
        f'<form method="post" action="/support/stop">{csrf_field(request)}'
        '<button type="submit">Stop acting as this customer</button></form>'
    )


async def act_as(request: Request) -> Response:
    form = await request.form()
    if not csrf_valid(request, form) or not is_support(request):
        return page(request, "Support", "<p>Refused.</p>", 403)
    customer = str(form.get("customer", ""))
    if customer not in USERS or customer == request.user.display_name:
        return page(request, "Support", "<p>There is no such customer.</p>", 400)
    if "impersonator" not in request.session:  # the session, and the agent's 2FA, go on
        request.session["impersonator"] = request.user.display_name
        request.session["user"] = customer
    return RedirectResponse("/account", 303)


async def stop_acting(request: Request) -> Response:
    form = await request.form()
    agent = request.session.get("impersonator")
    if not csrf_valid(request, form) or agent not in USERS:
        return page(request, "Support", "<p>Refused.</p>", 403)
    request.session["user"] = agent
    del request.session["impersonator"]
    return RedirectResponse("/support", 303)


def metrics_endpoint(metrics: Any) -> Any:
    """Prometheus metrics (MFAConfig(metrics=PrometheusMetrics(...))), for a scraper on this
    machine only: the 2FA rules let /metrics through without a login (see mfa_options)."""

    async def endpoint(request: Request) -> Response:
        if metrics is None or not on_this_machine(request):
            return PlainTextResponse("Not found\n", 404)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return endpoint


def on_this_machine(request: Request) -> bool:
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


def demo_metrics() -> Any:
    """The demo's Prometheus counters, in a registry of their own (None without the metrics
    extra)."""
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import CollectorRegistry

    from mfa_middleware.metrics import PrometheusMetrics

    return PrometheusMetrics(registry=CollectorRegistry())


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def public(request: Request) -> Response:
    return page(
        request, "Public", f"<p>A public page: {html.escape(request.path_params['rest'])}</p>"
    )


async def admin(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login?next=/admin", 303)
    return page(request, "Admin", "<p>The admin area.</p>")


async def static_file(request: Request) -> Response:
    """The stylesheet and the icon of the demo's pages (public: no login, no second step)."""
    name, media_type = STATIC_FILES[request.url.path]
    return Response((STATIC / name).read_bytes(), media_type=media_type)


STATIC_FILES = {
    "/static/demo.css": ("demo.css", "text/css"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/favicon.ico": ("favicon.svg", "image/svg+xml"),  # what browsers ask for by themselves
}


def login_page(
    request: Request, error: str = "", next_path: str = "/", status: int = 200
) -> HTMLResponse:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    notice = take_notice(request)
    if request.query_params.get("mfa") == "enrolled":  # relogin_after_enrollment: say why
        notice = (
            '<p class="notice" role="status">Two-step verification is set up. Log in again with'
            " your password, then a code from your new way to sign in.</p>"
        )
    body = f"""{notice}{message}<form method="post" action="/login">
{csrf_field(request)}<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<p><button type="submit">Log in</button></p></form>
<p>Demo accounts: <code>alice</code> / <code>alice-password</code> (staff: 2FA admin),
<code>bob</code> / <code>bob-password</code>, <code>carol</code> / <code>carol-password</code>
(support: 2FA helpdesk).</p>"""
    return page(request, "Log in", body, status)


async def login(request: Request) -> Response:
    from mfa_middleware.core.redirects import safe_next

    if request.method == "GET":
        return login_page(request, next_path=safe_next(request.query_params.get("next")))
    form = await request.form()
    next_path = safe_next(str(form.get("next", "/")))
    if not csrf_valid(request, form):
        return login_page(request, "This form expired. Please try again.", next_path, 403)
    user = authenticate(str(form.get("username", "")), str(form.get("password", "")))
    if user is None:
        return login_page(request, "Wrong username or password.", next_path, 400)
    request.session.clear()  # a new login starts a new session: no fixation, no stale 2FA
    request.session["user"] = user.username
    return RedirectResponse(next_path, 303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_valid(request, form):
        return page(request, "Log out", f"<p>This form expired.</p>{logout_form(request)}", 403)
    request.session.clear()
    leave_notice(request, "signed_out")
    return RedirectResponse("/login", 303)


def session_ended(scope: Scope) -> None:
    """The 2FA middleware ended the app session: its own sign-out button, or a session that
    expired or was forced out. The login page says which."""
    session = scope.get("session")
    if isinstance(session, dict):
        session["notice"] = "signed_out" if scope["path"].endswith("/logout") else "ended"


async def live(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"hello": websocket.user.display_name})
    await websocket.close()


def demo_secret(folder: Path = DATA_DIR) -> str:
    """MFA_SECRET from the environment, or a random key kept in the data `folder`."""
    if secret := os.environ.get("MFA_SECRET"):
        return secret
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret.key"
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


STEP_UP_RULE = {"action": "two_factor", "paths": ["/billing"], "max_age": "5m", "device_ok": False}


def is_staff(principal: Principal) -> bool:
    """Who may use the 2FA admin pages (/_mfa/admin): the demo's staff (alice) and its
    support staff (carol, helpdesk: one user at a time)."""
    return bool({"staff", "helpdesk"} & principal.groups)


def is_superadmin(principal: Principal) -> bool:
    """Who may change what reaches everyone (the mode, the session lifetime, everyone's
    sessions) and exempt accounts: the demo's staff (alice), not its helpdesk (carol)."""
    return "staff" in principal.groups


def passkeys_possible(public_url: str) -> bool:
    """Whether the demo can offer passkeys where it is served: a domain name (localhost in
    development), never an IP address, and py_webauthn installed (the dev extra has it)."""
    try:
        ipaddress.ip_address(urlsplit(public_url).hostname or "")
    except ValueError:
        return importlib.util.find_spec("webauthn") is not None
    return False


def mfa_options(**overrides: Any) -> dict[str, Any]:
    """The demo's MFAConfig options; tests pass `store`, `clock` and other overrides."""
    options: dict[str, Any] = {
        "store": None,
        "login_url": "/login",
        "app_name": "Demo app",
        # The demo is served over plain HTTP on 127.0.0.1; production keeps the default True.
        "cookie_secure": False,
        # Health checks and public pages need no second factor; everything else does.
        "rules": [
            {"action": "bypass", "paths": ["/health", "/metrics", "/public/**", *STATIC_FILES]},
            STEP_UP_RULE,
        ],
        "is_admin": is_staff,
        "is_superadmin": is_superadmin,
        # Login with Access: support staff signed in as a customer (see /support)
        "is_impersonating": session_flag("impersonator"),
    }
    # Codes by SMS and email are printed to this terminal in the demo; production passes a
    # TwilioSMSSender and an SMTPSender (see the README).
    options["sms_sender"] = ConsoleSender("sms")
    options["email_sender"] = demo_email_sender()
    port = os.environ.get("PORT", "8000")  # links in emails point to where the demo runs
    options["public_url"] = os.environ.get("MFA_DEMO_PUBLIC_URL", f"http://localhost:{port}")
    # passkeys need a domain name: browsers refuse them on an IP address such as 127.0.0.1
    options["webauthn_enabled"] = passkeys_possible(options["public_url"])
    if brand := os.environ.get("MFA_DEMO_BRAND_COLOR"):  # e.g. "#0f766e": the pages' colour
        options["brand_color"] = brand
    options["metrics"] = demo_metrics()  # served at /metrics to this machine
    # approving sign-ins from another browser by Web Push: a VAPID private key (README)
    if push_key := os.environ.get("MFA_DEMO_PUSH_KEY"):
        options["push_vapid_private_key"] = push_key
        options["push_contact"] = "mailto:ops@example.com"
        if services := os.environ.get("MFA_DEMO_PUSH_SERVICES"):  # the tests' push service
            options["push_services"] = services.split(",")
    options.update(overrides)
    # The demo shows every method, codes by email included (bob uses them); they are off by
    # default because NIST SP 800-63B does not accept email as a second factor.
    options.setdefault("email_codes", options["email_sender"] is not None)
    if "secret_keys" not in options:
        options["secret_keys"] = [demo_secret()]
    if options["store"] is None:
        options["store"] = SQLiteStore(DATA_DIR / "mfa.sqlite3")
    return options


def mfa_config() -> MFAConfig:
    """The demo's configuration, for the ops CLI:
    `mfa-admin --config examples.starlette_app.app:mfa_config status alice`. The messages it
    sends (a reset's email to the user) are printed to stderr, so `--json` output stays JSON."""
    options = mfa_options()
    for name in ("sms_sender", "email_sender"):
        if isinstance(options[name], ConsoleSender):
            options[name] = ConsoleSender(options[name].channel, sys.stderr)
    return MFAConfig(**options)


def create_app(**mfa_overrides: Any) -> Starlette:
    """The demo app; tests pass `store`, `clock` and other MFAConfig options."""
    options = mfa_options(**mfa_overrides)
    session_secret = options["secret_keys"][-1]
    return Starlette(
        routes=[
            Route("/", home),
            Route("/account", account),
            Route("/api/profile", api_profile),
            Route("/api/mfa", api_mfa),
            Route("/billing", billing),
            Route("/health", health),
            Route("/metrics", metrics_endpoint(options.get("metrics"))),
            Route("/public/{rest:path}", public),
            Route("/admin", admin),
            Route("/support", support),
            Route("/support/act-as", act_as, methods=["POST"]),
            Route("/support/stop", stop_acting, methods=["POST"]),
            *(Route(path, static_file) for path in STATIC_FILES),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            WebSocketRoute("/ws", live),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware, secret_key=session_secret, https_only=False, same_site="lax"
            ),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
            Middleware(MFAMiddleware, config=MFAConfig(**options), on_logout=session_ended),
        ],
    )
