"""Branding hooks of the built-in pages."""

from __future__ import annotations

import pytest

from mfa_middleware import ConfigError, MemoryStore, MFAConfig
from tests.e2e.helpers import HTML, SECRET_KEY, FixedClock, client, login, make_app

pytestmark = pytest.mark.anyio


async def test_brand_colour_and_logo(clock: FixedClock) -> None:
    app = make_app(clock, brand_color="#0f766e", logo_url="/static/logo.svg")
    async with client(app) as c:
        css = await c.get("/_mfa/static/mfa.css")
        assert css.text.rstrip().endswith(
            ":root { --mfa-primary: #0f766e; --mfa-primary-text: #ffffff; --mfa-link: #0f766e; }"
        )
        await login(c)
        page = await c.get("/_mfa/enroll", headers=HTML)
        assert '<img src="/static/logo.svg" alt="" class="logo">' in page.text
        assert "style=" not in page.text  # nothing inline: the CSP stays strict


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("brand_color", "red"),
        ("brand_color", "#12345"),
        ("logo_url", "https://cdn.example/x.png"),
        ("logo_url", "//cdn.example/x.png"),
        ("logo_url", '/x.png" onerror="x'),
    ],
)
def test_bad_branding_is_refused(option: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), **{option: value})
    assert caught.value.field == option
