"""Jinja2 templates shipped in the package, overridable file by file from a directory.

Jinja2 is imported when the first page is rendered, not with the package: an app whose users
are all verified never renders one, and `import mfa_middleware` stays light.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfa_middleware.brand import brand_css

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup


class Renderer:
    def __init__(
        self,
        template_dir: str | Path | Sequence[str | Path] | None,
        globals_: dict[str, Any],
        translations: Any = None,
        brand_color: str | None = None,
    ) -> None:
        from importlib.resources import files  # a few ms of imports: at startup, not import

        self._template_dir = template_dir
        self._globals = globals_
        self._translations = translations
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
        if self._translations is None:
            # jinja2's stubs: the i18n extension adds these methods to the Environment
            env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        else:
            env.install_gettext_translations(  # type: ignore[attr-defined]  # as above
                self._translations, newstyle=True
            )
        env.globals.update(self._globals)
        env.filters["datetime"] = format_time
        env.filters["date"] = format_date
        env.filters["nowrap"] = nowrap
        return env

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


def nowrap(text: str) -> Markup:
    """A value kept on one line ("+44 •••• ••3456" never breaks after "+44"), escaped."""
    from markupsafe import Markup

    return Markup('<span class="nowrap">{}</span>').format(text)


def format_time(timestamp: float) -> str:
    """A time for people: UTC, to the minute."""
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(timestamp))


def format_date(timestamp: float) -> str:
    """A day for people (UTC): what is known to the day only, such as when a user was last
    seen."""
    return time.strftime("%d %b %Y", time.gmtime(timestamp))
