"""What the app behind the middleware may know of a request's second factor: `MFAState`.

ASGI apps read it in `scope["mfa"]`, WSGI apps in `environ["mfa"]`, Flask views in `g.mfa`,
Django views in `request.mfa`. It is made from what the gate already read (the session cookie's
claims, the deadlines in force), once per verified session and then shared by its requests:
reading it costs nothing, and `age` is computed when asked.

The shape is public and stable: new fields may be added, none removed or renamed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AMR = {  # how a method is named in an `amr` claim (RFC 8176)
    "totp": "otp",
    "recovery": "otp",
    "sms": "sms",
    "email": "email",
    "webauthn": "hwk",  # a security key or a device-bound passkey
    "webauthn.synced": "swk",  # a passkey synced between devices (its key leaves the device)
    "device": "device",
    "approver": "mca",  # approved on another device: multiple-channel authentication
}

VERIFIED = "verified"
EXEMPT = "exempt"
MODE_OFF = "mode_off"
NOT_ENROLLED = "not_enrolled"
BYPASS = "bypass"  # a bypass rule: the session was not looked at
ANONYMOUS = "anonymous"  # no user signed in to the app
NOT_VERIFIED = "not_verified"  # on a page the gate lets through unverified (none by default)


@dataclass(frozen=True, slots=True)
class MFAState:
    """One request's second factor, as the gate saw it.

    `verified`: a factor was passed in this session (a code, a passkey, a recovery code, or a
    trusted device); `reason`: why the request is let through (`verified`, `exempt`,
    `mode_off`, `not_enrolled`, `bypass`, `anonymous`); `method`: how the last factor was
    passed ("totp", "sms", "email", "webauthn", "webauthn.synced", "recovery", "device",
    "approver"); `amr`: the same as RFC 8176 values, by `AMR` (`otp`, `sms`, `email`, `hwk`,
    `swk`, `device`, `mca`), or `exempt` for an exempt user (empty otherwise when unverified);
    `verified_at`: when (seconds since the epoch); `trusted_device`: a trusted device let this
    session in without a code; `login_at`, `expires_at`, `idle_expires_at`: when the login
    began and when it ends (its lifetime, its idle timeout); `impersonator`: the support agent
    signed in as the user (see `core.impersonation`): every other field then describes the
    agent's own second factor, never the user's."""

    verified: bool
    reason: str
    method: str = ""
    amr: tuple[str, ...] = ()
    verified_at: float | None = None
    trusted_device: bool = False
    login_at: float | None = None
    expires_at: float | None = None
    idle_expires_at: float | None = None
    impersonator: str | None = None  # a support agent signed in as the user: their user id
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    runtime: Any = field(default=None, repr=False, compare=False)  # internal: answers step-ups

    @property
    def age(self) -> float | None:
        """Seconds since the last factor (None: none in this session)."""
        if self.verified_at is None:
            return None
        return max(0.0, self.clock() - self.verified_at)

    @property
    def satisfied(self) -> bool:
        """No factor is owed here: verified, exempt, or 2FA off."""
        return self.verified or self.reason in (EXEMPT, MODE_OFF)

    def fresh(
        self, max_age: float | None = None, *, device_ok: bool = True, now: float | None = None
    ) -> bool:
        """Whether the last factor meets a requirement: younger than `max_age` seconds (at
        `now`, or the clock's time), and a real factor (not a trusted device) unless
        `device_ok`. An exempt user or 2FA off meets every requirement; an unverified session
        none."""
        if not self.verified:
            return self.reason in (EXEMPT, MODE_OFF)
        if not device_ok and self.trusted_device:
            return False
        if max_age is None:
            return True
        at = self.verified_at
        return at is not None and (self.clock() if now is None else now) - at <= max_age

    def to_dict(self) -> dict[str, Any]:
        """JSON types, for an API response or a log line."""
        return {
            "verified": self.verified,
            "reason": self.reason,
            "method": self.method,
            "amr": list(self.amr),
            "verified_at": self.verified_at,
            "age": self.age,
            "trusted_device": self.trusted_device,
            "login_at": self.login_at,
            "expires_at": self.expires_at,
            "idle_expires_at": self.idle_expires_at,
            "impersonator": self.impersonator,
        }


def amr_of(method: str) -> tuple[str, ...]:
    value = AMR.get(method)
    return (value,) if value else ()


ANONYMOUS_STATE = MFAState(False, ANONYMOUS)
BYPASS_STATE = MFAState(False, BYPASS)
