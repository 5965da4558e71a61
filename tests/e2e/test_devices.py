"""Trusted devices: the prompt, the device cookie, revocation, and the device pages."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core.devices import DeviceCodec, DeviceCookie
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import user_key
from mfa_middleware.core.tokens import csrf_token
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    COOKIE,
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    is_verified,
    login,
    logout,
    make_app,
    secret_of,
    senders,
    set_cookie,
    submit_code,
    totp,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio
DEVICE = "mfa_session_device"
DAY = 86400.0


def trusting_app(clock: FixedClock, store: MemoryStore | None = None, **options: object):  # type: ignore[no-untyped-def]
    options.setdefault("trust_duration", "30d")
    return make_app(clock, store=store, **options)


async def enroll_to_prompt(c: httpx.AsyncClient, clock: FixedClock) -> tuple[str, httpx.Response]:
    r = await c.get("/_mfa/enroll/totp", headers=HTML)
    secret = secret_of(r.text)
    done = await c.post(
        "/_mfa/enroll/totp",
        headers=HTML,
        data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": "/account"},
    )
    assert done.status_code == 303
    return secret, done


async def answer_prompt(c: httpx.AsyncClient, choice: str, name: str = "") -> httpx.Response:
    page = await c.get("/_mfa/trust?next=/account", headers=HTML)
    assert page.status_code == 200
    assert "Trust this device?" in page.text
    data = {"csrf": csrf_of(page.text), "choice": choice, "next": "/account"}
    if name:
        data["name"] = name
    r = await c.post("/_mfa/trust", data=data, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/account"
    return r


async def code_login(c: httpx.AsyncClient, clock: FixedClock, secret: str) -> None:
    await login(c)
    clock.advance(30)
    r = await submit_code(c, totp(secret, clock()))
    assert r.status_code == 303


async def devices_page(c: httpx.AsyncClient) -> str:
    r = await c.get("/_mfa/devices", headers=HTML)
    assert r.status_code == 200
    return r.text


async def test_trust_then_the_next_login_skips_the_code(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        _, done = await enroll_to_prompt(c, clock)
        assert done.headers["location"] == "/_mfa/trust?next=%2Faccount"
        await answer_prompt(c, "trust", "My laptop")
        await logout(c)
        await login(c)
        assert await is_verified(c)  # no challenge on a trusted device
        assert "My laptop" in await devices_page(c)


@pytest.mark.checklist("TD-08")
async def test_skip_keeps_the_device_untrusted(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "skip")
        await logout(c)
        await login(c)
        assert not await is_verified(c)


async def test_cleared_cookies_mean_a_code_again(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        c.cookies.clear()
        await login(c)
        assert not await is_verified(c)


@pytest.mark.checklist("TD-06")
async def test_the_device_cookie_is_opaque_and_well_formed(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        r = await answer_prompt(c, "trust")
        del r
        value = next(k.value for k in c.cookies.jar if k.name == DEVICE)
        payload = value.split(".")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        fields = json.loads(decoded)
        assert len(fields) == 2
        assert "alice" not in decoded.decode()


@pytest.mark.checklist("TD-02")
async def test_device_cookie_of_alice_does_not_skip_bobs_challenge(clock: FixedClock) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await login(alice)
        await enroll_to_prompt(alice, clock)
        await answer_prompt(alice, "trust")
        await login(bob, "bob")
        r = await bob.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(r.text)
        await bob.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": "/account"},
        )
        await logout(bob)
        stolen = next(k.value for k in alice.cookies.jar if k.name == DEVICE)
        set_cookie(bob, stolen, DEVICE)  # in place of his own (a second one would not be read)
        await login(bob, "bob")
        assert not await is_verified(bob)


@pytest.mark.checklist("TD-05")
async def test_trust_expires_after_its_period(clock: FixedClock) -> None:
    app = trusting_app(clock, trust_duration="7d")
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        await logout(c)
        clock.advance(7 * DAY + 1)
        await login(c)
        assert not await is_verified(c)


@pytest.mark.parametrize("how", ["revoke_devices", "mode_off_on"])
@pytest.mark.checklist("TD-03")
async def test_trust_ends_with_device_revocation_or_re_enrollment(
    clock: FixedClock, how: str
) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    ops = Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "ops")
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        if how == "revoke_devices":
            ops.logout("alice", revoke_devices=True)
        else:
            ops.set_mode("off")
            ops.set_mode("required")
        await logout(c)
        await login(c)
        assert not await is_verified(c)


@pytest.mark.checklist("TD-01")
async def test_trust_duration_zero_means_no_prompt(clock: FixedClock) -> None:
    app = make_app(clock)  # the test helper's default: trust_duration=0
    async with client(app) as c:
        await login(c)
        _, done = await enroll_to_prompt(c, clock)
        assert done.headers["location"] == "/account"
        r = await c.get("/_mfa/trust", headers=HTML)
        assert r.status_code == 303


async def test_auto_trust_for_app_clients(clock: FixedClock) -> None:
    app = trusting_app(clock, auto_trust=lambda facts, p: "DemoApp/" in facts.header("user-agent"))
    async with client(app) as c:
        c.headers["user-agent"] = "DemoApp/2.1 (iPhone)"
        await login(c)
        _, done = await enroll_to_prompt(c, clock)
        assert done.headers["location"] == "/account"  # trusted without asking
        await logout(c)
        await login(c)
        assert await is_verified(c)


@pytest.mark.checklist("TD-03", "TD-10")
async def test_rename_and_delete_through_the_pages(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        secret, _ = await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        page = await devices_page(c)
        assert "This device" in page
        assert "Trusted" in page
        device_id = page.split('name="device" value="')[1].split('"')[0]
        r = await c.post(
            "/_mfa/devices",
            headers=HTML,
            data={
                "csrf": csrf_of(page),
                "device": device_id,
                "action": "rename",
                "name": "Work PC",
            },
        )
        assert r.headers["location"] == "/_mfa/devices?done=renamed"
        page = await devices_page(c)
        assert "Work PC" in page
        confirm = await c.post(
            "/_mfa/devices",
            headers=HTML,
            data={"csrf": csrf_of(page), "device": device_id, "action": "confirm_delete"},
        )
        assert "Delete this device?" in confirm.text
        r = await c.post(
            "/_mfa/devices",
            headers=HTML,
            data={"csrf": csrf_of(confirm.text), "device": device_id, "action": "delete"},
        )
        assert r.headers["location"] == "/_mfa/devices?done=deleted"
        assert "Work PC" not in await devices_page(c)
        await logout(c)
        await login(c)
        assert not await is_verified(c)  # challenged after deleting the device
        del secret


@pytest.mark.checklist("TD-10")
async def test_another_users_device_is_not_found(clock: FixedClock) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as alice, client(app) as bob:
        await login(alice)
        await enroll_to_prompt(alice, clock)
        await answer_prompt(alice, "trust", "Alice laptop")
        alice_page = await devices_page(alice)
        alice_device = alice_page.split('name="device" value="')[1].split('"')[0]
        await login(bob, "bob")
        await enroll_to_prompt(bob, clock)
        await answer_prompt(bob, "skip")
        bob_page = await devices_page(bob)
        for action in ("rename", "delete", "confirm_delete", "trust"):
            r = await bob.post(
                "/_mfa/devices",
                headers=HTML,
                data={
                    "csrf": csrf_of(bob_page),
                    "device": alice_device,
                    "action": action,
                    "name": "pwned",
                },
            )
            assert r.status_code == 404
        assert "Alice laptop" in await devices_page(alice)


async def test_trusting_a_listed_device_needs_a_recent_code(clock: FixedClock) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        secret, _ = await enroll_to_prompt(c, clock)
        await answer_prompt(c, "skip")
        clock.advance(3600)
        page = await devices_page(c)
        device_id = page.split('name="device" value="')[1].split('"')[0]
        r = await c.post(
            "/_mfa/devices",
            headers=HTML,
            data={"csrf": csrf_of(page), "device": device_id, "action": "trust"},
        )
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")
        step_up = await c.get(r.headers["location"], headers=HTML)
        await c.post(
            "/_mfa/challenge",
            headers=HTML,
            data={
                "csrf": csrf_of(step_up.text),
                "code": totp(secret, clock()),
                "reauth": "1",
                "next": "/_mfa/devices",
            },
        )
        page = await devices_page(c)
        r = await c.post(
            "/_mfa/devices",
            headers=HTML,
            data={"csrf": csrf_of(page), "device": device_id, "action": "trust"},
        )
        assert r.headers["location"] == "/_mfa/devices?done=trusted"
        listed = (await c.get(r.headers["location"], headers=HTML)).text
        assert "Device trusted." in listed
        assert "Not trusted" not in listed


@pytest.mark.checklist("ENR-01", "SES-18")
async def test_a_trusted_device_session_needs_a_code_before_changing_the_factor(
    clock: FixedClock,
) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust")
        await logout(c)
        await login(c)
        assert await is_verified(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge?reauth=1")


async def test_device_cap_prunes_the_oldest_untrusted(clock: FixedClock) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store, max_devices=3)
    async with client(app) as c:
        await login(c)
        await enroll_to_prompt(c, clock)
        await answer_prompt(c, "trust", "Keeper")
        for _ in range(5):  # five more browsers log in and reach the code page
            async with client(app) as other:
                clock.advance(60)
                await login(other)
                r = await other.get("/account", headers=HTML)
                assert (await other.get(r.headers["location"], headers=HTML)).status_code == 200
        assert len(store.scan("device", "alice")) == 3
        assert "Keeper" in await devices_page(c)


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/account?x=1"])
@pytest.mark.checklist("UI-07")
async def test_next_survives_the_trust_step_only_when_safe(clock: FixedClock, target: str) -> None:
    app = trusting_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(r.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(r.text), "code": totp(secret, clock()), "next": target},
        )
        prompt = await c.get(done.headers["location"], headers=HTML)
        answered = await c.post(
            "/_mfa/trust",
            headers=HTML,
            data={
                "csrf": csrf_of(prompt.text),
                "choice": "skip",
                "next": prompt.text.split('name="next" value="')[1].split('"')[0],
            },
        )
        expected = target if target.startswith("/account") else "/"
        assert answered.headers["location"] == expected


@pytest.mark.checklist("TD-03")
@pytest.mark.parametrize("how", ["change_factor", "delete_device", "force_logout", "reset"])
async def test_every_revocation_makes_a_trusted_browser_enter_a_code_again(
    clock: FixedClock, how: str
) -> None:
    """Trust ends when the factor changes (a new authenticator after a suspected theft must
    not leave the thief's trusted browser skipping codes), when the device is deleted, when
    an administrator logs the user out with their devices, and when 2FA is reset."""
    store = MemoryStore()
    app = trusting_app(clock, store)
    ops = Admin(Runtime(MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock)), "ops")
    async with client(app) as trusted, client(app) as owner:
        await login(trusted)
        secret, _ = await enroll_to_prompt(trusted, clock)
        await answer_prompt(trusted, "trust")
        await logout(trusted)
        await login(trusted)
        assert await is_verified(trusted)  # trusted: no code
        await logout(trusted)
        if how == "change_factor":  # the owner, in another browser, sets up a new app
            await code_login(owner, clock, secret)
            page = await owner.get("/_mfa/enroll/totp", headers=HTML)
            assert page.status_code == 200
            done = await owner.post(
                "/_mfa/enroll/totp",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "code": totp(secret_of(page.text), clock())},
            )
            assert done.status_code == 303
        elif how == "delete_device":
            [(device_id, _)] = store.scan("device", "alice")
            assert ops.revoke_device("alice", device_id)
        elif how == "force_logout":
            ops.logout("alice", revoke_devices=True)
        else:
            ops.reset("alice")
        await login(trusted)
        assert not await is_verified(trusted)


def nobody_trusted(store: MemoryStore) -> bool:
    return not any(doc.get("trusted_until") for _, doc in store.scan("device", "alice"))


async def trusted_browser(c: httpx.AsyncClient, clock: FixedClock) -> str:
    """alice enrolls in `c` and trusts it; logged out afterwards. Returns her TOTP secret."""
    await login(c)
    secret, _ = await enroll_to_prompt(c, clock)
    await answer_prompt(c, "trust")
    await logout(c)
    return secret


@pytest.mark.checklist("TD-01")
async def test_trust_is_documented_as_no_authenticator_and_can_be_turned_off(
    clock: FixedClock,
) -> None:
    root = Path(__file__).resolve().parents[2]
    readme = " ".join((root / "README.md").read_text().split())
    assert "Trusted devices are a convenience, not an AAL2 authenticator" in readme
    assert "`0` turns trusting (and the prompt) off" in readme
    security = " ".join((root / "docs" / "security.md").read_text().split())
    assert "A trusted device is a convenience, not an authenticator at AAL2" in security
    store = MemoryStore()
    async with client(trusting_app(clock, store)) as c:
        await trusted_browser(c, clock)
        await login(c)
        assert await is_verified(c)
        await logout(c)
        kept = c.cookies
    async with client(make_app(clock, store=store, trust_duration=0)) as c:  # turned off
        c.cookies = kept
        await login(c)
        assert not await is_verified(c)  # the device trusted before no longer counts
        assert (await c.get("/_mfa/trust?next=/account", headers=HTML)).status_code == 303


def _flip(value: str, index: int) -> str:
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


@pytest.mark.checklist("TD-04", "TD-07")
@pytest.mark.parametrize(
    "forge",
    [
        "payload",
        "signature",
        "truncated",
        "empty",
        "none",
        "session_cookie",
        "csrf_token",
        "another_key",
        "another_purpose",
    ],
)
async def test_a_device_cookie_that_is_not_ours_is_ignored(clock: FixedClock, forge: str) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as c:
        await trusted_browser(c, clock)
        real = next(k.value for k in c.cookies.jar if k.name == DEVICE)
        device_id, tag = json.loads(
            base64.urlsafe_b64decode(real.split(".")[0] + "=" * (-len(real.split(".")[0]) % 4))
        )
        await login(c)
        session = next(k.value for k in c.cookies.jar if k.name == COOKIE)
        await logout(c)
        ring = Keyring(["an0ther-app-key-" + "q8Wm2Nv5Bt6Yc4Hj0FsXa1Pe"])
        forged = {
            "payload": _flip(real, 3),
            "signature": _flip(real, len(real) - 3),
            "truncated": real[: len(real) // 2],
            "empty": "",
            "none": "none",
            "session_cookie": session,
            "csrf_token": csrf_token(Keyring([SECRET_KEY]), device_id),
            "another_key": DeviceCodec(ring, 86400).encode(DeviceCookie(device_id, tag)),
            "another_purpose": URLSafeTimedSerializer([SECRET_KEY], salt="mfa.session.v1").dumps(
                [device_id, tag]
            ),
        }[forge]
        set_cookie(c, forged, DEVICE)
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge")
    async with client(app) as c:  # and a device cookie is no session cookie either
        await login(c)
        await c.get("/account", headers=HTML)
        set_cookie(c, real)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"].startswith("/_mfa/challenge")


@pytest.mark.checklist("TD-08")
async def test_trust_needs_a_right_code_and_the_users_own_choice(clock: FixedClock) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as c:
        await login(c)
        secret, _ = await enroll_to_prompt(c, clock)
        await answer_prompt(c, "skip")
        await logout(c)
        form = await c.get("/login")
        r = await c.post(  # the app's password form, asked to remember
            "/login",
            data={
                "username": "alice",
                "password": "alice-password",
                "remember": "1",
                "csrf": csrf_of(form.text),
            },
        )
        assert r.status_code == 303
        page = await c.get("/_mfa/challenge", headers=HTML)
        csrf = csrf_of(page.text)
        trust = {"csrf": csrf, "choice": "trust", "remember": "1", "next": "/account"}
        r = await c.post("/_mfa/trust", data=trust, headers=HTML)  # before any code
        assert r.headers["location"].startswith("/_mfa/challenge")
        clock.advance(30)
        r = await c.post(  # a wrong code, asking to be remembered
            "/_mfa/challenge", data={**trust, "code": "000000"}, headers=HTML
        )
        assert r.status_code == 400
        assert nobody_trusted(store)
        r = await c.post(
            "/_mfa/challenge", data={**trust, "code": totp(secret, clock())}, headers=HTML
        )
        assert r.headers["location"] == "/_mfa/trust?next=%2Faccount"  # asked, not assumed
        assert nobody_trusted(store)
        await answer_prompt(c, "trust")
        assert not nobody_trusted(store)


@pytest.mark.checklist("SES-18")
async def test_a_session_of_a_trusted_device_enters_a_code_before_any_sensitive_change(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store, **senders(mailbox, twilio))
    async with client(app) as c:
        secret = await trusted_browser(c, clock)
        await login(c)
        assert await is_verified(c)  # by the trusted device: no code in this session
        settings = await c.get("/_mfa/settings", headers=HTML)
        csrf = csrf_of(settings.text)
        [(device, _)] = store.scan("device", "alice")
        before = store.get(user_key("alice"))
        for path in ("/_mfa/disable", "/_mfa/enroll/totp", "/_mfa/enroll/sms"):
            r = await c.get(path, headers=HTML)
            assert r.headers["location"].startswith("/_mfa/challenge?reauth=1"), path
        for path, form in (
            ("/_mfa/disable", {}),
            ("/_mfa/recovery/regenerate", {}),
            ("/_mfa/settings/sessions", {}),
            ("/_mfa/enroll/sms", {"phone": "(415) 555-2671", "region": "US"}),
            ("/_mfa/devices", {"device": device, "action": "trust"}),
        ):
            r = await c.post(path, data={"csrf": csrf, **form}, headers=HTML)
            assert r.headers["location"].startswith("/_mfa/challenge?reauth=1"), path
        assert store.get(user_key("alice")) == before
        assert nobody_trusted(store) is False  # this browser's own trust, unchanged
        assert twilio.requests == []
        step_up = await c.get("/_mfa/challenge?reauth=1&next=/_mfa/disable", headers=HTML)
        clock.advance(30)
        r = await c.post(
            "/_mfa/challenge",
            data={
                "csrf": csrf_of(step_up.text),
                "code": totp(secret, clock()),
                "reauth": "1",
                "next": "/_mfa/disable",
            },
            headers=HTML,
        )
        assert r.headers["location"] == "/_mfa/disable"
        assert (await c.get("/_mfa/disable", headers=HTML)).status_code == 200
