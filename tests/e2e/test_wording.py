"""Words a person reads: the settings name the method and where codes go, counts agree with
their nouns ("1 unused recovery code", "1 minute"), and the emails say what happened and what
to do, once, without contradicting themselves."""

from __future__ import annotations

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
    enroll,
    enroll_sms,
    login,
    make_app,
    relogin,
    senders,
    smtp_sender,
    submit_code,
    visible,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio

FOOTER = "If this wasn't you, contact your administrator now"


async def settings_text(c: httpx.AsyncClient) -> str:
    r = await c.get("/_mfa/settings", headers=HTML)
    assert r.status_code == 200, r.text
    return " ".join(visible(r).split())


def mail_with(mailbox: Mailbox, subject: str) -> str:
    found = [m for m in mailbox.messages if subject in str(m["Subject"])]
    assert found, f"no email about {subject!r}: {[m['Subject'] for m in mailbox.messages]}"
    return mailbox.text_of(found[-1])


async def enroll_by_email(c: httpx.AsyncClient, mailbox: Mailbox) -> httpx.Response:
    page = await c.get("/_mfa/enroll/email", headers=HTML)
    r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
    code_page = await c.get(r.headers["location"], headers=HTML)
    return await c.post(
        "/_mfa/enroll/code",
        headers=HTML,
        data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
    )


async def test_settings_name_the_method_and_where_codes_go(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        assert (await enroll_sms(c, twilio)).status_code == 303
        text = await settings_text(c)
        assert "On. You can sign in with: Text message +1 •••-•••-2671" in text
    async with client(app) as c:
        await login(c, "bob")
        assert (await enroll_by_email(c, mailbox)).status_code == 303
        text = await settings_text(c)
        assert "On. You can sign in with: Email b***@example.com" in text


async def test_one_of_a_kind_is_singular(clock: FixedClock, mailbox: Mailbox) -> None:
    app = make_app(
        clock,
        email_sender=smtp_sender(mailbox),
        email_codes=True,
        recovery_code_count=1,
        trust_duration="1d",
        code_ttl=60,
        reset_link_ttl=60,
        public_url="https://app.example.com",
    )
    async with client(app) as c:
        await login(c)
        codes_page = await enroll_by_email(c, mailbox)
        assert codes_page.status_code == 200
        assert "It expires in 1 minute. If" in mail_with(mailbox, "verification code")
        assert "You have 1 unused recovery code." in await settings_text(c)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        r = await submit_code(c, mailbox.last_code(), csrf=csrf_of(page.text))
        trust = await c.get(r.headers["location"], headers=HTML)
        assert "for the next 1 day." in trust.text
        await relogin(c)
        lost = await c.get("/_mfa/lost", headers=HTML)
        await c.post("/_mfa/lost", headers=HTML, data={"csrf": csrf_of(lost.text)})
        assert "(it works once, for 1 minute)" in mail_with(mailbox, "reset two-step")


async def test_the_lockout_email_says_what_to_do_once(clock: FixedClock, mailbox: Mailbox) -> None:
    app = make_app(clock, email_sender=smtp_sender(mailbox), max_attempts=1)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        clock.advance(30)
        assert (await submit_code(c, wrong_code(secret, clock()))).status_code == 429
    text = mail_with(mailbox, "wrong sign-in codes")
    assert "then entered 1 wrong code, on" in text
    assert "If this was you, you can ignore this message." in text
    assert "If it wasn't, someone knows your password: change it now" in text
    assert FOOTER not in text  # no second, different instruction


async def test_the_enrollment_code_email_says_who_did_what(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    options: dict[str, Any] = {
        "email_sender": smtp_sender(mailbox),
        "enroll_code_ttl": "1h",
        "app_name": "Demo app",
    }
    app = make_app(clock, store=store, **options)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock, **options)
    Admin(Runtime(config), actor="test:ops").reset("alice", email="alice@example.com")
    text = mail_with(mailbox, "set up two-step verification again")
    assert "An administrator turned off two-step verification on your Demo app account" in text
    assert "It works once and expires in 1 hour." in text
    assert "If you didn't ask your administrator for this, tell them now" in text
    assert "If you did not ask for this, contact your administrator" not in text
