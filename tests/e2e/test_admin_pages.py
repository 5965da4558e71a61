"""The admin pages (/_mfa/admin) and resetting one user's 2FA through the ops API: who gets
in, what an admin can do, and that nobody else is touched."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from examples.starlette_app.users import DEMO_API_TOKENS

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core import recovery
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from mfa_middleware.core.records import SETTINGS_KEY, UserRecord, user_key
from mfa_middleware.runtime import Runtime
from mfa_middleware.testing import Outbox
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
    relogin,
    secret_of,
    submit_code,
    totp,
    visible,
    wrong_code,
)

pytestmark = pytest.mark.anyio
CODE_RE = re.compile(r"<li><code>([0-9a-z-]+)</code></li>")


def fact(page: str, name: str) -> str:
    """The value next to `name` in the admin page's list of facts about a user."""
    match = re.search(rf"<dt>{re.escape(name)}</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert match, f"no {name!r} on the page"
    return " ".join(match.group(1).split())


def admin_app(clock: FixedClock, store: Any, **options: Any) -> Any:
    options.setdefault("is_admin", lambda p: p.username == "alice")
    options.setdefault("recovery_code_count", 10)
    return make_app(clock, store=store, **options)


def ops(store: Any, clock: FixedClock, events: list[dict[str, Any]] | None = None) -> Admin:
    config = MFAConfig(
        secret_keys=[SECRET_KEY],
        store=store,
        clock=clock,
        on_event=None if events is None else events.append,
    )
    return Admin(Runtime(config), actor="test:ops")


async def enroll(
    c: httpx.AsyncClient, clock: FixedClock, user: str, *, trust: bool = False
) -> tuple[str, list[str]]:
    """Log `user` in and enroll them in TOTP; returns the secret and the recovery codes."""
    await login(c, user)
    r = await c.get("/_mfa/enroll/totp", headers=HTML)
    secret = secret_of(r.text)
    done = await c.post(
        "/_mfa/enroll/totp",
        headers=HTML,
        data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": "/account"},
    )
    assert done.status_code == 200, done.text
    codes = CODE_RE.findall(done.text)
    assert len(codes) == 10
    if trust:
        prompt = await c.get("/_mfa/trust?next=/account", headers=HTML)
        r = await c.post(
            "/_mfa/trust",
            headers=HTML,
            data={
                "csrf": csrf_of(prompt.text),
                "choice": "trust",
                "name": f"{user} laptop",
                "next": "/account",
            },
        )
        assert r.status_code == 303
    assert await is_verified(c)
    return secret, codes


async def admin_page(c: httpx.AsyncClient, query: str = "") -> httpx.Response:
    return await c.get(f"/_mfa/admin{query}", headers=HTML)


async def act(c: httpx.AsyncClient, **form: str) -> httpx.Response:
    page = await admin_page(c)
    assert page.status_code == 200, page.text
    return await c.post("/_mfa/admin", headers=HTML, data={"csrf": csrf_of(page.text), **form})


async def reset(c: httpx.AsyncClient, user: str, **form: str) -> httpx.Response:
    """The admin page's Reset button, then the confirmation page's."""
    asked = await act(c, action="reset", user=user, **form)
    assert asked.status_code == 200, asked.text
    assert "Reset two-step verification for" in asked.text
    data = {"csrf": csrf_of(asked.text), "action": "reset", "user": user, "confirm": "yes"}
    return await c.post("/_mfa/admin", headers=HTML, data={**data, **form})


def record(store: Any, user: str) -> UserRecord:
    return UserRecord.from_doc(store.get(user_key(user)))


def codes_left(store: Any, clock: FixedClock, user: str) -> int | None:
    return ops(store, clock).runtime.run(recovery.codes_left(user))


async def expect_logged_out(c: httpx.AsyncClient) -> None:
    r = await c.get("/account", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def assert_step_up(location: str, back_to: str) -> None:
    path, _, query = location.partition("?")
    assert path == "/_mfa/challenge"
    assert parse_qs(query) == {"reauth": ["1"], "next": [back_to]}


# --- who gets in -----------------------------------------------------------------------------


@pytest.mark.checklist("RST-07")
async def test_a_verified_non_admin_gets_403(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as bob, client(app) as alice:
        await enroll(alice, clock, "alice")
        await enroll(bob, clock, "bob")
        r = await admin_page(bob)
        assert r.status_code == 403
        assert "Access denied" in r.text
        settings = await bob.get("/_mfa/settings", headers=HTML)
        r = await bob.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(settings.text), "action": "reset", "user": "alice"},
        )
        assert r.status_code == 403
        assert kinds(record(store, "alice")) == ["totp"]
        assert await is_verified(alice)


@pytest.mark.checklist("RST-07")
async def test_an_admin_needs_a_recent_code(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        # logged in, not verified: the challenge first
        secret, _ = await enroll(alice, clock, "alice")
        await relogin(alice)
        r = await admin_page(alice)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge")
        clock.advance(30)
        assert (await submit_code(alice, totp(secret, clock()))).status_code == 303
        assert (await admin_page(alice)).status_code == 200
        page = await alice.get("/_mfa/settings", headers=HTML)
        clock.advance(15 * 60 + 1)  # verified, but not recently
        r = await admin_page(alice)
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/admin")
        r = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "action": "reset", "user": "bob"},
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        assert kinds(record(store, "bob")) == ["totp"]  # nothing done
        step_up = await alice.get(r.headers["location"], headers=HTML)
        clock.advance(30)
        r = await alice.post(
            "/_mfa/challenge",
            headers=HTML,
            data={
                "csrf": csrf_of(step_up.text),
                "code": totp(secret, clock()),
                "reauth": "1",
                "next": "/_mfa/admin",
            },
        )
        assert r.headers["location"] == "/_mfa/admin"
        assert (await admin_page(alice)).status_code == 200


@pytest.mark.checklist("SES-18", "RST-07")
async def test_a_trusted_device_does_not_open_the_admin_pages(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, trust_duration="30d")
    async with client(app) as alice:
        await enroll(alice, clock, "alice", trust=True)
        await relogin(alice)
        assert await is_verified(alice)  # by the trusted device, without a code
        r = await admin_page(alice)
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/admin")


async def test_without_is_admin_the_pages_do_not_exist(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, is_admin=None)
    async with client(app) as alice:
        await enroll(alice, clock, "alice")
        r = await admin_page(alice)
        assert r.status_code == 404
        settings = await alice.get("/_mfa/settings", headers=HTML)
        r = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(settings.text), "action": "mode", "mode": "off"},
        )
        assert r.status_code == 404
        assert store.get(SETTINGS_KEY) is None


@pytest.mark.checklist("SES-17", "RST-07")
async def test_missing_or_foreign_csrf_is_refused(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        r = await alice.post("/_mfa/admin", headers=HTML, data={"action": "reset", "user": "bob"})
        assert r.status_code == 403
        bobs = await bob.get("/_mfa/settings", headers=HTML)
        r = await alice.post(
            "/_mfa/admin",
            headers=HTML,
            data={"csrf": csrf_of(bobs.text), "action": "reset", "user": "bob"},
        )
        assert r.status_code == 403
        r = await alice.post("/_mfa/admin", headers=HTML, data={"action": "mode", "mode": "off"})
        assert r.status_code == 403
        assert kinds(record(store, "bob")) == ["totp"]
        assert store.get(SETTINGS_KEY) is None
        assert await is_verified(bob)


# --- what an admin does ----------------------------------------------------------------------


@pytest.mark.checklist("TOTP-07", "RST-08")
async def test_admin_finds_a_user_without_seeing_their_factor(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, trust_duration="30d")
    async with client(app) as alice, client(app) as bob:
        bob_secret, bob_codes = await enroll(bob, clock, "bob", trust=True)
        await enroll(alice, clock, "alice")
        r = await admin_page(alice, "?user=bob")
        assert r.status_code == 200
        page = html.unescape(r.text)
        assert "<h3>bob</h3>" in page
        assert fact(page, "Two-step verification") == "On: 1 way to sign in"
        assert "Authenticator app" in page
        assert fact(page, "Exempt") == "No"
        assert fact(page, "Unused recovery codes") == "10"
        assert fact(page, "Wrong codes in a row") == "0"
        assert "bob laptop" in page
        assert '<span class="badge trusted">Trusted</span>' in page
        assert bob_secret not in page.replace(" ", "")
        assert "otpauth" not in page
        assert "<svg" not in page
        for code in bob_codes:
            assert code not in page
            assert code.replace("-", "") not in page
        nobody = (await admin_page(alice, "?user=nobody")).text
        said = visible(nobody)
        assert "Nobody signed in as nobody yet: no user has that username or user id." in said
        assert "<dt>Two-step verification</dt>" not in nobody  # no empty record shown


@pytest.mark.checklist("SES-11", "RST-10")
async def test_admin_forces_bob_out(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = admin_app(clock, store, on_event=events.append)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        r = await act(alice, action="logout", user="bob")
        assert r.status_code == 303
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=logout"
        done = (await alice.get(r.headers["location"], headers=HTML)).text
        assert "bob is signed out everywhere and must sign in again, with a code." in visible(done)
        await expect_logged_out(bob)
        assert await is_verified(alice)
        assert kinds(record(store, "bob")) == ["totp"]  # still enrolled: a code at next login
        await login(bob, "bob")
        assert not await is_verified(bob)
        forced = [e for e in events if e["event"] == "forced_logout"]
        assert [(e["user"], e["actor"]) for e in forced] == [("bob", "admin:alice")]


@pytest.mark.checklist("RST-05", "RST-06", "RST-10")
async def test_admin_resets_bob_who_must_enroll_again(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    outbox = Outbox()
    app = admin_app(clock, store, trust_duration="30d", on_event=events.append, email_sender=outbox)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob", trust=True)
        await enroll(alice, clock, "alice", trust=True)
        alice_before = store.get(user_key("alice"))
        alice_devices = store.scan("device", "alice")
        asked = await act(alice, action="reset", user="bob")
        assert asked.status_code == 200  # a question first: nothing is done yet
        question = " ".join(visible(asked).split())
        assert "Reset two-step verification for bob?" in question
        assert "Their 1 way to sign in is removed, with their trusted devices" in question
        assert "a one-time enrollment code, which is emailed to b***@example.com" in question
        assert kinds(record(store, "bob")) == ["totp"]
        assert await is_verified(bob)
        r = await reset(alice, "bob")
        assert r.status_code == 200  # shown, not redirected
        assert (
            "Two-step verification is reset for bob. An enrollment code was emailed to"
            " b***@example.com" in " ".join(visible(r).split())
        )
        assert "Done." not in r.text  # one notice says what happened, not two
        assert "handover" not in r.text  # emailed: the admin never sees it
        (mail,) = outbox.to("bob@example.com")[-1:]
        assert "set up two-step verification again" in mail.subject
        assert "Reset by: alice." in mail.text
        assert re.search(r"\n[0-9a-z]{4}(-[0-9a-z]{4}){3}\n", mail.text)
        await expect_logged_out(bob)
        await login(bob, "bob")
        r = await bob.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"  # enroll again
        assert store.get(Key("recovery", "bob")) is None
        # alice, the admin, is untouched
        assert store.get(user_key("alice")) == alice_before
        assert store.scan("device", "alice") == alice_devices
        assert codes_left(store, clock, "alice") == 10
        assert await is_verified(alice)
        resets = [e for e in events if e["event"] == "mfa_reset"]
        assert [(e["user"], e["actor"]) for e in resets] == [("bob", "admin:alice")]
        # and the admin page shows it
        r = await admin_page(alice, "?user=bob")
        assert r.status_code == 200
        page = html.unescape(r.text)
        assert fact(page, "Two-step verification") == "Not set up"
        assert fact(page, "Unused recovery codes") == "none issued"
        assert "bob laptop" not in page  # his devices went with the reset
        assert "badge trusted" not in page  # the browser he logged in with since is new


@pytest.mark.checklist("EX-05")
async def test_admin_exempts_bob(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        r = await act(alice, action="exempt", user="bob")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=exempt"
        done = (await alice.get(r.headers["location"], headers=HTML)).text
        assert "bob's API calls are now exempt from two-step verification." in visible(done)
        assert record(store, "bob").exempt is True
        token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", "accept": "application/json"}
        async with client(app) as api:
            assert (await api.get("/api/profile", headers=token)).status_code == 200
        await relogin(bob, "bob")
        assert not await is_verified(bob)  # an exemption covers API calls, not his password
        r = await admin_page(alice, "?user=bob")
        assert r.status_code == 200
        page = html.unescape(r.text)
        assert fact(page, "Exempt") == (
            "API calls only: no second step for them; browser sign-ins still need one"
        )
        assert 'value="unexempt"' in page
        r = await act(alice, action="unexempt", user="bob")
        assert r.headers["location"] == "/_mfa/admin?user=bob&done=unexempt"
        assert record(store, "bob").exempt is False
        async with client(app) as api:
            assert (await api.get("/api/profile", headers=token)).status_code == 401


async def test_admin_changes_the_mode_and_the_session_lifetime(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = admin_app(clock, store, on_event=events.append)
    async with client(app) as alice, client(app) as bob:
        await enroll(alice, clock, "alice")
        r = await act(alice, action="mode", mode="optional")
        assert r.headers["location"] == "/_mfa/admin?done=mode"
        assert store.get(SETTINGS_KEY)["mode"] == "optional"
        assert '<option value="optional" selected>' in (await admin_page(alice)).text
        await login(bob, "bob")
        assert await is_verified(bob)  # optional: bob, not enrolled, gets in
        r = await act(alice, action="mode", mode="sometimes")
        assert r.headers["location"] == "/_mfa/admin"
        assert store.get(SETTINGS_KEY)["mode"] == "optional"
        r = await act(alice, action="lifetime", lifetime="12h")
        assert r.headers["location"] == "/_mfa/admin?done=lifetime"
        assert store.get(SETTINGS_KEY)["session_lifetime"] == 43200.0
        assert 'value="12 hours"' in (await admin_page(alice)).text  # as people write it
        r = await act(alice, action="lifetime", lifetime="soon")
        assert r.headers["location"] == "/_mfa/admin?done=bad_lifetime"
        assert "not understood" in (await alice.get(r.headers["location"], headers=HTML)).text
        assert store.get(SETTINGS_KEY)["session_lifetime"] == 43200.0
        clock.advance(12 * 3600)
        await expect_logged_out(bob)  # the new lifetime applies to bob's session
        changes = ("mode_changed", "session_lifetime_changed")
        actors = {e["actor"] for e in events if e["event"] in changes}
        assert actors == {"admin:alice"}
        assert all(e["target"] is None for e in events if e["event"] in changes)  # everyone


# --- the ops API: resetting alice leaves bob alone -------------------------------------------


@pytest.mark.checklist("RST-05")
async def test_ops_reset_of_alice_leaves_bob_untouched(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = admin_app(clock, store, trust_duration="30d")
    async with client(app) as alice, client(app) as bob:
        await enroll(alice, clock, "alice", trust=True)
        await enroll(bob, clock, "bob", trust=True)
        bob_record = store.get(user_key("bob"))
        bob_devices = store.scan("device", "bob")
        bob_recovery = store.get(Key("recovery", "bob"))
        assert bob_devices
        ops(store, clock, events).reset("alice")
        assert [(e["event"], e["user"], e["actor"]) for e in events] == [
            ("enroll_code_issued", "alice", "test:ops"),
            ("mfa_reset", "alice", "test:ops"),
        ]
        # alice: logged out, no factor, no devices, no codes; she enrolls again
        await expect_logged_out(alice)
        assert kinds(record(store, "alice")) == []
        assert store.scan("device", "alice") == []
        assert store.get(Key("recovery", "alice")) is None
        await login(alice)
        r = await alice.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        # bob: the same record, devices and codes; his session and his trusted device work
        assert store.get(user_key("bob")) == bob_record
        assert store.scan("device", "bob") == bob_devices
        assert store.get(Key("recovery", "bob")) == bob_recovery
        assert await is_verified(bob)
        await logout(bob)
        await login(bob, "bob")
        assert await is_verified(bob)  # still a trusted device
        assert ops(store, clock).devices("bob")[0]["trusted"] is True


async def test_admin_sees_a_lockout_in_minutes_and_the_lifetime_as_written(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, max_attempts=2)
    async with client(app) as alice, client(app) as bob:
        secret, _ = await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        await relogin(bob, "bob")
        clock.advance(30)
        for step in range(2):
            await submit_code(bob, wrong_code(secret, clock() + 90 * step))
        page = html.unescape((await admin_page(alice, "?user=bob")).text)
        assert fact(page, "Wrong codes in a row") == "2; locked for 1 more minute"
        assert (
            'id="lifetime" name="lifetime" type="text" class="text short" value="90 days"' in page
        )


@pytest.mark.checklist("RST-08")
async def test_a_reset_can_neither_set_nor_show_the_users_factor(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        bob_secret, bob_codes = await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        chosen = {
            "secret": "JBSWY3DPEHPK3PXP" * 2,
            "totp_secret": "JBSWY3DPEHPK3PXP" * 2,
            "method": "sms",
            "phone": "+14155550100",
            "email": "attacker@evil.example",
            "code": "123456",
        }
        r = await reset(alice, "bob", **chosen)
        assert r.status_code == 200
        page = html.unescape(r.text)
        assert "Two-step verification is reset for bob." in visible(r)
        for shown in (bob_secret, "otpauth", "<svg", "JBSWY3DP", *bob_codes):
            assert shown not in page.replace(" ", "")
        after = record(store, "bob")
        assert after.factors() == []
        assert (after.method, after.totp_secret, after.phone, after.email) == (None,) * 4
        assert store.get(Key("recovery", "bob")) is None


@pytest.mark.checklist("RST-10")
async def test_admin_actions_are_audited_with_actor_target_and_address_and_no_secret(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", "mfa_middleware")
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    outbox = Outbox()
    app = admin_app(clock, store, on_event=events.append, email_sender=outbox)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        events.clear()
        caplog.clear()
        await reset(alice, "bob")
        (shown,) = re.findall(r"\b[0-9a-z]{4}(?:-[0-9a-z]{4}){3}\b", outbox.messages[-1].text)
        for action in ("logout", "exempt", "unexempt"):
            await act(alice, action=action, user="bob")
        await act(alice, action="mode", mode="optional")
        await act(alice, action="lifetime", lifetime="12h")
    names = [e["event"] for e in events]
    assert names == [
        "enroll_code_issued",
        "mfa_reset",
        "forced_logout",
        "exemption_changed",
        "exemption_changed",
        "mode_changed",
        "session_lifetime_changed",
    ]
    for event in events:
        assert (event["actor"], event["ip"]) == ("admin:alice", "127.0.0.1"), event
        assert event.get("user", "bob") == "bob"
    records = [r for r in caplog.records if getattr(r, "mfa_event", None)]
    assert [r.mfa_event["event"] for r in records] == names  # type: ignore[attr-defined]
    assert all(r.created for r in records)  # when: every log record has its time
    logged = repr(events) + "".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert shown not in logged
    assert shown.replace("-", "") not in logged


async def test_admin_finds_a_user_by_the_address_of_record_and_saves_a_lifetime_in_words(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        page = html.unescape((await admin_page(alice, "?user=BOB@example.com")).text)
        assert "<h3>bob</h3>" in page
        assert fact(page, "Two-step verification") == "On: 1 way to sign in"
        r = await act(alice, action="lifetime", lifetime="2 weeks")
        assert r.headers["location"] == "/_mfa/admin?done=lifetime"
        assert store.get(SETTINGS_KEY)["session_lifetime"] == 14 * 86400.0
        shown = (await admin_page(alice)).text
        assert 'value="14 days"' in shown
        assert "like 90 days, 12 hours or 30 minutes" in shown
        r = await act(alice, action="lifetime", lifetime="90 days")  # as the field shows it
        assert store.get(SETTINGS_KEY)["session_lifetime"] == 90 * 86400.0


# --- issue 21 point 5: a reset asks first and tells the user; mode off keeps the page open ----


@pytest.mark.checklist("RST-10")
async def test_a_reset_without_enrollment_codes_still_tells_the_user_who_did_it(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    outbox = Outbox()
    app = admin_app(clock, store, email_sender=outbox, enroll_code_ttl=None)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        asked = " ".join(visible(await act(alice, action="reset", user="bob")).split())
        assert "They are told by email, at b***@example.com." in asked
        page = (await act(alice, action="reset", user="bob")).text
        assert 'href="/_mfa/admin?user=bob">Cancel</a>' in page
        done = " ".join(visible(await reset(alice, "bob")).split())
        assert "Two-step verification is reset for bob. They were told by email, at" in done
        (mail,) = outbox.to("bob@example.com")[-1:]
        assert mail.subject == "Demo app: two-step verification was reset"
        assert "An administrator reset two-step verification on your Demo app account" in mail.text
        assert "Reset by: alice." in mail.text
        assert kinds(record(store, "bob")) == []


async def test_when_the_email_fails_the_admin_hands_the_code_over(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = admin_app(clock, store, email_sender=Outbox(fail=True), on_event=events.append)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        events.clear()
        r = await reset(alice, "bob")
        assert "Their enrollment code:" in visible(r)
        assert re.search(r'<code class="handover">[0-9a-z-]+</code>', r.text)
        assert "told by email" not in visible(r)
        failed = [e for e in events if e["event"] == "notification_failed"]
        assert [e["user"] for e in failed] == ["bob"]


async def test_turning_2fa_off_on_the_admin_page_keeps_the_admins_on_it(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = admin_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        secret, _ = await enroll(alice, clock, "alice")
        r = await act(alice, action="mode", mode="off")
        assert r.headers["location"] == "/_mfa/admin?done=mode"
        page = await alice.get(r.headers["location"], headers=HTML)
        assert page.status_code == 200  # not sent to / any more
        assert '<option value="off" selected>' in page.text
        await login(bob, "bob")
        assert await is_verified(bob)  # off: bob passes with his password
        assert (await admin_page(bob)).status_code == 403  # but is no admin
        # later, a recent code of her own is asked first, even with 2FA off
        clock.advance(15 * 60 + 1)
        r = await admin_page(alice)
        assert r.status_code == 303
        assert_step_up(r.headers["location"], "/_mfa/admin")
        step_up = await alice.get(r.headers["location"], headers=HTML)
        assert step_up.status_code == 200, step_up.text
        clock.advance(30)
        r = await alice.post(
            "/_mfa/challenge",
            headers=HTML,
            data={
                "csrf": csrf_of(step_up.text),
                "code": totp(secret, clock()),
                "reauth": "1",
                "next": "/_mfa/admin",
            },
        )
        assert r.headers["location"] == "/_mfa/admin"
        assert (await admin_page(alice)).status_code == 200
        r = await act(alice, action="mode", mode="required")  # and on again, from the page
        assert store.get(SETTINGS_KEY)["mode"] == "required"
        await relogin(bob, "bob")
        r = await bob.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/enroll")


async def test_with_2fa_off_an_admin_who_never_enrolled_gets_in_and_a_wrong_one_does_not(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, mode="off")
    async with client(app) as alice, client(app) as bob:
        await login(alice, "alice")  # nothing to confirm with: 2FA is off for her too
        page = await admin_page(alice)
        assert page.status_code == 200
        assert '<option value="off" selected>' in page.text
        await login(bob, "bob")
        assert (await admin_page(bob)).status_code == 403
        r = await bob.get("/_mfa/challenge?reauth=1", headers=HTML)
        assert r.status_code == 303  # no code page for someone with nothing to enter


# --- issue 21 point 9: events carry id, time, actor and target; a user's recent ones ------


async def test_the_admin_page_shows_a_users_recent_events(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = admin_app(clock, store, on_event=events.append)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        clock.advance(60)
        await act(alice, action="logout", user="bob")
        page = await admin_page(alice, "?user=bob")
        items = re.findall(r"<ol class=\"events\">(.*?)</ol>", page.text, re.S)[0]
        rows = [" ".join(visible(li).split()) for li in re.findall(r"<li>(.*?)</li>", items, re.S)]
        assert rows[0].endswith("Signed out everywhere · alice, an administrator · 127.0.0.1")
        assert re.match(r"Nov 14, 2023, 10:\d\d PM UTC ", rows[0])  # when, to the minute
        assert any("Added a way to sign in · the user" in r for r in rows[1:])
        assert any("Signed in with a second step · the user" in r for r in rows[1:])
        # every event has what the page shows it by, and nothing secret
        for event in events:
            assert {"id", "at", "actor", "target"} <= set(event), event
        forced = next(e for e in events if e["event"] == "forced_logout")
        assert (forced["actor"], forced["target"], forced["at"]) == ("admin:alice", "bob", clock())
        assert len({e["id"] for e in events}) == len(events)


async def test_with_events_kept_zero_the_page_keeps_none(clock: FixedClock) -> None:
    store = MemoryStore()
    app = admin_app(clock, store, events_kept=0)
    async with client(app) as alice, client(app) as bob:
        await enroll(bob, clock, "bob")
        await enroll(alice, clock, "alice")
        assert "None kept yet." in visible(await admin_page(alice, "?user=bob"))
        assert store.get(Key("events", "bob")) is None
