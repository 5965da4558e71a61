"""Recognised devices after a sign-in (issue 21 point 8, the KB: "the user will be presented
with a list of any recognized devices that have been used to access their account recently
and they will have the option to trust selected devices"): after a code on a new device and
its "Trust this device?", one page lists the other recently used untrusted devices with
checkboxes, once per sign-in."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.devices import DeviceRecord
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    is_verified,
    login,
    submit_code,
    totp,
    visible,
)
from tests.e2e.test_devices import enroll_to_prompt, trusting_app

pytestmark = pytest.mark.anyio


def devices(store: MemoryStore, user: str = "alice") -> dict[str, DeviceRecord]:
    return {name: DeviceRecord.from_doc(doc) for name, doc in store.scan("device", user)}


async def skip_prompt(c: httpx.AsyncClient) -> httpx.Response:
    page = await c.get("/_mfa/trust?next=/account", headers=HTML)
    return await c.post(
        "/_mfa/trust",
        headers=HTML,
        data={"csrf": csrf_of(page.text), "choice": "skip", "next": "/account"},
    )


async def sign_in_with_code(c: httpx.AsyncClient, clock: FixedClock, secret: str) -> None:
    await login(c)
    clock.advance(30)
    r = await submit_code(c, totp(secret, clock()))
    assert r.headers["location"] == "/_mfa/trust?next=%2Faccount"  # a new device: asked


async def test_a_sign_in_on_a_new_device_offers_the_others_to_trust(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = trusting_app(clock, store, on_event=events.append)
    async with client(app) as laptop, client(app) as tablet, client(app) as phone:
        await login(laptop)
        secret, _ = await enroll_to_prompt(laptop, clock)
        r = await skip_prompt(laptop)
        assert r.headers["location"] == "/account"  # no other device yet: nothing to offer
        clock.advance(3600)
        await sign_in_with_code(tablet, clock, secret)
        r = await skip_prompt(tablet)
        assert r.headers["location"] == "/_mfa/devices/recognised?next=%2Faccount"
        page = await tablet.get(r.headers["location"], headers=HTML)
        assert page.status_code == 200
        assert "Devices you used recently" in visible(page)
        boxes = re.findall(r'name="(trust_[^"]+)" value="1"', page.text)
        assert len(boxes) == 1  # the laptop; not the tablet itself
        clock.advance(60)
        await sign_in_with_code(phone, clock, secret)
        r = await skip_prompt(phone)
        page = await phone.get(r.headers["location"], headers=HTML)
        boxes = re.findall(r'name="(trust_[^"]+)" value="1"', page.text)
        assert len(boxes) == 2  # the laptop and the tablet, most recent first
        laptop_id = next(i for i, d in devices(store).items() if d.created_at == min(
            x.created_at for x in devices(store).values()))  # fmt: skip
        assert boxes[1] == f"trust_{laptop_id}"
        done = await phone.post(
            "/_mfa/devices/recognised",
            headers=HTML,
            data={
                "csrf": csrf_of(page.text),
                "next": "/account",
                "choice": "trust",
                boxes[1]: "1",  # the laptop only
                "trust_not-a-device-of-hers": "1",  # ignored
            },
        )
        assert done.headers["location"] == "/account"
        trusted = {i for i, d in devices(store).items() if d.trusted_until > clock()}
        assert trusted == {laptop_id}
        assert await is_verified(phone)
        # the laptop, trusted from the phone, signs in without a code
        await login(laptop)
        assert await is_verified(laptop)
    trusted_events = [e for e in events if e["event"] == "device_trusted"]
    assert [(e["user"], e["actor"]) for e in trusted_events] == [("alice", "user:alice")]


async def test_old_and_trusted_devices_are_not_offered_and_not_now_trusts_none(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as old, client(app) as kept, client(app) as new:
        await login(old)
        secret, _ = await enroll_to_prompt(old, clock)
        await skip_prompt(old)
        clock.advance(31 * 86400)  # the old device: last used a month ago
        await sign_in_with_code(kept, clock, secret)
        page = await kept.get("/_mfa/trust?next=/account", headers=HTML)
        await kept.post(
            "/_mfa/trust",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "choice": "trust", "next": "/account"},
        )
        clock.advance(60)
        await sign_in_with_code(new, clock, secret)
        r = await skip_prompt(new)
        assert r.headers["location"] == "/account"  # nothing recent and untrusted to offer
        before = {i: d.trusted_until for i, d in devices(store).items()}
        r = await new.post(
            "/_mfa/devices/recognised",
            headers=HTML,
            data={
                "csrf": csrf_of((await new.get("/_mfa/settings", headers=HTML)).text),
                "choice": "skip",
                "next": "/account",
                **{f"trust_{i}": "1" for i in before},
            },
        )
        assert r.headers["location"] == "/account"
        assert {i: d.trusted_until for i, d in devices(store).items()} == before


async def test_offered_once_per_sign_in_only_right_after_the_code(clock: FixedClock) -> None:
    store = MemoryStore()
    app = trusting_app(clock, store)
    async with client(app) as laptop, client(app) as tablet:
        await login(laptop)
        secret, _ = await enroll_to_prompt(laptop, clock)
        await skip_prompt(laptop)
        await sign_in_with_code(tablet, clock, secret)
        r = await skip_prompt(tablet)
        assert r.headers["location"].startswith("/_mfa/devices/recognised")
        clock.advance(16 * 60)  # later in the same sign-in: not offered any more
        again = await tablet.get("/_mfa/devices/recognised?next=/account", headers=HTML)
        assert again.headers["location"] == "/account"
        assert (await tablet.get("/account", headers=HTML)).status_code == 200
