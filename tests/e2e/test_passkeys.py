"""Passkeys and security keys through the pages (issue 17 point 3), answered by a software
authenticator as a browser would post them: adding one, signing in with it, the lockout it
shares with codes, and the refusals (another user's key, a cloned counter, another browser's
challenge, another site). The real browser does the same in tests/browser/test_passkeys.py."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core import authenticators
from mfa_middleware.core.flows import throttle_key
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.core.webauthn import credential_from_dict
from mfa_middleware.runtime import METHOD_COOKIE
from mfa_middleware.testing import Outbox
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll,
    is_verified,
    login,
    make_app,
    relogin,
    totp,
    visible,
)
from tests.support.webauthn import SoftAuthenticator, b64u

pytestmark = pytest.mark.anyio

ORIGIN = "http://localhost"
PASSKEYS = {"webauthn_enabled": True, "webauthn_rp_id": "localhost", "webauthn_origins": [ORIGIN]}
_OPTIONS_RE = re.compile(r'data-options="([^"]*)"')


def text_of(r: httpx.Response) -> str:
    return " ".join(visible(r).split())


def options_of(page: httpx.Response) -> dict[str, Any]:
    found = _OPTIONS_RE.search(page.text)
    assert found, "the page carries no WebAuthn options"
    options: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return options


def record(store: MemoryStore, user: str = "alice") -> UserRecord:
    return UserRecord.from_doc(store.get(user_key(user)))


def app_with_passkeys(clock: FixedClock, store: MemoryStore, **options: Any) -> Any:
    return make_app(clock, store=store, **{**PASSKEYS, **options})


def passkey_client(app: Any) -> httpx.AsyncClient:
    return client(app, base_url=ORIGIN)  # WebAuthn needs a domain: localhost, never an IP


async def add_passkey(
    c: httpx.AsyncClient, key: SoftAuthenticator, name: str = "", origin: str = ORIGIN
) -> httpx.Response:
    page = await c.get("/_mfa/enroll/passkey", headers=HTML)
    assert page.status_code == 200, page.text
    options = options_of(page)
    posted = key.register(options["challenge"], origin, options["rp"]["id"])
    data = {"csrf": csrf_of(page.text), "credential": json.dumps(posted), "name": name}
    return await c.post("/_mfa/enroll/passkey", data=data, headers=HTML)


async def passkey_challenge(c: httpx.AsyncClient, query: str = "") -> httpx.Response:
    page = await c.get(f"/_mfa/challenge{query}", headers=HTML)
    assert page.status_code == 200, page.text
    return page


async def answer(
    c: httpx.AsyncClient, page: httpx.Response, posted: dict[str, Any] | str, **extra: str
) -> httpx.Response:
    credential = posted if isinstance(posted, str) else json.dumps(posted)
    data = {"csrf": csrf_of(page.text), "credential": credential, "via": "webauthn", **extra}
    return await c.post("/_mfa/challenge", data=data, headers=HTML)


async def sign_in(c: httpx.AsyncClient, key: SoftAuthenticator, **assertion: Any) -> httpx.Response:
    page = await passkey_challenge(c)
    options = options_of(page)
    posted = key.assertion(options["challenge"], ORIGIN, options["rpId"], **assertion)
    return await answer(c, page, posted)


def failures(store: MemoryStore, user: str = "alice") -> int:
    return ThrottleState.from_doc(store.get(throttle_key(user))).failures


async def test_a_passkey_as_the_first_factor_then_signing_in_with_it(clock: FixedClock) -> None:
    store = MemoryStore()
    async with passkey_client(app_with_passkeys(clock, store, recovery_code_count=10)) as c:
        await login(c)
        chooser = await c.get("/_mfa/enroll", headers=HTML)
        assert "Passkey or security key" in text_of(chooser)
        key = SoftAuthenticator(attachment="platform", transports=("internal",))
        page = await c.get("/_mfa/enroll/passkey", headers=HTML)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert f'src="{ORIGIN}/_mfa/static/webauthn.js"' in page.text or (
            'src="/_mfa/static/webauthn.js"' in page.text
        )
        options = options_of(page)
        assert options["rp"] == {"id": "localhost", "name": "Demo app"}
        assert options["user"]["id"] != "alice"  # a random handle, never the user id
        r = await add_passkey(c, key, "Laptop")
        assert r.status_code == 200, r.text
        assert "recovery codes" in text_of(r).lower()  # a first factor: the codes, once
        user = record(store)
        (item,) = authenticators.of_kind(user, "webauthn")
        assert item.name == "Laptop"
        assert credential_from_dict(item.credential or {}).credential_id == key.credential_id
        assert user.webauthn_handle == options["user"]["id"]

        await relogin(c)
        page = await passkey_challenge(c)
        assert "Use your passkey" in text_of(page)
        allowed = options_of(page)["allowCredentials"]
        assert [a["id"] for a in allowed] == [b64u(key.credential_id)]
        r = await sign_in(c, key, user_handle=key.user_handle)
        assert r.status_code == 303, r.text
        assert r.cookies.get(METHOD_COOKIE) == "webauthn"
        assert await is_verified(c)
        state = (await c.get("/api/mfa", headers={"accept": "application/json"})).json()
        assert state["method"] == "webauthn"
        assert state["amr"] == ["hwk"]  # a device-bound key (not backup eligible)
        used = authenticators.of_kind(record(store), "webauthn")[0]
        assert credential_from_dict(used.credential or {}).sign_count == key.sign_count
        assert used.last_used_at == clock()


async def test_a_failed_assertion_costs_an_attempt_and_malformed_input_does_not(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    async with passkey_client(app_with_passkeys(clock, store)) as c:
        await login(c)
        key = SoftAuthenticator()
        assert (await add_passkey(c, key)).status_code == 303
        await relogin(c)
        page = await passkey_challenge(c)
        r = await answer(c, page, "{not json")
        assert r.status_code == 400
        assert "could not be read" in text_of(r)
        assert failures(store) == 0  # no guess was made
        for left in (4, 3, 2, 1):
            r = await sign_in(c, key, good_signature=False)
            assert r.status_code == 400
            assert f"({left} attempts left)" in text_of(r) or f"({left} attempt left)" in text_of(r)
        r = await sign_in(c, key, good_signature=False)
        assert r.status_code == 429  # the same lockout as codes
        assert failures(store) == 5
        assert not await is_verified(c)


async def test_a_cloned_key_whose_counter_goes_back_is_refused_and_reported(
    clock: FixedClock,
) -> None:
    store, events = MemoryStore(), list[dict[str, Any]]()
    app = app_with_passkeys(clock, store, on_event=lambda e: events.append(e))
    async with passkey_client(app) as c:
        await login(c)
        key = SoftAuthenticator(sign_count=5)
        assert (await add_passkey(c, key)).status_code == 303
        await relogin(c)
        assert (await sign_in(c, key)).status_code == 303  # count 6
        await relogin(c)
        r = await sign_in(c, key, count=3)  # the clone's copy is behind
        assert r.status_code == 400
        assert "could not be verified" in text_of(r)
        regressed = [e for e in events if e["event"] == "webauthn_counter_regressed"]
        assert regressed
        assert regressed[0]["stored_count"] == 6 == regressed[0]["received_count"] + 3
        failed = [e for e in events if e["event"] == "verify_failed"][-1]
        assert failed["method"] == "webauthn"
        assert failed["reason"] == "counter"
        assert not await is_verified(c)


async def test_another_users_passkey_is_refused(clock: FixedClock) -> None:
    store = MemoryStore()
    app = app_with_passkeys(clock, store)
    async with passkey_client(app) as alice, passkey_client(app) as bob:
        await login(alice)
        alices_key = SoftAuthenticator()
        assert (await add_passkey(alice, alices_key)).status_code == 303
        await login(bob, "bob")
        assert (await add_passkey(bob, SoftAuthenticator())).status_code == 303
        await relogin(bob, "bob")
        r = await sign_in(bob, alices_key)
        assert r.status_code == 400
        r = await sign_in(bob, alices_key, user_handle=alices_key.user_handle)
        assert r.status_code == 400
        assert not await is_verified(bob)
        assert failures(store, "bob") == 2


async def test_a_challenge_given_to_one_browser_cannot_be_answered_in_another(
    clock: FixedClock,
) -> None:
    store = MemoryStore()
    app = app_with_passkeys(clock, store)
    async with passkey_client(app) as first, passkey_client(app) as second:
        await login(first)
        key = SoftAuthenticator()
        assert (await add_passkey(first, key)).status_code == 303
        await relogin(first)
        await login(second)
        page_one = await passkey_challenge(first)
        page_two = await passkey_challenge(second)
        signed_for_one = key.assertion(options_of(page_one)["challenge"], ORIGIN, "localhost")
        r = await answer(second, page_two, signed_for_one)
        assert r.status_code == 400
        assert not await is_verified(second)
        # the first browser's challenge is still its own, answered once
        r = await answer(
            first, page_one, key.assertion(options_of(page_one)["challenge"], ORIGIN, "localhost")
        )
        assert r.status_code == 303
        # an answer is used once: replayed in a new session of the first browser, refused
        await relogin(first)
        replayed = await answer(first, await passkey_challenge(first), signed_for_one)
        assert replayed.status_code == 400
        assert not await is_verified(first)


async def test_a_passkey_made_for_another_site_is_not_added(clock: FixedClock) -> None:
    store = MemoryStore()
    async with passkey_client(app_with_passkeys(clock, store)) as c:
        await login(c)
        r = await add_passkey(c, SoftAuthenticator(), origin="https://evil.example")
        assert r.status_code == 400
        assert "made for another site" in text_of(r)
        assert authenticators.of_kind(record(store), "webauthn") == []
        assert options_of(r)["challenge"]  # a new challenge to try again with


async def test_step_up_and_a_backup_app_accept_the_passkey(clock: FixedClock) -> None:
    store, outbox = MemoryStore(), Outbox()
    async with passkey_client(app_with_passkeys(clock, store, email_sender=outbox)) as c:
        await login(c)
        key = SoftAuthenticator()
        assert (await add_passkey(c, key)).status_code == 303
        clock.advance(3600)  # no longer a recent verification
        r = await c.get("/_mfa/authenticators", headers=HTML)
        assert r.status_code == 303
        assert "reauth=1" in r.headers["location"]
        page = await c.get(r.headers["location"], headers=HTML)
        assert "confirm it's you with your passkey" in text_of(page)
        posted = key.assertion(options_of(page)["challenge"], ORIGIN, "localhost")
        r = await answer(c, page, posted, reauth="1", next="/_mfa/authenticators")
        assert r.status_code == 303
        assert (await c.get("/_mfa/authenticators", headers=HTML)).status_code == 200
        secret = await enroll(c, clock)  # a backup app, added after the recent passkey
        assert [a.kind for a in record(store).factors()] == ["webauthn", "totp"]
        first, added = outbox.to("alice@example.com")
        assert first.subject.endswith("two-step verification turned on")
        assert added.subject.endswith("a way to sign in was added")
        assert "was added: an authenticator app." in " ".join(added.text.split())
        assert "sign-in codes was changed" not in added.text
        await relogin(c)
        other = await c.get("/_mfa/challenge/other", headers=HTML)
        assert "Passkey or security key" in text_of(other)
        clock.advance(30)
        app_page = await c.get("/_mfa/challenge?via=totp", headers=HTML)
        data = {"csrf": csrf_of(app_page.text), "code": totp(secret, clock()), "via": "totp"}
        assert (await c.post("/_mfa/challenge", data=data, headers=HTML)).status_code == 303


async def test_a_passkey_added_beside_an_app_is_announced_by_its_name(clock: FixedClock) -> None:
    """An addition is told as one (what and its name), never as "codes now come elsewhere"."""
    outbox = Outbox()
    async with passkey_client(app_with_passkeys(clock, MemoryStore(), email_sender=outbox)) as c:
        await login(c)
        await enroll(c, clock)
        assert (await add_passkey(c, SoftAuthenticator(), "Laptop")).status_code == 303
        added = outbox.to("alice@example.com")[-1]
        assert added.subject.endswith("a way to sign in was added")
        text = " ".join(added.text.split())
        assert "was added: a passkey or security key (Laptop)." in text
        assert "sign-in codes was changed" not in text


async def test_the_script_is_served_only_when_passkeys_are_on(clock: FixedClock) -> None:
    async with passkey_client(app_with_passkeys(clock, MemoryStore())) as c:
        await login(c)
        r = await c.get("/_mfa/static/webauthn.js")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert "navigator.credentials" in r.text
    async with passkey_client(make_app(clock)) as c:
        await login(c)
        r = await c.get("/_mfa/static/webauthn.js", headers=HTML)
        assert r.status_code == 404
        r = await c.get("/_mfa/enroll/passkey", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].endswith("/_mfa/enroll")
        chooser = await c.get("/_mfa/enroll", headers=HTML)
        assert "Passkey" not in text_of(chooser)


async def test_a_passkey_steps_up_a_stale_session(clock: FixedClock) -> None:
    """The demo's /billing asks for a factor from the last 5 minutes (issue 18)."""
    async with passkey_client(app_with_passkeys(clock, MemoryStore())) as c:
        await login(c)
        key = SoftAuthenticator()
        assert (await add_passkey(c, key)).status_code == 303
        clock.advance(301)
        r = await c.get("/billing", headers=HTML)
        assert r.status_code == 303
        page = await c.get(r.headers["location"], headers=HTML)
        posted = key.assertion(options_of(page)["challenge"], ORIGIN, "localhost")
        done = await answer(c, page, posted, reauth="1", stepup="1", next="/billing")
        assert done.status_code == 303
        assert done.headers["location"] == "/billing"
        assert (await c.get("/billing", headers=HTML)).status_code == 200


async def test_a_synced_passkey_says_so_in_the_apps_mfa_state(clock: FixedClock) -> None:
    async with passkey_client(app_with_passkeys(clock, MemoryStore())) as c:
        await login(c)
        key = SoftAuthenticator(backup_eligible=True, backup_state=True)
        assert (await add_passkey(c, key)).status_code == 303
        await relogin(c)
        assert (await sign_in(c, key)).status_code == 303
        state = (await c.get("/api/mfa", headers={"accept": "application/json"})).json()
        assert state["method"] == "webauthn.synced"
        assert state["amr"] == ["swk"]


async def test_showing_the_passkey_page_again_writes_no_user_record(clock: FixedClock) -> None:
    """The WebAuthn handle is made once; a page view after that only reads the user record (a
    write would move every worker's cache on)."""
    store = MemoryStore()
    async with passkey_client(app_with_passkeys(clock, store)) as c:
        await login(c)
        await c.get("/_mfa/enroll/passkey", headers=HTML)
        handle = record(store).webauthn_handle
        assert handle
        writes: list[object] = []
        original = store.update

        def counting(key: Any, fn: Any, **kw: Any) -> Any:
            if key == user_key("alice"):
                writes.append(key)
            return original(key, fn, **kw)

        store.update = counting  # type: ignore[method-assign]
        assert (await c.get("/_mfa/enroll/passkey", headers=HTML)).status_code == 200
        assert writes == []
        assert record(store).webauthn_handle == handle
