"""The gate's pure decision (`core.policy`): expiry, modes, exemptions, enrollment epochs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mfa_middleware.core.policy import (
    IDLE_REFRESH_SECONDS,
    Allow,
    Challenge,
    Effective,
    Enroll,
    Expired,
    PolicyDefaults,
    decide,
    effective,
    expiry_reason,
    needs_activity_refresh,
)
from mfa_middleware.core.records import HotState, RuntimeSettings, UserRecord
from mfa_middleware.core.tokens import SessionClaims

NOW = 1_700_000_000
DAY = 86400.0

EFF = Effective(mode="required", session_lifetime=90 * DAY, idle_timeout=None)
EFF_IDLE = Effective(mode="required", session_lifetime=12 * 3600.0, idle_timeout=1800.0)

ENROLLED = UserRecord(method="totp", totp_secret="ciphertext", enroll_epoch=0)


def claims(**kw: object) -> SessionClaims:
    base = {
        "session_id": "sid",
        "user_tag": "tag",
        "login_at": NOW - 100,
        "verified_at": NOW - 90,
        "active_at": NOW - 10,
        "epoch": 0,
        "global_epoch": 0,
        "method": "totp",
    }
    base.update(kw)
    return SessionClaims(**base)  # type: ignore[arg-type]


def hot(user: UserRecord | None = None, **settings: object) -> HotState:
    return HotState(RuntimeSettings(**settings), user or UserRecord())  # type: ignore[arg-type]


# --- expiry_reason -----------------------------------------------------------------------


def test_alive_session_has_no_expiry_reason() -> None:
    assert expiry_reason(claims(), hot(ENROLLED), NOW, EFF) is None
    assert expiry_reason(claims(), hot(ENROLLED), NOW, EFF_IDLE) is None


@pytest.mark.checklist("SES-07")
def test_session_lifetime_boundary() -> None:
    c = claims(login_at=NOW - int(90 * DAY), active_at=NOW)
    assert expiry_reason(c, hot(ENROLLED), NOW, EFF) == "session_lifetime"
    assert expiry_reason(c, hot(ENROLLED), NOW - 1, EFF) is None
    assert expiry_reason(c, hot(ENROLLED), NOW + 10 * DAY, EFF) == "session_lifetime"


@pytest.mark.checklist("SES-07")
def test_lifetime_counts_from_login_not_from_activity() -> None:
    # An active user is still logged out after the absolute lifetime (SES: absolute timeout).
    c = claims(login_at=NOW - 12 * 3600, active_at=NOW - 5, verified_at=NOW - 12 * 3600)
    assert expiry_reason(c, hot(ENROLLED), NOW, EFF_IDLE) == "session_lifetime"


@pytest.mark.checklist("SES-08")
def test_idle_timeout_boundary() -> None:
    c = claims(active_at=NOW - 1800, login_at=NOW - 3600)
    assert expiry_reason(c, hot(ENROLLED), NOW, EFF_IDLE) == "idle_timeout"
    assert expiry_reason(c, hot(ENROLLED), NOW - 1, EFF_IDLE) is None


def test_no_idle_timeout_when_off() -> None:
    c = claims(active_at=NOW - 30 * int(DAY), login_at=NOW - 30 * int(DAY))
    assert expiry_reason(c, hot(ENROLLED), NOW, EFF) is None


def test_user_epoch_bump_ends_session() -> None:
    user = replace(ENROLLED, epoch=3)
    assert expiry_reason(claims(epoch=2), hot(user), NOW, EFF) == "user_logged_out"
    assert expiry_reason(claims(epoch=3), hot(user), NOW, EFF) is None


@pytest.mark.checklist("SES-12")
def test_global_epoch_bump_ends_session() -> None:
    state = hot(ENROLLED, global_epoch=5)
    assert expiry_reason(claims(global_epoch=4), state, NOW, EFF) == "all_sessions_cleared"
    assert expiry_reason(claims(global_epoch=5), state, NOW, EFF) is None


def test_expiry_reason_precedence() -> None:
    state = hot(replace(ENROLLED, epoch=1), global_epoch=1)
    old = claims(login_at=NOW - int(90 * DAY), active_at=NOW - int(90 * DAY))
    assert expiry_reason(old, state, NOW, EFF_IDLE) == "session_lifetime"
    idle = claims(login_at=NOW - 3600, active_at=NOW - 3600)
    assert expiry_reason(idle, state, NOW, EFF_IDLE) == "idle_timeout"
    assert expiry_reason(claims(), state, NOW, EFF) == "user_logged_out"
    assert expiry_reason(claims(epoch=1), state, NOW, EFF) == "all_sessions_cleared"


# --- decide ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["off", "optional", "required"])
def test_expired_wins_over_every_mode(mode: str) -> None:
    eff = replace(EFF, mode=mode)
    user = replace(ENROLLED, epoch=1, exempt=True)
    assert decide(claims(), hot(user), NOW, eff) == Expired("user_logged_out")
    old = claims(login_at=NOW - int(91 * DAY))
    assert decide(old, hot(ENROLLED), NOW, eff) == Expired("session_lifetime")


def test_mode_off_allows_everyone() -> None:
    eff = replace(EFF, mode="off")
    for user in (UserRecord(), ENROLLED, replace(ENROLLED, required=True)):
        assert decide(claims(verified_at=0), hot(user), NOW, eff) == Allow("mode_off")


@pytest.mark.checklist("EX-04")
def test_exempt_user_is_allowed_unverified_for_api_calls_only() -> None:
    user = UserRecord(exempt=True, required=True)
    assert decide(claims(verified_at=0), hot(user), NOW, EFF, api=True) == Allow("exempt")
    assert decide(claims(verified_at=0), hot(user), NOW, EFF) == Enroll()  # a browser login
    enrolled_exempt = replace(ENROLLED, exempt=True)
    assert decide(claims(verified_at=0), hot(enrolled_exempt), NOW, EFF, api=True) == Allow(
        "exempt"
    )
    assert decide(claims(verified_at=0), hot(enrolled_exempt), NOW, EFF) == Challenge()
    everywhere = replace(enrolled_exempt, exempt_browser=True)
    assert decide(claims(verified_at=0), hot(everywhere), NOW, EFF) == Allow("exempt")


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_enrolled_and_verified_is_allowed(mode: str) -> None:
    eff = replace(EFF, mode=mode)
    assert decide(claims(), hot(ENROLLED), NOW, eff) == Allow("verified")


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_enrolled_but_not_verified_is_challenged(mode: str) -> None:
    eff = replace(EFF, mode=mode)
    result = decide(claims(verified_at=0), hot(ENROLLED), NOW, eff)
    assert isinstance(result, Challenge)
    assert result.reason == "mfa_required"


def test_required_mode_sends_unenrolled_users_to_enrollment() -> None:
    result = decide(claims(verified_at=0), hot(UserRecord()), NOW, EFF)
    assert isinstance(result, Enroll)
    # Even a verified_at in the cookie does not stand in for an enrollment.
    assert isinstance(decide(claims(), hot(UserRecord()), NOW, EFF), Enroll)


def test_optional_mode_allows_unenrolled_users() -> None:
    eff = replace(EFF, mode="optional")
    assert decide(claims(verified_at=0), hot(UserRecord()), NOW, eff) == Allow("not_enrolled")


def test_optional_mode_with_required_flag_enrolls() -> None:
    eff = replace(EFF, mode="optional")
    user = UserRecord(required=True)
    assert isinstance(decide(claims(verified_at=0), hot(user), NOW, eff), Enroll)


def test_enrollment_from_an_old_enroll_epoch_must_enroll_again() -> None:
    old = replace(ENROLLED, enroll_epoch=1)
    state = hot(old, enroll_epoch=2)
    assert isinstance(decide(claims(), state, NOW, EFF), Enroll)
    assert isinstance(decide(claims(verified_at=0), state, NOW, EFF), Enroll)
    optional = replace(EFF, mode="optional")
    assert decide(claims(), state, NOW, optional) == Allow("not_enrolled")
    assert isinstance(decide(claims(), hot(replace(old, required=True), enroll_epoch=2), NOW,
                             optional), Enroll)  # fmt: skip


def test_enrollment_in_the_current_enroll_epoch_counts() -> None:
    state = hot(replace(ENROLLED, enroll_epoch=2), enroll_epoch=2)
    assert decide(claims(), state, NOW, EFF) == Allow("verified")
    assert isinstance(decide(claims(verified_at=0), state, NOW, EFF), Challenge)


def test_user_without_method_is_not_enrolled_even_with_a_secret() -> None:
    user = UserRecord(method=None, totp_secret="ciphertext")
    assert isinstance(decide(claims(), hot(user), NOW, EFF), Enroll)


# --- effective ---------------------------------------------------------------------------


def test_effective_uses_defaults_when_settings_unset() -> None:
    defaults = PolicyDefaults(mode="optional", session_lifetime=3600.0, idle_timeout=600.0)
    eff = effective(RuntimeSettings(), defaults)
    assert eff == Effective(mode="optional", session_lifetime=3600.0, idle_timeout=600.0)


def test_effective_runtime_settings_override_defaults() -> None:
    defaults = PolicyDefaults(mode="required", session_lifetime=90 * DAY, idle_timeout=None)
    settings = RuntimeSettings(mode="off", session_lifetime=3600.0, idle_timeout=300.0)
    assert effective(settings, defaults) == Effective("off", 3600.0, 300.0)


def test_effective_idle_timeout_zero_switches_idle_off() -> None:
    defaults = PolicyDefaults(idle_timeout=600.0)
    assert effective(RuntimeSettings(idle_timeout=0), defaults).idle_timeout is None
    assert effective(RuntimeSettings(idle_timeout=None), defaults).idle_timeout == 600.0
    assert effective(RuntimeSettings(), PolicyDefaults(idle_timeout=0)).idle_timeout is None


def test_effective_defaults_are_required_and_90_days() -> None:
    eff = effective(RuntimeSettings(), PolicyDefaults())
    assert eff.mode == "required"
    assert eff.session_lifetime == 90 * DAY
    assert eff.idle_timeout is None


def test_effective_settings_loaded_from_a_doc() -> None:
    settings = RuntimeSettings.from_doc({"mode": "optional", "idle_timeout": 60, "junk": 1})
    eff = effective(settings, PolicyDefaults())
    assert eff.mode == "optional"
    assert eff.idle_timeout == 60


# --- needs_activity_refresh --------------------------------------------------------------


def test_no_refresh_without_idle_timeout() -> None:
    c = claims(active_at=NOW - 10_000)
    assert needs_activity_refresh(c, NOW, EFF) is False


@pytest.mark.checklist("SES-08")
def test_refresh_at_most_once_a_minute() -> None:
    assert IDLE_REFRESH_SECONDS == 60
    assert needs_activity_refresh(claims(active_at=NOW), NOW, EFF_IDLE) is False
    assert needs_activity_refresh(claims(active_at=NOW - 59), NOW, EFF_IDLE) is False
    assert needs_activity_refresh(claims(active_at=NOW - 60), NOW, EFF_IDLE) is True
    assert needs_activity_refresh(claims(active_at=NOW - 600), NOW, EFF_IDLE) is True
