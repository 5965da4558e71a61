"""Which language a request gets (Accept-Language through Babel, quality values honoured),
what each language reads (its catalog, its parent's, the operator's before ours, English last)
and how it writes dates: `mfa_middleware.i18n` on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfa_middleware.i18n import Languages, locale_name, ranked
from tests.support.catalogs import write_catalog

LANGUAGES = Languages()  # every shipped language, English by default


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.5", "fr_CA"),
        ("fr-FR,fr;q=0.9", "fr"),
        ("fr-BE", "fr"),  # no Belgian catalog: French
        ("en;q=0.5, de", "de"),  # quality first, not order
        ("de;q=0.5, ja;q=0.8, ar;q=0.7", "ja"),
        ("ar-EG", "ar"),
        ("ja-JP", "ja"),
        ("zh-CN", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-Hans-SG", "zh_Hans"),
        ("zh-TW, fr;q=0.5", "fr"),  # Traditional Chinese is not Simplified Chinese
        ("zh-Hant", None),
        ("pt", "pt_BR"),  # the only Portuguese we have
        ("pt-PT", "pt_BR"),
        ("PL", "pl"),
        ("en-GB, fr", "en"),  # English is a language too: the browser's first choice
        ("sv, fi", None),  # none we have
        ("*", None),
        ("fr;q=0", None),  # "not French"
        ("sv, fr;q=0, de;q=0.1", "de"),
    ],
)
def test_accept_language_is_negotiated(header: str, expected: str | None) -> None:
    assert LANGUAGES.match(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        ";;;",
        ",,,",
        "fr;q=abc",
        "fr;q=2",
        "fr;q=-1",
        "fr;q=nan",
        "tlh-US-x-twain;q=1",
        "x-klingon",
        "i-klingon",
        "français",
        "fr-",
        "-fr",
        "q=1",
        "xx;q=0.5," * 5000,
        "\x00\xff",
        "zz" + "-abcdefgh" * 400,
    ],
)
def test_a_header_that_cannot_be_read_gets_the_default(header: str) -> None:
    """Whatever a client sends, no exception: the default language."""
    assert LANGUAGES.choose(header) == "en"
    assert Languages(default="fr").choose(None, header) == "fr"


def test_unreadable_items_are_skipped_not_the_whole_header() -> None:
    assert ranked("fr;q=abc, de;q=0.5, ja") == ["ja", "de"]
    assert LANGUAGES.match("xx-!!, de") == "de"


def test_the_first_choice_that_fits_wins_then_the_default() -> None:
    german = Languages(default="de")
    assert german.choose("ja", "fr-CA", "ar") == "ja"  # the user's own, before the app's
    assert german.choose("sv", "fr-CA", "ar") == "fr_CA"  # the next one that fits
    assert german.choose(None, None, "sv") == "de"  # none: the default
    assert german.choose("zh-hans") == "zh_Hans"  # Django writes language codes in lower case
    assert german.choose("fr_CA") == "fr_CA"  # and apps may write locale names


def test_only_the_offered_languages_are_chosen() -> None:
    two = Languages(offered=["en", "fr"])
    assert two.match("de, fr;q=0.5") == "fr"
    assert two.match("de") is None
    assert two.texts("de") is two.texts("en")  # anything else is the default


def test_locale_names_are_written_as_catalogs_are_named() -> None:
    assert locale_name("pt-br") == "pt_BR"
    assert locale_name("zh-hans") == "zh_Hans"
    assert locale_name("FR") == "fr"
    assert locale_name("français") is None


def test_a_regional_catalog_falls_back_to_its_language() -> None:
    canada = LANGUAGES.texts("fr_CA")
    assert canada.gettext("Email") == "Courriel"  # fr_CA's own
    assert canada.gettext("Verify") == "Vérifier"  # fr's
    forms = (
        "You have %(count)s unused recovery code.",
        "You have %(count)s unused recovery codes.",
    )
    # a plural fr_CA leaves to fr is fr's, not the English the compiler writes in its place
    assert canada.ngettext(*forms, 3) == "Vous avez %(count)s codes de secours inutilisés."
    assert LANGUAGES.texts("fr").gettext("Email") == "E-mail"
    assert canada.lang == "fr-CA"
    assert LANGUAGES.texts("zh_Hans").lang == "zh-Hans"


def test_an_operators_catalog_comes_before_ours(tmp_path: Path) -> None:
    """One string overridden, a plural too; the rest of French is still ours, and a plural
    the operator's catalog leaves untranslated does not hide ours."""
    codes = (
        "You have %(count)s unused recovery code.",
        "You have %(count)s unused recovery codes.",
    )
    attempts = (
        "That code didn't work. Check your app and try again (%(count)s attempt left).",
        "That code didn't work. Check your app and try again (%(count)s attempts left).",
    )
    write_catalog(
        tmp_path,
        "fr",
        {
            "Verify": "Valider",
            codes: ["Il vous reste %(count)s code.", "", "Il vous reste %(count)s codes."],
            attempts: ["", "", ""],
        },
    )
    french = Languages(folders=[tmp_path]).texts("fr")
    assert french.gettext("Verify") == "Valider"
    assert french.gettext("Cancel") == "Annuler"
    assert french.ngettext(*codes, 4) == "Il vous reste %(count)s codes."
    assert french.ngettext(*attempts, 4).startswith("Ce code n’a pas fonctionné.")


def test_dates_direction_and_region_names_follow_the_language() -> None:
    moment = 1_741_356_300  # 7 March 2025, 14:05 UTC
    assert LANGUAGES.texts("fr").datetime(moment) == "7 mars 2025, 14:05 UTC"
    assert LANGUAGES.texts("de").datetime(moment) == "07.03.2025, 14:05 UTC"
    assert LANGUAGES.texts("en").datetime(moment) == "Mar 7, 2025, 2:05\u202fPM UTC"
    assert LANGUAGES.texts("ja").datetime(moment) == "2025/03/07 14:05 UTC"
    assert LANGUAGES.texts("ar").direction == "rtl"
    assert LANGUAGES.texts("ja").direction == "ltr"
    assert LANGUAGES.texts("de").region_names["CA"] == "Kanada"
    assert LANGUAGES.texts("ja").region_names["CA"] == "カナダ"


def test_each_language_is_loaded_once_and_the_caches_stay_bounded() -> None:
    languages = Languages()
    assert languages.texts("fr") is languages.texts("fr")
    for n in range(10_000):  # as many different headers as clients care to send
        languages.match(f"x{n % 997}-{n}, fr;q=0.{n % 9 + 1}")
    assert len(languages._chosen) <= 2 * 2048
    assert len(languages._texts) <= len(languages.offered)
