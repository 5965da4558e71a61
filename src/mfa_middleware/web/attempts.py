"""How the code pages show a guess that failed, and a lockout already in force."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mfa_middleware.core.effects import Step
from mfa_middleware.core.flows import Attempt, throttle_state
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def locked_context(retry_after: float) -> dict[str, Any]:
    """What the locked-out notice shows: forever, or the whole seconds left."""
    if math.isinf(retry_after):
        return {"locked": True, "permanent": True, "wait_seconds": 0}
    return {"locked": True, "permanent": False, "wait_seconds": max(1, math.ceil(retry_after))}


def failure_context(attempt: Attempt) -> dict[str, Any]:
    if attempt.malformed:  # not a guess: say what a code looks like, no attempt was used
        return {"malformed": True}
    if attempt.locked:
        return locked_context(attempt.retry_after)
    return {"wrong_code": True, "attempts_left": attempt.attempts_left}


def failure_status(attempt: Attempt) -> int:
    return 429 if attempt.locked else 400


def with_lock_notice(page: Page, show: Callable[[dict[str, Any]], Reply]) -> Step[ThrottleState]:
    """`show` the page with the locked-out notice when this user's verification is locked now
    (so a GET says so, not only a wrong guess), or with an empty context otherwise."""

    def shown(state: ThrottleState) -> Reply:
        now, limits = page.rt.clock(), page.rt.limits
        locked = state.locked(now, limits)
        return show(locked_context(state.retry_after(now, limits)) if locked else {})

    return Step(throttle_state(page.principal.id), shown)
