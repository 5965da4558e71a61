"""Administrator tiers (issue 21 point 3): carol, a helpdesk administrator of the demo, helps
one user at a time (looks up, resets, unlocks, signs out); only alice, a superadmin, changes
what reaches everyone (mode, session lifetime, everyone's sessions) or exempts an account."""

from __future__ import annotations

import html
from typing import Any

import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.records import SETTINGS_KEY, throttle_key
from mfa_middleware.testing import Outbox
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    is_verified,
    make_app,
    relogin,
    submit_code,
    totp,
    visible,
    wrong_code,
)
from tests.e2e.test_admin_pages import act, admin_page, enroll, record, reset

pytestmark = pytest.mark.anyio


def demo(clock: FixedClock, store: Any, **options: Any) -> Any:
    """The demo with its own tiers: alice a superadmin, carol helpdesk, bob neither."""
    options.setdefault("recovery_code_count", 10)  # the shared `enroll` step expects them
    return make_app(clock, store=store, **options)


def text(page: Any) -> str:
    return " ".join(visible(page).split())


@pytest.mark.checklist("RST-07")
async def test_a_helpdesk_admin_helps_one_user_and_nothing_more(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = demo(clock, store, on_event=events.append, email_sender=Outbox())
    async with client(app) as carol, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(carol, clock, "carol")
        page = await admin_page(carol, "?user=bob")
        assert page.status_code == 200
        shown = text(page)
        assert "Your role: helpdesk." in shown
        assert "Force logout" in shown
        assert "Reset 2FA" in shown
        for hidden in ("Exempt API calls from 2FA", "Save mode", "Save lifetime", "Sign everyone"):
            assert hidden not in shown
        assert "Mode Required: everyone sets it up" in shown  # shown, not changeable
        assert "Session lifetime 90 days" in shown
        # what a superadmin does is refused, even posted by hand
        before = store.get(SETTINGS_KEY)
        for form in (
            {"action": "mode", "mode": "off"},
            {"action": "lifetime", "lifetime": "1 minute"},
            {"action": "logout_all", "confirm": "yes"},
            {"action": "exempt", "user": "bob"},
        ):
            r = await act(carol, **form)
            assert r.status_code == 403, form
            assert "Not allowed for your role" in r.text
        assert store.get(SETTINGS_KEY) == before
        assert record(store, "bob").exempt is False
        assert await is_verified(bob)
        # what the helpdesk does
        r = await act(carol, action="logout", user="bob")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=logout"
        assert not await is_verified(bob)
        done = await reset(carol, "bob")
        assert "Two-step verification is reset for bob." in text(done)
        assert kinds(record(store, "bob")) == []
    assert {e["actor"] for e in events if e["event"] in ("forced_logout", "mfa_reset")} == {
        "admin:carol"
    }


async def test_a_superadmin_sees_and_does_everything(clock: FixedClock) -> None:
    store = MemoryStore()
    app = demo(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        shown = text(await admin_page(alice, "?user=bob"))
        assert "Your role" not in shown
        for offered in ("Exempt API calls from 2FA", "Save mode", "Save lifetime"):
            assert offered in shown
        asked = await act(alice, action="logout_all")
        assert "Sign everyone out?" in text(asked)
        assert await is_verified(bob)  # a question first
        r = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(asked.text), "action": "logout_all", "confirm": "yes"},
        )
        assert r.headers["location"] == "/_mfa/admin?done=logout_all"
        assert store.get(SETTINGS_KEY)["global_epoch"] == 1
        assert not await is_verified(bob)
        assert not await is_verified(alice)  # her own session too, as the page said


async def test_without_is_superadmin_every_admin_is_one(clock: FixedClock) -> None:
    store = MemoryStore()
    app = demo(clock, store, is_superadmin=None)
    async with client(app) as carol:
        await enroll(carol, clock, "carol")
        r = await act(carol, action="mode", mode="optional")
        assert r.headers["location"] == "/_mfa/admin?done=mode"
        assert store.get(SETTINGS_KEY)["mode"] == "optional"


async def test_the_helpdesk_unlocks_bob_after_wrong_codes(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = demo(clock, store, max_attempts=2, on_event=events.append)
    async with client(app) as carol, client(app) as bob:
        secret, _ = await enroll(bob, clock, "bob")
        await enroll(carol, clock, "carol")
        assert 'value="unlock"' not in (await admin_page(carol, "?user=bob")).text  # none yet
        await relogin(bob, "bob")
        clock.advance(30)
        for step in range(2):
            await submit_code(bob, wrong_code(secret, clock() + 90 * step))
        assert (await submit_code(bob, totp(secret, clock()))).status_code == 429  # locked
        page = html.unescape((await admin_page(carol, "?user=bob")).text)
        assert "locked for 1 more minute" in page
        r = await act(carol, action="unlock", user="bob")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=unlock"
        page_after = await carol.get(r.headers["location"], headers=HTML)
        done = text(page_after)
        assert "bob can enter codes again: the count of wrong codes starts over." in done
        assert 'value="unlock"' not in page_after.text  # nothing left to lift
        assert "Unlocked · carol, an administrator" in done  # and it is in his events
        assert store.get(throttle_key("bob")) is None
        clock.advance(30)
        assert (await submit_code(bob, totp(secret, clock()))).status_code == 303
        assert await is_verified(bob)
    (unlocked,) = [e for e in events if e["event"] == "unlocked"]
    assert (unlocked["user"], unlocked["actor"], unlocked["failures"]) == ("bob", "admin:carol", 2)


async def test_a_verified_user_who_is_no_admin_still_gets_403(clock: FixedClock) -> None:
    store = MemoryStore()
    app = demo(clock, store)
    async with client(app) as bob:
        await enroll(bob, clock, "bob")
        assert (await admin_page(bob)).status_code == 403


async def test_the_lifetime_is_written_in_the_pages_language(clock: FixedClock) -> None:
    """Shown as the page's language writes durations; in the form, as that language's hint
    says to type it (the parser reads English words and the short form): never "90 days" on
    a French page."""
    store = MemoryStore()
    app = demo(clock, store, email_sender=Outbox())
    french = {**HTML, "accept-language": "fr"}
    async with client(app) as carol, client(app) as alice:
        await enroll(carol, clock, "carol")
        await enroll(alice, clock, "alice")
        helpdesk = text(await carol.get("/_mfa/admin?user=carol", headers=french))
        assert "90 jours" in helpdesk
        assert "days" not in helpdesk
        superadmin = html.unescape((await alice.get("/_mfa/admin", headers=french)).text)
        assert 'name="lifetime" type="text" class="text short" value="90d"' in superadmin
        assert "90d" in superadmin.split('id="lifetime-hint"')[1]  # what the hint asks for
        english = html.unescape((await admin_page(alice)).text)
        assert 'class="text short" value="90 days"' in english
