"""The store contract against `SQLiteStore`, plus what only a shared file can show:
atomic updates across threads, cache coherence across store objects and processes,
persistence, and errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfa_middleware.core.effects import Key
from mfa_middleware.errors import StoreError
from mfa_middleware.stores import sqlite
from mfa_middleware.stores.sqlite import SQLiteStore
from tests.stores.contract import FakeClock, StoreContract, increment

SETTINGS = Key("settings", "_", "global")
USER = Key("user", "alice")


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "mfa.sqlite3")
        store.use_clock(clock)
        yield store
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "shared.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close()


def test_concurrent_updates_from_threads_are_all_counted(store: SQLiteStore) -> None:
    key = Key("throttle", "alice")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for _ in range(50):
                store.update(key, increment)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            store.close()  # this thread's connection

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.get(key) == {"n": 400}
    assert store.get(key, cached=True) == {"n": 400}


def test_update_results_are_distinct_under_concurrency(store: SQLiteStore) -> None:
    """Every concurrent update sees a different old value: no two read the same row state."""
    key = Key("throttle", "bob")
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(25):
                old, _new = store.update(key, increment)
                with lock:
                    seen.append((old or {}).get("n", 0))
        finally:
            store.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(100))


def test_two_store_objects_on_one_file_stay_coherent(db: Path) -> None:
    """Two SQLiteStore objects stand in for two worker processes sharing the file."""
    a = SQLiteStore(db)
    b = SQLiteStore(db)
    try:
        b.put(SETTINGS, {"global_epoch": 1})
        assert a.get(SETTINGS, cached=True) == {"global_epoch": 1}
        assert a.get(USER, cached=True) is None  # a cached miss
        # Writes from the other object are seen on the very next cached read.
        b.put(SETTINGS, {"global_epoch": 2})
        assert a.get(SETTINGS, cached=True) == {"global_epoch": 2}
        b.update(USER, lambda doc: {"epoch": 1})
        assert a.get(USER, cached=True) == {"epoch": 1}
        assert a.get_many((SETTINGS, USER), cached=True) == [{"global_epoch": 2}, {"epoch": 1}]
        b.update(USER, lambda doc: {"epoch": (doc or {})["epoch"] + 1})
        assert a.get_many((SETTINGS, USER), cached=True) == [{"global_epoch": 2}, {"epoch": 2}]
        b.delete(SETTINGS)
        assert a.get(SETTINGS, cached=True) is None
        b.update(USER, lambda doc: None)
        assert a.get(USER, cached=True) is None
        # And the other way round.
        assert b.get(SETTINGS, cached=True) is None
        a.put(SETTINGS, {"mode": "off"})
        assert b.get(SETTINGS, cached=True) == {"mode": "off"}
    finally:
        a.close()
        b.close()


def test_coherence_across_threads_of_one_store_and_another_writer(db: Path) -> None:
    reader = SQLiteStore(db)
    writer = SQLiteStore(db)
    results: list[object] = []
    try:
        writer.put(SETTINGS, {"v": 1})
        assert reader.get(SETTINGS, cached=True) == {"v": 1}  # cached by the main thread

        def other_thread() -> None:
            try:
                results.append(reader.get(SETTINGS, cached=True))
                writer.put(SETTINGS, {"v": 3})
                results.append(reader.get(SETTINGS, cached=True))
            finally:
                reader.close()
                writer.close()

        writer.put(SETTINGS, {"v": 2})
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert results == [{"v": 2}, {"v": 3}]
        assert reader.get(SETTINGS, cached=True) == {"v": 3}
    finally:
        reader.close()
        writer.close()


def test_cache_is_bounded_and_keeps_the_latest_documents(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 8
    monkeypatch.setattr(sqlite, "CACHE_LIMIT", limit, raising=False)
    store = SQLiteStore(db)
    try:
        keys = [Key("user", f"user-{n}") for n in range(6 * limit + 2)]
        for n, key in enumerate(keys):
            store.put(key, {"n": n})
        assert [store.get(key, cached=True) for key in keys] == [{"n": n} for n in range(len(keys))]
        assert len(store._cache) <= 2 * limit  # every one of them was cached on its read
        read: list[Key] = []
        row = store._row
        monkeypatch.setattr(store, "_row", lambda conn, key: read.append(key) or row(conn, key))
        latest = store.get_many(tuple(keys[-limit:]), cached=True)
        assert latest == [{"n": n} for n in range(len(keys) - limit, len(keys))]
        assert read == []  # the latest `limit` documents all came from the cache
        assert store.get(keys[0], cached=True) == {"n": 0}
        assert read == [keys[0]]  # evicted long ago: read again
    finally:
        store.close()


WRITER = """
import sys
from mfa_middleware.core.effects import Key
from mfa_middleware.stores.sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
store.put(Key("settings", "_", "global"), {"global_epoch": int(sys.argv[2])})
store.update(Key("user", "alice"), lambda doc: {"epoch": (doc or {}).get("epoch", 0) + 1})
store.close()
"""


def run_writer(db: Path, epoch: int) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, str(db), str(epoch)],
        check=True,
        timeout=60,
        capture_output=True,
    )


def test_write_from_another_process_is_seen_on_the_next_cached_read(
    store: SQLiteStore, db: Path
) -> None:
    store.put(SETTINGS, {"global_epoch": 0})
    store.put(USER, {"epoch": 5})
    assert store.get_many((SETTINGS, USER), cached=True) == [{"global_epoch": 0}, {"epoch": 5}]
    run_writer(db, 7)
    assert store.get_many((SETTINGS, USER), cached=True) == [{"global_epoch": 7}, {"epoch": 6}]
    assert store.get(SETTINGS, cached=True) == {"global_epoch": 7}


def test_data_persists_after_close_and_reopen(db: Path) -> None:
    first = SQLiteStore(db)
    first.put(USER, {"epoch": 9, "secret": "gAAAA..."})
    first.put(Key("device", "alice", "d1"), {"i": 1})
    first.update(Key("throttle", "alice"), increment)
    first.close()
    second = SQLiteStore(db)
    try:
        assert second.get(USER) == {"epoch": 9, "secret": "gAAAA..."}
        assert second.get(USER, cached=True) == {"epoch": 9, "secret": "gAAAA..."}
        assert second.scan("device", "alice") == [("d1", {"i": 1})]
        assert second.get(Key("throttle", "alice")) == {"n": 1}
    finally:
        second.close()


def test_ttl_survives_reopen(db: Path) -> None:
    clock = FakeClock()
    first = SQLiteStore(db)
    first.use_clock(clock)
    first.put(USER, {"a": 1}, ttl=10)
    first.close()
    second = SQLiteStore(db)
    second.use_clock(clock)
    try:
        assert second.get(USER) == {"a": 1}
        clock.advance(10)
        assert second.get(USER) is None
    finally:
        second.close()


def test_store_error_on_a_directory_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as exc:
        SQLiteStore(tmp_path)
    assert str(tmp_path) in str(exc.value)
    assert exc.value.status_hint == 503


def test_store_error_when_a_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        SQLiteStore(blocker / "mfa.sqlite3")


def test_store_error_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database file at all " * 200)
    with pytest.raises(StoreError):
        SQLiteStore(path)


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "mfa.sqlite3"
    store = SQLiteStore(path)
    try:
        store.put(USER, {"a": 1})
        assert path.exists()
        assert store.get(USER) == {"a": 1}
    finally:
        store.close()


def test_in_memory_database(tmp_path: Path) -> None:
    store = SQLiteStore(":memory:")
    try:
        store.put(USER, {"a": 1})
        assert store.get(USER) == {"a": 1}
        assert store.get(USER, cached=True) == {"a": 1}
    finally:
        store.close()
    assert not any(tmp_path.iterdir())


def test_expired_rows_are_purged_eventually(store: SQLiteStore, db: Path) -> None:
    import sqlite3

    from mfa_middleware.stores.sqlite import PURGE_EVERY

    clock = FakeClock()
    store.use_clock(clock)
    store.put(Key("pending", "alice"), {"x": 1}, ttl=1)
    clock.advance(2)
    for i in range(PURGE_EVERY):
        store.put(Key("filler", "_", str(i % 3)), {"i": i})
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM mfa_docs WHERE kind='pending'").fetchone()[0]
    finally:
        conn.close()
    assert rows == 0
