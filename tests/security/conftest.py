"""The end-to-end tests' fixtures (a fixed clock, a real SMTP server, the Twilio double)."""

from tests.e2e.conftest import _demo_secret, anyio_backend, clock, mailbox, twilio

__all__ = ["_demo_secret", "anyio_backend", "clock", "mailbox", "twilio"]
