"""Attempt limits as pure transitions (checklist RL-01..RL-05)."""

from __future__ import annotations

import math

import pytest

from mfa_middleware.core.throttle import (
    PERMANENT,
    ThrottleParams,
    ThrottleState,
    record_failure,
    record_success,
    take_slot,
)

NOW = 1_000_000.0
P = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=3600.0, ceiling=20)


def guess_and_fail(state: ThrottleState, now: float, params: ThrottleParams = P) -> ThrottleState:
    """One evaluated, failed guess: take a slot (which must be granted), then count the failure."""
    slotted = take_slot(state, now, params)
    assert slotted != state, "a slot was expected to be free"
    return record_failure(slotted, now, params)


def fail_until_locked(
    state: ThrottleState, now: float, params: ThrottleParams = P
) -> ThrottleState:
    for _ in range(params.limit):
        assert not state.locked(now, params)
        state = guess_and_fail(state, now, params)
    return state


def test_fresh_state_is_open() -> None:
    state = ThrottleState()
    assert not state.locked(NOW, P)
    assert state.retry_after(NOW, P) == 0.0
    assert state.attempts_left(P) == 5


def test_locked_after_limit_failures_not_before() -> None:
    state = ThrottleState()
    for i in range(1, 5):
        state = guess_and_fail(state, NOW)
        assert not state.locked(NOW, P), f"locked after only {i} failures"
        assert state.attempts_left(P) == 5 - i
    state = guess_and_fail(state, NOW)
    assert state.locked(NOW, P)
    assert state.failures == 5
    assert state.lockouts == 1
    assert state.retry_after(NOW, P) == pytest.approx(60.0)
    assert state.locked_until == pytest.approx(NOW + 60.0)


def test_take_slot_refuses_while_locked() -> None:
    state = fail_until_locked(ThrottleState(), NOW)
    assert take_slot(state, NOW, P) == state
    assert take_slot(state, NOW + 59.9, P) == state
    later = take_slot(state, NOW + 60.0, P)
    assert later != state
    assert later.in_window == 1


def test_lock_period_doubles_per_lockout() -> None:
    params = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=10_000.0, ceiling=100)
    state = ThrottleState()
    now = NOW
    expected = [60.0, 120.0, 240.0, 480.0, 960.0]
    for n, period in enumerate(expected, start=1):
        state = fail_until_locked(state, now, params)
        assert state.lockouts == n
        assert state.retry_after(now, params) == pytest.approx(period)
        now = state.locked_until  # wait the lock out


def test_lock_period_is_capped_at_max_lockout() -> None:
    params = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=300.0, ceiling=100)
    state = ThrottleState()
    now = NOW
    periods = []
    for _ in range(6):
        state = fail_until_locked(state, now, params)
        periods.append(state.retry_after(now, params))
        now = state.locked_until
    assert periods == pytest.approx([60.0, 120.0, 240.0, 300.0, 300.0, 300.0])


def test_failures_accumulate_across_lockouts() -> None:
    state = fail_until_locked(ThrottleState(), NOW)
    state = guess_and_fail(state, NOW + 61)
    assert state.failures == 6
    assert state.in_window == 1


@pytest.mark.checklist("RL-01")
def test_ceiling_locks_permanently() -> None:
    params = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=3600.0, ceiling=12)
    state = ThrottleState()
    now = NOW
    for _ in range(11):
        if state.locked(now, params):
            now = state.locked_until
        state = guess_and_fail(state, now, params)
    assert state.failures == 11
    assert not state.locked(now, params)
    state = guess_and_fail(state, now, params)  # the 12th consecutive failure
    assert state.failures == 12
    assert state.locked(now, params)
    assert state.retry_after(now, params) == PERMANENT
    assert math.isinf(state.retry_after(now, params))
    assert state.attempts_left(params) == 0
    far_future = now + 10 * 365 * 86400
    assert state.locked(far_future, params)
    assert take_slot(state, far_future, params) == state
    assert math.isinf(state.retry_after(far_future, params))


def test_default_ceiling_reached_after_four_lockouts() -> None:
    state = ThrottleState()
    now = NOW
    for _ in range(4):
        state = fail_until_locked(state, now)
        now = state.locked_until
    assert state.failures == 20
    assert math.isinf(state.retry_after(now, P))
    assert take_slot(state, now + 1e9, P) == state


def test_success_resets_everything() -> None:
    state = fail_until_locked(ThrottleState(), NOW)
    state = guess_and_fail(state, state.locked_until)
    assert state.failures == 6
    reset = record_success(state)
    assert reset == ThrottleState()
    assert reset.failures == 0
    assert reset.lockouts == 0
    assert not reset.locked(NOW, P)
    assert reset.attempts_left(P) == 5


def test_success_after_lockouts_restarts_the_doubling() -> None:
    state = fail_until_locked(ThrottleState(), NOW)
    state = fail_until_locked(state, state.locked_until)
    assert state.lockouts == 2
    state = record_success(state)
    state = fail_until_locked(state, NOW + 10_000)
    assert state.retry_after(NOW + 10_000, P) == pytest.approx(60.0)


@pytest.mark.checklist("RL-04")
def test_full_window_refuses_a_sixth_concurrent_slot() -> None:
    """Five requests take slots before any of them records its failure (RL-04)."""
    state = ThrottleState()
    for i in range(5):
        nxt = take_slot(state, NOW, P)
        assert nxt != state, f"slot {i + 1} refused"
        state = nxt
    assert state.in_window == 5
    assert state.failures == 0
    assert state.locked(NOW, P)
    assert take_slot(state, NOW, P) == state
    assert state.attempts_left(P) == 0
    assert state.retry_after(NOW, P) > 0


def test_concurrent_failures_lock_once_and_count_all() -> None:
    state = ThrottleState()
    for _ in range(5):
        state = take_slot(state, NOW, P)
    for _ in range(5):
        state = record_failure(state, NOW, P)
    assert state.failures == 5
    assert state.lockouts == 1
    assert state.locked(NOW, P)
    assert state.retry_after(NOW, P) == pytest.approx(60.0)
    assert take_slot(state, NOW + 30, P) == state


def test_full_window_retry_after_is_honoured() -> None:
    """retry_after promises a guess is possible again after that many seconds.

    A full window whose guesses never recorded an outcome (a request that took a slot and then
    died, e.g. on a store or decryption error) reports base_lockout seconds; once those have
    passed a slot must be available again, or the account is locked for good while being told
    to retry in a minute.
    """
    state = ThrottleState()
    for _ in range(5):
        state = take_slot(state, NOW, P)
    wait = state.retry_after(NOW, P)
    assert 0 < wait < math.inf
    later = NOW + wait + 1
    assert take_slot(state, later, P) != state


def test_transitions_do_not_mutate_their_input() -> None:
    state = ThrottleState()
    take_slot(state, NOW, P)
    record_failure(state, NOW, P)
    assert state == ThrottleState()


def test_a_lockout_is_announced_by_the_failure_that_started_it() -> None:
    from mfa_middleware.core.context import ThrottleParams
    from mfa_middleware.core.flows import _started_lockout
    from mfa_middleware.core.throttle import ThrottleState

    params = ThrottleParams(limit=3, ceiling=10)
    assert _started_lockout(ThrottleState(lockouts=0), ThrottleState(lockouts=1), params)
    # a parallel guess that fails after another one locked the user announces nothing
    assert not _started_lockout(ThrottleState(lockouts=1), ThrottleState(lockouts=1), params)
    assert _started_lockout(ThrottleState(failures=9), ThrottleState(failures=10), params)
    assert not _started_lockout(ThrottleState(failures=10), ThrottleState(failures=11), params)
