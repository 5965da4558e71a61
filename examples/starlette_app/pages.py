"""The demo's own HTML: one page layout, its login form's CSRF token, and the one-time notice
the login page shows after a sign-out or an ended session."""

from __future__ import annotations

import hmac
import html
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

STATIC = Path(__file__).resolve().parent.parent / "static"  # shared with the Django demo

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Demo app</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/demo.css"></head><body>
<header><nav aria-label="Site">{nav}</nav></header>
<main><h1>{title}</h1>{body}</main></body></html>"""

NOTICES = {
    "signed_out": "You are signed out.",
    "ended": (
        "Your session has ended: it expired, or you were signed out on all your devices. "
        "Log in again to continue."
    ),
}


def page(request: Request, title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), nav=nav(request), body=body), status)


def nav(request: Request) -> str:
    links = [("/", "Home"), ("/account", "Account")]
    if request.user.is_authenticated:
        links.append(("/_mfa/settings", "Two-step verification"))
        if {"staff", "helpdesk"} & set(getattr(request.user, "groups", ())):
            links.append(("/_mfa/admin", "2FA admin"))
    else:
        links.append(("/login", "Log in"))
    return "".join(f'<a href="{href}">{text}</a>' for href, text in links)


def csrf_token(conn: HTTPConnection) -> str:
    """This browser's token for the demo's own forms, kept in its signed session cookie."""
    token = conn.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        conn.session["csrf"] = token
    return token


def csrf_valid(conn: HTTPConnection, form: Mapping[str, Any]) -> bool:
    expected = conn.session.get("csrf")
    sent = form.get("csrf")
    if not (isinstance(expected, str) and isinstance(sent, str)):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())  # bytes: any text compares


def csrf_field(conn: HTTPConnection) -> str:
    return f'<input type="hidden" name="csrf" value="{html.escape(csrf_token(conn))}">'


def leave_notice(conn: HTTPConnection, which: str) -> None:
    """What the login page says next time (the session was just cleared)."""
    conn.session["notice"] = which


def take_notice(conn: HTTPConnection) -> str:
    text = NOTICES.get(conn.session.pop("notice", ""), "")
    return f'<p class="notice" role="status">{html.escape(text)}</p>' if text else ""
