"""Routes a message to the sender configured for its channel."""

from __future__ import annotations

from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.senders.base import Message, Sender


class Delivery:
    def __init__(
        self, sms: Sender | None = None, email: Sender | None = None, push: Sender | None = None
    ) -> None:
        self.senders = {"sms": sms, "email": email, "push": push}

    def channels(self) -> list[str]:
        return [channel for channel, sender in self.senders.items() if sender is not None]

    def _sender(self, message: Message) -> Sender:
        sender = self.senders.get(message.channel)
        if sender is None:
            raise DeliveryFailed(message.channel, "no sender is configured for this channel")
        return sender

    def send(self, message: Message) -> None:
        self._sender(message).send(message)

    async def asend(self, message: Message) -> None:
        await self._sender(message).asend(message)
