"""Notices to the user by email: something changed on their account, or someone who knows
their password is failing the second step. Every notice's text is here, marked for
translation."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.devices import name_from_user_agent
from mfa_middleware.core.effects import Deliver, Effect, Emit
from mfa_middleware.core.i18n import N_, NP_, Texts
from mfa_middleware.errors import DeliveryFailed

IF_NOT_YOU = N_(
    "If this wasn't you, contact your administrator now: someone may know your password."
)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice, untranslated: `text` is a message or both forms of one (`NP_`) chosen by
    `count`; `footer` ends it with "if this wasn't you, contact your administrator" (off
    where the text says what to do)."""

    subject: str
    text: str | tuple[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    footer: bool = True


def notify(caller: Caller, params: Params, notice: Notice) -> Generator[Effect, Any, None]:
    """Tell the user by email that something changed on their account (when the app gives an
    address of record and an email sender exists). Never to an address that only a factor's
    enrollment supplied: whoever enrolled it may not be the account's owner. A failure to
    notify never blocks the change; it is logged."""
    if not caller.email or not params.notices:
        return
    texts = params.texts(caller.locale)
    text = notice.text
    body = texts.gettext(text) if isinstance(text, str) else texts.ngettext(*text, notice.count)
    body = body.format(count=notice.count, **notice.values)
    if notice.footer:
        body += "\n\n" + texts.gettext(IF_NOT_YOU)
    subject = f"{params.app_name}: {texts.gettext(notice.subject)}"
    try:
        yield Deliver("email", caller.email, subject, body + "\n")
    except DeliveryFailed as exc:
        yield Emit("notification_failed", {"user": caller.user_id, "reason": exc.reason})


def factor_set(*, first: bool) -> Notice:
    if first:
        return Notice(
            N_("two-step verification turned on"),
            N_("Two-step verification is now on for your account."),
        )
    return Notice(
        N_("two-step verification changed"),
        N_("The way you receive sign-in codes was changed."),
    )


def failed_codes(caller: Caller, params: Params) -> Notice:
    """Someone got past the password and then failed the code until locked out: when, from
    which browser and address (sent once per lockout, so at most a few mails)."""
    texts = params.texts(caller.locale)
    return Notice(
        N_("wrong sign-in codes"),
        NP_(
            "Someone signed in to your account with your password and then entered {count}"
            " wrong code, on {time} from {browser} (IP address {ip}). Further tries are"
            " blocked for a while.\n\nIf this was you, you can ignore this message. If it"
            " wasn't, someone knows your password: change it now, and tell your administrator.",
            "Someone signed in to your account with your password and then entered {count}"
            " wrong codes, on {time} from {browser} (IP address {ip}). Further tries are"
            " blocked for a while.\n\nIf this was you, you can ignore this message. If it"
            " wasn't, someone knows your password: change it now, and tell your administrator.",
        ),
        {
            "time": texts.datetime(caller.now),
            "browser": name_from_user_agent(caller.user_agent, texts),
            "ip": caller.client or "-",
        },
        count=params.limits.limit,
        footer=False,  # the text says what to do either way
    )


def recovery_code_used(left: int) -> Notice:
    return Notice(
        N_("a recovery code was used"),
        NP_(
            "One of your recovery codes was just used to sign in. It no longer works; you have"
            " {count} unused code left.",
            "One of your recovery codes was just used to sign in. It no longer works; you have"
            " {count} unused codes left.",
        ),
        count=left,
    )


RECOVERY_CODES_REPLACED = Notice(
    N_("new recovery codes"),
    N_("New recovery codes were created; the old ones no longer work."),
)


def reset_link(url: str, ttl: float) -> Notice:
    return Notice(
        N_("reset two-step verification"),
        NP_(
            "Someone signed in with your password and asked to reset two-step "
            "verification because they can't use their device.\n\nTo reset it and set "
            "it up again, open this link while signed in (it works once, for {count} "
            "minute):\n\n{url}",
            "Someone signed in with your password and asked to reset two-step "
            "verification because they can't use their device.\n\nTo reset it and set "
            "it up again, open this link while signed in (it works once, for {count} "
            "minutes):\n\n{url}",
        ),
        {"url": url},
        count=max(1, round(ttl / 60)),
    )


RESET_DONE = Notice(
    N_("two-step verification was reset"),
    N_(
        "Two-step verification was turned off for your account, and your "
        "trusted devices and recovery codes were removed."
    ),
)


KIND_LABELS = {
    "totp": N_("an authenticator app"),
    "sms": N_("text messages to your phone"),
    "email": N_("codes by email"),
    "webauthn": N_("a passkey or security key"),
    "approver": N_("a browser that approves sign-ins"),
}


def _what(kind: str, name: str, texts: Texts) -> str:
    """An authenticator as a notice names it: its kind, then the name the user gave it."""
    label = texts.gettext(KIND_LABELS.get(kind) or N_("a way to sign in"))
    return f"{label} ({name})" if name else label


def authenticator_added(kind: str, name: str, texts: Texts) -> Notice:
    """A new way in beside the others: if someone else added it, they can sign in with it."""
    return Notice(
        N_("a way to sign in was added"),
        N_("A new way to sign in to your account was added: {what}."),
        {"what": _what(kind, name, texts)},
    )


def authenticator_removed(kind: str, name: str, texts: Texts) -> Notice:
    return Notice(
        N_("a way to sign in was removed"),
        N_("{what} was removed from the ways you can sign in to your account."),
        {"what": _what(kind, name, texts)},
    )


def approver_added(name: str) -> Notice:
    return Notice(
        N_("a browser can now approve sign-ins"),
        N_("{name} can now approve sign-ins to your account."),
        {"name": name},
    )


def approval_denied(browser: str, ip: str, caller: Caller, params: Params) -> Notice:
    """An approver refused a sign-in (a wrong number, or "This wasn't me"): someone who knows
    the password may be asking in the hope of a careless tap."""
    texts = params.texts(caller.locale)
    return Notice(
        N_("a sign-in was refused"),
        N_(
            "A sign-in to your account from {browser} (IP address {ip}) on {time} was refused"
            " on your approver. Someone may know your password: change it now, and tell"
            " your administrator."
        ),
        {"browser": browser or "-", "ip": ip or "-", "time": texts.datetime(caller.now)},
        footer=False,
    )
