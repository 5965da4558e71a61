from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mail_and_sms import Mailbox, TwilioDouble, smtp_server, twilio_double

from .helpers import SECRET_KEY, FixedClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(autouse=True)
def _demo_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """`create_app` computes its default key even when given one; keep it off the disk."""
    monkeypatch.setenv("MFA_SECRET", SECRET_KEY)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port, and what it received."""
    with smtp_server() as box:
        yield box


@pytest.fixture
def twilio() -> Iterator[TwilioDouble]:
    with twilio_double() as double:
        yield double
