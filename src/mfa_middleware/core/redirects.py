"""Where to send the user after a step: only same-site relative paths, never another origin."""

from __future__ import annotations

import re
from urllib.parse import unquote

MAX_NEXT_LENGTH = 2048
_REFUSED = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters and backslashes


def safe_next(value: str | None, default: str = "/") -> str:
    """`value` if it is a plain local path, else `default`.

    Refused: absolute URLs and schemes (`https://x`, `javascript:`), scheme-relative `//x`,
    backslash tricks browsers read as slashes (`/\\x`, `\\/x`), control characters (header
    injection), and the same after one round of percent-decoding (`/%2f%2fx`).
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    for candidate in (value, unquote(value)):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return default
        if _REFUSED.search(candidate):
            return default
    return value
