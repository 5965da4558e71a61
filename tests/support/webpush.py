"""A local Web Push service for tests. Chromium cannot reach a real push service here, so the
server's pushes (pywebpush) go to this double instead. It refuses what a strict push service
refuses (RFC 8030 delivery, RFC 8292 VAPID) and keeps what it accepts, and a `Subscription`
holds the keys a browser would, so a test decrypts a message (RFC 8291, aes128gcm of RFC 8188)
exactly as the subscribed browser would and reads what the server meant it to see.

    with webpush_service() as push:
        approver = push.subscribe(application_server_key=vapid_public_key)
        ...  # the app stores approver.to_json() and later pushes to it
        message = push.wait_for(approver)
        assert approver.read_json(message)["url"] == ...

Plain http on loopback: pywebpush posts to whatever endpoint it is given, and derives the VAPID
`aud` from the endpoint's scheme and host (py_vapid accepts http, but not an IPv6 literal, so
the double serves on 127.0.0.1).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.support.redis_servers import free_port

# RFC 8292 section 2: "An 'exp' claim MUST NOT be more than 24 hours from the time of the request".
VAPID_MAX_LIFETIME = 24 * 3600
# RFC 8030 section 7.2: a push service must accept bodies up to 4096 octets and may refuse more;
# real ones do, so a payload that only fits a lenient double is a bug.
MAX_BODY = 4096
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 section 5.4
CONTACT = re.compile(r"(mailto:\S+@\S+|https://\S+)")  # RFC 8292 section 2.1
PUSH_PATH = re.compile(r"/push/([A-Za-z0-9_-]+)")


def b64url(data: bytes) -> str:
    """Unpadded base64url, the form browsers give keys in (PushSubscription.toJSON())."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Accepts padded and unpadded input, since senders differ."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-octet uncompressed point, the only key form Web Push uses on the wire."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass(frozen=True)
class VapidKeys:
    """An application server's VAPID key pair, in the forms the two ends are given: pywebpush
    takes the raw private scalar as base64url, the browser's subscribe() the public point."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def private(self) -> str:
        return b64url(self.private_key.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def public(self) -> str:
        return b64url(raw_public(self.private_key))


# --- the browser's side: a subscription and RFC 8291 decryption ---------------------------------


def decrypt(body: bytes, *, private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """The user agent's half of RFC 8291: checks every rule a browser relies on (one record,
    the sender's key as a 65-octet keyid, the final-record delimiter) so a sender that breaks
    one fails here, as it would in a browser. Raises ValueError with the rule broken."""
    if len(body) < 21:
        raise ValueError("shorter than the aes128gcm header (RFC 8188 section 2.1)")
    salt, rs, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if id_len != 65 or body[21] != 0x04:
        raise ValueError("keyid is not the sender's uncompressed P-256 key (RFC 8291 section 4)")
    sender_raw, record = body[21:86], body[86:]
    if rs < 18:
        raise ValueError("record size below 18 (RFC 8188 section 2)")
    if len(record) > rs:
        raise ValueError("more than one record (RFC 8291 section 4)")
    try:
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_raw)
    except ValueError as exc:
        raise ValueError("the sender's key is not on P-256 (RFC 8291 section 7)") from exc
    ecdh_secret = private_key.exchange(ec.ECDH(), sender)
    # RFC 8291 section 3.4: the auth secret and both public keys bind the input keying material.
    key_info = b"WebPush: info\x00" + raw_public(private_key) + sender_raw
    ikm = HKDF(hashes.SHA256(), 32, salt=auth_secret, info=key_info).derive(ecdh_secret)
    cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    try:
        padded = AESGCM(cek).decrypt(nonce, record, None)
    except InvalidTag as exc:
        raise ValueError("not encrypted for this subscription (authentication failed)") from exc
    content = padded.rstrip(b"\x00")
    if not content or content[-1] != 0x02:
        raise ValueError("no final-record delimiter (RFC 8188 section 2)")
    return content[:-1]


@dataclass
class Subscription:
    """What PushManager.subscribe() makes in a browser: an endpoint at the push service, a
    P-256 key pair and a 16-octet auth secret (RFC 8291 section 3.2), optionally restricted to
    one application server's VAPID key (RFC 8292 section 4)."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    application_server_key: bytes | None = None

    @property
    def id(self) -> str:
        return self.endpoint.rsplit("/", 1)[1]

    @property
    def p256dh(self) -> str:
        return b64url(raw_public(self.private_key))

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def to_json(self) -> dict[str, Any]:
        """What the page posts to the server: PushSubscription.toJSON()'s shape."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }

    def decrypt(self, message: PushMessage) -> bytes:
        if message.subscription_id != self.id:
            raise ValueError(f"message was pushed to {message.subscription_id}, not {self.id}")
        return decrypt(message.body, private_key=self.private_key, auth_secret=self.auth_secret)

    def read_json(self, message: PushMessage) -> Any:
        """The payload as the service worker's `event.data.json()` would read it."""
        return json.loads(self.decrypt(message))


# --- the push service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PushMessage:
    """One accepted push: what the service stored, as it arrived."""

    subscription_id: str
    body: bytes
    headers: Mapping[str, str]  # names in lower case
    ttl: int
    urgency: str
    topic: str | None
    vapid_claims: Mapping[str, Any]
    vapid_key: str  # the `k` parameter, base64url


@dataclass(frozen=True)
class Refusal:
    """A request the service refused, and why: tests assert the reason, not only the status."""

    status: int
    reason: str
    path: str


class Refused(Exception):
    """Raised by the checks and turned into the error response, so each check is one line."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, dict(headers or {})


@dataclass
class WebPushService:
    """The double's state. Every method may be called while the server thread is answering."""

    port: int
    messages: list[PushMessage] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    _subscriptions: dict[str, Subscription] = field(default_factory=dict)
    _gone: dict[str, int] = field(default_factory=dict)
    _failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        """What a VAPID token's `aud` must be (RFC 8292 section 2)."""
        return f"http://127.0.0.1:{self.port}"

    def subscribe(self, application_server_key: str | bytes | None = None) -> Subscription:
        """A new subscription, as a browser's subscribe() gets one. With a key (base64url or
        raw), only pushes signed with that VAPID key are accepted, as browsers ask today."""
        key = application_server_key
        raw = unb64url(key) if isinstance(key, str) else key
        if raw is not None:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # must be a key
        sub = Subscription(
            f"{self.origin}/push/{secrets.token_urlsafe(24)}", application_server_key=raw
        )
        with self._lock:
            self._subscriptions[sub.id] = sub
        return sub

    def expire(self, subscription: Subscription, status: int = 410) -> None:
        """The browser unsubscribed or the service dropped it: pushes now get `status` (410
        Gone, or 404 as RFC 8030 section 7.3 and some services answer)."""
        with self._lock:
            self._gone[subscription.id] = status

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` pushes get `status` (429, 500, 503...) whatever they carry."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._failures.extend([(status, headers)] * times)

    def received(self, subscription: Subscription | None = None) -> list[PushMessage]:
        """Accepted messages, oldest first; only those to `subscription` if given."""
        with self._lock:
            return [
                m
                for m in self.messages
                if subscription is None or m.subscription_id == subscription.id
            ]

    def wait_for(
        self, subscription: Subscription, count: int = 1, timeout: float = 5.0
    ) -> PushMessage:
        """The `count`th message to `subscription`, waiting for a sender in another thread or
        process; fails with what was refused meanwhile, the likely reason it never came."""
        deadline = time.monotonic() + timeout
        while len(got := self.received(subscription)) < count:
            assert time.monotonic() < deadline, (
                f"{len(got)} of {count} push messages arrived; refused: {self.refusals}"
            )
            time.sleep(0.01)
        return got[count - 1]

    # --- what the server thread calls ---

    def deliver(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        """One POST, answered as RFC 8030 section 5 says; headers' names in lower case."""
        try:
            message = self._check(path, headers, body)
        except Refused as refused:
            with self._lock:
                self.refusals.append(Refusal(refused.status, refused.reason, path))
            raise
        with self._lock:
            self.messages.append(message)
        return 201, {
            "Location": f"{self.origin}/message/{secrets.token_urlsafe(16)}",
            "TTL": str(message.ttl),
        }

    def _check(self, path: str, headers: Mapping[str, str], body: bytes) -> PushMessage:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            raise Refused(failure[0], "failure asked for by the test", failure[1])
        match = PUSH_PATH.fullmatch(path)
        with self._lock:
            sub = self._subscriptions.get(match.group(1)) if match else None
            gone = self._gone.get(sub.id) if sub else None
        if sub is None:
            raise Refused(404, "no such subscription")
        if gone:
            raise Refused(gone, "subscription expired or unsubscribed")
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            raise Refused(400, "TTL header missing or not a number of seconds (RFC 8030 5.2)")
        urgency = headers.get("urgency", "normal")
        if urgency not in URGENCIES:
            raise Refused(400, f"Urgency must be one of {', '.join(URGENCIES)} (RFC 8030 5.3)")
        topic = headers.get("topic")
        if topic is not None and not TOPIC.fullmatch(topic):
            raise Refused(400, "Topic must be 1-32 base64url characters (RFC 8030 5.4)")
        claims, key = self._vapid(headers.get("authorization"), sub)
        if len(body) > MAX_BODY:
            raise Refused(413, f"payload of {len(body)} octets, over {MAX_BODY} (RFC 8030 7.2)")
        if body and headers.get("content-encoding") != "aes128gcm":
            raise Refused(415, "Content-Encoding must be aes128gcm (RFC 8291 section 4)")
        return PushMessage(sub.id, body, dict(headers), int(ttl), urgency, topic, claims, key)

    def _vapid(self, authorization: str | None, sub: Subscription) -> tuple[dict[str, Any], str]:
        """RFC 8292: `vapid t=<JWT>, k=<key>`, an ES256 JWT over `k` whose claims name this
        service (`aud`), expire within 24 hours (`exp`) and give a contact (`sub`)."""
        scheme, _, params = (authorization or "").partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(
                401, "no vapid authorization (RFC 8292 section 3)", {"WWW-Authenticate": "vapid"}
            )
        values = {}
        for part in params.split(","):
            name, _, value = part.strip().partition("=")
            values[name.lower()] = value  # auth-param names are case-insensitive (RFC 9110)
        token, key = values.get("t", ""), values.get("k", "")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(unb64url(header_b64))
            claims = json.loads(unb64url(claims_b64))
            signature = unb64url(signature_b64)
        except ValueError as exc:  # binascii.Error and JSONDecodeError are ValueErrors
            raise Refused(403, f"malformed vapid credentials: {exc}") from exc
        if header.get("alg") != "ES256":
            raise Refused(403, "JWT alg must be ES256 (RFC 8292 section 2)")
        if len(signature) != 64:
            raise Refused(403, "ES256 signature must be 64 octets, r || s (RFC 7518 3.4)")
        try:
            public.verify(
                encode_dss_signature(
                    int.from_bytes(signature[:32]), int.from_bytes(signature[32:])
                ),
                f"{header_b64}.{claims_b64}".encode(),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature as exc:
            raise Refused(403, "JWT signature does not verify with k") from exc
        if not isinstance(claims, dict):
            raise Refused(403, "JWT claims are not an object")
        if claims.get("aud") != self.origin:
            raise Refused(403, f"aud {claims.get('aud')!r} is not this push service, {self.origin}")
        exp, now = claims.get("exp"), time.time()
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Refused(403, "exp claim missing")
        if exp <= now:
            raise Refused(403, "token has expired (exp)")
        if exp > now + VAPID_MAX_LIFETIME:
            raise Refused(403, "exp more than 24 hours from the time of the request")
        # RFC 8292 makes `sub` optional; the double insists, so the server always sends one.
        if not isinstance(claims.get("sub"), str) or not CONTACT.fullmatch(claims["sub"]):
            raise Refused(403, "sub must be a mailto: or https: contact (RFC 8292 2.1)")
        if sub.application_server_key is not None and unb64url(key) != sub.application_server_key:
            raise Refused(
                403, "k is not the key this subscription was restricted to (RFC 8292 4.2)"
            )
        return claims, key


@contextmanager
def webpush_service() -> Iterator[WebPushService]:
    """Serves the double on a free loopback port for the `with` block."""
    service = WebPushService(free_port())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = self.headers.get("content-length")
            if length is None or not length.isdigit():
                self._reply(411, {"error": "Content-Length required"}, {})
                return
            body = self.rfile.read(int(length))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                status, extra = service.deliver(self.path, headers, body)
            except Refused as refused:
                self._reply(refused.status, {"error": refused.reason}, refused.headers)
                return
            self._reply(status, None, extra)

        def _reply(
            self, status: int, payload: dict[str, Any] | None, extra: Mapping[str, str]
        ) -> None:
            data = json.dumps(payload).encode() if payload else b""
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", service.port), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
