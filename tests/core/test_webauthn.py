"""The WebAuthn ceremonies of `core.webauthn`, without a browser, run by the sync driver
against a MemoryStore: the responses Chromium's virtual authenticator recorded
(tests/fixtures/webauthn, from the spike for issue 17) and responses a software authenticator
mints (tests/support/webauthn.py), which can sign for any origin, relying party, counter and
flags. Then the relying party's startup checks (`relying_party`, `settings_for`)."""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("webauthn")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfa_middleware.core import relying_party
from mfa_middleware.core import webauthn as wa
from mfa_middleware.core.context import Caller, OobParams, Params, ThrottleParams
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.otp import TotpParams
from mfa_middleware.core.relying_party import WebAuthnSettings
from mfa_middleware.core.webauthn import (
    AUTHENTICATE,
    CHALLENGE_GRACE,
    CHALLENGE_TTL,
    MAX_POSTED,
    REGISTER,
    AuthenticationResult,
    Credential,
    PendingChallenge,
    RegistrationResult,
    challenge_key,
    credential_from_dict,
    credential_to_dict,
)
from mfa_middleware.drivers import run_sync
from mfa_middleware.errors import ConfigError
from mfa_middleware.events import EventSink
from mfa_middleware.stores.memory import MemoryStore
from mfa_middleware.testing import FixedClock
from tests.support.webauthn import AAGUID, SoftAuthenticator, b64u, challenge_of, unb64u

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webauthn"
KEY = "k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe"
RP = "example.com"
ORIGIN = "https://app.example.com"
SETTINGS = WebAuthnSettings(RP, "Example", (ORIGIN, "https://example.com"))
REQUIRED = replace(SETTINGS, user_verification="required")
ALICE_HANDLE = bytes(range(32))
BOB_HANDLE = bytes(range(32, 64))


class Env:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.store = MemoryStore()
        self.store.use_clock(self.clock)
        self.events: list[dict[str, Any]] = []
        self.sink = EventSink(self.events.append)
        self.params = Params(Keyring([KEY]), TotpParams(), ThrottleParams(), OobParams())

    def caller(self, user: str = "alice", session: str = "s1") -> Caller:
        return Caller(user, f"sid-{session}", f"hash-{session}", self.clock(), peer="203.0.113.9")

    def run(self, flow: Generator[Effect, Any, Any]) -> Any:
        return run_sync(flow, self.store, self.sink)

    def register_options(
        self,
        user: str = "alice",
        session: str = "s1",
        handle: bytes = ALICE_HANDLE,
        existing: tuple[Credential, ...] = (),
        config: WebAuthnSettings = SETTINGS,
    ) -> str:
        caller = self.caller(user, session)
        flow = wa.registration_options(caller, self.params, config, handle, user, user, existing)
        return str(self.run(flow))

    def finish(
        self,
        posted: Any,
        user: str = "alice",
        session: str = "s1",
        existing: tuple[Credential, ...] = (),
        config: WebAuthnSettings = SETTINGS,
    ) -> RegistrationResult:
        body = posted if isinstance(posted, str | bytes) or posted is None else json.dumps(posted)
        flow = wa.finish_registration(
            self.caller(user, session), self.params, config, body, existing
        )
        result = self.run(flow)
        assert isinstance(result, RegistrationResult)
        return result

    def login_options(
        self,
        credentials: tuple[Credential, ...],
        user: str = "alice",
        session: str = "s1",
        config: WebAuthnSettings = SETTINGS,
    ) -> str:
        flow = wa.authentication_options(
            self.caller(user, session), self.params, config, credentials
        )
        return str(self.run(flow))

    def verify(
        self,
        posted: Any,
        credentials: tuple[Credential, ...],
        handle: bytes = ALICE_HANDLE,
        user: str = "alice",
        session: str = "s1",
        config: WebAuthnSettings = SETTINGS,
    ) -> AuthenticationResult:
        body = posted if isinstance(posted, str | bytes) or posted is None else json.dumps(posted)
        caller = self.caller(user, session)
        flow = wa.verify_authentication(caller, self.params, config, body, credentials, handle)
        result = self.run(flow)
        assert isinstance(result, AuthenticationResult)
        return result

    def enroll(
        self, authenticator: SoftAuthenticator, user: str = "alice", handle: bytes = ALICE_HANDLE
    ) -> Credential:
        options = self.register_options(user, handle=handle)
        result = self.finish(authenticator.register(challenge_of(options), ORIGIN, RP), user)
        assert result.ok, result.reason
        assert result.credential is not None
        return result.credential

    def pending(self, purpose: str, user: str = "alice", session: str = "s1") -> Any:
        return self.store.get(challenge_key(user, purpose, f"hash-{session}"))

    def inject(
        self, purpose: str, challenge: str, user: str = "alice", session: str = "s1"
    ) -> None:
        """A recorded ceremony's challenge, as if this session had been given it."""
        pending = PendingChallenge(challenge, f"hash-{session}", self.clock() + CHALLENGE_TTL)
        self.store.put(challenge_key(user, purpose, f"hash-{session}"), pending.to_doc())


@pytest.fixture
def env() -> Env:
    return Env()


# -- recorded in Chromium ----------------------------------------------------------------


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def recorded_settings(f: dict[str, Any], **changes: Any) -> WebAuthnSettings:
    uv = "required" if f["require_user_verification"] else "preferred"
    return replace(WebAuthnSettings(f["rp_id"], "spike", (f["origin"],), uv), **changes)


def test_every_recorded_chromium_ceremony_verifies_in_order(env: Env) -> None:
    """17 ceremonies: platform passkeys with UV, a USB key without, a U2F key (counter 0),
    packed and fido-u2f attestations, a synced passkey (BE and BS). Each credential is the one
    our registration produced, and its counter follows the recording's."""
    credentials: dict[str, Credential] = {}
    checked = 0
    for path in sorted(FIXTURES.glob("[0-9]*.json")):
        f = json.loads(path.read_text())
        posted = f["credential"]
        config = recorded_settings(f)
        if f["kind"] == "registration":
            env.inject(REGISTER, f["challenge"])
            registered = env.finish(posted, config=config)
            assert registered.ok, (path.name, registered.reason)
            assert registered.credential is not None
            assert registered.credential.id_b64 == posted["id"]
            assert registered.credential.transports == tuple(posted["response"]["transports"])
            credentials[posted["id"]] = registered.credential
        else:
            stored = credentials[posted["id"]]
            assert stored.sign_count == f["credential_current_sign_count"], path.name
            assert stored.public_key == unb64u(f["credential_public_key"]), path.name
            handle = posted["response"].get("userHandle")
            env.inject(AUTHENTICATE, f["challenge"])
            result = env.verify(
                posted, (stored,), unb64u(handle) if handle else b"x", config=config
            )
            assert result.ok, (path.name, result.reason)
            assert result.credential is not None
            assert result.credential.sign_count > stored.sign_count
            credentials[posted["id"]] = result.credential
        checked += 1
    assert checked == 17
    assert not env.events


def test_recorded_registration_keeps_what_the_authenticator_said(env: Env) -> None:
    reg = fixture("00-registration.json")
    env.inject(REGISTER, reg["challenge"])
    result = env.finish(reg["credential"], config=recorded_settings(reg))
    assert result.ok
    assert result.user_verified
    credential = result.credential
    assert credential is not None
    assert credential.sign_count == 1
    assert credential.aaguid == "01020304-0506-0708-0102-030405060708"
    assert credential.attachment == "platform"
    assert credential.public_key == unb64u(
        fixture("01-authentication.json")["credential_public_key"]
    )
    assert credential.created_at == env.clock()
    assert (credential.backup_eligible, credential.backup_state) == (False, False)
    synced = fixture("15-registration.json")
    env.inject(REGISTER, synced["challenge"])
    backed_up = env.finish(synced["credential"], config=recorded_settings(synced)).credential
    assert backed_up is not None
    assert (backed_up.backup_eligible, backed_up.backup_state) == (True, True)
    u2f = fixture("10-registration.json")
    env.inject(REGISTER, u2f["challenge"])
    counterless = env.finish(u2f["credential"], config=recorded_settings(u2f)).credential
    assert counterless is not None
    assert counterless.sign_count == 0
    assert counterless.aaguid == ""  # all zeros: the authenticator did not say


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"origins": ("http://localhost:8000",)}, "origin"),
        ({"rp_id": "example.localhost"}, "rp_id"),
    ],
)
def test_recorded_responses_are_refused_for_another_origin_or_relying_party(
    env: Env, changes: dict[str, Any], reason: str
) -> None:
    reg = fixture("00-registration.json")
    env.inject(REGISTER, reg["challenge"])
    assert env.finish(reg["credential"], config=recorded_settings(reg, **changes)).reason == reason
    auth = fixture("01-authentication.json")
    env.inject(REGISTER, reg["challenge"])
    credential = env.finish(reg["credential"], config=recorded_settings(reg)).credential
    assert credential is not None
    env.inject(AUTHENTICATE, auth["challenge"])
    handle = unb64u(auth["credential"]["response"]["userHandle"])
    result = env.verify(
        auth["credential"], (credential,), handle, config=recorded_settings(auth, **changes)
    )
    assert (result.ok, result.reason, result.malformed) == (False, reason, False)


def test_assertions_minted_with_the_key_chromium_exported_verify(env: Env) -> None:
    """Chromium's credentials are Ed25519: the same credential answers new challenges when
    the software authenticator signs with the key `WebAuthn.getCredentials` exported."""
    reg = fixture("00-registration.json")
    [exported] = fixture("authenticator-credentials.json")
    config = recorded_settings(reg)
    env.inject(REGISTER, reg["challenge"])
    credential = env.finish(reg["credential"], config=config).credential
    assert credential is not None
    chromium = SoftAuthenticator.from_chromium(exported)
    assert chromium.credential_id == credential.credential_id
    assert chromium.cose_key() == credential.public_key
    options = env.login_options((credential,), config=config)
    posted = chromium.assertion(challenge_of(options), reg["origin"], reg["rp_id"])
    result = env.verify(posted, (credential,), chromium.user_handle or b"", config=config)
    assert result.ok, result.reason
    assert result.credential is not None
    assert result.credential.sign_count == 2


# -- minted: the whole ceremony --------------------------------------------------------------


def test_a_good_registration_then_authentication(env: Env) -> None:
    key = SoftAuthenticator(user_handle=ALICE_HANDLE, transports=("usb", "nfc"))
    old = SoftAuthenticator()
    old_credential = Credential(old.credential_id, old.cose_key(), transports=("usb",))
    options = json.loads(env.register_options(existing=(old_credential,)))
    assert options["rp"] == {"id": RP, "name": "Example"}
    assert options["user"]["id"] == b64u(ALICE_HANDLE)
    assert options["user"]["name"] == "alice"
    assert options["attestation"] == "none"
    assert options["timeout"] == 300_000
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["excludeCredentials"] == [
        {"id": old_credential.id_b64, "type": "public-key", "transports": ["usb"]}
    ]
    pending = PendingChallenge.from_doc(env.pending(REGISTER))
    assert pending.challenge == options["challenge"]
    assert len(unb64u(pending.challenge)) == 64
    assert pending.expires_at == env.clock() + CHALLENGE_TTL

    registered = env.finish(key.register(options["challenge"], ORIGIN, RP))
    assert (registered.ok, registered.reason) == (True, "")
    assert registered.user_verified
    credential = registered.credential
    assert credential is not None
    assert credential.credential_id == key.credential_id
    assert credential.public_key == key.cose_key()
    assert credential.transports == ("nfc", "usb")
    assert credential.attachment == "cross-platform"
    assert credential.aaguid == "01020304-0506-0708-090a-0b0c0d0e0f10"
    assert bytes.fromhex(credential.aaguid.replace("-", "")) == AAGUID
    assert env.pending(REGISTER) is None  # answered: gone

    stored = credential_from_dict(json.loads(json.dumps(credential_to_dict(credential))))
    assert stored == credential
    login = json.loads(env.login_options((stored,)))
    assert login["rpId"] == RP
    assert login["allowCredentials"] == [
        {"id": stored.id_b64, "type": "public-key", "transports": ["nfc", "usb"]}
    ]
    assert login["userVerification"] == "preferred"
    result = env.verify(key.assertion(login["challenge"], ORIGIN, RP), (stored,))
    assert (result.ok, result.reason, result.malformed) == (True, "", False)
    assert result.user_verified
    assert result.credential == replace(stored, sign_count=1)
    assert env.pending(AUTHENTICATE) is None
    assert not env.events


def test_each_origin_of_the_relying_party_is_accepted(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    for origin in SETTINGS.origins:
        options = env.login_options((credential,))
        result = env.verify(key.assertion(challenge_of(options), origin, RP), (credential,))
        assert result.ok, (origin, result.reason)
        assert result.credential is not None
        credential = result.credential


# -- minted: refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["https://evil.example.net", "http://app.example.com", "https://app.example.com:8443"]
)
def test_a_wrong_origin_is_refused_and_uses_the_challenge_up(env: Env, origin: str) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    assert env.finish(key.register(challenge_of(options), origin, RP)).reason == "origin"
    assert env.pending(REGISTER) is None  # a phishing relay gets one try per challenge
    credential = env.enroll(key)
    options = env.login_options((credential,))
    result = env.verify(key.assertion(challenge_of(options), origin, RP), (credential,))
    assert (result.ok, result.reason, result.malformed) == (False, "origin", False)
    assert env.pending(AUTHENTICATE) is None


def test_an_assertion_made_in_a_cross_origin_frame_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    framed = key.assertion(challenge, ORIGIN, RP, crossOrigin=True)
    assert env.verify(framed, (credential,)).reason == "origin"


def test_a_wrong_relying_party_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    assert env.finish(key.register(challenge_of(options), ORIGIN, "evil.example")).reason == "rp_id"
    credential = env.enroll(key)
    for rp in ("evil.example", "app.example.com"):  # a subdomain is another relying party
        challenge = challenge_of(env.login_options((credential,)))
        result = env.verify(key.assertion(challenge, ORIGIN, rp), (credential,))
        assert (result.ok, result.reason) == (False, "rp_id")


def test_an_expired_challenge_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    env.clock.advance(CHALLENGE_TTL + 1)
    assert env.finish(key.register(challenge_of(options), ORIGIN, RP)).reason == "expired"
    assert env.pending(REGISTER) is None

    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    env.clock.advance(CHALLENGE_TTL - 1)  # still in time
    assert env.pending(AUTHENTICATE) is not None
    challenge = challenge_of(env.login_options((credential,)))
    env.clock.advance(CHALLENGE_TTL + 1)
    result = env.verify(key.assertion(challenge, ORIGIN, RP), (credential,))
    assert (result.ok, result.reason, result.malformed) == (False, "expired", False)

    env.login_options((credential,))
    env.clock.advance(CHALLENGE_TTL + 1)
    other = key.assertion(b64u(b"another challenge"), ORIGIN, RP)
    assert env.verify(other, (credential,)).reason == "expired"
    assert env.pending(AUTHENTICATE) is None  # an expired challenge goes at the first answer

    challenge = challenge_of(env.login_options((credential,)))
    env.clock.advance(CHALLENGE_TTL + CHALLENGE_GRACE + 1)  # the store forgot it by now
    assert env.verify(key.assertion(challenge, ORIGIN, RP), (credential,)).reason == "no_challenge"


def test_a_challenge_answered_just_in_time_works(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    env.clock.advance(CHALLENGE_TTL - 1)
    assert env.verify(key.assertion(challenge, ORIGIN, RP), (credential,)).ok


def test_a_challenge_is_answered_once(env: Env) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    posted = key.register(challenge_of(options), ORIGIN, RP)
    first = env.finish(posted)
    assert first.ok
    assert first.credential is not None
    assert env.finish(posted).reason == "no_challenge"
    credential = first.credential

    challenge = challenge_of(env.login_options((credential,)))
    posted = key.assertion(challenge, ORIGIN, RP)
    result = env.verify(posted, (credential,))
    assert result.ok
    assert result.credential is not None
    again = env.verify(posted, (result.credential,))  # the same response, replayed
    assert (again.ok, again.reason) == (False, "no_challenge")
    fresh = key.assertion(challenge, ORIGIN, RP)  # a new signature, a higher count: same challenge
    assert env.verify(fresh, (result.credential,)).reason == "no_challenge"


def test_new_options_replace_the_sessions_previous_challenge(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    older = challenge_of(env.login_options((credential,)))
    newer = challenge_of(env.login_options((credential,)))
    assert older != newer
    assert (
        env.verify(key.assertion(older, ORIGIN, RP), (credential,)).reason == "challenge_mismatch"
    )
    assert env.verify(key.assertion(newer, ORIGIN, RP), (credential,)).ok


def test_a_challenge_from_another_mfa_session_is_refused(env: Env) -> None:
    """The challenge of browser s1 cannot be answered from browser s2, and s2's tries do not
    use up s1's challenge."""
    key = SoftAuthenticator()
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,), session="s1"))
    answer = key.assertion(challenge, ORIGIN, RP)
    result = env.verify(answer, (credential,), session="s2")
    assert (result.ok, result.reason) == (False, "no_challenge")
    env.login_options((credential,), session="s2")  # s2 has a challenge of its own now
    answer = key.assertion(challenge, ORIGIN, RP)
    assert env.verify(answer, (credential,), session="s2").reason == "challenge_mismatch"
    assert env.pending(AUTHENTICATE, session="s2") is not None  # not s1's answer: kept
    assert env.verify(key.assertion(challenge, ORIGIN, RP), (credential,), session="s1").ok

    options = env.register_options(session="s1")
    other = SoftAuthenticator()
    posted = other.register(challenge_of(options), ORIGIN, RP)
    assert env.finish(posted, session="s2").reason == "no_challenge"
    assert env.finish(posted, session="s1").ok


def test_a_challenge_kept_for_another_session_is_not_taken(env: Env) -> None:
    """Defence in depth: the record names its session too, and must name this one."""
    key = SoftAuthenticator()
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    doc = env.pending(AUTHENTICATE)
    env.store.put(
        challenge_key("alice", AUTHENTICATE, "hash-s1"), {**doc, "session_hash": "hash-s9"}
    )
    result = env.verify(key.assertion(challenge, ORIGIN, RP), (credential,))
    assert (result.ok, result.reason) == (False, "challenge_mismatch")


def test_a_credential_of_another_user_is_refused(env: Env) -> None:
    alice_key = SoftAuthenticator(user_handle=ALICE_HANDLE)
    bob_key = SoftAuthenticator(user_handle=BOB_HANDLE)
    alice_credential = env.enroll(alice_key)
    bob_credential = env.enroll(bob_key, "bob", BOB_HANDLE)
    bobs = (bob_credential,)
    challenge = challenge_of(env.login_options(bobs, user="bob", session="b1"))
    offered = alice_key.assertion(challenge, ORIGIN, RP)  # validly signed, by alice's key
    result = env.verify(offered, bobs, BOB_HANDLE, user="bob", session="b1")
    assert (result.ok, result.reason, result.malformed) == (False, "unknown_credential", False)
    assert result.credential is None
    # even were alice's credential listed with bob's, the handle it returns is alice's
    challenge = challenge_of(env.login_options(bobs, user="bob", session="b1"))
    offered = alice_key.assertion(challenge, ORIGIN, RP)
    both = (bob_credential, alice_credential)
    assert env.verify(offered, both, BOB_HANDLE, user="bob", session="b1").reason == "user_handle"
    challenge = challenge_of(env.login_options(bobs, user="bob", session="b1"))
    assert env.verify(bob_key.assertion(challenge, ORIGIN, RP), bobs, BOB_HANDLE, "bob", "b1").ok


def test_a_missing_user_handle_is_not_required(env: Env) -> None:
    """Security keys without discoverable credentials return no userHandle."""
    key = SoftAuthenticator(user_handle=None)
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    posted = key.assertion(challenge, ORIGIN, RP)
    assert posted["response"]["userHandle"] is None
    assert env.verify(posted, (credential,)).ok


def test_a_counter_going_backwards_is_refused_and_recorded(env: Env) -> None:
    key = SoftAuthenticator(user_handle=ALICE_HANDLE)
    credential = replace(env.enroll(key), sign_count=10)
    for count in (5, 10):  # lower, or the same non-zero count: a cloned key
        challenge = challenge_of(env.login_options((credential,)))
        posted = key.assertion(challenge, ORIGIN, RP, count=count)
        result = env.verify(posted, (credential,))
        assert (result.ok, result.reason, result.malformed) == (False, "counter", False)
        event = env.events.pop()
        assert event == {
            "event": "webauthn_counter_regressed",
            "user": "alice",
            "credential": credential.id_b64[:8],
            "stored_count": 10,
            "received_count": count,
            "ip": "203.0.113.9",
        }
        secrets = (
            credential.id_b64,
            b64u(credential.public_key),
            posted["response"]["signature"],
            challenge,
            b64u(ALICE_HANDLE),
        )
        assert not any(s in json.dumps(event) for s in secrets)
    challenge = challenge_of(env.login_options((credential,)))
    result = env.verify(key.assertion(challenge, ORIGIN, RP, count=11), (credential,))
    assert result.ok
    assert result.credential is not None
    assert result.credential.sign_count == 11
    assert not env.events


def test_a_low_counter_with_a_bad_signature_is_no_clone_alarm(env: Env) -> None:
    """The counter is judged only once the signature holds: anybody can post a low count."""
    key = SoftAuthenticator()
    credential = replace(env.enroll(key), sign_count=10)
    challenge = challenge_of(env.login_options((credential,)))
    forged = key.assertion(challenge, ORIGIN, RP, count=1, good_signature=False)
    assert env.verify(forged, (credential,)).reason == "signature"
    assert not env.events


def test_authenticators_without_a_counter_stay_at_zero(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    assert credential.sign_count == 0
    for _ in range(2):
        challenge = challenge_of(env.login_options((credential,)))
        result = env.verify(key.assertion(challenge, ORIGIN, RP, count=0), (credential,))
        assert result.ok, result.reason
    challenge = challenge_of(env.login_options((replace(credential, sign_count=3),)))
    stale = key.assertion(challenge, ORIGIN, RP, count=0)  # had a counter, now reports none
    assert env.verify(stale, (replace(credential, sign_count=3),)).reason == "counter"


def test_a_bad_signature_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    forged = key.assertion(challenge, ORIGIN, RP, good_signature=False)
    result = env.verify(forged, (credential,))
    assert (result.ok, result.reason, result.malformed) == (False, "signature", False)
    impostor = SoftAuthenticator(credential_id=key.credential_id)  # same id, another key
    challenge = challenge_of(env.login_options((credential,)))
    assert (
        env.verify(impostor.assertion(challenge, ORIGIN, RP), (credential,)).reason == "signature"
    )


def test_user_verification_when_required(env: Env) -> None:
    key = SoftAuthenticator()
    options = json.loads(env.register_options(config=REQUIRED))
    assert options["authenticatorSelection"]["userVerification"] == "required"
    posted = key.register(options["challenge"], ORIGIN, RP, uv=False)
    assert env.finish(posted, config=REQUIRED).reason == "user_verification"

    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,), config=REQUIRED))
    result = env.verify(
        key.assertion(challenge, ORIGIN, RP, uv=False), (credential,), config=REQUIRED
    )
    assert (result.ok, result.reason, result.malformed) == (False, "user_verification", False)
    # preferred: accepted, and the caller learns it was not verified
    challenge = challenge_of(env.login_options((credential,)))
    result = env.verify(key.assertion(challenge, ORIGIN, RP, uv=False), (credential,))
    assert result.ok
    assert not result.user_verified
    challenge = challenge_of(env.login_options((credential,), config=REQUIRED))
    verified = env.verify(key.assertion(challenge, ORIGIN, RP), (credential,), config=REQUIRED)
    assert verified.ok
    assert verified.user_verified


def test_user_presence_is_always_required(env: Env) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    assert env.finish(key.register(challenge_of(options), ORIGIN, RP, up=False)).reason == (
        "user_presence"
    )
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    result = env.verify(key.assertion(challenge, ORIGIN, RP, up=False), (credential,))
    assert result.reason == "user_presence"


def test_a_response_of_the_other_ceremony_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    posted = key.register(challenge_of(options), ORIGIN, RP, kind="webauthn.get")
    assert env.finish(posted).reason == "wrong_type"
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    posted = key.assertion(challenge, ORIGIN, RP, kind="webauthn.create")
    assert env.verify(posted, (credential,)).reason == "wrong_type"


def test_registering_a_credential_twice_is_refused(env: Env) -> None:
    key = SoftAuthenticator()
    credential = env.enroll(key)
    options = env.register_options(existing=(credential,))
    posted = key.register(challenge_of(options), ORIGIN, RP)
    assert env.finish(posted, existing=(credential,)).reason == "duplicate"


def test_backup_flags_are_kept_and_updated(env: Env) -> None:
    key = SoftAuthenticator(backup_eligible=True, backup_state=False)
    credential = env.enroll(key)
    assert (credential.backup_eligible, credential.backup_state) == (True, False)
    key.backup_state = True  # the passkey got synced
    challenge = challenge_of(env.login_options((credential,)))
    result = env.verify(key.assertion(challenge, ORIGIN, RP), (credential,))
    assert result.ok
    assert result.credential is not None
    assert (result.credential.backup_eligible, result.credential.backup_state) == (True, True)
    key.backup_eligible = key.backup_state = False  # eligibility never changes
    challenge = challenge_of(env.login_options((result.credential,)))
    changed = env.verify(key.assertion(challenge, ORIGIN, RP), (result.credential,))
    assert (changed.ok, changed.reason) == (False, "backup_eligibility")


# -- malformed input: no guess, nothing consumed -----------------------------------------------


def good_assertion(env: Env) -> tuple[Credential, dict[str, Any]]:
    key = SoftAuthenticator(user_handle=ALICE_HANDLE)
    credential = env.enroll(key)
    challenge = challenge_of(env.login_options((credential,)))
    return credential, key.assertion(challenge, ORIGIN, RP)


def mutated(posted: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(posted))
    target = copy
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return copy


def oversized(posted: dict[str, Any]) -> str:
    padding = "a" * MAX_POSTED
    return json.dumps({**posted, "clientExtensionResults": {"padding": padding}})


MALFORMED_ASSERTIONS: list[tuple[str, Any]] = [
    ("empty", ""),
    ("not JSON", "{not json"),
    ("a JSON list", "[]"),
    ("JSON null", "null"),
    ("None", None),
    ("a number", 5),
    ("invalid UTF-8", b"\xff\xfe{}"),
    ("nested too deep", "[" * 5000 + "]" * 5000),
    ("a huge number", "1" * 5000),
    ("oversized", "oversized"),
    ("no response", ("response",)),
    ("id is a number", ("id",)),
    ("id is not rawId", ("id",)),
    ("type", ("type",)),
    ("response is a string", ("response",)),
    ("clientDataJSON is a number", ("response", "clientDataJSON")),
    ("clientDataJSON is bad base64", ("response", "clientDataJSON")),
    ("clientDataJSON is not JSON", ("response", "clientDataJSON")),
    ("clientDataJSON is a list", ("response", "clientDataJSON")),
    ("clientDataJSON without a challenge", ("response", "clientDataJSON")),
    ("signature is a list", ("response", "signature")),
    ("signature is empty", ("response", "signature")),
    ("authenticatorData is short", ("response", "authenticatorData")),
    ("userHandle is a number", ("response", "userHandle")),
    ("userHandle is bad base64", ("response", "userHandle")),
    ("extensions are a list", ("clientExtensionResults",)),
]
REPLACEMENTS: dict[str, Any] = {
    "no response": None,
    "id is a number": 42,
    "id is not rawId": b64u(b"another id"),
    "type": "password",
    "response is a string": "response",
    "clientDataJSON is a number": 7,
    "clientDataJSON is bad base64": "!!!not base64!!!",
    "clientDataJSON is not JSON": b64u(b"{oops"),
    "clientDataJSON is a list": b64u(b"[1, 2]"),
    "clientDataJSON without a challenge": b64u(b'{"type": "webauthn.get", "origin": "x"}'),
    "signature is a list": [1, 2],
    "signature is empty": "",
    "authenticatorData is short": b64u(b"\0" * 36),
    "userHandle is a number": 1,
    "userHandle is bad base64": "*",
    "extensions are a list": [],
}


@pytest.mark.parametrize(
    ("name", "body"), MALFORMED_ASSERTIONS, ids=[m[0] for m in MALFORMED_ASSERTIONS]
)
def test_malformed_assertions_are_no_guess_and_leave_the_challenge(
    env: Env, name: str, body: Any
) -> None:
    credential, good = good_assertion(env)
    if body == "oversized":
        body = oversized(good)
        assert len(body) > MAX_POSTED
    elif isinstance(body, tuple):
        body = json.dumps(mutated(good, body, REPLACEMENTS[name]))
    result = env.verify(body, (credential,))
    assert (result.ok, result.reason, result.malformed) == (False, "malformed", True)
    assert env.pending(AUTHENTICATE) is not None
    assert env.verify(good, (credential,)).ok  # the real answer still works


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("response", "attestationObject"), b64u(b"\xff\x00 not cbor")),
        (("response", "attestationObject"), 12),
        (("response", "transports"), "usb"),
        (("authenticatorAttachment",), "on-the-moon"),
        (("rawId",), "!!"),
    ],
)
def test_malformed_registrations_are_no_guess(env: Env, path: tuple[str, ...], value: Any) -> None:
    key = SoftAuthenticator()
    options = env.register_options()
    good = key.register(challenge_of(options), ORIGIN, RP)
    result = env.finish(mutated(good, path, value))
    assert (result.ok, result.reason, result.malformed) == (False, "malformed", True)
    assert env.finish("x" * (MAX_POSTED + 1)).malformed
    assert env.pending(REGISTER) is not None
    assert env.finish(good).ok


def test_a_body_of_bytes_is_read_as_utf8(env: Env) -> None:
    credential, good = good_assertion(env)
    assert env.verify(json.dumps(good).encode(), (credential,)).ok


def test_an_oversized_body_is_refused_before_parsing(env: Env) -> None:
    credential, good = good_assertion(env)
    body = json.dumps(good)
    wide = body.replace('"clientExtensionResults": {}', '"clientExtensionResults": {"x": "%s"}')
    wide %= "é" * (MAX_POSTED // 2)  # under the limit in characters, over it in bytes
    assert len(wide) <= MAX_POSTED < len(wide.encode())
    assert env.verify(wide, (credential,)).malformed
    assert env.verify(wide.encode(), (credential,)).malformed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_mutation_of_an_assertion_raises(data: st.DataObject) -> None:
    """Whatever a client changes in an assertion, the answer is a refusal with a known
    reason (or, where the change is harmless, success): never an exception."""
    env = Env()
    credential, good = good_assertion(env)
    text = json.dumps(good, separators=(",", ":"))
    position = data.draw(st.integers(0, 10_000)) % len(text)  # lengths vary: random keys
    replacement = data.draw(st.text(max_size=3))
    body = text[:position] + replacement + text[position + 1 :]
    result = env.verify(body, (credential,))
    assert result.ok or result.reason in wa.REASONS


@settings(max_examples=100, deadline=None)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["id", "rawId", "type", "response", "clientDataJSON", "signature"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_malformed(doc: Any) -> None:
    env = Env()
    credential = Credential(b"\1" * 16, b"\2" * 77)
    body = json.dumps(doc)
    assert env.verify(body, (credential,)).reason == "malformed"
    assert env.finish(body).reason == "malformed"


# -- values ----------------------------------------------------------------------------------


def test_credential_dicts_read_what_older_or_newer_versions_wrote() -> None:
    credential = Credential(b"\1\2\3", b"\4\5\6", 7, ("usb",), True, True, "x", "platform", 9.0)
    doc = credential_to_dict(credential)
    assert doc["credential_id"] == "AQID"
    assert doc["public_key"] == "BAUG"
    assert json.loads(json.dumps(doc)) == doc
    assert credential_from_dict({**doc, "later_field": 1}) == credential
    assert credential_from_dict({**doc, "transports": ["usb", "teleport"]}).transports == ("usb",)
    assert credential_from_dict({**doc, "transports": 3, "sign_count": -1}) == replace(
        credential, transports=(), sign_count=0
    )
    minimal = credential_from_dict({"credential_id": "AQID", "public_key": "BAUG"})
    assert minimal == Credential(b"\1\2\3", b"\4\5\6")
    for broken in ({}, {"credential_id": "AQID"}, {"credential_id": "%%", "public_key": "BAUG"}):
        with pytest.raises(ValueError, match="id and public key"):
            credential_from_dict(broken)


def test_user_handles_are_random() -> None:
    handles = {wa.new_user_handle() for _ in range(50)}
    assert len(handles) == 50
    assert {len(h) for h in handles} == {32}


def test_registration_options_need_a_user_handle(env: Env) -> None:
    with pytest.raises(ValueError, match="1 to 64 bytes"):
        env.register_options(handle=b"")
    with pytest.raises(ValueError, match="1 to 64 bytes"):
        env.register_options(handle=b"x" * 65)


def test_base64url_decoding_is_strict() -> None:
    assert wa.from_b64url("AQID") == b"\1\2\3"
    assert wa.from_b64url("AQI=") == b"\1\2"
    assert wa.from_b64url("AQI") == b"\1\2"
    for bad in ("AQ+D", "AQ/D", "A QID", "AQID===", None, 5, "A"):
        assert wa.from_b64url(bad) is None, bad


# -- the relying party, at startup -----------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "rp_id", "origins", "expected"),
    [
        ("https://app.example.com", None, None, ("app.example.com", ("https://app.example.com",))),
        (
            "https://App.Example.COM:443",
            None,
            None,
            ("app.example.com", ("https://app.example.com",)),
        ),
        (
            "https://app.example.com:8443",
            None,
            None,
            ("app.example.com", ("https://app.example.com:8443",)),
        ),
        ("http://localhost:8000", None, None, ("localhost", ("http://localhost:8000",))),
        (
            "https://app.example.com",
            "example.com",
            None,
            ("example.com", ("https://app.example.com",)),
        ),
        (None, "Example.com", None, ("example.com", ("https://example.com",))),
        (
            "https://app.example.com",
            "example.com",
            ["https://example.com", "https://a.b.example.com:444", "https://example.com:443"],
            ("example.com", ("https://example.com", "https://a.b.example.com:444")),
        ),
        (
            None,
            "localhost",
            ["http://localhost:5000", "https://localhost"],
            ("localhost", ("http://localhost:5000", "https://localhost")),
        ),
    ],
)
def test_relying_party_from_the_configuration(
    public_url: str | None, rp_id: str | None, origins: list[str] | None, expected: Any
) -> None:
    assert relying_party.relying_party(public_url, rp_id, origins) == expected


@pytest.mark.parametrize(
    ("public_url", "rp_id", "origins", "field", "problem"),
    [
        ("http://127.0.0.1:8000", None, None, "public_url", "IP address"),
        ("https://[::1]:8443", None, None, "public_url", "IP address"),
        ("https://10.0.0.1", None, None, "public_url", "IP address"),
        (None, "192.168.1.1", None, "webauthn_rp_id", "IP address"),
        (None, "1.2.3", None, "webauthn_rp_id", "IP address"),
        (None, "0x7f.1", None, "webauthn_rp_id", "IP address"),
        (None, "https://example.com", None, "webauthn_rp_id", "not a domain name"),
        (None, "example.com:443", None, "webauthn_rp_id", "not a domain name"),
        (None, "example.com.", None, "webauthn_rp_id", "not a domain name"),
        (None, "exa_mple.com", None, "webauthn_rp_id", "not a domain name"),
        (None, None, None, "webauthn_rp_id", "needs a relying party id"),
        (None, "example.com", ["https://evil.com"], "webauthn_origins", "not on 'example.com'"),
        (None, "example.com", ["https://notexample.com"], "webauthn_origins", "not on"),
        (None, "app.example.com", ["https://example.com"], "webauthn_origins", "not on"),
        ("https://app.example.com", "other.com", None, "public_url", "not on 'other.com'"),
        (None, "example.com", ["http://app.example.com"], "webauthn_origins", "not https"),
        ("http://app.example.com", None, None, "public_url", "not https"),
        (None, "example.com", ["https://example.com/"], "webauthn_origins", "not an origin"),
        (None, "example.com", ["https://example.com/login"], "webauthn_origins", "not an origin"),
        (None, "example.com", ["https://u@example.com"], "webauthn_origins", "not an origin"),
        (None, "example.com", ["https://example.com:99999"], "webauthn_origins", "not an origin"),
        (None, "example.com", ["ftp://example.com"], "webauthn_origins", "not an origin"),
        (None, "example.com", ["example.com"], "webauthn_origins", "not an origin"),
        (None, "example.com", [42], "webauthn_origins", "not an origin"),
        (None, "example.com", "https://example.com", "webauthn_origins", "non-empty list"),
        (None, "example.com", [], "webauthn_origins", "non-empty list"),
        (None, "example.com", ["https://bücher.example.com"], "webauthn_origins", "non-ASCII"),
    ],
)
def test_relying_parties_that_cannot_work_are_refused(
    public_url: str | None, rp_id: str | None, origins: Any, field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        relying_party.relying_party(public_url, rp_id, origins)
    assert exc.value.field == field
    assert problem in exc.value.problem


def test_settings_are_checked() -> None:
    made = relying_party.settings_for(
        public_url="https://app.example.com",
        rp_id=None,
        origins=None,
        rp_name="Shop",
        user_verification="required",
        resident_key="discouraged",
        attestation="direct",
    )
    assert made == WebAuthnSettings(
        "app.example.com", "Shop", ("https://app.example.com",), "required", "direct", "discouraged"
    )
    assert made.uv_required
    base = {"public_url": "https://app.example.com", "rp_id": None, "origins": None, "rp_name": "x"}
    for field, change in (
        ("webauthn_user_verification", {"user_verification": "always"}),
        ("webauthn_attestation", {"attestation": "enterprise"}),
        ("webauthn_resident_key", {"resident_key": True}),
        ("app_name", {"rp_name": " "}),
        ("timeout", {"timeout": CHALLENGE_TTL + 1}),
    ):
        with pytest.raises(ConfigError) as exc:
            relying_party.settings_for(**{**base, **change})
        assert exc.value.field == field
