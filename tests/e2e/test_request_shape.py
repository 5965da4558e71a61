"""The shape of a page request (issue 16): page handlers are plain functions, and the flows a
challenge POST runs are at most three generators deep wherever they wait for the store.

The depth is read from the driver: after every effect a flow yields, the chain of generators
that delegate to each other (`gi_yieldfrom`) down to the one that yielded it is counted.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from mfa_middleware import drivers
from mfa_middleware.web.router import ROUTES
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    enroll_email,
    login,
    make_app,
    relogin,
    senders,
    sign_up,
    totp,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio
MAX_DEPTH = 3


def test_every_page_handler_is_a_plain_function() -> None:
    handlers = [h for route in ROUTES.values() for h in (route.get, route.post) if h]
    assert len(handlers) >= 30
    generators = [h.__qualname__ for h in handlers if inspect.isgeneratorfunction(h)]
    assert generators == []


@pytest.fixture
def depths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every depth at which a flow yielded an effect while the fixture is active."""
    seen: list[int] = []
    advance = drivers.Chain.advance

    def counting(self: drivers.Chain, value: Any = None, error: Any = None) -> Any:
        effect = advance(self, value, error)
        if not isinstance(effect, drivers.Done):
            depth, generator = 0, self.flow
            while generator is not None:
                depth += 1
                generator = generator.gi_yieldfrom
            seen.append(depth)
        return effect

    monkeypatch.setattr(drivers.Chain, "advance", counting)
    return seen


@pytest.mark.parametrize("right", [True, False], ids=["right code", "wrong code"])
async def test_an_app_code_challenge_is_at_most_three_generators_deep(
    clock: FixedClock, depths: list[int], right: bool
) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(30)
        page = await challenge_page(c)
        code = totp(secret, clock()) if right else wrong_code(secret, clock())
        depths.clear()
        r = await c.post(
            "/_mfa/challenge", headers=HTML, data={"csrf": csrf_of(page.text), "code": code}
        )
    assert r.status_code == (303 if right else 400)
    assert len(depths) >= 5  # the session, the device, the attempt, the check, its event
    assert max(depths) <= MAX_DEPTH, depths


async def test_a_sent_code_challenge_and_a_lockout_notice_stay_three_deep(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble, depths: list[int]
) -> None:
    app = make_app(clock, **senders(mailbox, twilio), max_attempts=2)
    async with client(app) as c:
        await login(c)
        await enroll_email(c, mailbox)
        await relogin(c)
        page = await challenge_page(c)  # sends the login code
        depths.clear()
        for _ in range(2):  # the second wrong code locks out and mails the user
            r = await c.post(
                "/_mfa/challenge",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "code": "000000"},
            )
    assert r.status_code == 429
    assert "wrong sign-in codes" in mailbox.messages[-1]["subject"]
    assert max(depths) <= MAX_DEPTH, depths
