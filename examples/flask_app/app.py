"""A small Flask app with Flask-Login, protected by the `MFA` extension.

    make flask-demo        (http://localhost:8002, alice / alice-password, bob / bob-password)

The 2FA part is the five lines marked "2FA" below; everything else is an ordinary Flask-Login
app. SQLite state in a `data/` folder beside this file, codes by SMS printed to the terminal.
"""

from __future__ import annotations

import html
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, g, redirect, request
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from examples.starlette_app.users import DEMO_PASSWORDS
from mfa_middleware import MFAConfig, SQLiteStore  # 2FA
from mfa_middleware.flask import MFA, mfa_required  # 2FA
from mfa_middleware.senders import ConsoleSender

DATA_DIR = Path(os.environ.get("MFA_DEMO_DATA", Path(__file__).parent / "data"))


class User(UserMixin):
    def __init__(self, username: str) -> None:
        self.id = username
        self.username = username
        self.email = f"{username}@example.com"


def page(title: str, body: str) -> str:
    nav = (
        '<a href="/">Home</a> · <a href="/billing">Billing</a> · '
        '<a href="/_mfa/settings">Two-step verification</a>'
    )
    return f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{nav}</p>{body}"


def demo_secret(name: str) -> str:
    """A key from the environment, or one kept in the data folder (the 2FA state it encrypts
    outlives a restart)."""
    if secret := os.environ.get(name):
        return secret
    path = DATA_DIR / f"{name.lower()}.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(**mfa_options: Any) -> Flask:
    """The demo; tests pass `store`, `clock` and other MFAConfig options."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__)
    app.secret_key = demo_secret("FLASK_SECRET")
    logins = LoginManager(app)
    logins.login_view = "login"

    @logins.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in DEMO_PASSWORDS else None

    options: dict[str, Any] = {
        "secret_keys": [demo_secret("MFA_SECRET")],
        "store": SQLiteStore(DATA_DIR / "mfa.sqlite3"),
        "login_url": "/login",
        "app_name": "Flask demo",
        "cookie_secure": False,  # served over plain HTTP in development
        "sms_sender": ConsoleSender("sms"),
        "public_url": os.environ.get("MFA_DEMO_PUBLIC_URL", "http://localhost:8002"),
        **mfa_options,
    }
    MFA(app, MFAConfig(**options))  # 2FA

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = request.form.get("username", "")
            if DEMO_PASSWORDS.get(name) == request.form.get("password"):
                login_user(User(name))
                return redirect(request.args.get("next") or "/", 303)
        form = (
            '<form method="post"><label>Username <input name="username"></label> '
            '<label>Password <input name="password" type="password"></label> '
            "<button>Log in</button></form>"
        )
        return page("Log in", form)

    @app.post("/logout")
    @login_required
    def logout() -> Any:
        logout_user()
        return redirect("/login", 303)

    @app.get("/")
    @login_required
    def home() -> str:
        how = g.mfa.method or "none"
        out = '<form method="post" action="/logout"><button>Log out</button></form>'
        return page(
            "Home", f"<p>Hello {html.escape(current_user.username)}. Second step: {how}.</p>{out}"
        )

    @app.get("/billing")
    @login_required
    @mfa_required(max_age="5m")  # 2FA: a second factor from the last five minutes here
    def billing() -> str:
        return page("Billing", f"<p>Second step {int(g.mfa.age or 0)} seconds ago.</p>")

    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8002"))
    print(f"Flask demo on http://localhost:{port}  (alice / alice-password, bob / bob-password)")
    create_app().run(host="127.0.0.1", port=port)
