"""Several authenticators per user (issue 17): a backup method, "Try another way", the
default and the last-used method, renaming and removing from the settings, and records written
by the single-factor version."""

from __future__ import annotations

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core import authenticators
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.runtime import METHOD_COOKIE
from mfa_middleware.testing import Outbox
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    enroll,
    enroll_sms,
    factors_of,
    is_verified,
    login,
    make_app,
    relogin,
    senders,
    submit_code,
    totp,
    visible,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}


def text_of(r: httpx.Response) -> str:
    return " ".join(visible(r).split())


def record(store: MemoryStore, user: str = "alice") -> UserRecord:
    return UserRecord.from_doc(store.get(user_key(user)))


async def step_up(c: httpx.AsyncClient, code: str) -> None:
    page = await c.get("/_mfa/challenge?reauth=1", headers=HTML)
    r = await c.post(
        "/_mfa/challenge",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "code": code, "reauth": "1", "via": "totp"},
    )
    assert r.status_code == 303, r.text


async def app_and_phone(c: httpx.AsyncClient, clock: FixedClock, twilio: TwilioDouble) -> str:
    """alice enrolls an authenticator app, then adds her phone (after a recent code)."""
    await login(c)
    secret = await enroll(c, clock)
    clock.advance(30)
    await step_up(c, totp(secret, clock()))
    assert (await enroll_sms(c, twilio)).status_code == 303
    return secret


async def test_a_user_with_an_app_and_a_phone_chooses_either_at_login(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        secret = await app_and_phone(c, clock, twilio)
        assert factors_of(store) == [("totp", None), ("sms", "+14155552671")]
        await relogin(c)
        page = await challenge_page(c)  # the default: the app, enrolled first
        assert "Open your authenticator app" in text_of(page)
        assert "Try another way" in text_of(page)
        sent_before = len(twilio.requests)
        other = await c.get("/_mfa/challenge/other", headers=HTML)
        assert other.status_code == 200
        listed = text_of(other)
        for choice in ("Authenticator app", "Text message", "Recovery code", "I can't use any"):
            assert choice in listed
        assert len(twilio.requests) == sent_before  # choosing sends nothing yet
        by_sms = await c.get("/_mfa/challenge?via=sms", headers=HTML)
        assert "We sent a text message with a code to +1 •••-•••-2671" in text_of(by_sms)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(by_sms.text), "code": twilio.last_code(), "via": "sms"},
        )
        assert r.status_code == 303
        assert r.cookies.get(METHOD_COOKIE) == "sms"
        assert await is_verified(c)
        state = (await c.get("/api/mfa", headers=JSON)).json()  # what the app sees
        assert (state["method"], state["amr"]) == ("sms", ["sms"])
        # this browser used SMS last: the next challenge opens on it
        await relogin(c)
        page = await challenge_page(c)
        assert "We sent a text message" in text_of(page)
        # and the app still works there, chosen again
        clock.advance(30)
        app_page = await c.get("/_mfa/challenge?via=totp", headers=HTML)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(app_page.text), "code": totp(secret, clock()), "via": "totp"},
        )
        assert r.status_code == 303


async def test_removing_the_app_leaves_sms_working_and_tells_the_user(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await app_and_phone(c, clock, twilio)
        app_id = authenticators.of_kind(record(store), "totp")[0].id
        page = await c.get("/_mfa/authenticators", headers=HTML)
        assert page.status_code == 200
        confirm = await c.post(
            "/_mfa/authenticators",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "authenticator": app_id, "action": "confirm_remove"},
        )
        assert "Remove this way to sign in?" in text_of(confirm)
        assert kinds(record(store)) == ["totp", "sms"]  # nothing removed by asking
        epoch = record(store).epoch
        r = await c.post(
            "/_mfa/authenticators",
            headers=HTML,
            data={"csrf": csrf_of(confirm.text), "authenticator": app_id, "action": "remove"},
        )
        assert r.status_code == 303
        assert kinds(record(store)) == ["sms"]
        assert record(store).epoch == epoch + 1  # other sessions verify again
        assert await is_verified(c)  # not this one
        notice = mailbox.messages[-1]
        assert "a way to sign in was removed" in notice["Subject"]
        assert "an authenticator app was removed" in mailbox.text_of(notice)
        await relogin(c)
        page = await challenge_page(c)
        assert "Try another way" not in text_of(page)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": twilio.last_code()},
        )
        assert r.status_code == 303


@pytest.mark.parametrize("mode", ["required", "optional"])
async def test_the_last_authenticator_cannot_be_removed(clock: FixedClock, mode: str) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, mode=mode)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
        only = record(store).factors()[0].id
        page = await c.get("/_mfa/authenticators", headers=HTML)
        for action in ("confirm_remove", "remove"):
            r = await c.post(
                "/_mfa/authenticators",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "authenticator": only, "action": action},
            )
            assert r.status_code == 409
            said = text_of(r)
            if mode == "required":
                assert "Add another way first, then remove this one." in said
            else:
                assert "turn it off in your settings instead" in said
        assert kinds(record(store)) == ["totp"]


async def test_adding_and_managing_needs_a_recent_code(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock)
        clock.advance(3600)  # the code is no longer recent
        for path in ("/_mfa/enroll", "/_mfa/enroll/totp", "/_mfa/authenticators"):
            r = await c.get(path, headers=HTML)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/_mfa/challenge?reauth=1"), path
        await step_up(c, totp(secret, clock()))
        assert (await c.get("/_mfa/authenticators", headers=HTML)).status_code == 200


async def test_two_apps_each_sign_in_and_each_step_is_used_once(clock: FixedClock) -> None:
    store, outbox = MemoryStore(), Outbox()
    app = make_app(clock, store=store, email_sender=outbox)
    async with client(app) as c:
        await login(c)
        phone = await enroll(c, clock)
        clock.advance(30)
        await step_up(c, totp(phone, clock()))
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert "Add this app" in page.text
        tablet = page.text.split("<code>")[1].split("</code>")[0].replace(" ", "")
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(tablet, clock()), "name": "Tablet"},
        )
        assert r.status_code == 303
        names = [(a.kind, a.name) for a in record(store).factors()]
        assert names == [("totp", ""), ("totp", "Tablet")]
        first, added = outbox.to("alice@example.com")  # her address of record
        assert first.subject.endswith("two-step verification turned on")
        assert added.subject.endswith("a way to sign in was added")
        text = " ".join(added.text.split())
        assert "to your account was added: an authenticator app (Tablet)." in text
        assert "If this wasn't you" in text
        assert "sign-in codes was changed" not in text
        for secret in (tablet, phone):
            await relogin(c)
            clock.advance(30)
            assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        await relogin(c)
        assert (await submit_code(c, totp(phone, clock()))).status_code == 400  # used already


async def test_rename_and_default(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await app_and_phone(c, clock, twilio)
        sms_id = authenticators.of_kind(record(store), "sms")[0].id
        page = await c.get("/_mfa/authenticators", headers=HTML)
        for data in (
            {"action": "rename", "name": "  Work\x00 phone  "},
            {"action": "default"},
        ):
            r = await c.post(
                "/_mfa/authenticators",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "authenticator": sms_id, **data},
            )
            assert r.status_code == 303
        user = record(store)
        assert authenticators.find(user, sms_id).name == "Work phone"  # type: ignore[union-attr]
        assert authenticators.default_id(user) == sms_id
        assert kinds(user) == ["sms", "totp"]
        settings = text_of(await c.get("/_mfa/settings", headers=HTML))
        assert "Work phone Text message · +1 •••-•••-2671 Default" in settings
        foreign = await c.post(
            "/_mfa/authenticators",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "authenticator": "nope", "action": "remove"},
        )
        assert foreign.status_code == 404


async def test_a_record_of_the_single_factor_version_signs_in_and_is_upgraded(
    clock: FixedClock,
) -> None:
    """A store written before users had several authenticators: the old record signs in as it
    is, and the first change writes the new shape (no migration step)."""
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    keyring = Keyring([SECRET_KEY])
    store = MemoryStore()
    old = {
        "method": "totp",
        "totp_secret": keyring.encrypt(secret),
        "last_totp_step": -1,
        "phone": None,
        "email": None,
        "enroll_epoch": 0,
        "enrolled_at": clock() - 86400,
        "epoch": 3,
        "device_epoch": 0,
        "exempt": False,
        "required": False,
    }
    store.put(user_key("alice"), old)
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c)
        page = await challenge_page(c)
        assert "Open your authenticator app" in text_of(page)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303
        assert await is_verified(c)
    upgraded = store.get(user_key("alice"))
    assert upgraded is not None
    assert upgraded["method"] is None
    assert upgraded["totp_secret"] is None
    [app_factor] = upgraded["authenticators"]
    assert app_factor["kind"] == "totp"
    assert keyring.decrypt(app_factor["secret"]) == secret
    assert app_factor["last_step"] == int(clock() // 30)  # the replay guard moved over
    async with client(app) as c:
        await login(c)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 400  # replayed
