"""NOT-02: the right password followed by wrong codes until the lockout tells the user by
email (when, which browser, which address), once per lockout, through a real SMTP server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll,
    login,
    make_app,
    relogin,
    smtp_sender,
    submit_code,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox

pytestmark = pytest.mark.anyio

SUBJECT = "wrong sign-in codes"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def noticing_app(clock: FixedClock, mailbox: Mailbox, **options: Any) -> Any:
    return make_app(clock, email_sender=smtp_sender(mailbox), max_attempts=3, **options)


def notices(mailbox: Mailbox) -> list[str]:
    return [
        mailbox.text_of(m)
        for m in mailbox.messages
        if SUBJECT in str(m["Subject"]) and m["To"] == "alice@example.com"
    ]


@pytest.mark.checklist("RL-07", "NOT-02")
async def test_a_lockout_at_the_challenge_sends_one_notice(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    events: list[dict[str, Any]] = []
    async with client(noticing_app(clock, mailbox, on_event=events.append)) as c:
        c.headers["user-agent"] = FIREFOX
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        clock.advance(30)
        guesses = [wrong_code(secret, clock() + 30 * i) for i in range(3)]
        statuses = [(await submit_code(c, guess)).status_code for guess in guesses]
        assert statuses == [400, 400, 429]
        locked = [e for e in events if e["event"] == "locked_out"]
        assert [(e["user"], e["step"], e["ip"]) for e in locked] == [
            ("alice", "challenge", "127.0.0.1")
        ]  # and a security event for the audit log
        assert len(notices(mailbox)) == 1
        text = notices(mailbox)[0]
        assert "entered 3 wrong codes" in text
        assert "on Nov 14, 2023, 10:13\u202fPM UTC from" in text  # CLDR's English (Babel)
        assert clock() == 1_700_000_030  # the moment that is
        assert "Firefox on Linux" in text
        assert "IP address 127.0.0.1" in text
        assert not any(guess in text for guess in guesses)  # no code ever goes out in a notice
        for _ in range(3):  # refused while locked: no more mail
            assert (await submit_code(c, wrong_code(secret, clock()))).status_code == 429
        assert len(notices(mailbox)) == 1
        clock.advance(61)  # the lockout is over: three more wrong codes lock again
        for _ in range(3):
            await submit_code(c, wrong_code(secret, clock()))
        assert len(notices(mailbox)) == 2


@pytest.mark.checklist("NOT-02")
async def test_fewer_wrong_codes_than_the_limit_send_nothing(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    async with client(noticing_app(clock, mailbox)) as c:
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        clock.advance(30)
        for _ in range(2):
            assert (await submit_code(c, wrong_code(secret, clock()))).status_code == 400
        assert notices(mailbox) == []


async def test_wrong_codes_while_enrolling_send_nothing(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    """Failing to confirm a new authenticator is not someone else getting past the password."""
    async with client(noticing_app(clock, mailbox)) as c:
        await login(c)
        statuses = []
        for _ in range(3):
            page = await c.get("/_mfa/enroll/totp", headers=HTML)
            r = await c.post(
                "/_mfa/enroll/totp",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "code": "000000", "next": "/account"},
            )
            statuses.append(r.status_code)
        assert statuses == [400, 400, 429]  # the same limit, locked by the third
        assert notices(mailbox) == []
