"""Phone numbers as people know them: countries by name with their calling code, sorted; a
number masked in its own country's format (a UK number is not shown US-style)."""

from __future__ import annotations

import html
import re

import pytest
from starlette.applications import Starlette

from tests.e2e.helpers import (
    HTML,
    FixedClock,
    client,
    csrf_of,
    enroll_sms,
    login,
    make_app,
    senders,
    visible,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio

OPTION = re.compile(r'<option value="([A-Z]{2})"( selected)?>([^<]*)</option>')


async def countries(app: Starlette) -> list[tuple[str, bool, str]]:
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/sms", headers=HTML)
        assert page.status_code == 200
        return [
            (code, bool(sel), html.unescape(name)) for code, sel, name in OPTION.findall(page.text)
        ]


async def test_every_country_by_name_sorted_with_its_calling_code(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    options = await countries(make_app(clock, **senders(mailbox, twilio)))
    labels = [name for _, _, name in options]
    assert len(options) > 200
    assert "United States (+1)" in labels
    assert "United Kingdom (+44)" in labels
    ivory_coast = "C\u00f4te d\u2019Ivoire (+225)"  # CLDR's name, with its accent and quote
    assert ivory_coast in labels
    assert labels.index("Cook Islands (+682)") < labels.index(ivory_coast)
    assert labels.index(ivory_coast) < labels.index("Croatia (+385)")  # accents fold
    assert labels[0].startswith("Afghanistan")
    assert [code for code, selected, _ in options if selected] == ["US"]  # default_region


async def test_only_the_allowed_countries_are_offered(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(
        clock, sms_regions=("US", "GB", "CA"), default_region="GB", **senders(mailbox, twilio)
    )
    assert await countries(app) == [
        ("CA", False, "Canada (+1)"),
        ("GB", True, "United Kingdom (+44)"),
        ("US", False, "United States (+1)"),
    ]


async def test_a_uk_number_is_masked_the_uk_way(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/sms", headers=HTML)
        sent = await c.post(
            "/_mfa/enroll/sms",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "phone": "07911 123456", "region": "GB"},
        )
        code_page = await c.get(sent.headers["location"], headers=HTML)
        assert "We sent a text message with a code to +44 •••• ••3456." in visible(code_page)
        assert "•••-•••-3456" not in visible(code_page)
        assert twilio.requests[-1]["To"] == "+447911123456"


async def test_a_us_number_keeps_its_us_format(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, **senders(mailbox, twilio))
    async with client(app) as c:
        await login(c)
        assert (await enroll_sms(c, twilio)).status_code == 303
        settings = await c.get("/_mfa/settings", headers=HTML)
        assert "Text message +1 •••-•••-2671" in " ".join(visible(settings).split())
