"""SMS through Twilio's Messages API with the official SDK (its async HTTP client under ASGI).

Authenticate with the account SID and auth token, or an API key SID and secret. Send from a
number (`from_`) or a Messaging Service (`messaging_service_sid`). Every vendor error, and any
wait longer than `timeout`, becomes `DeliveryFailed` with a loggable reason.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.senders.base import Message, Sender

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TwilioSMSSender(Sender):
    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        timeout: float = 5.0,
        api_base_url: str | None = None,
    ) -> None:
        if (from_ is None) == (messaging_service_sid is None):
            raise ValueError("give exactly one of from_ and messaging_service_sid")
        if auth_token is None and (api_key is None or api_secret is None):
            raise ValueError("give auth_token, or api_key and api_secret")
        if api_base_url is not None:
            parsed = urlparse(api_base_url)
            if parsed.scheme != "https" and parsed.hostname not in LOOPBACK:
                raise ValueError("the Twilio API must be reached over HTTPS")
        self.account_sid = account_sid
        self.username = api_key or account_sid
        self.password = api_secret if api_key else auth_token
        self.from_ = from_
        self.messaging_service_sid = messaging_service_sid
        self.timeout = timeout
        self.api_base_url = api_base_url
        self._sync_client: Any = None

    def _client(self, http: Any) -> Any:
        from twilio.rest import Client

        client = Client(self.username, self.password, self.account_sid, http_client=http)
        if self.api_base_url:
            client.api.base_url = self.api_base_url.rstrip("/")
        return client

    def _params(self, message: Message) -> dict[str, Any]:
        params: dict[str, Any] = {"to": message.to, "body": message.text}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_
        return params

    def send(self, message: Message) -> None:
        from twilio.http.http_client import TwilioHttpClient

        if self._sync_client is None:
            self._sync_client = self._client(TwilioHttpClient(timeout=self.timeout))
        try:
            self._sync_client.messages.create(**self._params(message))
        except Exception as exc:  # TwilioException, requests' timeouts and connection errors
            raise DeliveryFailed("sms", _reason(exc)) from exc

    async def asend(self, message: Message) -> None:
        """One aiohttp session per message, closed after it: sends are rare, and a session
        must not outlive the event loop that made it."""
        from twilio.http.async_http_client import AsyncTwilioHttpClient

        http = AsyncTwilioHttpClient(timeout=self.timeout)
        try:
            await asyncio.wait_for(
                self._client(http).messages.create_async(**self._params(message)),
                timeout=self.timeout + 1,
            )
        except Exception as exc:  # TwilioException, aiohttp's errors, timeouts
            raise DeliveryFailed("sms", _reason(exc)) from exc
        finally:
            await http.close()


def _reason(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    detail = f"HTTP {status}" if status else type(exc).__name__
    return f"{detail} (Twilio code {code})" if code else detail
