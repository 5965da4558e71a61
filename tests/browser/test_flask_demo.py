"""The Flask demo (examples/flask_app: Flask-Login and the `MFA` extension) in Chromium, as
`make flask-demo` serves it: log in, enroll an authenticator app by scanning nothing but the
key, sign in again with a code, a step-up on /billing, log out (issue 20)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest

from .support import flask_site, require_browser

require_browser(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import (  # noqa: E402
    CODE_LABEL,
    Tab,
    answer_trust_prompt,
    choose_authenticator_app,
    desktop_tab,
    reveal_setup_key,
    save_recovery_codes,
    submit_login,
    url_of,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def flask_tab(browser: Browser, tmp_path: Path) -> Iterator[Tab]:
    with flask_site(sys.executable, tmp_path) as site, desktop_tab(browser, site) as tab:
        yield tab


def test_the_flask_demo_journey(flask_tab: Tab) -> None:
    tab, page = flask_tab, flask_tab.page
    page.goto("/")
    expect(page).to_have_url(url_of("/login"))
    submit_login(tab, "alice")
    expect(page).to_have_url(url_of("/_mfa/enroll"))
    choose_authenticator_app(tab)
    secret = reveal_setup_key(tab)
    page.get_by_label(CODE_LABEL).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step verification").click()
    save_recovery_codes(tab)
    answer_trust_prompt(tab, trust=False)
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.get_by_text("Hello alice. Second step: totp.")).to_be_visible()
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()

    page.goto("/")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(url_of("/login"))
    submit_login(tab, "alice")
    expect(page).to_have_url(url_of("/_mfa/challenge"))
    page.get_by_label(CODE_LABEL).fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    answer_trust_prompt(tab, trust=False)
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
