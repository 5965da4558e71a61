"""The takeover chain through a stale email factor (issue 14, point 2).

An attacker who has alice's password enrolls an email factor with their own address. An
administrator resets alice. The address used to survive the reset and to be preferred over
the app's address of record: the "2FA turned on" notice of alice's new enrollment went to the
attacker, and so did the lost-device link that let them replace her factor with theirs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from examples.starlette_app import users as demo_users

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core import authenticators
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll,
    login,
    make_app,
    relogin,
    smtp_sender,
)
from tests.support.mail_and_sms import Mailbox

pytestmark = pytest.mark.anyio

ATTACKER = "attacker@evil.example"
ALICE = "alice@example.com"


def app_address(monkeypatch: pytest.MonkeyPatch, email: str) -> None:
    """What the app knows as alice's address of record (none at first)."""
    monkeypatch.setitem(demo_users.USERS, "alice", replace(demo_users.USERS["alice"], email=email))


def recipients(mailbox: Mailbox) -> list[str]:
    return [str(m["To"]) for m in mailbox.messages]


@pytest.mark.checklist("NOT-01")
async def test_a_factor_address_never_receives_notices_or_recovery_links(
    clock: FixedClock, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    options: dict[str, Any] = {
        "email_codes": True,
        "email_sender": smtp_sender(mailbox),
        "public_url": "https://app.example.com",
        "enroll_code_ttl": None,
    }
    app = make_app(clock, store=store, **options)
    app_address(monkeypatch, "")
    async with client(app) as attacker:
        await login(attacker)  # with alice's password
        page = await attacker.get("/_mfa/enroll/email", headers=HTML)
        r = await attacker.post(
            "/_mfa/enroll/email",
            data={"csrf": csrf_of(page.text), "email": ATTACKER},
            headers=HTML,
        )
        code_page = await attacker.get(r.headers["location"], headers=HTML)
        r = await attacker.post(
            "/_mfa/enroll/code",
            data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        assert r.status_code == 303
    assert recipients(mailbox) == [ATTACKER]  # the enrollment code, and nothing else

    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock, enroll_code_ttl=None)
    admin = Admin(Runtime(config), "test")
    admin.reset("alice")
    assert UserRecord.from_doc(store.get(user_key("alice"))).email is None  # forgotten

    app_address(monkeypatch, ALICE)  # the app has her address of record now
    async with client(app) as owner:
        await login(owner)
        await enroll(owner, clock)  # "two-step verification turned on"
    assert recipients(mailbox)[1:] == [ALICE]

    async with client(app) as attacker:
        await login(attacker)
        page = await attacker.get("/_mfa/lost", headers=HTML)
        await attacker.post("/_mfa/lost", data={"csrf": csrf_of(page.text)}, headers=HTML)
    assert recipients(mailbox)[1:] == [ALICE, ALICE]  # the link went to alice, not to them
    assert recipients(mailbox).count(ATTACKER) == 1


async def test_turning_off_forgets_the_factor_address(
    clock: FixedClock, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    app = make_app(
        clock, store=store, email_codes=True, email_sender=smtp_sender(mailbox), mode="optional"
    )
    app_address(monkeypatch, "")
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post(
            "/_mfa/enroll/email", data={"csrf": csrf_of(page.text), "email": ATTACKER}, headers=HTML
        )
        code_page = await c.get(r.headers["location"], headers=HTML)
        await c.post(
            "/_mfa/enroll/code",
            data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        page = await c.get("/_mfa/disable", headers=HTML)
        r = await c.post("/_mfa/disable", data={"csrf": csrf_of(page.text)}, headers=HTML)
        assert r.status_code == 303
    record = UserRecord.from_doc(store.get(user_key("alice")))
    assert record.method is None
    assert record.email is None


async def test_switching_method_drops_the_other_channels_contact(
    clock: FixedClock, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removed factor's address is gone from the store (and SMS and email are never active
    together: tests/e2e/test_authenticators.py)."""
    store = MemoryStore()
    app = make_app(clock, store=store, email_codes=True, email_sender=smtp_sender(mailbox))
    app_address(monkeypatch, "")
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post(
            "/_mfa/enroll/email", data={"csrf": csrf_of(page.text), "email": ATTACKER}, headers=HTML
        )
        code_page = await c.get(r.headers["location"], headers=HTML)
        await c.post(
            "/_mfa/enroll/code",
            data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        await relogin(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        r = await c.post(
            "/_mfa/challenge",
            data={"csrf": csrf_of(page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        assert r.status_code == 303
        await enroll(c, clock)  # a recent code: an authenticator app beside the email codes
        record = UserRecord.from_doc(store.get(user_key("alice")))
        assert kinds(record) == ["email", "totp"]
        email_id = authenticators.of_kind(record, "email")[0].id
        page = await c.get("/_mfa/authenticators", headers=HTML)
        r = await c.post(
            "/_mfa/authenticators",
            data={"csrf": csrf_of(page.text), "authenticator": email_id, "action": "remove"},
            headers=HTML,
        )
        assert r.status_code == 303
    record = UserRecord.from_doc(store.get(user_key("alice")))
    assert kinds(record) == ["totp"]
    assert ATTACKER not in str(store.get(user_key("alice")))
