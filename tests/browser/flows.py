"""What a person does in the browser, one small step per function, so new factors (email
codes, recovery codes, trusted devices) add steps here rather than new tests from scratch.

Every step finds things the way a person does (labels, button names, headings) and checks
where it landed. TOTP codes are computed at wall time, as the servers use the real clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyotp
from playwright.sync_api import Browser, Page, expect

from .audit import Audit
from .support import DESKTOP, NARROWEST, PHONE, SNAP_SIZES, PageGuard, Shots, Site

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
MAX_ATTEMPTS = 5  # MFAConfig's default; the demos keep it
CODE_LABEL = "Verification code"
ACCOUNT_TEXT = "Signed in as {user}"


@dataclass
class Tab:
    """A browser page on one of the demo sites, with its watcher and its screenshots."""

    page: Page
    site: Site
    guard: PageGuard
    shots: Shots
    audit: Audit | None = None

    def snap(self, name: str) -> None:
        """A page state worth looking at: screenshot it (when screenshots are wanted) and
        audit it (when this tab audits) at each size, then restore the window."""
        if not (self.shots.enabled or self.audit):
            return
        page, before = self.page, self.page.viewport_size
        for label, size in SNAP_SIZES:
            page.set_viewport_size(size)
            if self.audit is not None:
                self.audit.check(page, f"{name} at {size['width']} px")
            self.shots.take(page, name, label)
        if self.audit is not None:
            page.set_viewport_size(NARROWEST)
            self.audit.check(page, f"{name} at {NARROWEST['width']} px", axe=False)
        if before is not None:
            page.set_viewport_size(before)


def url_of(path: str) -> re.Pattern[str]:
    """Matches a page URL whose path is `path` exactly (any query string)."""
    return re.compile(rf"^[a-z]+://[^/]+{re.escape(path)}(\?.*)?$")


# --- the app's own login ----------------------------------------------------------------------


def open_login(tab: Tab) -> None:
    """Go to a protected page of the app: logged out, the app sends us to its login form."""
    tab.page.goto(tab.site.account_path)
    expect(tab.page).to_have_url(url_of(tab.site.login_path))
    tab.snap("login")


def submit_login(tab: Tab, user: str) -> None:
    tab.page.get_by_label("Username").fill(user)
    tab.page.get_by_label("Password").fill(PASSWORDS[user])
    tab.page.get_by_role("button", name="Log in").click()


def log_in(tab: Tab, user: str) -> None:
    open_login(tab)
    submit_login(tab, user)


def expect_account(tab: Tab, user: str) -> None:
    """The protected page the login started from, reached through two-step verification."""
    expect(tab.page).to_have_url(url_of(tab.site.account_path))
    expect(tab.page.get_by_role("heading", name="Account")).to_be_visible()
    expect(tab.page.get_by_text(ACCOUNT_TEXT.format(user=user))).to_be_visible()
    tab.snap("protected")


def log_out(tab: Tab) -> None:
    """The app's own logout button, on its protected page."""
    tab.page.goto(tab.site.account_path)
    tab.page.get_by_role("button", name="Log out").click()
    expect(tab.page).to_have_url(url_of(tab.site.login_path))


# --- enrollment -------------------------------------------------------------------------------


def expect_enroll_choice(tab: Tab) -> None:
    expect(tab.page).to_have_url(url_of("/_mfa/enroll"))
    expect(tab.page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    tab.snap("enroll-choose")


def choose_method(tab: Tab, name: str) -> None:
    """Pick a way to get codes on the enrollment page ("Authenticator app", later "Email")."""
    tab.page.get_by_role("link", name=re.compile(re.escape(name))).click()


def choose_authenticator_app(tab: Tab) -> None:
    choose_method(tab, "Authenticator app")
    expect(tab.page).to_have_url(url_of("/_mfa/enroll/totp"))
    expect(tab.page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    expect(tab.page.locator("figure.qr svg")).to_be_visible()
    tab.snap("enroll-totp")


def reveal_setup_key(tab: Tab) -> str:
    """Open "Can't scan it?" and read the key as a person would type it in."""
    details = tab.page.locator("details").filter(has_text="Can't scan it?")
    key = details.locator("code")
    expect(key).to_be_hidden()
    details.locator("summary").click()
    expect(key).to_be_visible()
    expect(details.get_by_text("Setup key", exact=True)).to_be_visible()  # a visible label
    expect(tab.page.locator("p[aria-label]")).to_have_count(0)
    tab.snap("enroll-totp-key")
    secret = key.inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), f"not a base32 key: {secret!r}"
    return secret


def enter_code(tab: Tab, code: str, button: str) -> None:
    field = tab.page.get_by_label(CODE_LABEL)
    field.fill(code)
    tab.page.get_by_role("button", name=button).click()


@dataclass(frozen=True)
class Authenticator:
    """The authenticator app a person set up: its secret, and the code typed to confirm it."""

    secret: str
    enrolled_code: str
    recovery_codes: tuple[str, ...] = ()

    def next_code(self) -> str:
        """The code of the next time step: the step used to enroll is refused (no replay),
        and the next one is inside the drift window."""
        return pyotp.TOTP(self.secret).at(time.time() + 30)

    def wrong_code(self) -> str:
        """A well-formed code that matches no step near now."""
        totp, now = pyotp.TOTP(self.secret), time.time()
        near = {totp.at(now + step * 30) for step in range(-3, 4)}
        return next(c for c in (d * 6 for d in "0123456789") if c not in near)


def confirm_authenticator(tab: Tab, secret: str) -> Authenticator:
    """Type the app's current code to finish enrolling."""
    code = pyotp.TOTP(secret).at(time.time())
    enter_code(tab, code, "Turn on two-step verification")
    return Authenticator(secret, code)


def enroll_authenticator(tab: Tab, user: str, *, trust: bool = False) -> Authenticator:
    """Logged in and sent to enrollment: set up an authenticator app, save the recovery codes,
    answer the trust prompt, land on the account."""
    expect_enroll_choice(tab)
    choose_authenticator_app(tab)
    app = confirm_authenticator(tab, reveal_setup_key(tab))
    codes = save_recovery_codes(tab)
    after_verification(tab, user, trust=trust)
    return Authenticator(app.secret, app.enrolled_code, codes)


def save_recovery_codes(tab: Tab) -> tuple[str, ...]:
    """The codes shown once after the first enrollment: read them, then continue."""
    page = tab.page
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = tuple(page.locator(".recovery-codes code").all_inner_texts())
    assert len(codes) == 10
    expect(page.get_by_role("link", name="Download as a text file")).to_be_visible()
    tab.snap("recovery-codes")
    page.get_by_role("link", name="I saved them, continue").click()
    return codes


# --- after a correct code -------------------------------------------------------------------


def after_verification(tab: Tab, user: str, *, trust: bool = False) -> None:
    """A correct code leads to the page the login started from, by way of the "Trust this
    device?" prompt where trusted devices are on; answer it (skip by default, so the next
    login is challenged again)."""
    page, account = tab.page, url_of(tab.site.account_path)
    trust_url = url_of("/_mfa/trust")
    page.wait_for_url(lambda url: bool(account.match(url) or trust_url.match(url)))
    if trust_url.match(page.url):
        answer_trust_prompt(tab, trust=trust)
        recognised = url_of("/_mfa/devices/recognised")
        page.wait_for_url(lambda url: bool(account.match(url) or recognised.match(url)))
        if recognised.match(page.url):  # other devices of the user's: none trusted here
            page.get_by_role("button", name="Not now").click()
    expect_account(tab, user)


def answer_trust_prompt(tab: Tab, *, trust: bool) -> None:
    expect(tab.page.get_by_role("heading", name="Trust this device?")).to_be_visible()
    tab.snap("trust")
    tab.page.get_by_role("button", name="Trust this device" if trust else "Skip").click()


def sign_up(tab: Tab, user: str, *, trust: bool = False) -> Authenticator:
    """Log in for the first time and enroll; ends verified on the account page."""
    log_in(tab, user)
    return enroll_authenticator(tab, user, trust=trust)


# --- the challenge ----------------------------------------------------------------------------


def expect_challenge(tab: Tab) -> None:
    expect(tab.page).to_have_url(url_of("/_mfa/challenge"))
    expect(tab.page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect(tab.page.get_by_label(CODE_LABEL)).to_be_focused()
    # who is signed in, and the way out, in the page's footer landmark
    expect(tab.page.get_by_role("contentinfo")).to_contain_text("Signed in as")
    tab.snap("challenge")


def pass_challenge(tab: Tab, user: str, app: Authenticator) -> None:
    """On the challenge page: type the app's code, land on the page the login started from."""
    enter_code(tab, app.next_code(), "Verify")
    after_verification(tab, user)


def expect_code_refused(tab: Tab, attempts_left: int) -> None:
    noun = "attempt" if attempts_left == 1 else "attempts"
    expect(tab.page.get_by_role("alert")).to_have_text(
        f"That code didn't work. Check your app and try again ({attempts_left} {noun} left)."
    )
    expect(tab.page.get_by_label(CODE_LABEL)).to_have_attribute("aria-invalid", "true")


def expect_locked_out(tab: Tab) -> None:
    page = tab.page
    expect(page.get_by_role("heading", name="Too many wrong codes")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"Try again in (\d+ seconds|1 minute|\d+ minutes)\.")
    )
    expect(page.get_by_label(CODE_LABEL)).to_have_count(0)
    expect(page.get_by_role("button", name="Verify")).to_have_count(0)
    # the way out stays: the 2FA pages' own sign-out
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# --- layout ---------------------------------------------------------------------------------


def expect_fits_phone(tab: Tab) -> None:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{tab.page.url} scrolls sideways on a phone: {width}px"


# --- turning it off ---------------------------------------------------------------------------


def turn_off(tab: Tab) -> None:
    """From the settings, turn two-step verification off (just verified: no code is asked);
    where it is required, the user is sent to set it up again."""
    page = tab.page
    page.goto("/_mfa/settings")
    page.get_by_role("link", name="Turn off two-step verification").click()
    expect(page.get_by_role("heading", name="Turn off two-step verification?")).to_be_visible()
    page.get_by_role("button", name="Turn off and set up again").click()
    expect(page).to_have_url(url_of("/_mfa/enroll"))
    expect(page.get_by_role("status")).to_contain_text("Two-step verification is now off")


# --- codes by message -------------------------------------------------------------------------


def press_resend_too_soon(tab: Tab) -> None:
    """ "Send a new code" right after one was sent: the page says how long to wait, and the
    button stays usable for when the wait is over (no reload, no JavaScript needed)."""
    page = tab.page
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"You can ask for a new code in \d+ seconds?\. The one we sent still works\.")
    )
    expect(page.get_by_role("button", name="Send a new code")).to_be_enabled()


def expect_on_one_row(tab: Tab, *names: str) -> None:
    """The buttons named `names` share one line (none wrapped onto a line of its own)."""
    boxes = [tab.page.get_by_role("button", name=name, exact=True).bounding_box() for name in names]
    tops = {name: round(box["y"]) for name, box in zip(names, boxes, strict=True) if box}
    assert len(tops) == len(names), f"not all of {names} are visible"
    assert len(set(tops.values())) == 1, f"{tab.page.url}: buttons on different rows: {tops}"


@contextmanager
def desktop_tab(
    browser: Browser, site: Site, *, screenshots: bool = False, saw_mfa_pages: bool = True
) -> Iterator[Tab]:
    """A desktop-size tab on `site`, watched by a PageGuard that must stay clean (for a
    single-page app that shows no 2FA page: `saw_mfa_pages=False`)."""
    context = browser.new_context(base_url=site.base_url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    try:
        yield Tab(page, site, guard, Shots(enabled=screenshots))
        guard.assert_clean(saw_mfa_pages=saw_mfa_pages)
    finally:
        context.close()
