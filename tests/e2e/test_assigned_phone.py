"""An administrator enters an employee's phone number (issue 21 point 4, the partner portal
with Authy): saved as pending; at the user's next sign-in a code is sent to it, and the user
confirms it, which turns on codes by text message; the user is told who set it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    factors_of,
    login,
    relogin,
    senders,
    submit_code,
    totp,
    visible,
)
from tests.e2e.test_admin_pages import act, admin_page, enroll, record
from tests.e2e.test_admin_tiers import demo
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


def text(page: httpx.Response) -> str:
    return " ".join(visible(page).split())


async def set_phone(c: httpx.AsyncClient, user: str, phone: str, region: str) -> httpx.Response:
    page = await admin_page(c, f"?user={user}")
    return await c.post(
        "/_mfa/admin",
        headers=HTML,
        data={
            "csrf": csrf_of(page.text),
            "action": "set_phone",
            "user": user,
            "phone": phone,
            "region": region,
        },
    )


async def test_carol_sets_bobs_phone_and_bob_confirms_it_at_his_next_sign_in(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = demo(clock, store, **senders(mailbox, twilio), on_event=events.append)
    async with client(app) as bob, client(app) as carol:
        await login(bob, "bob")
        assert (
            (await bob.get("/account", headers=HTML)).headers["location"].startswith("/_mfa/enroll")
        )  # bob has not set 2FA up yet
        await enroll(carol, clock, "carol")
        r = await set_phone(carol, "bob", "(415) 555-2671", "US")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=set_phone"
        shown = text(await carol.get(r.headers["location"], headers=HTML))
        assert "The number is saved for bob, who confirms it with a code" in shown
        assert re.search(r"\+1 •••-•••-2671, set by carol on Nov 14, 2023, 10:13\s?PM UTC", shown)
        assert kinds(record(store, "bob")) == []  # nothing active yet
        assert twilio.requests == []  # nothing sent until bob signs in
    async with client(app) as bob, client(app) as carol:  # his next sign-in
        await login(bob, "bob")
        r = await bob.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")
        r = await bob.get(r.headers["location"], headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll/assigned")
        r = await bob.get(r.headers["location"], headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll/code?sent=1&assigned=1")
        assert twilio.requests[-1]["To"] == "+14155552671"
        page = await bob.get(r.headers["location"], headers=HTML)
        said = text(page)
        assert "carol, an administrator, set this phone number for your sign-in codes." in said
        assert "We sent a text message with a code to +1 •••-•••-2671" in said
        done = await bob.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": twilio.last_code()},
        )
        assert done.status_code == 200  # his recovery codes, shown once: a first enrollment
        assert "Save your recovery codes" in text(done)
        assert factors_of(store, "bob") == [("sms", "+14155552671")]
        assert store.get(Key("assigned_phone", "bob")) is None  # done with
        assert (await bob.get("/account", headers=HTML)).status_code == 200
        await login(carol, "carol")
        assert store.get(Key("assigned_phone", "bob")) is None
    (assigned,) = [e for e in events if e["event"] == "phone_assigned"]
    assert (assigned["target"], assigned["actor"], assigned["to"]) == (
        "bob",
        "admin:carol",
        "+1 •••-•••-2671",
    )


async def test_not_his_number_bob_chooses_another_way_and_nothing_is_set(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = demo(clock, store, **senders(mailbox, twilio))
    async with client(app) as bob, client(app) as carol:
        await login(bob, "bob")
        await bob.get("/account", headers=HTML)
        await enroll(carol, clock, "carol")
        await set_phone(carol, "bob", "+44 7911 123456", "GB")
        r = await bob.get("/_mfa/enroll/assigned", headers=HTML)
        page = await bob.get(r.headers["location"], headers=HTML)
        assert 'href="/_mfa/enroll?other=1">Not your number? Choose another way' in page.text
        chooser = await bob.get("/_mfa/enroll?other=1", headers=HTML)
        assert chooser.status_code == 200
        assert "Authenticator app" in visible(chooser)
        assert kinds(record(store, "bob")) == []


async def test_a_bad_number_is_refused_on_the_admin_page_and_a_number_can_be_cancelled(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = demo(clock, store, **senders(mailbox, twilio))
    async with client(app) as bob, client(app) as carol:
        await login(bob, "bob")
        await bob.get("/account", headers=HTML)
        await enroll(carol, clock, "carol")
        r = await set_phone(carol, "bob", "not a number", "US")
        assert r.status_code == 200
        assert "That doesn't look like a phone number." in text(r)
        assert 'aria-invalid="true"' in r.text
        assert store.get(Key("assigned_phone", "bob")) is None
        await set_phone(carol, "bob", "(415) 555-2671", "US")
        r = await act(carol, action="clear_phone", user="bob")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=clear_phone"
        assert store.get(Key("assigned_phone", "bob")) is None
        chooser = await bob.get("/_mfa/enroll", headers=HTML)
        assert chooser.status_code == 200  # no number waiting: the usual choice


async def test_an_enrolled_user_confirms_the_number_from_the_settings(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = demo(clock, store, **senders(mailbox, twilio))
    async with client(app) as bob, client(app) as carol:
        secret, _ = await enroll(bob, clock, "bob")
        await enroll(carol, clock, "carol")
        await set_phone(carol, "bob", "(415) 555-2671", "US")
        await relogin(bob, "bob")
        clock.advance(30)
        assert (await submit_code(bob, totp(secret, clock()))).status_code == 303
        settings = await bob.get("/_mfa/settings", headers=HTML)
        assert "carol, an administrator, set +1 •••-•••-2671 as your phone" in text(settings)
        r = await bob.get("/_mfa/enroll/assigned", headers=HTML)
        page = await bob.get(r.headers["location"], headers=HTML)
        done = await bob.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": twilio.last_code()},
        )
        assert done.status_code == 303
        assert kinds(record(store, "bob")) == ["totp", "sms"]
