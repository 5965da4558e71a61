"""Marking messages for translation where they are written; they are translated when shown
(pages: `{{ _(message) }}`) or sent (codes and notifications: `Texts`), in the language of the
request that caused them. The catalog template is
src/mfa_middleware/locale/mfa_middleware.pot (`make messages`).

A message with a number in it is marked with both forms, `NP_(singular, plural)`, and shown
through `Texts.ngettext`, so "1 minute" is never "1 minutes", in any language."""

import time
from collections.abc import Callable
from typing import Protocol


class Texts(Protocol):
    """One language's messages and formats (built by `mfa_middleware.i18n` from its catalog):
    the core only asks for them, so it never loads a catalog or locale data itself."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...

    def datetime(self, timestamp: float) -> str: ...

    def date(self, timestamp: float) -> str: ...


TextsFor = Callable[[str], Texts]
"""A language's `Texts` by its locale name ("fr_CA"); an unknown one gets the default's."""


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """A message to translate later, unchanged now."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 (the gettext convention)
    """A message with a number, marked in both forms, to pass to `Texts.ngettext` later."""
    return singular, plural


class Untranslated:
    """The built-in English, for actions run without the runtime's catalogs (tests of the
    core, a bare `Params`)."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural

    def datetime(self, timestamp: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))

    def date(self, timestamp: float) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


UNTRANSLATED = Untranslated()


def untranslated(locale: str) -> Texts:
    """Every language in English (a `TextsFor` without catalogs)."""
    return UNTRANSLATED
