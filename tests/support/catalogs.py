"""Operators' catalogs for tests: a compiled `.mo` in a `locale_dirs` folder, as an app would
ship its own language or its overrides."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
POT = ROOT / "src" / "mfa_middleware" / "locale" / "mfa_middleware.pot"
Message = str | tuple[str, str]


def write_catalog(folder: Path, locale: str, messages: Mapping[Message, str | list[str]]) -> Path:
    """Compile `messages` (msgid -> msgstr; a plural msgid -> its forms) into
    `folder/<locale>/LC_MESSAGES/mfa_middleware.mo`; returns `folder`."""
    catalog = Catalog(locale=locale, domain="mfa_middleware")
    for msgid, msgstr in messages.items():
        catalog.add(msgid, tuple(msgstr) if isinstance(msgstr, list) else msgstr)
    target = folder / locale / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    with (target / "mfa_middleware.mo").open("wb") as fp:
        write_mo(fp, catalog)
    return folder


def template_messages() -> list[Message]:
    """Every msgid of the shipped template."""
    with POT.open("rb") as fp:
        return [m.id for m in read_po(fp) if m.id]


_PLACEHOLDER = re.compile(r"(\{[^}]*\}|%\([^)]*\)[sd])")


def shouted(message: str) -> str:
    """Upper case, placeholders kept: a text that went through a catalog is easy to spot."""
    parts = _PLACEHOLDER.split(message)
    return "".join(p if _PLACEHOLDER.fullmatch(p) else p.upper() for p in parts)


def every_message(change: Callable[[str], str]) -> dict[Message, str | list[str]]:
    """The whole template, each message (both forms of a plural) passed through `change`."""
    return {
        m: [change(m[0]), change(m[1])] if isinstance(m, tuple) else change(m)
        for m in template_messages()
    }
