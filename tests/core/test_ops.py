"""The admin flows of `core.ops`, run by the sync driver against a MemoryStore: each changes
one record, emits one audit event naming the actor, and `user_status` reports lockouts."""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any

import pytest

from mfa_middleware.core import ops
from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.policy import PolicyDefaults
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    RuntimeSettings,
    UserRecord,
    throttle_key,
    user_key,
)
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.stores.memory import MemoryStore

NOW = 1_700_000_000.0
LIMITS = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=3600.0, ceiling=20)
ACTOR = "cli:operator"


class Env:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.store.use_clock(lambda: NOW)
        self.events: list[dict[str, Any]] = []
        self.sink = EventSink(self._collect)

    def _collect(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))

    def run(self, flow: Generator[Effect, Any, Any]) -> Any:
        return run_sync(flow, self.store, self.sink)

    def user(self, user_id: str = "alice") -> UserRecord:
        return UserRecord.from_doc(self.store.get(user_key(user_id)))

    def settings(self) -> RuntimeSettings:
        return RuntimeSettings.from_doc(self.store.get(SETTINGS_KEY))


@pytest.fixture
def env() -> Env:
    env = Env()
    env.store.put(user_key("alice"), UserRecord(method="totp", epoch=3).to_doc())
    return env


def test_force_logout_bumps_the_user_epoch_only(env: Env) -> None:
    record = env.run(ops.force_logout("alice", ACTOR))
    assert record.epoch == 4
    assert env.user().epoch == 4
    assert env.user().method == "totp"
    assert env.settings().global_epoch == 0
    assert env.events == [
        {"event": "forced_logout", "user": "alice", "actor": ACTOR, "devices_revoked": False}
    ]
    env.run(ops.force_logout("alice", ACTOR))
    assert env.user().epoch == 5


def test_force_logout_can_revoke_trusted_devices(env: Env) -> None:
    record = env.run(ops.force_logout("alice", ACTOR, revoke_devices=True))
    assert (record.epoch, record.device_epoch) == (4, 1)
    assert env.user().device_epoch == 1
    assert env.settings().device_epoch == 0
    assert env.events[-1]["devices_revoked"] is True
    assert env.events[-1]["actor"] == ACTOR


def test_logout_everyone_can_revoke_trusted_devices(env: Env) -> None:
    settings = env.run(ops.logout_everyone(ACTOR, revoke_devices=True))
    assert (settings.global_epoch, settings.device_epoch) == (1, 1)
    assert env.user().device_epoch == 0
    assert env.events == [
        {"event": "all_sessions_cleared", "actor": ACTOR, "devices_revoked": True}
    ]


def test_force_logout_of_a_user_without_record_creates_one(env: Env) -> None:
    env.run(ops.force_logout("bob", ACTOR))
    assert env.user("bob").epoch == 1
    assert env.user("bob").method is None


def test_logout_everyone_bumps_the_global_epoch(env: Env) -> None:
    settings = env.run(ops.logout_everyone(ACTOR))
    assert settings.global_epoch == 1
    assert env.run(ops.logout_everyone(ACTOR)).global_epoch == 2
    assert env.settings().global_epoch == 2
    assert env.user().epoch == 3
    assert (
        env.events
        == [{"event": "all_sessions_cleared", "actor": ACTOR, "devices_revoked": False}] * 2
    )


@pytest.mark.parametrize("flag", [True, False])
def test_set_exempt(env: Env, flag: bool) -> None:
    env.store.put(user_key("alice"), UserRecord(method="totp", exempt=not flag).to_doc())
    assert env.run(ops.set_exempt("alice", flag, ACTOR)).exempt is flag
    assert env.user().exempt is flag
    assert env.user().required is False
    assert env.events == [
        {
            "event": "exemption_changed",
            "user": "alice",
            "exempt": flag,
            "browser": False,
            "actor": ACTOR,
        }
    ]


@pytest.mark.parametrize("flag", [True, False])
def test_set_required(env: Env, flag: bool) -> None:
    env.store.put(user_key("alice"), UserRecord(method="totp", required=not flag).to_doc())
    assert env.run(ops.set_required("alice", flag, ACTOR)).required is flag
    assert env.user().required is flag
    assert env.user().exempt is False
    assert env.events == [
        {"event": "requirement_changed", "user": "alice", "required": flag, "actor": ACTOR}
    ]


def test_set_mode_reports_the_previous_mode(env: Env) -> None:
    defaults = PolicyDefaults(mode="required")
    settings = env.run(ops.set_mode("optional", defaults, ACTOR))
    assert settings.mode == "optional"
    env.run(ops.set_mode("off", defaults, ACTOR))
    assert env.settings().mode == "off"
    assert env.events == [
        {"event": "mode_changed", "mode": "optional", "actor": ACTOR, "previous": "required"},
        {"event": "mode_changed", "mode": "off", "actor": ACTOR, "previous": "optional"},
    ]


@pytest.mark.parametrize(
    ("default", "sequence", "epochs"),
    [
        ("required", ["optional", "required", "off", "optional"], [0, 0, 0, 1]),
        ("off", ["off", "required", "off", "off", "optional"], [0, 1, 1, 1, 2]),
        ("optional", ["required", "optional"], [0, 0]),
    ],
)
def test_set_mode_bumps_the_enroll_epoch_only_when_switched_on_from_off(
    env: Env, default: str, sequence: list[str], epochs: list[int]
) -> None:
    defaults = PolicyDefaults(mode=default)
    seen = [env.run(ops.set_mode(mode, defaults, ACTOR)).enroll_epoch for mode in sequence]
    assert seen == epochs
    assert env.events[0]["previous"] == default


def test_set_mode_rejects_an_unknown_mode(env: Env) -> None:
    with pytest.raises(ValueError, match="mode must be one of off, optional, required"):
        env.run(ops.set_mode("sometimes", PolicyDefaults(), ACTOR))
    assert env.store.get(SETTINGS_KEY) is None
    assert env.events == []


def test_set_session_lifetime(env: Env) -> None:
    assert env.run(ops.set_session_lifetime(43200.0, ACTOR)).session_lifetime == 43200.0
    assert env.settings().session_lifetime == 43200.0
    assert env.events == [{"event": "session_lifetime_changed", "seconds": 43200.0, "actor": ACTOR}]


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_set_session_lifetime_refuses_zero_or_less(env: Env, seconds: float) -> None:
    with pytest.raises(ValueError, match="longer than zero"):
        env.run(ops.set_session_lifetime(seconds, ACTOR))
    assert env.store.get(SETTINGS_KEY) is None
    assert env.events == []


def test_changes_keep_the_other_settings(env: Env) -> None:
    env.run(ops.set_session_lifetime(3600.0, ACTOR))
    env.run(ops.set_mode("off", PolicyDefaults(), ACTOR))
    env.run(ops.logout_everyone(ACTOR))
    assert env.settings() == RuntimeSettings(
        mode="off", session_lifetime=3600.0, global_epoch=1, enroll_epoch=0
    )


def status(env: Env, user_id: str = "alice") -> ops.UserStatus:
    return env.run(ops.user_status(user_id, NOW, LIMITS))


def put_throttle(env: Env, state: ThrottleState, user_id: str = "alice") -> None:
    env.store.put(throttle_key(user_id), state.to_doc())


def test_user_status_unlocked(env: Env) -> None:
    result = status(env)
    legacy = ops.AuthenticatorInfo("legacy", "totp", "", 0.0, 0.0, default=True)
    assert result == ops.UserStatus("alice", True, "totp", False, False, 0, 0.0, False, (legacy,))
    assert result.to_dict() == {
        "user": "alice",
        "enrolled": True,
        "method": "totp",
        "exempt": False,
        "exempt_browser": False,
        "required": False,
        "failures": 0,
        "locked_for_seconds": 0.0,
        "locked": False,
        "authenticators": [legacy.to_dict()],
    }
    assert env.events == []


def test_user_status_with_failures_but_not_locked(env: Env) -> None:
    put_throttle(env, ThrottleState(in_window=2, window_at=NOW - 10, failures=2))
    result = status(env)
    assert result.failures == 2
    assert result.locked_for == 0.0
    assert result.to_dict()["locked"] is False


def test_user_status_locked_for_a_while(env: Env) -> None:
    put_throttle(env, ThrottleState(failures=5, lockouts=1, locked_until=NOW + 120))
    result = status(env)
    assert result.failures == 5
    assert result.locked_for == 120.0
    assert result.to_dict()["locked_for_seconds"] == 120.0
    assert result.to_dict()["locked"] is True


def test_user_status_lock_has_run_out(env: Env) -> None:
    put_throttle(env, ThrottleState(failures=5, lockouts=1, locked_until=NOW - 1))
    assert status(env).locked_for == 0.0


def test_user_status_with_a_full_window(env: Env) -> None:
    put_throttle(env, ThrottleState(in_window=5, window_at=NOW - 15, failures=4))
    assert status(env).locked_for == 45.0


def test_user_status_locked_until_reset_at_the_ceiling(env: Env) -> None:
    put_throttle(env, ThrottleState(failures=LIMITS.ceiling, lockouts=4, locked_until=NOW - 1))
    result = status(env)
    assert math.isinf(result.locked_for)
    assert result.to_dict()["locked_for_seconds"] is None
    assert result.to_dict()["locked"] is True


def test_user_status_of_an_unknown_user(env: Env) -> None:
    assert status(env, "nobody") == ops.UserStatus("nobody", False, None, False, False, 0, 0.0)


def test_user_status_enrollment_from_before_2fa_was_switched_off(env: Env) -> None:
    env.run(ops.set_mode("off", PolicyDefaults(), ACTOR))
    env.run(ops.set_mode("required", PolicyDefaults(), ACTOR))
    result = status(env)
    assert result.enrolled is False
    assert result.method == "totp"  # still on record, but from an older enrollment epoch


def test_user_status_reports_flags(env: Env) -> None:
    env.run(ops.set_exempt("alice", True, ACTOR))
    env.run(ops.set_required("alice", True, ACTOR))
    result = status(env)
    assert result.exempt is True
    assert result.required is True


def test_user_rows_count_only_trusted_devices_and_know_the_last_verification(env: Env) -> None:
    from mfa_middleware.core.devices import DeviceRecord, device_key
    from mfa_middleware.core.directory import Entry, directory_key
    from mfa_middleware.core.records import Authenticator

    app = Authenticator("a1", "totp", "", NOW - 500, last_used_at=NOW - 60)
    key = Authenticator("k1", "webauthn", "", NOW - 30)  # set up after the app's last use
    env.store.put(
        user_key("alice"), UserRecord(authenticators=[app.to_doc(), key.to_doc()]).to_doc()
    )
    env.store.put(directory_key("alice"), Entry("Alice", "alice", "a@example.com", NOW).to_doc())
    trusted = DeviceRecord("Firefox", NOW, NOW, trusted_until=NOW + 60)
    env.store.put(device_key("alice", "d1"), trusted.to_doc())
    env.store.put(device_key("alice", "d2"), DeviceRecord("Old", trusted_until=NOW - 1).to_doc())
    env.store.put(device_key("bob", "d3"), trusted.to_doc())  # bob's: not alice's
    alice, nobody = env.run(ops.user_rows(["alice", "nobody"], NOW, LIMITS))
    assert (alice.user_id, alice.entry.name, alice.trusted_devices) == ("alice", "Alice", 1)
    assert alice.status.enrolled
    assert alice.status.last_verified_at == NOW - 30
    assert (nobody.trusted_devices, nobody.status.enrolled, nobody.entry) == (0, False, Entry())
    assert nobody.status.last_verified_at == 0.0
