"""A real uvicorn worker serving the example on a SQLite store keeps answering a verified session
under load while another process does to the database what operators and tools do: opens
connections, writes and closes them, checkpoints with `PRAGMA wal_checkpoint(TRUNCATE)`, then
deletes the database with its -wal and -shm files and recreates it from a copy, and goes on
writing to the new one. The worker must never die (no SIGBUS from the store's change signal);
a 503 during the churn is acceptable, and it must be answering 200 again at the end. Run for
each `change_signal`.

A -shm file truncated in place under SQLite is another matter, which no SQLite tool does (a
careless copy, a clean-up script): SQLite's own next read of it faults, and so does the
`mapping` read. With the default `pread` the worker answers 503 instead, until another process
that opens the database rebuilds the index; the last test shows it under load (and
`test_sqlite_wal.py` shows the other two dying of SIGBUS, in a subprocess).
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.example_server import HTML, serving_example, sign_up

SECRET = secrets.token_urlsafe(48)
CONCURRENCY = 16

DISRUPT = """
import os, sqlite3, sys, time

db, truncate = sys.argv[1], sys.argv[2] == "truncate"
NOTE = (
    "INSERT OR REPLACE INTO mfa_docs (kind, part, name, doc, expires) "
    "VALUES ('note', '_', ?, ?, NULL)"
)

def connect():
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn

def churn(round_):
    # connections that write (the server's cache is dropped: its next requests read SQLite)
    # and close
    for i in range(8):
        conn = connect()
        conn.execute(NOTE, (f"{round_}-{i}", "{}"))
        conn.close()
        time.sleep(0.02)
    print("closed", flush=True)
    conn = connect()
    busy, wal_frames, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0 and os.path.getsize(db + "-wal") == 0  # done, the WAL truncated
    conn.close()
    print("checkpointed", flush=True)
    time.sleep(0.1)

for round_ in range(3):
    churn(round_)

if truncate:  # in place, under every connection that has it open: what no SQLite does
    os.truncate(db + "-shm", 0)
    print("truncated", flush=True)
    time.sleep(0.3)
    churn("after")  # a new connection finds the index empty and rebuilds it
    time.sleep(0.3)

# delete the database, its WAL and its index; recreate it from a copy
copy = sqlite3.connect(":memory:")
live = connect()
live.backup(copy)
live.close()
for suffix in ("", "-wal", "-shm"):
    try:
        os.unlink(db + suffix)
    except FileNotFoundError:
        pass
print("deleted", flush=True)
time.sleep(0.2)
new = sqlite3.connect(db, isolation_level=None)
copy.backup(new)
new.execute("PRAGMA journal_mode=WAL")
new.execute(NOTE, ("recreated", "{}"))
assert os.path.exists(db + "-shm")
print("recreated", flush=True)
time.sleep(0.2)
new.close()
for round_ in range(3, 5):
    churn(round_)
print("done", flush=True)
"""


@dataclass
class Load:
    """Verified requests fired `CONCURRENCY` at a time from a thread of its own until stopped."""

    base: str
    cookies: httpx.Cookies
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # no answer at all: the worker is gone
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._fire())

    async def _fire(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, cookies=self.cookies, timeout=30) as c:
            await asyncio.gather(*(self._one_by_one(c) for _ in range(CONCURRENCY)))

    async def _one_by_one(self, c: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            try:
                answer = await c.get("/account", headers=HTML)
            except httpx.TransportError as exc:
                self.failures.append(repr(exc))
                await asyncio.sleep(0.05)
            else:
                self.statuses.append(answer.status_code)


def serve_under_load(db: Path, change_signal: str, disruption: str) -> tuple[Load, str]:
    """Serve the example on `db`, sign alice up, and run DISRUPT against the database while
    `Load` fires her verified requests; what the load saw and what DISRUPT printed. The worker
    is checked to be alive after it, and to have been stopped by our SIGTERM alone."""
    env = {
        "MFA_SECRET": SECRET,
        "MFA_TEST_SQLITE_PATH": str(db),
        "MFA_TEST_CHANGE_SIGNAL": change_signal,
    }
    with serving_example(env) as served, httpx.Client(base_url=served.base) as alice:
        sign_up(alice)
        assert alice.get("/account", headers=HTML).status_code == 200
        load = Load(served.base, alice.cookies)
        firing = threading.Thread(target=load.run)
        firing.start()
        try:
            time.sleep(0.3)
            before = len(load.statuses)
            disrupt = subprocess.run(
                [sys.executable, "-c", DISRUPT, str(db), disruption],
                timeout=120,
                capture_output=True,
                text=True,
            )
            during = len(load.statuses) - before
            time.sleep(0.5)  # and the worker goes on answering afterwards
        finally:
            load.stop.set()
            firing.join(timeout=60)
        assert served.process.poll() is None, served.output()  # the worker is alive
        assert disrupt.returncode == 0, disrupt.stderr
        assert during >= 200, during  # under load the whole time the database was churned
        assert load.failures == []
        assert load.statuses[-4 * CONCURRENCY :] == [200] * (4 * CONCURRENCY)  # answering
        assert alice.get("/account", headers=HTML).status_code == 200
    # stopped by our SIGTERM (uvicorn shuts down, then dies of it), not by any other signal
    assert served.process.returncode == -signal.SIGTERM, served.output()
    return load, disrupt.stdout


@pytest.mark.parametrize("change_signal", ["pread", "mapping", "pragma"])
def test_a_server_under_load_outlives_another_process_rebuilding_the_database(
    tmp_path: Path, change_signal: str
) -> None:
    load, steps = serve_under_load(tmp_path / "mfa.sqlite3", change_signal, "")
    assert steps.split() == [
        *["closed", "checkpointed"] * 3,
        "deleted",
        "recreated",
        *["closed", "checkpointed"] * 2,
        "done",
    ]
    assert set(Counter(load.statuses)) <= {200, 503}, Counter(load.statuses)


def test_with_pread_a_truncated_shm_is_answered_503_until_the_index_is_rebuilt(
    tmp_path: Path,
) -> None:
    load, steps = serve_under_load(tmp_path / "mfa.sqlite3", "pread", "truncate")
    assert "truncated" in steps.split()
    counts = Counter(load.statuses)
    assert set(counts) == {200, 503}, counts  # 503 while the -shm file was empty, never a 500
    first_503 = load.statuses.index(503)
    assert 200 in load.statuses[first_503:]  # and served again once it was rebuilt
