"""Marking messages for translation where they are written; they are translated when shown
(pages: `{{ _(message) }}`) or sent (codes and notifications: `Translate`), with the catalog
`MFAConfig.translations` installs. The catalog template is
src/mfa_middleware/locale/mfa_middleware.pot (`make messages`)."""

from collections.abc import Callable

Translate = Callable[[str], str]


def untranslated(message: str) -> str:
    """The built-in English."""
    return message


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """A message to translate later, unchanged now."""
    return message
