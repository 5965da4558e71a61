"""Two-step verification in a real browser (headless Chromium) on both example apps.

Each test gets a fresh server (`site`: the Starlette and the Django demo) and a fresh browser
context; every test ends by checking that no page loaded anything from another origin and
that every 2FA page came with its Content-Security-Policy.
"""

from __future__ import annotations

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
    reveal_setup_key,
    sign_up,
    submit_login,
    url_of,
)

if TYPE_CHECKING:
    from .flows import Tab


def test_enroll_then_sign_in_again(tab: Tab) -> None:
    app = sign_up(tab, "alice")

    tab.page.goto("/_mfa/settings")
    expect(tab.page.get_by_text("On: codes from your authenticator app.")).to_be_visible()
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
