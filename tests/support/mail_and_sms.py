"""Real peers for code delivery: an SMTP server (aiosmtpd) and a local HTTP server that
answers like Twilio's Messages API, so the real twilio SDK and aiosmtplib/smtplib are used."""

from __future__ import annotations

import email
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from tests.support.redis_servers import free_port

CODE = re.compile(r"\b(\d{6,8})\b")


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class Mailbox:
    host: str
    port: int
    handler: _Collect

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def text_of(self, message: EmailMessage) -> str:
        part = message.get_payload(0) if message.is_multipart() else message
        return str(part.get_payload(decode=True).decode())  # type: ignore[union-attr]

    def last_code(self, timeout: float = 5.0) -> str:
        """The code in the newest message that carries one (notifications carry none)."""
        return self.last_match(CODE, timeout).group(1)

    def last_match(self, pattern: re.Pattern[str], timeout: float = 5.0) -> re.Match[str]:
        """`pattern` in the newest message that has it, waiting for one to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.messages):
                if match := pattern.search(self.text_of(message)):
                    return match
            assert time.monotonic() < deadline, f"no email matching {pattern.pattern} arrived"
            time.sleep(0.01)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox("127.0.0.1", port, handler)
    finally:
        controller.stop()


@dataclass
class TwilioDouble:
    """Answers POST /2010-04-01/Accounts/{sid}/Messages.json like Twilio; `mode` can make it
    fail ("error") or hang past the client's timeout ("slow")."""

    port: int
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def last_code(self) -> str:
        assert self.requests, "no SMS was sent"
        match = CODE.search(self.requests[-1]["Body"])
        assert match
        return match.group(1)


@contextmanager
def twilio_double() -> Iterator[TwilioDouble]:
    double = TwilioDouble(free_port())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            match = re.fullmatch(r"/2010-04-01/Accounts/(\w+)/Messages\.json", self.path)
            form["_account"] = match.group(1) if match else ""
            form["_auth"] = self.headers.get("authorization", "")
            if double.mode == "slow":
                time.sleep(3)
            if double.mode in ("error", "slow") or not match:
                self._reply(500, {"code": 30008, "message": "Unknown error", "status": 500})
                return
            double.requests.append(form)
            self._reply(
                201,
                {
                    "sid": "SM" + "0" * 32,
                    "status": "queued",
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "account_sid": form["_account"],
                },
            )

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", double.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
