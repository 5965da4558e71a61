"""Under an event loop no store call that can wait runs on the loop (issue 25).

The contract's async twins (`stores.base`) answer a cached read from memory on the loop when
the store can vouch for it (`peek`) and hand every other call to the store's `off_loop`:
SQLite's writer thread for writes, its reader threads for reads that miss the cache, inline
for a memory store, a thread of the loop's executor for a store that says nothing. Here
another process holds SQLite's write lock while a coroutine writes, and `LoopLag` measures the
longest the loop was held up meanwhile. (`test_sqlite_event_loop.py` shows the same through a
real uvicorn worker; the Django store's twin test is in `tests/django_project`.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.errors import StoreError
from mfa_middleware.stores.base import Store
from mfa_middleware.stores.memory import MemoryStore
from mfa_middleware.stores.sqlite import SQLiteStore
from tests.stores.contract import increment
from tests.stores.test_sqlite_wal import open_files, write_elsewhere
from tests.support.stalls import LoopLag, holding_write_lock

USER = Key("user", "alice")
OTHER = Key("user", "bob")
FREE = 0.1  # the loop never held up longer than this (measured: a few ms at most)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mfa.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close()


def threads_of(store: Store, *names: str) -> list[tuple[str, str]]:
    """Record which thread runs each of the store's sync methods `names`: (method, thread)."""
    calls: list[tuple[str, str]] = []
    for name in names:
        method = getattr(store, name)

        def recording(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls.append((_name, threading.current_thread().name))
            return _method(*args, **kw)

        setattr(store, name, recording)
    return calls


async def test_a_write_waiting_for_the_lock_leaves_the_loop_and_the_reads_free(
    store: SQLiteStore, db: Path
) -> None:
    store.put(USER, {"n": 1})
    store.put(OTHER, {"n": 7})
    assert await store.aget(USER, cached=True) == {"n": 1}  # cached
    calls = threads_of(store, "update", "get_many")
    with holding_write_lock(db, 1.0):
        async with LoopLag() as lag:
            started = time.perf_counter()
            update = asyncio.create_task(store.aupdate(USER, increment))
            await asyncio.sleep(0.1)  # the update is waiting for the lock by now
            assert await store.aget(USER, cached=True) == {"n": 1}  # from memory, on the loop
            assert await store.aget(OTHER) == {"n": 7}  # a reader thread: no queue behind it
            reads_done = time.perf_counter() - started
            old, new = await update
            waited = time.perf_counter() - started
    assert lag.worst < FREE, lag.worst
    assert lag.wakes > 50  # the loop ran the watcher all along
    assert (old, new) == ({"n": 1}, {"n": 2})
    assert reads_done < 0.5 < waited  # the reads did not wait for the write
    assert [name for name, _ in calls] == ["update", "get_many"]  # the cached read: no call
    assert calls[0][1].startswith("mfa-sqlite-writer")
    assert calls[1][1].startswith("mfa-sqlite-reader")
    assert await store.aget(USER, cached=True) == {"n": 2}


async def test_a_lock_held_past_the_timeout_is_a_store_error_off_the_loop(db: Path) -> None:
    store = SQLiteStore(db, timeout=0.3)
    try:
        store.put(USER, {"n": 1})
        with holding_write_lock(db, 1.5):
            async with LoopLag() as lag:
                started = time.perf_counter()
                with pytest.raises(StoreError, match="locked"):
                    await store.aupdate(USER, increment)
                failed_after = time.perf_counter() - started
        assert lag.worst < FREE, lag.worst
        assert 0.2 < failed_after < 1.2  # the busy timeout, not the lock's 1.5 s
        assert await store.aupdate(USER, increment) == ({"n": 1}, {"n": 2})  # and it heals
    finally:
        store.close()


def test_a_call_queued_for_longer_than_the_timeout_fails_without_starting(db: Path) -> None:
    """Behind writes that each waited for the lock, a queued write would wait on top of them:
    it fails as a busy database does, so an answer comes within about twice the timeout."""
    store = SQLiteStore(db, timeout=0.5)
    ran: list[str] = []
    try:
        with pytest.raises(StoreError, match="busy"):
            store._in_lane(lambda: ran.append("late"), time.monotonic() - 0.6)
        assert store._in_lane(lambda: ran.append("in time") or "done", time.monotonic()) == "done"
        assert ran == ["in time"]
    finally:
        store.close()


async def test_a_cached_read_stays_on_the_loop_until_someone_else_commits(
    store: SQLiteStore, db: Path
) -> None:
    store.put(USER, {"epoch": 1})
    assert await store.aget(USER, cached=True) == {"epoch": 1}  # reads and caches it
    calls = threads_of(store, "get_many")
    loop_thread = threading.current_thread().name
    assert await store.aget_many((USER,), cached=True) == [{"epoch": 1}]
    assert store.cache_generation() is not None  # the memo may replay on the loop too
    assert calls == []  # answered by peek: no thread
    write_elsewhere(db, USER, {"epoch": 2})
    assert store.peek((USER,)) is None  # the watch saw the commit: the cache is dropped
    assert await store.aget(USER, cached=True) == {"epoch": 2}
    assert len(calls) == 1
    assert calls[0][1] != loop_thread  # read from SQLite in a reader thread


async def test_the_loops_thread_opens_no_connection(store: SQLiteStore) -> None:
    await store.aput(USER, {"epoch": 1})
    assert await store.aget(USER, cached=True) == {"epoch": 1}
    assert await store.ascan("user", "alice") == [("", {"epoch": 1})]
    await store.adelete(USER)
    assert await store.aget(USER) is None
    assert getattr(store._local, "conn", None) is None  # this (the loop's) thread has none
    assert len(store._lane_conns) >= 2  # the writer's and at least one reader's


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc")
async def test_closing_stops_the_stores_threads_and_closes_their_connections(
    db: Path,
) -> None:
    store = SQLiteStore(db)
    await store.aupdate(USER, increment)
    assert await store.aget(OTHER) is None
    assert {t.name.rsplit("_", 1)[0] for t in threading.enumerate()} >= {
        "mfa-sqlite-writer",
        "mfa-sqlite-reader",
    }
    assert open_files(db) != []
    await store.aclose()
    gc.collect()  # the watch's connection closes when collected
    assert not [t for t in threading.enumerate() if t.name.startswith("mfa-sqlite-")]
    assert open_files(db) == []
    assert store._lane_conns == []
    # and it may be used again: new threads, new connections
    assert await store.aupdate(USER, increment) == ({"n": 1}, {"n": 2})
    await store.aclose()


async def test_an_in_memory_database_never_leaves_the_loop() -> None:
    """Nothing else can hold an in-memory database's lock, and each thread would get its own
    database: every call stays inline."""
    store = SQLiteStore(":memory:")
    calls = threads_of(store, "update", "get_many")
    try:
        await store.aput(USER, {"n": 1})
        assert await store.aupdate(USER, increment) == ({"n": 1}, {"n": 2})
        assert await store.aget(USER, cached=True) == {"n": 2}
        assert {thread for _, thread in calls} == {threading.current_thread().name}
        assert store._writer is None
        assert store._readers is None
    finally:
        store.close()


async def test_a_memory_store_runs_every_call_inline() -> None:
    store = MemoryStore()
    calls = threads_of(store, "update", "get_many", "scan")
    await store.aupdate(USER, increment)
    assert await store.aget(USER) == {"n": 1}
    assert await store.ascan("user", "alice") == [("", {"n": 1})]
    assert {thread for _, thread in calls} == {threading.current_thread().name}


class SlowStore(Store):
    """A store that says nothing of its calls, whose writes take a while (a network store
    written with a sync client): by default its twins run it in a thread."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.inner.get(key)

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self.inner.put(key, doc, ttl=ttl)

    def delete(self, key: Key) -> None:
        self.inner.delete(key)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        time.sleep(0.5)
        return self.inner.update(key, fn, ttl=ttl)

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        return self.inner.scan(kind, part)


async def test_a_store_that_says_nothing_waits_in_a_thread() -> None:
    store = SlowStore()
    async with LoopLag() as lag:
        assert await store.aupdate(USER, increment) == (None, {"n": 1})
    assert lag.worst < FREE, lag.worst
    assert lag.wakes > 20
    assert store.peek((USER,)) is None  # nothing it can vouch for: cached reads go to a thread
    assert await store.aget(USER, cached=True) == {"n": 1}


def sync_twin_names() -> list[str]:
    return ["get", "get_many", "put", "delete", "update", "scan"]


@pytest.mark.parametrize("name", sync_twin_names())
def test_every_twin_is_written_once_in_the_base(name: str) -> None:
    """SQLite and memory stores define no twin of their own: the rule lives in one place."""
    for cls in (SQLiteStore, MemoryStore):
        twin: Callable[..., Any] = getattr(cls, "a" + name)
        assert twin is getattr(Store, "a" + name), (cls, name)
