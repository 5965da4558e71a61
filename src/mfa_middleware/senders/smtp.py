"""Email through SMTP: aiosmtplib under ASGI, the stdlib's smtplib under WSGI and Django.

The message is built once (a plain-text and an HTML part). Connections use TLS: implicit TLS
(port 465) or STARTTLS; plain SMTP is refused unless `allow_insecure=True` (local development
against a test server). The server's certificate and host name are verified on both paths
against the system's CAs, or the CAs of `ssl_context` (e.g. `ssl.create_default_context(
cafile=...)` for a private CA); smtplib alone would not verify them. Every wait is bounded by
`timeout`.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.senders.base import Message, Sender


def _header_safe(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise DeliveryFailed("email", "a header value contains a line break")
    return value


class SMTPSender(Sender):
    channel = "email"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        from_addr: str,
        from_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: str = "starttls",  # "starttls", "implicit" or "none"
        allow_insecure: bool = False,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("starttls", "implicit", "none"):
            raise ValueError("tls must be 'starttls', 'implicit' or 'none'")
        if tls == "none" and not allow_insecure:
            raise ValueError(
                "plain SMTP sends codes in clear text: use TLS, or pass "
                "allow_insecure=True for a local test server"
            )
        self.host = host
        self.port = port
        self.from_addr = _header_safe(from_addr)
        self.from_name = from_name
        self.username = username
        self.password = password
        self.tls = tls
        self.timeout = timeout
        # one verifying context for both paths: smtplib's own default checks nothing
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        sender = formataddr((self.from_name, self.from_addr)) if self.from_name else self.from_addr
        email["From"] = sender
        email["To"] = _header_safe(message.to)
        email["Subject"] = _header_safe(message.subject)
        email["Message-ID"] = make_msgid()
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: Message) -> None:
        email = self.build(message)
        try:
            if self.tls == "implicit":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=self.ssl_context)
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed("email", f"{type(exc).__name__}: {exc}") from exc

    async def asend(self, message: Message) -> None:
        import aiosmtplib

        email = self.build(message)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.tls == "implicit",
                start_tls=self.tls == "starttls",
                timeout=self.timeout,
                tls_context=self.ssl_context,
            )
        except (OSError, aiosmtplib.SMTPException) as exc:
            raise DeliveryFailed("email", f"{type(exc).__name__}: {exc}") from exc
