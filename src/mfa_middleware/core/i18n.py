"""Marking messages for translation where they are written; they are translated when shown
(pages: `{{ _(message) }}`) or sent (codes and notifications: `Translate`), with the catalog
`MFAConfig.translations` installs. The catalog template is
src/mfa_middleware/locale/mfa_middleware.pot (`make messages`).

A message with a number in it is marked with both forms, `NP_(singular, plural)`, and shown
through a `Plural` (`ngettext`), so "1 minute" is never "1 minutes", in any language."""

from collections.abc import Callable

Translate = Callable[[str], str]
Plural = Callable[[str, str, int], str]  # ngettext: (singular, plural, n) -> the form for n


def untranslated(message: str) -> str:
    """The built-in English."""
    return message


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """A message to translate later, unchanged now."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 (the gettext convention)
    """A message with a number, marked in both forms, to pass to a `Plural` later."""
    return singular, plural


def untranslated_plural(singular: str, plural: str, n: int) -> str:
    """The built-in English: the singular for exactly one."""
    return singular if n == 1 else plural
