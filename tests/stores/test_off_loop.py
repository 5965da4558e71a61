"""Under an event loop no store call that can wait runs on the loop (issue 25).

The contract's async twins (`stores.base`) answer a read on the loop when the store can answer
it at once (`peek`: SQLite from its cache, or with the loop thread's own connection, which
refuses to wait) and hand every other call to the store's `off_loop`: SQLite's writer thread
for writes, its reader threads for reads that would wait, inline for a memory store, a thread
of the loop's executor for a store that says nothing. Here another process holds SQLite's
write lock while a coroutine writes, and `LoopLag` measures the longest the loop was held up
meanwhile. (`test_sqlite_event_loop.py` shows the same through a real uvicorn worker; the
Django store's twin test is in `tests/django_project`.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
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
    assert await store.aget(USER, cached=True) == {"n": 1}  # cached (in a reader thread)
    calls = threads_of(store, "update", "get_many")
    with holding_write_lock(db, 1.0):
        async with LoopLag() as lag:
            started = time.perf_counter()
            update = asyncio.create_task(store.aupdate(USER, increment))
            await asyncio.sleep(0.1)  # the update is waiting for the lock by now
            assert await store.aget(USER, cached=True) == {"n": 1}  # from memory, on the loop
            assert await store.aget(OTHER) == {"n": 7}  # read at once: WAL readers never wait
            reads_done = time.perf_counter() - started
            old, new = await update
            waited = time.perf_counter() - started
    assert lag.worst < FREE, lag.worst
    assert lag.wakes > 50  # the loop ran the watcher all along
    assert (old, new) == ({"n": 1}, {"n": 2})
    assert reads_done < 0.5 < waited  # the reads did not wait for the write
    assert len(calls) == 1  # both reads answered on the loop
    assert calls[0][0] == "update"
    assert calls[0][1].startswith("mfa-sqlite-writer")
    assert await store.aget(USER, cached=True) == {"n": 2}


async def test_a_read_that_would_wait_goes_to_a_reader_thread(store: SQLiteStore) -> None:
    """The loop thread's connection has a busy timeout of 0: SQLite busy (rebuilding its index
    after a crash, say) fails its read at once, and a reader thread reads, waiting if need be."""
    store.put(OTHER, {"n": 7})
    assert await store.aget(OTHER) == {"n": 7}  # the first read: a thread, which opens it
    quick = store._quick[threading.get_ident()]
    assert quick.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        quick.execute("DELETE FROM mfa_docs")  # read-only: no write can happen on the loop

    class Busy:
        def execute(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

    store._quick[threading.get_ident()] = Busy()  # type: ignore[assignment]
    calls = threads_of(store, "get_many")
    try:
        assert await store.aget(OTHER) == {"n": 7}
        assert await store.aget(USER, cached=True) is None
    finally:
        store._quick[threading.get_ident()] = quick
    assert [thread.rsplit("_", 1)[0] for _, thread in calls] == ["mfa-sqlite-reader"] * 2


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


async def test_writes_queued_behind_a_waiting_write_answer_within_twice_the_timeout(
    db: Path,
) -> None:
    """Three writes while the lock is held: the first waits the busy timeout; a write that
    waited that long for the writer thread fails without starting, so none waits 3 x 1 s.
    (A 1 s timeout leaves a loaded CI machine 0.6 s between twice and three times it: with
    0.5 s the bound once failed under load.)"""
    store = SQLiteStore(db, timeout=1.0)
    ran: list[str] = []

    def bump(doc: Doc | None) -> Doc:
        ran.append("bump")
        return increment(doc)

    try:
        with holding_write_lock(db, 4.0):
            started = time.perf_counter()
            outcomes = await asyncio.gather(
                *(store.aupdate(USER, bump) for _ in range(3)), return_exceptions=True
            )
            elapsed = time.perf_counter() - started
        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        assert "the store's thread" in str(outcomes[2])  # failed without starting
        assert 1.0 < elapsed < 2.6, elapsed  # within twice the timeout, not three times
        assert ran == []  # no update function ran: none got the lock
    finally:
        await store.aclose()


def test_a_call_that_waited_too_long_for_its_thread_does_not_start(db: Path) -> None:
    store = SQLiteStore(db, timeout=0.5)
    ran: list[str] = []
    try:
        with pytest.raises(StoreError, match="busy"):
            store._in_lane(lambda: ran.append("late"), time.monotonic() - 0.6, None)
        in_time = store._in_lane(lambda: ran.append("in time") or "done", time.monotonic(), None)
        assert in_time == "done"
        assert ran == ["in time"]
    finally:
        store.close()


async def test_reads_stay_on_the_loop_once_its_connection_is_open(
    store: SQLiteStore, db: Path
) -> None:
    store.put(USER, {"epoch": 1})
    calls = threads_of(store, "get_many")
    loop_thread = threading.current_thread().name
    assert await store.aget(USER, cached=True) == {"epoch": 1}  # nothing open yet: a thread
    assert len(calls) == 1
    assert calls[0][1] != loop_thread
    assert await store.aget_many((USER,), cached=True) == [{"epoch": 1}]  # from memory
    assert store.cache_generation() is not None  # the memo may replay on the loop too
    write_elsewhere(db, USER, {"epoch": 2})  # the watch sees it: the cache is dropped
    assert await store.aget(USER, cached=True) == {"epoch": 2}  # read at once, on the loop
    assert await store.aget(OTHER) is None
    assert len(calls) == 1  # no thread since the first read
    assert store.peek((USER,), cached=True) == [{"epoch": 2}]  # and cached again


async def test_the_loops_thread_opens_no_connection(store: SQLiteStore) -> None:
    await store.aput(USER, {"epoch": 1})
    assert await store.aget(USER, cached=True) == {"epoch": 1}
    assert await store.ascan("user", "alice") == [("", {"epoch": 1})]
    await store.adelete(USER)
    assert await store.aget(USER) is None
    assert getattr(store._local, "conn", None) is None  # this (the loop's) thread has none
    assert len(store._lane_conns) >= 2  # the writer's and at least one reader's
    assert list(store._quick) == [threading.get_ident()]  # opened for it by a reader thread


def lane_threads(store: SQLiteStore) -> set[threading.Thread]:
    """The store's own threads (its writer's and its readers')."""
    lanes = [lane for lane in (store._writer, store._readers) if lane is not None]
    return {thread for lane in lanes for thread in lane._threads}


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc")
async def test_closing_stops_the_stores_threads_and_closes_their_connections(
    db: Path,
) -> None:
    store = SQLiteStore(db)
    await store.aupdate(USER, increment)
    assert await store.aget(OTHER) is None
    threads = lane_threads(store)
    assert {t.name.rsplit("_", 1)[0] for t in threads} == {
        "mfa-sqlite-writer",
        "mfa-sqlite-reader",
    }
    assert open_files(db) != []
    await store.aclose()
    gc.collect()  # the watch's connection closes when collected
    assert not any(t.is_alive() for t in threads)
    assert open_files(db) == []
    assert store._lane_conns == []
    assert store._quick == {}
    # and it may be used again: new threads, new connections
    assert await store.aupdate(USER, increment) == ({"n": 1}, {"n": 2})
    await store.aclose()


async def test_a_store_dropped_unclosed_takes_its_threads_with_it(db: Path) -> None:
    """Apps (and tests) drop stores without closing them: nothing of the store's own keeps
    it alive, so its threads end and its connections close when it is collected."""
    store = SQLiteStore(db)
    await store.aupdate(USER, increment)
    assert await store.aget(OTHER) is None
    threads = lane_threads(store)
    assert len(threads) == 2
    del store
    gc.collect()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads)


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
    assert store.peek((USER,), cached=True) is None  # it says nothing: every read in a thread
    assert await store.aget(USER, cached=True) == {"n": 1}


def sync_twin_names() -> list[str]:
    return ["get", "get_many", "put", "delete", "update", "scan"]


@pytest.mark.parametrize("name", sync_twin_names())
def test_every_twin_is_written_once_in_the_base(name: str) -> None:
    """SQLite and memory stores define no twin of their own: the rule lives in one place."""
    for cls in (SQLiteStore, MemoryStore):
        twin: Callable[..., Any] = getattr(cls, "a" + name)
        assert twin is getattr(Store, "a" + name), (cls, name)
