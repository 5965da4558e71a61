"""Support staff signed in as a customer, in Chromium (issue 21 point 1): carol on the
Starlette demo's Support page, and a staff member through django-hijack's "Impersonate" button
in the Django demo's admin. The customer's own pages open on carol's factor; every 2FA page
answers 403 and says why; stopping gives carol her own session back."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from .support import require_browser

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import Tab, enroll_authenticator, expect_challenge, log_in, url_of  # noqa: E402

if TYPE_CHECKING:
    from .support import Site

REFUSED = "You are signed in as another user, on their behalf."


def expect_refused_2fa_pages(tab: Tab) -> None:
    for path in ("/_mfa/settings", "/_mfa/enroll/sms", "/_mfa/devices"):
        answer = tab.page.goto(path)
        assert answer is not None
        assert answer.status == 403, path
        expect(
            tab.page.get_by_role("heading", name="Not while signed in as someone else")
        ).to_be_visible()
        expect(tab.page.get_by_text(REFUSED)).to_be_visible()


def test_carol_acts_as_bob_and_his_2fa_pages_are_closed_to_her(tab: Tab, site: Site) -> None:
    if site.name != "starlette":
        pytest.skip("the Support page is the Starlette demo's; the Django demo uses hijack")
    page = tab.page
    log_in(tab, "carol")
    enroll_authenticator(tab, "carol")
    page.goto("/support")
    page.get_by_label("Customer").select_option("bob")
    page.get_by_role("button", name="Sign in as this customer").click()
    expect(page).to_have_url(url_of("/account"))
    expect(page.get_by_text("Signed in as bob", exact=False).first).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Signed in as bob on behalf of carol")
    tab.snap("support-acting")
    expect_refused_2fa_pages(tab)
    tab.snap("impersonation-refused")
    page.goto("/support")
    page.get_by_role("button", name="Stop acting as this customer").click()
    page.goto("/account")
    expect(page.get_by_text("Signed in as carol")).to_be_visible()
    tab.guard.assert_clean()


def test_a_staff_member_hijacks_bob_in_the_django_admin(tab: Tab, site: Site) -> None:
    if site.name != "django":
        pytest.skip("django-hijack is the Django demo's")
    page = tab.page
    log_in(tab, "carol")
    enroll_authenticator(tab, "carol")
    page.goto("/admin/auth/user/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="bob", exact=True))
    row.get_by_role("button", name=re.compile("impersonate", re.IGNORECASE)).click()
    page.wait_for_url(re.compile(r"^[a-z]+://[^/]+/(\?.*)?$"))
    page.goto("/account/")
    expect(page).to_have_url(url_of("/account/"))  # bob's page, on carol's factor
    expect(page.get_by_text("You are currently working on behalf of")).to_be_visible()
    expect_refused_2fa_pages(tab)
    page.goto("/account/")
    page.get_by_role("button", name=re.compile("stop impersonating", re.IGNORECASE)).click()
    page.goto("/account/")
    expect_challenge(tab)  # carol signs in anew: her own factor, again
