"""A SQLite write that waits for the database's lock must not stall the ASGI worker (issue 25).

A real uvicorn worker serves the Starlette example on a `SQLiteStore`, with its bypass rule
on `/health` (a route that touches no store). Another process holds the database's write lock
(`BEGIN IMMEDIATE`), as a second worker, a backup or `mfa-admin logout --all` may. Meanwhile a
browser that just logged in posts its code, which needs a store write, and `/health` is polled
every 50 ms. The write waits for the lock off the event loop, so `/health` keeps answering at
once; the login is verified once the lock is released, or, when the lock outlasts the store's
busy timeout, answered 503 (fail closed) and verified on its next try, with nothing restarted.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp

from tests.support.example_server import HTML, Served, form_field, log_in, serving_example, sign_up
from tests.support.stalls import holding_write_lock

SECRET = secrets.token_urlsafe(48)
POLL_EVERY = 0.05
# looser than the 0.1 s on purpose: CI shares its machine (the README gives 2-4 ms)
WORST_ALLOWED = 0.5  # generous: measured 2-4 ms here, against 2.0 s (1.0 s) on 6e239bb


@dataclass
class Poll:
    """`/health` asked every `POLL_EVERY` seconds from a thread of its own until stopped."""

    base: str
    answers: list[tuple[float, float, int]] = field(default_factory=list)  # at, latency, status
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self.stop.is_set():
                start = time.perf_counter()
                status = c.get("/health").status_code
                self.answers.append((start, time.perf_counter() - start, status))
                self.stop.wait(POLL_EVERY)

    def worst_between(self, start: float, end: float) -> tuple[float, int]:
        """The slowest answer to a request sent in [start, end], and how many were sent."""
        during = [(latency, status) for at, latency, status in self.answers if start <= at <= end]
        assert all(status == 200 for _, status in during), during
        return max(latency for latency, _ in during), len(during)


@contextmanager
def polling(base: str) -> Iterator[Poll]:
    poll = Poll(base)
    thread = threading.Thread(target=poll.run)
    thread.start()
    try:
        yield poll
    finally:
        poll.stop.set()
        thread.join(timeout=60)


@dataclass
class Timed:
    """A request made from a thread of its own: its status and how long it took."""

    status: int = 0
    seconds: float = 0.0


def post_code_in_thread(c: httpx.Client, csrf: str, code: str, into: Timed) -> threading.Thread:
    def post() -> None:
        start = time.perf_counter()
        into.status = c.post(
            "/_mfa/challenge", headers=HTML, data={"csrf": csrf, "code": code}
        ).status_code
        into.seconds = time.perf_counter() - start

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def at_the_challenge(served: Served) -> tuple[httpx.Client, str, pyotp.TOTP]:
    """Alice enrolled in one browser, then logged in from a second one, which is at the
    challenge page: that browser, the page's CSRF token, and her authenticator."""
    with httpx.Client(base_url=served.base) as first:
        totp = sign_up(first)
    second = httpx.Client(base_url=served.base)
    assert log_in(second) == 303
    sent = second.get("/account", headers=HTML)
    assert sent.status_code == 303
    assert "/_mfa/challenge" in sent.headers["location"]
    page = second.get("/_mfa/challenge", headers=HTML)
    assert page.status_code == 200
    return second, form_field(page.text, "csrf"), totp


def next_code(totp: pyotp.TOTP) -> str:
    """A code the challenge accepts that enrollment did not use (the next time step)."""
    return totp.at(time.time() + 30)


def serve(db: Path, timeout: float) -> AbstractContextManager[Served]:
    env = {"MFA_SECRET": SECRET, "MFA_TEST_SQLITE_PATH": str(db)}
    return serving_example({**env, "MFA_TEST_SQLITE_TIMEOUT": str(timeout)})


def test_health_answers_at_once_while_a_login_waits_for_the_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "mfa.sqlite3"
    with serve(db, timeout=5.0) as served:
        browser, csrf, totp = at_the_challenge(served)
        with closing(browser), polling(served.base) as poll:
            time.sleep(0.3)
            start = time.perf_counter()
            with holding_write_lock(db, 2.0) as holder:
                login = Timed()
                posting = post_code_in_thread(browser, csrf, next_code(totp), login)
                holder.wait(timeout=30)
                posting.join(timeout=30)
            end = time.perf_counter()
            time.sleep(0.3)
            worst, polled = poll.worst_between(start, end)
            print(f"worst /health latency while the login waited: {worst * 1000:.1f} ms")
            assert worst < WORST_ALLOWED, worst
            assert polled >= 15  # /health was asked all along
            assert login.status == 303, login  # verified once the lock was released
            assert login.seconds > 1.0, login  # it did wait for the lock
            assert browser.get("/account", headers=HTML).status_code == 200
        assert served.process.poll() is None


def test_a_lock_held_past_the_busy_timeout_answers_503_then_heals(tmp_path: Path) -> None:
    db = tmp_path / "mfa.sqlite3"
    with serve(db, timeout=1.0) as served:
        browser, csrf, totp = at_the_challenge(served)
        with closing(browser), polling(served.base) as poll:
            time.sleep(0.3)
            start = time.perf_counter()
            with holding_write_lock(db, 3.0) as holder:
                login = Timed()
                post_code_in_thread(browser, csrf, next_code(totp), login).join(timeout=30)
                assert holder.poll() is None  # answered while the lock was still held
                holder.wait(timeout=30)
            end = time.perf_counter()
            time.sleep(0.3)
            worst, polled = poll.worst_between(start, end)
            print(f"worst /health latency around the 503: {worst * 1000:.1f} ms")
            assert worst < WORST_ALLOWED, worst
            assert polled >= 15
            assert login.status == 503, login  # the store's outage answer: fail closed
            assert 0.9 < login.seconds < 2.5, login  # after the busy timeout, not the lock
            # the lock is gone: the same browser's next try is verified, nothing restarted
            retry = Timed()
            post_code_in_thread(browser, csrf, next_code(totp), retry).join(timeout=30)
            assert retry.status == 303, retry
            assert browser.get("/account", headers=HTML).status_code == 200
        assert served.process.poll() is None
