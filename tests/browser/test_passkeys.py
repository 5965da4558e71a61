"""Passkeys and security keys in a real browser (issue 17): Debian's Chromium with its DevTools
virtual authenticators (a platform passkey with user verification, a USB security key
without), on the demos served as http://localhost (an IP address can have no passkeys).

Registering, signing in, a second key, removing one; and what must be refused: another
user's assertion, a cloned key whose counter went back, and a challenge answered in another
browser. Every test also checks that the pages kept their CSP (no violation, no other origin).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pyotp
import pytest

from .support import require_browser

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .conftest import SCREENSHOT_SITE, SITES  # noqa: E402
from .flows import (  # noqa: E402
    CODE_LABEL,
    Tab,
    after_verification,
    answer_trust_prompt,
    choose_method,
    log_in,
    log_out,
    reveal_setup_key,
    save_recovery_codes,
    url_of,
)
from .support import DESKTOP, PageGuard, Shots, Site, screenshots_wanted  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, CDPSession

PLATFORM = {  # a passkey in the device (Touch ID, Windows Hello): resident, user verification
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
SECURITY_KEY = {  # a USB key without a PIN
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": False,
    "hasUserVerification": False,
    "automaticPresenceSimulation": True,
}


@pytest.fixture(params=sorted(SITES, reverse=True))
def passkey_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with SITES[request.param](sys.executable, tmp_path, host="localhost") as running:
        yield running


ON_STARLETTE = pytest.mark.parametrize("passkey_site", ["starlette"], indirect=True)


@dataclass
class Browsing:
    """A tab with the DevTools session that holds its virtual authenticators."""

    tab: Tab
    cdp: CDPSession

    def add_authenticator(self, options: dict[str, Any]) -> str:
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        return str(added["authenticatorId"])

    def remove_authenticator(self, authenticator: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})

    def credentials(self, authenticator: str) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        return list(found["credentials"])


def open_browsing(browser: Browser, site: Site, *, screenshots: bool) -> Iterator[Browsing]:
    context = browser.new_context(base_url=site.base_url, service_workers="block", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    shots = Shots(enabled=screenshots and screenshots_wanted() and site.name == SCREENSHOT_SITE)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    try:
        yield Browsing(Tab(page, site, guard, shots), cdp)
        guard.assert_clean()
    finally:
        context.close()


@pytest.fixture
def browsing(browser: Browser, passkey_site: Site) -> Iterator[Browsing]:
    yield from open_browsing(browser, passkey_site, screenshots=True)


# -- steps ------------------------------------------------------------------------------------


def add_passkey(b: Browsing, name: str, *, first: bool) -> None:
    """From the method chooser: name the new passkey and let the browser make it."""
    page = b.tab.page
    page.get_by_role("link", name=re.compile("^Passkey or security key")).click()
    expect(page).to_have_url(url_of("/_mfa/enroll/passkey"))
    expect(page.get_by_role("heading", name="Add a passkey or security key")).to_be_visible()
    b.tab.snap("enroll-passkey" if first else "enroll-passkey-another")
    page.get_by_label("Name it (optional)").fill(name)
    label = "Add a passkey and turn on two-step verification" if first else "Add a passkey"
    page.get_by_role("button", name=label).click()


def expect_passkey_challenge(tab: Tab) -> None:
    expect(tab.page).to_have_url(url_of("/_mfa/challenge"))
    expect(tab.page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect(tab.page.get_by_role("button", name="Use your passkey")).to_be_visible()


def use_passkey(tab: Tab) -> None:
    tab.page.get_by_role("button", name="Use your passkey").click()


def expect_refused(tab: Tab) -> None:
    expect(tab.page.get_by_role("alert")).to_contain_text("That passkey could not be verified")
    expect(tab.page).to_have_url(url_of("/_mfa/challenge"))


def ways_to_sign_in(tab: Tab) -> list[str]:
    tab.page.goto("/_mfa/settings")
    return [
        " ".join(t.split()) for t in tab.page.locator("ul.authenticators > li").all_inner_texts()
    ]


def sign_up_with_passkey(b: Browsing, user: str) -> str:
    """First login and a platform passkey as the first factor; ends on the account page."""
    platform = b.add_authenticator(PLATFORM)
    log_in(b.tab, user)
    expect(b.tab.page).to_have_url(url_of("/_mfa/enroll"))
    add_passkey(b, "Laptop", first=True)
    save_recovery_codes(b.tab)
    after_verification(b.tab, user)
    return platform


def capture_assertion(tab: Tab) -> str:
    """Let the browser answer the challenge, but keep its answer instead of posting it."""
    captured: list[str] = []

    def hold(route: Any) -> None:
        if route.request.method == "POST":
            captured.append(parse_qs(route.request.post_data or "")["credential"][0])
            route.abort()
        else:
            route.continue_()

    tab.page.route("**/_mfa/challenge", hold)
    use_passkey(tab)
    for _ in range(100):  # up to 10 s: the virtual authenticator answers in milliseconds
        if captured:
            break
        tab.page.wait_for_timeout(100)
    tab.page.unroute("**/_mfa/challenge")
    assert captured, "the browser posted no assertion"
    return captured[0]


def post_assertion(tab: Tab, credential: str) -> None:
    """Submit `credential` from this page's passkey form (its own CSRF token), as a page
    script could: the server alone must refuse it."""
    tab.page.evaluate(
        """(credential) => {
            const form = document.querySelector("form[data-webauthn]");
            form.elements.credential.value = credential;
            form.submit();
        }""",
        credential,
    )
    tab.page.wait_for_load_state()


# -- the tests --------------------------------------------------------------------------------


def test_register_sign_in_add_a_key_and_remove_one(browsing: Browsing) -> None:
    b, tab, page = browsing, browsing.tab, browsing.tab.page
    platform = sign_up_with_passkey(b, "alice")
    assert ways_to_sign_in(tab) == ["Laptop Passkey or security key"]
    [credential] = b.credentials(platform)
    assert credential["isResidentCredential"]
    assert credential["rpId"] == "localhost"

    log_out(tab)
    log_in(tab, "alice")
    expect_passkey_challenge(tab)
    tab.snap("challenge-passkey")
    use_passkey(tab)
    after_verification(tab, "alice")

    # a security key as a second one (the laptop's passkey stays registered), then the
    # laptop's removed: the key alone signs in
    b.remove_authenticator(platform)
    key = b.add_authenticator(SECURITY_KEY)
    page.goto("/_mfa/settings")
    page.get_by_role("link", name="Add another way to sign in").click()
    expect(page.get_by_role("heading", name="Add a way to sign in")).to_be_visible()
    add_passkey(b, "YubiKey", first=False)
    answer_trust_prompt(tab, trust=False)
    expect(page).to_have_url(url_of("/"))
    assert ways_to_sign_in(tab) == [
        "Laptop Passkey or security key Default",
        "YubiKey Passkey or security key",
    ]
    page.goto("/_mfa/authenticators")
    tab.snap("authenticators-passkeys")
    laptop = page.locator("li.device", has_text="Laptop")
    laptop.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name=re.compile("Remove"))).to_be_visible()
    tab.snap("authenticator-remove")
    page.get_by_role("button", name=re.compile("^Remove")).click()
    assert ways_to_sign_in(tab) == ["YubiKey Passkey or security key"]
    # the last one stays: asking to remove it is refused, and the page says what to do instead
    page.goto("/_mfa/authenticators")
    page.locator("li.device", has_text="YubiKey").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("alert")).to_contain_text("This is your only way to sign in")
    tab.snap("authenticators-only-one")
    assert ways_to_sign_in(tab) == ["YubiKey Passkey or security key"]

    log_out(tab)
    log_in(tab, "alice")
    expect_passkey_challenge(tab)
    use_passkey(tab)
    after_verification(tab, "alice")
    assert len(b.credentials(key)) == 1


@ON_STARLETTE
def test_a_cloned_key_whose_counter_went_back_is_refused(
    browser: Browser, passkey_site: Site
) -> None:
    for b in open_browsing(browser, passkey_site, screenshots=False):
        tab = b.tab
        platform = sign_up_with_passkey(b, "alice")
        log_out(tab)
        log_in(tab, "alice")
        use_passkey(tab)
        after_verification(tab, "alice")
        [credential] = b.credentials(platform)
        assert credential["signCount"] >= 2
        b.cdp.send(
            "WebAuthn.removeCredential",
            {"authenticatorId": platform, "credentialId": credential["credentialId"]},
        )
        clone = {**credential, "signCount": 0}
        b.cdp.send("WebAuthn.addCredential", {"authenticatorId": platform, "credential": clone})
        log_out(tab)
        log_in(tab, "alice")
        expect_passkey_challenge(tab)
        use_passkey(tab)  # the browser signs; the server sees the counter at 1 again
        expect_refused(tab)
        tab.snap("challenge-passkey-refused")


@ON_STARLETTE
def test_another_users_assertion_and_another_browsers_challenge_are_refused(
    browser: Browser, passkey_site: Site
) -> None:
    site = passkey_site
    for first in open_browsing(browser, site, screenshots=False):
        for second in open_browsing(browser, site, screenshots=False):
            sign_up_with_passkey(first, "alice")
            sign_up_with_passkey(second, "bob")
            log_out(first.tab)
            log_in(first.tab, "alice")
            expect_passkey_challenge(first.tab)
            alices = capture_assertion(first.tab)  # signed for the first browser's challenge

            # bob's browser posts alice's assertion from bob's own challenge page
            log_out(second.tab)
            log_in(second.tab, "bob")
            expect_passkey_challenge(second.tab)
            post_assertion(second.tab, alices)
            expect_refused(second.tab)

            # alice in the second browser: the first browser's challenge is not hers here
            second.tab.page.get_by_role("button", name="Sign out").click()
            log_in(second.tab, "alice")
            expect_passkey_challenge(second.tab)
            post_assertion(second.tab, alices)
            expect_refused(second.tab)

            # and the first browser, whose challenge it was, still signs in with a new one
            first.tab.page.goto(site.account_path)
            expect_passkey_challenge(first.tab)
            use_passkey(first.tab)
            after_verification(first.tab, "alice")


@ON_STARLETTE
def test_a_cancelled_prompt_says_so_and_can_be_tried_again(
    browser: Browser, passkey_site: Site
) -> None:
    for b in open_browsing(browser, passkey_site, screenshots=True):
        tab = b.tab
        platform = sign_up_with_passkey(b, "alice")
        log_out(tab)
        log_in(tab, "alice")
        expect_passkey_challenge(tab)
        # the person cancels the fingerprint prompt: the browser says only NotAllowedError
        b.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": platform, "isUserVerified": False}
        )
        use_passkey(tab)
        expect(tab.page.get_by_role("alert")).to_have_text(
            "The request was cancelled or timed out. Try again."
        )
        tab.snap("challenge-passkey-cancelled")
        b.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": platform, "isUserVerified": True}
        )
        use_passkey(tab)
        after_verification(tab, "alice")


@ON_STARLETTE
def test_a_browser_without_passkeys_is_told_and_offered_another_way(
    browser: Browser, passkey_site: Site
) -> None:
    for b in open_browsing(browser, passkey_site, screenshots=False):
        tab, page = b.tab, b.tab.page
        page.add_init_script("delete window.PublicKeyCredential;")
        log_in(tab, "alice")
        page.get_by_role("link", name=re.compile("^Passkey or security key")).click()
        expect(page.get_by_role("alert")).to_have_text(
            "This browser cannot use passkeys or security keys. Use an up-to-date browser,"
            " or choose another way."
        )
        expect(page.get_by_role("button", name=re.compile("Add a passkey"))).to_be_disabled()
        page.get_by_role("link", name="Choose another way").click()
        expect(page).to_have_url(url_of("/_mfa/enroll"))


@ON_STARLETTE
def test_without_javascript_the_page_says_what_is_needed(
    browser: Browser, passkey_site: Site
) -> None:
    context = browser.new_context(
        base_url=passkey_site.base_url, viewport=DESKTOP, java_script_enabled=False
    )
    try:
        page = context.new_page()
        tab = Tab(page, passkey_site, PageGuard(origin=""), Shots(enabled=False))
        log_in(tab, "alice")
        page.goto("/_mfa/enroll/passkey")
        expect(page.get_by_text("Passkeys need JavaScript.")).to_be_visible()
    finally:
        context.close()


@ON_STARLETTE
def test_a_browser_without_the_json_helpers_registers_and_signs_in(
    browser: Browser, passkey_site: Site
) -> None:
    """Browsers before WebAuthn level 3 (no parse*OptionsFromJSON, no toJSON): the script's
    own conversions do the same."""
    for b in open_browsing(browser, passkey_site, screenshots=False):
        b.tab.page.add_init_script(
            "delete PublicKeyCredential.parseCreationOptionsFromJSON;"
            "delete PublicKeyCredential.parseRequestOptionsFromJSON;"
            "delete PublicKeyCredential.prototype.toJSON;"
        )
        sign_up_with_passkey(b, "alice")
        assert b.tab.page.evaluate("typeof PublicKeyCredential.prototype.toJSON") == "undefined"
        log_out(b.tab)
        log_in(b.tab, "alice")
        use_passkey(b.tab)
        after_verification(b.tab, "alice")


@ON_STARLETTE
def test_a_passkey_and_an_app_either_one_at_sign_in(browser: Browser, passkey_site: Site) -> None:
    for b in open_browsing(browser, passkey_site, screenshots=True):
        tab, page = b.tab, b.tab.page
        sign_up_with_passkey(b, "alice")
        page.goto("/_mfa/settings")
        page.get_by_role("link", name="Add another way to sign in").click()
        tab.snap("enroll-choose-adding")
        choose_method(tab, "Authenticator app")
        secret = reveal_setup_key(tab)
        page.get_by_label(CODE_LABEL).fill(pyotp.TOTP(secret).now())
        page.get_by_label("Name it (optional)").fill("Phone")
        page.get_by_role("button", name="Add this app").click()
        answer_trust_prompt(tab, trust=False)
        page.goto("/_mfa/settings")
        tab.snap("settings-several")
        log_out(tab)
        log_in(tab, "alice")
        expect_passkey_challenge(tab)  # the default: the passkey, added first
        page.get_by_role("link", name="Try another way").click()
        expect(page.get_by_role("heading", name="Try another way")).to_be_visible()
        tab.snap("challenge-other")
        page.get_by_role("link", name=re.compile("^Authenticator app")).click()
        page.get_by_label(CODE_LABEL).fill(pyotp.TOTP(secret).at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        after_verification(tab, "alice")
        # this browser used the app last: the next sign-in opens on it
        log_out(tab)
        log_in(tab, "alice")
        expect(page.get_by_label(CODE_LABEL)).to_be_visible()
