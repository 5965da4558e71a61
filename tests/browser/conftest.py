"""Fixtures of the real-browser tests.

- `site`: one of the example apps (parametrized: the Starlette demo under uvicorn, the Django
  demo through `manage.py rundemo`), served on a free loopback port with a fresh temporary data
  folder, stopped after the test.
- `browser`: Debian's Chromium (/usr/bin/chromium; MFA_TEST_CHROMIUM overrides the path),
  headless, driven by Playwright's sync API. Playwright's own browser download is not used.
  Where Chromium or playwright is missing the tests fail under CI (CI=true) and are skipped,
  loudly, elsewhere.
- `tab` (desktop, 1280x800) and `phone_tab` (360x740, touch): a page on the site, watched
  for requests to other origins and 2FA pages without their CSP.
- With MFA_SCREENSHOTS=1 the tests save the pages they visit in docs/screenshots/
  (`python scripts/screenshots.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    PageGuard,
    Shots,
    Site,
    django_site,
    require_browser,
    screenshots_wanted,
    starlette_site,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .flows import Tab

SITES = {"starlette": starlette_site, "django": django_site}
# The 2FA pages are the same on both sites: the screenshots come from the Starlette demo.
SCREENSHOT_SITE = "starlette"


@pytest.fixture(params=sorted(SITES, reverse=True))
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with SITES[request.param](sys.executable, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def _open_tab(
    browser: Browser, site: Site, *, screenshots: bool, **context_options: Any
) -> Iterator[Tab]:
    from .flows import Tab

    context = browser.new_context(
        base_url=site.base_url, service_workers="block", **context_options
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    shots = Shots(enabled=screenshots and screenshots_wanted() and site.name == SCREENSHOT_SITE)
    try:
        yield Tab(page, site, guard, shots)
    finally:
        context.close()


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Tab]:
    yield from _open_tab(browser, site, screenshots=True, viewport=DESKTOP)


@pytest.fixture
def phone_tab(browser: Browser, site: Site) -> Iterator[Tab]:
    yield from _open_tab(
        browser,
        site,
        screenshots=False,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )


@pytest.fixture
def nojs_tab(browser: Browser, site: Site) -> Iterator[Tab]:
    """A desktop browser with JavaScript turned off."""
    yield from _open_tab(
        browser, site, screenshots=False, viewport=DESKTOP, java_script_enabled=False
    )
