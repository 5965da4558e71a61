"""The pages, codes and notices in the user's language: per-request negotiation, the order of
who chooses (the app's `locale` callable, the app's own choice, Accept-Language, the default),
operators' catalogs, and the user's last language kept for what is sent without a request."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware import ConfigError, MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core.effects import Key
from mfa_middleware.core.http import LANGUAGE_KEY
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.i18n import Languages
from mfa_middleware.runtime import Runtime
from mfa_middleware.senders import ConsoleSender
from mfa_middleware.testing import Outbox
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    csrf_of,
    enroll,
    login,
    make_app,
    totp,
)
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


# -- which language a page gets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "lang", "direction", "heading"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.5", "fr-CA", "ltr", "Configurer la validation en deux étapes"),
        ("ar", "ar", "rtl", "إعداد التحقق بخطوتين"),
        ("ja-JP,ja;q=0.9", "ja", "ltr", "2 段階認証を設定"),
        ("sv-SE,sv;q=0.9", "en", "ltr", "Set up two-step verification"),  # none we have
        ("fr;q=abc", "en", "ltr", "Set up two-step verification"),  # malformed
        (";;;,,=q", "en", "ltr", "Set up two-step verification"),
        ("\xe9\xff;q=\xfc", "en", "ltr", "Set up two-step verification"),
    ],
)
async def test_the_browsers_language_is_negotiated(
    clock: FixedClock, header: str, lang: str, direction: str, heading: str
) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        headers = {**HTML, "accept-language": header.encode("latin-1")}  # as a client may send
        page = await c.get("/_mfa/enroll", headers=headers)
    assert page.status_code == 200
    assert html_lang(page.text) == (lang, direction)
    assert f"<h1>{heading}</h1>" in page.text


async def test_the_configured_default_when_nothing_fits(clock: FixedClock) -> None:
    app = make_app(clock, default_locale="de", locales=["en", "de", "fr"])
    async with client(app) as c:
        await login(c)
        swedish = await c.get("/_mfa/enroll", headers={**HTML, "accept-language": "sv"})
        japanese = await c.get("/_mfa/enroll", headers={**HTML, "accept-language": "ja"})
        english = await c.get("/_mfa/enroll", headers={**HTML, "accept-language": "en-US"})
    assert html_lang(swedish.text)[0] == "de"
    assert html_lang(japanese.text)[0] == "de"  # shipped, but not offered here
    assert html_lang(english.text)[0] == "en"


async def test_the_users_language_then_the_apps_then_the_browsers(clock: FixedClock) -> None:
    """alice's profile says Japanese; the app put Portuguese in the scope (a language switcher
    of its own); the browser asks for French. bob has no profile language."""
    profile = {"alice": "ja"}
    app = make_app(clock, locale=lambda facts, user: profile.get(user.id))

    async def with_app_language(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("query_string") == b"app=pt":
            scope = {**scope, LANGUAGE_KEY: "pt-BR"}
        await app(scope, receive, send)

    french = {**HTML, "accept-language": "fr"}
    async with client(with_app_language) as alice, client(with_app_language) as bob:  # type: ignore[arg-type]
        await login(alice, "alice")
        await login(bob, "bob")
        assert html_lang((await alice.get("/_mfa/enroll?app=pt", headers=french)).text)[0] == "ja"
        assert html_lang((await bob.get("/_mfa/enroll?app=pt", headers=french)).text)[0] == "pt-BR"
        assert html_lang((await bob.get("/_mfa/enroll", headers=french)).text)[0] == "fr"
        profile["alice"] = "tlh"  # a language we cannot serve: the next one that fits
        assert html_lang((await alice.get("/_mfa/enroll", headers=french)).text)[0] == "fr"


async def test_message_pages_and_their_json_twins_are_translated(clock: FixedClock) -> None:
    app = make_app(clock)
    german = {"accept-language": "de"}
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/nowhere", headers={**HTML, **german})
        api = await c.get("/_mfa/nowhere", headers={"accept": "application/json", **german})
    assert page.status_code == 404
    assert "<h1>Nicht gefunden</h1>" in page.text
    assert api.json() == {"error": "not_found", "message": "Hier gibt es nichts."}


# -- what is sent, in whose language ----------------------------------------------------------


async def test_codes_and_notices_are_in_the_language_of_the_request(clock: FixedClock) -> None:
    email = ConsoleSender("email", stream=io.StringIO())
    app = make_app(clock, email_sender=email)
    japanese = {**HTML, "accept-language": "ja"}
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/email", headers=japanese)
        await c.post("/_mfa/enroll/email", data={"csrf": csrf_of(page.text)}, headers=japanese)
        code = re.search(r"\b(\d{6})\b", email.sent[-1].text)
        assert code is not None
        page = await c.get("/_mfa/enroll/code", headers=japanese)
        data = {"csrf": csrf_of(page.text), "code": code.group(1)}
        await c.post("/_mfa/enroll/code", data=data, headers=japanese)
    sent_code, notice = email.sent[0], email.sent[-1]
    assert sent_code.subject == "Demo app の確認コード"
    assert "有効期限は 10 分です。" in sent_code.text
    assert notice.subject == "Demo app: 2 段階認証が有効になりました"
    assert "アカウントの 2 段階認証が有効になりました。" in notice.text


async def test_a_text_message_ends_with_the_origin_bound_line(clock: FixedClock) -> None:
    sms = ConsoleSender("sms", stream=io.StringIO())
    app = make_app(clock, sms_sender=sms, public_url="https://app.example.com")
    polish = {**HTML, "accept-language": "pl"}
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/sms", headers=polish)
        data = {"csrf": csrf_of(page.text), "region": "GB", "phone": "07911 123456"}
        await c.post("/_mfa/enroll/sms", data=data, headers=polish)
    text = sms.sent[-1].text
    expected = r"(\d{6}) to kod weryfikacyjny dla Demo app\. Wygasa za 10 min\."
    match = re.fullmatch(expected + r"\n\n@app\.example\.com #(\d{6})", text)
    assert match, text
    assert match.group(1) == match.group(2)


async def test_no_origin_bound_line_without_a_public_url(clock: FixedClock) -> None:
    sms = ConsoleSender("sms", stream=io.StringIO())
    app = make_app(clock, sms_sender=sms, public_url=None)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/sms", headers=HTML)
        data = {"csrf": csrf_of(page.text), "region": "GB", "phone": "07911 123456"}
        await c.post("/_mfa/enroll/sms", data=data, headers=HTML)
    assert re.fullmatch(
        r"\d{6} is your Demo app verification code\. It expires in 10 minutes\.", sms.sent[-1].text
    )


async def test_a_new_device_is_named_in_the_page_language(clock: FixedClock) -> None:
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    app = make_app(clock)
    async with client(app) as c:
        c.headers.update({"accept-language": "fr", "user-agent": firefox})
        await login(c)
        await enroll(c, clock)  # the device is registered on its first page
        page = await c.get("/_mfa/devices", headers=HTML)
    assert "<strong>Firefox sous Linux</strong>" in page.text


class CountingStore(MemoryStore):
    """Counts the writes to each user's record."""

    def __init__(self) -> None:
        super().__init__()
        self.user_writes: dict[str, int] = {}

    def update(self, key: Key, fn: Any, *, ttl: float | None = None) -> Any:
        if key.kind == "user":
            self.user_writes[key.part] = self.user_writes.get(key.part, 0) + 1
        return super().update(key, fn, ttl=ttl)


async def test_the_users_last_language_is_kept_only_when_it_changes(clock: FixedClock) -> None:
    store = CountingStore()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)
        writes = store.user_writes["alice"]
        for _ in range(3):  # pages in the same language: no write
            assert (
                await c.get("/_mfa/settings", headers={**HTML, "accept-language": "ja"})
            ).status_code == 200
        assert UserRecord.from_doc(store.get(user_key("alice"))).locale == "ja"
        assert store.user_writes["alice"] == writes + 1
        await c.get("/_mfa/settings", headers={**HTML, "accept-language": "ar"})
        assert store.user_writes["alice"] == writes + 2
        assert UserRecord.from_doc(store.get(user_key("alice"))).locale == "ar"
        # a JSON client's language is the user's too (its problems and the mails it causes
        # are written in it): kept, with one write
        await c.get(
            "/_mfa/settings", headers={"accept": "application/json", "accept-language": "de"}
        )
        assert UserRecord.from_doc(store.get(user_key("alice"))).locale == "de"
        assert store.user_writes["alice"] == writes + 3


async def test_an_administrators_reset_mails_the_user_in_their_last_language(
    clock: FixedClock,
) -> None:
    """The CLI has no request: the enrollment code goes out in the language of the user's
    last page, kept on their record."""
    store, outbox = MemoryStore(), Outbox()
    app = make_app(clock, store=store)
    async with client(app) as c:
        await login(c, "bob")
        await c.get("/_mfa/enroll", headers={**HTML, "accept-language": "es"})
    config = MFAConfig(secret_keys=[SECRET_KEY], store=store, clock=clock, email_sender=outbox)
    Admin(Runtime(config), "cli").reset("bob", email="bob@example.com")
    (mail,) = outbox.messages
    assert mail.subject == "mfa_middleware: vuelve a configurar la verificación en dos pasos"
    assert "introduce este código de activación" in mail.text


async def test_a_verified_request_never_negotiates(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verified-request path renders nothing, so it asks for no language (`make bench`
    measures it unchanged)."""
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        await enroll(c, clock)

        def refuse(*args: Any) -> str:
            raise AssertionError("a language was negotiated for a verified request")

        monkeypatch.setattr(Runtime, "locale_of", refuse)
        monkeypatch.setattr(Languages, "match", refuse)
        for _ in range(3):
            r = await c.get("/account", headers={**HTML, "accept-language": "fr"})
            assert r.status_code == 200


async def test_right_to_left_pages_keep_codes_left_to_right(clock: FixedClock) -> None:
    app = make_app(clock, recovery_code_count=10)
    arabic = {**HTML, "accept-language": "ar"}
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=arabic)
        assert html_lang(page.text) == ("ar", "rtl")
        assert "<code>" in page.text  # the setup key
        secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page.text)
        assert secret is not None
        done = await c.post(
            "/_mfa/enroll/totp",
            data={
                "csrf": csrf_of(page.text),
                "code": totp(secret.group(1).replace(" ", ""), clock()),
            },
            headers=arabic,
        )
        css = (await c.get("/_mfa/static/mfa.css")).text
    assert re.search(r"<li><code>[0-9a-z-]+</code></li>", done.text)  # the recovery codes
    ltr = re.search(r"\n([^{}\n]+) \{ direction: ltr; unicode-bidi: isolate; \}", css)
    assert ltr is not None
    assert ltr.group(1).split(", ") == [
        "code", "#code", ".codes-text", ".qr svg", "input[type=tel]", "input[type=email]"
    ]  # fmt: skip
    physical = re.findall(
        r"(?:margin|padding|border)-(?:left|right)|\b(?:left|right)\s*:|text-align:\s*(?:left|right)",
        css,
    )
    assert physical == [], "one stylesheet for both directions: logical properties only"
