"""State across an app restart (SQLite), and failing closed while the store is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.starlette_app.app import create_app

from mfa_middleware import MemoryStore, SQLiteStore
from mfa_middleware.core import otp
from mfa_middleware.testing import OutageStore as FlakyStore

from .helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    login,
    make_app,
    relogin,
    sign_up,
    submit_code,
    totp,
)

pytestmark = pytest.mark.anyio


@pytest.mark.checklist("TOTP-05")
async def test_mfa_state_survives_restart_with_sqlite(clock: FixedClock, tmp_path: Path) -> None:
    path = tmp_path / "mfa.sqlite3"
    first_store = SQLiteStore(path)
    first = make_app(clock, store=first_store)
    async with client(first) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        browser_cookies = dict(c.cookies)
    first_store.close()

    second_store = SQLiteStore(path)
    second = make_app(clock, store=second_store)
    try:
        # The browser's verified session is still valid on the new instance.
        async with client(second) as c:
            c.cookies.update(browser_cookies)
            r = await c.get("/account", headers=HTML)
            assert r.status_code == 200
            assert "Signed in as <strong>alice</strong>" in r.text
        # A new login is challenged (enrollment persisted), and the code works.
        async with client(second) as c:
            await login(c)
            r = await c.get("/account", headers=HTML)
            assert r.status_code == 303
            assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
            # The step used to enroll was persisted as used too.
            r = await submit_code(c, totp(secret, clock()))
            assert r.status_code == 400
            clock.advance(30)
            r = await submit_code(c, totp(secret, clock()))
            assert r.status_code == 303
            assert (await c.get("/account", headers=HTML)).status_code == 200
    finally:
        second_store.close()


@pytest.mark.checklist("GEN-01")
async def test_store_outage_fails_closed_and_recovers(clock: FixedClock) -> None:
    store = FlakyStore()
    app = make_app(clock, store=store)
    async with client(app) as verified, client(app) as unverified:
        await sign_up(verified, clock)
        bob_secret = await sign_up(unverified, clock, "bob")
        await relogin(unverified, "bob")
        assert (await verified.get("/account", headers=HTML)).status_code == 200

        store.down = True
        r = await verified.get("/account", headers=HTML)
        assert r.status_code == 503
        assert "Signed in as" not in r.text
        assert "unavailable" in r.text
        assert r.headers["cache-control"] == "no-store"
        r = await verified.get("/api/profile", headers={"accept": "application/json"})
        assert r.status_code == 503
        assert r.json()["error"] == "mfa_unavailable"
        r = await unverified.get("/account", headers=HTML)
        assert r.status_code == 503
        r = await unverified.get("/_mfa/challenge", headers=HTML)
        assert r.status_code == 503
        r = await unverified.head("/account", headers=HTML)
        assert r.status_code == 503
        assert r.content == b""
        clock.advance(30)
        r = await unverified.post(
            "/_mfa/challenge", data={"code": "123456", "csrf": "x"}, headers=HTML
        )
        assert r.status_code == 503

        store.down = False  # back without a restart
        r = await verified.get("/account", headers=HTML)
        assert r.status_code == 200
        r = await challenge_page(unverified)
        assert r.status_code == 200
        r = await submit_code(unverified, totp(bob_secret, clock()))
        assert r.status_code == 303
        assert (await unverified.get("/account", headers=HTML)).status_code == 200


@pytest.mark.anyio
async def test_verified_sessions_policy_lets_verified_users_through_an_outage(
    clock: FixedClock,
) -> None:
    store = FlakyStore()
    app = make_app(clock, store=store, on_store_error="verified_sessions")
    async with client(app) as verified, client(app) as pending:
        await sign_up(verified, clock)
        await login(pending, "bob")
        assert (await pending.get("/account", headers=HTML)).status_code == 303
        store.down = True
        assert (await verified.get("/account", headers=HTML)).status_code == 200
        assert (await pending.get("/account", headers=HTML)).status_code == 503
        clock.advance(90 * 86400)  # past the configured lifetime: refused even so
        assert (await verified.get("/account", headers=HTML)).status_code == 503


@pytest.mark.checklist("GEN-01")
async def test_an_error_while_verifying_lets_nobody_in(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside the verifier, or a key that can no longer open the user's secret
    (dropped from `secret_keys`): an error answer, never the app's page, never a session."""
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        secret = await sign_up(c, clock)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await login(c)
        page = await challenge_page(c)
        clock.advance(30)

        def broken(*args: Any) -> Any:
            raise RuntimeError("the verifier failed")

        monkeypatch.setattr(otp, "match_step", broken)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        assert r.status_code == 500
        assert "Signed in as" not in r.text
        monkeypatch.undo()
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")
    other_key = "an0ther-key-" + "q8Wm2Nv5Bt6Yc4Hj0FsXa1Pe"
    rekeyed = create_app(store=store, clock=clock, secret_keys=[other_key], trust_duration=0)
    transport = httpx.ASGITransport(rekeyed, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await login(c)
        page = await challenge_page(c)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        assert r.status_code == 500
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")
