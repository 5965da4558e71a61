"""`safe_next`: only same-site relative paths survive (open-redirect defences)."""

from __future__ import annotations

import pytest

from mfa_middleware.core.redirects import MAX_NEXT_LENGTH, safe_next

REFUSED = [
    "https://evil.example",
    "http://evil.example/path",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https:/evil.example",
    "/%2f%2fevil.example",
    "/%2F%2Fevil.example",
    "/%5cevil.example",
    "%2f%2fevil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/%0d%0aSet-Cookie:x=y",
    "/\r\nSet-Cookie:x=y",
    "/a\x00",
    "/a%00",
    "/\t/evil.example",
    "/a\x7f",
    "evil.example",
    "account",
    "?next=/",
    "/" + "a" * MAX_NEXT_LENGTH,
    "/" + "a" * 100_000,
]


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.checklist("UI-07")
def test_refused_values_fall_back_to_default(value: str) -> None:
    assert safe_next(value) == "/"
    assert safe_next(value, default="/home") == "/home"


@pytest.mark.parametrize(
    "value", ["/", "/account?x=1", "/account", "/a/b/c?x=1&y=2#frag", "/search?q=%20ok"]
)
@pytest.mark.checklist("UI-07")
def test_local_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value
    assert safe_next(value, default="/home") == value


def test_longest_allowed_path_is_kept() -> None:
    value = "/" + "a" * (MAX_NEXT_LENGTH - 1)
    assert len(value) == MAX_NEXT_LENGTH
    assert safe_next(value) == value


@pytest.mark.parametrize("value", [None, ""])
def test_missing_values_give_the_default(value: str | None) -> None:
    assert safe_next(value) == "/"
    assert safe_next(value, default="/dashboard") == "/dashboard"
