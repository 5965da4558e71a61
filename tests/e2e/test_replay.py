"""The verified-request replay: a repeat of a request the gate let through is passed on without
running the gate, until anything in the store changes or a deadline passes."""

from __future__ import annotations

from typing import Any

import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import HTML, SECRET_KEY, FixedClock, client, is_verified, make_app, sign_up

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    """Counts the gate's reads (get_many of settings and user)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return super().get_many(*args, **kwargs)


async def test_repeats_are_replayed_until_the_store_changes(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store)
    ops = Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "ops")
    async with client(app) as c, client(app) as other:
        await sign_up(c, clock)
        assert await is_verified(c)  # the gate runs and remembers the answer
        before = store.reads
        for _ in range(5):
            assert await is_verified(c)
        assert store.reads == before  # replayed: no store read at all
        await sign_up(other, clock, "bob")  # any write ends every replay...
        assert await is_verified(c)
        assert store.reads > before  # ...so the gate ran again
        ops.logout("alice")
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303  # a force-logout is never hidden by a replay
        assert r.headers["location"].startswith("/login")


async def test_replay_ends_at_the_session_lifetime(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store, session_lifetime="1h")
    async with client(app) as c:
        await sign_up(c, clock)
        assert await is_verified(c)
        assert await is_verified(c)
        clock.advance(3600)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/login")


async def test_paths_a_rule_decides_are_never_replayed(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store, rules=[{"action": "deny", "paths": ["/admin"]}])
    async with client(app) as c:
        await sign_up(c, clock)
        assert await is_verified(c)
        assert (await c.get("/admin", headers=HTML)).status_code == 403
        assert (await c.get("/admin", headers=HTML)).status_code == 403
