"""LOG-02: the audit trail has one event per decision, each naming the user, how (the
factor or the actor), the outcome and the client address."""

from __future__ import annotations

from typing import Any

import pytest

from mfa_middleware import MemoryStore
from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll,
    enroll_email,
    login,
    make_app,
    relogin,
    senders,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


@pytest.mark.checklist("LOG-02")
async def test_one_event_per_decision_with_who_how_outcome_and_where(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    events: list[dict[str, Any]] = []
    store = MemoryStore()
    app = make_app(
        clock,
        store=store,
        on_event=events.append,
        max_attempts=2,
        is_admin=lambda p: p.id == "bob",
        **senders(mailbox, twilio),
    )

    def since(mark: int) -> list[tuple[Any, ...]]:
        return [(e["event"], e.get("user"), e.get("ip")) for e in events[mark:]]

    async with client(app) as c:
        await login(c)
        mark = len(events)
        await enroll_email(c, mailbox)  # enroll
        assert ("enrolled", "alice", "127.0.0.1") in since(mark)
        assert next(e for e in events[mark:] if e["event"] == "enrolled")["method"] == "email"
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        csrf = csrf_of(page.text)
        mark = len(events)
        clock.advance(31)
        await c.post("/_mfa/challenge/resend", headers=HTML, data={"csrf": csrf})  # resend
        assert since(mark) == [("code_sent", "alice", "127.0.0.1")]
        code = mailbox.last_code()
        wrong = next(f"{n:06d}" for n in range(10) if f"{n:06d}" != code)
        mark = len(events)
        await c.post("/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": wrong})
        assert since(mark) == [("verify_failed", "alice", "127.0.0.1")]  # failure
        mark = len(events)
        await c.post("/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": wrong})
        assert since(mark) == [  # lockout
            ("locked_out", "alice", "127.0.0.1"),
            ("verify_failed", "alice", "127.0.0.1"),
        ]
        clock.advance(61)
        mark = len(events)
        r = await c.post("/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": code})
        assert r.status_code == 303
        assert since(mark) == [("verify_succeeded", "alice", "127.0.0.1")]  # success
        outcome = [e for e in events if e["event"].startswith("verify_")]
        assert {e["method"] for e in outcome} == {"email"}
        failed = [e["locked"] for e in outcome if e["event"] == "verify_failed"]
        assert failed == [False, True]  # the outcome: wrong, then wrong and locked
        page = await c.get("/_mfa/disable", headers=HTML)
        mark = len(events)
        await c.post("/_mfa/disable", headers=HTML, data={"csrf": csrf_of(page.text)})  # disable
        assert ("mfa_reset", "alice", "127.0.0.1") in since(mark)
        assert events[-1]["actor"] == "user:alice"  # she did it herself
    async with client(app) as admin:
        await login(admin, "bob")
        await enroll(admin, clock)
        page = await admin.get("/_mfa/admin", headers=HTML)
        for action in ("reset", "logout"):  # reset and force-logout by an administrator
            mark = len(events)
            await admin.post(
                "/_mfa/admin",
                headers=HTML,
                # a reset is confirmed on a page first (issue 21): confirm=yes is its button
                data={
                    "csrf": csrf_of(page.text),
                    "action": action,
                    "user": "alice",
                    "confirm": "yes",
                },
            )
            decided = [e for e in events[mark:] if e["event"] in ("mfa_reset", "forced_logout")]
            assert [(e["user"], e["actor"], e["ip"]) for e in decided] == [
                ("alice", "admin:bob", "127.0.0.1")
            ]
