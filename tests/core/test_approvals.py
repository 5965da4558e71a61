"""The push approval's core without a web page (issue 24): what a subscription must be, the
number and its choices, the sliding push limit, a failed push, and the options' validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core import approvals
from mfa_middleware.core.context import Caller
from mfa_middleware.core.records import Authenticator, UserRecord, user_key
from mfa_middleware.errors import ConfigError
from mfa_middleware.runtime import Runtime
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.testing import FixedClock, Outbox
from tests.support.webpush import Subscription, VapidKeys

KEY = "core-approvals-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
VAPID = VapidKeys.generate()
SERVICE = "https://push.example/"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def runtime(clock: FixedClock, **options: Any) -> tuple[Runtime, Outbox]:
    config = MFAConfig(
        secret_keys=[KEY],
        store=MemoryStore(),
        clock=clock,
        push_vapid_private_key=VAPID.private,
        push_contact="mailto:ops@example.com",
        push_services=[SERVICE],
        **options,
    )
    rt = Runtime(config)
    outbox = Outbox("push")
    rt.delivery = Delivery(push=outbox)
    return rt, outbox


def subscription_json(endpoint: str = SERVICE + "abc") -> str:
    browser = Subscription(endpoint)
    return json.dumps(browser.to_json())


def with_approver(rt: Runtime) -> UserRecord:
    subscription = json.loads(subscription_json())
    user = UserRecord(
        authenticators=[
            Authenticator("app1", "totp", "", 0.0, secret="x").to_doc(),
            Authenticator(
                "phone1",
                approvals.KIND,
                "Phone",
                0.0,
                credential={"device": "d1", "subscription": subscription},
            ).to_doc(),
        ]
    )
    rt.store.put(user_key("alice"), user.to_doc())
    return user


def caller(rt: Runtime) -> Caller:
    return Caller("alice", "session", "session-hash", rt.clock(), peer="192.0.2.1")


def test_a_subscription_must_point_at_an_allowed_push_service_with_real_keys() -> None:
    good = subscription_json()
    assert approvals.subscription_from(good, [SERVICE]) == {
        "endpoint": json.loads(good)["endpoint"],
        "keys": json.loads(good)["keys"],
    }
    assert (
        approvals.subscription_from(subscription_json("https://evil.example/x"), [SERVICE]) is None
    )
    assert (
        approvals.subscription_from(subscription_json("http://127.0.0.1:6379/"), [SERVICE]) is None
    )
    short_auth = json.loads(good)
    short_auth["keys"]["auth"] = "AAAA"
    assert approvals.subscription_from(json.dumps(short_auth), [SERVICE]) is None
    not_a_point = json.loads(good)
    not_a_point["keys"]["p256dh"] = short_auth["keys"]["auth"] * 20
    assert approvals.subscription_from(json.dumps(not_a_point), [SERVICE]) is None
    for broken in ("", "[]", "{}", '{"endpoint": 1, "keys": {}}', "not json"):
        assert approvals.subscription_from(broken, [SERVICE]) is None


def test_the_number_is_one_of_three_distinct_two_digit_choices() -> None:
    seen = set()
    for _ in range(200):
        made = approvals.new_approval(Caller("u", "s", "h", 0.0))
        assert 10 <= made.number <= 99
        assert made.number in made.choices
        assert len(set(made.choices)) == 3
        assert all(10 <= n <= 99 for n in made.choices)
        assert made.expires_at == approvals.TTL
        seen.add(made.choices.index(made.number))
    assert seen == {0, 1, 2}  # the right one is not always in the same place


def test_the_push_limit_slides_over_ten_minutes(clock: FixedClock) -> None:
    rt, outbox = runtime(clock, push_limit=2)
    user = with_approver(rt)

    def ask() -> approvals.Started:
        started: approvals.Started = rt.run(
            approvals.start(caller(rt), rt.params, user, "/_mfa/approve")
        )
        return started

    assert ask().approval is not None
    clock.advance(300)
    assert ask().approval is not None
    clock.advance(10)
    refused = ask()
    assert (refused.approval, refused.reason) == (None, "limit")
    assert refused.retry_after == pytest.approx(290)
    assert len(outbox.messages) == 2  # nothing sent beyond the limit
    clock.advance(291)  # the first request left the window; the second is still in it
    assert ask().approval is not None
    assert ask().reason == "limit"
    payload = json.loads(outbox.messages[-1].text)
    assert payload["url"].startswith("/_mfa/approve?t=")
    assert json.loads(outbox.messages[-1].to)["endpoint"] == SERVICE + "abc"


def test_a_failed_push_is_an_event_and_the_request_still_stands(clock: FixedClock) -> None:
    events: list[str] = []
    rt, _ = runtime(clock, on_event=lambda event: events.append(event["event"]))
    rt.delivery = Delivery(push=Outbox("push", fail=True))
    user = with_approver(rt)
    started = rt.run(approvals.start(caller(rt), rt.params, user, "/_mfa/approve"))
    assert started.approval is not None
    assert started.sent == 0
    assert events.count("approval_push_failed") == 1
    assert "approval_requested" in events
    status = rt.run(approvals.status(caller(rt)))
    assert status is not None
    assert status.state == approvals.PENDING


def test_without_an_approver_nothing_is_asked(clock: FixedClock) -> None:
    rt, outbox = runtime(clock)
    started = rt.run(approvals.start(caller(rt), rt.params, UserRecord(), "/_mfa/approve"))
    assert (started.approval, started.reason) == (None, "none")
    assert outbox.messages == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"push_vapid_private_key": "not-a-key!"}, "push_vapid_private_key"),
        ({"push_contact": None}, "push_contact"),
        ({"push_contact": "ops@example.com"}, "push_contact"),
        ({"push_services": ["ftp://push.example/"]}, "push_services"),
        ({"push_limit": 0}, "push_limit"),
    ],
)
def test_push_options_are_checked_at_startup(options: dict[str, Any], field: str) -> None:
    settings = {
        "secret_keys": [KEY],
        "store": MemoryStore(),
        "push_vapid_private_key": VAPID.private,
        "push_contact": "mailto:ops@example.com",
        **options,
    }
    with pytest.raises(ConfigError) as refused:
        MFAConfig(**settings)
    assert refused.value.field == field


def test_push_is_off_without_a_key_and_derives_the_public_key() -> None:
    assert MFAConfig(secret_keys=[KEY], store=MemoryStore()).push is None
    on = MFAConfig(
        secret_keys=[KEY],
        store=MemoryStore(),
        push_vapid_private_key=VAPID.private,
        push_contact="mailto:ops@example.com",
    ).push
    assert on is not None
    assert on.settings.public_key == VAPID.public
    assert on.settings.endpoints[0] == "https://fcm.googleapis.com/"
