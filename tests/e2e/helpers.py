"""Helpers for the end-to-end tests: a controllable clock, the demo app, and browser steps.

Every TOTP code is computed at the fixed clock's time, never at wall time.
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from examples.starlette_app.app import create_app
from starlette.applications import Starlette

from mfa_middleware import MemoryStore
from mfa_middleware.senders.smtp import SMTPSender
from mfa_middleware.senders.twilio import TwilioSMSSender
from mfa_middleware.testing import FixedClock, totp_code
from tests.support.mail_and_sms import Mailbox, TwilioDouble

SECRET_KEY = "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
COOKIE = "mfa_session"
HTML = {"accept": "text/html,application/xhtml+xml"}

_SECRET_RE = re.compile(r"<code>([A-Z2-7 ]+)</code>")
_CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')
_NEXT_RE = re.compile(r'name="next" value="([^"]*)"')


def make_app(clock: FixedClock, store: Any = None, **options: Any) -> Starlette:
    """The demo app with a test store, the fixed clock and a test key. The "Trust this
    device?" step is off unless a test turns it on (tests/e2e/test_devices.py does), so the
    other tests land on `next` straight after a code; passkeys (on in the demo at localhost)
    are off unless a test turns them on."""
    options.setdefault("trust_duration", 0)
    options.setdefault("webauthn_enabled", False)  # tests/e2e/test_passkeys.py turns them on
    options.setdefault("recovery_code_count", 0)  # tests/e2e/test_recovery.py turns them on
    return create_app(
        store=MemoryStore() if store is None else store,
        clock=clock,
        secret_keys=[SECRET_KEY],
        **options,
    )


def client(app: Starlette, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url)


def totp(secret: str, at: float, digits: int = 6, algorithm: str = "SHA1") -> str:
    return totp_code(secret, at, digits, algorithm)


def wrong_code(secret: str, at: float, digits: int = 6) -> str:
    """A well-formed code that matches no step in the +-1 drift window around `at`."""
    valid = {totp(secret, at + d * 30, digits) for d in (-2, -1, 0, 1, 2)}
    far = 1
    while (candidate := totp(secret, at + far * 30_000, digits)) in valid:
        far += 1
    return candidate


def visible(page: httpx.Response | str) -> str:
    """The page's text as a person reads it: no tags, entities decoded."""
    source = page if isinstance(page, str) else page.text
    return html.unescape(re.sub(r"<[^>]+>", "", source))


def csrf_of(page: str) -> str:
    match = _CSRF_RE.search(page)
    assert match, "no csrf field on the page"
    return html.unescape(match.group(1))


def next_of(page: str) -> str:
    match = _NEXT_RE.search(page)
    assert match, "no next field on the page"
    return html.unescape(match.group(1))


def secret_of(page: str) -> str:
    match = _SECRET_RE.search(page)
    assert match, "no TOTP secret on the enrollment page"
    return match.group(1).replace(" ", "")


def cookie(c: httpx.Client | httpx.AsyncClient, name: str = COOKIE) -> str | None:
    values = [k.value for k in c.cookies.jar if k.name == name]
    assert len(values) <= 1, f"several {name} cookies in the jar"
    return values[0] if values else None


def set_cookie(c: httpx.Client | httpx.AsyncClient, value: str, name: str = COOKIE) -> None:
    """Replace the value of a cookie the browser already holds (as a user could)."""
    found = False
    for k in c.cookies.jar:
        if k.name == name:
            k.value = value
            found = True
    assert found, f"the browser holds no {name} cookie"


def mfa_set_cookie(response: httpx.Response, name: str = COOKIE) -> str | None:
    headers = response.headers.get_list("set-cookie")
    return next((h for h in headers if h.startswith(f"{name}=")), None)


# --- async browser steps -------------------------------------------------------------------


async def login(c: httpx.AsyncClient, user: str = "alice") -> None:
    """The demo's login form, as a browser fills it (its CSRF token included)."""
    form = await c.get("/login")
    data = {"username": user, "password": PASSWORDS[user], "csrf": csrf_of(form.text)}
    r = await c.post("/login", data=data)
    assert r.status_code == 303, r.text


async def logout(c: httpx.AsyncClient) -> None:
    """The app's own logout; an unverified user (whom the gate keeps from the app) uses the
    sign-out form of the 2FA pages, which ends the app session too."""
    account = await c.get("/account", headers=HTML)
    if account.status_code == 200:  # the log-out button of the app's page (its CSRF token)
        r = await c.post("/logout", data={"csrf": csrf_of(account.text)}, headers=HTML)
    else:
        page = await c.get(account.headers["location"], headers=HTML)
        r = await c.post("/_mfa/logout", data={"csrf": csrf_of(page.text)}, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    r = await c.get("/account", headers=HTML)
    assert r.headers.get("location") == "/login?next=/account", "still logged in"


async def relogin(c: httpx.AsyncClient, user: str = "alice") -> None:
    await logout(c)
    await login(c, user)


async def enroll(
    c: httpx.AsyncClient, clock: FixedClock, next_path: str = "/account", **code_options: Any
) -> str:
    """Enroll the logged-in user in TOTP at the clock's time; returns the secret."""
    r = await c.get("/_mfa/enroll/totp", headers=HTML)
    assert r.status_code == 200, r.text
    secret = secret_of(r.text)
    r = await c.post(
        "/_mfa/enroll/totp",
        data={
            "csrf": csrf_of(r.text),
            "code": totp(secret, clock(), **code_options),
            "next": next_path,
        },
        headers=HTML,
    )
    assert r.status_code == 303, r.text
    return secret


async def challenge_page(c: httpx.AsyncClient, next_path: str | None = None) -> httpx.Response:
    params = {"next": next_path} if next_path is not None else None
    r = await c.get("/_mfa/challenge", params=params, headers=HTML)
    return r


async def submit_code(
    c: httpx.AsyncClient, code: str, next_path: str = "/account", csrf: str | None = None
) -> httpx.Response:
    """Post a code from the challenge page (its own CSRF token unless one is given)."""
    if csrf is None:
        page = await challenge_page(c)
        assert page.status_code in (200, 429), page.text
        csrf = csrf_of(page.text)  # the locked page still has it, in its sign-out form
    return await c.post(
        "/_mfa/challenge", data={"csrf": csrf, "code": code, "next": next_path}, headers=HTML
    )


async def sign_up(c: httpx.AsyncClient, clock: FixedClock, user: str = "alice") -> str:
    """Log `user` in and enroll them (verified in this browser); returns the TOTP secret."""
    await login(c, user)
    return await enroll(c, clock)


async def is_verified(c: httpx.AsyncClient) -> bool:
    r = await c.get("/account", headers=HTML)
    assert r.status_code in (200, 303), r.text
    return r.status_code == 200


# --- sync browser steps (starlette.testclient.TestClient, for WebSockets) ------------------


def login_sync(c: httpx.Client, user: str = "alice") -> None:
    form = c.get("/login")
    data = {"username": user, "password": PASSWORDS[user], "csrf": csrf_of(form.text)}
    r = c.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text


def logout_sync(c: httpx.Client) -> None:
    """The log-out button of the app's account page (a verified user)."""
    account = c.get("/account", headers=HTML, follow_redirects=False)
    r = c.post("/logout", data={"csrf": csrf_of(account.text)}, follow_redirects=False)
    assert r.headers["location"] == "/login"


def enroll_sync(c: httpx.Client, clock: FixedClock) -> str:
    r = c.get("/_mfa/enroll/totp", headers=HTML, follow_redirects=False)
    assert r.status_code == 200, r.text
    secret = secret_of(r.text)
    r = c.post(
        "/_mfa/enroll/totp",
        data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": "/"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return secret


async def raw_request(
    app: Starlette, method: str, path: str, c: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Call the ASGI app directly with `c`'s cookies; returns every body byte it sent
    (httpx drops the body of a HEAD response, so it cannot tell whether one was sent)."""
    cookie_header = "; ".join(f"{k.name}={k.value}" for k in c.cookies.jar)
    raw_headers = [(b"host", b"testserver"), (b"cookie", cookie_header.encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, body


def smtp_sender(mailbox: Mailbox) -> SMTPSender:
    """An SMTPSender for the test mailbox (plain SMTP on loopback)."""
    return SMTPSender(
        mailbox.host,
        mailbox.port,
        from_addr="mfa@example.com",
        tls="none",
        allow_insecure=True,
        timeout=2,
    )


TWILIO_SID = "AC" + "1" * 32
TWILIO_FROM = "+15005550006"


def senders(mailbox: Mailbox, twilio: TwilioDouble, **sms: Any) -> dict[str, Any]:
    return {
        "email_codes": True,
        "email_sender": smtp_sender(mailbox),
        "sms_sender": TwilioSMSSender(
            TWILIO_SID, "token", from_=TWILIO_FROM, api_base_url=twilio.url, timeout=1, **sms
        ),
    }


async def enroll_email(c: httpx.AsyncClient, mailbox: Mailbox) -> None:
    page = await c.get("/_mfa/enroll/email", headers=HTML)
    assert "alice@example.com" in page.text
    r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
    assert r.headers["location"] == "/_mfa/enroll/code?sent=1"
    code_page = await c.get(r.headers["location"], headers=HTML)
    assert "a***@example.com" in code_page.text
    done = await c.post(
        "/_mfa/enroll/code",
        headers=HTML,
        data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
    )
    assert done.status_code == 303


async def enroll_sms(
    c: httpx.AsyncClient, twilio: TwilioDouble, phone: str = "(415) 555-2671", region: str = "US"
) -> httpx.Response:
    page = await c.get("/_mfa/enroll/sms", headers=HTML)
    r = await c.post(
        "/_mfa/enroll/sms",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "phone": phone, "region": region},
    )
    if r.status_code != 303:
        return r
    code_page = await c.get(r.headers["location"], headers=HTML)
    assert "+1 •••-•••-2671" in code_page.text
    return await c.post(
        "/_mfa/enroll/code",
        headers=HTML,
        data={"csrf": csrf_of(code_page.text), "code": twilio.last_code()},
    )


def factors_of(store: Any, user: str = "alice") -> list[tuple[str, str | None]]:
    """The user's authenticators as stored: (kind, phone or address), in order."""
    from mfa_middleware.core.records import UserRecord, user_key

    record = UserRecord.from_doc(store.get(user_key(user)))
    return [(a.kind, a.destination) for a in record.factors()]
