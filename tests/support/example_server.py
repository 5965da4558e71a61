"""The Starlette example served by a real uvicorn process (`serve_example`), and the steps a
browser takes on it: log in through the demo's form, enroll an authenticator app."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp

from tests.support.redis_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
HTML = {"accept": "text/html"}


@dataclass
class Served:
    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        """What the server wrote (stdout and stderr), once it has stopped."""
        if self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")


@contextmanager
def serving_example(env: dict[str, str]) -> Iterator[Served]:
    """One uvicorn process serving the example with `env` (see `serve_example`); stopped on
    exit. Python's faulthandler is on, so a fatal signal leaves a traceback in its output."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "tests.support.serve_example", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{served.base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, served.output()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def form_field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, name
    return match.group(1)


def log_in(c: httpx.Client, user: str = "alice") -> int:
    """The demo's login form as a browser fills it, CSRF token included; the status."""
    form = c.get("/login").text
    data = {"username": user, "password": f"{user}-password", "csrf": form_field(form, "csrf")}
    return c.post("/login", data=data).status_code


def sign_up(c: httpx.Client, user: str = "alice") -> pyotp.TOTP:
    """Log in and enroll an authenticator app: `c` then holds a verified session."""
    assert log_in(c, user) == 303
    page = c.get("/_mfa/enroll/totp", headers=HTML).text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    done = c.post(
        "/_mfa/enroll/totp",
        headers=HTML,
        data={"csrf": form_field(page, "csrf"), "code": totp.now()},
    )
    assert done.status_code == 303
    return totp
