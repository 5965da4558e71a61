"""The text message with a code, in every shipped language: one SMS segment wherever the
English is one (GSM-7: 160 characters; any character outside GSM-7 makes the whole message
UCS-2: 70), and the origin-bound line last ("@app.example.com #123456"), so browsers and
phones offer the code only on the site that sent it."""

from __future__ import annotations

import pytest

from mfa_middleware.core.context import OobParams
from mfa_middleware.core.oob import code_message
from mfa_middleware.i18n import Languages, shipped_locales

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")  # two septets each (an escape, then the character)
APP = "Demo app"  # the demo's name; a longer one takes room from every language alike
HOST = "app.example.com"
CODE = "123456"
LANGUAGES = sorted(shipped_locales())
MINUTES = range(1, 11)  # code_ttl is at most 10 minutes


def segment_limit(text: str) -> tuple[str, int, int]:
    """(encoding, length in its units, one segment's capacity) of an SMS body."""
    if all(ch in GSM7 or ch in GSM7_EXTENDED for ch in text):
        return "GSM-7", sum(2 if ch in GSM7_EXTENDED else 1 for ch in text), 160
    return "UCS-2", len(text.encode("utf-16-le")) // 2, 70


def sms(locale: str, minutes: int, host: str = HOST) -> str:
    params = OobParams(ttl=minutes * 60.0, origin_host=host)
    _, text, html = code_message("sms", CODE, APP, params, Languages().texts(locale))
    assert html is None
    return text


def test_the_encoding_rules_themselves() -> None:
    assert segment_limit("a" * 160) == ("GSM-7", 160, 160)
    assert segment_limit("€" * 3) == ("GSM-7", 6, 160)
    assert segment_limit("código") == ("UCS-2", 6, 70)  # ó is not in GSM-7
    assert segment_limit("確認") == ("UCS-2", 2, 70)


def test_the_english_fits_one_segment() -> None:
    for minutes in MINUTES:
        encoding, length, limit = segment_limit(sms("en", minutes))
        assert encoding == "GSM-7"
        assert length <= limit


@pytest.mark.parametrize("locale", LANGUAGES)
def test_every_language_fits_one_segment_where_the_english_does(locale: str) -> None:
    for minutes in MINUTES:
        text = sms(locale, minutes)
        encoding, length, limit = segment_limit(text)
        assert length <= limit, f"{locale}, {minutes} min: {length} {encoding} units: {text!r}"
        if minutes == 10 and locale != "en":
            assert text != sms("en", 10), f"{locale}: the SMS is not translated"


@pytest.mark.parametrize("locale", LANGUAGES)
def test_every_language_ends_with_the_origin_bound_line(locale: str) -> None:
    for minutes in MINUTES:
        body, last = sms(locale, minutes).rsplit("\n", 1)
        assert last == f"@{HOST} #{CODE}"
        assert body.endswith("\n")  # a line of its own, after a blank line
        assert CODE in body  # and the code where people read it


def test_no_origin_line_without_a_public_url() -> None:
    text = sms("fr", 10, host="")
    assert "@" not in text
    assert text == "123456 est votre code de vérification Demo app. Il expire dans 10 minutes."


def test_the_languages_picked_for_their_encoding() -> None:
    """Spanish, Portuguese and Polish avoid letters outside GSM-7 in this one message (a
    single ó would halve the room); Arabic, Japanese and Chinese are UCS-2 and short."""
    for locale in ("es", "pt_BR", "pl", "fr", "de", "it", "nl"):
        assert segment_limit(sms(locale, 10))[0] == "GSM-7", locale
    for locale in ("ar", "ja", "zh_Hans"):
        assert segment_limit(sms(locale, 10))[0] == "UCS-2", locale
