"""The languages of the pages, emails and text messages: which ones exist, which one a request
gets, and each one's messages and formats.

Catalogs are gettext `.mo` files named `<dir>/<locale>/LC_MESSAGES/mfa_middleware.mo`: the
operator's folders (`locale_dirs`) first, then the ones shipped in `mfa_middleware/locale`.
A language reads its own catalog, then its parent's ("fr_CA" then "fr"), in every folder in
that order, and English (the source text) last; so an operator's catalog may hold a whole new
language or a few strings that override ours, and a regional catalog only what differs.

Babel is imported when the first page asks for a language, never on the verified-request
path, which renders nothing.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mfa_middleware.core.bounded import Bounded

if TYPE_CHECKING:
    from babel import Locale

DOMAIN = "mfa_middleware"
SHIPPED = Path(__file__).parent / "locale"
SOURCE_LOCALE = "en"  # the language the messages are written in: no catalog needed
MAX_PREFERENCES = 32  # languages read from one Accept-Language header
MAX_HEADER = 1024  # characters of it read at all
_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_LOCALE_NAME = re.compile(r"[a-z]{2,3}(?:_[A-Z][a-z]{3})?(?:_(?:[A-Z]{2}|[0-9]{3}))?")


def locale_name(text: str) -> str | None:
    """A locale as catalogs are named ("pt_BR", "zh_Hans") from the way people write it
    ("pt-br", "zh-Hans"); None when it is not a locale name."""
    language, *rest = re.split("[-_]", text)
    parts = [language.lower()] + [p.title() if len(p) == 4 else p.upper() for p in rest]
    name = "_".join(parts)
    return name if _LOCALE_NAME.fullmatch(name) else None


def catalogs_in(folder: Path) -> set[str]:
    """The locales with a compiled catalog in `folder`."""
    if not folder.is_dir():
        return set()
    return {
        entry.name
        for entry in folder.iterdir()
        if _LOCALE_NAME.fullmatch(entry.name) and (entry / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
    }


def shipped_locales() -> set[str]:
    """The languages this package ships, English included."""
    return catalogs_in(SHIPPED) | {SOURCE_LOCALE}


def lineage(locale: str) -> list[str]:
    """The locale and its parents, most specific first: zh_Hans_CN, zh_Hans, zh."""
    parts = locale.split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


class Texts:
    """One language: its messages (the chain of catalogs) and its formats (Babel's CLDR data).

    `lang` is its BCP 47 tag for `<html lang>` ("fr-CA", "zh-Hans"), `direction` "ltr" or
    "rtl" for `<html dir>`."""

    def __init__(self, locale: str, translations: gettext.NullTranslations) -> None:
        self.locale = locale
        self.lang = locale.replace("_", "-")
        self.gettext = translations.gettext
        self.ngettext = translations.ngettext

    @cached_property
    def babel(self) -> Locale:
        from babel import Locale

        return Locale.parse(self.locale)

    @cached_property
    def direction(self) -> str:
        return "rtl" if self.babel.text_direction == "rtl" else "ltr"

    def datetime(self, timestamp: float) -> str:
        """A moment as this language writes it, to the minute, in UTC: "7 mars 2025, 14:05
        UTC", "Mar 7, 2025, 2:05 PM UTC"."""
        from babel.dates import format_date, format_time, get_datetime_format

        moment = datetime.fromtimestamp(timestamp, UTC)
        date = format_date(moment, "medium", locale=self.babel)
        clock = format_time(moment, "short", tzinfo=UTC, locale=self.babel)
        pattern = str(get_datetime_format("medium", locale=self.babel)).replace("'", "")
        return pattern.replace("{1}", date).replace("{0}", clock) + " UTC"

    def duration(self, value: float) -> str:
        """A duration in words of this language, in the largest unit that divides it exactly
        ("90 jours", "12 hours", "30 分"): CLDR's unit patterns, plurals included."""
        whole = round(value)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if whole and whole % size == 0:
                return self._unit(whole // size, unit)
        return self._unit(whole, "second")

    def _unit(self, count: int, unit: str) -> str:
        from babel.units import format_unit

        return str(format_unit(count, f"duration-{unit}", "long", locale=self.babel))

    def date(self, timestamp: float) -> str:
        """A day as this language writes it, in UTC: "7 mars 2025", "Mar 7, 2025"."""
        from babel.dates import format_date

        return format_date(datetime.fromtimestamp(timestamp, UTC), "medium", locale=self.babel)

    @cached_property
    def region_names(self) -> Mapping[str, str]:
        """Region names in this language ("DE": "Allemagne"), from CLDR."""
        return dict(self.babel.territories)


class Languages:
    """The languages offered (`offered`, English and the shipped ones by default), the
    default, and the catalogs' folders; one `Texts` per language, made on first use."""

    def __init__(
        self,
        default: str = SOURCE_LOCALE,
        offered: Iterable[str] | None = None,
        folders: Sequence[Path] = (),
    ) -> None:
        self.folders = (*folders, SHIPPED)
        found = shipped_locales().union(*(catalogs_in(f) for f in folders))
        self.offered = tuple(sorted(found if offered is None else offered))
        self.default = default
        self._offered = frozenset(self.offered)
        self._by_lower = {locale.lower(): locale for locale in self.offered}
        # a bare language picks its only regional catalog: "pt" reads pt_BR, "zh" zh_Hans
        self._aliases: dict[str, str] = {}
        for locale in self.offered:
            language = locale.split("_")[0]
            if language not in self._by_lower:
                self._aliases.setdefault(language, locale)
        self._texts: dict[str, Texts] = {}  # at most one per offered language
        self._chosen: Bounded[str, str] = Bounded(2048)  # Accept-Language values seen

    def texts(self, locale: str) -> Texts:
        """The `Texts` of an offered language; anything else gets the default's."""
        if locale not in self._offered:
            locale = self.default
        found = self._texts.get(locale)
        if found is None:
            found = self._texts[locale] = Texts(locale, self._catalog(locale))
        return found

    def _catalog(self, locale: str) -> gettext.NullTranslations:
        chain: list[gettext.NullTranslations] = []
        for name in lineage(locale):
            for folder in self.folders:
                path = folder / name / "LC_MESSAGES" / f"{DOMAIN}.mo"
                if path.is_file():
                    with path.open("rb") as fp:
                        chain.append(_without_untranslated_plurals(gettext.GNUTranslations(fp)))
        if not chain:
            return gettext.NullTranslations()
        for parent, child in zip(chain[1:], chain, strict=False):
            child.add_fallback(parent)  # each consults the next; the last, English
        return chain[0]

    def match(self, preference: str | None) -> str | None:
        """The offered language for a header value (`Accept-Language`, quality values
        honoured) or a single tag ("fr-CA", Django's "zh-hans"); None when none fits or the
        value cannot be read."""
        if not preference or not isinstance(preference, str):
            return None
        preference = preference[:MAX_HEADER].replace("_", "-")
        chosen = self._chosen.get(preference)
        if chosen is None:
            chosen = self._chosen[preference] = self._negotiate(preference) or ""
        return chosen or None

    def _negotiate(self, preference: str) -> str | None:
        from babel.core import negotiate_locale

        candidates = [c for tag in ranked(preference) for c in _candidates(tag)]
        found = negotiate_locale(candidates, self.offered, aliases=self._aliases)
        return None if found is None else self._by_lower.get(found.lower())

    def choose(self, *preferences: str | None) -> str:
        """The first of `preferences` an offered language fits, else the default."""
        for preference in preferences:
            if (found := self.match(preference)) is not None:
                return found
        return self.default


def _without_untranslated_plurals(
    translations: gettext.GNUTranslations,
) -> gettext.GNUTranslations:
    """Babel's compiler writes the English forms for a plural message a catalog leaves
    untranslated (single messages it leaves out); those would hide the next catalog's
    translation (fr's behind fr_CA's, ours behind an operator's), so they are dropped."""
    catalog = translations._catalog  # type: ignore[attr-defined]  # gettext's own table
    english = [key for key in catalog if isinstance(key, tuple) and catalog[key[0], 0] == key[0]]
    for key in english:
        del catalog[key]
    return translations


def ranked(header: str) -> list[str]:
    """The language tags of an Accept-Language value, best first (RFC 9110 §12.5.4: by
    quality, then in the order given). Items that cannot be read, `*` and q=0 are dropped."""
    ranked_items: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:MAX_PREFERENCES]):
        tag, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if _TAG.fullmatch(tag) and 0 < quality <= 1:
            ranked_items.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked_items)]


def _candidates(tag: str) -> list[str]:
    """What one tag may be served with, most specific first: zh-TW is zh_Hant_TW, then
    zh_Hant, then zh_TW, never plain zh (that is Simplified Chinese); pt-PT may be served
    with any Portuguese."""
    from babel import Locale, UnknownLocaleError
    from babel.core import get_global

    try:
        parsed = Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError):
        return [tag.split("-")[0].lower()]
    language, script, territory = parsed.language, parsed.script, parsed.territory
    found = []
    if script:
        if territory:
            found.append(f"{language}_{script}_{territory}")
        found.append(f"{language}_{script}")
    if territory:
        found.append(f"{language}_{territory}")
    likely = str(get_global("likely_subtags").get(language, ""))
    if not script or f"_{script}_" in f"{likely}_":
        found.append(language)
    return found
