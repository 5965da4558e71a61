"""The whole journey through HTTP: login, enrollment, challenge, replay, lockout, RFC 6238 times."""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import replace
from email.utils import formatdate
from typing import Any

import pyotp
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.flows import PENDING_TOTP_TTL
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import UserRecord, user_key
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
    is_verified,
    login,
    logout,
    make_app,
    mfa_set_cookie,
    relogin,
    secret_of,
    set_cookie,
    sign_up,
    submit_code,
    totp,
    wrong_code,
)

JSON = {"accept": "application/json"}

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


@pytest.mark.checklist("TOTP-03")
async def test_the_drift_window_is_one_step_either_way(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(600)
        now = clock()
        for offset in (-90, -60, 60, 90):  # two steps or more away: refused
            assert (await submit_code(c, totp(secret, now + offset))).status_code == 400
        assert (await submit_code(c, totp(secret, now - 30))).status_code == 303
        await relogin(c)
        assert (await submit_code(c, totp(secret, now + 30))).status_code == 303
    narrow = make_app(clock, totp_window=0)
    async with client(narrow) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(600)
        assert (await submit_code(c, totp(secret, clock() - 30))).status_code == 400
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303


@pytest.mark.checklist("TOTP-02")
async def test_a_configured_time_step_is_the_one_verified(clock: FixedClock) -> None:
    """`totp_period=60`: codes of 60-second steps work, codes of 30-second steps do not (the
    app and the authenticator agree on the period through the QR code)."""
    clock.set(1_700_000_040)  # mid-way through a 60 s step: its 30 s codes differ
    app = make_app(clock, totp_period=60, totp_window=0)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        minute = pyotp.TOTP(secret, interval=60)
        half_minute = pyotp.TOTP(secret, interval=30)
        assert half_minute.at(clock()) != minute.at(clock())
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": half_minute.at(clock())},
        )
        assert r.status_code == 400
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": minute.at(clock())},
        )
        assert r.status_code == 303
        await relogin(c)
        clock.advance(60)
        assert (await submit_code(c, half_minute.at(clock()))).status_code == 400
        assert (await submit_code(c, minute.at(clock()))).status_code == 303


@pytest.mark.checklist("TOTP-09")
async def test_the_server_clock_alone_decides_which_codes_are_current(clock: FixedClock) -> None:
    """A client naming the time of an old code (form fields, Date, X-Client-Time) changes
    nothing: the code is judged at the server's time."""
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        then = clock() + 30  # a step never used
        old = totp(secret, then)
        clock.advance(600)
        await relogin(c)
        page = await challenge_page(c)
        claimed = {"ts": str(int(then)), "for_time": str(int(then)), "time": str(int(then))}
        r = await c.post(
            "/_mfa/challenge",
            data={"csrf": csrf_of(page.text), "code": old, "next": "/account", **claimed},
            headers={**HTML, "date": formatdate(then, usegmt=True), "x-client-time": str(then)},
        )
        assert r.status_code == 400
        assert not await is_verified(c)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303


@pytest.mark.checklist("TOTP-07")
async def test_the_secret_is_never_shown_again_and_is_kept_encrypted(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store, recovery_code_count=10)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        assert done.status_code == 200  # the recovery codes page
        seen = [done.text]
        for path in ("/_mfa/settings", "/_mfa/enroll", "/_mfa/devices", "/_mfa/enroll/totp"):
            r = await c.get(path, headers=HTML)
            assert r.status_code == 200, path
            seen.append(r.text)
        assert secret_of(seen[-1]) != secret  # setting up a new app shows a new secret
        await relogin(c)
        seen.append((await challenge_page(c)).text)
        for text in seen:
            assert secret not in text.replace(" ", "")
            assert "otpauth" not in text
    dumped = json.dumps([doc for doc, _ in store._data.values()])
    for form in (secret, secret.lower(), " ".join(re.findall("....", secret))):
        assert form not in dumped
    stored = UserRecord.from_doc(store.get(user_key("alice"))).factors()[0].secret
    assert stored is not None
    assert Keyring([SECRET_KEY]).decrypt(stored) == secret


@pytest.mark.checklist("ENR-02")
async def test_a_shown_secret_does_nothing_until_confirmed_and_expires(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        first = secret_of(page.text)
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == []
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        clock.advance(PENDING_TOTP_TTL + 1)  # abandoned
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(first, clock())},
        )
        assert r.status_code == 400
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == []
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        second = secret_of(page.text)
        assert second != first
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(first, clock())},
        )
        assert r.status_code == 400
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(second, clock())},
        )
        assert r.status_code == 303
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == ["totp"]


@pytest.mark.checklist("UI-08")
async def test_only_a_right_code_upgrades_the_session(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    codec = session_codec(Keyring([SECRET_KEY]))
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        page = await challenge_page(c)
        pending = cookie(c)
        assert pending is not None
        record = store.get(user_key("alice"))
        clock.advance(30)
        r = await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={
                "csrf": csrf_of(page.text),
                "code": wrong_code(secret, clock()),
                "next": "/account",
                "verified": "1",
                "success": "true",
            },
        )
        assert r.status_code == 400
        assert mfa_set_cookie(r) is None  # no new session cookie of any kind
        assert cookie(c) == pending
        assert store.get(user_key("alice")) == record
        # whatever the client claims afterwards, it is still challenged
        c.cookies.set("mfa_verified", "1")
        r = await c.get("/account?verified=1&mfa=ok", headers={**HTML, "x-mfa-verified": "1"})
        assert r.headers["location"].startswith("/_mfa/challenge")
        claims = codec.decode(pending)
        assert claims is not None
        upgraded = replace(claims, verified_at=int(clock()), method="totp")
        forged = session_codec(Keyring(["f0rged-key-" + "q8Wm2Nv5Bt6Yc4Hj0FsXa1Pe"])).encode(
            upgraded
        )
        set_cookie(c, forged)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")


def _error_of(page: str) -> str:
    match = re.search(r'<p class="error"[^>]*>(.*?)</p>', page, re.S)
    assert match, "no error message"
    return re.sub(r"\d+", "N", match.group(1))


@pytest.mark.checklist("UI-09")
async def test_answers_tell_nothing_before_the_password_and_little_after(
    clock: FixedClock,
) -> None:
    app = make_app(clock, max_attempts=10)
    async with client(app) as c:
        secret = await sign_up(c, clock)  # alice uses 2FA; bob has not enrolled
        await logout(c)
    answers = {}
    for user in ("alice", "bob", "nobody"):
        async with client(app) as c:
            form = await c.get("/login")
            data = {"username": user, "password": "wrong", "csrf": csrf_of(form.text)}
            r = await c.post("/login", data=data)
            # each browser has its own CSRF token (in the page and the session cookie)
            text = re.sub(r'name="csrf" value="[^"]*"', 'name="csrf"', r.text)
            answers[user] = (r.status_code, text, "set-cookie" in r.headers)
    assert answers["alice"] == answers["bob"] == answers["nobody"]
    assert answers["alice"][0] == 400
    async with client(app) as c:
        await login(c)
        clock.advance(30)
        used = totp(secret, clock())
        assert (await submit_code(c, used)).status_code == 303
        await relogin(c)
        wrong = await submit_code(c, wrong_code(secret, clock()))
        reused = await submit_code(c, used)  # accepted a moment ago
        clock.advance(600)
        stale = await submit_code(c, totp(secret, clock() - 300))  # expired long ago
        for r in (wrong, reused, stale):
            assert r.status_code == 400
            assert "Traceback" not in r.text
        assert _error_of(wrong.text) == _error_of(reused.text) == _error_of(stale.text)


@pytest.mark.checklist("UI-10")
async def test_steps_happen_in_order_and_each_once(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(clock, store=store)
    async with client(app) as anonymous:  # no login: no step at all
        for path in ("/_mfa/challenge", "/_mfa/enroll/totp", "/_mfa/enroll/code"):
            r = await anonymous.post(path, data={"code": "123456"}, headers=JSON)
            assert r.status_code == 401, path
            assert r.json()["error"] == "login_required"
    async with client(app) as c:
        await login(c)
        chooser = await c.get("/_mfa/enroll", headers=HTML)
        csrf = csrf_of(chooser.text)
        # confirming an enrollment never started: no secret was shown, no code was sent
        r = await c.post("/_mfa/enroll/totp", headers=HTML, data={"csrf": csrf, "code": "123456"})
        assert r.status_code == 400
        r = await c.post("/_mfa/enroll/code", headers=HTML, data={"csrf": csrf, "code": "123456"})
        assert r.headers["location"] == "/_mfa/enroll"
        r = await c.post("/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": "123456"})
        assert r.headers["location"].startswith("/_mfa/enroll")  # enrollment comes first
        assert kinds(UserRecord.from_doc(store.get(user_key("alice")))) == []
        secret = await enroll(c, clock)
        await relogin(c)
        page = await challenge_page(c)
        clock.advance(30)
        form = {"csrf": csrf_of(page.text), "code": totp(secret, clock()), "next": "/account"}
        assert (await c.post("/_mfa/challenge", headers=HTML, data=form)).status_code == 303
        step = UserRecord.from_doc(store.get(user_key("alice"))).factors()[0].last_step
        replayed = await c.post("/_mfa/challenge", headers=HTML, data=form)
        assert replayed.status_code == 403  # the form of the session before the step
        settings = await c.get("/_mfa/settings", headers=HTML)
        again = await c.post(
            "/_mfa/challenge", headers=HTML, data={**form, "csrf": csrf_of(settings.text)}
        )
        assert again.status_code == 303  # done already: on to next, nothing verified again
        assert again.headers["location"] == "/account"
        assert UserRecord.from_doc(store.get(user_key("alice"))).factors()[0].last_step == step


@pytest.mark.checklist("TOTP-06")
async def test_each_enrollment_shows_a_new_secret_of_160_bits(clock: FixedClock) -> None:
    app = make_app(clock)
    shown = set()
    for _ in range(20):
        async with client(app) as c:  # a new browser, a new login: a new pending secret
            await login(c)
            secret = secret_of((await c.get("/_mfa/enroll/totp", headers=HTML)).text)
            assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) >= 20
            shown.add(secret)
    assert len(shown) == 20
