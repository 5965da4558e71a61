"""The parts of the configuration: small frozen groups of typed, validated values.

`MFAConfig` takes flat keyword arguments (what users write) and builds these parts from them
once, at startup; the rest of the package reads the parts (`config.sessions.lifetime`, a
float of seconds), never the raw arguments. Each part validates its own values and names the
argument at fault in its `ConfigError`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mfa_middleware import i18n
from mfa_middleware.core.addresses import FORWARDED_HEADERS
from mfa_middleware.core.context import MODES, OobParams, PushSettings, ThrottleParams
from mfa_middleware.core.http import RequestFacts
from mfa_middleware.core.otp import ALGORITHMS, TotpParams
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.relying_party import WebAuthnSettings, settings_for
from mfa_middleware.core.rules import Rule, RuleSet
from mfa_middleware.errors import ConfigError
from mfa_middleware.events import logger
from mfa_middleware.senders.base import Sender

Duration = timedelta | float | int | str
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_WORDS = {  # "90 days", "12 hours", "1 week": durations as people write them
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
    **dict.fromkeys(("wk", "wks", "week", "weeks"), "w"),
}
_SPOKEN = (("d", "day", "days"), ("h", "hour", "hours"), ("m", "minute", "minutes"))
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = frozenset({"changeme", "secret", "password", "default", "insecure", "example"})


def seconds(name: str, value: Duration) -> float:
    """Seconds from a duration in any accepted form; ConfigError names `name` otherwise."""
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(name, f"{value!r} is not a duration")
    elif isinstance(value, int | float):
        result = float(value)
    elif (
        isinstance(value, str)
        and (match := _DURATION.match(value))
        and ((unit := _unit(match.group(2))) is not None)
    ):
        result = float(match.group(1)) * _UNITS[unit]
    else:
        raise ConfigError(name, f"{value!r} is not a duration", "e.g. '90d', '12h', '30m', '45s'")
    if not math.isfinite(result):
        raise ConfigError(name, "must be a finite duration")
    if result <= 0:
        raise ConfigError(name, "must be longer than zero")
    return result


def _unit(written: str) -> str | None:
    """The unit letter of a unit as written ("d", "days", "Day"), or None."""
    lowered = written.lower()
    return lowered if lowered in _UNITS else _UNIT_WORDS.get(lowered)


def spoken_duration(value: float) -> str:
    """A duration in words, as people write it and `seconds` reads it back: "90 days",
    "1 hour", "30 minutes", "45 seconds" (the largest unit that divides it exactly)."""
    whole = round(value)
    for unit, one, many in _SPOKEN:
        if whole and whole % _UNITS[unit] == 0:
            count = whole // _UNITS[unit]
            return f"{count} {one if count == 1 else many}"
    return f"{whole} second" if whole == 1 else f"{whole} seconds"


def optional_seconds(name: str, value: Duration | None) -> float | None:
    return None if value is None else seconds(name, value)


def format_duration(value: float) -> str:
    """A duration as people write it and `seconds` reads it back: "90d", "12h", "30m", "45s"
    (the largest unit that divides it exactly)."""
    whole = round(value)
    for unit in ("d", "h", "m"):
        if whole and whole % _UNITS[unit] == 0:
            return f"{whole // _UNITS[unit]}{unit}"
    return f"{whole}s"


def choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not allowed", ", ".join(allowed))


def int_range(name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(name, f"{value!r} is out of range", f"an integer from {low} to {high}")
    return value


def secret_keys(keys: Sequence[str]) -> tuple[str, ...]:
    """The signing and encryption secrets, oldest first: long, and none a well-known value."""
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
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Sessions:
    """Login sessions: how long they last, the cookies that carry them, the mode."""

    mode: str
    lifetime: float
    idle_timeout: float | None
    reauth_window: float  # how recent a code must be for a sensitive change
    cookie_name: str  # as set: `__Host-` prefixed when Secure
    device_cookie_name: str
    cookie_secure: bool
    cookie_samesite: str
    hsts_max_age: int
    on_store_error: str
    background_request: Callable[[RequestFacts], bool] | None

    @classmethod
    def parse(
        cls,
        *,
        mode: str,
        session_lifetime: Duration,
        idle_timeout: Duration | None,
        reauth_window: Duration,
        cookie_name: str,
        cookie_secure: bool,
        cookie_samesite: str,
        hsts_max_age: int,
        on_store_error: str,
        background_request: Callable[[RequestFacts], bool] | None,
    ) -> Sessions:
        choice("mode", mode, MODES)
        choice("on_store_error", on_store_error, ("closed", "verified_sessions"))
        choice("cookie_samesite", cookie_samesite, ("lax", "strict"))
        int_range("hsts_max_age", hsts_max_age, 0, 63_072_000)
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", cookie_name):
            raise ConfigError("cookie_name", "only letters, digits, '-' and '_'")
        lifetime = seconds("session_lifetime", session_lifetime)
        idle = optional_seconds("idle_timeout", idle_timeout)
        if idle is not None and idle >= lifetime:
            raise ConfigError("idle_timeout", "must be shorter than session_lifetime")
        prefix = "__Host-" if cookie_secure else ""  # a __Host- cookie: no subdomain sets it
        return cls(
            mode=mode,
            lifetime=lifetime,
            idle_timeout=idle,
            reauth_window=seconds("reauth_window", reauth_window),
            cookie_name=f"{prefix}{cookie_name}",
            device_cookie_name=f"{prefix}{cookie_name}_device",
            cookie_secure=cookie_secure,
            cookie_samesite=cookie_samesite,
            hsts_max_age=hsts_max_age,
            on_store_error=on_store_error,
            background_request=background_request,
        )


def totp(
    *, digits: int, period: int, window: int, algorithm: str, issuer: str | None, app_name: str
) -> TotpParams:
    """The authenticator apps' codes."""
    choice("totp_algorithm", algorithm, tuple(ALGORITHMS))
    int_range("totp_digits", digits, 6, 8)
    int_range("totp_period", period, 15, 120)
    int_range("totp_window", window, 0, 2)
    return TotpParams(digits, period, window, algorithm, issuer or app_name)


def attempts(
    *, max_attempts: int, lockout: Duration, max_lockout: Duration, failure_ceiling: int
) -> ThrottleParams:
    """How many wrong codes, and for how long they lock."""
    int_range("max_attempts", max_attempts, 1, 20)
    int_range("failure_ceiling", failure_ceiling, max_attempts, 100)
    return ThrottleParams(
        limit=max_attempts,
        base_lockout=seconds("lockout", lockout),
        max_lockout=seconds("max_lockout", max_lockout),
        ceiling=failure_ceiling,
    )


@dataclass(frozen=True, slots=True)
class Codes:
    """Codes sent by SMS and email, and the senders that send them and the notices."""

    params: OobParams
    sms_sender: Sender | None
    email_sender: Sender | None
    email_codes: bool  # email offered as a factor (not NIST-conformant)
    assurance: str | None
    sms_regions: tuple[str, ...] | None
    default_region: str
    sms_fallback: bool = False  # a login code by email when a text message cannot be sent

    @classmethod
    def parse(
        cls,
        *,
        code_digits: int,
        code_ttl: Duration,
        resend_cooldown: Duration,
        max_sends_per_hour: int,
        max_sends_per_destination: int,
        max_sends_per_ip: int,
        sms_sender: Sender | None,
        email_sender: Sender | None,
        email_codes: bool,
        assurance: str | None,
        sms_regions: Sequence[str] | None,
        default_region: str,
        public_url: str | None,
        sms_fallback: str | None = None,
    ) -> Codes:
        int_range("code_digits", code_digits, 6, 8)
        _check_email_codes(email_codes, assurance, email_sender)
        fallback = _sms_fallback(sms_fallback, email_codes, assurance, email_sender)
        int_range("max_sends_per_hour", max_sends_per_hour, 1, 1000)
        int_range("max_sends_per_destination", max_sends_per_destination, 1, 1000)
        int_range("max_sends_per_ip", max_sends_per_ip, 1, 100_000)
        ttl = seconds("code_ttl", code_ttl)
        if ttl > 600:
            raise ConfigError("code_ttl", "must be at most 10 minutes (NIST SP 800-63B 5.1.3.2)")
        cooldown = seconds("resend_cooldown", resend_cooldown)
        if sms_sender is not None:
            try:
                import phonenumbers  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "sms_sender",
                    "SMS needs the phonenumbers package",
                    "pip install 'mfa_middleware[sms]'",
                ) from exc
        params = OobParams(
            digits=code_digits,
            ttl=ttl,
            cooldown=cooldown,
            hourly_cap=max_sends_per_hour,
            destination_cap=max_sends_per_destination,
            ip_cap=max_sends_per_ip,
            origin_host=(urlsplit(public_url).hostname or "") if public_url else "",
        )
        regions = tuple(sms_regions) if sms_regions else None
        return cls(
            params,
            sms_sender,
            email_sender,
            email_codes,
            assurance,
            regions,
            default_region,
            fallback,
        )


def _sms_fallback(
    value: str | None, email_codes: bool, assurance: str | None, sender: Sender | None
) -> bool:
    """Whether a login code goes by email when a text message cannot be sent: None follows
    `email_codes` (as before the option existed); "email" sends it to the app's address of
    record even with email codes off; "off" never. Email is not an out-of-band authenticator
    (NIST SP 800-63B): "email" is refused at AAL2 and logs a warning."""
    if value is not None:
        choice("sms_fallback", value, ("email", "off"))
    if value != "email":
        return value is None and email_codes
    if assurance == "AAL2":
        raise ConfigError(
            "sms_fallback",
            "a code by email is not an authenticator at AAL2 (NIST SP 800-63B)",
            "None or 'off', or drop assurance='AAL2'",
        )
    if sender is None:
        raise ConfigError("sms_fallback", "needs an email_sender to send the codes")
    if not email_codes:
        logger.warning(
            "sms_fallback='email': a login code goes by email when a text message cannot be"
            " sent; email does not conform to NIST SP 800-63B as an out-of-band authenticator"
        )
    return True


def _check_email_codes(email_codes: bool, assurance: str | None, sender: Sender | None) -> None:
    """Email is not an out-of-band authenticator under NIST SP 800-63B (rev 3 §5.1.3.1, rev 4
    §3.1.3.1): codes by email are off unless asked for, never allowed at AAL2, and a warning
    says so when they are on. An email sender alone still sends notices."""
    if assurance not in (None, "AAL2"):
        raise ConfigError("assurance", f"{assurance!r} is not known", "None or 'AAL2'")
    if not email_codes:
        return
    if assurance == "AAL2":
        raise ConfigError(
            "email_codes",
            "email is not an authenticator at AAL2 (NIST SP 800-63B)",
            "keep email_codes=False, or drop assurance='AAL2'",
        )
    if sender is None:
        raise ConfigError("email_codes", "needs an email_sender to send the codes")
    logger.warning(
        "email_codes is on: codes by email do not conform to NIST SP 800-63B and do not count"
        " toward AAL2"
    )


def webauthn(
    *,
    enabled: bool,
    public_url: str | None,
    rp_id: str | None,
    origins: Sequence[str] | None,
    user_verification: str,
    attestation: str,
    resident_key: str,
    app_name: str,
) -> WebAuthnSettings | None:
    """Passkeys and security keys: None when off. On, they need py_webauthn and a relying
    party whose id and origins can work in a browser (`core.relying_party`: from
    `webauthn_rp_id` and `webauthn_origins`, else from `public_url`)."""
    if not isinstance(enabled, bool):
        raise ConfigError("webauthn_enabled", f"{enabled!r} is not a boolean", "True or False")
    if not enabled:
        return None
    if importlib.util.find_spec("webauthn") is None:
        raise ConfigError(
            "webauthn_enabled",
            "needs the webauthn package (py_webauthn)",
            "pip install 'mfa_middleware[webauthn]'",
        )
    return settings_for(
        public_url=public_url,
        rp_id=rp_id,
        origins=origins,
        rp_name=app_name,
        user_verification=user_verification,
        attestation=attestation,
        resident_key=resident_key,
    )


PUSH_SERVICES = (  # where browsers' subscriptions point: Chrome, Firefox, Edge and Windows, Safari
    "https://fcm.googleapis.com/",
    "https://updates.push.services.mozilla.com/",
    "https://wns2-",  # wns2-<region>.notify.windows.com
    "https://web.push.apple.com/",
)


@dataclass(frozen=True, slots=True)
class Push:
    """Approving sign-ins by Web Push: the sender's VAPID key and contact, and what the core
    needs (`settings`)."""

    private_key: str
    contact: str
    settings: PushSettings


def push(
    *,
    private_key: str | None,
    contact: str | None,
    services: Sequence[str] | None,
    limit: int,
) -> Push | None:
    """None when `push_vapid_private_key` is unset. On, it needs pywebpush, a P-256 private
    key (base64url, as `vapid --gen` or the README's snippet make it), a contact the push
    services can write to, and https push services to allow."""
    int_range("push_limit", limit, 1, 100)
    if private_key is None:
        return None
    if importlib.util.find_spec("pywebpush") is None:
        raise ConfigError(
            "push_vapid_private_key", "needs pywebpush", "pip install 'mfa_middleware[push]'"
        )
    public_key = _vapid_public_key(private_key)
    if not isinstance(contact, str) or not re.fullmatch(r"(mailto:\S+@\S+|https://\S+)", contact):
        raise ConfigError(
            "push_contact", f"{contact!r} is not a contact", "mailto:<address> or https://..."
        )
    allowed = PUSH_SERVICES if services is None else tuple(services)
    for prefix in allowed:
        parts = urlsplit(prefix) if isinstance(prefix, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError("push_services", f"{prefix!r} is not a URL prefix", "https://...")
    return Push(private_key, contact, PushSettings(public_key, allowed, limit))


def _vapid_public_key(private_key: object) -> str:
    """The public point (uncompressed, base64url) browsers subscribe with."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        assert isinstance(private_key, str)
        raw = base64.urlsafe_b64decode(private_key + "=" * (-len(private_key) % 4))
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (AssertionError, ValueError):
        raise ConfigError(
            "push_vapid_private_key", "is not a P-256 private key", "32 bytes, base64url"
        ) from None
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Devices:
    """Trusted devices: how long a trusted browser skips the code (0: never), how many are
    remembered, which ones are trusted without asking."""

    trust_seconds: float
    max_devices: int
    auto_trust: Callable[[RequestFacts, Principal], bool] | None

    @classmethod
    def parse(
        cls,
        *,
        trust_duration: Duration | None,
        max_devices: int,
        auto_trust: Callable[[RequestFacts, Principal], bool] | None,
    ) -> Devices:
        int_range("max_devices", max_devices, 1, 1000)
        if trust_duration is None or trust_duration in (0, "0"):
            return cls(0.0, max_devices, auto_trust)  # trusting is off: no prompt either
        return cls(seconds("trust_duration", trust_duration), max_devices, auto_trust)


@dataclass(frozen=True, slots=True)
class Recovery:
    """Getting back in: recovery codes, the lost-device link, the enrollment code after an
    administrator's reset."""

    code_count: int  # 0: no recovery codes
    public_url: str | None
    reset_link_ttl: float
    enroll_code_ttl: float | None  # None: no code after a reset

    @classmethod
    def parse(
        cls,
        *,
        recovery_code_count: int,
        public_url: str | None,
        reset_link_ttl: Duration,
        enroll_code_ttl: Duration | None,
    ) -> Recovery:
        int_range("recovery_code_count", recovery_code_count, 0, 50)
        if public_url is not None and not re.fullmatch(r"https?://[^/\s]+", public_url):
            raise ConfigError(
                "public_url",
                f"{public_url!r} is not an origin",
                "e.g. 'https://app.example.com' (no path, no trailing slash)",
            )
        return cls(
            recovery_code_count,
            public_url,
            seconds("reset_link_ttl", reset_link_ttl),
            optional_seconds("enroll_code_ttl", enroll_code_ttl),
        )


def _rule_durations(index: int, rule: Rule | Mapping[str, Any]) -> Rule | Mapping[str, Any]:
    """A rule's `max_age` in seconds ("5m", a timedelta or a number, as every duration)."""
    if isinstance(rule, Rule):
        return rule
    if not isinstance(rule, Mapping):
        raise ConfigError(f"rules[{index}]", f"{rule!r} is not a rule", "a dict or a Rule")
    if rule.get("max_age") is None:
        return rule
    return {**rule, "max_age": seconds(f"rules[{index}].max_age", rule["max_age"])}


@dataclass(frozen=True, slots=True)
class Access:
    """Who passes where: the access rules (with the proxies trusted to say who the client
    is) and who may use the admin pages."""

    rules: RuleSet
    is_admin: Callable[[Principal], bool] | None
    is_superadmin: Callable[[Principal], bool] | None = None
    is_impersonating: Callable[[Any], object] | None = None

    @classmethod
    def parse(
        cls,
        *,
        rules: Sequence[Rule | Mapping[str, Any]],
        default_action: str | None,
        trusted_proxies: Sequence[str],
        forwarded_header: str,
        is_admin: Callable[[Principal], bool] | None,
        is_superadmin: Callable[[Principal], bool] | None = None,
        is_impersonating: Callable[[Any], object] | None = None,
    ) -> Access:
        if not isinstance(forwarded_header, str):
            raise ConfigError("forwarded_header", "must be a header name")
        choice("forwarded_header", forwarded_header.lower(), FORWARDED_HEADERS)
        if isinstance(trusted_proxies, str):
            raise ConfigError("trusted_proxies", "must be a list of networks, not one string")
        for proxy in trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    "trusted_proxies", f"{proxy!r} is not a network", "e.g. '10.0.0.0/8'"
                ) from exc
        if isinstance(rules, str | Mapping):
            raise ConfigError("rules", "must be a list of rules")
        rules = [_rule_durations(i, r) for i, r in enumerate(rules)]
        try:
            rule_set = RuleSet.build(rules, default_action, trusted_proxies, forwarded_header)
        except ValueError as exc:
            raise ConfigError("rules", str(exc)) from exc
        checks = (
            ("is_admin", is_admin),
            ("is_superadmin", is_superadmin),
            ("is_impersonating", is_impersonating),
        )
        for name, check in checks:
            if check is not None and not callable(check):
                raise ConfigError(name, "must be a function", "see the README")
        return cls(rule_set, is_admin, is_superadmin, is_impersonating)


LocaleOf = Callable[[RequestFacts, Principal], str | None]


@dataclass(frozen=True, slots=True)
class Pages:
    """The built-in pages: where they are, what they look like, what they read, and in which
    languages (`locales`, the `default_locale`, the operator's catalogs in `locale_dirs`, and
    the app's `locale` callable that picks a user's language)."""

    app_name: str
    login_url: str
    prefix: str
    brand_color: str | None
    logo_url: str | None
    template_dir: str | Path | Sequence[str | Path] | None  # folders searched in order
    max_form_bytes: int
    locale: LocaleOf | None
    default_locale: str
    locales: tuple[str, ...]
    locale_dirs: tuple[Path, ...]
    relogin_after_enrollment: bool = False  # the app's login ends after a first enrollment

    @classmethod
    def parse(
        cls,
        *,
        app_name: str,
        login_url: str,
        prefix: str,
        brand_color: str | None,
        logo_url: str | None,
        template_dir: str | Path | Sequence[str | Path] | None,
        max_form_bytes: int,
        locale: LocaleOf | None,
        default_locale: str,
        locales: Sequence[str] | None,
        locale_dirs: str | Path | Sequence[str | Path],
        relogin_after_enrollment: bool = False,
    ) -> Pages:
        int_range("max_form_bytes", max_form_bytes, 1024, 1_048_576)
        if not isinstance(relogin_after_enrollment, bool):
            raise ConfigError("relogin_after_enrollment", "must be True or False")
        if brand_color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", brand_color):
            raise ConfigError("brand_color", f"{brand_color!r} is not a colour", "'#RRGGBB'")
        if logo_url is not None and not re.fullmatch(r"/[^/\\][^\s\"'<>]*", logo_url):
            raise ConfigError(
                "logo_url",
                "must be a path on this site (the pages' CSP allows no other origin)",
                "e.g. '/static/logo.svg'",
            )
        if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
            raise ConfigError("prefix", f"{prefix!r} is not a path", "e.g. '/_mfa'")
        if locale is not None and not callable(locale):
            raise ConfigError("locale", "is not callable", "(facts, principal) -> 'fr' or None")
        dirs, offered = _languages(locale_dirs, locales)
        default = i18n.locale_name(default_locale) if isinstance(default_locale, str) else None
        if default not in offered:
            raise ConfigError(
                "default_locale", f"{default_locale!r} is not offered", ", ".join(offered)
            )
        return cls(
            app_name,
            login_url,
            prefix,
            brand_color,
            logo_url,
            template_dir,
            max_form_bytes,
            locale,
            default,
            offered,
            dirs,
            relogin_after_enrollment,
        )


@dataclass(frozen=True, slots=True)
class Audit:
    """What is done with the audit events besides the log: the last `events_kept` events about
    each user are kept (0: none), for the admin pages and `mfa-admin events`; `listeners`
    observe every event (the metrics' `observe`)."""

    events_kept: int = 50
    listeners: tuple[Callable[[Mapping[str, Any]], None], ...] = ()

    @classmethod
    def parse(cls, *, events_kept: int, metrics: Any = None) -> Audit:
        kept = int_range("events_kept", events_kept, 0, 1000)
        if metrics is None:
            return cls(kept)
        observe = getattr(metrics, "observe", None)
        if not callable(observe):
            raise ConfigError(
                "metrics", "has no observe(event) method", "metrics.PrometheusMetrics()"
            )
        return cls(kept, (observe,))


def _languages(
    locale_dirs: str | Path | Sequence[str | Path], locales: Sequence[str] | None
) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The operator's catalog folders (each must exist) and the languages offered: `locales`
    (each with a catalog, or English), or every language that has one."""
    listed = [locale_dirs] if isinstance(locale_dirs, str | Path) else list(locale_dirs)
    dirs = tuple(Path(d) for d in listed)
    for folder in dirs:
        if not folder.is_dir():
            raise ConfigError("locale_dirs", f"{str(folder)!r} is not a folder")
    known = i18n.shipped_locales().union(*(i18n.catalogs_in(d) for d in dirs))
    if locales is None:
        return dirs, tuple(sorted(known))
    if isinstance(locales, str):
        raise ConfigError("locales", "must be a list of languages", "e.g. ['en', 'fr']")
    offered = []
    for text in locales:
        name = i18n.locale_name(text) if isinstance(text, str) else None
        if name is None or name not in known:
            raise ConfigError(
                "locales", f"{text!r} has no catalog", ", ".join(sorted(known)) + " or locale_dirs"
            )
        offered.append(name)
    return dirs, tuple(sorted(set(offered)))
