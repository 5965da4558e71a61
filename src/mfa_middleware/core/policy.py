"""The gate's decision: a pure function over facts already in hand.

Given the caller, the MFA session cookie's claims, the user's record and the runtime settings,
`decide` says what happens to the request. It performs no I/O and is tested without any.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfa_middleware.core.records import HotState, RuntimeSettings
from mfa_middleware.core.tokens import SessionClaims

IDLE_REFRESH_SECONDS = 60
"""Activity moves the idle deadline at most once a minute, so most requests set no cookie."""


def idle_refresh_after(idle_timeout: float) -> float:
    """Seconds of activity after which the idle deadline is moved: a minute, or a quarter of
    a shorter idle timeout (so an active session never runs into it)."""
    return min(IDLE_REFRESH_SECONDS, idle_timeout / 4)


@dataclass(frozen=True, slots=True)
class PolicyDefaults:
    """Configured values that runtime settings in the store may override."""

    mode: str = "required"
    session_lifetime: float = 90 * 86400.0
    idle_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Effective:
    mode: str
    session_lifetime: float
    idle_timeout: float | None


def effective(settings: RuntimeSettings, defaults: PolicyDefaults) -> Effective:
    """Runtime settings where set, configured defaults otherwise (an idle timeout of 0 is off)."""
    idle = settings.idle_timeout if settings.idle_timeout is not None else defaults.idle_timeout
    return Effective(
        mode=settings.mode or defaults.mode,
        session_lifetime=settings.session_lifetime or defaults.session_lifetime,
        idle_timeout=idle or None,
    )


@dataclass(frozen=True, slots=True)
class Allow:
    reason: str


@dataclass(frozen=True, slots=True)
class Challenge:
    reason: str = "mfa_required"


@dataclass(frozen=True, slots=True)
class Enroll:
    reason: str = "mfa_enrollment_required"


@dataclass(frozen=True, slots=True)
class Expired:
    reason: str


Decision = Allow | Challenge | Enroll | Expired

ALLOW_VERIFIED = Allow("verified")
ALLOW_OFF = Allow("mode_off")
ALLOW_EXEMPT = Allow("exempt")
ALLOW_NOT_ENROLLED = Allow("not_enrolled")
CHALLENGE = Challenge()
ENROLL = Enroll()


def expiry_reason(claims: SessionClaims, state: HotState, now: float, eff: Effective) -> str | None:
    """Why this login session is over, or None while it is alive."""
    if now - claims.login_at >= eff.session_lifetime:
        return "session_lifetime"
    if eff.idle_timeout is not None and now - claims.active_at >= eff.idle_timeout:
        return "idle_timeout"
    if claims.epoch < state.user.epoch:
        return "user_logged_out"
    if claims.global_epoch < state.settings.global_epoch:
        return "all_sessions_cleared"
    if state.session_ended:
        return "signed_out"
    return None


def decide(
    claims: SessionClaims,
    state: HotState,
    now: float,
    eff: Effective,
    *,
    require: bool = False,
    api: bool = False,
    lost: bool = False,
) -> Decision:
    """What the gate does with a request from a user whose MFA session is `claims`.

    `require` (a `two_factor` rule matched) makes enrollment required here even in optional
    mode; `off` stays off and an exempt user stays exempt. `api`: the app authenticated the
    request with a token, not a browser session (what an exemption covers by default).
    `lost`: this login of the app had an MFA session and the browser no longer presents it
    (dropped, replaced or tampered with). Where a factor is asked anyway the cookie counts as
    absent; where none would be (mode off, an exemption, optional mode), the login is over:
    dropping our cookie must not escape a force-logout or the session lifetime."""
    decision = _decide(claims, state, now, eff, require=require, api=api)
    if lost and isinstance(decision, Allow):
        return Expired("session_lost")
    return decision


def _decide(
    claims: SessionClaims,
    state: HotState,
    now: float,
    eff: Effective,
    *,
    require: bool,
    api: bool,
) -> Decision:
    reason = expiry_reason(claims, state, now, eff)
    if reason is not None:
        return Expired(reason)
    if eff.mode == "off":
        return ALLOW_OFF
    user = state.user
    if user.exempt_for(api):
        return ALLOW_EXEMPT
    if user.enrolled_in(state.settings.enroll_epoch):
        return ALLOW_VERIFIED if claims.verified else CHALLENGE
    if eff.mode == "required" or user.required or require:
        return ENROLL
    return ALLOW_NOT_ENROLLED


def needs_activity_refresh(claims: SessionClaims, now: float, eff: Effective) -> bool:
    """Whether to re-issue the cookie to move the idle deadline (background polling requests
    are not asked: they must not keep an idle session alive)."""
    idle = eff.idle_timeout
    return idle is not None and now - claims.active_at >= idle_refresh_after(idle)
