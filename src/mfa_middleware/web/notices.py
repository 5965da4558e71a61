"""Notices to the user by email: something changed on their account, or someone who knows
their password is failing the second step."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mfa_middleware.core.effects import Deliver, Effect, emit
from mfa_middleware.core.i18n import N_
from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.web.page import Page


def notify(
    page: Page,
    subject: str,
    text: str | tuple[str, str],
    *,
    count: int = 1,
    footer: bool = True,
    **values: Any,
) -> Generator[Effect, Any, None]:
    """Tell the user by email that something changed on their account (when the app gives an
    address of record and an email sender exists). Never to an address that only a factor's
    enrollment supplied: whoever enrolled it may not be the account's owner. A failure to
    notify never blocks the change; it is logged.

    `text` is a message, or both forms of one (`NP_`) chosen by `count`. `footer`: end with
    "if this wasn't you, contact your administrator" (off where the text says what to do)."""
    address = page.principal.email
    if not address or "email" not in page.rt.delivery.channels():
        return
    t = page.rt.translate
    body = t(text) if isinstance(text, str) else page.rt.plural(*text, count)
    body = body.format(count=count, **values)
    if footer:
        body += "\n\n" + t(
            N_(
                "If this wasn't you, contact your administrator now: someone may know your"
                " password."
            )
        )
    try:
        yield Deliver(
            "email", address, f"{page.rt.config.pages.app_name}: {t(subject)}", body + "\n"
        )
    except DeliveryFailed as exc:
        yield from emit("notification_failed", user=page.principal.id, reason=exc.reason)
