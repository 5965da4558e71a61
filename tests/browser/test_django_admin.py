"""The Django demo's admin user list with two-step verification, in Chromium (issue 19 point
3): a superuser who verified a moment ago sees each user's 2FA status, method, authenticators,
trusted devices, exemption and last verification; filters by method and by status; finds a
user by email; signs bob out everywhere through the "Are you sure?" page (bob's browser is
really signed out, and the change is in bob's history and the admin's recent actions); exempts
bob, then takes it back. With MFA_SCREENSHOTS=1 the list is saved as
docs/screenshots/django-admin-users-desktop.png."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .support import (
    DESKTOP,
    PageGuard,
    Shots,
    Site,
    django_site,
    require_browser,
    screenshots_wanted,
)

require_browser(module_level=True)

from playwright.sync_api import Locator, expect  # noqa: E402

from .flows import Tab, log_in, sign_up, url_of  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser

USERS = "/admin/auth/user/"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with django_site(sys.executable, tmp_path_factory.mktemp("django")) as site:
        yield site


def open_tab(browser: Browser, site: Site) -> Iterator[Tab]:
    context = browser.new_context(base_url=site.base_url, service_workers="block", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    try:
        yield Tab(page, site, guard, Shots(enabled=False))
    finally:
        context.close()


@pytest.fixture
def bob_tab(browser: Browser, demo: Site) -> Iterator[Tab]:
    yield from open_tab(browser, demo)


@pytest.fixture
def admin_tab(browser: Browser, demo: Site) -> Iterator[Tab]:
    """alice's browser: a superuser, so a 2FA superadmin (the demo's default tiers)."""
    yield from open_tab(browser, demo)


# The 2FA pages' screenshots come from the Starlette demo (the tabs here take none); this
# list is the Django admin's own, so it is taken here.
LIST_SHOT = Shots(enabled=screenshots_wanted())


def row(tab: Tab, username: str) -> Locator:
    return tab.page.locator("#result_list tbody tr").filter(
        has=tab.page.get_by_role("link", name=username, exact=True)
    )


def cell(tab: Tab, username: str, column: str) -> Locator:
    return row(tab, username).locator(f".field-{column}")


def expect_listed(tab: Tab, *usernames: str) -> None:
    links = tab.page.locator("#result_list tbody .field-username a")
    expect(links).to_have_text(sorted(usernames))


def run_action(tab: Tab, username: str, action: str, question: str, button: str) -> None:
    """Tick the user, choose the action, Go; the "Are you sure?" page names the user and
    changes nothing until its button is pressed; back on the list."""
    page = tab.page
    page.goto(USERS)
    row(tab, username).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option(label=action)
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.get_by_role("heading", name="Are you sure?")).to_be_visible()
    expect(page.locator("#content").get_by_text(question, exact=True)).to_be_visible()
    expect(page.locator(".mfa-selected-users li")).to_have_text([username])
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(url_of(USERS))


def test_the_django_admin_lists_users_with_their_2fa_and_acts_on_them(
    demo: Site, bob_tab: Tab, admin_tab: Tab
) -> None:
    sign_up(bob_tab, "bob")
    sign_up(admin_tab, "alice")  # a second factor a moment ago: the actions need one
    page = admin_tab.page
    page.goto(USERS)
    headers = page.locator("#result_list thead th").all_inner_texts()
    for title in (
        "2FA",
        "Method",
        "Authenticators",
        "Trusted devices",
        "Exempt",
        "Last verified",
    ):
        assert title.upper() in [h.strip().upper() for h in headers], headers
    expect(cell(admin_tab, "bob", "two_factor")).to_have_text("On")
    expect(cell(admin_tab, "bob", "mfa_method")).to_have_text("Authenticator app")
    expect(cell(admin_tab, "bob", "mfa_authenticators")).to_have_text("1")
    kinds = cell(admin_tab, "bob", "mfa_authenticators").locator("span")
    expect(kinds).to_have_attribute("title", "authenticator app")
    expect(cell(admin_tab, "bob", "mfa_trusted_devices")).to_have_text("0")
    expect(cell(admin_tab, "bob", "mfa_exemption")).to_have_text("No")
    expect(cell(admin_tab, "bob", "mfa_last_verified")).to_have_text("just now")
    expect(cell(admin_tab, "carol", "two_factor")).to_have_text("Not set up")
    expect(cell(admin_tab, "carol", "mfa_method")).to_have_text("-")
    expect(cell(admin_tab, "carol", "mfa_last_verified")).to_have_text("Never")
    LIST_SHOT.take(page, "django-admin-users", "desktop")
    overflow = page.evaluate(
        "[document.documentElement.scrollWidth - innerWidth,"
        " (e => e.scrollWidth - e.clientWidth)(document.querySelector('.results'))]"
    )
    assert overflow == [0, 0], f"the page, the list scroll sideways by {overflow} px"

    # filters and search
    page.get_by_role("link", name="Authenticator app", exact=True).click()
    expect_listed(admin_tab, "alice", "bob")
    page.goto(USERS)
    page.get_by_role("link", name="Not set up", exact=True).click()
    expect_listed(admin_tab, "carol", "svc-billing")
    page.goto(USERS)
    page.locator("#searchbar").fill("bob@example.com")
    page.locator("#searchbar").press("Enter")
    expect_listed(admin_tab, "bob")

    # sign bob out everywhere: his browser is signed out, the change is logged
    run_action(
        admin_tab,
        "bob",
        "Sign out everywhere",
        "Are you sure you want to sign the selected users out everywhere?",
        "Yes, sign them out",
    )
    expect(page.locator(".messagelist")).to_contain_text("1 user(s) signed out everywhere.")
    bob_tab.page.goto(demo.account_path)
    expect(bob_tab.page).to_have_url(url_of(demo.login_path))
    page.goto("/admin/")
    recent = page.locator("#recent-actions-module")
    expect(recent.get_by_role("link", name="bob", exact=True).first).to_be_visible()
    page.goto(f"{USERS}{demo.user_ids['bob']}/history/")
    expect(page.locator("#change-history tbody tr").first).to_contain_text("Signed out everywhere.")

    # exempt bob, then take it back
    run_action(
        admin_tab,
        "bob",
        "Exempt API calls from 2FA",
        "Are you sure you want to exempt the selected users' API calls from two-step verification?",
        "Yes, exempt them",
    )
    expect(cell(admin_tab, "bob", "mfa_exemption")).to_have_text("API calls")
    run_action(
        admin_tab,
        "bob",
        "Remove the 2FA exemption",
        "Are you sure you want to remove the two-step verification exemption of the selected"
        " users?",
        "Yes, remove it",
    )
    expect(cell(admin_tab, "bob", "mfa_exemption")).to_have_text("No")
    page.goto(f"{USERS}{demo.user_ids['bob']}/history/")
    expect(page.locator("#change-history tbody tr")).to_have_count(3)
    log_in(bob_tab, "bob")  # signed out, bob signs in again: his second factor is asked
    expect(bob_tab.page).to_have_url(url_of("/_mfa/challenge"))
