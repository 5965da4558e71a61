"""After a recovery code is used (issue 14, point 16; RC-05): how many remain, a new set
offered in the same flow, and the account's address told."""

from __future__ import annotations

import html
import re

import pytest

from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    is_verified,
    login,
    make_app,
    relogin,
    secret_of,
    smtp_sender,
    totp,
)
from tests.support.mail_and_sms import Mailbox

pytestmark = pytest.mark.anyio

CODE_RE = re.compile(r"<li><code>([0-9a-z-]+)</code></li>")


@pytest.mark.checklist("RC-05", "NOT-01")
async def test_a_used_recovery_code_shows_what_is_left_and_offers_a_new_set(
    clock: FixedClock, mailbox: Mailbox
) -> None:
    app = make_app(clock, recovery_code_count=3, email_sender=smtp_sender(mailbox))
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret_of(page.text), clock())},
        )
        codes = CODE_RE.findall(done.text)
        assert len(codes) == 3
        for used, left in ((codes[0], 2), (codes[1], 1)):
            await relogin(c)
            page = await c.get("/_mfa/recovery?next=/account", headers=HTML)
            r = await c.post(
                "/_mfa/recovery",
                headers=HTML,
                data={"csrf": csrf_of(page.text), "code": used, "next": "/account"},
            )
            assert r.status_code == 200
            text = html.unescape(r.text)
            assert "You signed in with a recovery code" in text
            noun = "code" if left == 1 else "codes"
            assert f"You have {left} unused recovery {noun} left." in text
            notice = mailbox.text_of(mailbox.messages[-1])
            assert f"you have {left} unused {noun} left" in notice
            assert used not in notice
        # the new set, from the same page, with its own (new session's) CSRF token
        new = await c.post(
            "/_mfa/recovery/regenerate",
            headers=HTML,
            data={"csrf": csrf_of(r.text), "next": "/account"},
        )
        assert new.status_code == 200
        fresh = CODE_RE.findall(new.text)
        assert len(fresh) == 3
        assert not set(fresh) & set(codes)
        assert 'href="/account">I saved them, continue' in new.text
        assert await is_verified(c)
