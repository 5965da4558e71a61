"""Codes by SMS (the real twilio SDK against a local double of its API) and by email (a real
SMTP server, aiosmtpd): enrollment, challenge, fallback, lifetime, single use, rate limits."""

from __future__ import annotations

import html
import logging
import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.tokens import session_codec
from mfa_middleware.senders.smtp import SMTPSender
from mfa_middleware.web.code_pages import normalise_phone
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    TWILIO_FROM,
    TWILIO_SID,
    FixedClock,
    client,
    csrf_of,
    enroll_email,
    enroll_sms,
    is_verified,
    login,
    make_app,
    relogin,
    senders,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


async def submit(c: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await c.get("/_mfa/challenge", headers=HTML)
    return await c.post(
        "/_mfa/challenge",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "code": code, "next": "/account"},
    )


async def test_email_enrollment_and_login_through_smtp(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        choose = await c.get("/_mfa/enroll", headers=HTML)
        for label in ("Authenticator app", "Text message", "Email"):
            assert label in choose.text
        await enroll_email(c, mailbox)
        assert await is_verified(c)
        assert mailbox.messages[0]["To"] == "alice@example.com"
        assert mailbox.messages[0].is_multipart()  # the code: a text and an HTML part
        assert "Two-step verification is now on" in mailbox.text_of(mailbox.messages[-1])
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We emailed a code to a***@example.com" in page.text
        assert (await submit(c, mailbox.last_code())).status_code == 303
        assert await is_verified(c)


async def test_sms_enrollment_sends_through_the_twilio_sdk(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        done = await enroll_sms(c, twilio)
        assert done.status_code == 303
        sent = twilio.requests[-1]
        assert sent["To"] == "+14155552671"
        assert sent["From"] == TWILIO_FROM
        assert sent["_account"] == TWILIO_SID
        assert "is your Demo app verification code" in sent["Body"]
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We sent a text message with a code to ***-***-2671" in page.text
        assert (await submit(c, twilio.last_code())).status_code == 303


@pytest.mark.parametrize("failure", ["error", "slow"])
async def test_failed_sms_falls_back_to_email(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble, failure: str
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        await enroll_sms(c, twilio)
        await relogin(c)
        twilio.mode = failure
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "emailed your code to a***@example.com instead" in page.text
        assert (await submit(c, mailbox.last_code())).status_code == 303


@pytest.mark.checklist("OOB-11", "ENR-04")
async def test_nothing_sent_nothing_upgraded(clock: FixedClock, twilio: TwilioDouble) -> None:
    refused = SMTPSender(
        "127.0.0.1", 1, from_addr="mfa@example.com", tls="none", allow_insecure=True, timeout=1
    )
    app = make_app(clock, email_sender=refused)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        failed = await c.get(r.headers["location"], headers=HTML)
        assert failed.status_code == 503
        assert "couldn't send you a code" in failed.text
        assert not await is_verified(c)


@pytest.mark.checklist("OOB-01", "OOB-02", "OOB-06")
async def test_codes_expire_work_once_and_die_on_resend(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_attempts=10)
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        old = mailbox.last_code()
        clock.advance(31)
        resent = await c.post(
            "/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)}
        )
        assert "A new code is on its way" in resent.text
        new = mailbox.last_code()
        if old != new:  # equal by chance once in a million
            assert (await submit(c, old)).status_code == 400  # killed by the resend
        clock.advance(601)  # past the 10-minute lifetime
        sent_before = len(mailbox.messages)
        assert (await submit(c, new)).status_code == 400
        assert len(mailbox.messages) == sent_before + 1  # the page sent a fresh code itself
        code = mailbox.last_code()
        assert (await submit(c, code)).status_code == 303
        await relogin(c)
        await c.get("/_mfa/challenge", headers=HTML)
        if mailbox.last_code() != code:
            assert (await submit(c, code)).status_code == 400  # used once already


@pytest.mark.checklist("OOB-02")
async def test_enrollment_code_does_not_log_in(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        enroll_code = mailbox.last_code()
        code_page = await c.get("/_mfa/enroll/code", headers=HTML)
        assert (
            await c.post(
                "/_mfa/enroll/code",
                headers=HTML,
                data={"csrf": csrf_of(code_page.text), "code": enroll_code},
            )
        ).status_code == 303
        await relogin(c)
        await c.get("/_mfa/challenge", headers=HTML)
        login_code = mailbox.last_code()
        if login_code != enroll_code:
            assert (await submit(c, enroll_code)).status_code == 400


@pytest.mark.checklist("OOB-07")
async def test_resend_cooldown_and_hourly_cap(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_hour=3)
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)  # send 1
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)  # send 2: a new login's first code
        assert "We emailed a code" in page.text
        assert "available in 30 s" in page.text  # the resend button waits out the cooldown
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 429  # cooldown
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200  # send 3
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 429
        assert "Too many codes were sent in the last hour" in r.text
        assert sum(1 for m in mailbox.messages if "verification code is" in mailbox.text_of(m)) == 3


async def test_bad_phone_input_rerenders_without_an_attempt(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, sms_regions=("US", "CA"), **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        for phone, region, message in [
            ("12", "US", "isn't valid"),
            ("not a number", "US", "doesn't look like a phone number"),
            ("+44 20 7946 0958", "GB", "can't be sent to numbers in that country"),
            ("x" * 500, "US", "Enter a phone number"),
        ]:
            r = await enroll_sms(c, twilio, phone, region)
            assert r.status_code == 400
            assert message in html.unescape(r.text)
        assert (
            store.get(
                __import__("mfa_middleware.core.records", fromlist=["x"]).throttle_key("alice")
            )
            is None
        )
        assert twilio.requests == []


def test_phone_numbers_normalise_to_e164() -> None:
    forms = ["(415) 555-2671", "415-555-2671", "+1 415 555 2671", "4155552671", "1-415-555-2671"]
    assert {normalise_phone(f, "US", ("US", "CA")) for f in forms} == {"+14155552671"}
    assert normalise_phone("604 555 0123", "CA", ("US", "CA")) == "+16045550123"
    with pytest.raises(ValueError, match="that country"):
        normalise_phone("+44 20 7946 0958", "US", ("US", "CA"))


@pytest.mark.checklist("OOB-05", "LOG-01")
async def test_codes_never_reach_responses_logs_or_events(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[dict[str, Any]] = []
    app = make_app(clock, on_event=events.append, **senders(mailbox, twilio))
    bodies: list[str] = []
    sessions = session_codec(Keyring([SECRET_KEY]))

    async def keep(response: httpx.Response) -> None:  # every answer: body, headers, cookies
        await response.aread()
        bodies.extend([response.text, str(response.headers), unquote(str(response.url))])
        bodies.extend(repr(sessions.decode(v)) for v in response.cookies.values())

    caplog.set_level(logging.DEBUG)
    async with client(app) as c:
        c.event_hooks["response"].append(keep)
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        await c.get("/_mfa/challenge", headers=HTML)
        code = mailbox.last_code()
        r = await submit(c, code)
        assert r.status_code == 303
    ours = [
        r.getMessage() + repr(r.__dict__.get("mfa_event"))
        for r in caplog.records
        if not r.name.startswith("mail.log")
    ]  # aiosmtpd's own debug log shows the mail
    text = "\n".join(bodies) + repr(events) + "\n".join(ours)
    codes = [
        m.group(0)
        for message in mailbox.messages
        if (m := re.search(r"\b\d{6}\b", mailbox.text_of(message)))
    ]
    assert len(codes) == 2  # the enrollment code and the login code
    for sent_code in codes:
        assert sent_code not in text
    assert any(e["event"] == "code_sent" for e in events)
