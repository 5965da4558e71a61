"""Attempt limits as pure state transitions over a per-user record.

Every guess first takes a slot (`take_slot`) in one atomic store update; only a guess that got a
slot is evaluated, so parallel requests can never evaluate more guesses than the limit. After
`limit` failures in a row the user is locked for a period that doubles with each lockout (capped
at `max_lockout`); after `ceiling` consecutive failures the lock stays until an admin or the
recovery flow clears it. Only a successful verification resets the counters; a new login,
cookie, IP or resent code never does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.records import Record

PERMANENT = float("inf")


@dataclass(frozen=True, slots=True)
class ThrottleState(Record):
    in_window: int = 0  # slots taken since the last lock or success
    window_at: float = 0.0  # when the first of those slots was taken
    failures: int = 0  # consecutive failures since the last success
    lockouts: int = 0
    locked_until: float = 0.0

    def window_full(self, now: float, params: ThrottleParams) -> bool:
        """All slots taken, their outcomes not all recorded yet. A request that died between
        taking a slot and recording its outcome would hold the slot forever, so a full window
        frees itself after `base_lockout`."""
        return self.in_window >= params.limit and now - self.window_at < params.base_lockout

    def locked(self, now: float, params: ThrottleParams) -> bool:
        return (
            self.locked_until > now
            or self.failures >= params.ceiling
            or self.window_full(now, params)
        )

    def retry_after(self, now: float, params: ThrottleParams) -> float:
        """Seconds until a guess is possible again; inf while permanently locked."""
        if self.failures >= params.ceiling:
            return PERMANENT
        if self.locked_until > now:
            return self.locked_until - now
        if self.window_full(now, params):
            return self.window_at + params.base_lockout - now
        return 0.0

    def attempts_left(self, params: ThrottleParams) -> int:
        return max(0, min(params.limit - self.in_window, params.ceiling - self.failures))


def take_slot(state: ThrottleState, now: float, params: ThrottleParams) -> ThrottleState:
    """Reserve one guess, or leave the state unchanged when locked (the caller compares)."""
    if state.locked(now, params):
        return state
    if state.in_window == 0 or state.in_window >= params.limit:
        return replace(state, in_window=1, window_at=now)
    return replace(state, in_window=state.in_window + 1)


def record_failure(state: ThrottleState, now: float, params: ThrottleParams) -> ThrottleState:
    """Count a failed guess and lock when the window is full."""
    failed = replace(state, failures=state.failures + 1)
    if failed.in_window >= params.limit and failed.locked_until <= now:
        period = min(params.base_lockout * 2**failed.lockouts, params.max_lockout)
        failed = replace(
            failed, in_window=0, lockouts=failed.lockouts + 1, locked_until=now + period
        )
    return failed


def record_success(state: ThrottleState) -> ThrottleState:
    return ThrottleState()
