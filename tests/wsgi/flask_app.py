"""A small Flask app whose own login lives in Flask's signed session cookie, protected by the
generic WSGI middleware. `identify` reads that cookie the way Flask itself does."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, jsonify, redirect, request, session

from mfa_middleware import MFAConfig, Principal
from mfa_middleware.flask import mfa_required
from mfa_middleware.wsgi import Environ, MFAMiddleware

USERS = {"alice": "alice-password", "bob": "bob-password"}


def create_app(**mfa_options: Any) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_urlsafe(32)

    @app.post("/login")
    def login() -> Any:
        username = request.form.get("username", "")
        if USERS.get(username) != request.form.get("password"):
            return "Wrong username or password", 400
        session.clear()
        session["user"] = username
        session["login_id"] = secrets.token_urlsafe(16)  # changes at every login
        return redirect("/", 303)

    @app.post("/logout")
    def logout() -> Any:
        app.wsgi_app.logout(request.environ)  # type: ignore[attr-defined]  # server-side too
        session.clear()
        return redirect("/login", 303)

    @app.get("/")
    def home() -> Any:
        if "user" not in session:
            return redirect("/login", 303)
        return f"<p>Hello {session['user']}</p>"

    @app.get("/billing")
    @mfa_required(max_age="5m")
    def billing() -> Any:
        """Sensitive: a second factor from the last five minutes; reads `environ["mfa"]`."""
        return jsonify(mfa=request.environ["mfa"].to_dict())

    @app.get("/api/profile")
    def profile() -> Any:
        return jsonify(username=session.get("user"))

    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]

    def flask_session(environ: Environ) -> dict[str, Any]:
        cookie = request_cookie(environ, app.config["SESSION_COOKIE_NAME"])
        if not cookie:
            return {}
        try:
            data: dict[str, Any] = serializer.loads(
                cookie, max_age=int(app.permanent_session_lifetime.total_seconds())
            )
        except Exception:
            return {}
        return data

    def identify(environ: Environ) -> Principal | None:
        user = flask_session(environ).get("user")
        return Principal(id=user, username=user) if user in USERS else None

    options: dict[str, Any] = {
        "secret_keys": [secrets.token_urlsafe(48)],
        "login_url": "/login",
        "trust_duration": 0,  # no "Trust this device?" step in these tests
        "recovery_code_count": 0,
    }
    options.update(mfa_options)
    app.wsgi_app = MFAMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        MFAConfig(**options),
        identify=identify,
        login_marker=lambda environ: flask_session(environ).get("login_id"),
        logout_cookies=[app.config["SESSION_COOKIE_NAME"]],
    )
    return app


def request_cookie(environ: Environ, name: str) -> str | None:
    from mfa_middleware.core.http import cookie_value

    return cookie_value(environ.get("HTTP_COOKIE", ""), name)
