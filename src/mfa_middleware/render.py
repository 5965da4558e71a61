"""Jinja2 templates shipped in the package, overridable file by file from a directory.

Jinja2 is imported when the first page is rendered, not with the package: an app whose users
are all verified never renders one, and `import mfa_middleware` stays light.

One environment serves every language. Each render names its language's `Texts`, which the
templates' `_()`, `{% trans %}` and the `datetime` filter read from a context variable: it
belongs to the thread (and asyncio task) rendering, so concurrent renders in different
languages never see each other's (installing translations on the shared environment would),
and macros imported without context see it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfa_middleware.brand import brand_css
from mfa_middleware.core.i18n import UNTRANSLATED
from mfa_middleware.core.i18n import Texts as AnyTexts

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

    from mfa_middleware.i18n import Texts

_RENDERING: ContextVar[AnyTexts] = ContextVar("mfa_rendering", default=UNTRANSLATED)


class Renderer:
    def __init__(
        self,
        template_dir: str | Path | Sequence[str | Path] | None,
        globals_: dict[str, Any],
        brand_color: str | None = None,
    ) -> None:
        from importlib.resources import files  # a few ms of imports: at startup, not import

        self._template_dir = template_dir
        self._globals = globals_
        css = (files("mfa_middleware") / "web/static/mfa.css").read_bytes()
        if brand_color:  # served as part of the stylesheet: the CSP allows no inline style
            css += b"\n" + brand_css(brand_color).encode()
        self.stylesheet = css

    @cached_property
    def env(self) -> Environment:
        """The Jinja2 environment, built on first use."""
        from jinja2 import (
            ChoiceLoader,
            Environment,
            FileSystemLoader,
            PackageLoader,
            select_autoescape,
        )

        loaders: list[Any] = [PackageLoader("mfa_middleware", "web/templates")]
        if self._template_dir is not None:
            template_dir = self._template_dir
            dirs = [template_dir] if isinstance(template_dir, str | Path) else template_dir
            loaders.insert(0, FileSystemLoader([str(d) for d in dirs]))
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            auto_reload=False,
        )
        # jinja2's stubs: the i18n extension adds this method to the Environment
        env.install_gettext_callables(  # type: ignore[attr-defined]
            _gettext, _ngettext, newstyle=True
        )
        env.globals.update(self._globals)
        env.filters["datetime"] = format_time
        env.filters["date"] = format_date
        env.filters["nowrap"] = nowrap
        env.filters["ltr"] = ltr
        env.filters["bdi"] = bdi
        return env

    def render(self, template: str, texts: Texts, **context: Any) -> str:
        """The page `template` in the language of `texts` (`<html lang dir>` included)."""
        token = _RENDERING.set(texts)
        try:
            page = self.env.get_template(template)
            return page.render(lang=texts.lang, dir=texts.direction, **context)
        finally:
            _RENDERING.reset(token)


def _gettext(message: str) -> str:
    return _RENDERING.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _RENDERING.get().ngettext(singular, plural, n)


def nowrap(text: str) -> Markup:
    """A phone number or address kept on one line ("+44 •••• ••3456" never breaks after
    "+44") and left to right inside right-to-left text, escaped."""
    from markupsafe import Markup

    return Markup('<span class="nowrap" dir="ltr">{}</span>').format(text)


def ltr(text: str) -> Markup:
    """A value written left to right whatever the page's direction (an email address)."""
    from markupsafe import Markup

    return Markup('<span dir="ltr">{}</span>').format(text)


def bdi(text: str) -> Markup:
    """A name someone typed, in whatever script: isolated, so its direction cannot reorder
    the sentence around it."""
    from markupsafe import Markup

    return Markup("<bdi>{}</bdi>").format(text)


def format_time(timestamp: float) -> str:
    """A moment as the page's language writes it, to the minute, in UTC."""
    return _RENDERING.get().datetime(timestamp)


def format_date(timestamp: float) -> str:
    """A day as the page's language writes it (UTC): what is known to the day only, such as
    when a user was last seen."""
    return _RENDERING.get().date(timestamp)
