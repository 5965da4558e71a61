"""One-time codes sent by SMS or email ("out of band"), written once as flows.

A code is 6 (to 8) digits from `secrets`, stored only as a keyed MAC that also binds it to the
user, the MFA session that asked for it and its purpose (login or enrollment), so a code sent for
one browser or one purpose is useless anywhere else. It expires after `ttl` (10 minutes), works
once, and a resend replaces it. Sending is limited (SMS costs money, and SMS pumping is an
attack): per user a cooldown between sends and a cap per hour; per destination (a phone number
or address, whichever users share it; sign-in codes and enrollment codes apart, so nobody can
use up a phone's sign-in codes by enrolling it) and per client IP address (see
`rate_limit_address`) a cap per hour. Destinations and addresses are kept only as keyed hashes.
A resend never resets the failed-attempt count. Codes never appear in responses, URLs, logs or
events.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Generator
from dataclasses import dataclass
from html import escape
from typing import Any

from mfa_middleware.core.context import OobParams, ThrottleParams
from mfa_middleware.core.effects import (
    Deliver,
    Doc,
    Effect,
    Get,
    Key,
    Update,
    delete,
    emit,
    get,
    put,
    update,
)
from mfa_middleware.core.flows import MALFORMED, Attempt, count_attempt, take_attempt
from mfa_middleware.core.i18n import N_, NP_, UNTRANSLATED, Texts
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.otp import is_well_formed
from mfa_middleware.core.records import Record
from mfa_middleware.errors import DeliveryFailed

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class PendingCode(Record):
    mac: str = ""
    expires_at: float = 0.0
    channel: str = ""
    destination: str = ""
    sent_at: float = 0.0
    session_hash: str = ""  # a keyed hash of the MFA session that asked for it


@dataclass(frozen=True, slots=True)
class SendLog(Record):
    last_sent: float = 0.0
    window_start: float = 0.0
    count: int = 0


OOB_PURPOSE = "mfa.oob-code.v1"  # the MAC's salt: a sent code is bound to its user, session, use


def code_key(user_id: str, purpose: str) -> Key:
    return Key("oob", user_id, purpose)


def new_code(digits: int) -> str:
    """Uniformly random digits from the OS CSPRNG; leading zeros kept."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def code_mac(keyring: Keyring, user_id: str, session_id: str, purpose: str, code: str) -> str:
    return keyring.mac(OOB_PURPOSE, "\0".join((user_id, session_id, purpose, code)))


def mask(channel: str, destination: str) -> str:
    """A destination as the pages show it: +1 •••-•••-2671, +44 •••• ••3456, a***@example.com."""
    if channel == "sms":
        return mask_phone(destination)
    local, _, domain = destination.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """An E.164 number in its own country's international format, with every digit hidden but
    the country code and the last four, so a UK number does not look like a US one."""
    plain = f"•••• {number[-4:]}"  # without phonenumbers (a custom SMS sender) or its format
    try:
        import phonenumbers
    except ImportError:
        return plain
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return plain
    shown = str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    country = f"+{parsed.country_code}"
    if not shown.startswith(country):
        return plain
    rest = shown[len(country) :]
    hide = sum(ch.isdigit() for ch in rest) - 4
    masked = []
    for ch in rest:
        if ch.isdigit() and hide > 0:
            masked.append("•")
            hide -= 1
        else:
            masked.append(ch)
    return country + "".join(masked)


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of a send: `channel`/`destination` that got it, or why none did."""

    ok: bool
    channel: str = ""
    destination: str = ""
    fallback: bool = False
    wait: float = 0.0  # seconds until a resend is allowed (cooldown)
    capped: bool = False  # the hourly cap is reached
    failed: bool = False  # every route failed


def _reserve_send(log: SendLog, now: float, params: OobParams, first: bool) -> SendLog:
    if not first and log.last_sent and now - log.last_sent < params.cooldown:
        return log
    return _reserve_in_hour(log, now, params.hourly_cap)


def _reserve_in_hour(log: SendLog, now: float, cap: int) -> SendLog:
    """One more send in this hour's window, or `log` unchanged when `cap` sends were made."""
    window_start, count = (log.window_start, log.count)
    if now - window_start >= HOUR:
        window_start, count = now, 0
    if count >= cap:
        return log
    return SendLog(last_sent=now, window_start=window_start, count=count + 1)


def _take_send(key: Key, now: float, cap: int) -> Generator[Effect, Any, float]:
    """Reserve a send under a shared per-hour cap: 0.0, or the seconds until one is free."""

    def reserve(doc: Doc | None) -> Doc:
        return _reserve_in_hour(SendLog.from_doc(doc), now, cap).to_doc()

    before, after = yield from update(key, reserve, ttl=HOUR)
    if before != after:
        return 0.0
    return max(1.0, SendLog.from_doc(before).window_start + HOUR - now)


_PROXY_PEERS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10")
)


def rate_limit_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str | None:
    """What the per-address send cap counts: an IPv4 address, an IPv6 /64 (one subscriber's
    usual allocation), or None for loopback and private addresses, which are what an app
    behind an undeclared reverse proxy sees for every client; one cap for the whole site
    there would refuse everyone (declare `trusted_proxies` and the client's address counts)."""
    if address is None or address.is_loopback or any(address in n for n in _PROXY_PEERS):
        return None
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def limit_key(keyring: Keyring, kind: str, value: str) -> Key:
    """The send log of a destination (`oob_dest`) or a client address (`oob_ip`), named by a
    keyed hash so the store holds no phone numbers, addresses or IPs for it."""
    return Key(kind, keyring.mac(f"mfa.{kind}.v1", value)[:22], "sends")


def send_code(
    user_id: str,
    session_id: str,
    purpose: str,
    routes: list[tuple[str, str]],
    now: float,
    keyring: Keyring,
    params: OobParams,
    app_name: str,
    session_hash: str = "",
    *,
    first: bool = False,
    ip: str | None = None,
    texts: Texts = UNTRANSLATED,
    peer: str | None = None,
) -> Generator[Effect, Any, Sent]:
    """Send a new code along the first route that works (SMS, then email as a fallback).

    `first`: the first code of a login or an enrollment, which the resend cooldown does not
    delay (the hourly caps still count it). `ip`: the client's address, for its hourly cap;
    `peer`: the address events record. A route whose destination reached its cap is skipped
    (the next route may still be used). `texts`: the language of the request that asked."""

    where = {} if peer is None else {"ip": peer}  # in each event

    def reserve(doc: Doc | None) -> Doc:
        return _reserve_send(SendLog.from_doc(doc), now, params, first).to_doc()

    before, after = yield from update(Key("oob_sends", user_id), reserve, ttl=HOUR)
    if before == after:
        log = SendLog.from_doc(before)
        wait = log.last_sent + params.cooldown - now
        if wait > 0 and not first:
            return Sent(False, wait=wait)
        return Sent(False, capped=True, wait=log.window_start + HOUR - now)
    if ip:
        wait = yield from _take_send(limit_key(keyring, "oob_ip", ip), now, params.ip_cap)
        if wait:
            yield from emit("code_send_limited", user=user_id, limit="ip", purpose=purpose, ip=ip)
            return Sent(False, capped=True, wait=wait)
    code = new_code(params.digits)
    mac = code_mac(keyring, user_id, session_id, purpose, code)
    key = code_key(user_id, purpose)
    capped_waits: list[float] = []
    attempted = False
    for index, (channel, destination) in enumerate(routes):
        # per purpose: codes to a number nobody proved (enrollment) never use up the sign-in
        # codes of the user who did prove it
        dest_key = limit_key(keyring, "oob_dest", f"{purpose}:{destination.lower()}")
        wait = yield from _take_send(dest_key, now, params.destination_cap)
        if wait:
            capped_waits.append(wait)
            yield from emit(
                "code_send_limited",
                user=user_id,
                limit="destination",
                channel=channel,
                purpose=purpose,
                to=mask(channel, destination),
                **where,
            )
            continue
        pending = PendingCode(mac, now + params.ttl, channel, destination, now, session_hash)
        attempted = True
        yield from put(key, pending.to_doc(), ttl=params.ttl)
        try:
            yield Deliver(
                channel,
                destination,
                *code_message(channel, code, app_name, params, texts),
            )
        except DeliveryFailed as exc:  # thrown in by the driver: try the next route
            yield from emit(
                "code_delivery_failed",
                user=user_id,
                channel=channel,
                purpose=purpose,
                to=mask(channel, destination),
                reason=exc.reason,
                **where,
            )
            continue
        yield from emit(
            "code_sent",
            user=user_id,
            channel=channel,
            purpose=purpose,
            to=mask(channel, destination),
            fallback=index > 0,
            **where,
        )
        return Sent(True, channel, destination, fallback=index > 0)
    if not attempted and capped_waits:  # the code sent before, if any, still works
        return Sent(False, capped=True, wait=min(capped_waits))
    yield from delete(key)
    return Sent(False, failed=True)


def code_message(
    channel: str,
    code: str,
    app_name: str,
    params: OobParams,
    texts: Texts,
) -> tuple[str, str, str | None]:
    """(subject, text, html) of a code's message. A text message ends with the origin-bound
    line "@app.example.com #123456" when the site's host is known: browsers and phones then
    offer the code only on that site (WICG "Origin-bound one-time codes delivered via SMS")."""
    minutes = max(1, round(params.ttl / 60))
    values = {"code": code, "app": app_name, "count": minutes}
    if channel == "sms":
        text = texts.ngettext(
            *NP_(
                "{code} is your {app} verification code. It expires in {count} minute.",
                "{code} is your {app} verification code. It expires in {count} minutes.",
            ),
            minutes,
        ).format(**values)
        if params.origin_host:
            text += f"\n\n@{params.origin_host} #{code}"
        return "", text, None
    subject = texts.gettext(N_("Your {app} verification code")).format(**values)
    intro = texts.gettext(N_("Your verification code is"))
    warning = texts.ngettext(
        *NP_(
            "It expires in {count} minute. If you did not try to sign in to "
            "{app}, change your password: someone may know it.",
            "It expires in {count} minutes. If you did not try to sign in to "
            "{app}, change your password: someone may know it.",
        ),
        minutes,
    ).format(**values)
    text = f"{intro} {code}\n\n{warning}\n"
    html = (
        f'<p>{escape(intro)}</p><p style="font-size:28px;letter-spacing:6px;font-weight:bold">'
        f"{code}</p><p>{escape(warning)}</p>"
    )
    return subject, text, html


def pending_code(user_id: str, purpose: str) -> Generator[Effect, Any, PendingCode | None]:
    doc = yield from get(code_key(user_id, purpose))
    return None if doc is None else PendingCode.from_doc(doc)


def verify_code(
    user_id: str,
    session_id: str,
    purpose: str,
    code: str,
    now: float,
    keyring: Keyring,
    params: OobParams,
    limits: ThrottleParams,
) -> Generator[Effect, Any, tuple[Attempt, PendingCode | None]]:
    """Check and spend a sent code; returns the attempt and the spent code's record."""
    if not is_well_formed(code, params.digits):
        return MALFORMED, None
    refused = yield from take_attempt(user_id, now, limits)
    if refused is not None:
        return refused, None
    key = code_key(user_id, purpose)
    doc = yield Get(key)
    pending = None if doc is None else PendingCode.from_doc(doc)
    step = None
    message = "\0".join((user_id, session_id, purpose, code))
    # under any key: a code sent before a key rotation still works
    live = pending is not None and pending.expires_at > now
    if pending is not None and live and keyring.verify_mac(OOB_PURPOSE, message, pending.mac):
        mac = pending.mac

        def spend(doc: Doc | None) -> Doc | None:
            return None if doc is not None and doc.get("mac") == mac else doc

        before, after = yield Update(key, spend)
        step = 0 if before is not None and after is None else -1  # -1: a parallel request won
    attempt = yield from count_attempt(user_id, now, limits, step)
    return attempt, (pending if attempt.ok else None)
