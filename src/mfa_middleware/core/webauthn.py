"""WebAuthn (passkeys and security keys) as a second factor: the registration and
authentication ceremonies as flows of store effects, without pages.

Design choices:

- **py_webauthn does the cryptography** (attestation, signatures, COSE keys); it is an
  optional extra, imported inside the functions that need it, never when `mfa_middleware` is
  imported. Everything around it is ours and runs before or after it: the size and shape of
  what the browser posted, the challenge, the credential's owner, the origin, the relying
  party, the flags and the sign counter.
- **Challenges** are 64 random bytes (py_webauthn's `secrets`-based default), kept in the
  store under the user, the purpose (`register`, `authenticate`) and the MFA session
  (`Caller.session_hash`), so two browsers of one user never replace each other's challenge,
  and a challenge issued to one session is not even looked at for another. Each expires after
  `CHALLENGE_TTL` (5 minutes, checked against `Caller.now`; the store drops it a minute later).
  A response takes its challenge in one atomic `Update` that deletes it only when it is this
  session's and equal to the one the response signed: a challenge is answered once, a replay
  finds none.
- **Malformed input is no guess.** A body over `MAX_POSTED` bytes, not JSON, of the wrong
  shape or encoding is refused with reason `malformed` before the store is touched: it costs
  no attempt and leaves the challenge in place. Everything that could be a real answer and
  fails (wrong origin, relying party, credential, user handle, flags, signature, counter,
  challenge) is a failed assertion the caller counts toward the lockout. No exception from
  hostile input escapes: py_webauthn's own parsing may raise more than it documents (CBOR,
  cryptography, `ValueError`), and any of it is a refusal.
- **Checks we do ourselves**, so refusals have stable reasons and py_webauthn's messages are
  never parsed: the credential is looked up by `rawId` among *this* user's credentials only
  (another user's is unknown here), `userHandle` when present must be this user's random
  handle, the client data's type, origin (one of `WebAuthnSettings.origins`, never
  cross-origin) and the relying party's hash, user presence, and user verification when
  required. Then py_webauthn verifies the rest with the same expectations.
- **The sign counter is checked after the signature.** py_webauthn compares the counter before
  it verifies the signature, so anyone could post a low counter with a bad signature and make
  a good key look cloned; we give it a stored count of 0 (its check then never fires) and
  refuse a verified assertion whose count does not increase (both 0 means the authenticator
  keeps no counter, as synced passkeys do). That refusal is recorded as a
  `webauthn_counter_regressed` event (user, the credential id's first characters, both
  counts: nothing secret).
- **The relying party** is checked once, at startup (`core.relying_party`): its id
  is a domain name (never an IP address, which browsers refuse), every origin is https (or
  `http://localhost` in development) on that domain or a subdomain of it.
- Credentials are plain values (`Credential`) stored as dicts of JSON types
  (`credential_to_dict`, `credential_from_dict`, bytes as base64url): where they live (the
  user's list of authenticators) is the caller's business.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core.context import Caller, Params
from mfa_middleware.core.effects import Doc, Effect, Emit, Key, Put, Update
from mfa_middleware.core.records import Record
from mfa_middleware.core.relying_party import CHALLENGE_TTL, WebAuthnSettings

CHALLENGE_GRACE = 60.0  # kept this much longer, so a late answer is told it expired
MAX_POSTED = 16 * 1024  # bytes of a posted credential; real ones are 1-3 KiB
USER_HANDLE_BYTES = 32
REGISTER = "register"
AUTHENTICATE = "authenticate"
TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card", "internal", "cable", "hybrid"})
ATTACHMENTS = frozenset({"platform", "cross-platform"})

MALFORMED = "malformed"  # the one reason that is no guess
REASONS = (
    MALFORMED,
    "no_challenge",  # none for this session (never asked, answered already, long expired)
    "expired",  # this session's challenge is older than CHALLENGE_TTL
    "challenge_mismatch",  # signed over another challenge (an older one, another browser's)
    "wrong_type",  # a registration posted as an assertion or the other way round
    "origin",  # signed for an origin not in WebAuthnSettings.origins (phishing), or framed
    "rp_id",  # signed for another relying party
    "user_presence",
    "user_verification",  # required, and the authenticator did not verify the user
    "unknown_credential",  # not one of this user's credentials
    "user_handle",  # the authenticator names another user
    "duplicate",  # registration: this user has that credential already
    "attestation",  # registration: py_webauthn refused the attestation or the key
    "signature",  # authentication: py_webauthn refused the signature
    "counter",  # authentication: the sign counter did not increase (a cloned key?)
    "backup_eligibility",  # authentication: the BE flag changed, which it never may
)

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


# -- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """A registered passkey or security key.

    `public_key`: its COSE_Key; `transports`: how the browser reached it (for
    `allowCredentials`); `backup_eligible` / `backup_state`: the BE and BS flags (a synced
    passkey / one that is backed up now); `aaguid`: the authenticator's model when it said so
    ("" otherwise); `attachment`: "platform" or "cross-platform" as the browser reported it,
    unverified, for display only."""

    credential_id: bytes
    public_key: bytes
    sign_count: int = 0
    transports: tuple[str, ...] = ()
    backup_eligible: bool = False
    backup_state: bool = False
    aaguid: str = ""
    attachment: str = ""
    created_at: float = 0.0

    @property
    def id_b64(self) -> str:
        return to_b64url(self.credential_id)

    @property
    def id_prefix(self) -> str:
        """The first characters of the id: enough to tell credentials apart in events."""
        return self.id_b64[:8]


def credential_to_dict(credential: Credential) -> Doc:
    """The credential in JSON types, bytes as base64url."""
    return {
        "credential_id": to_b64url(credential.credential_id),
        "public_key": to_b64url(credential.public_key),
        "sign_count": credential.sign_count,
        "transports": list(credential.transports),
        "backup_eligible": credential.backup_eligible,
        "backup_state": credential.backup_state,
        "aaguid": credential.aaguid,
        "attachment": credential.attachment,
        "created_at": credential.created_at,
    }


def credential_from_dict(doc: Doc) -> Credential:
    """A credential from `credential_to_dict`'s form; unknown fields are ignored and missing
    ones take their defaults (as records do). ValueError when it has no id or key."""
    credential_id = from_b64url(doc.get("credential_id"))
    public_key = from_b64url(doc.get("public_key"))
    if not credential_id or not public_key:
        raise ValueError("a WebAuthn credential needs its id and public key")
    count = doc.get("sign_count", 0)
    transports = doc.get("transports")
    if not isinstance(transports, list):
        transports = []
    return Credential(
        credential_id=credential_id,
        public_key=public_key,
        sign_count=count if isinstance(count, int) and count >= 0 else 0,
        transports=tuple(t for t in transports if t in TRANSPORTS),
        backup_eligible=doc.get("backup_eligible") is True,
        backup_state=doc.get("backup_state") is True,
        aaguid=str(doc.get("aaguid") or ""),
        attachment=str(doc.get("attachment") or ""),
        created_at=float(doc.get("created_at") or 0.0),
    )


def new_user_handle() -> bytes:
    """A user's WebAuthn user handle: random, never derived from the user id (authenticators
    show and keep it; the spec asks that it identify nobody)."""
    return secrets.token_bytes(USER_HANDLE_BYTES)


def to_b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: object) -> bytes | None:
    """Bytes from base64url (padded or not), or None when `text` is not that."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        return None
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# -- challenges ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingChallenge(Record):
    """A challenge given to one MFA session, awaiting its answer."""

    challenge: str = ""  # base64url, as the client data carries it
    session_hash: str = ""
    expires_at: float = 0.0


def challenge_key(user_id: str, purpose: str, session_hash: str) -> Key:
    return Key("webauthn_challenge", user_id, f"{purpose}.{session_hash}")


def _issue(caller: Caller, purpose: str, challenge: bytes) -> Put:
    pending = PendingChallenge(
        to_b64url(challenge), caller.session_hash, caller.now + CHALLENGE_TTL
    )
    key = challenge_key(caller.user_id, purpose, caller.session_hash)
    return Put(key, pending.to_doc(), CHALLENGE_TTL + CHALLENGE_GRACE)


def _take(caller: Caller, purpose: str, answered: str) -> Update:
    """Takes the session's challenge when the response answers it (and drops it when it
    expired): one atomic update, so a challenge is answered at most once."""
    session, signed, now = caller.session_hash.encode(), answered.encode(), caller.now

    def take(doc: Doc | None) -> Doc | None:
        if doc is None:
            return None
        pending = PendingChallenge.from_doc(doc)
        if pending.expires_at <= now:
            return None
        if _same(pending.session_hash.encode(), session) and _same(
            pending.challenge.encode(), signed
        ):
            return None
        return doc

    return Update(challenge_key(caller.user_id, purpose, caller.session_hash), take)


def _challenge_refusal(before: Doc | None, after: Doc | None, now: float) -> str:
    """Why the take failed, or "" when this response took its challenge."""
    if before is None:
        return "no_challenge"
    if PendingChallenge.from_doc(before).expires_at <= now:
        return "expired"
    return "challenge_mismatch" if after is not None else ""


# -- what the browser posted -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Posted:
    """A posted credential that has the shape of one: its JSON and the parts we check."""

    doc: dict[str, Any]
    raw_id: bytes
    client_type: str
    challenge: str
    origin: str
    cross_origin: bool
    rp_id_hash: bytes
    up: bool
    uv: bool
    be: bool
    bs: bool
    sign_count: int
    user_handle: bytes | None = None  # assertion: the handle the authenticator returned
    transports: tuple[str, ...] = ()  # registration
    attachment: str = ""


def _load(posted: object) -> tuple[dict[str, Any], dict[str, Any], bytes, dict[str, Any]] | None:
    """The credential JSON, its response, raw id and client data, or None when the input
    does not have that shape (too large, not JSON, wrong types, bad base64)."""
    if isinstance(posted, bytes):
        if len(posted) > MAX_POSTED:
            return None
        try:
            posted = posted.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(posted, str) or len(posted) > MAX_POSTED:
        return None
    if len(posted.encode("utf-8", "surrogatepass")) > MAX_POSTED:
        return None
    try:
        doc = json.loads(posted)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("type") != "public-key":
        return None
    response = doc.get("response")
    raw_id = from_b64url(doc.get("rawId"))
    if not isinstance(response, dict) or not raw_id or doc.get("id") != to_b64url(raw_id):
        return None
    if not isinstance(doc.get("clientExtensionResults", {}), dict):
        return None
    client_bytes = from_b64url(response.get("clientDataJSON"))
    if client_bytes is None:
        return None
    try:
        client = json.loads(client_bytes.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(client, dict):
        return None
    if not all(isinstance(client.get(k), str) for k in ("type", "challenge", "origin")):
        return None
    if from_b64url(client["challenge"]) is None:
        return None
    return doc, response, raw_id, client


def _posted(
    doc: dict[str, Any], raw_id: bytes, client: dict[str, Any], auth_data: Any, **extra: Any
) -> _Posted:
    flags = auth_data.flags
    return _Posted(
        doc=doc,
        raw_id=raw_id,
        client_type=client["type"],
        challenge=client["challenge"].rstrip("="),
        origin=client["origin"],
        cross_origin=client.get("crossOrigin") is True,
        rp_id_hash=bytes(auth_data.rp_id_hash),
        up=bool(flags.up),
        uv=bool(flags.uv),
        be=bool(flags.be),
        bs=bool(flags.bs),
        sign_count=int(auth_data.sign_count),
        **extra,
    )


def _parse_registration(posted: object) -> _Posted | None:
    loaded = _load(posted)
    if loaded is None:
        return None
    doc, response, raw_id, client = loaded
    attestation = from_b64url(response.get("attestationObject"))
    transports = response.get("transports", [])
    attachment = doc.get("authenticatorAttachment")
    if attestation is None or not isinstance(transports, list):
        return None
    if attachment is not None and attachment not in ATTACHMENTS:
        return None
    from webauthn.helpers import parse_attestation_object

    try:
        auth_data = parse_attestation_object(attestation).auth_data
    except Exception:  # hostile CBOR: py_webauthn may raise more than it documents
        return None
    return _posted(
        doc,
        raw_id,
        client,
        auth_data,
        transports=tuple(sorted({t for t in transports if t in TRANSPORTS})),
        attachment=attachment or "",
    )


def _parse_assertion(posted: object) -> _Posted | None:
    loaded = _load(posted)
    if loaded is None:
        return None
    doc, response, raw_id, client = loaded
    auth_bytes = from_b64url(response.get("authenticatorData"))
    signature = from_b64url(response.get("signature"))
    handle = response.get("userHandle")
    user_handle = None if handle in (None, "") else from_b64url(handle)
    if auth_bytes is None or not signature or (handle not in (None, "") and user_handle is None):
        return None
    from webauthn.helpers import parse_authenticator_data

    try:
        auth_data = parse_authenticator_data(auth_bytes)
    except Exception:  # too short, or attested data that does not parse
        return None
    return _posted(doc, raw_id, client, auth_data, user_handle=user_handle)


def assertion_shaped(posted: object) -> bool:
    """Whether `posted` has the shape of an assertion at all: what is not is no guess, and
    is refused before an attempt is taken (`verify_authentication` says `malformed`)."""
    return _parse_assertion(posted) is not None


def _client_refusal(posted: _Posted, settings: WebAuthnSettings, ceremony: str) -> str:
    """What our own checks of the client data and the authenticator data refuse, or ""."""
    if posted.client_type != ceremony:
        return "wrong_type"
    if posted.origin not in settings.origins or posted.cross_origin:
        return "origin"
    if not _same(posted.rp_id_hash, hashlib.sha256(settings.rp_id.encode()).digest()):
        return "rp_id"
    if not posted.up:
        return "user_presence"
    if settings.uv_required and not posted.uv:
        return "user_verification"
    return ""


# -- registration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """A new credential (`ok`), or why not (`reason`, one of `REASONS`)."""

    ok: bool
    reason: str = ""
    credential: Credential | None = None
    user_verified: bool = False

    @property
    def malformed(self) -> bool:
        """Input that cannot be a response: no guess was made."""
        return self.reason == MALFORMED


def registration_options(
    caller: Caller,
    params: Params,
    settings: WebAuthnSettings,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    existing: Sequence[Credential],
) -> Generator[Effect, Any, str]:
    """The options for `navigator.credentials.create()` as JSON (parse it in the page with
    `PublicKeyCredential.parseCreationOptionsFromJSON`). A new challenge is kept for this
    session (replacing its previous one); the user's `existing` credentials are excluded, so
    an authenticator is not registered twice. `user_handle`: the user's (`new_user_handle`),
    the same for every credential of theirs; `user_name`, `display_name`: what the
    authenticator shows (the user id when both are empty)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    if not 1 <= len(user_handle) <= 64:
        raise ValueError("a WebAuthn user handle is 1 to 64 bytes")
    name = user_name or display_name or caller.user_id
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name=settings.rp_name,
        user_name=name,
        user_id=user_handle,
        user_display_name=display_name or name,
        timeout=int(settings.timeout * 1000),
        attestation=AttestationConveyancePreference(settings.attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement(settings.resident_key),
            require_resident_key=settings.resident_key == "required",
            user_verification=UserVerificationRequirement(settings.user_verification),
        ),
        exclude_credentials=_descriptors(existing),
    )
    yield _issue(caller, REGISTER, options.challenge)
    return options_to_json(options)


def finish_registration(
    caller: Caller,
    params: Params,
    settings: WebAuthnSettings,
    posted_json: str | bytes,
    existing: Sequence[Credential] = (),
) -> Generator[Effect, Any, RegistrationResult]:
    """Verify what `navigator.credentials.create()` returned (`credential.toJSON()`, as a
    JSON string) against this session's registration challenge, the relying party and the
    allowed origins. The new credential is the caller's to store; `existing` (the user's
    credentials) refuses registering one of them again."""
    posted = _parse_registration(posted_json)
    if posted is None:
        return RegistrationResult(False, MALFORMED)
    before, after = yield _take(caller, REGISTER, posted.challenge)
    refused = _challenge_refusal(before, after, caller.now) or _client_refusal(
        posted, settings, "webauthn.create"
    )
    if not refused and any(_same(c.credential_id, posted.raw_id) for c in existing):
        refused = "duplicate"
    if refused:
        return RegistrationResult(False, refused)
    from webauthn import verify_registration_response

    try:
        verified = verify_registration_response(
            credential=posted.doc,
            expected_challenge=from_b64url(posted.challenge) or b"",
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            require_user_verification=settings.uv_required,
        )
    except Exception:  # hostile input may raise more than InvalidRegistrationResponse
        return RegistrationResult(False, "attestation")
    aaguid = str(verified.aaguid)
    credential = Credential(
        credential_id=bytes(verified.credential_id),
        public_key=bytes(verified.credential_public_key),
        sign_count=int(verified.sign_count),
        transports=posted.transports,
        backup_eligible=posted.be,
        backup_state=posted.bs,
        aaguid="" if aaguid.strip("0-") == "" else aaguid,
        attachment=posted.attachment,
        created_at=caller.now,
    )
    return RegistrationResult(True, credential=credential, user_verified=posted.uv)


# -- authentication --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthenticationResult:
    """`ok` with the credential used, its new sign count and backup state in place (for the
    caller to store), or why not (`reason`, one of `REASONS`)."""

    ok: bool
    reason: str = ""
    credential: Credential | None = None
    user_verified: bool = False

    @property
    def malformed(self) -> bool:
        """Input that cannot be an assertion: no guess was made, count no attempt."""
        return self.reason == MALFORMED


def authentication_options(
    caller: Caller,
    params: Params,
    settings: WebAuthnSettings,
    credentials: Sequence[Credential],
) -> Generator[Effect, Any, str]:
    """The options for `navigator.credentials.get()` as JSON (parse it in the page with
    `PublicKeyCredential.parseRequestOptionsFromJSON`), allowing the user's `credentials`
    (none: any discoverable credential of this relying party). A new challenge is kept for
    this session, replacing its previous one."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=settings.rp_id,
        timeout=int(settings.timeout * 1000),
        allow_credentials=_descriptors(credentials),
        user_verification=UserVerificationRequirement(settings.user_verification),
    )
    yield _issue(caller, AUTHENTICATE, options.challenge)
    return options_to_json(options)


def verify_authentication(
    caller: Caller,
    params: Params,
    settings: WebAuthnSettings,
    posted_json: str | bytes,
    credentials: Sequence[Credential],
    user_handle: bytes,
) -> Generator[Effect, Any, AuthenticationResult]:
    """Verify what `navigator.credentials.get()` returned against this session's challenge,
    with one of the user's own `credentials` and their `user_handle`. Attempts are the
    caller's to count: every refusal but `malformed` is a failed assertion."""
    posted = _parse_assertion(posted_json)
    if posted is None:
        return AuthenticationResult(False, MALFORMED)
    before, after = yield _take(caller, AUTHENTICATE, posted.challenge)
    refused = _challenge_refusal(before, after, caller.now)
    found = _find(credentials, posted.raw_id)
    if not refused and found is None:
        refused = "unknown_credential"
    if (
        not refused
        and posted.user_handle is not None
        and not _same(posted.user_handle, user_handle)
    ):
        refused = "user_handle"
    refused = refused or _client_refusal(posted, settings, "webauthn.get")
    if refused or found is None:
        return AuthenticationResult(False, refused or "unknown_credential")
    from webauthn import verify_authentication_response

    try:
        verify_authentication_response(
            credential=posted.doc,
            expected_challenge=from_b64url(posted.challenge) or b"",
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            credential_public_key=found.public_key,
            credential_current_sign_count=0,  # ours is checked below, after the signature
            require_user_verification=settings.uv_required,
        )
    except Exception:  # hostile input may raise more than InvalidAuthenticationResponse
        return AuthenticationResult(False, "signature")
    stored, count = found.sign_count, posted.sign_count
    if (count or stored) and count <= stored:
        yield Emit(
            "webauthn_counter_regressed",
            {
                "user": caller.user_id,
                "credential": found.id_prefix,
                "stored_count": stored,
                "received_count": count,
                "ip": caller.peer,
            },
        )
        return AuthenticationResult(False, "counter")
    if posted.be != found.backup_eligible:
        return AuthenticationResult(False, "backup_eligibility")
    used = replace(found, sign_count=count, backup_state=posted.bs)
    return AuthenticationResult(True, credential=used, user_verified=posted.uv)


def _find(credentials: Sequence[Credential], raw_id: bytes) -> Credential | None:
    found = None
    for credential in credentials:
        if _same(credential.credential_id, raw_id):
            found = credential
    return found


def _descriptors(credentials: Sequence[Credential]) -> list[Any]:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    return [
        PublicKeyCredentialDescriptor(
            id=c.credential_id,
            transports=[AuthenticatorTransport(t) for t in c.transports if t in TRANSPORTS] or None,
        )
        for c in credentials
    ]
