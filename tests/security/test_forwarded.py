"""Who the client is, behind proxies and on dual-stack listeners (issue 14, points 1 and 6).

A load balancer inside the office network (10.0.0.0/8) forwards every request; a bypass rule
lets the office network skip 2FA on /admin. A hop the proxy wrote in a form we could not read
used to fall back to the proxy's own (office) address: a full bypass from anywhere.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import HTML, FixedClock, csrf_of, login, make_app, senders
from tests.security.support import client_from
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = [pytest.mark.anyio]

OFFICE = "10.0.0.0/8"
LOAD_BALANCER = "10.0.0.5"
OFFICE_BYPASS = [{"action": "bypass", "paths": ["/admin"], "networks": [OFFICE]}]


@pytest.mark.checklist("EX-02")
@pytest.mark.parametrize(
    "forwarded", ["198.51.100.9:5555", "[2001:db8::9]:443", "unknown", "198.51.100.9"]
)
async def test_outside_client_behind_the_office_load_balancer_is_not_bypassed(
    clock: FixedClock, forwarded: str
) -> None:
    app = make_app(clock, rules=OFFICE_BYPASS, trusted_proxies=[OFFICE])
    async with client_from(app, LOAD_BALANCER) as c:
        c.headers["x-forwarded-for"] = forwarded
        await login(c)  # password only: no second factor yet
        r = await c.get("/admin", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/enroll")
        c.headers["x-forwarded-for"] = "10.20.30.40"  # a desk in the office: bypassed
        assert (await c.get("/admin", headers=HTML)).status_code == 200


@pytest.mark.checklist("EX-02")
async def test_only_the_configured_forwarding_header_is_read(clock: FixedClock) -> None:
    """Behind a proxy that writes X-Forwarded-For, a `Forwarded` header is the client's own."""
    app = make_app(clock, rules=OFFICE_BYPASS, trusted_proxies=[OFFICE])
    async with client_from(app, LOAD_BALANCER) as c:
        c.headers["x-forwarded-for"] = "198.51.100.9"
        c.headers["forwarded"] = "for=10.20.30.40"
        await login(c)
        assert (await c.get("/admin", headers=HTML)).status_code == 303
    rfc = make_app(
        clock, rules=OFFICE_BYPASS, trusted_proxies=[OFFICE], forwarded_header="Forwarded"
    )
    async with client_from(rfc, LOAD_BALANCER) as c:
        c.headers["x-forwarded-for"] = "10.20.30.40"
        c.headers["forwarded"] = 'for="[2001:db8::9]:443"'
        await login(c)
        assert (await c.get("/admin", headers=HTML)).status_code == 303
        c.headers["forwarded"] = "for=10.20.30.40"
        assert (await c.get("/admin", headers=HTML)).status_code == 200


async def test_a_second_forwarded_for_line_is_read_too(clock: FixedClock) -> None:
    """HTTP joins repeated header lines: a line the client adds after the proxy's must not hide
    the proxy's (reading only the last line would believe the client)."""
    app = make_app(clock, rules=OFFICE_BYPASS, trusted_proxies=[OFFICE])
    async with client_from(app, LOAD_BALANCER) as c:
        await login(c)
        lines = [
            ("accept", "text/html"),
            ("x-forwarded-for", "198.51.100.9"),  # the proxy's
            ("x-forwarded-for", "10.20.30.40"),  # the client's own, after it
        ]
        r = await c.get("/admin", headers=lines)
        assert r.status_code == 303


@pytest.mark.checklist("EX-02")
async def test_ipv4_mapped_clients_meet_ipv4_deny_rules(clock: FixedClock) -> None:
    rules = [{"action": "deny", "networks": ["203.0.113.0/24"]}]
    app = make_app(clock, rules=rules)
    async with client_from(app, "::ffff:203.0.113.7") as c:
        await login(c)
        assert (await c.get("/account", headers=HTML)).status_code == 403
    async with client_from(app, "::ffff:198.51.100.1") as c:
        await login(c)
        assert (await c.get("/account", headers=HTML)).status_code == 303


@pytest.mark.checklist("OOB-07")
async def test_ipv4_clients_of_a_dual_stack_listener_have_their_own_send_caps(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    """One abuser must not use up everyone's login codes: IPv4 clients seen as `::ffff:a.b.c.d`
    were all one IPv6 /64 bucket."""
    app = make_app(clock, **senders(mailbox, twilio), max_sends_per_ip=1)
    for peer, user in (("::ffff:198.51.100.1", "alice"), ("::ffff:198.51.100.2", "bob")):
        async with client_from(app, peer) as c:
            await login(c, user)
            page = await c.get("/_mfa/enroll/email", headers=HTML)
            r = await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
            assert r.headers["location"].endswith("sent=1"), user
    assert len(mailbox.messages) == 2
