"""Codes by SMS (the real twilio SDK against a local double of its API) and by email (a real
SMTP server, aiosmtpd): enrollment, challenge, fallback, lifetime, single use, rate limits."""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from examples.starlette_app import users as demo_users

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.core.tokens import session_codec
from mfa_middleware.errors import ConfigError
from mfa_middleware.senders.smtp import SMTPSender
from mfa_middleware.web.phone import normalise_phone
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    TWILIO_FROM,
    TWILIO_SID,
    FixedClock,
    client,
    csrf_of,
    enroll,
    enroll_email,
    enroll_sms,
    factors_of,
    is_verified,
    login,
    make_app,
    relogin,
    senders,
    smtp_sender,
    visible,
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
        assert "We emailed a code to a***@example.com" in visible(page)
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
        assert "We sent a text message with a code to +1 •••-•••-2671" in visible(page)
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
        assert "emailed your code to a***@example.com instead" in visible(page)
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
        assert "disabled" not in page.text  # the resend button works without a reload or JS
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 429  # cooldown: the page says how long, the code still works
        assert "You can ask for a new code in 30 seconds. The one we sent still works." in r.text
        assert "We emailed a code to a***@example.com" in visible(r)
        clock.advance(31)  # the same button, pressed from the same page, now sends
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


async def post_code(c: httpx.AsyncClient, csrf: str, code: str) -> httpx.Response:
    """Post a code with a CSRF token already in hand: no page visit that could send another."""
    return await c.post(
        "/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": code, "next": "/account"}
    )


def other_than(*codes: str) -> str:
    """A well-formed code that is none of `codes`."""
    return next(f"{n:06d}" for n in range(10) if f"{n:06d}" not in codes)


@pytest.mark.checklist("OOB-01")
async def test_a_code_works_for_ten_minutes_and_no_longer(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)  # the code goes out now
        clock.advance(599)
        assert (await post_code(c, csrf_of(page.text), mailbox.last_code())).status_code == 303
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        clock.advance(600)
        assert (await post_code(c, csrf_of(page.text), mailbox.last_code())).status_code == 400
        assert not await is_verified(c)
    shorter = make_app(clock, store=store, **senders(mailbox, twilio), code_ttl="5m")
    async with client(shorter) as c:
        await login(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        clock.advance(300)
        assert (await post_code(c, csrf_of(page.text), mailbox.last_code())).status_code == 400
    with pytest.raises(ConfigError, match="code_ttl"):
        MFAConfig(secret_keys=[SECRET_KEY], code_ttl="11m")


@pytest.mark.checklist("OOB-02")
async def test_a_code_works_only_in_the_login_that_asked_for_it(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as first, client(app) as second:
        await login(first)
        await enroll_email(first, mailbox)
        await relogin(first)
        await login(second)  # alice's password, another browser
        page = await first.get("/_mfa/challenge", headers=HTML)  # the code is for this login
        code = mailbox.last_code()
        form = await second.get("/_mfa/recovery", headers=HTML)  # a form, and no code sent
        assert mailbox.last_code() == code
        assert (await post_code(second, csrf_of(form.text), code)).status_code == 400
        assert not await is_verified(second)
        assert (await post_code(first, csrf_of(page.text), code)).status_code == 303
        assert await is_verified(first)


@pytest.mark.checklist("OOB-03", "OOB-04")
async def test_sent_codes_are_six_digits_kept_only_as_keyed_hashes(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))

    def stored() -> str:
        return json.dumps(
            [[key.kind, key.part, key.name, doc] for key, (doc, _) in store._data.items()]
        )

    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
        enrolling = mailbox.last_code()
        assert not re.search(rf"(?<!\d){enrolling}(?!\d)", stored())
        code_page = await c.get(r.headers["location"], headers=HTML)
        r = await c.post(
            "/_mfa/enroll/code",
            data={"csrf": csrf_of(code_page.text), "code": enrolling},
            headers=HTML,
        )
        assert r.status_code == 303
        await relogin(c)
        await c.get("/_mfa/challenge", headers=HTML)
        signing_in = mailbox.last_code()
        assert not re.search(rf"(?<!\d){signing_in}(?!\d)", stored())
        assert any(key.kind == "oob" for key in store._data)  # it is there, as a MAC
    for code in (enrolling, signing_in):
        assert re.fullmatch(r"[0-9]{6}", code)


@pytest.mark.checklist("OOB-06")
async def test_a_resend_replaces_the_code_and_keeps_the_failure_count(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))  # 5 wrong codes lock
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        csrf = csrf_of(page.text)
        old = mailbox.last_code()
        for _ in range(4):
            assert (await post_code(c, csrf, other_than(old))).status_code == 400
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf})
        assert "A new code is on its way" in r.text
        new = mailbox.last_code()
        r = await post_code(c, csrf, other_than(old, new))
        assert r.status_code == 429  # the fifth wrong code: the resend did not start over
        clock.advance(61)
        if old != new:  # equal by chance once in a million
            assert (await post_code(c, csrf, old)).status_code == 400
        assert (await post_code(c, csrf, new)).status_code == 303


@pytest.mark.checklist("OOB-09", "ENR-04")
async def test_sms_comes_second_warns_and_binds_only_a_proved_number(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        chooser = (await c.get("/_mfa/enroll", headers=HTML)).text
        assert chooser.index("/_mfa/enroll/totp") < chooser.index("/_mfa/enroll/sms")
        assert "The most secure choice" in chooser
        page = await c.get("/_mfa/enroll/sms", headers=HTML)
        assert "Text messages can be intercepted" in page.text
        assert "An authenticator app is safer." in page.text
        r = await c.post(
            "/_mfa/enroll/sms",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "phone": "(415) 555-2671", "region": "US"},
        )
        assert r.status_code == 303
        sent = twilio.last_code()
        record = UserRecord.from_doc(store.get(user_key("alice")))
        assert record.factors() == []  # not bound: not proved yet
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")
        code_page = await c.get("/_mfa/enroll/code", headers=HTML)
        wrong = await c.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(code_page.text), "code": other_than(sent)},
        )
        assert wrong.status_code == 400
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == []
        done = await c.post(
            "/_mfa/enroll/code", headers=HTML, data={"csrf": csrf_of(code_page.text), "code": sent}
        )
        assert done.status_code == 303
        record = UserRecord.from_doc(store.get(user_key("alice")))
        assert factors_of(store) == [("sms", "+14155552671")]


@pytest.mark.checklist("OOB-10", "ENR-01")
async def test_changing_the_phone_needs_a_recent_code_a_proved_number_and_a_notice(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        assert (await enroll_sms(c, twilio)).status_code == 303
        clock.advance(16 * 60)  # the last code is no longer recent
        r = await c.get("/_mfa/enroll/sms", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        settings = await c.get("/_mfa/settings", headers=HTML)
        texts = len(twilio.requests)
        r = await c.post(
            "/_mfa/enroll/sms",
            headers=HTML,
            data={"csrf": csrf_of(settings.text), "phone": "(415) 555-2672", "region": "US"},
        )
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        assert len(twilio.requests) == texts  # nothing sent to the new number
        step_up = await c.get(r.headers["location"], headers=HTML)
        assert twilio.requests[-1]["To"] == "+14155552671"  # the code goes to the old phone
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={"csrf": csrf_of(step_up.text), "code": twilio.last_code(), "reauth": "1"},
        )
        assert r.status_code == 303
        page = await c.get("/_mfa/enroll/sms", headers=HTML)
        assert page.status_code == 200
        r = await c.post(
            "/_mfa/enroll/sms",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "phone": "(415) 555-2672", "region": "US"},
        )
        assert twilio.requests[-1]["To"] == "+14155552672"
        assert factors_of(store) == [("sms", "+14155552671")]
        code_page = await c.get(r.headers["location"], headers=HTML)
        done = await c.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(code_page.text), "code": twilio.last_code()},
        )
        assert done.status_code == 303
        assert factors_of(store) == [("sms", "+14155552672")]
    notices = [
        mailbox.text_of(m)
        for m in mailbox.messages
        if "two-step verification changed" in str(m["Subject"])
    ]
    assert [m["To"] for m in mailbox.messages if "changed" in str(m["Subject"])] == [
        "alice@example.com"
    ]
    assert len(notices) == 1
    assert "The way you receive sign-in codes was changed." in notices[0]
    assert not re.search(r"\b\d{6}\b", notices[0])


@pytest.mark.checklist("OOB-11")
async def test_a_failed_text_at_sign_in_lets_nobody_in(
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
        assert "Traceback" not in page.text
        assert "30008" not in page.text  # nothing of the vendor's error
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")
        assert (
            await c.get("/api/profile", headers={"accept": "application/json"})
        ).status_code == 401
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 503
        assert (await post_code(c, csrf_of(page.text), "000000")).status_code == 400
        assert not await is_verified(c)
        twilio.mode = "ok"  # service back: a code again, and only a code lets her in
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        assert (await post_code(c, csrf_of(page.text), twilio.last_code())).status_code == 303


@pytest.mark.checklist("OOB-13")
@pytest.mark.parametrize(
    "address",
    [
        "x@example.com\r\nBcc: attacker@evil.example",
        "x@example.com\nBcc: attacker@evil.example",
        "x@example.com\rBcc: attacker@evil.example",
    ],
)
async def test_line_breaks_in_an_address_never_reach_a_mail_header(
    clock: FixedClock,
    mailbox: Mailbox,
    twilio: TwilioDouble,
    monkeypatch: pytest.MonkeyPatch,
    address: str,
) -> None:
    alice = demo_users.USERS["alice"]
    monkeypatch.setitem(demo_users.USERS, "alice", replace(alice, email=""))  # she types one
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post(
            "/_mfa/enroll/email", headers=HTML, data={"csrf": csrf_of(page.text), "email": address}
        )
        assert r.status_code == 400
        assert "Enter a valid email address." in r.text
    # an address of record the app hands over with a line break: the notice is not sent
    monkeypatch.setitem(demo_users.USERS, "alice", replace(alice, email=address))
    events: list[dict[str, Any]] = []
    app = make_app(clock, email_sender=smtp_sender(mailbox), on_event=events.append)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
    assert mailbox.messages == []
    assert [e["reason"] for e in events if e["event"] == "notification_failed"] == [
        "a header value contains a line break"
    ]


@pytest.mark.checklist("SES-17")
async def test_opening_the_challenge_again_sends_nothing_more(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    """The challenge page's GET sends the first code of a login; opening it again (a reload,
    or a navigation another site made) sends nothing within the cooldown and nothing past
    the hourly cap: at most that one send comes from a GET."""
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_hour=3)
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)  # send 1
        await relogin(c)

        def sent() -> int:
            return sum(1 for m in mailbox.messages if "verification code is" in mailbox.text_of(m))

        await c.get("/_mfa/challenge", headers=HTML)  # send 2: this login's first code
        assert sent() == 2
        for _ in range(3):
            page = await c.get("/_mfa/challenge", headers=HTML)
            assert page.status_code == 200
        assert sent() == 2  # within the cooldown: the code already sent still works
        clock.advance(31)
        r = await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200  # send 3: the hourly cap is reached
        for _ in range(3):
            clock.advance(31)
            await c.get("/_mfa/challenge", headers=HTML)
        assert sent() == 3
