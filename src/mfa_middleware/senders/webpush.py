"""Web Push (RFC 8030) with VAPID (RFC 8292) and an encrypted payload (RFC 8291), through
pywebpush: what reaches a sign-in's approvers. A message's `to` is the subscription as the
browser gave it (JSON) and its `text` the payload (JSON the service worker reads)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.senders.base import Message, Sender

PUSH_TTL = 120  # seconds a push service keeps an undelivered message: the approval's lifetime


class WebPushSender(Sender):
    channel = "push"

    def __init__(self, private_key: str, contact: str, timeout: float = 10.0) -> None:
        self.private_key = private_key  # the raw P-256 scalar, base64url (as pywebpush takes it)
        self.contact = contact  # "mailto:..." or "https://...": the push service may write
        self.timeout = timeout

    def send(self, message: Message) -> None:
        from pywebpush import WebPushException, webpush

        subscription = json.loads(message.to)
        endpoint = urlsplit(subscription.get("endpoint", ""))
        try:
            webpush(
                subscription,
                data=message.text,
                vapid_private_key=self.private_key,
                vapid_claims={
                    "sub": self.contact,
                    "aud": f"{endpoint.scheme}://{endpoint.netloc}",
                },
                ttl=PUSH_TTL,
                headers={"Urgency": "high"},
                timeout=self.timeout,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            raise DeliveryFailed("push", f"the push service answered {status}") from None
        except OSError as exc:
            raise DeliveryFailed(
                "push", f"the push service is unreachable: {type(exc).__name__}"
            ) from None

    async def asend(self, message: Message) -> None:
        import asyncio  # loaded by the running loop: not made part of `import mfa_middleware`

        await asyncio.to_thread(self.send, message)
