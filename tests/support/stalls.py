"""What holds up an event loop, and for how long: `LoopLag` measures it from inside the loop;
`holding_write_lock` makes another process hold a SQLite database's write lock, as a second
worker, a backup or `mfa-admin` may while a server runs. The benchmark uses `LoopLag` too."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

HOLD_LOCK = """
import sqlite3, sys, time

conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the database's write lock, as any other writer takes it
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
print("released", flush=True)
"""


class LoopLag:
    """`async with LoopLag() as lag:` a task asks to wake every `tick` seconds; `lag.worst` is
    the latest it woke, beyond `tick`: the longest the loop ran something without yielding."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.worst = 0.0
        self.wakes = 0
        self._asked = 0.0  # when the watcher's pending sleep was asked for
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)  # started before the code under test runs
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._task is not None
        # the wake still pending counts too: the block may have ended just before this exit
        late = asyncio.get_running_loop().time() - self._asked - self.tick
        self.worst = max(self.worst, late)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._asked = loop.time()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, loop.time() - self._asked - self.tick)
            self.wakes += 1


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds `db`'s write lock (`BEGIN IMMEDIATE`) for `seconds`, from
    the moment this returns."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


@contextlib.contextmanager
def holding_write_lock(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """`hold_write_lock` for a `with` block; the holder is gone when the block is left."""
    holder = hold_write_lock(db, seconds)
    try:
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
