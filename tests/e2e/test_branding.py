"""Branding hooks and translations of the built-in pages."""

from __future__ import annotations

import gettext
import re

import pyotp
import pytest

from mfa_middleware import ConfigError, MemoryStore, MFAConfig
from tests.e2e.helpers import HTML, SECRET_KEY, FixedClock, client, csrf_of, login, make_app

pytestmark = pytest.mark.anyio


WORDS = {"Verify": "Vérifier", "Two-step verification": "Validation en deux étapes"}


class French(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return WORDS.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


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


async def test_pages_use_the_configured_translations(clock: FixedClock) -> None:
    app = make_app(clock, translations=French())
    async with client(app) as c:
        await login(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = r.text.split("<code>")[1].split("</code>")[0].replace(" ", "")
        await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(r.text), "code": pyotp.TOTP(secret).at(clock())},
        )
        await c.post("/_mfa/logout", headers=HTML, data={"csrf": csrf_of(r.text)})
        await login(c)
        page = await c.get("/_mfa/challenge", headers=HTML)
        assert "Vérifier" in page.text
        assert "Validation en deux étapes" in page.text


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


class Shouting(gettext.NullTranslations):
    """Every message upper-cased (placeholders kept), to see which texts go through it."""

    def gettext(self, message: str) -> str:
        parts = re.split(r"(\{[^}]*\}|%\([^)]*\)[sd])", message)
        return "".join(p if p.startswith(("{", "%(")) else p.upper() for p in parts)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


async def test_sent_codes_and_notifications_are_translated(clock: FixedClock) -> None:
    from mfa_middleware.senders import ConsoleSender

    sent = ConsoleSender("email", stream=__import__("io").StringIO())
    app = make_app(clock, translations=Shouting(), email_sender=sent)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
    assert sent.sent[0].subject == "YOUR Demo app VERIFICATION CODE"
    assert "IT EXPIRES IN 10 MINUTES" in sent.sent[0].text
