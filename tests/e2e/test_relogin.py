"""relogin_after_enrollment (issue 21 point 6, the SMS portal: "after validation, the client
will need to re-enter username/password to login"): a first enrollment ends the app's login;
the login page is reached with ?mfa=enrolled, which the app reads to say why."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from mfa_middleware import MemoryStore
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll,
    login,
    make_app,
    secret_of,
    submit_code,
    totp,
    visible,
)

pytestmark = pytest.mark.anyio


async def test_a_first_enrollment_ends_the_login_and_the_login_page_says_why(
    clock: FixedClock,
) -> None:
    events: list[dict[str, Any]] = []
    app = make_app(
        clock, relogin_after_enrollment=True, recovery_code_count=10, on_event=events.append
    )
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp?next=/account", headers=HTML)
        secret = secret_of(page.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock()), "next": "/account"},
        )
        assert done.status_code == 200  # the recovery codes, shown once
        codes = re.findall(r"<li><code>([0-9a-z-]+)</code></li>", done.text)
        assert len(codes) == 10
        assert "Next, sign in again with your password" in visible(done)
        link = html.unescape(re.search(r'<a class="button primary" href="([^"]+)"', done.text)[1])
        assert link == "/login?mfa=enrolled&next=%2Faccount"
        assert 'name="csrf"' not in done.text  # no sign-out form: the session is over
        cleared = [h for h in done.headers.get_list("set-cookie") if h.startswith("mfa_session=")]
        assert cleared
        assert "max-age=0" in cleared[0].lower()
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")  # the app's login ended
        shown = await c.get(link, headers=HTML)
        assert "Two-step verification is set up. Log in again with your password" in visible(shown)
        assert "Your session has ended" not in visible(shown)  # one message, the right one
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")  # a code, not enrollment
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        assert (await c.get("/account", headers=HTML)).status_code == 200
    (ended,) = [e for e in events if e["event"] == "signed_out"]
    assert (ended["user"], ended["actor"]) == ("alice", "system:relogin")


async def test_without_recovery_codes_the_login_page_comes_at_once(clock: FixedClock) -> None:
    app = make_app(clock, relogin_after_enrollment=True)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret_of(page.text), clock())},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/login?mfa=enrolled"
        assert (await c.get("/account", headers=HTML)).headers["location"].startswith("/login")


async def test_adding_a_second_way_keeps_the_login(clock: FixedClock) -> None:
    app = make_app(clock, relogin_after_enrollment=True)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        await login(c)
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        clock.advance(30)
        await enroll(c, clock)  # a second app, with a code just entered: no new login asked
        assert (await c.get("/account", headers=HTML)).status_code == 200


async def test_off_by_default(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
