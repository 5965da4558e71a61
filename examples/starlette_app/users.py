"""Demo accounts with salted scrypt password hashes, as a real app would keep them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoUser:
    username: str
    email: str
    password_hash: str
    groups: tuple[str, ...] = ()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    _, salt_hex, digest_hex = stored.split("$")
    candidate = hash_password(password, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(candidate, digest_hex)


DEMO_PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

USERS: dict[str, DemoUser] = {
    "alice": DemoUser(
        "alice", "alice@example.com", hash_password(DEMO_PASSWORDS["alice"]), ("staff",)
    ),
    "bob": DemoUser("bob", "bob@example.com", hash_password(DEMO_PASSWORDS["bob"])),
    # support staff: the helpdesk tier of the 2FA admin pages (one user at a time)
    "carol": DemoUser(
        "carol", "carol@example.com", hash_password(DEMO_PASSWORDS["carol"]), ("helpdesk",)
    ),
}


# API tokens, kept only as SHA-256 digests (they are long and random, so no salt is needed);
# a request with `Authorization: Bearer <token>` is that user's API call (auth_method "token").
DEMO_API_TOKENS = {"bob": "bob-api-token-7Jq2Lx9Vw4Rz8Nc3"}
API_TOKENS = {hashlib.sha256(t.encode()).hexdigest(): u for u, t in DEMO_API_TOKENS.items()}


def user_for_token(token: str) -> DemoUser | None:
    username = API_TOKENS.get(hashlib.sha256(token.encode()).hexdigest())
    return None if username is None else USERS[username]


def authenticate(username: str, password: str) -> DemoUser | None:
    user = USERS.get(username)
    if user is None:
        check_password(password, USERS["alice"].password_hash)  # same time for unknown names
        return None
    return user if check_password(password, user.password_hash) else None
