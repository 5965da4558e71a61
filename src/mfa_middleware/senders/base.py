"""The sender contract: deliver one message, sync or async, or raise `DeliveryFailed`.

A sender never logs a message body (it holds a code); `DeliveryFailed.reason` is written for
logs and must not contain it either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    channel: str  # "sms" or "email"
    to: str  # E.164 number or an email address
    subject: str
    text: str
    html: str | None = None


class Sender(ABC):
    channel: str

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver or raise DeliveryFailed (used by WSGI and Django)."""

    async def asend(self, message: Message) -> None:
        """Deliver or raise DeliveryFailed (used by ASGI); defaults to the sync twin."""
        self.send(message)
