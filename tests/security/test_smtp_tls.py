"""Both SMTP paths verify the server's certificate (issue 14, point 15; OOB-12): smtplib's
`starttls()` without a context checks nothing. Against a real aiosmtpd with STARTTLS and a
self-signed certificate: refused unless its CA is configured."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.senders.base import Message
from mfa_middleware.senders.smtp import SMTPSender
from mfa_middleware.senders.twilio import TwilioSMSSender
from tests.support.mail_and_sms import Mailbox, _Collect
from tests.support.redis_servers import free_port

MESSAGE = Message("email", "alice@example.com", "Your code", "123456 is your code")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (no CA anyone trusts)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def starttls_server(tmp_path: Path) -> Iterator[tuple[Mailbox, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = _Collect()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield Mailbox("127.0.0.1", port, handler), cert
    finally:
        controller.stop()


def sender(box: Mailbox, context: ssl.SSLContext | None = None) -> SMTPSender:
    return SMTPSender(
        box.host, box.port, from_addr="mfa@example.com", timeout=3, ssl_context=context
    )


@pytest.mark.checklist("OOB-12")
def test_sync_path_refuses_an_unverified_certificate(
    starttls_server: tuple[Mailbox, Path],
) -> None:
    box, cert = starttls_server
    with pytest.raises(DeliveryFailed, match="SSL"):
        sender(box).send(MESSAGE)
    assert box.messages == []
    sender(box, ssl.create_default_context(cafile=str(cert))).send(MESSAGE)
    assert len(box.messages) == 1


@pytest.mark.checklist("OOB-12")
@pytest.mark.anyio
async def test_async_path_refuses_an_unverified_certificate(
    starttls_server: tuple[Mailbox, Path],
) -> None:
    box, cert = starttls_server
    with pytest.raises(DeliveryFailed):
        await sender(box).asend(MESSAGE)
    assert box.messages == []
    await sender(box, ssl.create_default_context(cafile=str(cert))).asend(MESSAGE)
    assert len(box.messages) == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.checklist("OOB-12")
def test_plain_smtp_and_plain_http_to_twilio_need_an_explicit_choice() -> None:
    with pytest.raises(ValueError, match="clear text"):
        SMTPSender("smtp.example.com", 25, from_addr="mfa@example.com", tls="none")
    SMTPSender("127.0.0.1", 25, from_addr="mfa@example.com", tls="none", allow_insecure=True)
    assert SMTPSender("smtp.example.com", from_addr="mfa@example.com").tls == "starttls"
    sid = "AC" + "1" * 32
    with pytest.raises(ValueError, match="HTTPS"):
        TwilioSMSSender(sid, "token", from_="+15005550006", api_base_url="http://api.example")
    TwilioSMSSender(sid, "token", from_="+15005550006", api_base_url="http://127.0.0.1:9")
    default = TwilioSMSSender(sid, "token", from_="+15005550006")._client(None)
    assert default.api.base_url.startswith("https://")
