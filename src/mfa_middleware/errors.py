"""Exceptions that carry data, so callers can act without parsing messages."""

from __future__ import annotations


class MFAError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(MFAError, ValueError):
    """A configuration value is missing or out of range; raised at startup, never per request."""

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.allowed = allowed
        detail = f"MFAConfig.{field}: {problem}"
        if allowed:
            detail += f" (allowed: {allowed})"
        super().__init__(detail)


class StoreError(MFAError):
    """The state store failed or is unreachable; the gate fails closed (503) on it."""

    status_hint = 503


class StoreConflict(StoreError):
    """An atomic update kept losing races and gave up; treated like an outage."""


class DeliveryFailed(MFAError):
    """A code could not be delivered; `reason` is safe to log, it never holds the code."""

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        self.reason = reason
        super().__init__(f"{channel} delivery failed: {reason}")


class SetupError(MFAError):
    """The middleware is installed in a way that cannot work (listed before the app's
    authentication, a user object without a stable id). Every request it concerns is refused
    with a 500 page and this message in the log: never passed through unchecked."""
