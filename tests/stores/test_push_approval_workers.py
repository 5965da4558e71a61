"""Approving a sign-in across processes (issue 24): two uvicorn workers of the Starlette demo
on one store, SQLite or Redis. The approver talks to one worker, the browser signing in to the
other; the pending approval, its answer and the push count live in the store alone."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.example_server import HTML, form_field, log_in, serving_example, sign_up
from tests.support.redis_servers import redis_server, require_redis
from tests.support.webpush import VapidKeys, WebPushService, webpush_service

SECRET = secrets.token_urlsafe(48)
VAPID = VapidKeys.generate()


@contextmanager
def two_workers(store_env: dict[str, str]) -> Iterator[tuple[str, str, WebPushService]]:
    with webpush_service() as push, ExitStack() as stack:
        env = {
            **store_env,
            "MFA_SECRET": SECRET,
            "MFA_DEMO_PUSH_KEY": VAPID.private,
            "MFA_DEMO_PUSH_SERVICES": f"{push.origin}/push/",
        }
        first = stack.enter_context(serving_example(env))
        second = stack.enter_context(serving_example(env))
        yield first.base, second.base, push


@pytest.fixture(params=["sqlite", "redis"])
def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, WebPushService]]:
    if request.param == "sqlite":
        with two_workers({"MFA_TEST_SQLITE_PATH": str(tmp_path / "mfa.sqlite3")}) as running:
            yield running
        return
    require_redis()
    with (
        redis_server(tmp_path / "redis") as server,
        two_workers({"MFA_TEST_REDIS_URL": server.url}) as running,
    ):
        yield running


def test_an_approval_answered_on_one_worker_signs_in_on_the_other(
    workers: tuple[str, str, WebPushService],
) -> None:
    first, second, push = workers
    with (
        httpx.Client(base_url=first) as phone,
        httpx.Client(base_url=second) as laptop,
    ):
        # the approver, on the first worker: signed up, trusted, subscribed
        sign_up(phone)
        trust = phone.get("/_mfa/trust?next=/account", headers=HTML)
        answered = phone.post(
            "/_mfa/trust",
            headers=HTML,
            data={"csrf": form_field(trust.text, "csrf"), "choice": "trust", "next": "/account"},
        )
        assert answered.status_code == 303
        page = phone.get("/_mfa/approvers", headers=HTML)
        subscription = push.subscribe(VAPID.public)
        added = phone.post(
            "/_mfa/approvers",
            headers=HTML,
            data={
                "csrf": form_field(page.text, "csrf"),
                "subscription": json.dumps(subscription.to_json()),
            },
        )
        assert added.status_code == 303, added.text

        # the browser signing in, on the second worker
        assert log_in(laptop) == 303
        challenge = laptop.get("/_mfa/challenge?next=/account", headers=HTML)
        asked = laptop.post(
            "/_mfa/challenge/approve",
            headers=HTML,
            data={
                "csrf": form_field(challenge.text, "csrf"),
                "action": "start",
                "next": "/account",
            },
        )
        found = re.search(r"data-approval-number>(\d+)<", asked.text)
        assert found, asked.text
        number = found.group(1)

        # the notification, opened and answered on the first worker
        url = subscription.read_json(push.wait_for(subscription, timeout=10))["url"]
        approve = phone.get(url, headers=HTML)
        assert approve.status_code == 200
        token = form_field(approve.text, "t")
        done = phone.post(
            "/_mfa/approve",
            headers=HTML,
            data={"csrf": form_field(approve.text, "csrf"), "t": token, "choice": number},
        )
        assert "Sign-in approved" in done.text

        # the second worker sees it at once and signs the laptop in
        status = laptop.get(
            "/_mfa/challenge/approve/status", headers={"accept": "application/json"}
        )
        assert status.json() == {"state": "approved"}
        waiting = laptop.get("/_mfa/challenge/approve?next=/account", headers=HTML)
        finished = laptop.post(
            "/_mfa/challenge/approve",
            headers=HTML,
            data={"csrf": form_field(waiting.text, "csrf"), "action": "finish", "next": "/account"},
        )
        assert finished.status_code == 303
        assert finished.headers["location"].startswith("/_mfa/trust")
        assert laptop.get("/account", headers=HTML).status_code == 200
