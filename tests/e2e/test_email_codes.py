"""OOB-08: email is not an out-of-band authenticator under NIST SP 800-63B, so codes by email
are off unless `email_codes=True` (an email sender alone only sends notices and links), a
warning says so when they are on, and `assurance="AAL2"` (the `MFAConfig.aal2` preset) refuses
them at startup."""

from __future__ import annotations

import logging

import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.errors import ConfigError
from mfa_middleware.senders.console import ConsoleSender
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll_email,
    enroll_sms,
    login,
    make_app,
    relogin,
    senders,
    visible,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


@pytest.mark.checklist("OOB-08")
async def test_by_default_email_is_not_offered_as_a_factor(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **{**senders(mailbox, twilio), "email_codes": False})
    async with client(app) as c:
        await login(c)
        chooser = await c.get("/_mfa/enroll", headers=HTML)
        assert chooser.status_code == 200
        assert "/_mfa/enroll/sms" in chooser.text
        assert "/_mfa/enroll/email" not in chooser.text
        r = await c.get("/_mfa/enroll/email", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll"
        assert mailbox.messages == []


@pytest.mark.checklist("OOB-08")
async def test_by_default_a_failed_sms_does_not_fall_back_to_email(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **{**senders(mailbox, twilio), "email_codes": False})
    async with client(app) as c:
        await login(c)
        assert (await enroll_sms(c, twilio)).status_code == 303
        await relogin(c)
        twilio.mode = "error"
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We couldn't send you a code just now" in page.text
        assert not any("verification code" in mailbox.text_of(m) for m in mailbox.messages)


async def test_an_email_user_keeps_codes_by_email_after_they_are_turned_off(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    """Turning email codes off stops new email enrollments; it does not lock out the users
    who enrolled that way (they can move to another method from the settings)."""
    store = MemoryStore()
    before = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(before) as c:
        await login(c)
        await enroll_email(c, mailbox)
    assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == ["email"]
    after = make_app(clock, store=store, **{**senders(mailbox, twilio), "email_codes": False})
    async with client(after) as c:
        await login(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "We emailed a code to a***@example.com" in visible(page)
        data = {"csrf": csrf_of(page.text), "code": mailbox.last_code()}
        assert (await c.post("/_mfa/challenge", data=data, headers=HTML)).status_code == 303
        state = (await c.get("/api/mfa", headers={"accept": "application/json"})).json()
        assert (state["method"], state["amr"]) == ("email", ["email"])  # what the app sees


@pytest.mark.checklist("OOB-08")
def test_turning_email_codes_on_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mfa_middleware"):
        MFAConfig(secret_keys=[SECRET_KEY], email_sender=_sender(), email_codes=True)
    assert any("NIST SP 800-63B" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mfa_middleware"):
        MFAConfig(secret_keys=[SECRET_KEY], email_sender=_sender())
    assert caplog.records == []


@pytest.mark.checklist("OOB-08")
def test_aal2_refuses_email_codes() -> None:
    with pytest.raises(ConfigError, match="email_codes"):
        MFAConfig(
            secret_keys=[SECRET_KEY], email_sender=_sender(), email_codes=True, assurance="AAL2"
        )
    with pytest.raises(ConfigError, match="email_codes"):
        MFAConfig.aal2(secret_keys=[SECRET_KEY], email_sender=_sender(), email_codes=True)
    preset = MFAConfig.aal2(secret_keys=[SECRET_KEY], email_sender=_sender())
    assert preset.assurance == "AAL2"
    assert preset.email_codes is False


def test_bad_assurance_and_email_codes_without_a_sender_are_refused() -> None:
    with pytest.raises(ConfigError, match="assurance"):
        MFAConfig(secret_keys=[SECRET_KEY], assurance="AAL3")
    with pytest.raises(ConfigError, match="email_codes"):
        MFAConfig(secret_keys=[SECRET_KEY], email_codes=True)


def _sender() -> ConsoleSender:
    return ConsoleSender("email")


async def test_an_email_enrollment_started_before_they_were_turned_off_cannot_finish(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    before = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(before) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll/code?sent=1"
        code = mailbox.last_code()
        page = await c.get("/_mfa/enroll/code", headers=HTML)
    after = make_app(clock, store=store, **{**senders(mailbox, twilio), "email_codes": False})
    async with client(after) as same_browser:  # the app redeployed with email codes off
        same_browser.cookies = c.cookies
        done = await same_browser.post(
            "/_mfa/enroll/code", headers=HTML, data={"csrf": csrf_of(page.text), "code": code}
        )
        assert done.headers["location"] == "/_mfa/enroll"
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == []
