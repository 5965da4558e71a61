"""Input that cannot be a code (issue 15, point 4): answered with what a code looks like, and
no attempt used, since it cannot be a guess; the field tells the browser first."""

from __future__ import annotations

import html
import re

import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.records import throttle_key
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    enroll_email,
    login,
    make_app,
    relogin,
    secret_of,
    senders,
    sign_up,
    submit_code,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio

NOT_CODES = ["12345", "1234567", "abcdef", "12 345", ""]


def failures(store: MemoryStore) -> int:
    return int((store.get(throttle_key("alice")) or {}).get("failures", 0))


def code_input(page: str) -> str:
    match = re.search(r'<input id="code"[^>]*>', page, re.S)
    assert match, "no code field"
    return match.group(0)


@pytest.mark.checklist("TOTP-08")
async def test_a_challenge_answer_that_is_no_code_costs_no_attempt(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        field = code_input((await challenge_page(c)).text)
        assert 'pattern="[0-9]*"' in field
        assert 'maxlength="6"' in field
        assert 'inputmode="numeric"' in field
        for typed in NOT_CODES:
            r = await submit_code(c, typed)
            assert r.status_code == 400, typed
            text = html.unescape(r.text)
            assert "Enter the 6-digit code your authenticator app shows, digits only." in text
            assert "attempt" not in text
        assert failures(store) == 0
        r = await submit_code(c, wrong_code(secret, clock()))
        assert "(4 attempts left)" in html.unescape(r.text)  # the first guess is the first


async def test_enrollment_with_something_that_is_no_code(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        r = await c.post(
            "/_mfa/enroll/totp", data={"csrf": csrf_of(page.text), "code": "12ab56"}, headers=HTML
        )
        assert r.status_code == 400
        assert "Enter the 6-digit code your authenticator app shows" in html.unescape(r.text)
        assert secret_of(r.text) == secret  # the same QR code: nothing to scan again
        assert failures(store) == 0


async def test_an_emailed_code_answer_that_is_no_code(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await challenge_page(c)
        r = await c.post(
            "/_mfa/challenge", data={"csrf": csrf_of(page.text), "code": "12345"}, headers=HTML
        )
        assert r.status_code == 400
        assert "Enter the 6-digit code from the email, digits only." in html.unescape(r.text)
        assert failures(store) == 0
        r = await c.post(
            "/_mfa/challenge",
            data={"csrf": csrf_of(page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        assert r.status_code == 303
