"""No form value or query parameter of any page, however malformed, gets a 500 (issue 14,
point 8: a non-ASCII CSRF token made `hmac.compare_digest` raise on every POST page)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from mfa_middleware.web.router import ROUTES
from tests.e2e.helpers import HTML, FixedClock, client, csrf_of, login, make_app, sign_up
from tests.support.malformed import NASTY, POSTED, XSS, forged_forms

pytestmark = pytest.mark.anyio

GOTTEN = sorted(path for path, route in ROUTES.items() if route.get)
States = Callable[[httpx.AsyncClient, FixedClock], Awaitable[None]]


async def verified(c: httpx.AsyncClient, clock: FixedClock) -> None:
    await sign_up(c, clock)


async def unverified(c: httpx.AsyncClient, clock: FixedClock) -> None:
    await sign_up(c, clock)
    c.cookies.delete("mfa_session")


async def unenrolled(c: httpx.AsyncClient, clock: FixedClock) -> None:
    await login(c)


def admin_app(clock: FixedClock) -> object:
    return make_app(
        clock, is_admin=lambda p: p.id == "alice", email_codes=True, trust_duration="30d"
    )


@pytest.mark.checklist("UI-06")
@pytest.mark.parametrize("state", [verified, unverified, unenrolled], ids=lambda f: f.__name__)
async def test_malformed_values_in_every_field_of_every_form(
    clock: FixedClock, state: States
) -> None:
    app = admin_app(clock)
    async with client(app) as c:
        await state(c, clock)
        page = await c.get("/_mfa/settings", headers=HTML)
        csrf = csrf_of(page.text) if 'name="csrf"' in page.text else "x"
        for path in POSTED:
            for data in forged_forms(csrf):
                r = await c.post(f"/_mfa{path}", data=data, headers=HTML)
                assert r.status_code < 500, (path, data["code"][:40], r.text[:200])
                assert XSS not in r.text, (path, data["code"][:40])


@pytest.mark.checklist("SES-17")
async def test_bodies_that_are_not_forms(clock: FixedClock) -> None:
    app = admin_app(clock)
    async with client(app) as c:
        await sign_up(c, clock)
        bodies: list[tuple[bytes, str]] = [
            (b"csrf=\xff\xfe&code=1", "application/x-www-form-urlencoded"),
            (b"code=1&code=2", "application/x-www-form-urlencoded"),
            (b'{"code": ["000000", "000001"]}', "application/json"),
            (b"a" * 100_000, "application/x-www-form-urlencoded"),
            (b"=" * 50, "application/x-www-form-urlencoded"),
            (b"&".join(b"f%d=1" % i for i in range(200)), "application/x-www-form-urlencoded"),
        ]
        for path in POSTED:
            for body, kind in bodies:
                r = await c.post(
                    f"/_mfa{path}", content=body, headers={**HTML, "content-type": kind}
                )
                assert r.status_code in (400, 403), (path, body[:30], r.status_code)


@pytest.mark.checklist("UI-07", "UI-06")
@pytest.mark.parametrize("state", [verified, unverified, unenrolled], ids=lambda f: f.__name__)
async def test_malformed_query_parameters_on_every_page(clock: FixedClock, state: States) -> None:
    app = admin_app(clock)
    async with client(app) as c:
        await state(c, clock)
        for path in GOTTEN:
            for value in NASTY:
                params = dict.fromkeys(("next", "user", "token", "sent", "done"), value)
                r = await c.get(f"/_mfa{path}", params={**params, "reauth": "1"}, headers=HTML)
                assert r.status_code < 500, (path, value)
                assert XSS not in r.text
                assert "evil.example" not in r.headers.get("location", ""), (path, value)
