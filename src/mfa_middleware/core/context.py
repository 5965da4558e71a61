"""What a core action needs beyond its own arguments: who asks, in which MFA session, from
where and when (`Caller`, one per request), and the settings and keys fixed at startup
(`Params`, one per app, and its parts). The pages, the JSON API and the ops tools build these
and call the same actions. The parts live here, not beside the flows that read them, so that
reading the configuration loads no flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfa_middleware.core.addresses import Address
from mfa_middleware.core.i18n import TextsFor, untranslated

if TYPE_CHECKING:  # types only: the configuration loads neither keys nor OTP code
    from mfa_middleware.core.keys import Keyring
    from mfa_middleware.core.otp import TotpParams
    from mfa_middleware.core.relying_party import WebAuthnSettings

MODES = ("off", "optional", "required")  # MFAConfig.mode; operators change it at runtime


@dataclass(frozen=True, slots=True)
class ThrottleParams:
    """The attempt limits of every code check (`core.throttle`)."""

    limit: int = 5
    base_lockout: float = 60.0
    max_lockout: float = 3600.0
    ceiling: int = 20


@dataclass(frozen=True, slots=True)
class OobParams:
    """Codes sent by text message or email (`core.oob`): their length, life and send caps."""

    digits: int = 6
    ttl: float = 600.0
    cooldown: float = 30.0
    hourly_cap: int = 10  # per user
    destination_cap: int = 10  # per phone number or address, per hour
    ip_cap: int = 50  # per client IP address, per hour
    origin_host: str = ""  # the site's host: text messages end with "@host #code"


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Push approval (`core.approvals`), when configured: the VAPID public key browsers
    subscribe with, the push services a subscription may point at (URL prefixes), and the
    requests allowed per user in `approvals.PUSH_WINDOW`. Here, not in `core.approvals`, so
    reading the configuration does not load the approval flows."""

    public_key: str
    endpoints: tuple[str, ...]
    limit: int = 3


@dataclass(frozen=True, slots=True)
class Caller:
    """One request's user and MFA session.

    `session_hash` names the session in the store (a keyed hash of `session_id`); `peer` is
    the address the connection came from (what events record); `client` the client's address
    resolved through trusted proxies (what notices show and send limits count, None when
    unknown); `email` the app's address of record for this user, the only address notices
    ever go to; `locale` the language of this request's page, which the codes and notices
    it causes are written in."""

    user_id: str
    session_id: str
    session_hash: str
    now: float
    peer: str | None = None
    client: Address | None = None
    user_agent: str = ""
    email: str | None = None
    locale: str = ""


@dataclass(frozen=True, slots=True)
class Params:
    """The settings and keys every action may need, built once from the configuration.

    `code_channels`: the channels offered as a second factor ("sms", "email"); `notices`:
    whether an email sender exists, so account notices can be sent; `texts` a language's
    messages and formats by its locale name; `webauthn`: the relying party when passkeys are
    on; `sms_fallback`: a login code goes to the app's address of record when a text message
    cannot be sent."""

    keyring: Keyring
    totp: TotpParams
    limits: ThrottleParams
    oob: OobParams
    app_name: str = ""
    code_channels: tuple[str, ...] = ()
    notices: bool = False
    recovery_count: int = 10
    texts: TextsFor = untranslated
    webauthn: WebAuthnSettings | None = None
    sms_fallback: bool = False  # a login code by email to the address of record if SMS fails
    push: PushSettings | None = None  # approving sign-ins from an approver browser (Web Push)
