"""`MFAConfig`: every option in one frozen, validated dataclass.

Validation happens once, at startup, and names the field and what it accepts; nothing is
re-checked per request. Durations accept a `timedelta`, seconds, or strings such as "90d",
"12h", "30m", "45s" and are stored as seconds.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from mfa_middleware.core.addresses import FORWARDED_HEADERS
from mfa_middleware.core.otp import ALGORITHMS
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import MODES
from mfa_middleware.core.rules import Rule, RuleSet
from mfa_middleware.errors import ConfigError
from mfa_middleware.events import logger
from mfa_middleware.senders.base import Sender
from mfa_middleware.stores.base import Store
from mfa_middleware.web.http import RequestFacts

Duration = timedelta | float | int | str
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = frozenset({"changeme", "secret", "password", "default", "insecure", "example"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(name: str, value: Duration | None, *, allow_none: bool = False) -> float | None:
    """Seconds from a duration in any accepted form; ConfigError names `name` otherwise."""
    if value is None:
        if allow_none:
            return None
        raise ConfigError(name, "is required", "a timedelta, seconds, or a string like '90d'")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(name, f"{value!r} is not a duration")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ConfigError(name, f"{value!r} is not a duration", "e.g. '90d', '12h', '30m', '45s'")
    if not math.isfinite(seconds):
        raise ConfigError(name, "must be a finite duration")
    if seconds <= 0:
        raise ConfigError(name, "must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as people write it and `parse_duration` reads it back: "90d", "12h",
    "30m", "45s" (the largest unit that divides it exactly)."""
    whole = round(seconds)
    for unit in ("d", "h", "m"):
        if whole and whole % _UNITS[unit] == 0:
            return f"{whole // _UNITS[unit]}{unit}"
    return f"{whole}s"


EventHook = Callable[[Mapping[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class MFAConfig:
    """Everything the middleware needs. Only `secret_keys` is required.

    `secret_keys` are ordered oldest first, newest last (as in itsdangerous): the last one
    signs and encrypts, every one verifies. Add a new key at the end to rotate; drop the oldest
    once tokens made with it have expired (90 days for sessions by default) and what it still
    protects is gone (see the README: unused TOTP secrets, recovery codes).
    """

    secret_keys: Sequence[str]
    store: Store | None = None  # None: SQLiteStore("mfa.sqlite3") in the working directory
    login_url: str = "/login"
    prefix: str = "/_mfa"
    mode: str = "required"
    session_lifetime: Duration = "90d"
    idle_timeout: Duration | None = None
    cookie_secure: bool = True
    cookie_samesite: str = "lax"
    cookie_name: str = "mfa_session"
    app_name: str = "mfa_middleware"
    totp_issuer: str | None = None  # defaults to app_name
    totp_digits: int = 6
    totp_period: int = 30
    totp_window: int = 1
    totp_algorithm: str = "SHA1"
    max_attempts: int = 5
    lockout: Duration = "1m"
    max_lockout: Duration = "1h"
    failure_ceiling: int = 20
    rules: Sequence[Rule | Mapping[str, Any]] = ()
    default_action: str | None = None
    trusted_proxies: Sequence[str] = ()
    forwarded_header: str = "X-Forwarded-For"  # the one the proxies write: or "Forwarded"
    background_request: Callable[[RequestFacts], bool] | None = None
    reauth_window: Duration = "15m"
    trust_duration: Duration | None = "30d"  # None or 0: devices are never trusted
    max_devices: int = 20
    auto_trust: Callable[[RequestFacts, Principal], bool] | None = None
    on_store_error: str = "closed"
    sms_sender: Sender | None = None
    email_sender: Sender | None = None
    email_codes: bool = False  # offer codes by email as a second factor (not NIST-conformant)
    assurance: str | None = None  # "AAL2": refuse what NIST SP 800-63B does not allow there
    code_digits: int = 6
    code_ttl: Duration = "10m"
    resend_cooldown: Duration = "30s"
    max_sends_per_hour: int = 10
    max_sends_per_destination: int = 10  # per phone number or address, per hour
    max_sends_per_ip: int = 50  # per client IP address, per hour
    sms_regions: Sequence[str] | None = None  # allowed phone regions, e.g. ("US", "CA")
    default_region: str = "US"
    public_url: str | None = None  # e.g. "https://app.example.com", for links in emails
    reset_link_ttl: Duration = "1h"
    enroll_code_ttl: Duration | None = "72h"  # after an admin's reset; None: no code needed
    is_admin: Callable[[Principal], bool] | None = None
    recovery_code_count: int = 10  # 0: no recovery codes
    brand_color: str | None = None  # e.g. "#0f766e": buttons, links and focus rings
    logo_url: str | None = None  # a same-origin path, e.g. "/static/logo.svg" (strict CSP)
    translations: Any = None  # a gettext.GNUTranslations for the pages' strings
    template_dir: str | Path | Sequence[str | Path] | None = None  # folders searched in order
    max_form_bytes: int = 16_384
    hsts_max_age: int = 31_536_000  # Strict-Transport-Security on our HTTPS answers; 0: none
    clock: Callable[[], float] = time.time
    on_event: EventHook | None = None
    rule_set: RuleSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_secrets()
        _choice("mode", self.mode, MODES)
        _choice("on_store_error", self.on_store_error, ("closed", "verified_sessions"))
        _choice("cookie_samesite", self.cookie_samesite, ("lax", "strict"))
        _choice("totp_algorithm", self.totp_algorithm, tuple(ALGORITHMS))
        _int_range("totp_digits", self.totp_digits, 6, 8)
        _int_range("totp_period", self.totp_period, 15, 120)
        _int_range("totp_window", self.totp_window, 0, 2)
        _int_range("max_attempts", self.max_attempts, 1, 20)
        _int_range("failure_ceiling", self.failure_ceiling, self.max_attempts, 100)
        _int_range("max_form_bytes", self.max_form_bytes, 1024, 1_048_576)
        _int_range("hsts_max_age", self.hsts_max_age, 0, 63_072_000)
        _int_range("max_devices", self.max_devices, 1, 1000)
        _int_range("code_digits", self.code_digits, 6, 8)
        _int_range("recovery_code_count", self.recovery_code_count, 0, 50)
        if self.brand_color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", self.brand_color):
            raise ConfigError("brand_color", f"{self.brand_color!r} is not a colour", "'#RRGGBB'")
        if self.logo_url is not None and not re.fullmatch(r"/[^/\\][^\s\"'<>]*", self.logo_url):
            raise ConfigError(
                "logo_url",
                "must be a path on this site (the pages' CSP allows no other origin)",
                "e.g. '/static/logo.svg'",
            )
        object.__setattr__(
            self, "reset_link_ttl", parse_duration("reset_link_ttl", self.reset_link_ttl)
        )
        enroll_code_ttl = parse_duration("enroll_code_ttl", self.enroll_code_ttl, allow_none=True)
        object.__setattr__(self, "enroll_code_ttl", enroll_code_ttl)
        if self.public_url is not None and not re.fullmatch(r"https?://[^/\s]+", self.public_url):
            raise ConfigError(
                "public_url",
                f"{self.public_url!r} is not an origin",
                "e.g. 'https://app.example.com' (no path, no trailing slash)",
            )
        self._check_email_codes()
        _int_range("max_sends_per_hour", self.max_sends_per_hour, 1, 1000)
        _int_range("max_sends_per_destination", self.max_sends_per_destination, 1, 1000)
        _int_range("max_sends_per_ip", self.max_sends_per_ip, 1, 100_000)
        code_ttl = parse_duration("code_ttl", self.code_ttl)
        if code_ttl is not None and code_ttl > 600:
            raise ConfigError("code_ttl", "must be at most 10 minutes (NIST SP 800-63B 5.1.3.2)")
        object.__setattr__(self, "code_ttl", code_ttl)
        object.__setattr__(
            self, "resend_cooldown", parse_duration("resend_cooldown", self.resend_cooldown)
        )
        if self.sms_sender is not None:
            try:
                import phonenumbers  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "sms_sender",
                    "SMS needs the phonenumbers package",
                    "pip install 'mfa_middleware[twilio]'",
                ) from exc
        trust = self.trust_duration
        object.__setattr__(
            self,
            "trust_duration",
            None if trust in (None, 0, "0") else (parse_duration("trust_duration", trust)),
        )
        if not isinstance(self.forwarded_header, str):
            raise ConfigError("forwarded_header", "must be a header name")
        _choice("forwarded_header", self.forwarded_header.lower(), FORWARDED_HEADERS)
        if isinstance(self.trusted_proxies, str):
            raise ConfigError("trusted_proxies", "must be a list of networks, not one string")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    "trusted_proxies", f"{proxy!r} is not a network", "e.g. '10.0.0.0/8'"
                ) from exc
        try:
            rule_set = RuleSet.build(
                self.rules, self.default_action, self.trusted_proxies, self.forwarded_header
            )
            object.__setattr__(self, "rule_set", rule_set)
        except ValueError as exc:
            raise ConfigError("rules", str(exc)) from exc
        for name in ("session_lifetime", "lockout", "max_lockout", "reauth_window"):
            object.__setattr__(self, name, parse_duration(name, getattr(self, name)))
        idle = parse_duration("idle_timeout", self.idle_timeout, allow_none=True)
        object.__setattr__(self, "idle_timeout", idle)
        if idle is not None and idle >= self.lifetime_seconds:
            raise ConfigError("idle_timeout", "must be shorter than session_lifetime")
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or len(self.prefix) < 2:
            raise ConfigError("prefix", f"{self.prefix!r} is not a path", "e.g. '/_mfa'")
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", self.cookie_name):
            raise ConfigError("cookie_name", "only letters, digits, '-' and '_'")
        if self.store is not None and not isinstance(self.store, Store):
            raise ConfigError("store", "is not a Store", "MemoryStore, SQLiteStore or RedisStore")

    def _check_secrets(self) -> None:
        keys = self.secret_keys
        if isinstance(keys, str | bytes) or not keys:
            raise ConfigError(
                "secret_keys", "must be a non-empty list of keys", "e.g. [os.environ['MFA_SECRET']]"
            )
        for key in keys:
            if not isinstance(key, str) or len(key) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    "secret_keys",
                    f"every key must be a string of at least {MIN_SECRET_LENGTH} characters",
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
                )
            if key.strip().lower() in WEAK_SECRETS or len(set(key)) < 8:
                raise ConfigError("secret_keys", "a key is a well-known or low-entropy value")

    def _check_email_codes(self) -> None:
        """Email is not an out-of-band authenticator under NIST SP 800-63B (rev 3 §5.1.3.1,
        rev 4 §3.1.3.1): codes by email are off unless asked for, never allowed at AAL2, and
        a warning says so when they are on. An email sender alone still sends notices."""
        if self.assurance not in (None, "AAL2"):
            raise ConfigError("assurance", f"{self.assurance!r} is not known", "None or 'AAL2'")
        if not self.email_codes:
            return
        if self.assurance == "AAL2":
            raise ConfigError(
                "email_codes",
                "email is not an authenticator at AAL2 (NIST SP 800-63B)",
                "keep email_codes=False, or drop assurance='AAL2'",
            )
        if self.email_sender is None:
            raise ConfigError("email_codes", "needs an email_sender to send the codes")
        logger.warning(
            "email_codes is on: codes by email do not conform to NIST SP 800-63B and do not"
            " count toward AAL2"
        )

    @property
    def lifetime_seconds(self) -> float:
        return float(self.session_lifetime)  # type: ignore[arg-type]

    @property
    def reset_link_seconds(self) -> float:
        return float(self.reset_link_ttl)  # type: ignore[arg-type]

    @property
    def enroll_code_seconds(self) -> float | None:
        """How long an admin reset's enrollment code works; None when none is issued."""
        return None if not self.enroll_code_ttl else float(self.enroll_code_ttl)  # type: ignore[arg-type]

    @property
    def trust_seconds(self) -> float:
        """How long a trusted device skips the code; 0 when trusting is off."""
        return float(self.trust_duration or 0)  # type: ignore[arg-type]

    @property
    def device_cookie(self) -> str:
        return (
            f"__Host-{self.cookie_name}_device"
            if self.cookie_secure
            else (f"{self.cookie_name}_device")
        )

    @property
    def reauth_seconds(self) -> float:
        return float(self.reauth_window)  # type: ignore[arg-type]

    @property
    def idle_seconds(self) -> float | None:
        return None if self.idle_timeout is None else float(self.idle_timeout)  # type: ignore[arg-type]

    @property
    def session_cookie(self) -> str:
        """`__Host-` prefixed when Secure: the browser then refuses it from any subdomain."""
        return f"__Host-{self.cookie_name}" if self.cookie_secure else self.cookie_name

    @classmethod
    def aal2(cls, **options: Any) -> MFAConfig:
        """A preset that meets NIST SP 800-63B AAL2 reauthentication (12 h absolute, 30 min
        idle) and refuses what AAL2 does not allow (codes by email)."""
        options.setdefault("session_lifetime", "12h")
        options.setdefault("idle_timeout", "30m")
        options.setdefault("assurance", "AAL2")
        return cls(**options)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.init]


def _choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not allowed", ", ".join(allowed))


def _int_range(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(name, f"{value!r} is out of range", f"an integer from {low} to {high}")
