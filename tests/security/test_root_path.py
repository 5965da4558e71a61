"""An app served under a root path (issue 14, point 4): a Starlette `Mount` and a real
`uvicorn --root-path`. Rules and our prefix are matched on the app-relative path, as the
app's router matches it, and every URL we send the browser to carries the root path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.e2e.helpers import (
    HTML,
    PASSWORDS,
    SECRET_KEY,
    FixedClock,
    csrf_of,
    secret_of,
    smtp_sender,
    totp,
)
from tests.e2e.helpers import make_app as demo_app
from tests.support.mail_and_sms import Mailbox
from tests.test_demo import ROOT, first_answer, free_port

pytestmark = pytest.mark.anyio

DENY_ADMIN = [{"action": "deny", "paths": ["/admin"]}]
LINK = re.compile(r"https://app\.example\.com(/\S+)")


async def login_form(c: httpx.AsyncClient, path: str) -> dict[str, str]:
    """The demo's login form filled in for alice, with its CSRF token."""
    page = await c.get(path)
    return {"username": "alice", "password": PASSWORDS["alice"], "csrf": csrf_of(page.text)}


def mounted(clock: FixedClock, mailbox: Mailbox) -> Starlette:
    inner = demo_app(
        clock,
        rules=DENY_ADMIN,
        email_sender=smtp_sender(mailbox),
        public_url="https://app.example.com",
    )
    return Starlette(routes=[Mount("/app", app=inner)])


@pytest.mark.checklist("EX-03", "UI-01")
async def test_rules_pages_and_links_under_a_mount(clock: FixedClock, mailbox: Mailbox) -> None:
    app = mounted(clock, mailbox)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/app/login", data=await login_form(c, "/app/login"))
        assert r.status_code == 303
        assert (await c.get("/app/admin", headers=HTML)).status_code == 403  # the deny rule
        r = await c.get("/app/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/app/_mfa/enroll?next=%2Fapp%2Faccount"
        page = await c.get("/app/_mfa/enroll/totp?next=/app/account", headers=HTML)
        assert page.status_code == 200
        assert 'action="/app/_mfa/enroll/totp"' in page.text
        assert 'href="/app/_mfa/static/mfa.css"' in page.text
        assert 'action="/app/_mfa/logout"' in page.text
        assert (await c.get("/app/_mfa/static/mfa.css")).status_code == 200
        done = await c.post(
            "/app/_mfa/enroll/totp",
            headers=HTML,
            data={
                "csrf": csrf_of(page.text),
                "code": totp(secret_of(page.text), clock()),
                "next": "/app/account",
            },
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/app/account"
        assert (await c.get("/app/account", headers=HTML)).status_code == 200
        assert (await c.get("/app/admin", headers=HTML)).status_code == 403
        # a new login: the lost-device link in the email carries the root path
        c.cookies.clear()
        await c.post("/app/login", data=await login_form(c, "/app/login"))
        lost = await c.get("/app/_mfa/lost", headers=HTML)
        await c.post("/app/_mfa/lost", data={"csrf": csrf_of(lost.text)}, headers=HTML)
    texts = [mailbox.text_of(m) for m in mailbox.messages]
    links = [m.group(1) for text in texts if (m := LINK.search(text))]
    assert links
    assert links[-1].startswith("/app/_mfa/lost/confirm?token=")


def app_denying_admin() -> Starlette:
    """The demo with the Mount test's deny rule, for `uvicorn --factory`."""
    from examples.starlette_app.app import create_app

    return create_app(rules=DENY_ADMIN)


@pytest.mark.checklist("EX-03")
def test_under_uvicorn_root_path(tmp_path: Path) -> None:
    """As behind a proxy that strips /app: the browser asks for /app/..., the app is asked
    for /..., and every location we answer must lead the browser back through /app; a deny
    rule on /admin still holds (uvicorn puts the root path in the scope's path too)."""
    port = free_port()
    env = {**os.environ, "MFA_DEMO_DATA": str(tmp_path), "MFA_SECRET": SECRET_KEY}
    command = [
        sys.executable, "-m", "uvicorn",
        "--factory", "tests.security.test_root_path:app_denying_admin",
        "--host", "127.0.0.1", "--port", str(port), "--root-path", "/app",
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert first_answer(proc, f"{base}/login", 30).status_code == 200
        with httpx.Client(base_url=base, timeout=5) as c:
            form = c.get("/login")
            c.post(
                "/login",
                data={
                    "username": "alice",
                    "password": PASSWORDS["alice"],
                    "csrf": csrf_of(form.text),
                },
            )
            assert c.get("/admin", headers=HTML).status_code == 403  # the deny rule
            r = c.get("/account", headers=HTML)
            assert r.status_code == 303
            assert r.headers["location"] == "/app/_mfa/enroll?next=%2Fapp%2Faccount"
            page = c.get("/_mfa/enroll/totp", headers=HTML)  # the proxy stripped /app
            assert page.status_code == 200
            assert 'action="/app/_mfa/enroll/totp"' in page.text
            done = c.post(
                "/_mfa/enroll/totp",
                headers=HTML,
                data={
                    "csrf": csrf_of(page.text),
                    "code": totp(secret_of(page.text), time.time()),
                    "next": "/app/account",
                },
            )
            assert done.status_code == 200  # the recovery codes, shown once
            assert 'href="/app/_mfa/trust?next=%2Fapp%2Faccount"' in done.text  # then "Trust?"
            assert c.get("/account", headers=HTML).status_code == 200
            assert c.get("/admin", headers=HTML).status_code == 403  # verified: still denied
    finally:
        proc.terminate()
        proc.wait(timeout=10)
