"""The Web Push double (tests/support/webpush.py) against the real sender, pywebpush: issue 24's
tests will trust it to accept what real push services accept, refuse what they refuse, and
decrypt a message as the subscribed browser would, so each of those is proved here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException, webpush, webpush_async

from tests.support.webpush import (
    MAX_BODY,
    VapidKeys,
    WebPushService,
    b64url,
    decrypt,
    raw_public,
    unb64url,
    webpush_service,
)

CONTACT = "mailto:security@example.com"
APPROVAL = {
    "title": "Approve sign-in?",
    "url": "http://127.0.0.1:8000/_mfa/approve/7Qe2Vd",
    "ip": "203.0.113.7",
}


@pytest.fixture
def push() -> Iterator[WebPushService]:
    with webpush_service() as service:
        yield service


@pytest.fixture
def vapid() -> VapidKeys:
    return VapidKeys.generate()


def send(push_to: dict[str, Any], vapid: VapidKeys, data: str = "{}", **kwargs: Any) -> Any:
    """pywebpush's one-call API, as the server will call it; a fresh claims dict each time,
    since pywebpush writes `aud` and `exp` into the dict it is given."""
    claims = kwargs.pop("vapid_claims", {"sub": CONTACT})
    return webpush(push_to, data, vapid_private_key=vapid.private, vapid_claims=claims, **kwargs)


def signed(keys: VapidKeys, claims: dict[str, Any], *, alg: str = "ES256", k: str = "") -> str:
    """A `vapid` Authorization header signed by hand, to send what py_vapid refuses to make."""
    header = b64url(json.dumps({"typ": "JWT", "alg": alg}).encode())
    body = b64url(json.dumps(claims).encode())
    der = keys.private_key.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    token = f"{header}.{body}.{b64url(r.to_bytes(32) + s.to_bytes(32))}"
    return f"vapid t={token}, k={k or keys.public}"


def refused(excinfo: pytest.ExceptionInfo[WebPushException]) -> tuple[int | None, str]:
    return excinfo.value.status_code, excinfo.value.response.json()["error"]


# --- delivery and decryption -----------------------------------------------------------------


def test_a_push_arrives_and_decrypts_to_exactly_what_was_sent(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    payload = json.dumps(APPROVAL)

    response = send(
        approver.to_json(), vapid, payload, ttl=120, headers={"Urgency": "high", "Topic": "signin"}
    )

    assert response.status_code == 201
    assert response.headers["Location"].startswith(f"{push.origin}/message/")
    [message] = push.received(approver)
    assert payload.encode() not in message.body  # it travelled encrypted
    assert message.headers["content-encoding"] == "aes128gcm"
    assert (message.ttl, message.urgency, message.topic) == (120, "high", "signin")
    assert message.vapid_claims["aud"] == push.origin
    assert message.vapid_claims["sub"] == CONTACT
    assert message.vapid_key == vapid.public
    assert approver.decrypt(message) == payload.encode()
    assert approver.read_json(message) == APPROVAL


def test_decrypt_reads_the_example_of_rfc_8291_appendix_a() -> None:
    """The published example, so the decryption is checked against the RFC itself and not
    only against the sender it is tested with (pywebpush's http_ece)."""
    ua = ec.derive_private_key(
        int.from_bytes(unb64url("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")), ec.SECP256R1()
    )
    body = unb64url(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
        "AmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSx"
        "sj_Qulcy4a-fN"
    )
    auth = unb64url("BTBZMqHH6r4Tts7J_aSIgg")

    assert b64url(raw_public(ua)) == (
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    )
    assert decrypt(body, private_key=ua, auth_secret=auth) == (
        b"When I grow up, I want to be a watermelon"
    )
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(ValueError, match="not encrypted for this subscription"):
        decrypt(tampered, private_key=ua, auth_secret=auth)


def test_only_the_subscribed_browser_can_read_a_message(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    other = push.subscribe(application_server_key=vapid.public)
    send(approver.to_json(), vapid, json.dumps(APPROVAL))
    [message] = push.received()

    with pytest.raises(ValueError, match="not encrypted for this subscription"):
        decrypt(message.body, private_key=other.private_key, auth_secret=approver.auth_secret)
    with pytest.raises(ValueError, match="not encrypted for this subscription"):
        decrypt(message.body, private_key=approver.private_key, auth_secret=other.auth_secret)
    with pytest.raises(ValueError, match="was pushed to"):
        other.decrypt(message)
    assert push.received(other) == []


def test_the_subscription_json_is_what_a_browser_posts(push: WebPushService) -> None:
    browser = push.subscribe()
    posted = json.loads(json.dumps(browser.to_json()))

    assert posted["endpoint"].startswith(f"{push.origin}/push/")
    assert posted["expirationTime"] is None
    assert "=" not in posted["keys"]["p256dh"] + posted["keys"]["auth"]  # unpadded base64url
    p256dh, auth = unb64url(posted["keys"]["p256dh"]), unb64url(posted["keys"]["auth"])
    assert (len(p256dh), p256dh[0], len(auth)) == (65, 0x04, 16)


@pytest.mark.anyio
async def test_the_async_sender_is_accepted_too(push: WebPushService, vapid: VapidKeys) -> None:
    """ASGI apps will send with webpush_async (aiohttp), not requests."""
    approver = push.subscribe(application_server_key=vapid.public)

    response = await webpush_async(
        approver.to_json(),
        json.dumps(APPROVAL),
        vapid_private_key=vapid.private,
        vapid_claims={"sub": CONTACT},
        ttl=60,
    )

    assert response.status == 201
    assert approver.read_json(push.wait_for(approver)) == APPROVAL


def test_wait_for_returns_a_push_sent_from_another_thread(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    sender = threading.Thread(target=send, args=(approver.to_json(), vapid, '{"n": 2}'))
    send(approver.to_json(), vapid, '{"n": 1}')
    sender.start()

    second = push.wait_for(approver, count=2)
    sender.join()

    assert approver.read_json(second) == {"n": 2}


def test_the_largest_payload_a_push_service_must_take_fits_and_one_more_octet_does_not(
    push: WebPushService, vapid: VapidKeys
) -> None:
    """RFC 8291 section 4: 4096 octets of body hold at most 3993 of plaintext."""
    approver = push.subscribe(application_server_key=vapid.public)

    send(approver.to_json(), vapid, "x" * 3993)
    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid, "x" * 3994)

    assert len(push.received(approver)[0].body) == MAX_BODY
    assert approver.decrypt(push.received(approver)[0]) == b"x" * 3993
    assert refused(excinfo) == (413, f"payload of 4097 octets, over {MAX_BODY} (RFC 8030 7.2)")


def test_the_legacy_aesgcm_encoding_is_refused(push: WebPushService, vapid: VapidKeys) -> None:
    approver = push.subscribe(application_server_key=vapid.public)

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid, "{}", content_encoding="aesgcm")

    assert refused(excinfo)[0] == 415
    assert push.received() == []


def test_decrypt_refuses_a_message_of_several_records(push: WebPushService) -> None:
    """RFC 8291 section 4: one record, so a sender that splits a message is caught here."""
    browser = push.subscribe()
    body = http_ece.encrypt(
        b"y" * 200,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=unb64url(browser.p256dh),
        auth_secret=browser.auth_secret,
        rs=100,
    )

    with pytest.raises(ValueError, match="more than one record"):
        decrypt(body, private_key=browser.private_key, auth_secret=browser.auth_secret)


# --- RFC 8030 headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "TTL header missing"),
        ({"TTL": "soon"}, "TTL header missing"),
        ({"TTL": "60", "Urgency": "urgent"}, "Urgency must be"),
        ({"TTL": "60", "Topic": "a topic with spaces"}, "Topic must be"),
        ({"TTL": "60", "Topic": "t" * 33}, "Topic must be"),
    ],
)
def test_malformed_delivery_headers_get_400(
    push: WebPushService, vapid: VapidKeys, headers: dict[str, str], reason: str
) -> None:
    browser = push.subscribe(application_server_key=vapid.public)
    claims = {"aud": push.origin, "exp": int(time.time()) + 600, "sub": CONTACT}

    response = httpx.post(
        browser.endpoint, headers={**headers, "Authorization": signed(vapid, claims)}
    )

    assert response.status_code == 400
    assert response.json()["error"].startswith(reason)
    assert push.received() == []


def test_an_empty_push_needs_no_content_encoding(push: WebPushService, vapid: VapidKeys) -> None:
    """A payload-less push is a plain wake-up (RFC 8030 section 5); issue 24 may use one."""
    browser = push.subscribe(application_server_key=vapid.public)
    claims = {"aud": push.origin, "exp": int(time.time()) + 600, "sub": CONTACT}

    response = httpx.post(
        browser.endpoint, headers={"TTL": "0", "Authorization": signed(vapid, claims)}
    )

    assert response.status_code == 201
    assert push.received(browser)[0].body == b""


# --- RFC 8292 VAPID --------------------------------------------------------------------------


def test_a_push_without_vapid_gets_401(push: WebPushService) -> None:
    browser = push.subscribe()

    response = httpx.post(browser.endpoint, headers={"TTL": "0"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "vapid"


def test_a_key_other_than_the_one_subscribed_with_is_refused(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), VapidKeys.generate(), "{}")

    assert refused(excinfo) == (
        403,
        "k is not the key this subscription was restricted to (RFC 8292 4.2)",
    )
    assert push.received() == []


def test_a_token_not_signed_by_k_is_refused(push: WebPushService, vapid: VapidKeys) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    claims = {"aud": push.origin, "exp": int(time.time()) + 600, "sub": CONTACT}
    forged = signed(VapidKeys.generate(), claims, k=vapid.public)

    response = WebPusher(approver.to_json()).send("{}", {"Authorization": forged}, ttl=60)

    assert response.status_code == 403
    assert response.json()["error"] == "JWT signature does not verify with k"


def test_a_token_for_another_push_service_is_refused(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid, vapid_claims={"sub": CONTACT, "aud": "http://127.0.0.1:9"})

    assert refused(excinfo)[0] == 403
    assert refused(excinfo)[1].startswith("aud 'http://127.0.0.1:9' is not this push service")


def test_pywebpush_keeps_the_first_aud_in_a_reused_claims_dict(vapid: VapidKeys) -> None:
    """A pitfall for issue 24: webpush() writes `aud` into the claims it is passed, so one dict
    shared across subscriptions at different push services fails from the second service on."""
    claims: dict[str, str | int] = {"sub": CONTACT}
    with webpush_service() as first, webpush_service() as second:
        a = first.subscribe(application_server_key=vapid.public)
        b = second.subscribe(application_server_key=vapid.public)
        webpush(a.to_json(), "{}", vapid_private_key=vapid.private, vapid_claims=claims)
        with pytest.raises(WebPushException) as excinfo:
            webpush(b.to_json(), "{}", vapid_private_key=vapid.private, vapid_claims=claims)

    assert claims["aud"] == first.origin
    assert refused(excinfo)[0] == 403
    assert refused(excinfo)[1].startswith(f"aud {first.origin!r} is not this push service")


def test_an_expired_token_is_refused(push: WebPushService, vapid: VapidKeys) -> None:
    """webpush() renews a past `exp` by itself, so the stale token is sent by hand."""
    approver = push.subscribe(application_server_key=vapid.public)
    claims = {"aud": push.origin, "exp": int(time.time()) - 60, "sub": CONTACT}
    headers = Vapid.from_string(vapid.private).sign(claims)

    response = WebPusher(approver.to_json()).send("{}", headers, ttl=60)

    assert response.status_code == 403
    assert response.json()["error"] == "token has expired (exp)"


def test_a_token_living_more_than_24_hours_is_refused(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    claims = {"sub": CONTACT, "exp": int(time.time()) + 25 * 3600}

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid, vapid_claims=claims)

    assert refused(excinfo) == (403, "exp more than 24 hours from the time of the request")


@pytest.mark.parametrize(
    ("alg", "claims", "reason"),
    [
        ("HS256", {"sub": CONTACT}, "JWT alg must be ES256"),
        ("ES256", {}, "sub must be a mailto: or https: contact"),
        ("ES256", {"sub": "security team"}, "sub must be a mailto: or https: contact"),
        ("ES256", {"sub": CONTACT, "exp": None}, "exp claim missing"),
    ],
)
def test_tokens_py_vapid_would_not_make_are_refused(
    push: WebPushService, vapid: VapidKeys, alg: str, claims: dict[str, Any], reason: str
) -> None:
    browser = push.subscribe(application_server_key=vapid.public)
    full = {"aud": push.origin, "exp": int(time.time()) + 600, **claims}

    response = httpx.post(
        browser.endpoint, headers={"TTL": "0", "Authorization": signed(vapid, full, alg=alg)}
    )

    assert response.status_code == 403
    assert response.json()["error"].startswith(reason)


def test_a_token_with_default_claims_from_py_vapid_is_accepted(
    push: WebPushService, vapid: VapidKeys
) -> None:
    """py_vapid's own default `exp` is exactly 24 hours: the limit must let it through."""
    approver = push.subscribe(application_server_key=vapid.public)
    headers = Vapid.from_string(vapid.private).sign({"aud": push.origin, "sub": CONTACT})

    response = WebPusher(approver.to_json()).send("{}", headers, ttl=60)

    assert response.status_code == 201


# --- expired subscriptions and failures on demand --------------------------------------------


@pytest.mark.parametrize("status", [410, 404])
def test_a_gone_subscription_raises_webpushexception_with_its_status(
    push: WebPushService, vapid: VapidKeys, status: int
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    push.expire(approver, status)

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid)

    assert refused(excinfo) == (status, "subscription expired or unsubscribed")


def test_an_unknown_subscription_is_404(push: WebPushService, vapid: VapidKeys) -> None:
    approver = push.subscribe(application_server_key=vapid.public).to_json()
    approver["endpoint"] = f"{push.origin}/push/never-issued"

    with pytest.raises(WebPushException) as excinfo:
        send(approver, vapid)

    assert refused(excinfo) == (404, "no such subscription")


@pytest.mark.parametrize(("status", "retry_after"), [(429, "30"), (503, "120"), (500, None)])
def test_failures_on_demand_reach_the_sender_then_stop(
    push: WebPushService, vapid: VapidKeys, status: int, retry_after: str | None
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    push.fail_next(status, retry_after=retry_after)

    with pytest.raises(WebPushException) as excinfo:
        send(approver.to_json(), vapid)
    send(approver.to_json(), vapid, '{"retried": true}')

    assert excinfo.value.status_code == status
    assert excinfo.value.retry_after == retry_after
    assert [approver.read_json(m) for m in push.received()] == [{"retried": True}]


@pytest.mark.anyio
async def test_the_async_sender_sees_a_gone_subscription_too(
    push: WebPushService, vapid: VapidKeys
) -> None:
    approver = push.subscribe(application_server_key=vapid.public)
    push.expire(approver)

    with pytest.raises(WebPushException) as excinfo:
        await webpush_async(
            approver.to_json(), "{}", vapid_private_key=vapid.private, vapid_claims={"sub": CONTACT}
        )

    assert excinfo.value.status_code == 410
