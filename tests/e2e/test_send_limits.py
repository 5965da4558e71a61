"""OOB-07: sending codes is limited per user (cooldown, hourly cap: tests/e2e/test_codes.py),
per destination whichever users share it, and per client IP address (the forwarded one behind
a trusted proxy), through the real Twilio SDK and a real SMTP server. The store keeps those
limits under keyed hashes, never the phone number or the address."""

from __future__ import annotations

import json

import pytest

from mfa_middleware import MemoryStore
from tests.e2e.helpers import (
    HTML,
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

PHONE = "(415) 555-2671"
E164 = "+14155552671"
PROXY = "127.0.0.1/32"  # the test client's address: it plays the trusted proxy


def code_mails(mailbox: Mailbox, to: str) -> int:
    return sum(
        1
        for m in mailbox.messages
        if m["To"] == to and "verification code is" in mailbox.text_of(m)
    )


@pytest.mark.checklist("OOB-07")
async def test_users_sharing_a_phone_share_its_hourly_cap(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_destination=2)
    async with client(app) as alice, client(app) as bob:
        await login(alice)
        assert (await enroll_sms(alice, twilio, PHONE)).status_code == 303  # enrollment 1
        await login(bob, "bob")
        assert (await enroll_sms(bob, twilio, PHONE)).status_code == 303  # enrollment 2
        await relogin(alice)
        page = await alice.get("/_mfa/challenge", headers=HTML)  # sign-in 1
        assert "We sent a text message" in page.text
        await relogin(bob, "bob")  # (signing out of bob's verified session sends nothing)
        page = await bob.get("/_mfa/challenge", headers=HTML)  # sign-in 2
        assert "We sent a text message" in page.text
        assert len(twilio.requests) == 4
        await relogin(alice)  # sign-in 3: the phone's cap is reached, whoever asks
        page = await alice.get("/_mfa/challenge", headers=HTML)
        assert "emailed your code to a***@example.com instead" in visible(page)
        assert len(twilio.requests) == 4
        assert all(r["To"] == E164 for r in twilio.requests)
        clock.advance(3601)  # a new hour: the phone takes texts again
        await relogin(bob, "bob")  # (signing out of an unverified session sends one too)
        page = await bob.get("/_mfa/challenge", headers=HTML)
        assert "We sent a text message" in page.text
        assert len(twilio.requests) > 4


@pytest.mark.checklist("OOB-07")
async def test_enrolling_someone_elses_phone_cannot_use_up_its_sign_in_codes(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    """Codes to a number nobody proved (enrollment) and sign-in codes to a number its owner
    proved are capped apart: bob starting enrollments with alice's number again and again
    uses up only the enrollment sends to it."""
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_destination=3)
    async with client(app) as alice, client(app) as bob:
        await login(alice)
        assert (await enroll_sms(alice, twilio, PHONE)).status_code == 303  # enrollment 1
        await login(bob, "bob")
        for _ in range(4):
            page = await bob.get("/_mfa/enroll/sms", headers=HTML)
            await bob.post(
                "/_mfa/enroll/sms",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "phone": PHONE, "region": "US"},
            )
            clock.advance(31)  # past bob's own cooldown
        assert len(twilio.requests) == 3  # enrollment sends to that number: capped at 3
        await relogin(alice)
        page = await alice.get("/_mfa/challenge", headers=HTML)
        assert "We sent a text message" in page.text  # her sign-in code still goes out
        assert len(twilio.requests) == 4
        assert twilio.requests[-1]["To"] == E164


@pytest.mark.checklist("OOB-07")
async def test_one_client_address_has_an_hourly_cap_across_users(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_ip=2, trusted_proxies=[PROXY])
    async with client(app) as alice, client(app) as bob:
        for c in (alice, bob):
            c.headers["x-forwarded-for"] = "203.0.113.7"
        await login(alice)
        await enroll_email(alice, mailbox)  # send 1 from 203.0.113.7
        await login(bob, "bob")
        page = await bob.get("/_mfa/enroll/email", headers=HTML)
        r = await bob.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        assert r.status_code == 303  # send 2 from 203.0.113.7
        await relogin(alice)
        page = await alice.get("/_mfa/challenge", headers=HTML)  # send 3: refused
        assert "Too many codes were sent in the last hour" in page.text
        assert code_mails(mailbox, "alice@example.com") == 1
        alice.headers["x-forwarded-for"] = "198.51.100.9"  # another client address
        clock.advance(31)
        r = await alice.post(
            "/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)}
        )
        assert r.status_code == 200
        assert code_mails(mailbox, "alice@example.com") == 2


@pytest.mark.checklist("OOB-07")
async def test_rotating_forwarded_addresses_do_not_lift_the_user_cap(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_hour=2, trusted_proxies=[PROXY])
    async with client(app) as alice:
        await login(alice)
        await enroll_email(alice, mailbox)  # send 1
        await relogin(alice)
        page = await alice.get("/_mfa/challenge", headers=HTML)  # send 2
        statuses = []
        for i in range(20):
            alice.headers["x-forwarded-for"] = f"198.51.100.{i + 1}"
            clock.advance(31)
            r = await alice.post(
                "/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)}
            )
            statuses.append(r.status_code)
        assert statuses == [429] * 20
        assert code_mails(mailbox, "alice@example.com") == 2


async def test_the_store_keeps_no_phone_number_or_address_for_the_limits(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio), trusted_proxies=[PROXY])
    async with client(app) as alice:
        alice.headers["x-forwarded-for"] = "203.0.113.7"
        await login(alice)
        assert (await enroll_sms(alice, twilio, PHONE)).status_code == 303
    limits = {
        key: doc for key, (doc, _) in store._data.items() if key.kind in ("oob_dest", "oob_ip")
    }
    assert {key.kind for key in limits} == {"oob_dest", "oob_ip"}
    dumped = json.dumps([[key.kind, key.part, key.name, doc] for key, doc in limits.items()])
    for secret in (E164, "4155552671", "203.0.113.7", "alice"):
        assert secret not in dumped
