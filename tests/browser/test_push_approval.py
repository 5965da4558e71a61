"""Approving a sign-in from another browser (issue 24) in Debian's Chromium: two browser
contexts on the Starlette demo under uvicorn, with the local Web Push service double.

Chromium cannot reach a real push service here, so the approver's subscription is made by the
test with generated keys (the double's `subscribe`, as a browser's PushManager would) and
posted through the approvers page's own form, as its script does after subscribing; the
service worker itself is registered for real from the page. The login browser waits on its
number; the approver opens the URL of the decrypted notification and picks the number; the
login browser goes on by itself, without a reload.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .support import require_browser

require_browser(module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402

from tests.support.webpush import VapidKeys, webpush_service  # noqa: E402

from .audit import Audit, missing_axe  # noqa: E402
from .flows import Tab, after_verification, desktop_tab, log_in, sign_up, url_of  # noqa: E402
from .support import Shots, screenshots_wanted, starlette_site  # noqa: E402


def snap(tab: Tab, name: str) -> None:
    """This test's own states, at desktop and phone width, with MFA_SCREENSHOTS=1 (its tabs
    take no others: the shared states are the other journeys')."""
    before, tab.shots = tab.shots, Shots(enabled=screenshots_wanted())
    try:
        tab.snap(name)
    finally:
        tab.shots = before


def test_the_login_browser_goes_on_once_the_approver_picks_its_number(
    browser: Browser, tmp_path: Path
) -> None:
    vapid = VapidKeys.generate()
    with webpush_service() as push:
        env = {"MFA_DEMO_PUSH_KEY": vapid.private, "MFA_DEMO_PUSH_SERVICES": f"{push.origin}/push/"}
        with (
            starlette_site(sys.executable, tmp_path, extra_env=env) as site,
            desktop_tab(browser, site) as approver,
            desktop_tab(browser, site) as laptop,
        ):
            audit = None if missing_axe() else Audit()  # axe-core on this test's own states
            approver.audit = laptop.audit = audit
            # the approver: signed up and trusted, then made an approver from its settings
            sign_up(approver, "alice", trust=True)
            page = approver.page
            page.goto("/_mfa/settings")
            page.get_by_role("link", name="Approve sign-ins from this browser").click()
            expect(page).to_have_url(url_of("/_mfa/approvers"))
            expect(page.locator("[data-approver-message=nojs]")).to_be_hidden()  # script ran
            snap(approver, "push-approval-approvers")
            scope = page.evaluate(
                "navigator.serviceWorker.register('/_mfa/approver-sw.js', {scope: '/_mfa/'})"
                ".then(r => r.scope)"
            )
            assert scope == f"{site.base_url}/_mfa/"
            assert page.locator("form[data-approver]").get_attribute("data-key") == vapid.public
            subscription = push.subscribe(vapid.public)
            page.locator("input[name=subscription]").evaluate(
                "(el, value) => { el.value = value; }", json.dumps(subscription.to_json())
            )
            page.get_by_label("Name for this browser").fill("Alice's phone")
            page.get_by_role("button", name="Approve sign-ins from this browser").click()
            expect(page.get_by_text("This browser now approves your sign-ins.")).to_be_visible()
            expect(page.get_by_text("Alice's phone")).to_be_visible()

            # the login browser asks, and waits on its number
            log_in(laptop, "alice")
            expect(laptop.page).to_have_url(url_of("/_mfa/challenge"))
            snap(laptop, "push-approval-challenge")
            laptop.page.get_by_role("button", name="Approve on your other device").click()
            number_shown = laptop.page.locator("[data-approval-number]")
            expect(number_shown).to_have_text(re.compile(r"^\d\d$"))
            number = number_shown.inner_text()
            snap(laptop, "push-approval-waiting")

            # the notification, decrypted as the approver's browser would, opened there
            payload = subscription.read_json(push.wait_for(subscription, timeout=10))
            assert payload["title"] == "Demo app"
            assert number not in json.dumps(payload)
            page.goto(payload["url"])
            expect(page.get_by_role("heading", name="Is it you signing in?")).to_be_visible()
            choices = page.locator("button[name=choice][value]:not([value=deny])")
            expect(choices).to_have_count(3)
            snap(approver, "push-approval-approve")
            page.get_by_role("button", name=number, exact=True).click()
            expect(page.get_by_role("heading", name="Sign-in approved")).to_be_visible()

            # the login browser goes on by itself: trust prompt, then the account
            laptop.page.wait_for_url(url_of("/_mfa/trust"), timeout=15_000)
            after_verification(laptop, "alice")

            # the notification's URL again: answered once, refused now
            again = page.goto(payload["url"])
            assert again is not None
            assert again.status in (404, 410)
            if audit is not None:
                assert len(audit.states) >= 8
                audit.assert_clean()
