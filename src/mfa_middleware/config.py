"""`MFAConfig`: every option, as users write them, and the validated parts built from them.

Users pass flat keyword arguments (`session_lifetime="90d"`); the package reads the parts
(`config.sessions.lifetime`, seconds as a float), each a small frozen group in `options` that
validates its own values. Every part is built and checked once, at startup, and a bad value
raises a `ConfigError` naming the argument and what it accepts; nothing is re-checked per
request. Durations accept a `timedelta`, seconds, or strings such as "90d", "12h", "30m",
"45s".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from mfa_middleware import options
from mfa_middleware.core.context import ThrottleParams
from mfa_middleware.core.http import RequestFacts
from mfa_middleware.core.otp import TotpParams
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.relying_party import WebAuthnSettings
from mfa_middleware.core.rules import Rule
from mfa_middleware.errors import ConfigError
from mfa_middleware.options import Duration, format_duration
from mfa_middleware.senders.base import Sender
from mfa_middleware.stores.base import Store

PARTS = (
    "keys",
    "sessions",
    "totp",
    "attempts",
    "codes",
    "webauthn",
    "push",
    "devices",
    "recovery",
    "access",
    "pages",
    "audit",
)


def parse_duration(name: str, value: Duration) -> float:
    """Seconds from a duration in any accepted form (for the CLI and the admin pages)."""
    return options.seconds(name, value)


__all__ = ["Duration", "MFAConfig", "format_duration", "parse_duration"]


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
    sms_fallback: str | None = None  # "email": a login code by email when an SMS fails; "off"
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
    webauthn_enabled: bool = False  # passkeys, security keys: needs mfa_middleware[webauthn]
    webauthn_rp_id: str | None = None  # default: public_url's host
    webauthn_origins: Sequence[str] | None = None  # default: public_url's origin
    webauthn_user_verification: str = "preferred"  # or "required", "discouraged"
    webauthn_attestation: str = "none"  # or "indirect", "direct"
    webauthn_resident_key: str = "preferred"  # discoverable credentials (passkeys)
    push_vapid_private_key: str | None = None  # approving sign-ins by Web Push: needs [push]
    push_contact: str | None = None  # "mailto:ops@example.com": for the push services
    push_services: Sequence[str] | None = None  # allowed endpoint prefixes; None: the big four
    push_limit: int = 3  # approval requests per user per 10 minutes
    is_admin: Callable[[Principal], bool] | None = None  # helpdesk: one user at a time
    is_superadmin: Callable[[Principal], bool] | None = None  # mode, lifetime, everyone; None: all
    is_impersonating: Callable[[Any], object] | None = None  # request -> the agent's id, or None
    recovery_code_count: int = 10  # 0: no recovery codes
    brand_color: str | None = None  # e.g. "#0f766e": buttons, links and focus rings
    logo_url: str | None = None  # a same-origin path, e.g. "/static/logo.svg" (strict CSP)
    locale: Callable[[RequestFacts, Principal], str | None] | None = None  # a user's language
    default_locale: str = "en"  # when neither the user, the app nor the browser picks one
    locales: Sequence[str] | None = None  # the languages offered; None: every one with a catalog
    locale_dirs: str | Path | Sequence[str | Path] = ()  # your catalogs, read before ours
    template_dir: str | Path | Sequence[str | Path] | None = None  # folders searched in order
    max_form_bytes: int = 16_384
    relogin_after_enrollment: bool = False  # a first enrollment ends the app's login
    hsts_max_age: int = 31_536_000  # Strict-Transport-Security on our HTTPS answers; 0: none
    clock: Callable[[], float] = time.time
    on_event: EventHook | None = None
    events_kept: int = 50  # recent events kept per user (admin pages, mfa-admin events); 0: none
    metrics: Any = None  # an observer of every event, e.g. metrics.PrometheusMetrics()

    def __post_init__(self) -> None:
        """Validate every part now: a bad value fails at startup, never at a request."""
        for part in PARTS:
            getattr(self, part)
        if self.store is not None and not isinstance(self.store, Store):
            raise ConfigError("store", "is not a Store", "MemoryStore, SQLiteStore or RedisStore")

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return options.secret_keys(self.secret_keys)

    @cached_property
    def sessions(self) -> options.Sessions:
        return options.Sessions.parse(
            mode=self.mode,
            session_lifetime=self.session_lifetime,
            idle_timeout=self.idle_timeout,
            reauth_window=self.reauth_window,
            cookie_name=self.cookie_name,
            cookie_secure=self.cookie_secure,
            cookie_samesite=self.cookie_samesite,
            hsts_max_age=self.hsts_max_age,
            on_store_error=self.on_store_error,
            background_request=self.background_request,
        )

    @cached_property
    def totp(self) -> TotpParams:
        return options.totp(
            digits=self.totp_digits,
            period=self.totp_period,
            window=self.totp_window,
            algorithm=self.totp_algorithm,
            issuer=self.totp_issuer,
            app_name=self.app_name,
        )

    @cached_property
    def attempts(self) -> ThrottleParams:
        return options.attempts(
            max_attempts=self.max_attempts,
            lockout=self.lockout,
            max_lockout=self.max_lockout,
            failure_ceiling=self.failure_ceiling,
        )

    @cached_property
    def codes(self) -> options.Codes:
        return options.Codes.parse(
            code_digits=self.code_digits,
            code_ttl=self.code_ttl,
            resend_cooldown=self.resend_cooldown,
            max_sends_per_hour=self.max_sends_per_hour,
            max_sends_per_destination=self.max_sends_per_destination,
            max_sends_per_ip=self.max_sends_per_ip,
            sms_sender=self.sms_sender,
            email_sender=self.email_sender,
            email_codes=self.email_codes,
            assurance=self.assurance,
            sms_regions=self.sms_regions,
            default_region=self.default_region,
            public_url=self.public_url,
            sms_fallback=self.sms_fallback,
        )

    @cached_property
    def webauthn(self) -> WebAuthnSettings | None:
        """Passkeys and security keys (the relying party, what is asked of authenticators),
        or None when they are off."""
        return options.webauthn(
            enabled=self.webauthn_enabled,
            public_url=self.public_url,
            rp_id=self.webauthn_rp_id,
            origins=self.webauthn_origins,
            user_verification=self.webauthn_user_verification,
            attestation=self.webauthn_attestation,
            resident_key=self.webauthn_resident_key,
            app_name=self.app_name,
        )

    @cached_property
    def push(self) -> options.Push | None:
        """Approving sign-ins from an approver browser (Web Push), or None when off."""
        return options.push(
            private_key=self.push_vapid_private_key,
            contact=self.push_contact,
            services=self.push_services,
            limit=self.push_limit,
        )

    @cached_property
    def devices(self) -> options.Devices:
        return options.Devices.parse(
            trust_duration=self.trust_duration,
            max_devices=self.max_devices,
            auto_trust=self.auto_trust,
        )

    @cached_property
    def recovery(self) -> options.Recovery:
        return options.Recovery.parse(
            recovery_code_count=self.recovery_code_count,
            public_url=self.public_url,
            reset_link_ttl=self.reset_link_ttl,
            enroll_code_ttl=self.enroll_code_ttl,
        )

    @cached_property
    def access(self) -> options.Access:
        return options.Access.parse(
            rules=self.rules,
            default_action=self.default_action,
            trusted_proxies=self.trusted_proxies,
            forwarded_header=self.forwarded_header,
            is_admin=self.is_admin,
            is_superadmin=self.is_superadmin,
            is_impersonating=self.is_impersonating,
        )

    @cached_property
    def pages(self) -> options.Pages:
        return options.Pages.parse(
            app_name=self.app_name,
            login_url=self.login_url,
            prefix=self.prefix,
            brand_color=self.brand_color,
            logo_url=self.logo_url,
            template_dir=self.template_dir,
            max_form_bytes=self.max_form_bytes,
            locale=self.locale,
            default_locale=self.default_locale,
            locales=self.locales,
            locale_dirs=self.locale_dirs,
            relogin_after_enrollment=self.relogin_after_enrollment,
        )

    @cached_property
    def audit(self) -> options.Audit:
        return options.Audit.parse(events_kept=self.events_kept, metrics=self.metrics)

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
