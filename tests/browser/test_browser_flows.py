"""Two-step verification in a real browser (headless Chromium) on both example apps.

Each test gets a fresh server (`site`: the Starlette and the Django demo) and a fresh browser
context; every test ends by checking that no page loaded anything from another origin and
that every 2FA page came with its Content-Security-Policy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .support import require_browser

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import (  # noqa: E402
    CODE_LABEL,
    MAX_ATTEMPTS,
    after_verification,
    choose_authenticator_app,
    confirm_authenticator,
    enter_code,
    expect_challenge,
    expect_code_refused,
    expect_enroll_choice,
    expect_fits_phone,
    expect_locked_out,
    log_in,
    log_out,
    open_login,
    pass_challenge,
    press_resend_too_soon,
    reveal_setup_key,
    save_recovery_codes,
    sign_up,
    submit_login,
    url_of,
)

if TYPE_CHECKING:
    from .flows import Tab


def test_enroll_then_sign_in_again(tab: Tab) -> None:
    app = sign_up(tab, "alice")

    tab.page.goto("/_mfa/settings")
    expect(tab.page.get_by_text("On. You can sign in with:")).to_be_visible()
    expect(tab.page.locator("ul.authenticators > li")).to_have_text(["Authenticator app"])
    tab.snap("settings")

    log_out(tab)
    log_in(tab, "alice")
    expect_challenge(tab)
    # the time step used to enroll is spent: its code is refused, the next step's is accepted
    enter_code(tab, app.enrolled_code, "Verify")
    expect_code_refused(tab, attempts_left=MAX_ATTEMPTS - 1)
    pass_challenge(tab, "alice", app)

    tab.guard.assert_clean()


def test_wrong_codes_lock_the_challenge(tab: Tab) -> None:
    app = sign_up(tab, "bob")
    log_out(tab)
    log_in(tab, "bob")
    expect_challenge(tab)

    for attempt in range(1, MAX_ATTEMPTS):
        enter_code(tab, app.wrong_code(), "Verify")
        expect(tab.page).to_have_url(url_of("/_mfa/challenge"))
        expect_code_refused(tab, attempts_left=MAX_ATTEMPTS - attempt)
        if attempt == 1:
            tab.snap("challenge-error")
    enter_code(tab, app.wrong_code(), "Verify")
    expect_locked_out(tab)
    tab.snap("locked-out")

    # still locked on a fresh visit, and the protected page stays out of reach
    tab.page.goto("/_mfa/challenge")
    expect_locked_out(tab)
    tab.page.goto(tab.site.account_path)
    expect(tab.page).to_have_url(url_of("/_mfa/challenge"))
    expect_locked_out(tab)

    tab.guard.assert_clean()


def test_phone_sized_pages(phone_tab: Tab) -> None:
    tab = phone_tab
    open_login(tab)
    expect_fits_phone(tab)
    submit_login(tab, "alice")
    expect_enroll_choice(tab)
    expect_fits_phone(tab)
    choose_authenticator_app(tab)
    expect_fits_phone(tab)
    secret = reveal_setup_key(tab)
    expect_fits_phone(tab)
    app = confirm_authenticator(tab, secret)
    expect_fits_phone(tab)  # the recovery codes page
    save_recovery_codes(tab)
    after_verification(tab, "alice")

    log_out(tab)
    log_in(tab, "alice")
    expect_challenge(tab)
    expect_fits_phone(tab)
    field = tab.page.get_by_label(CODE_LABEL)
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    expect(field).to_have_attribute("inputmode", "numeric")

    enter_code(tab, app.wrong_code(), "Verify")
    expect_code_refused(tab, attempts_left=MAX_ATTEMPTS - 1)
    expect_fits_phone(tab)
    pass_challenge(tab, "alice", app)

    tab.guard.assert_clean()


def test_trusted_device_recovery_code_and_device_deletion(tab: Tab) -> None:
    """Enroll, save the recovery codes, trust this browser; the next login needs no code;
    delete the device from the list; the login after that is challenged again, and a recovery
    code lets the user in."""
    page = tab.page
    app = sign_up(tab, "alice", trust=True)
    log_out(tab)
    log_in(tab, "alice")
    expect(page).to_have_url(url_of(tab.site.account_path))  # trusted: no challenge

    page.goto("/_mfa/devices")
    expect(page.get_by_text("This device")).to_be_visible()
    expect(page.get_by_text("Trusted", exact=True)).to_be_visible()
    tab.snap("devices")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete this device?")).to_be_visible()
    tab.snap("device-delete")
    page.get_by_role("button", name="Delete device").click()
    expect(page.get_by_text("Device deleted.")).to_be_visible()

    log_out(tab)
    log_in(tab, "alice")
    expect_challenge(tab)
    page.get_by_role("link", name="Use a recovery code").click()
    tab.snap("recovery-use")
    page.get_by_label("Recovery code").fill(app.recovery_codes[0].upper())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="You signed in with a recovery code")).to_be_visible()
    expect(page.get_by_text("You have 9 unused recovery codes left.")).to_be_visible()
    tab.snap("recovery-used")
    page.get_by_role("link", name="Continue").click()
    expect(page).to_have_url(url_of(tab.site.account_path))
    tab.guard.assert_clean()


def test_email_code_received_through_smtp(tab: Tab) -> None:
    """bob sets up codes by email: the code arrives at a real SMTP server (aiosmtpd) and
    gets him in, at enrollment and at his next login."""
    page = tab.page
    mailbox = tab.site.mailbox
    assert mailbox is not None
    log_in(tab, "bob")
    expect_enroll_choice(tab)
    page.get_by_role("link", name=re.compile("^Email")).click()
    tab.snap("enroll-email")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_text("We emailed a code to b***@example.com.")).to_be_visible()
    tab.snap("enroll-code")
    page.get_by_label(CODE_LABEL).fill(mailbox.last_code())
    page.get_by_role("button", name="Verify and turn on").click()
    save_recovery_codes(tab)
    after_verification(tab, "bob")

    log_out(tab)
    before = len(mailbox.messages)
    log_in(tab, "bob")
    expect_challenge(tab)
    expect(page.get_by_text("We emailed a code to b***@example.com.")).to_be_visible()
    tab.snap("challenge-email")
    assert len(mailbox.messages) == before + 1
    page.get_by_label(CODE_LABEL).fill(mailbox.last_code())
    page.get_by_role("button", name="Verify").click()
    after_verification(tab, "bob")
    tab.guard.assert_clean()


def test_codes_by_email_and_resend_without_javascript(nojs_tab: Tab) -> None:
    """With JavaScript off, bob enrolls by email and signs in again; pressing "Send a new code"
    too soon says how long to wait and leaves the button usable."""
    tab, page = nojs_tab, nojs_tab.page
    mailbox = tab.site.mailbox
    assert mailbox is not None
    log_in(tab, "bob")
    expect_enroll_choice(tab)
    page.get_by_role("link", name=re.compile("^Email")).click()
    page.get_by_role("button", name="Send code").click()
    press_resend_too_soon(tab)
    page.get_by_label(CODE_LABEL).fill(mailbox.last_code())
    page.get_by_role("button", name="Verify and turn on").click()
    save_recovery_codes(tab)
    after_verification(tab, "bob")

    log_out(tab)
    log_in(tab, "bob")
    expect_challenge(tab)
    press_resend_too_soon(tab)
    page.get_by_label(CODE_LABEL).fill(mailbox.last_code())
    page.get_by_role("button", name="Verify").click()
    after_verification(tab, "bob")
    tab.guard.assert_clean()
