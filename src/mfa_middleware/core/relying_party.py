"""The WebAuthn relying party and what it asks of authenticators, checked once at startup.

Here, apart from the ceremonies in `core.webauthn`, so that reading the configuration loads
none of them: `import mfa_middleware` stays cheap.

The relying party id is a domain name (never an IP address, which browsers refuse); every
origin is https (or `http://localhost` in development) on that domain or a subdomain of it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mfa_middleware.errors import ConfigError

CHALLENGE_TTL = 300.0  # seconds a challenge may be answered in
USER_VERIFICATION = ("preferred", "required", "discouraged")
ATTESTATION = ("none", "indirect", "direct")
RESIDENT_KEY = ("preferred", "required", "discouraged")

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


@dataclass(frozen=True, slots=True)
class WebAuthnSettings:
    """The relying party and what it asks of authenticators, fixed at startup.

    `origins`: the exact origins (`scheme://host[:port]`) pages are served from;
    `user_verification`: "preferred" (asked for, not required), "required" or "discouraged";
    `attestation`: "none" (nothing to check against, so nothing is asked), "indirect" or
    "direct"; `resident_key`: whether a discoverable credential (a passkey) is created;
    `timeout`: seconds the browser is told to wait for the user (a hint)."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    user_verification: str = "preferred"
    attestation: str = "none"
    resident_key: str = "preferred"
    timeout: float = CHALLENGE_TTL

    @property
    def uv_required(self) -> bool:
        return self.user_verification == "required"


def relying_party(
    public_url: str | None, rp_id: str | None = None, origins: Sequence[str] | None = None
) -> tuple[str, tuple[str, ...]]:
    """The relying party id and the allowed origins: as given, else derived from `public_url`
    (its host, its origin). ConfigError, naming the option at fault, when the id is no domain
    name (an IP address never is: browsers refuse it), an origin is not https (but
    `http://localhost[:port]`), or an origin's host is neither the id nor a subdomain of it."""
    derived: str | None = None
    host: str | None = None
    if public_url is not None:
        scheme, host, port = _split_origin("public_url", public_url)
        derived = _origin(scheme, host, port)
    if rp_id is not None:
        rp = _check_rp_id("webauthn_rp_id", rp_id)
    elif host is not None:
        rp = _check_rp_id("public_url", host)
    else:
        raise ConfigError(
            "webauthn_rp_id",
            "WebAuthn needs a relying party id",
            "a domain name, e.g. 'example.com', or set public_url",
        )
    if origins is None and derived is not None:
        return rp, (_check_origin("public_url", derived, rp),)
    if origins is None:
        return rp, (_check_origin("webauthn_rp_id", f"https://{rp}", rp),)
    if isinstance(origins, str | bytes) or not origins:
        raise ConfigError(
            "webauthn_origins",
            "must be a non-empty list of origins",
            "e.g. ['https://example.com']",
        )
    return rp, tuple(dict.fromkeys(_check_origin("webauthn_origins", o, rp) for o in origins))


def settings_for(
    *,
    public_url: str | None,
    rp_id: str | None,
    origins: Sequence[str] | None,
    rp_name: str,
    user_verification: str = "preferred",
    attestation: str = "none",
    resident_key: str = "preferred",
    timeout: float = CHALLENGE_TTL,
) -> WebAuthnSettings:
    """Checked settings (see `relying_party`); ConfigError names the `MFAConfig` option."""
    _choice("webauthn_user_verification", user_verification, USER_VERIFICATION)
    _choice("webauthn_attestation", attestation, ATTESTATION)
    _choice("webauthn_resident_key", resident_key, RESIDENT_KEY)
    if not isinstance(rp_name, str) or not rp_name.strip():
        raise ConfigError("app_name", "WebAuthn shows it to users: it must not be empty")
    if not 30 <= timeout <= CHALLENGE_TTL:
        raise ConfigError(
            "timeout",
            f"{timeout!r} is out of range",
            f"30 to {CHALLENGE_TTL:.0f} seconds (a challenge lives {CHALLENGE_TTL:.0f} s)",
        )
    rp, allowed = relying_party(public_url, rp_id, origins)
    return WebAuthnSettings(
        rp, rp_name, allowed, user_verification, attestation, resident_key, timeout
    )


def _choice(field: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(field, f"{value!r} is not allowed", ", ".join(allowed))


def _split_origin(field: str, value: object) -> tuple[str, str, int | None]:
    hint = "scheme://host[:port], e.g. 'https://app.example.com' (no path, no trailing slash)"
    if not isinstance(value, str):
        raise ConfigError(field, f"{value!r} is not an origin", hint)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(field, f"{value!r} is not an origin", hint) from exc
    host = parts.hostname
    if (
        parts.scheme.lower() not in ("http", "https")
        or not host
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or value != value.strip()
    ):
        raise ConfigError(field, f"{value!r} is not an origin", hint)
    if not host.isascii():
        raise ConfigError(field, f"{value!r} has a non-ASCII host", "its punycode, xn--...")
    return parts.scheme.lower(), host.lower(), port


def _origin(scheme: str, host: str, port: int | None) -> str:
    """As browsers write it in client data: lower case, no default port."""
    shown = f"[{host}]" if ":" in host else host
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def _is_ip(host: str) -> bool:
    """An IP address, or what browsers' URL parser reads as one (a last label that is a
    number: `1.2.3`, `0x7f.1`)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(_NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]))
    return True


def _check_rp_id(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, f"{value!r} is not a domain name")
    rp = value.lower()
    if _is_ip(rp):
        raise ConfigError(
            field,
            f"{value!r} is an IP address: browsers refuse WebAuthn there",
            "a domain name (in development, http://localhost:PORT, never 127.0.0.1)",
        )
    labels = rp.split(".")
    if len(rp) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(
            field,
            f"{value!r} is not a domain name",
            "a host name without scheme, port or path, e.g. 'example.com'",
        )
    return rp


def _check_origin(field: str, value: object, rp_id: str) -> str:
    scheme, host, port = _split_origin(field, value)
    origin = _origin(scheme, host, port)
    if scheme != "https" and host != "localhost":
        raise ConfigError(
            field,
            f"{value!r} is not https: browsers refuse WebAuthn there",
            "https://..., or http://localhost[:port] in development",
        )
    if host != rp_id and not host.endswith("." + rp_id):
        raise ConfigError(
            field,
            f"{value!r} is not on {rp_id!r} or a subdomain of it",
            "origins on the relying party id's domain (see webauthn_rp_id)",
        )
    return origin
