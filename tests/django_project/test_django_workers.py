"""The Django demo on `DjangoStore` served by two real processes sharing one database (a SQLite
file, or a real PostgreSQL server): one on uvicorn (Django's async path), one on Django's
threaded WSGI server (the sync path). Attempt limits and single use of codes hold across
them, and changes made by a third process (`manage.py mfa`) reach both."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.redis_e2e.test_redis_e2e import _fire, copy_cookies, form_field
from tests.support.postgres_server import PostgresServer
from tests.support.redis_servers import RedisServer, free_port, redis_server

ROOT = Path(__file__).resolve().parents[2]
HTML = {"accept": "text/html"}
SERVE = [sys.executable, "-m", "tests.support.serve_django"]


@dataclass
class Deployment:
    """One database (and optionally one Redis cache) that every process below shares."""

    env: dict[str, str]
    data: Path
    database: dict[str, Any] | None  # None: the demo's SQLite file

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [*SERVE, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    @contextmanager
    def serving(self, kind: str) -> Iterator[str]:
        port = free_port()
        log = (self.data / f"{kind}-{port}.log").open("wb")
        proc = subprocess.Popen(
            [*SERVE, kind, str(port)], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/accounts/login/", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.name
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()

    def documents(self, kind: str) -> list[dict[str, Any]]:
        """The documents of `kind` as stored, read straight from the database."""
        query = "SELECT doc FROM mfa_middleware_document WHERE kind = "
        if self.database is None:
            conn = sqlite3.connect(self.data / "db.sqlite3")
            try:
                rows = conn.execute(query + "?", (kind,)).fetchall()
            finally:
                conn.close()
        else:
            import psycopg

            db = self.database
            url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            with psycopg.connect(url) as conn:
                rows = conn.execute(query + "%s", (kind,)).fetchall()
        return [json.loads(doc) for (doc,) in rows]


def deploy(request: pytest.FixtureRequest, tmp_path: Path, **extra: str) -> Deployment:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "DJANGO_DEMO_DATA": str(data),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    env.pop("REDIS_URL", None)
    database = None
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"mfa_workers_{secrets.token_hex(4)}"
        server.create_database(name)
        database = server.django_settings(name)
        env["MFA_TEST_DATABASE"] = json.dumps(database)
    deployment = Deployment(env, data, database)
    deployment.manage("migrate")
    return deployment


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    return deploy(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def patient(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    """A deployment whose users may get 20 codes wrong before a lockout."""
    return deploy(request, tmp_path, MFA_TEST_MAX_ATTEMPTS="20")


def log_in(c: httpx.Client, user: str = "alice") -> None:
    """The demo's login form, with Django's CSRF token, as a browser posts it."""
    page = c.get("/accounts/login/").text
    data = {
        "username": user,
        "password": f"{user}-password",
        "csrfmiddlewaretoken": form_field(page, "csrfmiddlewaretoken"),
    }
    assert c.post("/accounts/login/", data=data).status_code == 302


def sign_up(c: httpx.Client, user: str = "alice") -> pyotp.TOTP:
    log_in(c, user)
    page = c.get("/_mfa/enroll/totp", headers=HTML).text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    data = {"csrf": form_field(page, "csrf"), "code": totp.now()}
    assert c.post("/_mfa/enroll/totp", headers=HTML, data=data).status_code == 303
    return totp


def pending_login(base: str, user: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=base, timeout=30)
    log_in(c, user)
    page = c.get("/_mfa/challenge", headers=HTML)
    assert page.status_code == 200
    return c, form_field(page.text, "csrf")


@pytest.mark.checklist("RL-04")
def test_parallel_wrong_codes_count_exactly_the_limit(deployment: Deployment) -> None:
    with deployment.serving("asgi") as one, deployment.serving("wsgi") as two:
        with httpx.Client(base_url=one, timeout=30) as enrolling:
            totp = sign_up(enrolling)
        c, csrf = pending_login(one, "alice")
        good = {totp.at(time.time() + d * 30) for d in (-1, 0, 1, 2)}
        wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in good)
        statuses = asyncio.run(_fire([one, two], c.cookies, csrf, [wrong] * 200))
        assert set(statuses) <= {400, 429}, statuses
        assert 429 in statuses
        [record] = deployment.documents("throttle")
        assert record["failures"] == 5  # exactly the limit was evaluated and counted
        assert record["lockouts"] == 1
        assert asyncio.run(_fire([two], c.cookies, csrf, [totp.now()])) == [429]
        c.close()


@pytest.mark.checklist("TOTP-04", "RL-04")
def test_parallel_submissions_of_one_code_succeed_once(patient: Deployment) -> None:
    with patient.serving("asgi") as one, patient.serving("wsgi") as two:
        with httpx.Client(base_url=one, timeout=30) as enrolling:
            totp = sign_up(enrolling, "bob")
        c, csrf = pending_login(two, "bob")
        while int(time.time()) % 30 > 25:  # keep the burst inside one time step
            time.sleep(0.5)
        code = totp.at(time.time() + 30)  # the next step: not used by the enrollment
        statuses = asyncio.run(_fire([one, two], c.cookies, csrf, [code] * 50))
        assert statuses.count(303) == 1, statuses
        c.close()


@pytest.fixture
def redis_cache(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def cached(request: pytest.FixtureRequest, tmp_path: Path, redis_cache: RedisServer) -> Deployment:
    """Workers whose DjangoStore keeps a process cache, coherent through a Redis cache."""
    return deploy(
        request, tmp_path, MFA_TEST_CACHE_URL=redis_cache.url, MFA_TEST_POLL_INTERVAL="0.2"
    )


def until(condition: Any, what: str) -> None:
    """Wait for `condition()`; the deadline only stops a broken run (the bound itself is
    proved in test_django_store_cache.py, and measured by the benchmark)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.checklist("SES-11")
def test_changes_from_manage_py_reach_both_cached_workers(cached: Deployment) -> None:
    with (
        cached.serving("asgi") as one,
        cached.serving("wsgi") as two,
        httpx.Client(base_url=one) as alice_one,
        httpx.Client(base_url=two) as alice_two,
        httpx.Client(base_url=two) as bob,
    ):
        sign_up(alice_one)
        copy_cookies(alice_one, alice_two)  # the same browser, served by the other worker
        sign_up(bob, "bob")
        for client in (alice_one, alice_two, bob):
            assert client.get("/account/", headers=HTML).status_code == 200  # now cached

        cached.manage("mfa", "logout", "alice")
        until(lambda: signed_out(alice_two), "force-logout not seen by the other worker")
        assert signed_out(alice_one)
        assert bob.get("/account/", headers=HTML).status_code == 200  # nobody else

        cached.manage("mfa", "mode", "off", "--yes")
        with httpx.Client(base_url=two) as carol:
            log_in(carol, "alice")
            until(lambda: carol.get("/account/", headers=HTML).status_code == 200, "mode off")

        cached.manage("mfa", "mode", "required")
        cached.manage("mfa", "session-lifetime", "1s")
        time.sleep(1.1)  # bob's session is older than the new lifetime
        until(lambda: signed_out(bob), "lifetime change not seen")


def signed_out(client: httpx.Client) -> bool:
    """Sent to the login page: by the gate (303), or by the app once the gate logged the
    session out (302)."""
    answer = client.get("/account/", headers=HTML)
    return answer.is_redirect and answer.headers["location"].startswith("/accounts/login/")
