"""Recovery codes, the lost-device email link (through a real SMTP server, aiosmtpd), turning
2FA off, and what the audit trail says about them, end to end through the demo app."""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
from examples.starlette_app import users as demo_users

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core import recovery
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.core.tokens import session_codec
from mfa_middleware.runtime import Runtime
from tests.e2e import helpers
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    is_verified,
    login,
    logout,
    make_app,
    next_of,
    relogin,
    secret_of,
    smtp_sender,
    submit_code,
    totp,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox

pytestmark = pytest.mark.anyio

PUBLIC_URL = "https://app.example.com"
CODES_TITLE = "Save your recovery codes"
CODE_RE = re.compile(r"<li><code>([0-9a-z-]+)</code></li>")
CODE_FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")
LINK_RE = re.compile(r"https://app\.example\.com(/_mfa/lost/confirm\?token=([A-Za-z0-9_\-]+))")
NOTICE_RE = re.compile(r'<p class="notice ok" role="status">(.*?)</p>', re.S)
INVALID_LINK = "This link is invalid, was already used, or has expired."
CONTACT_ADMIN = "Contact your administrator"
SENT = "If your account has an email address, we sent it a link"


# --- fixtures and steps ----------------------------------------------------------------------


def recovery_app(clock: FixedClock, store: Any = None, **options: Any) -> Any:
    options.setdefault("recovery_code_count", 10)
    return make_app(clock, store=store, **options)


def lost_app(clock: FixedClock, mailbox: Mailbox, store: Any = None, **options: Any) -> Any:
    options.setdefault("public_url", PUBLIC_URL)
    options.setdefault("email_sender", smtp_sender(mailbox))
    return recovery_app(clock, store, **options)


def runtime(store: Any, clock: FixedClock) -> Runtime:
    return Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock))


async def enroll_with_codes(
    c: httpx.AsyncClient, clock: FixedClock, next_path: str = "/account"
) -> tuple[str, list[str], httpx.Response]:
    """Enroll the logged-in user in TOTP; returns the secret, the recovery codes shown once,
    and the codes page."""
    r = await c.get("/_mfa/enroll/totp", headers=HTML)
    assert r.status_code == 200, r.text
    secret = secret_of(r.text)
    done = await c.post(
        "/_mfa/enroll/totp",
        headers=HTML,
        data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": next_path},
    )
    assert done.status_code == 200, done.text
    assert CODES_TITLE in done.text
    return secret, CODE_RE.findall(done.text), done


async def use_recovery(
    c: httpx.AsyncClient, code: str, next_path: str = "/account"
) -> httpx.Response:
    page = await c.get("/_mfa/recovery", headers=HTML)
    assert page.status_code in (200, 429), page.text  # 429: locked (the sign-out form's csrf)
    return await c.post(
        "/_mfa/recovery",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "code": code, "next": next_path},
    )


async def step_up(c: httpx.AsyncClient, clock: FixedClock, secret: str, location: str) -> None:
    """Answer the "Confirm it's you" page at `location` with a fresh TOTP code."""
    page = await c.get(location, headers=HTML)
    assert page.status_code == 200, page.text
    assert "Confirm it's you" in html.unescape(page.text)
    clock.advance(30)
    r = await c.post(
        "/_mfa/challenge",
        headers=HTML,
        data={
            "csrf": csrf_of(page.text),
            "code": totp(secret, clock()),
            "reauth": "1",
            "next": next_of(page.text),
        },
    )
    assert r.status_code == 303, r.text


def assert_step_up(location: str, back_to: str) -> None:
    """`location` is the "Confirm it's you" page, coming back to `back_to` afterwards."""
    path, _, query = location.partition("?")
    assert path == "/_mfa/challenge"
    assert parse_qs(query) == {"reauth": ["1"], "next": [back_to]}


async def settings_page(c: httpx.AsyncClient) -> str:
    r = await c.get("/_mfa/settings", headers=HTML)
    assert r.status_code == 200, r.text
    return r.text


def codes_left(store: Any, clock: FixedClock, user: str = "alice") -> int | None:
    return runtime(store, clock).run(recovery.codes_left(user))


def user_record(store: Any, user: str = "alice") -> UserRecord:
    return UserRecord.from_doc(store.get(user_key(user)))


def messages_about(mailbox: Mailbox, subject_part: str, to: str = "alice@example.com") -> list[str]:
    return [
        mailbox.text_of(m)
        for m in mailbox.messages
        if subject_part in str(m["Subject"]) and m["To"] == to
    ]


def reset_links(mailbox: Mailbox) -> list[tuple[str, str]]:
    """(path and query, token) of every lost-device link emailed to alice, oldest first."""
    found = []
    for text in messages_about(mailbox, "reset two-step verification"):
        found += LINK_RE.findall(text)
    return found


async def ask_for_link(c: httpx.AsyncClient) -> httpx.Response:
    page = await c.get("/_mfa/lost", headers=HTML)
    assert page.status_code == 200, page.text
    assert "Email me a reset link" in page.text
    r = await c.post("/_mfa/lost", headers=HTML, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200, r.text
    assert SENT in r.text
    return r


async def open_link(c: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET the emailed link: a dead one (used, expired, someone else's) says so at once, with
    no form; a live one shows the confirm form, which is then POSTed (spends the link)."""
    page = await c.get(path, headers=HTML)
    if page.status_code == 400:
        assert INVALID_LINK in page.text
        assert 'name="token"' not in page.text
        return page
    assert page.status_code == 200, page.text
    assert "Reset and set up again" in page.text
    token = re.search(r'name="token" value="([^"]*)"', page.text)
    assert token
    return await c.post(
        "/_mfa/lost/confirm",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "token": html.unescape(token.group(1))},
    )


async def expect_logged_out(c: httpx.AsyncClient) -> None:
    r = await c.get("/account", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


# --- recovery codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust_duration", "continue_to"),
    [(0, "/account"), ("30d", "/_mfa/trust?next=%2Faccount")],
)
async def test_codes_are_shown_once_after_the_first_enrollment(
    clock: FixedClock, trust_duration: Any, continue_to: str
) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store, trust_duration=trust_duration)
    async with client(app) as c:
        await login(c)
        _, codes, page = await enroll_with_codes(c, clock)
        assert len(codes) == 10
        assert len(set(codes)) == 10
        assert all(CODE_FORMAT.fullmatch(code) for code in codes), codes
        download = re.search(r'<a [^>]*href="(data:text/plain[^"]*)"[^>]*download=', page.text)
        assert download, "no download link"
        text = unquote(html.unescape(download.group(1)))
        assert all(code in text for code in codes)
        follow = re.search(r'<a class="button primary" href="([^"]*)"', page.text)
        assert follow
        assert html.unescape(follow.group(1)) == continue_to
        assert (await c.get(html.unescape(follow.group(1)), headers=HTML)).status_code == 200
        assert await is_verified(c)  # the codes page carried the verified session cookie
        settings = await settings_page(c)
        assert not any(code in settings for code in codes)
        # a later enrollment (a change of method) keeps the codes and shows none
        clock.advance(60)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.status_code == 200
        again = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={
                "csrf": csrf_of(r.text),
                "code": totp(secret_of(r.text), clock()),
                "next": "/account",
            },
        )
        assert again.status_code == 303
        assert CODES_TITLE not in again.text
        assert codes_left(store, clock) == 10


@pytest.mark.checklist("RC-02")
async def test_each_code_logs_in_once(clock: FixedClock) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store)
    async with client(app) as c:
        await login(c)
        _, codes, _ = await enroll_with_codes(c, clock)
        await relogin(c)
        challenge = await c.get("/_mfa/challenge", params={"next": "/account"}, headers=HTML)
        link = re.search(r'<a href="(/_mfa/recovery[^"]*)">Use a recovery code</a>', challenge.text)
        assert link, "no recovery link on the challenge page"
        page = await c.get(html.unescape(link.group(1)), headers=HTML)
        assert page.status_code == 200
        assert "Use a recovery code" in page.text
        assert 'action="/_mfa/recovery"' in page.text
        r = await use_recovery(c, codes[0])
        assert r.status_code == 200  # no trust prompt after a recovery code: how many are left
        text = html.unescape(r.text)
        assert "You signed in with a recovery code" in text
        assert "You have 9 unused recovery codes left." in text
        assert '<a class="button primary" href="/account">Continue</a>' in text
        assert await is_verified(c)
        await relogin(c)
        refused = await use_recovery(c, codes[0])
        assert refused.status_code == 400
        assert "That recovery code didn't work. Check it" in html.unescape(refused.text)
        assert not await is_verified(c)
        assert (await use_recovery(c, codes[1])).status_code == 200
        assert await is_verified(c)
        assert codes_left(store, clock) == 8
        assert "You have 8 unused recovery codes." in await settings_page(c)


async def test_typed_codes_are_normalised(clock: FixedClock) -> None:
    app = recovery_app(clock)
    typings = [
        str.upper,
        lambda code: code.replace("-", " "),
        lambda code: code.replace("-", ""),
        lambda code: f"  {code.upper().replace('-', '')}  ",
        lambda code: " ".join(code.replace("-", "")),
    ]
    async with client(app) as c:
        await login(c)
        _, codes, _ = await enroll_with_codes(c, clock)
        for code, typed in zip(codes[: len(typings)], typings, strict=True):
            await relogin(c)
            r = await use_recovery(c, typed(code))
            assert r.status_code == 200, (typed(code), r.text)
            assert "You signed in with a recovery code" in r.text
            assert await is_verified(c)


@pytest.mark.checklist("RC-06")
async def test_regenerating_needs_a_recent_code_and_replaces_the_set(clock: FixedClock) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store)
    async with client(app) as c:
        await login(c)
        secret, old, _ = await enroll_with_codes(c, clock)
        clock.advance(16 * 60)  # past the 15-minute reauth window
        settings = await settings_page(c)
        assert 'action="/_mfa/recovery/regenerate"' in settings
        r = await c.post("/_mfa/recovery/regenerate", headers=HTML, data={"code": "x"})
        assert r.status_code == 403  # no CSRF token
        r = await c.post(
            "/_mfa/recovery/regenerate", headers=HTML, data={"csrf": csrf_of(settings)}
        )
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/settings")
        assert CODES_TITLE not in r.text
        assert codes_left(store, clock) == 10
        await step_up(c, clock, secret, r.headers["location"])
        settings = await settings_page(c)
        page = await c.post(
            "/_mfa/recovery/regenerate", headers=HTML, data={"csrf": csrf_of(settings)}
        )
        assert page.status_code == 200
        assert CODES_TITLE in page.text
        assert page.headers["cache-control"] == "no-store"
        new = CODE_RE.findall(page.text)
        assert len(new) == 10
        assert not set(new) & set(old)
        assert '<a class="button primary" href="/_mfa/settings">' in page.text
        assert codes_left(store, clock) == 10
        await relogin(c)
        assert (await use_recovery(c, old[0])).status_code == 400
        assert (await use_recovery(c, new[0])).status_code == 200
        assert await is_verified(c)


async def test_settings_show_the_codes_left_and_warn_when_few(clock: FixedClock) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store)
    rt = runtime(store, clock)
    async with client(app) as c:
        await login(c)
        _, codes, _ = await enroll_with_codes(c, clock)
        page = await settings_page(c)
        assert "You have 10 unused recovery codes." in page
        assert "Create new ones soon." not in page
        for code in codes[:6]:
            assert rt.run(recovery.use_code("alice", code, clock(), rt.keyring, rt.limits)).ok
        page = await settings_page(c)
        assert "You have 4 unused recovery codes." in page
        assert "Create new ones soon." not in page
        assert (await use_recovery_in_new_login(c, codes[6])).status_code == 200
        page = await settings_page(c)
        assert '<p class="notice locked">You have 3 unused recovery codes.' in page
        assert "Create new ones soon." in page


async def use_recovery_in_new_login(c: httpx.AsyncClient, code: str) -> httpx.Response:
    await relogin(c)
    return await use_recovery(c, code)


async def test_wrong_recovery_codes_count_toward_the_lockout(clock: FixedClock) -> None:
    events: list[dict[str, Any]] = []
    app = recovery_app(clock, max_attempts=3, on_event=events.append)
    async with client(app) as c:
        await login(c)
        secret, codes, _ = await enroll_with_codes(c, clock)
        await relogin(c)
        clock.advance(30)
        r = await submit_code(c, wrong_code(secret, clock()))  # a wrong TOTP code: 1
        assert r.status_code == 400
        r = await use_recovery(c, "0000-0000-0000-0000")  # well-formed, not in the set: 2
        assert r.status_code == 400
        assert "(1 attempt left)" in r.text
        r = await use_recovery(c, "not a code")  # cannot be a code: no guess, nothing counted
        assert r.status_code == 400
        assert "16 letters and digits" in r.text
        r = await use_recovery(c, "0000-0000-0000-0001")  # 3
        assert r.status_code == 429
        assert "Too many wrong codes" in r.text
        # locked: the pages say so before any code is typed, and neither a good recovery code
        # nor a good TOTP code is evaluated
        for path in ("/_mfa/recovery", "/_mfa/challenge"):
            page = await c.get(path, headers=HTML)
            assert page.status_code == 429
            assert "Too many wrong codes" in page.text
            assert 'name="code"' not in page.text
        assert (await use_recovery(c, codes[0])).status_code == 429
        assert (await submit_code(c, totp(secret, clock()))).status_code == 429
        assert not await is_verified(c)
        locked = [e for e in events if e["event"] == "locked_out"]
        assert locked
        assert locked[0]["method"] == "recovery"
        assert locked[0]["user"] == "alice"
        clock.advance(61)
        assert (await use_recovery(c, codes[0])).status_code == 200  # not spent while locked
        assert await is_verified(c)


@pytest.mark.checklist("RC-03")
async def test_the_store_holds_no_plaintext_codes(clock: FixedClock) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store)
    async with client(app) as c:
        await login(c)
        _, codes, _ = await enroll_with_codes(c, clock)
    doc = store.get(Key("recovery", "alice"))
    assert doc is not None
    assert len(doc["hashes"]) == 10
    assert len({salt for salt, _ in doc["hashes"]}) == 10
    assert len({digest for _, digest in doc["hashes"]}) == 10
    dumped = json.dumps(doc).lower()
    for code in codes:  # (a 4-character group alone may occur in base64 text by chance)
        for form in (code, code.replace("-", "")):
            assert form not in dumped
    # nor anywhere else the user's records live
    for key in (user_key("alice"), Key("throttle", "alice"), Key("pending_totp", "alice")):
        text = json.dumps(store.get(key)).lower()
        assert not any(code.replace("-", "") in text for code in codes)


# --- the lost-device link --------------------------------------------------------------------


@pytest.mark.checklist("SES-14", "RST-01", "RST-04", "RST-05", "RST-06", "TD-03")
async def test_lost_device_link_resets_with_the_same_users_login_only(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = lost_app(clock, mailbox, store, trust_duration="30d", on_event=events.append)
    async with client(app) as trusted, client(app) as alice, client(app) as bob:
        # alice enrolls in one browser and trusts it: another session of hers
        await login(trusted)
        _, old_codes, _ = await enroll_with_codes(trusted, clock)
        prompt = await trusted.get("/_mfa/trust?next=/account", headers=HTML)
        await trusted.post(
            "/_mfa/trust",
            headers=HTML,
            data={"csrf": csrf_of(prompt.text), "choice": "trust", "next": "/account"},
        )
        await relogin(trusted)
        assert await is_verified(trusted)  # the trusted device skips the code
        # in another browser she lost her device
        await login(alice)
        assert not await is_verified(alice)
        challenge = await alice.get("/_mfa/challenge", headers=HTML)
        assert '<a href="/_mfa/lost">' in challenge.text
        await ask_for_link(alice)
        links = reset_links(mailbox)
        assert len(links) == 1
        path, token = links[0]
        assert len(token) >= 32
        # bob, logged in and verified, opens alice's link: refused, nothing changes
        await login(bob, "bob")
        await enroll_with_codes(bob, clock)
        refused = await open_link(bob, path)
        assert refused.status_code == 400
        assert INVALID_LINK in refused.text
        forged = await bob.post(  # and posting alice's token from bob's session
            "/_mfa/lost/confirm", headers=HTML, data={"csrf": csrf_of(refused.text), "token": token}
        )
        assert forged.status_code == 400
        assert kinds(user_record(store)) == ["totp"]
        assert codes_left(store, clock) == 10
        assert await is_verified(trusted)
        assert await is_verified(bob)
        # nobody logged in: the login page
        async with client(app) as anonymous:
            r = await anonymous.get(path, headers=HTML)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/login")
        # alice herself, with her password login
        epoch = user_record(store).epoch
        devices_before = {name for name, _ in store.scan("device", "alice")}
        done = await open_link(alice, path)
        assert done.status_code == 303
        assert done.headers["location"] == "/_mfa/enroll?off=1"
        assert store.scan("device", "alice") == []  # every device went with the reset
        landing = await alice.get(done.headers["location"], headers=HTML)
        assert "Two-step verification is now off for your account" in landing.text
        assert kinds(user_record(store)) == []
        assert user_record(store).epoch == epoch + 1
        assert store.get(Key("recovery", "alice")) is None
        # the browser that goes on to set it up again is a new, untrusted device
        after = store.scan("device", "alice")
        assert not {name for name, _ in after} & devices_before
        assert not any(doc.get("trusted_until") for _, doc in after)
        r = await alice.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")
        await expect_logged_out(trusted)  # her other session ended
        assert await is_verified(bob)  # bob's did not
        assert kinds(user_record(store, "bob")) == ["totp"]
        notices = messages_about(mailbox, "two-step verification was reset")
        assert len(notices) == 1
        assert "trusted devices and recovery codes were removed" in notices[0]
        # the link works once
        again = await open_link(alice, path)
        assert again.status_code == 400
        assert again.request.method == "GET"  # said on opening it, before any button
        assert INVALID_LINK in again.text
        resets = [e for e in events if e["event"] == "mfa_reset"]
        assert [(e["user"], e["actor"]) for e in resets] == [("alice", "self:lost-device")]
        assert [e["user"] for e in events if e["event"] == "reset_link_sent"] == ["alice"]
        # she enrolls again: new codes; the old ones and the old trust are gone
        clock.advance(30)
        _, new_codes, _ = await enroll_with_codes(alice, clock)
        assert not set(new_codes) & set(old_codes)
        await relogin(alice)
        assert (await use_recovery(alice, old_codes[1])).status_code == 400
        await login(trusted)
        assert not await is_verified(trusted)  # the once-trusted browser needs a code


@pytest.mark.checklist("RST-01")
async def test_an_expired_link_is_refused(clock: FixedClock, mailbox: Mailbox) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        await ask_for_link(c)
        ((path, _),) = reset_links(mailbox)
        clock.advance(3600 + 1)
        r = await open_link(c, path)
        assert r.status_code == 400
        assert r.request.method == "GET"  # said on opening it, before any button
        assert INVALID_LINK in r.text
        assert kinds(user_record(store)) == ["totp"]
        assert codes_left(store, clock) == 10
        # a new link, asked for now, works
        await ask_for_link(c)
        links = reset_links(mailbox)
        assert len(links) == 2
        assert (await open_link(c, links[1][0])).status_code == 303
        assert kinds(user_record(store)) == []


async def test_a_link_within_its_hour_still_works(clock: FixedClock, mailbox: Mailbox) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        await ask_for_link(c)
        ((path, _),) = reset_links(mailbox)
        clock.advance(3600 - 5)
        assert (await open_link(c, path)).status_code == 303
        assert kinds(user_record(store)) == []


async def test_asking_twice_within_five_minutes_sends_one_email(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        first = await ask_for_link(c)
        clock.advance(120)
        second = await ask_for_link(c)
        assert len(reset_links(mailbox)) == 1
        assert NOTICE_RE.findall(first.text) == NOTICE_RE.findall(second.text)
        clock.advance(181)  # more than 5 minutes after the first
        await ask_for_link(c)
        links = reset_links(mailbox)
        assert len(links) == 2
        assert links[0][1] != links[1][1]
        # the newest link replaced the older one
        assert (await open_link(c, links[0][0])).status_code == 400
        assert kinds(user_record(store)) == ["totp"]
        assert (await open_link(c, links[1][0])).status_code == 303


@pytest.mark.parametrize("missing", ["public_url", "email_sender"])
@pytest.mark.checklist("RST-02")
async def test_without_public_url_or_email_sender_contact_the_administrator(
    clock: FixedClock, mailbox: Mailbox, missing: str
) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store, **{missing: None})
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        page = await c.get("/_mfa/lost", headers=HTML)
        assert page.status_code == 200
        assert CONTACT_ADMIN in page.text
        assert 'action="/_mfa/lost"' not in page.text
        r = await c.post("/_mfa/lost", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        assert reset_links(mailbox) == []
        assert store.get(Key("reset_link", "alice")) is None


@pytest.mark.checklist("RST-03")
async def test_the_answer_does_not_tell_whether_an_address_exists(
    clock: FixedClock, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    carol = demo_users.DemoUser("carol", "", demo_users.hash_password("carol-password"))
    monkeypatch.setitem(demo_users.USERS, "carol", carol)
    monkeypatch.setitem(helpers.PASSWORDS, "carol", "carol-password")
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    answers = {}
    async with client(app) as c:
        for user in ("alice", "carol"):
            await login(c, user)
            await enroll_with_codes(c, clock)
            await relogin(c, user)
            page = await c.get("/_mfa/lost", headers=HTML)
            r = await c.post("/_mfa/lost", headers=HTML, data={"csrf": csrf_of(page.text)})
            answers[user] = (r.status_code, NOTICE_RE.findall(r.text))
            await logout(c)
    assert answers["alice"] == answers["carol"]
    assert answers["alice"][0] == 200
    assert SENT in answers["alice"][1][0]
    assert len(reset_links(mailbox)) == 1  # alice's; carol has no address
    assert store.get(Key("reset_link", "carol")) is None


# --- turning 2FA off -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["optional", "required"])
@pytest.mark.checklist("ENR-03", "SES-14", "RST-06")
async def test_disable_needs_a_recent_code_then_resets(clock: FixedClock, mode: str) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = recovery_app(clock, store, mode=mode, on_event=events.append)
    async with client(app) as c, client(app) as other:
        await login(c)
        secret, _, _ = await enroll_with_codes(c, clock)
        await login(other)
        clock.advance(30)
        assert (await submit_code(other, totp(secret, clock()))).status_code == 303
        assert await is_verified(other)
        clock.advance(16 * 60)
        settings = await settings_page(c)
        assert '<a href="/_mfa/disable">' in settings
        r = await c.get("/_mfa/disable", headers=HTML)
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/disable")
        step_up_page = r.headers["location"]
        r = await c.post("/_mfa/disable", headers=HTML, data={"csrf": csrf_of(settings)})
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/disable")
        assert kinds(user_record(store)) == ["totp"]  # nothing happened without the code
        await step_up(c, clock, secret, step_up_page)
        confirm = await c.get("/_mfa/disable", headers=HTML)
        assert confirm.status_code == 200
        assert "Turn off two-step verification?" in confirm.text
        assert ("required on this site" in confirm.text) is (mode == "required")
        button = "Turn off and set up again" if mode == "required" else "Turn off two-step"
        assert f'<button type="submit" class="primary danger">{button}' in confirm.text
        assert 'class="notice locked"' not in confirm.text  # a note, not an error
        r = await c.post("/_mfa/disable", headers=HTML, data={"code": "x"})
        assert r.status_code == 403
        assert kinds(user_record(store)) == ["totp"]
        r = await c.post("/_mfa/disable", headers=HTML, data={"csrf": csrf_of(confirm.text)})
        assert r.status_code == 303
        assert kinds(user_record(store)) == []
        assert store.get(Key("recovery", "alice")) is None
        await expect_logged_out(other)
        resets = [e for e in events if e["event"] == "mfa_reset"]
        assert [(e["user"], e["actor"]) for e in resets] == [("alice", "user:alice")]
        landing = (await c.get(r.headers["location"], headers=HTML)).text
        assert "Two-step verification is now off for your account" in landing
        if mode == "optional":
            assert r.headers["location"] == "/_mfa/settings?off=1"
            assert "Off." in landing
            assert await is_verified(c)
            await relogin(c)
            assert await is_verified(c)  # no code asked any more
        else:
            assert r.headers["location"] == "/_mfa/enroll?off=1"
            assert "set it up again below" in landing
            r = await c.get("/account", headers=HTML)
            assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
            await relogin(c)
            r = await c.get("/account", headers=HTML)
            assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"


# --- events and secrets ----------------------------------------------------------------------


@pytest.mark.checklist("LOG-01")
async def test_events_are_emitted_and_carry_no_secrets(
    clock: FixedClock, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = lost_app(clock, mailbox, store, on_event=events.append, max_attempts=3)
    secrets_seen: list[str] = []
    sessions = session_codec(Keyring([SECRET_KEY]))

    async def cookies_are_secrets(response: httpx.Response) -> None:
        for value in response.cookies.values():  # every MFA session and device cookie set
            claims = sessions.decode(value)
            secrets_seen.extend([value] + ([claims.session_id] if claims else []))

    async with client(app) as c:
        c.event_hooks["response"].append(cookies_are_secrets)
        # alice: TOTP, recovery codes, one used, then the lost-device reset
        await login(c)
        secret, codes, _ = await enroll_with_codes(c, clock)
        secrets_seen += [secret, secret.lower()]
        secrets_seen += codes + [code.replace("-", "") for code in codes]
        await relogin(c)
        assert (await use_recovery(c, codes[0])).status_code == 200
        await relogin(c)
        await ask_for_link(c)
        ((_, token),) = reset_links(mailbox)
        secrets_seen.append(token)
        page = await c.get("/_mfa/lost/confirm", headers=HTML)  # no token in any URL
        r = await c.post(
            "/_mfa/lost/confirm", headers=HTML, data={"csrf": csrf_of(page.text), "token": token}
        )
        assert r.status_code == 303
        await logout(c)
        # bob: a code by email, then locked out by wrong guesses
        await login(c, "bob")
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post("/_mfa/enroll/email", headers=HTML, data={"csrf": csrf_of(page.text)})
        code_page = await c.get(r.headers["location"], headers=HTML)
        emailed = mailbox.last_code()
        secrets_seen.append(emailed)
        r = await c.post(
            "/_mfa/enroll/code",
            headers=HTML,
            data={"csrf": csrf_of(code_page.text), "code": emailed},
        )
        assert r.status_code == 200  # bob's own recovery codes
        bob_codes = CODE_RE.findall(r.text)
        secrets_seen += bob_codes
        await relogin(c, "bob")
        await c.get("/_mfa/challenge", headers=HTML)
        secrets_seen.append(mailbox.last_code())
        for _ in range(3):
            await use_recovery(c, "zzzz-zzzz-zzzz-zzzz")
    names = [e["event"] for e in events]
    for name in (
        "enrolled",
        "recovery_codes_generated",
        "recovery_code_used",
        "reset_link_sent",
        "mfa_reset",
        "locked_out",
    ):
        assert name in names, name
    generated = [e for e in events if e["event"] == "recovery_codes_generated"]
    assert [(e["user"], e["count"]) for e in generated] == [("alice", 10), ("bob", 10)]
    used = next(e for e in events if e["event"] == "recovery_code_used")
    assert (used["user"], used["left"]) == ("alice", 9)
    reset = next(e for e in events if e["event"] == "mfa_reset")
    assert (reset["user"], reset["actor"]) == ("alice", "self:lost-device")
    assert next(e for e in events if e["event"] == "locked_out")["user"] == "bob"
    enrolled = [(e["user"], e["method"]) for e in events if e["event"] == "enrolled"]
    assert ("alice", "totp") in enrolled
    assert ("bob", "email") in enrolled
    logged = [
        r.getMessage() + repr(r.__dict__)
        for r in caplog.records
        if not r.name.startswith("mail.log")  # aiosmtpd's own debug log shows the mail
    ]
    assert any("mfa_reset" in line for line in logged)
    text = repr(events) + "\n".join(logged)
    for value in secrets_seen:
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text), value


# --- checklist items on these pages ------------------------------------------------------------


@pytest.mark.checklist("ENR-03")
async def test_turning_2fa_off_touches_only_the_callers_own_account(clock: FixedClock) -> None:
    store = MemoryStore()
    app = recovery_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await login(bob, "bob")
        await enroll_with_codes(bob, clock)
        await login(alice)
        await enroll_with_codes(alice, clock)
        bobs = store.get(user_key("bob"))
        page = await alice.get("/_mfa/disable", headers=HTML)
        assert page.status_code == 200
        naming_bob = {"user": "bob", "user_id": "bob", "username": "bob"}
        r = await alice.post(
            "/_mfa/disable", headers=HTML, data={"csrf": csrf_of(page.text), **naming_bob}
        )
        assert r.status_code == 303
        assert kinds(user_record(store)) == []
        assert store.get(user_key("bob")) == bobs
        assert codes_left(store, clock, "bob") == 10
        assert await is_verified(bob)


@pytest.mark.checklist("RST-02")
async def test_a_strict_deployment_caps_the_lost_device_link_at_ten_minutes(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store, reset_link_ttl="10m")
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        await ask_for_link(c)
        ((path, _),) = reset_links(mailbox)
        assert "for 10 minutes" in messages_about(mailbox, "reset two-step verification")[0]
        clock.advance(601)
        r = await open_link(c, path)
        assert r.status_code == 400
        assert kinds(user_record(store)) == ["totp"]


@pytest.mark.checklist("RST-04")
async def test_the_link_names_the_configured_origin_and_its_page_leaks_nothing(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    spoofed = {
        **HTML,
        "host": "evil.example",
        "x-forwarded-host": "evil.example",
        "forwarded": "host=evil.example;proto=http",
    }
    async with client(app) as c:
        await login(c)
        await enroll_with_codes(c, clock)
        await relogin(c)
        page = await c.get("/_mfa/lost", headers=spoofed)
        r = await c.post("/_mfa/lost", headers=spoofed, data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        ((path, token),) = reset_links(mailbox)  # https://app.example.com/... (PUBLIC_URL)
        assert not any("evil.example" in mailbox.text_of(m) for m in mailbox.messages)
        assert token not in json.dumps([doc for doc, _ in store._data.values()])
        landing = await c.get(path, headers=HTML)
        assert landing.headers["referrer-policy"] == "no-referrer"
        assert '<meta name="referrer" content="no-referrer">' in landing.text
        assert not re.search(r'(?:src|href|action)="(?:https?:)?//', landing.text)
        assert (await open_link(c, path)).status_code == 303
        assert (await open_link(c, path)).status_code == 400  # once


@pytest.mark.checklist("NOT-01", "RC-05")
async def test_every_change_of_factor_or_codes_is_announced_without_secrets(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    store = MemoryStore()
    app = lost_app(clock, mailbox, store)
    secrets_seen: list[str] = []
    async with client(app) as c:
        await login(c)
        secret, codes, _ = await enroll_with_codes(c, clock)
        secrets_seen += [secret, *codes]
        page = await c.get("/_mfa/enroll/totp", headers=HTML)  # a new app, with a recent code
        new_secret = secret_of(page.text)
        secrets_seen.append(new_secret)
        r = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(new_secret, clock())},
        )
        assert r.status_code == 303
        settings = await settings_page(c)
        r = await c.post(
            "/_mfa/recovery/regenerate", headers=HTML, data={"csrf": csrf_of(settings)}
        )
        fresh = CODE_RE.findall(r.text)
        secrets_seen += fresh
        await relogin(c)
        assert (await use_recovery(c, fresh[0])).status_code == 200
        page = await c.get("/_mfa/disable", headers=HTML)  # the recovery code was just now
        r = await c.post("/_mfa/disable", headers=HTML, data={"csrf": csrf_of(page.text)})
        assert r.headers["location"] == "/_mfa/enroll?off=1"
    subjects = [str(m["Subject"]).removeprefix("Demo app: ") for m in mailbox.messages]
    assert subjects == [
        "two-step verification turned on",
        "a way to sign in was added",  # the second app, beside the first
        "new recovery codes",
        "a recovery code was used",
        "two-step verification was reset",
    ]
    assert {m["To"] for m in mailbox.messages} == {"alice@example.com"}
    for message in mailbox.messages:
        text = mailbox.text_of(message)
        assert "If this wasn't you" in text
        for value in secrets_seen:
            assert value not in text
            assert value.replace("-", "") not in text


@pytest.mark.checklist("RC-04")
async def test_recovery_code_guesses_share_the_lockout_of_codes(clock: FixedClock) -> None:
    app = recovery_app(clock, max_attempts=3)
    async with client(app) as c:
        await login(c)
        secret, codes, _ = await enroll_with_codes(c, clock)
        await relogin(c)
        guesses = ["0000-0000-0000-0000", "zzzz-zzzz-zzzz-zzzz", "1111-2222-3333-4444"]
        statuses = [(await use_recovery(c, guess)).status_code for guess in guesses]
        assert statuses == [400, 400, 429]  # well-formed, wrong: the third locks
        assert (await use_recovery(c, codes[0])).status_code == 429
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 429  # one counter
        assert not await is_verified(c)
        clock.advance(61)
        assert (await use_recovery(c, codes[0])).status_code == 200  # not spent while locked
