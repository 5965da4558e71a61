"""Jinja2 templates shipped in the package, overridable file by file from a directory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from markupsafe import Markup

from mfa_middleware.brand import brand_css


class Renderer:
    def __init__(
        self,
        template_dir: str | Path | Sequence[str | Path] | None,
        globals_: dict[str, Any],
        translations: Any = None,
        brand_color: str | None = None,
    ) -> None:
        loaders: list[Any] = [PackageLoader("mfa_middleware", "web/templates")]
        if template_dir is not None:
            dirs = [template_dir] if isinstance(template_dir, str | Path) else template_dir
            loaders.insert(0, FileSystemLoader([str(d) for d in dirs]))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            auto_reload=False,
        )
        if translations is None:
            # jinja2's stubs: the i18n extension adds these methods to the Environment
            self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        else:
            self.env.install_gettext_translations(  # type: ignore[attr-defined]  # as above
                translations, newstyle=True
            )
        self.env.globals.update(globals_)
        self.env.filters["datetime"] = format_time
        self.env.filters["nowrap"] = nowrap
        css = (files("mfa_middleware") / "web/static/mfa.css").read_bytes()
        if brand_color:  # served as part of the stylesheet: the CSP allows no inline style
            css += b"\n" + brand_css(brand_color).encode()
        self.stylesheet = css

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


def nowrap(text: str) -> Markup:
    """A value kept on one line ("+44 •••• ••3456" never breaks after "+44"), escaped."""
    return Markup('<span class="nowrap">{}</span>').format(text)


def format_time(timestamp: float) -> str:
    """A time for people: UTC, to the minute."""
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(timestamp))
