"""A software authenticator for WebAuthn tests without a browser.

It answers registration and authentication as a browser with an authenticator would
(`credential.toJSON()`), signing whatever client data a test wants: another origin, another
relying party, a lower sign counter, no user verification. ES256 keys by default (what most
security keys use); Ed25519 too, e.g. with the private key Chromium's virtual authenticator
exported (`WebAuthn.getCredentials`, in tests/fixtures/webauthn/authenticator-credentials.json).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes(range(1, 17))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_of(options_json: str) -> str:
    """The challenge the server put in its options (base64url), as a browser reads it."""
    return str(json.loads(options_json)["challenge"])


class SoftAuthenticator:
    def __init__(
        self,
        *,
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = None,
        credential_id: bytes | None = None,
        user_handle: bytes | None = None,
        sign_count: int = 0,
        backup_eligible: bool = False,
        backup_state: bool = False,
        transports: tuple[str, ...] = ("usb",),
        attachment: str = "cross-platform",
    ) -> None:
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.credential_id = credential_id or secrets.token_bytes(16)
        self.user_handle = user_handle
        self.sign_count = sign_count
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.transports = transports
        self.attachment = attachment

    @classmethod
    def from_chromium(cls, exported: dict[str, Any]) -> SoftAuthenticator:
        """The credential `WebAuthn.getCredentials` exported (standard base64, PKCS#8 key)."""
        key = serialization.load_der_private_key(base64.b64decode(exported["privateKey"]), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        return cls(
            key=key,
            credential_id=base64.b64decode(exported["credentialId"]),
            user_handle=base64.b64decode(exported["userHandle"]),
            sign_count=exported["signCount"],
            transports=("internal",),
            attachment="platform",
        )

    def cose_key(self) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            raw = self.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})
        numbers = self.key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})

    def _flags(self, up: bool, uv: bool) -> int:
        flags = (UP if up else 0) | (UV if uv else 0)
        flags |= BE if self.backup_eligible else 0
        return flags | (BS if self.backup_state else 0)

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str, **extra: Any) -> bytes:
        fields = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        return json.dumps({**fields, **extra}).encode()

    def register(
        self,
        challenge: str,
        origin: str,
        rp_id: str,
        *,
        up: bool = True,
        uv: bool = True,
        kind: str = "webauthn.create",
    ) -> dict[str, Any]:
        """What `navigator.credentials.create()` returns, attestation "none"."""
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(up, uv) | AT])
            + self.sign_count.to_bytes(4, "big")
            + AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u(self.client_data(kind, challenge, origin)),
                "attestationObject": b64u(attestation),
                "transports": list(self.transports),
            },
        }

    def assertion(
        self,
        challenge: str,
        origin: str,
        rp_id: str,
        *,
        count: int | None = None,
        up: bool = True,
        uv: bool = True,
        user_handle: bytes | None = None,
        kind: str = "webauthn.get",
        good_signature: bool = True,
        **client: Any,
    ) -> dict[str, Any]:
        """What `navigator.credentials.get()` returns; the counter moves on by one unless
        `count` is given."""
        if count is None:
            self.sign_count += 1
            count = self.sign_count
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(up, uv)])
            + count.to_bytes(4, "big")
        )
        client_data = self.client_data(kind, challenge, origin, **client)
        signed = auth_data + hashlib.sha256(client_data).digest()
        if not good_signature:
            signed += b"\0"
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            signature = self.key.sign(signed)
        else:
            signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        handle = user_handle if user_handle is not None else self.user_handle
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u(client_data),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(signature),
                "userHandle": None if handle is None else b64u(handle),
            },
        }
