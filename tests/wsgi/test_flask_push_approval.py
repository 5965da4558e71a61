"""Approving a sign-in through the WSGI adapter (issue 24): the same pages as under ASGI, the
push sent by the sync sender, the waiting browser's poll answered as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.testing import FixedClock
from tests.support.webpush import VapidKeys, WebPushService, webpush_service
from tests.wsgi.flask_app import create_app
from tests.wsgi.test_flask import csrf, enroll, login

VAPID = VapidKeys.generate()


@pytest.fixture
def push() -> Iterator[WebPushService]:
    with webpush_service() as service:
        yield service


def test_an_approval_signs_the_waiting_browser_in_under_wsgi(push: WebPushService) -> None:
    clock = FixedClock()
    app = create_app(
        store=MemoryStore(),
        clock=clock,
        cookie_secure=False,
        trust_duration="30d",  # an approver is a trusted browser
        push_vapid_private_key=VAPID.private,
        push_contact="mailto:ops@example.com",
        push_services=[f"{push.origin}/push/"],
    )
    phone, laptop = app.test_client(), app.test_client()
    login(phone)
    enroll(phone, clock)
    trust = phone.get("/_mfa/trust?next=/").get_data(as_text=True)
    assert (
        phone.post("/_mfa/trust", data={"csrf": csrf(trust), "choice": "trust"}).status_code == 303
    )
    page = phone.get("/_mfa/approvers").get_data(as_text=True)
    subscription = push.subscribe(VAPID.public)
    added = phone.post(
        "/_mfa/approvers",
        data={"csrf": csrf(page), "subscription": json.dumps(subscription.to_json())},
    )
    assert added.status_code == 303

    login(laptop)
    challenge = laptop.get("/_mfa/challenge").get_data(as_text=True)
    assert "Approve on your other device" in challenge
    asked = laptop.post(
        "/_mfa/challenge/approve", data={"csrf": csrf(challenge), "action": "start"}
    )
    found = re.search(r"data-approval-number>(\d+)<", asked.get_data(as_text=True))
    assert found
    url = subscription.read_json(push.wait_for(subscription))["url"]
    approve = phone.get(url).get_data(as_text=True)
    token = re.search(r'name="t" value="([^"]+)"', approve)
    assert token
    done = phone.post(
        "/_mfa/approve", data={"csrf": csrf(approve), "t": token.group(1), "choice": found.group(1)}
    )
    assert "Sign-in approved" in done.get_data(as_text=True)
    status = laptop.get("/_mfa/challenge/approve/status", headers={"accept": "application/json"})
    assert status.get_json() == {"state": "approved"}
    waiting = laptop.get("/_mfa/challenge/approve").get_data(as_text=True)
    finished = laptop.post(
        "/_mfa/challenge/approve", data={"csrf": csrf(waiting), "action": "finish"}
    )
    assert finished.status_code == 303
    assert laptop.get("/").get_data(as_text=True) == "<p>Hello alice</p>"
