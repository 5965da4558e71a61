"""Delivery of one-time codes: console (development), SMTP email, and Twilio SMS."""

from mfa_middleware.senders.base import Message, Sender
from mfa_middleware.senders.console import ConsoleSender

__all__ = ["ConsoleSender", "Message", "Sender"]
