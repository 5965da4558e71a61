"""A locked-out user sees the lockout as soon as a page that asks for a code opens, not only
after typing one more code into a form that cannot work."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    login,
    make_app,
    secret_of,
    senders,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


def expect_locked(page: httpx.Response) -> None:
    assert page.status_code == 429, page.text
    assert "Too many wrong codes" in page.text
    assert "Try again in 1 minute." in page.text
    assert 'name="code"' not in page.text  # no form that cannot work


async def test_authenticator_enrollment_page_shows_the_lockout(clock: FixedClock) -> None:
    async with client(make_app(clock, max_attempts=2)) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        for _ in range(2):
            await c.post(
                "/_mfa/enroll/totp",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "code": wrong_code(secret, clock())},
            )
        locked = await c.get("/_mfa/enroll/totp", headers=HTML)
        expect_locked(locked)
        assert "<svg" not in locked.text  # nothing to scan while nothing can be confirmed
        clock.advance(61)
        assert (await c.get("/_mfa/enroll/totp", headers=HTML)).status_code == 200


async def test_code_enrollment_page_shows_the_lockout(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    async with client(make_app(clock, max_attempts=2, **senders(mailbox, twilio))) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        code_page = await c.get(r.headers["location"], headers=HTML)
        wrong = "000000" if mailbox.last_code() != "000000" else "111111"
        for _ in range(2):
            await c.post(
                "/_mfa/enroll/code",
                headers=HTML,
                data={"csrf": csrf_of(code_page.text), "code": wrong},
            )
        expect_locked(await c.get("/_mfa/enroll/code", headers=HTML))
