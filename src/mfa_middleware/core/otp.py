"""TOTP (RFC 6238) on top of pyotp, with the parts pyotp leaves to the caller.

pyotp's `verify` accepts the same code any number of times and NFKC-normalises its input
(full-width digits verify). Here only ASCII digits of the configured length are evaluated, and
`match_step` returns the time step a code belongs to so the caller can accept each step once.

pyotp is imported when a code is first made or checked, not with the package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mfa_middleware.core.keys import equal

if TYPE_CHECKING:
    import pyotp

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


@dataclass(frozen=True, slots=True)
class TotpParams:
    digits: int = 6
    period: int = 30
    window: int = 1
    algorithm: str = "SHA1"
    issuer: str = "mfa_middleware"


def new_secret() -> str:
    """A 160-bit base32 secret from the OS CSPRNG (RFC 4226 recommends at least 160 bits)."""
    import pyotp

    return pyotp.random_base32(length=32)


def is_well_formed(code: str, digits: int) -> bool:
    """Exactly `digits` ASCII digits: no spaces, signs, full-width or other Unicode digits."""
    return len(code) == digits and code.isascii() and code.isdigit()


def _totp(secret: str, params: TotpParams) -> pyotp.TOTP:
    import pyotp

    return pyotp.TOTP(
        secret, digits=params.digits, digest=ALGORITHMS[params.algorithm], interval=params.period
    )


def code_at(secret: str, for_time: float, params: TotpParams) -> str:
    """The code for the time step containing `for_time` (server time only)."""
    return str(_totp(secret, params).at(int(for_time)))


def match_step(secret: str, code: str, now: float, params: TotpParams) -> int | None:
    """The time step within the drift window that `code` belongs to, or None.

    Every candidate step is compared in constant time and all are checked, so the time taken
    does not say which step matched.
    """
    if not is_well_formed(code, params.digits):
        return None
    totp = _totp(secret, params)
    current = int(now) // params.period
    matched: int | None = None
    for step in range(current - params.window, current + params.window + 1):
        if step >= 0 and equal(str(totp.generate_otp(step)), code):
            matched = step
    return matched


def provisioning_uri(secret: str, account: str, params: TotpParams) -> str:
    """The otpauth:// URI authenticator apps read from the QR code."""
    return str(_totp(secret, params).provisioning_uri(name=account, issuer_name=params.issuer))


def group_secret(secret: str) -> str:
    """The secret in blocks of four for typing by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
