"""The whole journey through HTTP: login, enrollment, challenge, replay, lockout, RFC 6238 times."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.tokens import session_codec

from .helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    challenge_page,
    client,
    cookie,
    csrf_of,
    enroll,
    login,
    make_app,
    relogin,
    secret_of,
    set_cookie,
    submit_code,
    totp,
    wrong_code,
)

pytestmark = pytest.mark.anyio


@pytest.mark.checklist("TOTP-04", "TOTP-05")
async def test_login_enroll_challenge_replay_journey(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"

        r = await c.get(r.headers["location"], headers=HTML)
        assert r.status_code == 200
        assert "/_mfa/enroll/totp" in r.text

        r = await c.get("/_mfa/enroll/totp?next=%2Faccount", headers=HTML)
        assert r.status_code == 200
        secret = secret_of(r.text)
        assert len(secret) == 32
        enroll_code = totp(secret, clock())
        r = await c.post(
            "/_mfa/enroll/totp",
            data={"csrf": csrf_of(r.text), "code": enroll_code, "next": "/account"},
            headers=HTML,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/account"
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 200
        assert "Signed in as <strong>alice</strong>" in r.text

        # A new login (same time step): challenged, not sent to enrollment again.
        await relogin(c)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
        # The code that confirmed enrollment cannot be used to log in.
        r = await submit_code(c, enroll_code)
        assert r.status_code == 400
        assert "didn&#39;t work" in r.text or "didn't work" in r.text
        assert r.status_code != 303

        # A wrong code: a message, and the attempt counted.
        r = await submit_code(c, wrong_code(secret, clock()))
        assert r.status_code == 400
        assert "attempts left" in r.text
        assert "(3 attempts left)" in r.text  # the replay above counted too
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303

        # The right code (next time step) lets the user through to the page asked for.
        clock.advance(30)
        code = totp(secret, clock())
        r = await submit_code(c, code)
        assert r.status_code == 303
        assert r.headers["location"] == "/account"
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 200

        # The same code again, in a new login within the same time step: refused.
        await relogin(c)
        r = await submit_code(c, code)
        assert r.status_code == 400
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge")


@pytest.mark.checklist("RL-01", "RL-02")
async def test_lockout_after_five_wrong_codes_then_unlock(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        clock.advance(30)
        bad = wrong_code(secret, clock())
        lefts = []
        for _ in range(4):
            r = await submit_code(c, bad)
            assert r.status_code == 400
            lefts.append(r.text)
        assert "(4 attempts left)" in lefts[0]
        assert "(1 attempt left)" in lefts[3]

        r = await submit_code(c, bad)  # the fifth wrong code locks
        assert r.status_code == 429
        assert "Try again in 1 minute" in r.text

        # While locked the correct code is refused, and the page says how long to wait.
        r = await submit_code(c, totp(secret, clock()))
        assert r.status_code == 429
        assert "Try again in" in r.text
        r = await challenge_page(c)
        assert r.status_code == 429
        assert "Try again in 1 minute" in r.text
        clock.advance(30)
        r = await challenge_page(c)
        assert r.status_code == 429
        assert "Try again in 30 seconds" in r.text
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303

        # A new login does not reset the lock.
        await relogin(c)
        r = await submit_code(c, totp(secret, clock()))
        assert r.status_code == 429

        clock.advance(31)  # the lock period is over
        r = await submit_code(c, totp(secret, clock()))
        assert r.status_code == 303
        assert r.headers["location"] == "/account"
        assert (await c.get("/account", headers=HTML)).status_code == 200


RFC_TIME = 1111111109


@pytest.mark.parametrize(
    ("algorithm", "digits"), [("SHA1", 6), ("SHA1", 8), ("SHA256", 8), ("SHA512", 8)]
)
@pytest.mark.checklist("TOTP-01")
async def test_rfc6238_time_through_http(algorithm: str, digits: int) -> None:
    clock = FixedClock(RFC_TIME - 90)
    app = make_app(clock, totp_algorithm=algorithm, totp_digits=digits)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock, digits=digits, algorithm=algorithm)
        await relogin(c)
        clock.set(RFC_TIME)
        code = totp(secret, RFC_TIME, digits=digits, algorithm=algorithm)
        assert len(code) == digits
        r = await submit_code(c, code)
        assert r.status_code == 303, r.text
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("SES-01")
async def test_session_id_changes_on_verification(clock: FixedClock) -> None:
    codec = session_codec(Keyring([SECRET_KEY]))
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        secret = await enroll(c, clock)
        await relogin(c)
        page = await challenge_page(c)
        before = cookie(c)
        assert before is not None
        clock.advance(30)
        r = await submit_code(c, totp(secret, clock()), csrf=csrf_of(page.text))
        assert r.status_code == 303
        after = cookie(c)
        assert after is not None
        assert after != before
        claims_before, claims_after = codec.decode(before), codec.decode(after)
        assert claims_before is not None
        assert claims_after is not None
        assert claims_before.session_id != claims_after.session_id
        assert not claims_before.verified
        assert claims_after.verified
        assert (await c.get("/account", headers=HTML)).status_code == 200

        # Replaying the cookie from before the code does not give access.
        set_cookie(c, before)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge")


@pytest.mark.checklist("LOG-01", "LOG-03")
async def test_events_emitted_and_no_secret_or_code_leaks(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Any] = []
    app = make_app(clock, on_event=events.append)
    submitted: list[str] = []
    async with client(app) as c:
        await login(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(r.text)
        csrf = csrf_of(r.text)
        bad = wrong_code(secret, clock())
        submitted.append(bad)
        r = await c.post("/_mfa/enroll/totp", data={"csrf": csrf, "code": bad}, headers=HTML)
        assert r.status_code == 400
        enroll_code = totp(secret, clock())
        submitted.append(enroll_code)
        r = await c.post(
            "/_mfa/enroll/totp", data={"csrf": csrf, "code": enroll_code}, headers=HTML
        )
        assert r.status_code == 303

        await relogin(c)
        r = await submit_code(c, enroll_code)  # a replay of the enrollment step
        assert r.status_code == 400
        bad2 = wrong_code(secret, clock() + 3000)
        submitted.append(bad2)
        r = await submit_code(c, bad2)
        assert r.status_code == 400
        clock.advance(30)
        good = totp(secret, clock())
        submitted.append(good)
        r = await submit_code(c, good)
        assert r.status_code == 303

    names = [e["event"] for e in events]
    for expected in ("verify_failed", "verify_succeeded", "enrolled", "totp_replay"):
        assert expected in names, names
    assert names.count("verify_succeeded") == 2  # enrollment and challenge
    assert names.count("verify_failed") == 3
    assert all(e.get("user") == "alice" for e in events)
    replay = next(e for e in events if e["event"] == "totp_replay")
    assert replay["step"] == "challenge"

    secrets_ = {secret, " ".join(secret[i : i + 4] for i in range(0, 32, 4)), secret.lower()}
    for e in events:
        text = repr(e)
        for s in secrets_:
            assert s not in text
        for code in submitted:
            assert code not in text, (code, e)
    records = caplog.records
    assert any(rec.name == "mfa_middleware" for rec in records)
    for rec in records:
        texts = [rec.getMessage(), repr(rec.args), repr(getattr(rec, "mfa_event", None))]
        if rec.exc_text:
            texts.append(rec.exc_text)
        for text in texts:
            for s in secrets_:
                assert s not in text, rec
            for code in submitted:
                assert code not in text, (code, rec)
