"""RST-09: after an administrator's reset, the password alone does not let anyone enroll: the
enrollment pages first ask for the one-time enrollment code the reset issued (emailed to the
address of record through a real SMTP server, or handed over by the administrator)."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from mfa_middleware.core.enroll_code import enroll_code_key
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll,
    enroll_email,
    login,
    make_app,
    senders,
    smtp_sender,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio

UNLOCK = "/_mfa/enroll/unlock"
CODE_RE = re.compile(r"\b([0-9a-z]{4}(?:-[0-9a-z]{4}){3})\b")


def admin(store: Any, clock: FixedClock, **options: Any) -> Admin:
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock, **options)
    return Admin(Runtime(config), actor="test:ops")


async def reset_alice(
    clock: FixedClock, store: MemoryStore, **options: Any
) -> tuple[Any, str | None]:
    """alice enrolled, then reset by an administrator: the app and the code handed over."""
    app = make_app(clock, store=store, **options)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
    done = admin(store, clock, **options).reset("alice")
    return app, done.code


async def unlock(c: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await c.get(UNLOCK, headers=HTML)
    return await c.post(UNLOCK, headers=HTML, data={"csrf": csrf_of(page.text), "code": code})


@pytest.mark.checklist("RST-09")
async def test_the_password_alone_cannot_enroll_after_an_admin_reset(clock: FixedClock) -> None:
    store = MemoryStore()
    app, code = await reset_alice(clock, store)
    assert code is not None
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        for path in ("/_mfa/enroll", "/_mfa/enroll/totp", "/_mfa/enroll/email"):
            r = await c.get(path, headers=HTML)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith(UNLOCK)
        page = await c.get(UNLOCK, headers=HTML)
        assert page.status_code == 200
        assert "Enter your enrollment code" in page.text
        posted = await c.post(  # a TOTP enrollment posted straight past the unlock page
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": "123456"},
        )
        assert posted.headers["location"].startswith(UNLOCK)
        wrong = await unlock(c, "0000-0000-0000-0000")
        assert wrong.status_code == 400
        assert "That enrollment code didn't work" in wrong.text
        right = await unlock(c, code.upper().replace("-", " "))  # typed loosely
        assert right.status_code == 303
        assert right.headers["location"] == "/_mfa/enroll"
        await enroll(c, clock)
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == ["totp"]
        assert store.get(enroll_code_key("alice")) is None  # enrolling ends the requirement
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("RST-09")
async def test_the_code_unlocks_only_the_session_that_entered_it(clock: FixedClock) -> None:
    store = MemoryStore()
    app, code = await reset_alice(clock, store)
    assert code is not None
    async with client(app) as owner, client(app) as other:
        await login(owner)
        await login(other)  # someone else with alice's password, another browser
        assert (await unlock(owner, code)).status_code == 303
        r = await other.get("/_mfa/enroll/totp", headers=HTML)
        assert r.headers["location"].startswith(UNLOCK)
        assert (await owner.get("/_mfa/enroll/totp", headers=HTML)).status_code == 200


@pytest.mark.checklist("RST-09")
async def test_an_expired_code_still_blocks_enrollment(clock: FixedClock) -> None:
    store = MemoryStore()
    app, code = await reset_alice(clock, store, enroll_code_ttl="1h")
    assert code is not None
    clock.advance(3601)
    async with client(app) as c:
        await login(c)
        page = await c.get(UNLOCK, headers=HTML)
        assert "Your enrollment code has expired" in page.text
        r = await c.post(UNLOCK, headers=HTML, data={"csrf": csrf_of(page.text), "code": code})
        assert r.status_code == 400
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.headers["location"].startswith(UNLOCK)  # the need outlives the code


@pytest.mark.checklist("RST-09")
async def test_wrong_codes_count_toward_the_lockout(clock: FixedClock) -> None:
    store = MemoryStore()
    app, code = await reset_alice(clock, store, max_attempts=3)
    assert code is not None
    async with client(app) as c:
        await login(c)
        statuses = [(await unlock(c, "0000-0000-0000-0000")).status_code for _ in range(3)]
        assert statuses == [400, 400, 429]
        page = await c.get(UNLOCK, headers=HTML)  # opening the page says so, before a guess
        assert page.status_code == 429
        assert "Too many wrong codes" in page.text
        assert 'name="code"' not in page.text
        locked = await unlock(c, code)
        assert locked.status_code == 429  # even the right code waits out the lockout
        assert "Too many wrong codes" in locked.text


@pytest.mark.checklist("RST-09")
async def test_the_code_is_emailed_to_the_address_of_record(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, email_sender=smtp_sender(mailbox))
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
    ops = admin(store, clock, email_sender=smtp_sender(mailbox), app_name="Demo app")
    done = ops.reset("alice", email="alice@example.com")
    assert done.emailed_to == "a***@example.com"
    mails = [m for m in mailbox.messages if "set up two-step verification again" in m["Subject"]]
    assert [m["To"] for m in mails] == ["alice@example.com"]
    text = mailbox.text_of(mails[0])
    assert CODE_RE.findall(text) == [done.code]
    assert "expires in 72 hours" in text
    async with client(app) as c:
        await login(c)
        assert (await unlock(c, CODE_RE.findall(text)[0])).status_code == 303


async def test_the_store_keeps_only_a_keyed_hash(clock: FixedClock) -> None:
    store = MemoryStore()
    _, code = await reset_alice(clock, store)
    assert code is not None
    stored = store.get(enroll_code_key("alice"))
    assert stored is not None
    dumped = str(stored)
    assert code not in dumped
    assert code.replace("-", "") not in dumped


async def test_without_enrollment_codes_a_reset_user_enrolls_straight_away(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app, code = await reset_alice(clock, store, enroll_code_ttl=None)
    assert code is None
    assert store.get(enroll_code_key("alice")) is None
    async with client(app) as c:
        await login(c)
        assert (await c.get("/_mfa/enroll/totp", headers=HTML)).status_code == 200


async def test_the_admin_page_shows_the_code_once(clock: FixedClock) -> None:
    store = MemoryStore()
    # no email sender: the code cannot be emailed, so the administrator hands it over
    app = make_app(clock, store=store, is_admin=lambda p: p.username == "alice", email_sender=None)
    async with client(app) as alice, client(app) as bob:
        await login(bob, "bob")
        await enroll(bob, clock)
        await login(alice)
        await enroll(alice, clock)
        page = await alice.get("/_mfa/admin", headers=HTML)
        asked = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "action": "reset", "user": "bob"},
        )
        assert "which you are shown once to hand over" in asked.text
        r = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "action": "reset", "user": "bob", "confirm": "yes"},
        )
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        shown = CODE_RE.findall(html.unescape(r.text))
        assert len(shown) == 1
        again = await alice.get("/_mfa/admin?user=bob", headers=HTML)
        assert shown[0] not in again.text  # once
    async with client(app) as bob:  # a new login of bob's: his old session was ended
        await login(bob, "bob")
        assert (await unlock(bob, shown[0])).status_code == 303


async def test_without_an_address_of_record_the_code_is_not_sent_to_the_enrolled_one(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    """The address enrolled as a factor may be the one the reset is meant to lock out: the
    code goes only to an address the app gives, else to the administrator."""
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
    store.delete(Key("directory", "_", "alice"))  # the app never gave us her address
    sent_before = len(mailbox.messages)
    done = admin(store, clock, email_sender=smtp_sender(mailbox)).reset("alice")
    assert done.emailed_to is None
    assert done.code is not None
    assert len(mailbox.messages) == sent_before
