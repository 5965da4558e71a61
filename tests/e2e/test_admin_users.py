"""The login list (issue 21 point 2): every user the middleware has seen, with a 2FA column,
paged, searchable and filterable (set up or not, way to sign in, exempt, locked out), each
with a Reset button; built on the directory the gate keeps and the store contract's scan."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    login,
    relogin,
    submit_code,
    visible,
    wrong_code,
)
from tests.e2e.test_admin_pages import enroll
from tests.e2e.test_admin_tiers import demo

pytestmark = pytest.mark.anyio


def text(page: httpx.Response) -> str:
    return " ".join(visible(page).split())


def listed(page: httpx.Response) -> list[str]:
    """The users in the table, by the name their row starts with."""
    return re.findall(r'<th scope="row"[^>]*><a href="[^"]*">([^<]+)</a>', page.text)


async def users(c: httpx.AsyncClient, query: str = "") -> httpx.Response:
    r = await c.get(f"/_mfa/admin/users{query}", headers=HTML)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


async def seeded(clock: FixedClock, store: MemoryStore, **options: Any) -> Any:
    """alice and bob enrolled, carol signed in without setting 2FA up, and 30 service accounts
    exempted by an operator (they never sign in with a browser)."""
    ops = Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "t")
    for n in range(30):
        ops.exempt(f"svc-{n:02d}")
    return demo(clock, store, **options)


async def test_the_list_pages_through_everyone_with_their_status(
    clock: FixedClock, store: MemoryStore
) -> None:
    app = await seeded(clock, store)
    async with client(app) as alice, client(app) as bob, client(app) as carol:
        await enroll(bob, clock, "bob")
        await login(carol, "carol")
        await carol.get("/account", headers=HTML)  # sent to set 2FA up; she does not
        await enroll(alice, clock, "alice")
        first = await users(alice)
        assert "Users 1 to 25 of 33" in text(first)
        assert listed(first)[:3] == ["alice", "bob", "carol"]  # by name
        row = re.search(r">bob</a>.*?</tr>", first.text, re.S)
        assert row
        assert "On: Authenticator app" in " ".join(visible(row.group(0)).split())
        carol_row = re.search(r">carol</a>.*?</tr>", first.text, re.S)
        assert carol_row
        assert "Not set up" in carol_row.group(0)
        assert 'href="/_mfa/admin/users?page=2" rel="next"' in first.text
        second = await users(alice, "?page=2")
        assert "Users 26 to 33 of 33" in text(second)
        assert listed(second) == [f"svc-{n:02d}" for n in range(22, 30)]
        assert "never signed in" in text(second)
        assert 'rel="prev"' in second.text
        assert 'rel="next"' not in second.text


async def test_filters_and_search_narrow_the_list(clock: FixedClock, store: MemoryStore) -> None:
    app = await seeded(clock, store, max_attempts=2)
    async with client(app) as alice, client(app) as bob, client(app) as carol:
        secret, _ = await enroll(bob, clock, "bob")
        await login(carol, "carol")
        await carol.get("/account", headers=HTML)  # sent to set 2FA up; she does not
        await enroll(alice, clock, "alice")
        assert listed(await users(alice, "?enrolled=yes")) == ["alice", "bob"]
        not_set_up = await users(alice, "?enrolled=no")
        assert "of 31" in text(not_set_up)
        assert listed(not_set_up)[0] == "carol"
        assert listed(await users(alice, "?method=totp")) == ["alice", "bob"]
        assert "No user matches." in text(await users(alice, "?method=sms"))
        exempt = await users(alice, "?exempt=1")
        assert "of 30" in text(exempt)
        assert "Exempt" in text(exempt)
        assert listed(await users(alice, "?q=BO")) == ["bob"]  # any case, a part of the name
        assert listed(await users(alice, "?q=svc-1")) == [f"svc-1{n}" for n in range(10)]
        assert "No user matches." in text(await users(alice, "?locked=1"))
        await relogin(bob, "bob")
        clock.advance(30)
        for step in range(2):
            await submit_code(bob, wrong_code(secret, clock() + 90 * step))
        locked = await users(alice, "?locked=1&enrolled=yes")
        assert listed(locked) == ["bob"]
        assert "Locked out" in text(locked)
        # the filters are kept in the form and in the page links
        assert 'name="locked" value="1" checked' in locked.text
        assert '<option value="yes" selected>' in locked.text


async def test_bad_filters_are_ignored_not_an_error(clock: FixedClock, store: MemoryStore) -> None:
    app = await seeded(clock, store)
    async with client(app) as alice:
        await enroll(alice, clock, "alice")
        for query in ("?page=abc", "?page=-1", "?page=99999999999", "?method=evil", "?enrolled=x"):
            r = await users(alice, query)
            assert "of 31" in text(r), query
        assert "Users 26 to 31 of 31" in text(await users(alice, "?page=7"))  # past the end


async def test_reset_from_the_list_asks_first(clock: FixedClock, store: MemoryStore) -> None:
    app = await seeded(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        page = await users(alice, "?q=bob")
        assert 'aria-label="Reset two-step verification of bob"' in page.text
        asked = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "action": "reset", "user": "bob"},
        )
        assert "Reset two-step verification for bob?" in text(asked)


async def test_the_list_is_for_administrators_only(clock: FixedClock, store: MemoryStore) -> None:
    app = await seeded(clock, store)
    async with client(app) as bob, client(app) as carol:
        await enroll(bob, clock, "bob")
        assert (await bob.get("/_mfa/admin/users", headers=HTML)).status_code == 403
        await enroll(carol, clock, "carol")  # the helpdesk tier lists users too
        assert "Reset two-step verification of bob" in (await users(carol)).text
