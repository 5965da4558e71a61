"""The README's demo command really serves the example app on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_answer(proc: subprocess.Popen[bytes], url: str, timeout: float) -> httpx.Response:
    """The first response of a server that is starting; fails if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, f"{url} did not answer in {timeout} s"
            time.sleep(0.2)


def test_demo_serves_login_and_mfa_pages(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "MFA_DEMO_DATA": str(tmp_path)}
    env.pop("MFA_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.starlette_app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        login = first_answer(proc, f"{base}/login", 30)
        assert login.status_code == 200
        assert "alice-password" in login.text
        with httpx.Client(base_url=base, timeout=5) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
            assert token, "the login form carries a CSRF token"
            answer = client.post(
                "/login",
                data={"username": "alice", "password": "alice-password", "csrf": token.group(1)},
            )
            assert answer.status_code == 303
            protected = client.get("/account")
            assert protected.status_code == 303
            assert protected.headers["location"].startswith("/_mfa/enroll")
            enroll = client.get("/_mfa/enroll/totp")
            assert enroll.status_code == 200
            assert "<svg" in enroll.text
        assert (tmp_path / "mfa.sqlite3").exists()
        assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_django_demo_command_serves_the_project_on_port(tmp_path: Path) -> None:
    """`make django-demo` runs `manage.py rundemo`, which serves on $PORT."""
    makefile = (ROOT / "Makefile").read_text()
    (target,) = [line for line in makefile.splitlines() if "manage.py rundemo" in line]
    assert "--port" not in target  # so PORT decides
    port = free_port()
    env = {**os.environ, "DJANGO_DEMO_DATA": str(tmp_path), "PORT": str(port)}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "rundemo"],
        cwd=ROOT / "examples" / "django_app",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        page = first_answer(proc, f"{base}/accounts/login/", 60)
        assert page.status_code == 200
        assert "alice-password" in page.text
        assert (tmp_path / "db.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
