"""What the code pages tell SMS and email users: never to open an authenticator app, what to
check after a wrong code, that a code expired (with a way to get a new one), and how long to
wait when they ask for a new code too soon (the button never goes dead)."""

from __future__ import annotations

import html

import httpx
import pytest

from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll,
    enroll_email,
    enroll_sms,
    login,
    make_app,
    relogin,
    senders,
    visible,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio

APP_WORDS = "authenticator app"
RESEND = '<button type="submit" class="link">Send a new code</button>'


def text(page: httpx.Response) -> str:
    return html.unescape(page.text)


async def post_code(c: httpx.AsyncClient, page: httpx.Response, code: str) -> httpx.Response:
    return await c.post(
        "/_mfa/challenge", headers=HTML, data={"csrf": csrf_of(page.text), "code": code}
    )


async def sms_user_at_challenge(c: httpx.AsyncClient, twilio: TwilioDouble) -> httpx.Response:
    await login(c)
    assert (await enroll_sms(c, twilio)).status_code == 303
    await relogin(c)
    return await c.get("/_mfa/challenge", headers=HTML)


async def test_sms_user_hears_about_text_messages_only(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_attempts=10)
    async with client(app) as c:
        page = await sms_user_at_challenge(c, twilio)
        assert "We sent a text message with a code to" in text(page)
        sent = twilio.last_code()
        wrong = await post_code(c, page, "000000" if sent != "000000" else "111111")
        assert wrong.status_code == 400
        assert "That code didn't work. Check the text message and try again" in text(wrong)

        early = await c.post(
            "/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)}
        )
        assert early.status_code == 429
        assert "You can ask for a new code in 30 seconds. The one we sent still works." in text(
            early
        )

        clock.advance(601)  # the code's 10 minutes are over
        expired = await post_code(c, page, sent)
        assert expired.status_code == 400
        assert "That code has expired. Send yourself a new one below" in text(expired)
        assert RESEND in expired.text
        for answer in (page, wrong, early, expired):
            assert APP_WORDS not in text(answer), answer.request.url
            assert "Check your app" not in text(answer)

        resent = await c.post(
            "/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(expired.text)}
        )
        assert resent.status_code == 200
        assert "A new code is on its way to" in visible(resent)
        assert (await post_code(c, resent, twilio.last_code())).status_code == 303


async def test_email_user_is_told_to_check_the_email(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        sent = mailbox.last_code()
        wrong = await post_code(c, page, "000000" if sent != "000000" else "111111")
        assert "That code didn't work. Check the email and try again (4 attempts left)." in text(
            wrong
        )
        assert APP_WORDS not in text(wrong)


async def test_an_expired_enrollment_code_says_so_and_offers_a_new_one(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        fresh = await c.get("/_mfa/enroll/code", headers=HTML)
        assert "Your code has expired" not in text(fresh)
        clock.advance(601)
        stale = await c.get("/_mfa/enroll/code", headers=HTML)
        assert "Your code has expired. Send yourself a new one below." in text(stale)
        assert RESEND in stale.text
        resent = await c.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(stale.text), "action": "resend"},
        )
        assert resent.status_code == 200
        assert "A new code is on its way to a***@example.com" in visible(resent)
        assert "Your code has expired" not in visible(resent)


async def test_an_authenticator_user_is_told_to_check_the_app(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "Open your authenticator app" in text(page)
        assert RESEND not in page.text
        wrong = await post_code(c, page, wrong_code(secret, clock()))
        assert "That code didn't work. Check your app and try again (4 attempts left)." in text(
            wrong
        )
