"""The pages, codes and notices in the user's language: per-request negotiation, the order of
who chooses (the app's `locale` callable, the app's own choice, Accept-Language, the default),
operators' catalogs, and the user's last language kept for what is sent without a request."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mfa_middleware import ConfigError, MemoryStore, MFAConfig
from mfa_middleware.senders import ConsoleSender
from tests.e2e.helpers import HTML, SECRET_KEY, FixedClock, client, csrf_of, login, make_app
from tests.support.catalogs import every_message, shouted, write_catalog

pytestmark = pytest.mark.anyio

LANG = re.compile(r'<html lang="([^"]+)" dir="([^"]+)">')


def html_lang(page: str) -> tuple[str, str]:
    match = LANG.search(page)
    assert match, "no <html lang dir>"
    return match.group(1), match.group(2)


async def test_an_operator_catalog_overrides_every_text_of_a_language(
    clock: FixedClock, tmp_path: Path
) -> None:
    """English itself overridden, message by message: the pages, the code's email and its
    subject all go through the catalog (a text that did not would stay lower case)."""
    folder = write_catalog(tmp_path, "en", every_message(shouted))
    sent = ConsoleSender("email", stream=io.StringIO())
    app = make_app(clock, locale_dirs=[folder], email_sender=sent)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        assert "GET CODES BY EMAIL" in page.text
        assert "SIGNED IN AS" in page.text
        await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=HTML)
    assert sent.sent[0].subject == "YOUR Demo app VERIFICATION CODE"
    assert "IT EXPIRES IN 10 MINUTES" in sent.sent[0].text


async def test_an_operator_adds_a_language_and_overrides_single_strings(
    clock: FixedClock, tmp_path: Path
) -> None:
    """A language we do not ship (Swedish) from the app's folder: its strings where it has
    them, English for the rest; the browser's choice picks it."""
    write_catalog(
        tmp_path, "sv", {"Set up two-step verification": "Konfigurera tvåstegsverifiering"}
    )
    app = make_app(clock, locale_dirs=[tmp_path])
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll", headers={**HTML, "accept-language": "sv-SE,en;q=0.5"})
    assert html_lang(page.text) == ("sv", "ltr")
    assert "<h1>Konfigurera tvåstegsverifiering</h1>" in page.text
    assert "Authenticator app" in page.text  # not in the catalog: the English


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("default_locale", "xx"),
        ("default_locale", "sv"),  # no catalog for it
        ("locales", ["en", "sv"]),
        ("locales", "fr"),  # a string, not a list
        ("locale_dirs", ["/no/such/folder"]),
        ("locale", "fr"),  # not a callable
    ],
)
def test_languages_that_cannot_be_served_are_refused_at_startup(option: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        MFAConfig(secret_keys=[SECRET_KEY], store=MemoryStore(), **{option: value})
    assert caught.value.field == option
