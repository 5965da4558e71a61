"""Approving a sign-in from another browser (issue 24), end to end through the demo app and the
local Web Push service double: one client is the approver ("phone", a trusted browser that
subscribed), the other the browser signing in ("laptop")."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core.flows import throttle_key
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.core.throttle import ThrottleState
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    is_verified,
    login,
    make_app,
    smtp_sender,
    submit_code,
    totp,
    visible,
)
from tests.e2e.test_devices import answer_prompt, enroll_to_prompt
from tests.e2e.test_json_api import ANSWERED, PUSH_CALLS, Api, problem
from tests.support.mail_and_sms import Mailbox
from tests.support.webpush import Subscription, VapidKeys, WebPushService, webpush_service

pytestmark = pytest.mark.anyio

VAPID = VapidKeys.generate()
NUMBER = re.compile(r"data-approval-number>(\d+)<")


@pytest.fixture
def push() -> Iterator[WebPushService]:
    with webpush_service() as service:
        yield service


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def app(
    clock: FixedClock,
    push: WebPushService,
    store: MemoryStore,
    events: list[dict[str, Any]],
    mailbox: Mailbox,
) -> Any:
    return push_app(clock, push, store, events, email_sender=smtp_sender(mailbox))


def push_app(
    clock: FixedClock,
    push: WebPushService,
    store: MemoryStore,
    events: list[dict[str, Any]],
    **options: Any,
) -> Any:
    return make_app(
        clock,
        store=store,
        trust_duration="30d",
        push_vapid_private_key=VAPID.private,
        push_contact="mailto:ops@example.com",
        push_services=[f"{push.origin}/push/"],
        on_event=lambda event: events.append(dict(event)),
        **options,
    )


@pytest.fixture
async def phone(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as c:
        yield c


@pytest.fixture
async def laptop(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as c:
        yield c


async def make_approver(
    c: httpx.AsyncClient, clock: FixedClock, push: WebPushService, user: str = "alice"
) -> tuple[Subscription, str]:
    """Sign `user` up in this browser, trust it, and subscribe it as their approver through
    the same form the page's script posts."""
    await login(c, user)
    secret, _ = await enroll_to_prompt(c, clock)
    await answer_prompt(c, "trust", name="Phone")
    page = await c.get("/_mfa/approvers", headers=HTML)
    assert page.status_code == 200, page.text
    assert f'data-key="{VAPID.public}"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    subscription = push.subscribe(VAPID.public)
    r = await c.post(
        "/_mfa/approvers",
        data={
            "csrf": csrf_of(page.text),
            "subscription": json.dumps(subscription.to_json()),
            "name": "My phone",
        },
        headers=HTML,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/_mfa/approvers?done=added"
    return subscription, secret


async def ask(
    c: httpx.AsyncClient, user: str = "alice", *, log_in: bool = True
) -> tuple[httpx.Response, int]:
    """Log in and ask for approval at the challenge: the page and the number it shows."""
    if log_in:
        await login(c, user)
    page = await challenge_page(c, "/account")
    assert "Approve on your other device" in page.text
    r = await c.post(
        "/_mfa/challenge/approve",
        data={"csrf": csrf_of(page.text), "action": "start", "next": "/account"},
        headers=HTML,
    )
    found = NUMBER.search(r.text)
    return r, int(found.group(1)) if found else 0


async def opened(c: httpx.AsyncClient, push: WebPushService, sub: Subscription) -> httpx.Response:
    """The notification, decrypted as the approver's browser would, and its page opened."""
    payload = sub.read_json(push.wait_for(sub, len(push.received(sub)) or 1))
    assert payload["url"].startswith("/_mfa/approve?t=")
    return await c.get(payload["url"], headers=HTML)


async def pick(c: httpx.AsyncClient, page: httpx.Response, choice: str) -> httpx.Response:
    token = re.search(r'name="t" value="([^"]+)"', page.text)
    assert token, page.text
    data = {"csrf": csrf_of(page.text), "t": token.group(1), "choice": choice}
    return await c.post("/_mfa/approve", data=data, headers=HTML)


async def state(c: httpx.AsyncClient) -> str:
    r = await c.get("/_mfa/challenge/approve/status", headers={"accept": "application/json"})
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


async def finish(c: httpx.AsyncClient) -> httpx.Response:
    page = await c.get("/_mfa/challenge/approve?next=/account", headers=HTML)
    return await c.post(
        "/_mfa/challenge/approve",
        data={"csrf": csrf_of(page.text), "action": "finish", "next": "/account"},
        headers=HTML,
    )


def failures(store: MemoryStore, user: str = "alice") -> int:
    return ThrottleState.from_doc(store.get(throttle_key(user))).failures


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


async def test_the_right_number_signs_the_waiting_browser_in(
    clock: FixedClock,
    push: WebPushService,
    phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
    store: MemoryStore,
    events: list[dict[str, Any]],
) -> None:
    sub, _ = await make_approver(phone, clock, push)
    approvers = list(UserRecord.from_doc(store.get(user_key("alice"))).factors())
    assert [a.kind for a in approvers] == ["totp", "approver"]
    assert approvers[1].name == "My phone"
    asked, number = await ask(laptop)
    assert asked.status_code == 200
    assert 10 <= number <= 99
    assert "data-status=" in asked.text
    assert "connect-src 'self'" in asked.headers["content-security-policy"]
    message = push.wait_for(sub)
    assert message.urgency == "high"
    assert message.vapid_claims["sub"] == "mailto:ops@example.com"
    payload = sub.read_json(message)
    assert str(number) not in json.dumps(payload)  # the approver must read it off the login page
    assert await state(laptop) == "pending"

    page = await opened(phone, push, sub)
    assert page.status_code == 200
    shown = [int(n) for n in re.findall(r'name="choice" value="(\d+)"', page.text)]
    assert len(shown) == 3
    assert number in shown
    assert len(set(shown)) == 3
    assert "IP address" in visible(page)
    done = await pick(phone, page, str(number))
    assert "Sign-in approved" in visible(done)
    assert await state(laptop) == "approved"
    assert not await is_verified(laptop)

    r = await finish(laptop)
    assert r.status_code == 303
    assert r.headers["location"] == "/_mfa/trust?next=%2Faccount"
    assert await is_verified(laptop)
    mfa = (await laptop.get("/api/mfa", headers={"accept": "application/json"})).json()
    assert (mfa["method"], mfa["amr"]) == ("approver", ["mca"])  # what the app sees
    assert {"approval_requested", "approval_approved"} <= set(names(events))
    used = UserRecord.from_doc(store.get(user_key("alice"))).factors()[1]
    assert used.last_used_at == clock()

    # the approval URL again: answered once, then gone with the finished sign-in
    replay = await phone.get(sub.read_json(message)["url"], headers=HTML)
    assert replay.status_code == 404
    again = await pick(phone, page, str(number))
    assert again.status_code == 404


@pytest.mark.parametrize("choice", ["wrong", "deny"])
async def test_a_wrong_number_or_this_wasnt_me_kills_the_sign_in(
    choice: str,
    clock: FixedClock,
    push: WebPushService,
    phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
    store: MemoryStore,
    events: list[dict[str, Any]],
    mailbox: Mailbox,
) -> None:
    sub, _ = await make_approver(phone, clock, push)
    _, number = await ask(laptop)
    page = await opened(phone, push, sub)
    shown = list(re.findall(r'name="choice" value="(\d+)"', page.text))
    picked = next(n for n in shown if n != str(number)) if choice == "wrong" else "deny"
    done = await pick(phone, page, picked)
    assert "Sign-in refused" in visible(done)
    assert failures(store) == 1
    denied = [e for e in events if e["event"] == "approval_denied"]
    assert [e["reason"] for e in denied] == ["wrong_number" if choice == "wrong" else "not_me"]
    notice = mailbox.last_match(re.compile(r"was refused on your approver"))
    assert notice is not None

    assert await state(laptop) == "denied"
    r = await finish(laptop)
    assert r.status_code == 200
    assert "refused on your approver" in visible(r)
    assert not await is_verified(laptop)
    # the dead request cannot be approved afterwards
    late = await pick(phone, page, str(number))
    assert late.status_code == 410
    assert not await is_verified(laptop)


LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
    " Safari/537.36"
)


async def test_the_asking_browser_is_named_in_the_approvers_language(
    clock: FixedClock,
    push: WebPushService,
    phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
    mailbox: Mailbox,
) -> None:
    """The laptop asks in English; the approver reads in French: its page, its JSON list and
    the refusal mail name the asking browser in French, not in the asker's language."""
    sub, _ = await make_approver(phone, clock, push)
    laptop.headers["user-agent"] = LINUX_CHROME
    await ask(laptop)
    french = {**HTML, "accept-language": "fr"}
    payload = sub.read_json(push.wait_for(sub))
    page = await phone.get(payload["url"], headers=french)
    assert "Chrome sous Linux" in visible(page)
    listed = await phone.get(
        "/_mfa/api/approve", headers={"accept": "application/json", "accept-language": "fr"}
    )
    assert [a["browser"] for a in listed.json()["approvals"]] == ["Chrome sous Linux"]
    token = re.search(r'name="t" value="([^"]+)"', page.text)
    assert token
    data = {"csrf": csrf_of(page.text), "t": token.group(1), "choice": "deny"}
    await phone.post("/_mfa/approve", data=data, headers=french)
    assert mailbox.last_match(re.compile(r"Chrome sous Linux"))


async def test_an_expired_request_cannot_be_approved(
    clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient, laptop: httpx.AsyncClient
) -> None:
    sub, _ = await make_approver(phone, clock, push)
    _, number = await ask(laptop)
    page = await opened(phone, push, sub)
    clock.advance(121)
    late = await pick(phone, page, str(number))
    assert late.status_code == 410
    assert "Request expired" in visible(late)
    assert (await phone.get(sub.read_json(push.wait_for(sub))["url"])).status_code == 410
    assert await state(laptop) == "none"
    r = await finish(laptop)
    assert r.status_code == 200
    assert not await is_verified(laptop)


async def test_another_users_approver_and_a_non_approver_browser_are_refused(
    app: Any, clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
) -> None:  # fmt: skip
    sub, _ = await make_approver(phone, clock, push)
    async with client(app) as bobs_phone:
        await make_approver(bobs_phone, clock, push, user="bob")
        _, number = await ask(laptop)
        url = sub.read_json(push.wait_for(sub))["url"]
        theirs = await bobs_phone.get(url, headers=HTML)
        assert theirs.status_code == 404
        page = await phone.get(url, headers=HTML)
        token = re.search(r'name="t" value="([^"]+)"', page.text)
        assert token
        own = await bobs_phone.get("/_mfa/approve", headers=HTML)
        assert "No sign-in is waiting" in visible(own)  # alice's request is not on bob's list
        data = {"csrf": csrf_of(own.text), "t": token.group(1), "choice": str(number)}
        forged = await bobs_phone.post("/_mfa/approve", data=data, headers=HTML)
        assert forged.status_code == 404
    # alice herself in a browser that is not her approver (a second, untrusted session)
    async with client(app) as other:
        await login(other)
        assert (await other.get(url, headers=HTML)).status_code in (303, 404)
    assert await state(laptop) == "pending"


async def test_the_push_limit_refuses_and_sends_nothing(
    clock: FixedClock,
    push: WebPushService,
    store: MemoryStore,
    events: list[dict[str, Any]],
) -> None:
    app = push_app(clock, push, store, events, push_limit=2)
    async with client(app) as phone, client(app) as laptop:
        sub, _ = await make_approver(phone, clock, push)
        for attempt in range(2):
            first, number = await ask(laptop, log_in=attempt == 0)
            assert first.status_code == 200
            assert number
        refused, number = await ask(laptop, log_in=False)
        assert refused.status_code == 429
        assert number == 0
        assert "Too many approval requests" in visible(refused)
        assert len(push.received(sub)) == 2
        assert "approval_refused" in names(events)
        clock.advance(601)
        later, number = await ask(laptop, log_in=False)
        assert later.status_code == 200
        assert number


async def test_an_open_approver_sees_waiting_sign_ins_without_a_push(
    clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient, laptop: httpx.AsyncClient
) -> None:
    await make_approver(phone, clock, push)
    settings = await phone.get("/_mfa/settings", headers=HTML)
    assert "A sign-in is waiting" not in settings.text
    _, number = await ask(laptop)
    settings = await phone.get("/_mfa/settings", headers=HTML)
    assert "A sign-in is waiting for your approval" in visible(settings)
    listed = await phone.get("/_mfa/approve", headers=HTML)
    assert listed.status_code == 200
    assert f'value="{number}"' in listed.text
    done = await pick(phone, listed, str(number))
    assert "Sign-in approved" in visible(done)
    assert (await finish(laptop)).status_code == 303
    assert await is_verified(laptop)


async def test_an_approver_is_not_the_last_factor_and_needs_a_trusted_browser(
    clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient, laptop: httpx.AsyncClient,
    store: MemoryStore,
) -> None:  # fmt: skip
    _, secret = await make_approver(phone, clock, push)
    user = UserRecord.from_doc(store.get(user_key("alice")))
    totp_id = user.factors()[0].id
    page = await phone.get("/_mfa/authenticators", headers=HTML)
    assert "Browser that approves sign-ins" in visible(page) or "My phone" in visible(page)
    r = await phone.post(
        "/_mfa/authenticators",
        data={"csrf": csrf_of(page.text), "authenticator": totp_id, "action": "remove"},
        headers=HTML,
    )
    assert r.status_code == 409
    assert len(UserRecord.from_doc(store.get(user_key("alice"))).factors()) == 2
    # a browser that verified with a code but is not trusted cannot become an approver
    await login(laptop)
    clock.advance(30)
    assert (await submit_code(laptop, totp(secret, clock()))).status_code == 303
    await answer_prompt(laptop, "skip")
    page = await laptop.get("/_mfa/approvers", headers=HTML)
    subscription = push.subscribe(VAPID.public)
    data = {"csrf": csrf_of(page.text), "subscription": json.dumps(subscription.to_json())}
    refused = await laptop.post("/_mfa/approvers", data=data, headers=HTML)
    assert refused.status_code == 400
    assert "Only a trusted browser" in visible(refused)
    # nor can a subscription pointing anywhere but an allowed push service
    own = await phone.get("/_mfa/approvers", headers=HTML)
    elsewhere = json.dumps(subscription.to_json()).replace(push.origin, "http://127.0.0.1:1")
    data = {"csrf": csrf_of(own.text), "subscription": elsewhere}
    refused = await phone.post("/_mfa/approvers", data=data, headers=HTML)
    assert refused.status_code == 400
    assert "subscription could not be used" in visible(refused)
    assert len(UserRecord.from_doc(store.get(user_key("alice"))).factors()) == 2


async def test_the_json_api_asks_polls_answers_and_finishes(
    clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient, laptop: httpx.AsyncClient
) -> None:
    """The same steps through /_mfa/api: an approver subscribed by the API, the request, the
    poll, the answer on the approver, and the sign-in finished."""
    await login(phone)
    await enroll_to_prompt(phone, clock)
    await answer_prompt(phone, "trust")
    on_phone = Api(phone)
    subscription = push.subscribe(VAPID.public)
    added = await on_phone.post(
        "approvers", {"subscription": subscription.to_json(), "name": "Tablet"}
    )
    assert added.status_code == 200, added.text
    assert added.json()["name"] == "Tablet"

    await login(laptop)
    on_laptop = Api(laptop)
    assert (await on_laptop.state())["state"] == "challenge"
    problem(await on_laptop.post("approval/finish"), 409, "not_approved")
    asked = await on_laptop.post("approval")
    assert asked.status_code == 200, asked.text
    number = asked.json()["number"]
    assert asked.json()["sent"] == 1
    assert asked.json()["expires_in"] == 120
    assert (await on_laptop.get("approval")).json() == {
        "state": "pending",
        "number": number,
        "expires_in": 120,
    }
    waiting = (await on_phone.get("approve")).json()["approvals"]
    assert len(waiting) == 1
    assert number in waiting[0]["choices"]
    problem(await on_phone.post("approve", {"approval": "nope", "choice": "1"}), 404, "not_found")
    done = await on_phone.post("approve", {"approval": waiting[0]["id"], "choice": str(number)})
    assert done.json() == {"outcome": "approved"}
    problem(
        await on_phone.post("approve", {"approval": waiting[0]["id"], "choice": str(number)}),
        410,
        "answered",
    )
    finished = await on_laptop.post("approval/finish")
    assert finished.status_code == 200, finished.text
    assert finished.json()["verified"] is True
    assert await is_verified(laptop)
    assert PUSH_CALLS <= ANSWERED  # each answer checked against the OpenAPI document


async def test_an_approver_whose_trust_was_revoked_answers_nothing(
    clock: FixedClock,
    push: WebPushService,
    phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
    store: MemoryStore,
) -> None:
    sub, _ = await make_approver(phone, clock, push)
    _, number = await ask(laptop)
    page = await opened(phone, push, sub)
    assert page.status_code == 200
    [device] = [name for name, doc in store.scan("device", "alice") if doc["trusted_until"]]
    devices = await phone.get("/_mfa/devices", headers=HTML)
    data = {"csrf": csrf_of(devices.text), "device": device, "action": "delete"}
    assert (await phone.post("/_mfa/devices", data=data, headers=HTML)).status_code == 303
    refused = await pick(phone, page, str(number))
    assert refused.status_code == 404
    assert await state(laptop) == "pending"
    listed = await phone.get("/_mfa/approve", headers=HTML)
    assert f'value="{number}"' not in listed.text


async def test_subscribing_again_replaces_the_browsers_subscription(
    clock: FixedClock, push: WebPushService, phone: httpx.AsyncClient, store: MemoryStore
) -> None:
    first, _ = await make_approver(phone, clock, push)
    before = UserRecord.from_doc(store.get(user_key("alice"))).factors()[1]
    page = await phone.get("/_mfa/approvers", headers=HTML)
    assert "This browser" in visible(page)  # listed as this browser's approver
    renewed = push.subscribe(VAPID.public)
    data = {
        "csrf": csrf_of(page.text),
        "subscription": json.dumps(renewed.to_json()),
        "name": "Renewed phone",
    }
    assert (await phone.post("/_mfa/approvers", data=data, headers=HTML)).status_code == 303
    factors = UserRecord.from_doc(store.get(user_key("alice"))).factors()
    assert [f.kind for f in factors] == ["totp", "approver"]
    after = factors[1]
    assert after.id == before.id
    assert after.name == "Renewed phone"
    assert after.credential is not None
    assert after.credential["subscription"]["endpoint"] == renewed.endpoint != first.endpoint


async def test_the_api_says_no_approver_when_the_approvers_went_meanwhile(
    clock: FixedClock,
    push: WebPushService,
    phone: httpx.AsyncClient,
    laptop: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The core found no approver after the page's check did (one removed in between): the
    answer is no_approver, not a lockout the user does not have."""
    from mfa_middleware.core import approvals
    from mfa_middleware.web import api_calls

    await login(phone)
    await enroll_to_prompt(phone, clock)
    await answer_prompt(phone, "trust")
    added = await Api(phone).post(
        "approvers", {"subscription": push.subscribe(VAPID.public).to_json(), "name": "Tablet"}
    )
    assert added.status_code == 200, added.text

    def none_left(*args: Any) -> Any:
        return approvals.Started(None, "none")
        yield  # a flow that asks the store nothing

    monkeypatch.setattr(api_calls.approvals, "start", none_left)
    await login(laptop)
    on_laptop = Api(laptop)
    await on_laptop.state()
    problem(await on_laptop.post("approval"), 409, "no_approver")
