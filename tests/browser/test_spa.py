"""The single-page app example (examples/spa, `make spa-demo`) in Chromium: its plain
JavaScript signs in through the 2FA JSON API only (issue 20 point 4). alice logs in, scans
nothing but reads the key, enters the app's code, saves her recovery codes and sees the app's
data; a wrong code says so with the attempts left; she logs out and in again, and the code
her app shows lets her back in. The page breaks none of its strict CSP and loads nothing from
elsewhere, and its QR code scans (zbarimg) to the same key."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest

from .support import require_browser, screenshots_wanted, spa_site

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import Tab, desktop_tab  # noqa: E402
from .scan import TotpUri, decode_qr  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def spa_tab(browser: Browser, tmp_path: Path) -> Iterator[Tab]:
    with (
        spa_site(sys.executable, tmp_path) as site,
        desktop_tab(browser, site, screenshots=screenshots_wanted(), saw_mfa_pages=False) as tab,
    ):
        yield tab


def wrong(totp: pyotp.TOTP) -> str:
    """A code no step near now matches."""
    near = {totp.at(int(time.time()) + d * 30) for d in range(-2, 3)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def log_in(tab: Tab, user: str = "alice") -> None:
    page = tab.page
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(f"{user}-password")
    page.get_by_role("button", name="Log in").click()


def test_the_spa_enrolls_and_signs_in_through_the_json_api(spa_tab: Tab, tmp_path: Path) -> None:
    tab, page = spa_tab, spa_tab.page
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    log_in(tab)
    expect(page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    key = page.locator("#secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", key)
    qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
    expect(qr).to_be_visible()
    shot = tmp_path / "qr.png"
    qr.screenshot(path=str(shot))
    scanned = decode_qr(shot)
    assert len(scanned) == 1, "the QR code as drawn does not scan"
    app = TotpUri.parse(scanned[0])  # what the phone's app reads from it
    assert app.secret == key
    tab.snap("spa-enroll")
    totp = pyotp.TOTP(key)

    page.get_by_label("Code from the app").fill(wrong(totp))
    page.get_by_role("button", name="Turn on two-step verification").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't work")
    page.get_by_label("Code from the app").fill(app.code())  # oathtool's code, not ours
    page.get_by_role("button", name="Turn on two-step verification").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.locator("#code-list li")).to_have_count(10)
    recovery_codes = page.locator("#code-list li").all_inner_texts()
    page.get_by_role("button", name="I saved them, continue").click()
    expect(page.get_by_text("Signed in as alice. Second step: totp.")).to_be_visible()
    tab.snap("spa-done")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()  # the login is over
    log_in(tab)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(wrong(totp))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"\d tries left\."))
    tab.snap("spa-challenge-error")
    # the next time step's code (in the drift window): the current one was used to enroll
    page.get_by_label("Code", exact=True).fill(totp.at(int(time.time()) + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Signed in as alice. Second step: totp.")).to_be_visible()
    expect(page.get_by_role("heading", name="Signed in")).to_be_focused()  # not "Log out"

    # her phone is not at hand: a recovery code instead
    page.get_by_role("button", name="Log out").click()
    log_in(tab)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_text("Other ways to sign in").click()
    page.get_by_label("Recovery code", exact=True).fill(recovery_codes[0])
    page.get_by_role("button", name="Use this recovery code").click()
    expect(page.get_by_text("Signed in with a recovery code: 9 left.")).to_be_visible()
    expect(page.get_by_text("Signed in as alice. Second step: recovery.")).to_be_visible()
