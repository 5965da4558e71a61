"""The TOTP flows of `core.flows`, run by the sync driver against a MemoryStore.

Covers TOTP-04 (each step once, monotonic), TOTP-05 (the enrollment code is consumed),
TOTP-07 (secrets encrypted at rest) and RL-01/RL-02 (lockout per account).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from mfa_middleware.core import flows, otp
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.otp import TotpParams
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    UserRecord,
    pending_totp_key,
    throttle_key,
    user_key,
)
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.stores.memory import MemoryStore

OLD = "old-key-" + "o1Xq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs"
NEW = "new-key-" + "n7Gh2Jk9Pq4Rs6Tu1Vw3Xy5Za8Bc0De"

NOW = 30 * 56_666_667.0  # 1_700_000_010: the start of a time step
STEP = int(NOW) // 30
PARAMS = TotpParams()  # 6 digits, 30 s, window 1
LIMITS = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=3600.0, ceiling=20)
USER = "user-1"


class Env:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.store.use_clock(lambda: NOW)
        self.events = EventSink()
        self.keyring = Keyring([NEW])

    def run(self, flow: Generator[Effect, Any, Any]) -> Any:
        return run_sync(flow, self.store, self.events)

    def enroll(self, secret: str, user_id: str = USER, **fields: Any) -> None:
        record = UserRecord(method="totp", totp_secret=self.keyring.encrypt(secret), **fields)
        self.store.put(user_key(user_id), record.to_doc())

    def verify(self, code: str, now: float = NOW, user_id: str = USER) -> flows.Attempt:
        return self.run(flows.verify_totp(user_id, code, now, self.keyring, PARAMS, LIMITS))

    def confirm(self, sid: str, code: str, now: float = NOW) -> flows.Enrolled:
        return self.run(flows.confirm_totp(USER, sid, code, now, self.keyring, PARAMS, LIMITS))

    def user(self, user_id: str = USER) -> UserRecord:
        return UserRecord.from_doc(self.store.get(user_key(user_id)))


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.fixture
def secret() -> str:
    return otp.new_secret()


def code(secret: str, when: float = NOW) -> str:
    return otp.code_at(secret, when, PARAMS)


def wrong_code(secret: str, now: float = NOW) -> str:
    """A well-formed code that matches no step in the drift window."""
    for n in range(1_000_000):
        candidate = f"{n:06d}"
        if otp.match_step(secret, candidate, now, PARAMS) is None:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


# --- verify_totp -------------------------------------------------------------------------


@pytest.mark.checklist("TOTP-04")
def test_right_code_is_accepted_once(env: Env, secret: str) -> None:
    env.enroll(secret)
    first = env.verify(code(secret))
    assert first.ok is True
    assert first.step == STEP
    assert env.user().factors()[0].last_step == STEP
    again = env.verify(code(secret))
    assert again.ok is False
    assert again.replayed is True
    assert again.step is None


@pytest.mark.checklist("TOTP-04")
def test_replay_in_a_later_request_within_the_drift_window_is_refused(
    env: Env, secret: str
) -> None:
    env.enroll(secret)
    assert env.verify(code(secret)).ok
    # 35 s later (next step), the previous step's code is still inside the drift window.
    result = env.verify(code(secret), now=NOW + 35)
    assert result.ok is False
    assert result.replayed is True


@pytest.mark.checklist("TOTP-04")
def test_older_step_than_last_accepted_is_refused(env: Env, secret: str) -> None:
    env.enroll(secret)
    assert env.verify(code(secret)).step == STEP
    older = env.verify(code(secret, NOW - 30))  # step - 1: in the window, but older
    assert older.ok is False
    assert older.replayed is True
    assert env.user().factors()[0].last_step == STEP


@pytest.mark.checklist("TOTP-04")
def test_accepting_a_future_step_refuses_the_current_one(env: Env, secret: str) -> None:
    env.enroll(secret)
    ahead = env.verify(code(secret, NOW + 30))
    assert ahead.ok
    assert ahead.step == STEP + 1
    current = env.verify(code(secret))
    assert current.ok is False
    assert current.replayed is True


def test_next_step_is_accepted_after_the_current_one(env: Env, secret: str) -> None:
    env.enroll(secret)
    assert env.verify(code(secret)).ok
    later = env.verify(code(secret, NOW + 30), now=NOW + 30)
    assert later.ok
    assert later.step == STEP + 1


def test_wrong_code_is_refused_and_counted(env: Env, secret: str) -> None:
    env.enroll(secret)
    result = env.verify(wrong_code(secret))
    assert result.ok is False
    assert result.replayed is False
    assert result.locked is False
    assert result.attempts_left == 4
    assert env.run(flows.throttle_state(USER)).failures == 1


@pytest.mark.checklist("TOTP-08")
@pytest.mark.parametrize("bad", ["", " ", "\uff10" * 6, "1234567", "12345a", "123456\n"])
def test_malformed_codes_are_never_evaluated_and_cost_no_attempt(
    env: Env, secret: str, bad: str
) -> None:
    """Input that cannot be a code is no guess (issue 15): it is answered at once, never
    checked against the secret, and takes no slot."""
    env.enroll(secret)
    result = env.verify(bad)
    assert (result.ok, result.malformed) == (False, True)
    assert env.run(flows.throttle_state(USER)) == flows.ThrottleState()
    assert env.verify(code(secret)).ok  # the right code still works at once


def test_code_of_a_user_without_totp_is_refused(env: Env, secret: str) -> None:
    result = env.verify(code(secret))
    assert result.ok is False
    assert env.run(flows.throttle_state(USER)).failures == 1


def test_another_users_code_is_refused(env: Env, secret: str) -> None:
    env.enroll(secret, user_id="alice")
    env.enroll(otp.new_secret(), user_id="bob")
    assert env.verify(code(secret), user_id="bob").ok is False
    assert env.verify(code(secret), user_id="alice").ok is True


@pytest.mark.checklist("RL-01")
def test_lockout_after_limit_then_right_code_refused(env: Env, secret: str) -> None:
    env.enroll(secret)
    bad = wrong_code(secret)
    results = [env.verify(bad) for _ in range(LIMITS.limit)]
    assert [r.locked for r in results] == [False] * 4 + [True]
    assert [r.attempts_left for r in results[:4]] == [4, 3, 2, 1]
    assert results[-1].retry_after == pytest.approx(60.0)
    blocked = env.verify(code(secret))
    assert blocked.ok is False
    assert blocked.locked is True
    assert blocked.retry_after == pytest.approx(60.0)
    assert env.user().factors()[0].last_step == -1  # the right code was never evaluated
    state = env.run(flows.throttle_state(USER))
    assert state.failures == LIMITS.limit
    # Still refused just before the lock ends; accepted after it.
    assert env.verify(code(secret, NOW + 59), now=NOW + 59).locked is True
    after = env.verify(code(secret, NOW + 61), now=NOW + 61)
    assert after.ok is True


@pytest.mark.checklist("RL-03")
def test_success_clears_the_throttle_record(env: Env, secret: str) -> None:
    env.enroll(secret)
    env.verify(wrong_code(secret))
    env.verify(wrong_code(secret))
    assert env.store.get(throttle_key(USER)) is not None
    assert env.verify(code(secret)).ok
    assert env.store.get(throttle_key(USER)) is None


def test_replays_count_as_failures(env: Env, secret: str) -> None:
    env.enroll(secret)
    assert env.verify(code(secret)).ok
    for _ in range(LIMITS.limit):
        env.verify(code(secret))
    assert env.run(flows.throttle_state(USER)).failures == LIMITS.limit
    assert env.verify(code(secret, NOW + 30), now=NOW + 30).locked is True


def test_verify_reencrypts_a_secret_under_an_old_key(env: Env, secret: str) -> None:
    old_ciphertext = Keyring([OLD]).encrypt(secret)
    env.store.put(user_key(USER), UserRecord(method="totp", totp_secret=old_ciphertext).to_doc())
    env.keyring = Keyring([OLD, NEW])
    assert env.verify(code(secret)).ok
    stored = env.user().factors()[0].secret
    assert stored is not None
    assert stored != old_ciphertext
    assert env.keyring.needs_reencryption(stored) is False
    assert Keyring([NEW]).decrypt(stored) == secret


# --- pending_totp ------------------------------------------------------------------------


def test_pending_totp_same_session_same_secret(env: Env) -> None:
    first = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    again = env.run(flows.pending_totp(USER, "sid-a", NOW + 10, env.keyring))
    assert first == again
    other = env.run(flows.pending_totp(USER, "sid-b", NOW + 20, env.keyring))
    assert other != first


@pytest.mark.checklist("TOTP-07")
def test_pending_secret_is_stored_encrypted(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    doc = env.store.get(pending_totp_key(USER))
    assert doc is not None
    assert doc["secret"] != secret
    assert secret not in str(doc)
    assert doc["secret"].startswith("gAAAAA")  # Fernet version byte 0x80
    assert env.keyring.decrypt(doc["secret"]) == secret


@pytest.mark.checklist("ENR-02")
def test_pending_secret_expires(env: Env) -> None:
    first = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    env.store.use_clock(lambda: NOW + flows.PENDING_TOTP_TTL + 1)
    assert env.store.get(pending_totp_key(USER)) is None
    assert env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring)) != first


def test_new_pending_secret_does_not_reset_failures(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    for _ in range(3):
        assert env.confirm("sid-a", wrong_code(secret)).attempt.ok is False
    env.run(flows.pending_totp(USER, "sid-b", NOW, env.keyring))
    assert env.run(flows.throttle_state(USER)).failures == 3


# --- confirm_totp ------------------------------------------------------------------------


def test_confirm_activates_the_pending_secret(env: Env) -> None:
    env.store.put(user_key(USER), UserRecord(epoch=4).to_doc())
    env.store.put(SETTINGS_KEY, {"enroll_epoch": 2})
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    result = env.confirm("sid-a", code(secret))
    assert result.attempt.ok is True
    assert result.attempt.step == STEP
    assert result.user is not None
    user = env.user()
    assert user == result.user
    assert kinds(user) == ["totp"]
    assert user.epoch == 5  # every other session must verify again
    assert user.enroll_epoch == 2
    assert user.enrolled_at == NOW
    assert user.factors()[0].last_step == STEP
    assert user.enrolled_in(2)
    assert user.factors()[0].secret is not None
    assert env.keyring.decrypt(user.factors()[0].secret) == secret
    assert env.store.get(pending_totp_key(USER)) is None


def test_confirm_bumps_epoch_of_a_new_user(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    assert env.confirm("sid-a", code(secret)).attempt.ok
    assert env.user().epoch == 1


@pytest.mark.checklist("TOTP-07")
def test_stored_secret_is_fernet_ciphertext_not_base32(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    assert env.confirm("sid-a", code(secret)).attempt.ok
    doc = env.store.get(user_key(USER))
    assert doc is not None
    assert secret not in str(doc)
    stored = doc["authenticators"][0]["secret"]
    assert stored != secret
    assert stored.startswith("gAAAAA")
    assert Keyring([OLD]).needs_reencryption(stored)
    with pytest.raises(ValueError, match="does not open"):
        Keyring([OLD]).decrypt(stored)


@pytest.mark.checklist("TOTP-05")
def test_confirming_code_cannot_log_in(env: Env) -> None:
    """TOTP-05: the code that confirmed enrollment is consumed."""
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    confirming = code(secret)
    assert env.confirm("sid-a", confirming).attempt.ok
    login = env.verify(confirming, now=NOW + 5)
    assert login.ok is False
    assert login.replayed is True
    # Nor the previous step's code, still inside the drift window.
    assert env.verify(code(secret, NOW - 30), now=NOW + 5).ok is False
    # The next step's code logs in.
    assert env.verify(code(secret, NOW + 30), now=NOW + 30).ok is True


@pytest.mark.checklist("ENR-02")
def test_confirm_with_wrong_code_activates_nothing(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    result = env.confirm("sid-a", wrong_code(secret))
    assert result.attempt.ok is False
    assert result.user is None
    assert env.store.get(user_key(USER)) is None
    assert env.store.get(pending_totp_key(USER)) is not None


@pytest.mark.checklist("ENR-02")
def test_confirm_from_another_session_is_refused(env: Env) -> None:
    secret = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    result = env.confirm("sid-b", code(secret))
    assert result.attempt.ok is False
    assert result.user is None
    assert kinds(env.user()) == []


@pytest.mark.checklist("ENR-02")
def test_only_the_latest_pending_secret_can_be_confirmed(env: Env) -> None:
    first = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    second = env.run(flows.pending_totp(USER, "sid-b", NOW, env.keyring))
    assert env.confirm("sid-a", code(first)).attempt.ok is False
    assert env.confirm("sid-b", code(second)).attempt.ok is True
    assert env.keyring.decrypt(env.user().factors()[0].secret or "") == second


def test_confirm_is_throttled_with_login_attempts(env: Env, secret: str) -> None:
    env.enroll(secret)
    for _ in range(LIMITS.limit):
        env.verify(wrong_code(secret))
    pending = env.run(flows.pending_totp(USER, "sid-a", NOW, env.keyring))
    result = env.confirm("sid-a", code(pending))
    assert result.attempt.ok is False
    assert result.attempt.locked is True
    assert env.keyring.decrypt(env.user().factors()[0].secret or "") == secret
