"""What the demo apps themselves show a developer, in Chromium: a way to the 2FA settings, an
icon, a login page that says why a session ended, a CSRF token on their own login form, and
the security headers of the 2FA pages on their own pages too. One server per demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .support import (
    ROOT,
    PageGuard,
    Shots,
    Site,
    base_env,
    django_site,
    require_browser,
    starlette_site,
)

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import (  # noqa: E402
    Tab,
    enroll_authenticator,
    log_in,
    open_login,
    url_of,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SERVERS = {"starlette": starlette_site, "django": django_site}
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


@pytest.fixture(scope="module", params=sorted(SERVERS, reverse=True))
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    with SERVERS[request.param](sys.executable, tmp_path_factory.mktemp(request.param)) as site:
        yield site


@pytest.fixture
def demo_tab(browser: Browser, demo: Site) -> Iterator[Tab]:
    context = browser.new_context(base_url=demo.base_url, service_workers="block")
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=demo.base_url)
    guard.watch(page)
    try:
        yield Tab(page, demo, guard, Shots(enabled=False))
    finally:
        context.close()


def test_own_pages_link_to_the_settings_and_send_security_headers(demo_tab: Tab) -> None:
    tab, page = demo_tab, demo_tab.page
    login = page.goto(tab.site.login_path)
    assert login is not None
    for name in SECURITY_HEADERS:
        assert login.headers.get(name), f"the login page has no {name}"
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-content-type-options"] == "nosniff"
    expect(page.locator('link[rel="icon"]')).to_have_count(1)

    log_in(tab, "bob")
    enroll_authenticator(tab, "bob")
    account = page.goto(tab.site.account_path)
    assert account is not None
    assert "content-security-policy" in account.headers
    page.get_by_role("navigation").get_by_role("link", name="Two-step verification").click()
    expect(page).to_have_url(url_of("/_mfa/settings"))
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    tab.guard.assert_clean()


def test_the_icon_loads_for_anyone(demo_tab: Tab) -> None:
    tab, page = demo_tab, demo_tab.page
    anonymous = page.request.get("/favicon.ico", max_redirects=0)
    assert anonymous.status == 200
    assert anonymous.headers["content-type"].startswith("image/svg+xml")
    log_in(tab, "alice")  # signed in, not through the second step yet
    expect(page).to_have_url(url_of("/_mfa/enroll"))
    unverified = page.request.get("/favicon.ico", max_redirects=0)
    assert unverified.status == 200, "the icon must not need a second step"


def test_the_login_form_refuses_a_post_without_its_token(demo_tab: Tab) -> None:
    tab, page = demo_tab, demo_tab.page
    open_login(tab)
    token = page.locator(
        'form input[type="hidden"][name$="csrf"], input[name="csrfmiddlewaretoken"]'
    )
    expect(token).to_have_count(1)
    forged = page.request.post(
        tab.site.login_path,
        form={"username": "alice", "password": "alice-password"},
        max_redirects=0,
    )
    assert forged.status == 403
    page.goto(tab.site.account_path)
    expect(page).to_have_url(url_of(tab.site.login_path))  # not logged in by it


def test_the_login_page_says_why_the_session_ended(demo_tab: Tab) -> None:
    tab, page = demo_tab, demo_tab.page
    log_in(tab, "alice")
    enroll_authenticator(tab, "alice")
    force_logout(tab.site, "alice")
    page.goto(tab.site.account_path)
    expect(page).to_have_url(url_of(tab.site.login_path))
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")

    page.reload()  # said once
    expect(page.get_by_role("status")).to_have_count(0)
    tab.guard.assert_clean()


def test_the_login_page_confirms_a_sign_out(demo_tab: Tab) -> None:
    tab, page = demo_tab, demo_tab.page
    log_in(tab, "bob")  # the 2FA page asks for a code, or to set it up: either way
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url_of(tab.site.login_path))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")


def force_logout(site: Site, username: str) -> None:
    """A force-logout as an operator runs it against the demo's store: `mfa-admin` on the
    Starlette demo's SQLite file, `manage.py mfa` on the Django demo's database."""
    if site.name == "django":
        env = {**base_env(), "DJANGO_DEMO_DATA": str(site.data_dir)}
        command = [sys.executable, "manage.py", "mfa", "logout", username]
        cwd: Path | None = ROOT / "examples" / "django_app"
    else:
        env = None
        store = f"sqlite://{Path(site.data_dir).resolve() / 'mfa.sqlite3'}"  # sqlite:///abs/path
        user_id = site.user_ids[username]
        command = [sys.executable, "-m", "mfa_middleware.cli", "--store", store, "logout", user_id]
        cwd = None
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, timeout=60)
