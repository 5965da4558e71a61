"""Signed tokens (`core.tokens`): session claims, purpose separation, key rotation, CSRF, ids."""

from __future__ import annotations

import base64
import json
import secrets
import zlib
from typing import Any

import pytest
from itsdangerous.encoding import base64_decode

from mfa_middleware.core import tokens
from mfa_middleware.core.devices import DeviceCodec, DeviceCookie
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.tokens import (
    MAX_TOKEN_LENGTH,
    SessionClaims,
    TokenCodec,
    UserTagger,
    csrf_token,
    csrf_valid,
    new_id,
    session_codec,
)

OLD = "old-key-" + "o1Xq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs"
NEW = "new-key-" + "n7Gh2Jk9Pq4Rs6Tu1Vw3Xy5Za8Bc0De"
OTHER = "other-key-" + "x0Yz1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr"

USER_ID = "alice@example.com"


def make_claims(keyring: Keyring, **kw: Any) -> SessionClaims:
    base: dict[str, Any] = {
        "session_id": new_id(),
        "user_tag": UserTagger(keyring)(USER_ID),
        "login_at": 1_700_000_000,
        "verified_at": 1_700_000_010,
        "active_at": 1_700_000_020,
        "epoch": 3,
        "global_epoch": 7,
        "method": "totp",
    }
    base.update(kw)
    return SessionClaims(**base)


def payload_of(token: str) -> bytes:
    """The decoded (unsigned) payload of an itsdangerous URLSafeSerializer token."""
    payload, _, _sig = token.rpartition(".")
    compressed = payload.startswith(".")
    raw = base64_decode(payload.lstrip("."))
    return zlib.decompress(raw) if compressed else raw


def flip(token: str, index: int) -> str:
    ch = token[index]
    return token[:index] + ("A" if ch != "A" else "B") + token[index + 1 :]


@pytest.fixture
def ring() -> Keyring:
    return Keyring([NEW])


def test_session_claims_round_trip(ring: Keyring) -> None:
    claims = make_claims(ring)
    codec = session_codec(ring)
    token = codec.encode(claims)
    assert isinstance(token, str)
    assert session_codec(ring).decode(token) == claims  # a fresh codec: no cache involved
    assert codec.decode(token) == claims


def test_unverified_claims_round_trip(ring: Keyring) -> None:
    claims = make_claims(ring, verified_at=0, method="")
    decoded = session_codec(ring).decode(session_codec(ring).encode(claims))
    assert decoded == claims
    assert decoded is not None
    assert decoded.verified is False
    assert make_claims(ring).verified is True


def test_tampered_payload_is_refused(ring: Keyring) -> None:
    token = session_codec(ring).encode(make_claims(ring))
    dot = token.rindex(".")
    for i in (0, dot // 2, dot - 2):
        assert session_codec(ring).decode(flip(token, i)) is None


def test_tampered_signature_is_refused(ring: Keyring) -> None:
    token = session_codec(ring).encode(make_claims(ring))
    dot = token.rindex(".")
    for i in (dot + 1, (dot + len(token)) // 2, len(token) - 2):
        assert session_codec(ring).decode(flip(token, i)) is None


def test_tampered_token_refused_even_after_the_real_one_was_cached(ring: Keyring) -> None:
    codec = session_codec(ring)
    token = codec.encode(make_claims(ring))
    assert codec.decode(token) is not None
    assert codec.decode(flip(token, 3)) is None


def test_truncated_token_is_refused(ring: Keyring) -> None:
    token = session_codec(ring).encode(make_claims(ring))
    codec = session_codec(ring)
    for cut in (1, 5, len(token) // 2, len(token) - 1):
        assert codec.decode(token[:cut]) is None
    assert codec.decode(token.rpartition(".")[0]) is None  # payload without signature


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        ".",
        "..",
        "garbage",
        "a.b",
        "a.b.c",
        "!!!.###",
        "\x00\x00",
        "\u00fc\u00f1\u00ee.\u00e7\u00f8d\u00e9",
        "x" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_garbage_is_none_without_exception(ring: Keyring, garbage: str | None) -> None:
    assert session_codec(ring).decode(garbage) is None


@pytest.mark.checklist("TOTP-10")
def test_overlong_token_refused_even_if_validly_signed(ring: Keyring) -> None:
    claims = make_claims(ring, method=secrets.token_hex(MAX_TOKEN_LENGTH))  # incompressible
    token = session_codec(ring).encode(claims)
    assert len(token) > MAX_TOKEN_LENGTH
    assert session_codec(ring).decode(token) is None


@pytest.mark.checklist("TD-07")
def test_token_for_another_purpose_is_refused(ring: Keyring) -> None:
    claims = make_claims(ring)
    # Same dump/load, same keys, another salt: e.g. a device cookie replayed as a session.
    from mfa_middleware.core import tokens

    device = TokenCodec(ring, "mfa.device.v1", tokens._dump_claims, tokens._load_claims)
    token = device.encode(claims)
    assert device.decode(token) == claims
    assert session_codec(ring).decode(token) is None
    assert device.decode(session_codec(ring).encode(claims)) is None


@pytest.mark.checklist("TD-07", "TD-09")
def test_token_signed_with_another_key_is_refused(ring: Keyring) -> None:
    token = session_codec(Keyring([OTHER])).encode(make_claims(ring))
    assert session_codec(ring).decode(token) is None


@pytest.mark.parametrize(
    "payload",
    [
        None,
        5,
        "string",
        {"a": 1},
        [],
        ["sid", "tag", 1, 2, 3, 4, 5, "m"],  # 8 fields: the login tag is missing
        ["sid", "tag", 1, 2, 3, 4, 5, "m", "", "extra"],
        [1, "tag", 1, 2, 3, 4, 5, "m", ""],  # session id not a str
        ["sid", "tag", "1", 2, 3, 4, 5, "m", ""],  # time as a string
        ["sid", "tag", 1.5, 2, 3, 4, 5, "m", ""],  # float time
        ["sid", "tag", True, 2, 3, 4, 5, "m", ""],  # bool is not an int here
        ["sid", "tag", 1, 2, 3, 4, None, "m", ""],
        ["sid", "tag", 1, 2, 3, 4, 5, None, ""],
        ["sid", "tag", 1, 2, 3, 4, 5, "m", 7],  # login tag not a str
    ],
)
def test_validly_signed_but_malformed_payload_is_none(ring: Keyring, payload: Any) -> None:
    raw = TokenCodec(ring, "mfa.session.v1", lambda v: v, lambda v: v)
    token = raw.encode(payload)
    assert session_codec(ring).decode(token) is None


@pytest.mark.checklist("TD-09")
def test_rotation_old_tokens_decode_under_old_and_new() -> None:
    old_ring = Keyring([OLD])
    claims = make_claims(old_ring)
    token = session_codec(old_ring).encode(claims)
    assert session_codec(Keyring([OLD, NEW])).decode(token) == claims
    # Once the old key is dropped, its tokens die.
    assert session_codec(Keyring([NEW])).decode(token) is None


@pytest.mark.checklist("TD-09")
def test_rotation_new_tokens_are_signed_with_the_newest_key() -> None:
    rotated = Keyring([OLD, NEW])
    claims = make_claims(rotated)
    token = session_codec(rotated).encode(claims)
    assert session_codec(Keyring([OLD])).decode(token) is None
    assert session_codec(Keyring([NEW])).decode(token) == claims


@pytest.mark.checklist("SES-05")
def test_payload_holds_no_user_id(ring: Keyring) -> None:
    claims = make_claims(ring)
    token = session_codec(ring).encode(claims)
    payload = payload_of(token)
    decoded = json.loads(payload)
    assert decoded[0] == claims.session_id
    assert decoded[1] == claims.user_tag
    for needle in (USER_ID, "alice", "example.com"):
        assert needle not in payload.decode()
        assert needle not in token
    assert base64.urlsafe_b64encode(USER_ID.encode()).decode()[:8] not in token


def test_user_tag_is_a_keyed_hash(ring: Keyring) -> None:
    tag = UserTagger(ring)(USER_ID)
    assert tag == UserTagger(ring)(USER_ID)  # deterministic across instances
    assert tag != USER_ID
    assert "alice" not in tag
    assert len(tag) == 22
    assert UserTagger(ring)("bob@example.com") != tag
    assert UserTagger(Keyring([OTHER]))(USER_ID) != tag  # keyed: another key, another tag
    # Not the MAC of any other purpose (e.g. a CSRF token for a session named like the user).
    assert not csrf_token(ring, USER_ID).startswith(tag)


def test_csrf_token_is_bound_to_one_session(ring: Keyring) -> None:
    sid_a, sid_b = new_id(), new_id()
    token = csrf_token(ring, sid_a)
    assert csrf_valid(ring, sid_a, token) is True
    assert csrf_valid(ring, sid_b, token) is False
    assert csrf_token(ring, sid_b) != token
    assert csrf_valid(Keyring([OTHER]), sid_a, token) is False
    assert csrf_valid(ring, sid_a, "") is False
    assert csrf_valid(ring, sid_a, token[:-1]) is False
    assert csrf_valid(ring, sid_a, token + "x") is False
    assert csrf_valid(ring, sid_a, "x" * 100_000) is False


def test_csrf_token_is_not_a_session_token_mac(ring: Keyring) -> None:
    sid = new_id()
    assert csrf_token(ring, sid) != ring.mac("mfa.user-tag.v1", sid)
    assert csrf_valid(ring, sid, ring.mac("mfa.user-tag.v1", sid)) is False


def test_csrf_token_survives_rotation() -> None:
    sid = new_id()
    token = csrf_token(Keyring([OLD]), sid)
    assert csrf_valid(Keyring([OLD, NEW]), sid, token) is True
    assert csrf_valid(Keyring([NEW]), sid, token) is False


@pytest.mark.checklist("SES-04")
def test_new_id_entropy() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    for value in ids[:100]:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        assert len(raw) >= 16
        assert value.isascii()
        assert all(ch.isalnum() or ch in "-_" for ch in value)


@pytest.mark.checklist("TD-05")
def test_a_device_cookie_past_its_max_age_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature's own timestamp is checked on every read (itsdangerous checks the age
    only when `max_age` is passed): a cookie kept past its time by a browser, or forged to
    live longer, is no device."""
    import itsdangerous.timed

    codec = DeviceCodec(Keyring([NEW]), max_age=30 * 86400)
    signed_at = 1_700_000_000
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: signed_at)
    token = codec.encode(DeviceCookie("device-1", "tag"))
    for age, valid in ((0, True), (30 * 86400, True), (30 * 86400 + 1, False), (10**8, False)):
        monkeypatch.setattr(itsdangerous.timed.time, "time", lambda age=age: signed_at + age)
        assert (codec.decode(token) is not None) is valid, age


LIMIT = 8  # a small CACHE_LIMIT, so a test can overfill the caches


def test_token_cache_is_bounded_and_keeps_the_latest_tokens(
    ring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "CACHE_LIMIT", LIMIT)
    loaded: list[Any] = []

    def load(raw: Any) -> str:
        loaded.append(raw)
        return str(raw)

    codec = TokenCodec(ring, "test.cache.v1", str, load)
    values = [f"value-{i}" for i in range(6 * LIMIT + 2)]
    made = [codec.encode(v) for v in values]
    assert [codec.decode(t) for t in made] == values
    assert len(loaded) == len(made)
    assert len(codec._cache) <= 2 * LIMIT  # bounded, although every token was new
    # the latest LIMIT tokens are all still cached (clearing when full would keep only 2 here)
    assert [codec.decode(t) for t in made[-LIMIT:]] == values[-LIMIT:]
    assert len(loaded) == len(made)  # not one of them was verified and loaded again
    assert codec.decode(made[0]) == "value-0"  # an evicted token still decodes, verified again
    assert len(loaded) == len(made) + 1


class CountingKeyring(Keyring):
    def __init__(self, secret_keys: list[str]) -> None:
        super().__init__(secret_keys)
        self.computed: list[str] = []

    def macs(self, purpose: str, message: str, *, length: int | None = None) -> list[str]:
        self.computed.append(message)
        return super().macs(purpose, message, length=length)


def test_user_tag_cache_is_bounded_and_keeps_the_latest_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "CACHE_LIMIT", LIMIT)
    ring = CountingKeyring([NEW])
    tagger = UserTagger(ring)
    users = [f"user-{i}" for i in range(6 * LIMIT + 2)]
    tags = [tagger(u) for u in users]
    assert ring.computed == users
    assert len(tagger._cache) <= 2 * LIMIT
    assert [tagger(u) for u in users[-LIMIT:]] == tags[-LIMIT:]
    assert ring.computed == users  # the latest LIMIT users' tags came from the cache
    assert tagger(users[0]) == tags[0]  # an evicted one is computed again, the same
    assert ring.computed == [*users, users[0]]


def test_no_id_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mfa-admin revoke-device bob -vEBB…` read the id as an option and failed (one id in 64
    began with "-"). Ids are drawn again until they do not."""
    from mfa_middleware.core import authenticators, tokens

    drawn = iter(["-first", "-second", "third"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda n: next(drawn))
    assert tokens.new_id() == "third"
    drawn = iter(["-a", "b"])
    assert authenticators.new_id() == "b"
