"""The QR code on the enrollment page scans from what Chromium draws, the way a phone reads it.

For each demo (Starlette, Django), plain and with a pale `brand_color`, each in the light and
the dark colour scheme, and at 1280 px x1, 390 px x2 (a phone) and 320 px x1: a screenshot of
the page goes to
`zbarimg`, `oathtool` computes the code from the URI it decoded, the browser types that code and
reaches the app. Each case then turns 2FA off again, so the next one enrolls afresh on the same
server (one server per demo and brand, started once for the module).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .scan import TotpUri, decode_qr, missing_scan_tools
from .support import Shots, Site, django_site, require_browser, require_parts, starlette_site

require_browser(module_level=True)
require_parts("QR scan tests", missing_scan_tools(), module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .flows import (  # noqa: E402
    Tab,
    after_verification,
    choose_authenticator_app,
    enter_code,
    expect_enroll_choice,
    log_in,
    save_recovery_codes,
    turn_off,
)
from .support import PageGuard  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# A pale brand colour: were it ever used for the code's modules, the code would not scan.
BRAND = "#fde047"
BRANDS: dict[str, dict[str, str]] = {"plain": {}, "branded": {"MFA_DEMO_BRAND_COLOR": BRAND}}
SCHEMES = ("light", "dark")
SERVERS = {"starlette": starlette_site, "django": django_site}
VIEWS: dict[str, dict[str, Any]] = {
    "1280x1": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    "390x2": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "320x1": {
        "viewport": {"width": 320, "height": 640},
        "device_scale_factor": 1,
        "is_mobile": True,
        "has_touch": True,
    },
}
# CSS zoom, as a page zoomed in or out (checked at desktop size)
ZOOMS = ("0.67", "2")


@pytest.fixture(
    scope="module",
    params=[(server, brand) for server in SERVERS for brand in BRANDS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def branded_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    server, brand = request.param
    tmp = tmp_path_factory.mktemp(f"{server}-{brand}")
    with SERVERS[server](sys.executable, tmp, BRANDS[brand]) as site:
        yield site


@pytest.fixture
def scanner_tab(
    browser: Browser, branded_site: Site, request: pytest.FixtureRequest
) -> Iterator[Tab]:
    site = branded_site
    view_name, scheme = request.param
    view = VIEWS[view_name]
    context = browser.new_context(
        base_url=site.base_url, service_workers="block", color_scheme=scheme, **view
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(origin=site.base_url)
    guard.watch(page)
    try:
        yield Tab(page, site, guard, Shots(enabled=False))
    finally:
        context.close()


def scan(page: Page, shot: Path) -> TotpUri:
    """The one QR code zbarimg reads on a full-page screenshot."""
    page.screenshot(path=shot, full_page=True, animations="disabled", caret="hide")
    found = decode_qr(shot)
    assert len(found) == 1, f"zbarimg read {found!r} on {shot} ({page.url})"
    return TotpUri.parse(found[0])


@pytest.mark.parametrize(
    "scanner_tab",
    [(view, scheme) for view in VIEWS for scheme in SCHEMES],
    indirect=True,
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def test_qr_code_scans_and_its_code_signs_in(scanner_tab: Tab, tmp_path: Path) -> None:
    tab, page = scanner_tab, scanner_tab.page
    log_in(tab, "alice")
    expect_enroll_choice(tab)
    choose_authenticator_app(tab)

    uri = scan(page, tmp_path / "enroll.png")
    assert uri.label.endswith(":alice"), uri
    assert uri.issuer in ("Demo app", "Django demo"), uri
    if page.viewport_size and page.viewport_size["width"] >= 1280:
        for zoom in ZOOMS:
            page.evaluate("zoom => { document.documentElement.style.zoom = zoom; }", zoom)
            assert scan(page, tmp_path / f"zoom-{zoom}.png") == uri, f"at CSS zoom {zoom}"
        page.evaluate("() => { document.documentElement.style.zoom = ''; }")
    # the code sits inside the page: nothing of it is cut off or scrolls sideways
    box = page.locator("figure.qr svg").bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, box

    enter_code(tab, uri.code(), "Turn on two-step verification")
    save_recovery_codes(tab)
    after_verification(tab, "alice")
    expect(page.get_by_text("Signed in as alice")).to_be_visible()

    turn_off(tab)  # the next case enrolls again on this server
    tab.guard.assert_clean()
