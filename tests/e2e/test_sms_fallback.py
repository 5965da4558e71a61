"""sms_fallback="email" (issue 21 point 7, the FAQ: "falls back to sending the access code via
email even if Authentication by Email is not enabled"): when a text message cannot be sent,
the login code goes to the app's address of record, with email codes off; off by default."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.errors import ConfigError
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll_sms,
    is_verified,
    login,
    make_app,
    relogin,
    senders,
    visible,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


def sms_only(mailbox: Mailbox, twilio: TwilioDouble, **options: Any) -> dict[str, Any]:
    """Twilio for SMS and SMTP for notices, codes by email off (the NIST-friendly setup)."""
    return {**senders(mailbox, twilio), "email_codes": False, **options}


async def test_a_failed_text_message_sends_the_code_to_the_address_of_record(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    events: list[dict[str, Any]] = []
    app = make_app(clock, **sms_only(mailbox, twilio, sms_fallback="email"), on_event=events.append)
    async with client(app) as c:
        await login(c)
        choose = await c.get("/_mfa/enroll", headers=HTML)
        assert "Email" not in visible(choose)  # email is still no factor to enroll
        assert (await enroll_sms(c, twilio)).status_code == 303
        await relogin(c)
        twilio.mode = "error"
        sent_before = len(mailbox.messages)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We couldn't send a text message, so we emailed your code to a***@example.com" in (
            " ".join(visible(page).split())
        )
        assert len(mailbox.messages) == sent_before + 1
        assert mailbox.messages[-1]["To"] == "alice@example.com"  # the app's address of record
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": mailbox.last_code(), "next": "/account"},
        )
        assert r.status_code == 303
        assert await is_verified(c)
    (sent,) = [e for e in events if e["event"] == "code_sent" and e["purpose"] == "login"]
    assert (sent["channel"], sent["fallback"]) == ("email", True)
    failed = [e for e in events if e["event"] == "code_delivery_failed"]
    assert failed[-1]["channel"] == "sms"


@pytest.mark.parametrize("option", [{}, {"sms_fallback": "off", "email_codes": True}])
async def test_without_it_no_code_goes_by_email(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble, option: dict[str, Any]
) -> None:
    app = make_app(clock, **{**sms_only(mailbox, twilio), **option})
    async with client(app) as c:
        await login(c)
        assert (await enroll_sms(c, twilio)).status_code == 303
        await relogin(c)
        twilio.mode = "error"
        sent_before = len(mailbox.messages)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We couldn't send you a code just now." in visible(page)
        assert len(mailbox.messages) == sent_before


def test_the_option_is_checked_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    from mfa_middleware.testing import Outbox

    base = {"secret_keys": [SECRET_KEY], "store": MemoryStore(), "email_sender": Outbox()}
    with pytest.raises(ConfigError, match="sms_fallback: 'sms' is not allowed"):
        MFAConfig(**base, sms_fallback="sms")
    with pytest.raises(ConfigError, match="sms_fallback: a code by email is not an authenticator"):
        MFAConfig.aal2(**base, sms_fallback="email")
    with pytest.raises(ConfigError, match="sms_fallback: needs an email_sender"):
        MFAConfig(secret_keys=[SECRET_KEY], sms_fallback="email")
    caplog.set_level(logging.WARNING, logger="mfa_middleware")
    assert MFAConfig(**base, sms_fallback="email").codes.sms_fallback is True
    assert "does not conform to NIST SP 800-63B" in caplog.text
    assert MFAConfig(**base).codes.sms_fallback is False  # off by default
    assert MFAConfig(**base, sms_fallback="off", email_codes=True).codes.sms_fallback is False
