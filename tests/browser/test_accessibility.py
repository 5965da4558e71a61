"""Every page state of both demos, as a person reaches it, passes axe-core's WCAG 2.1 A and AA
rules at 1280 px and at 390 px, and fits a 320 px phone without scrolling sideways.

Three journeys per demo, on one server per demo: alice sets up an authenticator app and walks
the settings, devices, admin and turn-off pages; bob uses codes by email, the challenge, the
recovery and lost-device pages, and ends locked out; alice, an admin, resets bob, who then
needs an enrollment code. Every state the journeys pass is also saved as a
screenshot by `make screenshots` (docs/screenshots).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .audit import Audit, missing_axe
from .support import (
    SCREENSHOT_DIR,
    PageGuard,
    Shots,
    Site,
    django_site,
    mfa_admin,
    require_browser,
    require_parts,
    screenshots_wanted,
    starlette_site,
)

require_browser(module_level=True)
require_parts("accessibility tests", missing_axe(), module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import (  # noqa: E402
    CODE_LABEL,
    MAX_ATTEMPTS,
    Authenticator,
    Tab,
    after_verification,
    answer_trust_prompt,
    choose_authenticator_app,
    confirm_authenticator,
    enroll_authenticator,
    enter_code,
    expect_account,
    expect_challenge,
    expect_enroll_choice,
    expect_locked_out,
    expect_on_one_row,
    log_in,
    log_out,
    open_login,
    press_resend_too_soon,
    reveal_setup_key,
    save_recovery_codes,
    sign_up,
    submit_login,
    turn_off,
    url_of,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SERVERS = {"starlette": starlette_site, "django": django_site}
RESET_LINK = re.compile(r"https?://\S+/_mfa/lost/confirm\?token=\S+")


@pytest.fixture(scope="module", params=sorted(SERVERS, reverse=True))
def audited_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    with SERVERS[request.param](sys.executable, tmp_path_factory.mktemp(request.param)) as site:
        yield site


@contextmanager
def audited(browser: Browser, site: Site) -> Iterator[Tab]:
    context = browser.new_context(base_url=site.base_url, service_workers="block")
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    shots = Shots(
        enabled=screenshots_wanted() and site.name == "starlette", directory=SCREENSHOT_DIR
    )
    try:
        yield Tab(page, site, guard, shots, Audit())
    finally:
        context.close()


@pytest.fixture
def audited_tab(browser: Browser, audited_site: Site) -> Iterator[Tab]:
    with audited(browser, audited_site) as tab:
        yield tab


@pytest.fixture
def second_tab(browser: Browser, audited_site: Site) -> Iterator[Tab]:
    """Another browser (its own cookies) on the same site."""
    with audited(browser, audited_site) as tab:
        yield tab


def test_authenticator_settings_devices_admin_and_turning_off(audited_tab: Tab) -> None:
    tab, page = audited_tab, audited_tab.page
    open_login(tab)
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    tab.snap("login-error")

    submit_login(tab, "alice")
    expect_enroll_choice(tab)
    choose_authenticator_app(tab)
    secret = reveal_setup_key(tab)
    enter_code(tab, Authenticator(secret, "").wrong_code(), "Turn on two-step verification")
    expect(page.get_by_role("alert")).to_be_visible()
    tab.snap("enroll-totp-error")
    confirm_authenticator(tab, secret)
    save_recovery_codes(tab)
    after_verification(tab, "alice")

    page.goto("/_mfa/settings")
    tab.snap("settings")
    page.get_by_role("link", name=re.compile("^Back to ")).click()  # the way back to the app
    expect(page).to_have_url(re.compile(r"^[a-z]+://[^/]+/$"))
    page.goto("/_mfa/settings")
    page.get_by_role("link", name="See and manage the devices").click()
    expect(page.get_by_role("heading", name="Your devices")).to_be_visible()
    expect_on_one_row(tab, "Rename", "Trust", "Delete")  # at 1280 px
    tab.snap("devices")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete this device?")).to_be_visible()
    tab.snap("device-delete")
    page.get_by_role("link", name="Cancel").click()

    page.goto("/_mfa/challenge?reauth=1&next=/_mfa/settings")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    tab.snap("reauth")
    page.get_by_role("link", name="Cancel and go back to your settings").click()
    expect(page).to_have_url(url_of("/_mfa/settings"))

    page.goto("/_mfa/enroll")
    page.get_by_role("link", name=re.compile("^Text message")).click()
    expect(page.get_by_role("heading", name="Get codes by text message")).to_be_visible()
    tab.snap("enroll-sms")
    page.get_by_label("Mobile number").fill("+49 1512 3456 7890 1234 5678 9012 3456")  # too long
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("alert")).to_be_visible()
    tab.snap("enroll-sms-error")
    page.get_by_label("Country").select_option("GB")
    page.get_by_label("Mobile number").fill("07911 123456")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    tab.snap("enroll-code-sms")

    page.goto("/_mfa/admin")
    expect(page.get_by_role("heading", name="Two-step verification admin")).to_be_visible()
    tab.snap("admin")
    page.get_by_label("Username or user id").fill("alice")  # whatever her id (Django: 1)
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name=re.compile("^alice"))).to_be_visible()
    tab.snap("admin-user")

    page.goto("/_mfa/nowhere")
    tab.snap("not-found")

    page.goto("/_mfa/settings")
    page.get_by_role("link", name="Turn off two-step verification").click()
    tab.snap("disable")
    page.get_by_role("button", name="Turn off and set up again").click()
    expect(page).to_have_url(url_of("/_mfa/enroll"))
    expect(page.get_by_role("status")).to_contain_text("Two-step verification is now off")
    tab.snap("turned-off")

    tab.guard.assert_clean()
    assert tab.audit is not None
    tab.audit.assert_clean()


def test_recognised_devices_after_a_sign_in_on_a_new_device(
    audited_tab: Tab, second_tab: Tab
) -> None:
    """alice set up 2FA on her laptop (not trusted) and named it; signing in on another
    browser, after the code and "Trust this device?", she is offered the laptop to trust.
    (She turns 2FA off at the end, as the test before this one left her.)"""
    laptop, page = audited_tab, audited_tab.page
    app = sign_up(laptop, "alice")
    page.goto("/_mfa/devices")
    this_one = page.get_by_role("listitem").filter(has_text="This device")
    this_one.get_by_label("New name").fill("Work laptop")
    this_one.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Device renamed.")
    tablet, other = second_tab, second_tab.page
    log_in(tablet, "alice")
    expect_challenge(tablet)
    enter_code(tablet, app.next_code(), "Verify")
    answer_trust_prompt(tablet, trust=False)
    expect(other).to_have_url(url_of("/_mfa/devices/recognised"))
    expect(other.get_by_role("heading", name="Devices you used recently")).to_be_visible()
    expect(other.get_by_role("checkbox", name=re.compile("Work laptop"))).to_have_count(1)
    tablet.snap("devices-recognised")
    other.get_by_role("checkbox", name=re.compile("Work laptop")).check()
    other.get_by_role("button", name="Trust the selected devices").click()
    expect_account(tablet, "alice")
    other.goto("/_mfa/devices")
    row = other.get_by_role("listitem").filter(has_text="Work laptop")
    expect(row.locator(".badge.trusted")).to_have_text("Trusted")
    turn_off(tablet)
    for t in (laptop, tablet):
        t.guard.assert_clean()
        assert t.audit is not None
        t.audit.assert_clean()


def test_email_codes_challenge_recovery_lost_device_and_lockout(audited_tab: Tab) -> None:
    tab, page = audited_tab, audited_tab.page
    mailbox = tab.site.mailbox
    assert mailbox is not None
    log_in(tab, "bob")
    expect_enroll_choice(tab)
    page.get_by_role("link", name=re.compile("^Email")).click()
    tab.snap("enroll-email")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    tab.snap("enroll-code")
    page.get_by_label(CODE_LABEL).fill("000000" if mailbox.last_code() != "000000" else "111111")
    page.get_by_role("button", name="Verify and turn on").click()
    expect(page.get_by_role("alert")).to_be_visible()
    tab.snap("enroll-code-error")
    press_resend_too_soon(tab)
    tab.snap("enroll-code-wait")
    page.get_by_label(CODE_LABEL).fill(mailbox.last_code())
    page.get_by_role("button", name="Verify and turn on").click()
    save_recovery_codes(tab)
    after_verification(tab, "bob")
    page.goto("/_mfa/settings")
    expect(page.get_by_text("On. You can sign in with:")).to_be_visible()
    ways = page.locator("ul.authenticators > li")
    expect(ways).to_have_count(1)
    expect(ways.first).to_have_text("Email b***@example.com")
    tab.snap("settings-email")

    log_out(tab)
    log_in(tab, "bob")
    expect_challenge(tab)
    tab.snap("challenge-email")
    press_resend_too_soon(tab)
    tab.snap("challenge-email-wait")
    code = mailbox.last_code()
    page.get_by_label(CODE_LABEL).fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_be_visible()
    tab.snap("challenge-email-error")

    page.get_by_role("link", name="Use a recovery code").click()
    tab.snap("recovery-use")
    page.get_by_label("Recovery code").fill("aaaa-bbbb-cccc-dddd")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    tab.snap("recovery-use-error")

    page.get_by_role("link", name="I can't use my device").click()
    expect(page.get_by_role("heading", name="Can't use your device?")).to_be_visible()
    tab.snap("lost")
    page.get_by_role("button", name="Email me a reset link").click()
    tab.snap("lost-sent")
    page.goto(mailbox.last_match(RESET_LINK).group(0))
    expect(page.get_by_role("button", name="Reset and set up again")).to_be_visible()
    tab.snap("lost-confirm")
    page.goto("/_mfa/lost/confirm?token=not-a-real-token")
    tab.snap("lost-invalid")

    page.goto("/_mfa/challenge")
    for _ in range(MAX_ATTEMPTS):
        if page.get_by_label(CODE_LABEL).count() == 0:
            break
        page.get_by_label(CODE_LABEL).fill(
            "000000" if mailbox.last_code() != "000000" else "111111"
        )
        page.get_by_role("button", name="Verify").click()
    expect_locked_out(tab)
    tab.snap("locked-out-email")
    page.goto("/_mfa/recovery")
    tab.snap("recovery-locked")

    tab.guard.assert_clean()
    assert tab.audit is not None
    tab.audit.assert_clean()


ENROLL_CODE = re.compile(r"^([0-9a-z]{4}(?:-[0-9a-z]{4}){3})\r?$", re.MULTILINE)


def test_admin_reset_and_enrollment_code(audited_tab: Tab, second_tab: Tab) -> None:
    """alice, an admin, resets bob's 2FA after confirming it; bob must enter the enrollment
    code emailed to him."""
    tab, page = audited_tab, audited_tab.page
    log_in(tab, "alice")
    enroll_authenticator(tab, "alice")
    bob, bob_page = second_tab, second_tab.page
    log_in(bob, "bob")  # bob has signed in before: the middleware knows his address of record
    # enrolled and locked out by the test before, or not enrolled when run alone
    expect(bob_page).to_have_url(re.compile(r"/_mfa/(enroll|enroll/unlock|challenge)(\?|$)"))
    page.goto("/_mfa/admin?user=bob")  # by his username, whatever his user id
    expect(page.get_by_role("heading", name=re.compile("^bob"))).to_be_visible()
    page.get_by_role("button", name="Reset 2FA").click()
    expect(page.get_by_role("heading", name="Reset two-step verification for bob?")).to_be_visible()
    tab.snap("admin-reset-confirm")
    page.get_by_role("button", name="Reset two-step verification").click()
    expect(
        page.get_by_role("status").filter(has_text="emailed to b***@example.com")
    ).to_be_visible()
    tab.snap("admin-reset")
    assert tab.site.mailbox is not None
    enrollment_code = tab.site.mailbox.last_match(ENROLL_CODE).group(1)

    log_in(bob, "bob")
    expect(bob_page).to_have_url(url_of("/_mfa/enroll/unlock"))
    bob.snap("enroll-unlock")
    bob_page.get_by_label("Enrollment code").fill("wrong-code")
    bob_page.get_by_role("button", name="Continue").click()
    expect(bob_page.get_by_role("alert")).to_be_visible()
    bob.snap("enroll-unlock-error")
    bob_page.get_by_label("Enrollment code").fill(enrollment_code)
    bob_page.get_by_role("button", name="Continue").click()
    expect_enroll_choice(bob)

    for t in (tab, bob):
        t.guard.assert_clean()
        assert t.audit is not None
        t.audit.assert_clean()


def test_a_helpdesk_administrator_sees_what_she_may_do(audited_tab: Tab, second_tab: Tab) -> None:
    """carol, support staff (helpdesk tier), looks bob up: she may sign him out, unlock and
    reset him; the mode and the session lifetime are shown to her, not offered."""
    bob = second_tab
    log_in(bob, "bob")
    # as the test before leaves him (reset: his enrollment code first), or enrolling when alone
    expect(bob.page).to_have_url(re.compile(r"/_mfa/(enroll|enroll/unlock|challenge)(\?|$)"))
    tab, page = audited_tab, audited_tab.page
    log_in(tab, "carol")
    enroll_authenticator(tab, "carol")
    page.goto("/_mfa/admin?user=bob")
    expect(page.get_by_text("Your role: helpdesk.")).to_be_visible()
    expect(page.get_by_role("button", name="Reset 2FA")).to_be_visible()
    expect(page.get_by_role("button", name="Force logout")).to_be_visible()
    for withheld in ("Save mode", "Save lifetime", "Sign everyone out", "Exempt API calls"):
        expect(page.get_by_role("button", name=withheld)).to_have_count(0)
    tab.snap("admin-helpdesk")
    mfa_admin(tab.site, "exempt", "svc-billing", "--new")  # an API account, by an operator
    page.get_by_role("link", name="All users, with their two-step verification").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    table = page.get_by_role("table")
    expect(table.get_by_role("row").filter(has_text="bob")).to_contain_text("Not set up")
    expect(table.get_by_role("row").filter(has_text="carol")).to_contain_text("On")
    expect(table.get_by_role("row").filter(has_text="svc-billing")).to_contain_text("Exempt")
    tab.snap("admin-users")
    page.get_by_label("Two-step verification", exact=True).select_option("yes")
    page.get_by_role("button", name="Show users").click()
    # carol, and alice too when the tests before enrolled her; never bob, who is not set up
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Users 1 to [12] of [12]"))
    expect(table.get_by_role("row").filter(has_text="bob")).to_have_count(0)
    expect(table.get_by_role("button", name="Reset two-step verification of carol")).to_be_visible()
    for t in (tab, bob):
        t.guard.assert_clean()
        assert t.audit is not None
        t.audit.assert_clean()


def test_the_audit_sees_a_violation_and_a_sideways_scroll(audited_tab: Tab) -> None:
    """The harness itself: axe-core runs in the page despite its CSP, and reports what it finds."""
    tab, page = audited_tab, audited_tab.page
    open_login(tab)
    page.evaluate(
        """() => {
            const wide = document.createElement("div");
            wide.style.width = "2000px";
            wide.append(document.createElement("img"));  // and no alt text
            document.body.append(wide);
        }"""
    )
    audit = Audit()
    audit.check(page, "broken on purpose")
    (found,) = audit.findings.values()
    assert any(item.startswith("image-alt") for item in found), found
    assert any(item.startswith("scrolls sideways") for item in found), found
    with pytest.raises(AssertionError, match="image-alt"):
        audit.assert_clean()


def test_a_pale_brand_colour_keeps_buttons_and_links_readable(
    browser: Browser, tmp_path: Path
) -> None:
    """White text on a yellow button or yellow links on white would fail axe's contrast rule."""
    pale = {"MFA_DEMO_BRAND_COLOR": "#fde047"}
    with starlette_site(sys.executable, tmp_path, pale) as site, audited(browser, site) as tab:
        log_in(tab, "alice")
        expect_enroll_choice(tab)
        choose_authenticator_app(tab)  # a primary button, a link-styled summary, links
        audit = Audit()
        audit.check(tab.page, "enroll-totp with #fde047")
        tab.page.goto("/_mfa/enroll")
        audit.check(tab.page, "enroll-choose with #fde047")
    audit.assert_clean()
