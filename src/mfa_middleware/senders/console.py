"""Prints messages to the terminal: for development and the demo, where a developer needs the
code. Never use it in production (codes end up in process output)."""

from __future__ import annotations

import sys
from typing import TextIO

from mfa_middleware.senders.base import Message, Sender


class ConsoleSender(Sender):
    def __init__(self, channel: str, stream: TextIO | None = None) -> None:
        self.channel = channel
        self.stream = stream
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)
        stream = self.stream or sys.stdout
        stream.write(f"\n[mfa_middleware {message.channel} to {message.to}] {message.text}\n")
        stream.flush()
