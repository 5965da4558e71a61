"""`next` never leads off the site: every open-redirect attempt lands on `/`."""

from __future__ import annotations

import pytest

from .helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    login,
    make_app,
    next_of,
    relogin,
    secret_of,
    submit_code,
    totp,
)

pytestmark = pytest.mark.anyio

EVIL = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "/%2f%2fevil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "https:evil.example",
]


@pytest.mark.parametrize("evil", EVIL)
@pytest.mark.checklist("UI-07")
async def test_open_redirects_land_on_home(clock: FixedClock, evil: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        # Enrollment: the page keeps only a safe next, and the POST ignores an unsafe one.
        r = await c.get("/_mfa/enroll/totp", params={"next": evil}, headers=HTML)
        assert r.status_code == 200
        assert next_of(r.text) == "/"
        assert "evil.example" not in r.text
        secret = secret_of(r.text)
        r = await c.post(
            "/_mfa/enroll/totp",
            data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": evil},
            headers=HTML,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"

        # A verified user visiting the challenge page is sent on to next: home.
        r = await challenge_page(c, evil)
        assert r.status_code == 303
        assert r.headers["location"] == "/"

        await relogin(c)
        r = await challenge_page(c, evil)
        assert r.status_code == 200
        assert next_of(r.text) == "/"
        assert "evil.example" not in r.text

        clock.advance(30)
        r = await submit_code(c, totp(secret, clock()), next_path=evil)
        assert r.status_code == 303
        assert r.headers["location"] == "/"


@pytest.mark.checklist("UI-07")
async def test_safe_next_is_kept(clock: FixedClock) -> None:
    """The control case: a local path survives the whole round trip."""
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account?tab=keys", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount%3Ftab%3Dkeys"
        r = await c.get(r.headers["location"], headers=HTML)
        assert r.status_code == 200
        r = await c.get("/_mfa/enroll/totp", params={"next": "/account?tab=keys"}, headers=HTML)
        assert next_of(r.text) == "/account?tab=keys"
        secret = secret_of(r.text)
        r = await c.post(
            "/_mfa/enroll/totp",
            data={
                "csrf": csrf_of(r.text),
                "code": totp(secret, clock()),
                "next": "/account?tab=keys",
            },
            headers=HTML,
        )
        assert r.headers["location"] == "/account?tab=keys"


@pytest.mark.checklist("UI-07")
async def test_gate_redirect_for_scheme_relative_path_is_safe(clock: FixedClock) -> None:
    """A request for `//evil.example` (a path, to this site) must not become next=//evil..."""
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        for path in ("//evil.example", "/\\evil.example", "/%2f%2fevil.example"):
            r = await c.get(f"http://testserver{path}", headers=HTML)
            assert r.status_code == 303, path
            assert r.headers["location"] == "/_mfa/enroll", (path, r.headers["location"])
