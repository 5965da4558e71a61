"""Helpers for testing an app protected by mfa_middleware (this package's own suite uses them).

    from mfa_middleware.testing import FixedClock, Outbox, OutageStore, totp_code

    clock = FixedClock()
    outbox = Outbox()
    config = MFAConfig(secret_keys=[...], store=OutageStore(), clock=clock,
                       email_sender=outbox, email_codes=True)
    ...                                   # log in, open /_mfa/enroll/email
    code = outbox.last_code()             # the code the user would read in the email
    clock.advance(30)                     # the next TOTP time step, without sleeping
    config.store.down = True              # every store call fails from now on: 503s

Nothing here is meant for production: the clock stands still, the outbox keeps every message
(codes included) in memory.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.errors import StoreError
from mfa_middleware.senders.base import Message, Sender
from mfa_middleware.stores.memory import MemoryStore

START = 1_700_000_000.0  # 14 Nov 2023 22:13:20 UTC: far from any time-step edge
CODE = re.compile(r"\b(\d{6,8})\b")
DIGESTS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


class FixedClock:
    """A clock that stands still until told to move; pass it as `MFAConfig(clock=...)`.
    `clock()` is the time in seconds since the epoch."""

    def __init__(self, now: float = START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, now: float) -> None:
        self.now = float(now)


def totp_code(
    secret: str, at: float | None = None, digits: int = 6, algorithm: str = "SHA1"
) -> str:
    """The code an authenticator app shows for the base32 `secret` at time `at` (now)."""
    import pyotp

    when = time.time() if at is None else at
    return str(pyotp.TOTP(secret, digits=digits, digest=DIGESTS[algorithm]).at(int(when)))


class Outbox(Sender):
    """A sender that keeps what it is asked to send, for one channel ("email" or "sms");
    with `fail=True` every send fails as an unreachable server would."""

    def __init__(self, channel: str = "email", *, fail: bool = False) -> None:
        self.channel = channel
        self.fail = fail
        self.messages: list[Message] = []

    def send(self, message: Message) -> None:
        from mfa_middleware.errors import DeliveryFailed

        if self.fail:
            raise DeliveryFailed(self.channel, "the test outbox refuses to send")
        self.messages.append(message)

    def to(self, destination: str) -> list[Message]:
        """The messages sent to one phone number or address, oldest first."""
        return [m for m in self.messages if m.to == destination]

    def last_code(self) -> str:
        """The code in the newest message that carries one (notices carry none)."""
        for message in reversed(self.messages):
            if match := CODE.search(message.text):
                return match.group(1)
        raise AssertionError("no message with a code was sent")


class OutageStore(MemoryStore):
    """A memory store that fails like an unreachable server while `down` is set: every
    operation, and the freshness check the verified-request path makes, raises StoreError."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls_while_down = 0

    def _check(self) -> None:
        if self.down:
            self.calls_while_down += 1
            raise StoreError("the store is unreachable (OutageStore.down)")

    def cache_generation(self) -> int | None:
        self._check()
        return super().cache_generation()

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        self._check()
        return super().get(key, cached=cached)

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        self._check()
        return super().get_many(keys, cached=cached)

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self._check()
        super().put(key, doc, ttl=ttl)

    def delete(self, key: Key) -> None:
        self._check()
        super().delete(key)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        self._check()
        return super().update(key, fn, ttl=ttl)

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        self._check()
        return super().scan(kind, part)


__all__ = ["START", "FixedClock", "OutageStore", "Outbox", "totp_code"]
