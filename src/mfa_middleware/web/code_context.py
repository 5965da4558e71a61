"""What the code pages say about a code sent by SMS or email: where it went, or why none
works now (expired, a failed send, the hourly cap, the resend cooldown)."""

from __future__ import annotations

import math
from typing import Any

from mfa_middleware.core import authenticators, oob
from mfa_middleware.core.records import UserRecord


def sent_context(sent: oob.Sent | None, live: oob.PendingCode | None) -> dict[str, Any]:
    context: dict[str, Any] = {"expired": live is None and sent is None}
    if live is not None:
        context["channel"] = live.channel
        context["masked"] = oob.mask(live.channel, live.destination)
    if sent is not None:
        context.update(resend_context(sent))
    return context


def resend_context(sent: oob.Sent) -> dict[str, Any]:
    """How a send went: sent (or to the fallback), failed, capped for the hour, or refused
    because the last code is too recent (the button stays usable; the page says how long)."""
    refused = not sent.ok and not sent.failed and not sent.capped and sent.wait > 0
    return {
        "fallback": sent.fallback,
        "send_failed": sent.failed,
        "send_capped": sent.capped,
        "resend_refused": max(1, math.ceil(sent.wait)) if refused else 0,
    }


def send_status(sent: oob.Sent) -> int:
    return 200 if sent.ok else (429 if sent.wait and not sent.failed else 503)


def masked_factor(user: UserRecord) -> str:
    """Where an SMS or email user's codes go, masked as the pages show it ("" for others)."""
    factor = authenticators.code_factor(user)
    if factor is None or not factor.destination:
        return ""
    return oob.mask(factor.kind, factor.destination)
