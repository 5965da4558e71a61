"""Pages for codes sent by SMS or email: enrolling a phone or an address (verified before it is
saved), the challenge of SMS and email users (with the SMS-to-email fallback), and resending.

A malformed phone number or address re-renders the page with a message and costs no attempt;
a wrong code costs one. SMS and email are never active together: enrolling one replaces the
other (and TOTP).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from mfa_middleware.core import oob
from mfa_middleware.core.effects import (
    Doc,
    Effect,
    Key,
    annotated,
    delete,
    emit,
    get,
    put,
    update,
)
from mfa_middleware.core.flows import Attempt
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.records import SETTINGS_KEY, Record, RuntimeSettings, UserRecord, user_key
from mfa_middleware.web.gate import client_address
from mfa_middleware.web.http import with_next
from mfa_middleware.web.page import Page, PageOutcome, posted
from mfa_middleware.web.recovery_pages import enrolled
from mfa_middleware.web.region_names import NAMES
from mfa_middleware.web.steps import (
    failure_context,
    failure_status,
    lock_notice,
    not_enrollable,
    record_attempt,
)

OOB_METHODS = ("sms", "email")
PENDING_TTL = 15 * 60.0
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class PendingEnrollment(Record):
    """A phone number or address being verified; it becomes the factor only after the code."""

    channel: str = ""
    destination: str = ""
    session_hash: str = ""


def _pending_key(user_id: str) -> Key:
    return Key("pending_oob", user_id)


def _params(page: Page) -> oob.OobParams:
    return page.rt.oob


def _send(
    page: Page, purpose: str, routes: list[tuple[str, str]], *, first: bool = False
) -> Generator[Effect, Any, oob.Sent]:
    rt = page.rt
    facts = page.facts
    client = client_address(rt, facts)
    sending = oob.send_code(
        page.principal.id,
        page.view.claims.session_id,
        purpose,
        routes,
        rt.clock(),
        rt.keyring,
        _params(page),
        rt.config.pages.app_name,
        page.session_hash,
        first=first,
        ip=oob.rate_limit_address(client),
        translate=rt.translate,
        plural=rt.plural,
    )
    return (yield from annotated(sending, ip=facts.client))  # who asked, in every event


def _live_code(page: Page, purpose: str) -> Generator[Effect, Any, oob.PendingCode | None]:
    """The code sent to this browser for `purpose`, while it still works."""
    pending = yield from oob.pending_code(page.principal.id, purpose)
    if pending is None or pending.expires_at <= page.rt.clock():
        return None
    return pending if pending.session_hash == page.session_hash else None


def _sent_context(sent: oob.Sent | None, live: oob.PendingCode | None) -> dict[str, Any]:
    """What the code pages say about the code: where it went, or why none works now."""
    context: dict[str, Any] = {"expired": live is None and sent is None}
    if live is not None:
        context["channel"] = live.channel
        context["masked"] = oob.mask(live.channel, live.destination)
    if sent is not None:
        context.update(_resend_context(sent))
    return context


def _resend_context(sent: oob.Sent) -> dict[str, Any]:
    """How a send went: sent (or to the fallback), failed, capped for the hour, or refused
    because the last code is too recent (the button stays usable; the page says how long)."""
    refused = not sent.ok and not sent.failed and not sent.capped and sent.wait > 0
    return {
        "fallback": sent.fallback,
        "send_failed": sent.failed,
        "send_capped": sent.capped,
        "resend_refused": max(1, math.ceil(sent.wait)) if refused else 0,
    }


def masked_factor(user: UserRecord) -> str:
    """Where an SMS or email user's codes go, masked as the pages show it ("" for others)."""
    if user.method == "sms" and user.phone:
        return oob.mask("sms", user.phone)
    if user.method == "email" and user.email:
        return oob.mask("email", user.email)
    return ""


def _send_status(sent: oob.Sent) -> int:
    return 200 if sent.ok else (429 if sent.wait and not sent.failed else 503)


# -- challenge of SMS and email users ---------------------------------------------------------


def login_routes(page: Page) -> list[tuple[str, str]]:
    """Where a login code goes: the enrolled phone, then (with `email_codes`) the app's address
    of record if the SMS fails. A user who enrolled by email keeps receiving codes there even
    if `email_codes` was turned off since, or they could not sign in."""
    user = page.view.state.user
    email = page.principal.email
    if user.method == "sms" and user.phone:
        fallback = [("email", email)] if email and "email" in page.rt.code_channels else []
        return [("sms", user.phone), *fallback]
    if user.method == "email" and user.email:
        return [("email", user.email)]
    return []


def login_code_context(page: Page, *, send: bool) -> Generator[Effect, Any, dict[str, Any]]:
    """The challenge page's view of the login code: sent to whom, or why not. With `send`,
    a code is sent when this browser has none yet (the first visit)."""
    live = yield from _live_code(page, "login")
    sent: oob.Sent | None = None
    if send and live is None:
        sent = yield from _send(page, "login", login_routes(page), first=True)
        if sent.ok:
            live = yield from _live_code(page, "login")
    return {"method": page.view.state.user.method, **_sent_context(sent, live)}


def _verify(
    page: Page, purpose: str
) -> Generator[Effect, Any, tuple[Attempt, oob.PendingCode | None]]:
    """Check the posted code against the one sent to this browser for `purpose`."""
    rt = page.rt
    return (
        yield from oob.verify_code(
            page.principal.id,
            page.view.claims.session_id,
            purpose,
            page.form.get("code", ""),
            rt.clock(),
            rt.keyring,
            _params(page),
            rt.limits,
        )
    )


def verify_login_code(page: Page) -> Generator[Effect, Any, Attempt]:
    attempt, _ = yield from _verify(page, "login")
    return attempt


def resend_login_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if page.view.state.user.method not in OOB_METHODS:
        return page.where_to()
    sent = yield from _send(page, "login", login_routes(page))
    live = yield from _live_code(page, "login")
    return page.render(
        "challenge.html",
        _send_status(sent),
        reauth=page.reauth,
        method=page.view.state.user.method,
        resent=sent.ok,
        **_sent_context(sent, live),
    )


# -- enrollment of a phone or an address ------------------------------------------------------


def _phone_page(
    page: Page, status: int = 200, error: str = "", phone: str = "", region: str = ""
) -> PageOutcome:
    allowed = page.rt.config.codes.sms_regions
    return page.render(
        "enroll_phone.html",
        status,
        error=error,
        phone=phone,
        regions=region_choices(tuple(allowed) if allowed else None),
        region=(region or page.rt.config.codes.default_region).upper(),
    )


@cache
def region_choices(allowed: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """The phone form's countries as (code, "United Kingdom (+44)"), sorted by name: the
    regions `sms_regions` allows, or every region phonenumbers can parse."""
    import phonenumbers

    regions = allowed or tuple(phonenumbers.SUPPORTED_REGIONS)
    choices = []
    for code in regions:
        name = NAMES.get(code, code)
        calling = phonenumbers.country_code_for_region(code)
        choices.append((code, f"{name} (+{calling})" if calling else name))
    return sorted(choices, key=lambda choice: _folded(choice[1]))


def _folded(text: str) -> str:
    """Sort "Åland Islands" with the A's and "Côte d'Ivoire" with the C's."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def enroll_sms_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    elsewhere = yield from _not_enrollable_by(page, "sms")
    if elsewhere is not None:
        return elsewhere
    return _phone_page(page)


def _not_enrollable_by(page: Page, channel: str) -> Generator[Effect, Any, PageOutcome | None]:
    """`not_enrollable`, and the method chooser when `channel` is not offered."""
    elsewhere = yield from not_enrollable(page)
    if elsewhere is None and channel not in page.rt.code_channels:
        return page.go(page.url("enroll"))
    return elsewhere


def normalise_phone(raw: str, region: str, allowed: tuple[str, ...] | None) -> str:
    """E.164 for a valid number in an allowed region; ValueError with a message otherwise."""
    import phonenumbers

    if len(raw) > 40 or len(region) > 3:
        raise ValueError(N_("Enter a phone number."))
    try:
        number = phonenumbers.parse(raw, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(N_("That doesn't look like a phone number.")) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(N_("That phone number isn't valid. Check the number and the country."))
    number_region = phonenumbers.region_code_for_number(number)
    if allowed and number_region not in allowed:
        raise ValueError(N_("Text messages can't be sent to numbers in that country."))
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def enroll_sms_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    elsewhere = yield from _not_enrollable_by(page, "sms")
    if elsewhere is not None:
        return elsewhere
    raw, region = page.form.get("phone", "").strip(), page.form.get("region", "")
    allowed = tuple(page.rt.config.codes.sms_regions) if page.rt.config.codes.sms_regions else None
    try:
        phone = normalise_phone(raw, region, allowed)
    except ValueError as exc:
        return _phone_page(page, 400, str(exc), raw[:40], region[:3])
    return (yield from _start_enrollment(page, "sms", phone))


def enroll_email_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    elsewhere = yield from _not_enrollable_by(page, "email")
    if elsewhere is not None:
        return elsewhere
    return page.render(
        "enroll_email.html", email=page.principal.email or "", fixed=bool(page.principal.email)
    )


def enroll_email_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    elsewhere = yield from _not_enrollable_by(page, "email")
    if elsewhere is not None:
        return elsewhere
    address = page.principal.email or page.form.get("email", "").strip()
    if not EMAIL_RE.match(address):
        return page.render(
            "enroll_email.html",
            400,
            email=address[:254],
            fixed=False,
            error=N_("Enter a valid email address."),
        )
    return (yield from _start_enrollment(page, "email", address))


def _start_enrollment(
    page: Page, channel: str, destination: str
) -> Generator[Effect, Any, PageOutcome]:
    pending = PendingEnrollment(channel, destination, page.session_hash)
    yield from put(_pending_key(page.principal.id), pending.to_doc(), ttl=PENDING_TTL)
    sent = yield from _send(page, "enroll", [(channel, destination)], first=True)
    sent_flag = "1" if sent.ok else "0"
    return page.go(with_next(page.url(f"enroll/code?sent={sent_flag}"), page.next))


def _my_pending_enrollment(page: Page) -> Generator[Effect, Any, PendingEnrollment | None]:
    doc = yield from get(_pending_key(page.principal.id))
    pending = PendingEnrollment.from_doc(doc)
    mine = doc and pending.session_hash == page.session_hash
    # a method turned off since the code was sent (email_codes) is not finished either
    return pending if mine and pending.channel in page.rt.code_channels else None


def _code_page(
    page: Page, pending: PendingEnrollment, status: int = 200, **context: Any
) -> Generator[Effect, Any, PageOutcome]:
    live = yield from _live_code(page, "enroll")
    return page.render(
        "enroll_code.html",
        status,
        channel=pending.channel,
        masked=oob.mask(pending.channel, pending.destination),
        expired=live is None,
        **context,
    )


def enroll_code_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    elsewhere = yield from not_enrollable(page)
    if elsewhere is not None:
        return elsewhere
    pending = yield from _my_pending_enrollment(page)
    if pending is None:
        return page.go(page.url("enroll"))
    locked = yield from lock_notice(page)
    failed = page.facts.query_param("sent") == "0"
    status = 429 if locked else 503 if failed else 200
    return (yield from _code_page(page, pending, status, send_failed=failed, **locked))


def enroll_code_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    elsewhere = yield from not_enrollable(page)
    if elsewhere is not None:
        return elsewhere
    pending = yield from _my_pending_enrollment(page)
    if pending is None:
        return page.go(page.url("enroll"))
    if page.form.get("action") == "resend":
        sent = yield from _send(page, "enroll", [(pending.channel, pending.destination)])
        status, outcome = _send_status(sent), _resend_context(sent)
        return (yield from _code_page(page, pending, status, resent=sent.ok, **outcome))
    rt = page.rt
    attempt, spent = yield from _verify(page, "enroll")
    yield from record_attempt(page, attempt, pending.channel, "enroll")
    if not attempt.ok or spent is None:
        return (
            yield from _code_page(
                page, pending, failure_status(attempt), **failure_context(attempt)
            )
        )
    user = yield from _activate(page, pending)
    claims = rt.upgraded(page.view.claims, epoch=user.epoch, method=pending.channel)
    return (yield from enrolled(page, claims))


def _activate(page: Page, pending: PendingEnrollment) -> Generator[Effect, Any, UserRecord]:
    """Make the verified phone or address the user's factor, replacing any other (and the
    other channel's contact data: SMS and email are never active together); every other
    session of the user must verify again, and every browser trusted so far too."""
    settings = RuntimeSettings.from_doc((yield from get(SETTINGS_KEY)))
    now = page.rt.clock()

    def activate(doc: Doc | None) -> Doc:
        record = UserRecord.from_doc(doc)
        phone = pending.destination if pending.channel == "sms" else None
        email = pending.destination if pending.channel == "email" else None
        return replace(
            record,
            method=pending.channel,
            phone=phone,
            email=email,
            totp_secret=None,
            enroll_epoch=settings.enroll_epoch,
            enrolled_at=now,
            epoch=record.epoch + 1,
            device_epoch=record.device_epoch + 1,  # a new factor: no browser trusted
        ).to_doc()

    _, after = yield from update(user_key(page.principal.id), activate)
    yield from delete(_pending_key(page.principal.id))
    yield from delete(oob.code_key(page.principal.id, "enroll"))
    yield from emit(
        "enrolled",
        user=page.principal.id,
        method=pending.channel,
        to=oob.mask(pending.channel, pending.destination),
        ip=page.facts.client,
    )
    return UserRecord.from_doc(after)
