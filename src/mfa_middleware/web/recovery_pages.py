"""Recovery codes: shown once after the first enrollment, and a new set on request from the
settings (which needs a recent code: the new set replaces the old)."""

from __future__ import annotations

from urllib.parse import quote

from mfa_middleware.core import recovery
from mfa_middleware.core.effects import Step
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def codes_page(
    page: Page, codes: list[str], target: str, claims: SessionClaims | None = None
) -> Reply:
    """The codes, once, with a download and the way on (`target`); with `claims`, as the first
    page of the session they start."""
    return page.render(
        "recovery_codes.html",
        claims=claims,
        codes=codes,
        continue_to=target,
        download=codes_download(page.rt.config.pages.app_name, codes),
    )


def codes_download(app_name: str, codes: list[str]) -> str:
    """The codes as a text file, in a data: URL (nothing to serve, nothing cached)."""
    text = f"{app_name} recovery codes\n\n" + "\n".join(codes) + "\n"
    return "data:text/plain;charset=utf-8," + quote(text)


def regenerate_post(page: Page) -> Reply:
    count = page.rt.config.recovery.code_count or recovery.DEFAULT_COUNT
    back = page.next if "next" in page.form else page.url("settings")
    issuing = recovery.replace_codes(page.caller, page.params, count)
    return Step(issuing, lambda codes: codes_page(page, codes, back))
