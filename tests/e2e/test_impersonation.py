"""Support staff signed in as a customer, "Login with Access" (issue 21 point 1): carol, the
demo's support agent, acts as bob. The session passes on carol's own second factor, never
bob's; every 2FA page answers 403, so she cannot see or change bob's 2FA (the bug: an agent
enrolled her own phone on a customer's account); every request is an event naming both."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from mfa_middleware.testing import Outbox
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    cookie,
    csrf_of,
    visible,
)
from tests.e2e.test_admin_pages import enroll, record
from tests.e2e.test_admin_tiers import demo

pytestmark = pytest.mark.anyio

TWO_FA_PAGES = [
    ("GET", "/_mfa/settings"),
    ("GET", "/_mfa/enroll"),
    ("GET", "/_mfa/enroll/sms"),
    ("GET", "/_mfa/enroll/totp"),
    ("GET", "/_mfa/devices"),
    ("GET", "/_mfa/authenticators"),
    ("GET", "/_mfa/challenge"),
    ("GET", "/_mfa/recovery"),
    ("GET", "/_mfa/lost"),
    ("GET", "/_mfa/disable"),
    ("GET", "/_mfa/trust"),
    ("GET", "/_mfa/admin"),
    ("GET", "/_mfa/admin/users"),
    ("GET", "/_mfa/"),
]


async def act_as(agent: httpx.AsyncClient, customer: str) -> None:
    """The demo's Support page: "Sign in as this customer"."""
    page = await agent.get("/support", headers=HTML)
    assert page.status_code == 200, page.text
    r = await agent.post(
        "/support/act-as", headers=HTML, data={"csrf": csrf_of(page.text), "customer": customer}
    )
    assert r.status_code == 303, r.text


async def stop_acting(agent: httpx.AsyncClient) -> None:
    page = await agent.get("/support", headers=HTML)
    r = await agent.post("/support/stop", headers=HTML, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303, r.text


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


def app_for(clock: FixedClock, store: MemoryStore, events: list[dict[str, Any]], **kw: Any) -> Any:
    kw.setdefault("sms_sender", Outbox("sms"))
    return demo(clock, store, on_event=events.append, **kw)


@pytest.mark.checklist("RST-07")
async def test_carol_acts_as_bob_on_her_own_factor_and_his_2fa_stays_his(
    clock: FixedClock, events: list[dict[str, Any]]
) -> None:
    store = MemoryStore()
    sms = Outbox("sms")
    app = app_for(clock, store, events, sms_sender=sms)
    async with client(app) as bob, client(app) as carol:
        await enroll(bob, clock, "bob")
        bob_before = store.get(Key("user", "bob"))
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")
        account = await carol.get("/account", headers=HTML)
        assert account.status_code == 200  # no code asked of bob, none sent to him
        assert "Signed in as bob" in visible(account)
        assert "on behalf of carol" in visible(account)
        assert "Second step (carol's own): an authenticator app code" in visible(account)
        assert "/_mfa/settings" not in account.text  # the demo offers no way to his 2FA
        assert sms.messages == []
        mfa = (await carol.get("/api/mfa", headers={"accept": "application/json"})).json()
        assert (mfa["verified"], mfa["method"], mfa["impersonator"]) == (True, "totp", "carol")
        for method, path in TWO_FA_PAGES:
            r = await carol.request(method, path, headers=HTML)
            assert r.status_code == 403, (path, r.status_code)
            assert "You are signed in as another user, on their behalf." in visible(r), path
        # the bug: her own phone on his account. The form's POST is refused too
        csrf = csrf_of((await carol.get("/support", headers=HTML)).text)
        for path, data in (
            ("/_mfa/enroll/sms", {"phone": "+14155550100", "region": "US"}),
            ("/_mfa/disable", {}),
            ("/_mfa/logout", {}),
            ("/_mfa/admin", {"action": "reset", "user": "bob", "confirm": "yes"}),
        ):
            r = await carol.post(path, headers=HTML, data={"csrf": csrf, **data})
            assert r.status_code == 403, path
        assert store.get(Key("user", "bob")) == bob_before
        assert kinds(record(store, "bob")) == ["totp"]
        assert sms.messages == []
        json_answer = await carol.get("/_mfa/settings", headers={"accept": "application/json"})
        assert json_answer.json()["error"] == "impersonating"
        await stop_acting(carol)
        back = await carol.get("/account", headers=HTML)
        assert "Signed in as carol" in visible(back)  # her own session, no code asked
    named = [e for e in events if e["event"] in ("impersonated_request", "impersonation_refused")]
    assert {(e["user"], e["actor"], e["target"]) for e in named} == {("bob", "agent:carol", "bob")}
    requests = [e["path"] for e in named if e["event"] == "impersonated_request"]
    assert requests.count("/account") == 1
    assert "/api/mfa" in requests
    refused = [e["path"] for e in named if e["event"] == "impersonation_refused"]
    assert set(refused) >= {"/_mfa/settings", "/_mfa/enroll/sms", "/_mfa/admin"}
    # kept for both people: the admin page shows it in bob's and in carol's recent events
    for person in ("bob", "carol"):
        kept = store.get(Key("events", person))
        assert kept is not None
        assert any(e["event"] == "impersonated_request" for e in kept["events"]), person


async def test_every_request_is_recorded_none_is_remembered(
    clock: FixedClock, events: list[dict[str, Any]]
) -> None:
    store = MemoryStore()
    app = app_for(clock, store, events)
    async with client(app) as bob, client(app) as carol:
        await enroll(bob, clock, "bob")
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")
        for _ in range(3):
            assert (await carol.get("/account", headers=HTML)).status_code == 200
    seen = [e for e in events if e["event"] == "impersonated_request" and e["path"] == "/account"]
    assert len(seen) == 3


async def test_a_customer_who_never_set_2fa_up_is_not_sent_to_enroll(
    clock: FixedClock, events: list[dict[str, Any]]
) -> None:
    store = MemoryStore()
    app = app_for(clock, store, events)
    async with client(app) as carol:
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")  # bob has no 2FA at all; the mode requires it
        r = await carol.get("/account", headers=HTML)
        assert r.status_code == 200
        assert "Signed in as bob" in visible(r)
    assert store.get(Key("user", "bob")) is None  # nothing written for him


async def test_without_her_own_verified_session_the_agent_is_signed_out(
    clock: FixedClock, events: list[dict[str, Any]]
) -> None:
    store = MemoryStore()
    app = app_for(clock, store, events)
    async with client(app) as carol:
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")
        assert cookie(carol) is not None
        carol.cookies.delete("mfa_session")  # her MFA session is gone: nothing vouches for her
        r = await carol.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
        again = await carol.get("/account", headers=HTML)
        assert again.headers["location"].startswith("/login")  # the app session ended too
    (refused,) = [e for e in events if e["event"] == "impersonation_refused"]
    assert (refused["user"], refused["actor"], refused["reason"]) == (
        "bob",
        "agent:carol",
        "mfa_required",
    )


async def test_a_page_asking_for_a_recent_factor_is_refused_not_stepped_up(
    clock: FixedClock, events: list[dict[str, Any]]
) -> None:
    store = MemoryStore()
    app = app_for(clock, store, events)
    async with client(app) as carol:
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")
        assert (await carol.get("/billing", headers=HTML)).status_code == 200  # fresh enough
        clock.advance(6 * 60)  # /billing asks for a factor from the last 5 minutes
        r = await carol.get("/billing", headers=HTML)
        assert r.status_code == 403
        assert (await carol.get("/account", headers=HTML)).status_code == 200  # still signed in
    assert [e["reason"] for e in events if e["event"] == "impersonation_refused"] == ["not_recent"]


async def test_without_the_hook_nothing_changes(clock: FixedClock) -> None:
    store = MemoryStore()
    app = demo(clock, store, is_impersonating=None)
    async with client(app) as carol:
        await enroll(carol, clock, "carol")
        await act_as(carol, "bob")  # the app switches users: the gate sees bob, unverified
        r = await carol.get("/account", headers=HTML)
        assert r.status_code == 303  # bob's own 2FA is asked: the situation the hook is for
        assert r.headers["location"].startswith("/_mfa/enroll")


async def test_only_support_staff_get_the_support_page(clock: FixedClock) -> None:
    store = MemoryStore()
    app = demo(clock, store)
    async with client(app) as bob:
        await enroll(bob, clock, "bob")
        assert (await bob.get("/support", headers=HTML)).status_code == 403
