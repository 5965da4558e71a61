"""Every page in Arabic, Japanese and French, as Chromium shows them on a phone: the same
journey as in English (browser language set through Playwright's `locale`, which is what the
browser sends as Accept-Language), each page state's visible text compared with the English
page's, nothing wider than the screen at 390 and 320 px, `<html lang dir>` right, and the
emails the journey causes written in the language too.

The journey finds things by structure (ids, form fields, button values), not by words, so it
runs unchanged in every language: sign up with an authenticator app, settings, devices, ways
to sign in, a phone and an address being added, the step-up challenge, the admin pages and a
reset, a new sign-in with a wrong code, "try another way", the lost-device pages and link, a
recovery code, turning 2FA off; then bob, reset by the admin, enters his enrollment code, sets
up codes by email and is locked out by wrong codes. With MFA_SCREENSHOTS=1 a few states are
saved as docs/screenshots/lang-<language>-<state>-phone.png.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest

from .support import (
    MFA_PREFIX,
    NARROWEST,
    SCREENSHOT_DIR,
    PageGuard,
    Site,
    require_browser,
    require_parts,
    screenshots_wanted,
    starlette_site,
)

require_browser(module_level=True)


def missing_fonts() -> list[str]:
    """Without a Japanese font Chromium draws boxes: the layout and screenshots would lie."""
    try:
        found = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        found = ""
    return [] if found.strip() else ["a Japanese font (apt-get install fonts-noto-cjk)"]


require_parts("the pages in other languages", missing_fonts(), module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser

LANGUAGES = ("en", "ar", "ja", "fr")
PHONE = {"width": 390, "height": 844}
DIRECTION = {"en": "ltr", "ar": "rtl", "ja": "ltr", "fr": "ltr"}
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
ENROLL = re.compile(r"/_mfa/enroll(\?|$)")  # the method chooser, not /enroll/...
RESET_LINK = re.compile(r"https?://\S+/_mfa/lost/confirm\?token=\S+")
ENROLL_CODE = re.compile(r"^([0-9a-z]{4}(?:-[0-9a-z]{4}){3})\r?$", re.MULTILINE)
SHOTS = {"enroll-totp-key", "challenge", "settings", "devices", "enroll-sms-error", "admin-user"}

# Text that is the same in every language: names, and what the app (not us) calls itself.
NAMES = {"Demo app", "alice", "bob", "Tablet"}  # and the name alice gives her second app
SAME_WORD = {"fr": {"Mode"}}  # the French word is the English one
# Latin words an Arabic or Japanese page may show: product and brand names, abbreviations.
LATIN_WORDS = {
    "Demo", "app", "alice", "bob", "Google", "Authenticator", "Microsoft", "Authy",
    "Chrome", "Linux", "API", "SIM", "SMS", "QR", "UTC", "IP", "Cookie", "ID", "Tablet",
}  # fmt: skip

TEXTS = """() => {
    const skip = "script, style, code, input, textarea, select, option, body [dir=ltr]";
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.replace(/\\s+/g, " ").trim();
        const element = node.parentElement;
        if (!text || element.closest(skip) || !element.getClientRects().length) continue;
        texts.push(text);
    }
    for (const el of document.querySelectorAll("[placeholder]")) texts.push(el.placeholder);
    for (const el of document.querySelectorAll("[aria-label]")) {
        texts.push(el.getAttribute("aria-label"));
    }
    for (const el of document.querySelectorAll("svg title")) texts.push(el.textContent.trim());
    for (const el of document.querySelectorAll("select")) {
        if (el.selectedOptions.length) texts.push(el.selectedOptions[0].text.trim());
    }
    texts.push(document.title.trim());
    const root = document.documentElement;
    return {texts, lang: root.lang, dir: root.dir};
}"""

OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const found = [];
    if (document.documentElement.scrollWidth > width) {
        found.push(`the page is ${document.documentElement.scrollWidth}px wide`);
    }
    for (const el of document.body.querySelectorAll("*")) {
        const box = el.getBoundingClientRect();
        if (!box.width || el.closest(".visually-hidden, option")) continue;
        const name = el.tagName.toLowerCase() + (el.className ? "." + el.className : "");
        if (box.right > width + 1 || box.left < -1) {
            found.push(`${name} reaches ${Math.round(box.left)}..${Math.round(box.right)}px`);
        }
        const clips = getComputedStyle(el).overflowX !== "visible";
        const field = el.matches("input, textarea, select");
        if (clips && !field && el.scrollWidth > el.clientWidth + 1) {
            found.push(`${name} cuts its text off`);
        }
    }
    return found;
}"""


@dataclass
class State:
    """One page state as read in one language."""

    url: str
    texts: set[str]
    lang: str
    dir: str
    overflow: list[str]


@dataclass
class Journey:
    """What one language's journey saw: its states by name and the emails it caused."""

    language: str
    states: dict[str, State] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)


@dataclass
class Walk:
    page: Page
    site: Site
    journey: Journey

    def seen(self, name: str) -> None:
        """Read the page state `name` at phone width, and check it at the narrowest."""
        page = self.page
        page.wait_for_load_state()  # a form just posted: the page it answers, not a blank one
        assert MFA_PREFIX in page.url, f"{name}: not one of our pages: {page.url}"
        read = page.evaluate(TEXTS)
        overflow = [f"390 px: {item}" for item in page.evaluate(OVERFLOW)]
        if screenshots_wanted() and name in SHOTS and self.journey.language != "en":
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            target = SCREENSHOT_DIR / f"lang-{self.journey.language}-{name}-phone.png"
            page.screenshot(path=target, full_page=True, animations="disabled", caret="hide")
        page.set_viewport_size(NARROWEST)
        overflow += [f"320 px: {item}" for item in page.evaluate(OVERFLOW)]
        page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        texts = {t for t in read["texts"] if t}
        self.journey.states[name] = State(page.url, texts, read["lang"], read["dir"], overflow)

    # -- steps, by structure -----------------------------------------------------------------

    def log_in(self, user: str) -> None:
        page = self.page
        page.goto(self.site.account_path)
        page.fill("#username", user)
        page.fill("#password", PASSWORDS[user])
        page.click("button[type=submit]")

    def log_out(self) -> None:
        """The app's own log-out button (verified), else our pages' sign-out."""
        page = self.page
        page.goto(self.site.account_path)
        if page.url.rstrip("/").endswith(self.site.account_path.rstrip("/")):
            page.click("form[action='/logout'] button")
        else:
            page.click("form.signout button")
        expect(page).to_have_url(re.compile(re.escape(self.site.login_path)))

    def submit(self, selector: str = "form:has(#code) button.primary") -> None:
        self.page.click(selector)

    def code(self, value: str, button: str = "form:has(#code) button.primary") -> None:
        self.page.fill("#code", value)
        self.page.click(button)

    def alert(self) -> None:
        expect(self.page.locator("[role=alert]").first).to_be_visible()


def wrong_totp(secret: str) -> str:
    totp, now = pyotp.TOTP(secret), time.time()
    near = {totp.at(now + step * 30) for step in range(-3, 4)}
    return next(c for c in (d * 6 for d in "0123456789") if c not in near)


def alice(walk: Walk) -> tuple[str, list[str], str]:
    """alice: every page an authenticator-app user and an administrator meets. Returns her
    secret, recovery codes and the enrollment code her reset of bob gave."""
    page, seen = walk.page, walk.seen
    walk.log_in("bob")  # bob has signed in before: the middleware knows his address of record
    expect(page).to_have_url(ENROLL)
    walk.log_out()
    walk.log_in("alice")
    expect(page).to_have_url(ENROLL)
    seen("enroll-choose")
    page.click("a.choice[href^='/_mfa/enroll/totp']")
    expect(page.locator("figure.qr svg")).to_be_visible()
    seen("enroll-totp")
    page.click("details > summary")
    secret = page.inner_text(".secret code").replace(" ", "")
    seen("enroll-totp-key")
    walk.code(wrong_totp(secret))
    walk.alert()
    seen("enroll-totp-error")
    walk.code(pyotp.TOTP(secret).now())
    expect(page.locator(".recovery-codes")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    seen("recovery-codes")
    page.click("a.button.primary")
    expect(page).to_have_url(re.compile(r"/_mfa/trust"))
    seen("trust")
    page.click("button[value=trust]")
    expect(page).to_have_url(re.compile(re.escape(walk.site.account_path)))

    page.goto("/_mfa/settings")
    seen("settings")
    page.goto("/_mfa/devices")
    seen("devices")
    page.click("button[value=confirm_delete]")
    seen("device-delete")
    page.goto("/_mfa/enroll/totp")  # a second app, named
    page.click("details > summary")
    second = page.inner_text(".secret code").replace(" ", "")
    seen("enroll-totp-add")
    page.fill("#name", "Tablet")
    walk.code(pyotp.TOTP(second).now())
    page.goto("/_mfa/authenticators")
    seen("authenticators")
    page.locator("button[value=confirm_remove]").first.click()
    seen("authenticator-remove")
    page.click("button[value=remove]")
    expect(page.locator("[role=status]")).to_be_visible()
    seen("authenticator-removed")
    page.click("button[value=confirm_remove]")
    walk.alert()  # her only way to sign in, on a site that requires 2FA
    seen("authenticators-refused")

    page.goto("/_mfa/enroll")
    seen("enroll-add")
    page.goto("/_mfa/enroll/sms")
    seen("enroll-sms")
    page.fill("#phone", "+49 1512 3456 7890 1234 5678 9012 3456")
    page.click("form button.primary")
    walk.alert()
    seen("enroll-sms-error")
    page.select_option("#region", "GB")
    page.fill("#phone", "07911 123456")
    page.click("form button.primary")
    expect(page).to_have_url(re.compile(r"/_mfa/enroll/code"))
    seen("enroll-code-sms")
    walk.code("000000")
    walk.alert()
    seen("enroll-code-error")
    page.click("form.resend button")
    expect(page.locator("[role=status]").first).to_be_visible()
    seen("enroll-code-wait")
    page.goto("/_mfa/enroll/email")
    seen("enroll-email")
    page.goto("/_mfa/challenge?reauth=1&next=/_mfa/settings")
    seen("reauth")

    page.goto("/_mfa/admin")
    seen("admin")
    page.fill("#user", "alice")
    page.click("form:has(#user) button")
    expect(page.locator("dl.facts")).to_be_visible()
    seen("admin-user")
    page.goto("/_mfa/admin?user=bob")
    page.click("button[value=reset]")
    expect(page.locator("input[name=confirm]")).to_have_count(1)
    seen("admin-reset-confirm")
    page.click("form:has(input[name=confirm]) button[value=reset]")
    expect(page.locator("[role=status]")).to_be_visible()
    seen("admin-reset")
    assert walk.site.mailbox is not None
    enrollment_code = walk.site.mailbox.last_match(ENROLL_CODE).group(1)  # emailed to bob
    page.goto("/_mfa/nowhere")
    seen("not-found")

    walk.log_out()
    walk.log_in("alice")
    expect(page).to_have_url(re.compile(r"/_mfa/challenge"))
    seen("challenge")
    walk.code(wrong_totp(secret))
    walk.alert()
    seen("challenge-error")
    page.goto("/_mfa/challenge/other")
    seen("challenge-other")
    page.goto("/_mfa/lost")
    seen("lost")
    page.click("form button.primary")
    expect(page.locator("[role=status]")).to_be_visible()
    seen("lost-sent")
    assert walk.site.mailbox is not None
    page.goto(walk.site.mailbox.last_match(RESET_LINK).group(0))
    seen("lost-confirm")
    page.goto("/_mfa/lost/confirm?token=not-a-real-token")
    seen("lost-invalid")
    page.goto("/_mfa/recovery")
    seen("recovery")
    page.fill("#recovery-code", "aaaa-bbbb-cccc-dddd")
    page.click("form button.primary")
    walk.alert()
    seen("recovery-error")
    page.fill("#recovery-code", codes[0])
    page.click("form button.primary")
    expect(page).to_have_url(re.compile(r"/_mfa/recovery"))
    seen("recovery-used")
    page.goto("/_mfa/disable")
    seen("disable")
    page.click("form button.primary")
    expect(page).to_have_url(ENROLL)
    seen("turned-off")
    walk.log_out()
    return secret, codes, enrollment_code


def bob(walk: Walk, enrollment_code: str) -> None:
    """bob, reset by alice: his enrollment code, codes by email, a lockout."""
    page, seen = walk.page, walk.seen
    mailbox = walk.site.mailbox
    assert mailbox is not None
    walk.log_in("bob")
    expect(page).to_have_url(re.compile(r"/_mfa/enroll/unlock"))
    seen("enroll-unlock")
    page.fill("#enroll-code", "wrong-code")
    page.click("form button.primary")
    walk.alert()
    seen("enroll-unlock-error")
    page.fill("#enroll-code", enrollment_code)
    page.click("form button.primary")
    expect(page).to_have_url(ENROLL)
    page.goto("/_mfa/enroll/email")
    page.click("form button.primary")
    expect(page).to_have_url(re.compile(r"/_mfa/enroll/code"))
    seen("enroll-code-email")
    walk.code(mailbox.last_code())
    page.click("a.button.primary")  # the recovery codes are saved
    expect(page).to_have_url(re.compile(r"/_mfa/trust"))
    page.click("button[value=skip]")
    walk.log_out()
    walk.log_in("bob")
    expect(page).to_have_url(re.compile(r"/_mfa/challenge"))
    seen("challenge-email")
    for _ in range(10):
        if page.locator("#code").count() == 0:
            break
        walk.code("000000" if mailbox.last_code() != "000000" else "111111")
    expect(page.locator("#code")).to_have_count(0)
    seen("locked-out")


@contextmanager
def walking(browser: Browser, site: Site, language: str) -> Iterator[Walk]:
    context = browser.new_context(
        base_url=site.base_url,
        locale=language,
        viewport=PHONE,  # type: ignore[arg-type]
        is_mobile=True,
        has_touch=True,
        service_workers="block",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    try:
        yield Walk(page, site, Journey(language))
        guard.assert_clean()
    finally:
        context.close()


@pytest.fixture(scope="module")
def journeys(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Journey]:
    """The same journey in each language, each on a fresh demo server."""
    done = {}
    for language in LANGUAGES:
        folder = tmp_path_factory.mktemp(f"lang-{language}")
        with (
            starlette_site(sys.executable, folder) as site,
            walking(browser, site, language) as walk,
        ):
            _, _, enrollment_code = alice(walk)
            bob(walk, enrollment_code)
            assert site.mailbox is not None
            walk.journey.subjects = [
                str(make_header(decode_header(m["subject"]))) for m in site.mailbox.messages
            ]
            done[language] = walk.journey
    return done


def words(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Za-z][A-Za-z0-9]*\b", text))


def untranslated(english: State, other: State, language: str) -> set[str]:
    """Text of the English page that the other language's page shows unchanged."""
    same = (english.texts & other.texts) - NAMES - SAME_WORD.get(language, set())
    return {text for text in same if re.search(r"[A-Za-z]{2,}", text)}


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_every_page_is_translated(journeys: dict[str, Journey], language: str) -> None:
    english, other = journeys["en"], journeys[language]
    assert len(english.states) >= 40
    assert english.states.keys() == other.states.keys()
    found = {}
    for name, state in other.states.items():
        left = untranslated(english.states[name], state, language)
        if language in ("ar", "ja"):  # and no English word the English page did not have
            left |= {t for t in state.texts if words(t) - LATIN_WORDS}
        if left:
            found[name] = sorted(left)
    assert not found, f"{language}: English left on the pages: {found}"
    assert len(other.subjects) == len(english.subjects) >= 8, "the journey sends emails"
    assert not set(english.subjects) & set(other.subjects), other.subjects


def test_the_comparison_sees_english_left_behind(journeys: dict[str, Journey]) -> None:
    """The check itself: an English page compared with itself is all "untranslated"."""
    english = journeys["en"].states["challenge"]
    assert untranslated(english, english, "fr") >= {"Use a recovery code", "Verify"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_fits_a_phone(journeys: dict[str, Journey], language: str) -> None:
    found = {n: s.overflow for n, s in journeys[language].states.items() if s.overflow}
    assert not found, f"{language}: wider than the screen: {found}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_says_its_language_and_direction(
    journeys: dict[str, Journey], language: str
) -> None:
    for name, state in journeys[language].states.items():
        assert (state.lang, state.dir) == (language, DIRECTION[language]), name


def test_screenshots_are_where_the_readme_says(journeys: dict[str, Journey]) -> None:
    if not screenshots_wanted():
        pytest.skip("MFA_SCREENSHOTS=1 saves them")
    for language in LANGUAGES[1:]:
        for name in SHOTS:
            assert Path(SCREENSHOT_DIR / f"lang-{language}-{name}-phone.png").is_file()
