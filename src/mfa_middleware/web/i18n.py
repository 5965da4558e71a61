"""Marking messages for translation where they are written; the pages translate them when they
are shown (`{{ _(message) }}`) with the catalog `MFAConfig.translations` installs. The
catalog template is src/mfa_middleware/locale/mfa_middleware.pot (`make messages`)."""


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """A message to translate later, unchanged now."""
    return message
