"""The WAL-index watch behind `SQLiteStore.cache_generation`: what `open_watch` accepts, what
`WalWatch.settled` rejects, coherence through SQLite's own descriptor of the index (`pread`, the
default), its own mapping of it (`mapping`) and `PRAGMA data_version` (`pragma`, and the
fallback of the other two), SQLite's locks surviving watches that come and go, a truncated
`-shm` answered with `StoreError` rather than a signal, a store that holds nothing open until
its first cache check (which `cache_generation`, asked on the event loop, never is), and the
store surviving `fork` and `close` from different threads.

Other processes write with the plain `sqlite3` module (`write_elsewhere`), so a test proves the
store sees a commit it had no part in.

A watch's connection closes when the watch is garbage collected; in Python 3.11 a
`sqlite3.Connection` sits in a reference cycle (its statement cache), so the tests that need it
gone call `gc.collect()`."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware.core.effects import Doc, Key
from mfa_middleware.errors import StoreError
from mfa_middleware.stores import sqlite_wal
from mfa_middleware.stores.sqlite import SQLiteStore
from mfa_middleware.stores.sqlite_wal import (
    HEADER_SIZE,
    WAL_INDEX_VERSION,
    DescriptorWatch,
    HeaderRead,
    MappingWatch,
    VersionWatch,
    WalWatch,
    open_watch,
)

USER = Key("user", "alice")

# Where SQLite's unix VFS locks (os_unix.c): the WAL write lock and the "DMS" lock every
# process using the index holds, in the -shm file; a reader's shared range in the database.
SHM_WRITE_LOCK = ("WRITE", 120, 120)
SHM_DMS_LOCK = ("READ", 128, 128)
DB_SHARED_LOCK = ("READ", 0x40000002, 0x40000002 + 510 - 1)

WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute(
    "INSERT OR REPLACE INTO mfa_docs (kind, part, name, doc, expires) VALUES (?,?,?,?,NULL)",
    (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]),
)
conn.close()
"""

READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
print(conn.execute("SELECT count(*) FROM mfa_docs").fetchone()[0])
conn.close()
"""

# Try to take the write lock from another process without waiting.
NOWAIT_BEGIN = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    print("began")
except sqlite3.OperationalError as exc:
    print(exc)
"""


def write_elsewhere(db: Path, key: Key, doc: Doc) -> None:
    """Commit `doc` under `key` from another process, bypassing SQLiteStore entirely."""
    subprocess.run(
        [sys.executable, "-c", WRITER, str(db), key.kind, key.part, key.name, json.dumps(doc)],
        check=True,
        timeout=60,
        capture_output=True,
    )


def read_elsewhere(db: Path) -> None:
    """Open a read transaction from another process, committing nothing."""
    subprocess.run(
        [sys.executable, "-c", READER, str(db)], check=True, timeout=60, capture_output=True
    )


def begin_elsewhere(db: Path) -> str:
    """'began', or SQLite's error, when another process tries `BEGIN IMMEDIATE` at once."""
    run = subprocess.run(
        [sys.executable, "-c", NOWAIT_BEGIN, str(db)],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    return run.stdout.strip()


def open_files(db: Path) -> list[str]:
    """Which of `db`, `db-wal`, `db-shm` this process has descriptors for (one per fd)."""
    prefix = os.path.realpath(db)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed since
            continue
        if target.startswith(prefix):
            found.append(target[len(prefix) :] or "db")
    return sorted(found)


def posix_locks(path: Path, pid: int | None = None) -> set[tuple[str, int, int]]:
    """The POSIX locks (mode, first byte, last byte) process `pid` holds on `path`, as the
    kernel lists them in /proc/locks."""
    st = os.stat(path)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    owner = str(os.getpid() if pid is None else pid)
    locks = set()
    with open("/proc/locks", encoding="ascii") as listing:
        for line in listing:
            fields = line.split()
            if "->" in fields or len(fields) < 8:  # a waiter, not a holder
                continue
            kind, mode, holder, inode, start, end = fields[1], *fields[3:8]
            if kind == "POSIX" and holder == owner and inode == where:
                locks.add((mode, int(start), -1 if end == "EOF" else int(end)))
    return locks


needs_proc = pytest.mark.skipif(
    not (os.path.exists("/proc/self/fd") and os.path.exists("/proc/locks")),
    reason="needs Linux /proc",
)


def live_watch(store: SQLiteStore) -> WalWatch:
    """The store's watch, opened by a cache check (a cached read) if none has run yet."""
    if store._watch is None:
        store.get_many((), cached=True)
    watch = store._watch
    assert watch is not None
    return watch


def live_header(store: SQLiteStore) -> bytes:
    return live_watch(store).read()


def read_header_as(monkeypatch: pytest.MonkeyPatch, store: SQLiteStore, data: bytes) -> None:
    """Make the store's watch read `data` (its class: the watch has __slots__)."""
    monkeypatch.setattr(type(live_watch(store)), "read", lambda self: data)


READS: tuple[HeaderRead, ...] = ("pread", "mapping")
WATCH_CLASS: dict[str, type[WalWatch]] = {"pread": DescriptorWatch, "mapping": MappingWatch}


def with_copies(first: bytes, second: bytes | None = None) -> bytes:
    return first + (first if second is None else second)


def wal_database(path: Path, mode: str = "wal") -> Path:
    """A plain sqlite3 database with one table, in journal `mode`."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    finally:
        conn.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wal.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close()


# 1. open_watch: where there is a mapped WAL index, and where there is none


@needs_proc
@pytest.mark.parametrize("how", READS)
def test_open_watch_on_a_wal_file_database(tmp_path: Path, how: HeaderRead) -> None:
    path = wal_database(tmp_path / "plain-wal.sqlite3")
    watch = open_watch(str(path), 5.0, how)
    assert isinstance(watch, WATCH_CLASS[how])
    header = watch.read()
    assert isinstance(header, bytes)
    assert len(header) == 2 * HEADER_SIZE
    assert WalWatch.settled(header)
    assert open_files(path)  # the watch's own connection keeps SQLite's -shm open

    # It reads the live index: a commit of another connection changes what it returns.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    after = watch.read()
    assert after != header
    assert WalWatch.settled(after)

    del watch
    gc.collect()
    assert open_files(path) == []  # collected: its connection closed with it


@needs_proc
@pytest.mark.parametrize("how", READS)
def test_open_watch_of_a_store_reads_the_same_header(
    store: SQLiteStore, db: Path, how: HeaderRead
) -> None:
    assert store._watch is None  # lazy: nothing opened yet
    assert store.cache_generation() is None  # which opens nothing: it may run on an event loop
    assert store._watch is None
    store.get_many((), cached=True)  # the first cache check
    assert isinstance(store._watch, DescriptorWatch)  # the default
    watch = open_watch(str(db), 5.0, how)
    assert isinstance(watch, WATCH_CLASS[how])
    assert watch.read() == live_header(store)  # the same shared page, read either way
    store.put(USER, {"v": 1})
    assert watch.read() == live_header(store)


def test_open_watch_is_none_in_memory() -> None:
    assert open_watch(":memory:", 5.0) is None
    store = SQLiteStore(":memory:")
    try:
        assert store._watch is None
        assert store._watchable is False
        store.put(USER, {"a": 1})
        assert store.get(USER, cached=True) == {"a": 1}
        assert store.cache_generation() is not None
        assert store._watch is None  # never tried
    finally:
        store.close()


def test_open_watch_is_none_for_a_uri() -> None:
    assert open_watch("file:whatever.sqlite3?mode=memory", 5.0) is None


@needs_proc
def test_open_watch_is_none_in_delete_journal_mode(tmp_path: Path) -> None:
    path = wal_database(tmp_path / "delete.sqlite3", "delete")
    assert open_watch(str(path), 5.0) is None
    assert open_files(path) == []  # its connection was closed at once
    # and looking did not switch the file to WAL or leave a shared-memory file behind
    assert not Path(str(path) + "-shm").exists()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


@needs_proc
@pytest.mark.parametrize("how", READS)
@pytest.mark.parametrize("missing", ["no /proc", "not found", "never settled"])
def test_open_watch_is_none_without_a_readable_index(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, missing: str, how: HeaderRead
) -> None:
    """Where SQLite's descriptor or mapping cannot be found or read, open_watch closes its
    connection and says None, and the store keeps its cache coherent through
    `PRAGMA data_version` on a watch of its own, which the event loop may read too."""
    if missing == "no /proc":
        monkeypatch.setattr(sqlite_wal, "FDS", str(tmp_path / "no-such-fd"))
        monkeypatch.setattr(sqlite_wal, "MAPS", str(tmp_path / "no-such-maps"))
    elif missing == "not found":
        fds = tmp_path / "fd"
        fds.mkdir()
        (fds / "3").symlink_to("/usr/bin/python3")
        (fds / "not-a-number").symlink_to(f"{os.path.realpath(db)}-shm")
        monkeypatch.setattr(sqlite_wal, "FDS", str(fds))
        maps = tmp_path / "maps"
        maps.write_text("00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/python3\n")
        monkeypatch.setattr(sqlite_wal, "MAPS", str(maps))
    else:
        monkeypatch.setattr(WalWatch, "settled", staticmethod(lambda data: False))
    path = wal_database(tmp_path / "plain-wal.sqlite3")
    assert open_watch(str(path), 5.0, how) is None
    assert open_files(path) == []

    store = SQLiteStore(db, change_signal=how)
    try:
        assert store._watchable is True
        store.put(USER, {"epoch": 1})
        assert store.get(USER, cached=True) == {"epoch": 1}
        assert isinstance(store._watch, VersionWatch)  # the fallback, opened once
        assert store._local.data_version is None  # not asked on the request's connection
        generation = store.cache_generation()
        assert generation is not None  # answered by the watch: the memo works on a loop too
        assert store.cache_generation() == generation  # nothing committed since
        write_elsewhere(db, USER, {"epoch": 2})
        assert store.cache_generation() != generation
        assert store.peek((USER,), cached=True) is None  # dropped: the next read asks SQLite
        assert store.get(USER, cached=True) == {"epoch": 2}
        assert store.peek((USER,), cached=True) == [{"epoch": 2}]
    finally:
        store.close()


# 2. A store holds nothing open until its first cache check


@needs_proc
def test_a_new_store_holds_no_connection_until_its_first_cache_check(
    store: SQLiteStore, db: Path
) -> None:
    assert getattr(store._local, "conn", None) is None
    assert store._watch is None
    assert store._watchable is True
    assert open_files(db) == []  # built and closed: nothing to hand a forked child
    assert db.exists()  # the schema is there
    assert not Path(f"{db}-shm").exists()  # and SQLite, last out, removed the index

    # asked on the event loop (the memo), the check opens nothing: only SQLite could say
    assert store.cache_generation() is None
    assert store.peek((USER,), cached=True) is None
    assert store._watch is None
    assert open_files(db) == []

    assert store.get(USER, cached=True) is None  # the first cache check (off the loop)
    generation = store.cache_generation()
    assert isinstance(generation, int)
    watch = store._watch
    assert isinstance(watch, WalWatch)
    assert store._seen_header == watch.read()
    assert getattr(store._local, "conn", None) is not None
    assert "-shm" in open_files(db)
    assert store.cache_generation() == generation  # nothing committed since
    assert store._watch is watch


# 3. The header itself


def test_header_is_settled_and_changes_only_on_commit(store: SQLiteStore, db: Path) -> None:
    store.put(USER, {"v": 1})
    before = live_header(store)
    assert WalWatch.settled(before)
    assert live_header(store) == before  # nothing committed: same bytes
    assert store.get(USER) == {"v": 1}  # our own read commits nothing
    assert store.get(USER, cached=True) == {"v": 1}
    assert live_header(store) == before

    write_elsewhere(db, USER, {"v": 2})
    after = live_header(store)
    assert WalWatch.settled(after)
    assert after != before
    assert live_header(store) == after

    write_elsewhere(db, Key("user", "bob"), {"v": 1})
    assert live_header(store) not in (before, after)


# 4. SQLite's locks. On POSIX, closing any descriptor of a file drops every lock the process
# holds on it: the watch reads through SQLite's own descriptor or mapping and never opens or
# closes the -shm file.


def test_a_reader_in_another_process_leaves_the_header_alone(store: SQLiteStore, db: Path) -> None:
    store.put(USER, {"v": 1})
    before = live_header(store)
    read_elsewhere(db)  # opens the database, reads, commits nothing
    assert live_header(store) == before  # it found the index built: nothing rebuilt


@needs_proc
@pytest.mark.parametrize("how", READS)
def test_watches_coming_and_going_keep_this_processs_locks(tmp_path: Path, how: HeaderRead) -> None:
    """Opening and dropping watches while another connection of this process is inside
    `BEGIN IMMEDIATE` leaves the write lock (and every other lock) where it was."""
    path = wal_database(tmp_path / "locks.sqlite3")
    shm = Path(f"{path}-shm")
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
        shm_locks, db_locks = posix_locks(shm), posix_locks(path)
        assert {SHM_WRITE_LOCK, SHM_DMS_LOCK} <= shm_locks
        assert DB_SHARED_LOCK in db_locks
        assert begin_elsewhere(path) == "database is locked"

        for _ in range(3):
            watch = open_watch(str(path), 0, how)
            assert watch is not None
            assert WalWatch.settled(watch.read())
            del watch
            gc.collect()
        assert open_watch(str(path), 0, how) is not None  # and one never bound to a name
        gc.collect()

        assert posix_locks(shm) == shm_locks
        assert posix_locks(path) == db_locks
        assert begin_elsewhere(path) == "database is locked"
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert begin_elsewhere(path) == "began"
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    finally:
        check.close()


# A server process running one update while another process (a new worker, the CLI) opens
# the database and tries to write without waiting. In "reopen" the creating thread closed the
# store (and its watch was collected, so SQLite removed the index); while the update holds the
# lock, another request thread reopens the watch and closes its own connection, and the watch
# is dropped and collected again.
UPDATER = """
import gc, json, subprocess, sys, threading
from mfa_middleware.core.effects import Key
from mfa_middleware.stores.sqlite import SQLiteStore

db, mode, writer = sys.argv[1], sys.argv[2], sys.argv[3]
alice, bob = Key("user", "alice"), Key("user", "bob")
store = SQLiteStore(db)
store.put(alice, {"epoch": 1})
store.get(alice, cached=True)
if mode == "reopen":
    store.close()
    gc.collect()
other = []

def request():
    store.get(alice, cached=True)
    store.close()

def bump(doc):
    if mode == "reopen":
        t = threading.Thread(target=request)
        t.start()
        t.join()
        assert store._watch is not None
        store._watch = None  # what close() does, without closing the update's connection
        gc.collect()
    run = subprocess.run(
        [sys.executable, "-c", writer, db], capture_output=True, text=True, check=True
    )
    other.append(run.stdout.strip())
    return {"epoch": 2}

try:
    store.update(alice, bump)
    update = "ok"
except Exception as exc:
    update = repr(exc)
print(json.dumps({"other": other, "update": update, "alice": store.get(alice),
                  "bob": store.get(bob)}))
"""

NOWAIT_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT OR REPLACE INTO mfa_docs (kind, part, name, doc, expires) "
        "VALUES ('user', 'bob', '', '{}', NULL)"
    )
    conn.execute("COMMIT")
    print("wrote")
except sqlite3.OperationalError:
    print("locked")
"""


@pytest.mark.parametrize("mode", ["plain", "reopen"])
def test_an_update_in_progress_keeps_other_processes_out(tmp_path: Path, mode: str) -> None:
    """A store's process runs one `update`; inside it, another process opens the database
    and tries `BEGIN IMMEDIATE` without waiting. It must be refused, and the update must
    commit. Run in a subprocess: the failure can be a crash (SIGBUS on a truncated -shm)."""
    db = tmp_path / "updater.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", UPDATER, str(db), mode, NOWAIT_WRITER],
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert json.loads(result.stdout) == {
        "other": ["locked"],
        "update": "ok",
        "alice": {"epoch": 2},
        "bob": None,
    }


# 5. The PRAGMA data_version fallback


def test_unsettled_header_falls_back_to_data_version(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = live_watch(store)
    real = watch.read()
    torn = with_copies(real[:HEADER_SIZE], bytes(HEADER_SIZE))  # the two copies differ
    assert not WalWatch.settled(torn)
    read_header_as(monkeypatch, store, torn)

    store.put(USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    assert store._local.data_version is not None  # the fallback ran
    assert store.cache_generation() is None  # only SQLite can say: not on the event loop
    assert store.peek((USER,), cached=True) is None
    generation = store._generation
    assert store.get(USER, cached=True) == {"epoch": 1}
    assert store._generation == generation  # and it is exact: no commit, no drop

    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}
    assert store._generation != generation
    write_elsewhere(db, USER, {"epoch": 3})
    assert store.get(USER, cached=True) == {"epoch": 3}
    assert store._watch is watch
    assert store._seen_header == real  # an unsettled read is never remembered


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda h: h + b"\0", id="long"),
        pytest.param(
            lambda h: with_copies((WAL_INDEX_VERSION + 1).to_bytes(4, sys.byteorder) + h[4:48]),
            id="version",
        ),
        pytest.param(lambda h: with_copies(h[:12] + b"\0" + h[13:48]), id="not-initialised"),
    ],
)
def test_any_unsettled_header_falls_back(
    store: SQLiteStore,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    spoil: Callable[[bytes], bytes],
) -> None:
    bad = spoil(live_header(store))
    assert not WalWatch.settled(bad)
    read_header_as(monkeypatch, store, bad)
    store.put(USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}


def test_without_a_watch_data_version_keeps_the_cache_coherent(
    store: SQLiteStore, db: Path
) -> None:
    store._watchable = False  # as after open_watch said None (a database not in WAL mode)
    store.put(USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    assert store.cache_generation() is None  # only SQLite can say: not on the event loop
    generation = store._generation
    assert store.get(USER, cached=True) == {"epoch": 1}
    assert store._generation == generation

    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}
    assert store._generation != generation
    write_elsewhere(db, USER, {"epoch": 3})
    assert store.get(USER, cached=True) == {"epoch": 3}
    assert store._watch is None  # never opened: the store was told there is nothing to watch
    assert store._local.data_version is not None


def test_a_version_read_that_would_wait_leaves_the_answer_to_sqlite(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pragma watch never waits (busy timeout 0): busy, it says "cannot say" on the event
    loop, and the cache check off the loop asks SQLite on its own connection, which waits."""
    store = SQLiteStore(db, change_signal="pragma")
    try:
        store.put(USER, {"epoch": 1})
        assert store.get(USER, cached=True) == {"epoch": 1}
        watch = store._watch
        assert isinstance(watch, VersionWatch)
        assert watch._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0

        def busy(self: VersionWatch) -> bytes:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(VersionWatch, "read", busy)
        assert store.cache_generation() is None
        assert store.peek((USER,), cached=True) is None
        write_elsewhere(db, USER, {"epoch": 2})
        assert store.get(USER, cached=True) == {"epoch": 2}
        assert store._local.data_version is not None  # asked on the request's connection
        assert store._watch is watch  # kept: the next read may answer again
    finally:
        store.close()


@needs_proc
@pytest.mark.parametrize(
    ("change_signal", "watch_class"),
    [("pread", DescriptorWatch), ("mapping", MappingWatch), ("pragma", VersionWatch)],
)
def test_each_change_signal_sees_another_processs_commit(
    db: Path, change_signal: Any, watch_class: type
) -> None:
    store = SQLiteStore(db, change_signal=change_signal)
    try:
        store.put(USER, {"epoch": 1})
        assert store.get(USER, cached=True) == {"epoch": 1}
        generation = store.cache_generation()
        assert store.cache_generation() == generation  # nothing committed since
        write_elsewhere(db, USER, {"epoch": 2})
        assert store.cache_generation() != generation
        assert store.get(USER, cached=True) == {"epoch": 2}
        assert type(store._watch) is watch_class
        assert store._local.data_version is None  # never on the request's own connection
    finally:
        store.close()


def test_an_unknown_change_signal_is_refused(db: Path) -> None:
    unknown: Any = "mmap"
    with pytest.raises(ValueError, match="change_signal must be one of"):
        SQLiteStore(db, change_signal=unknown)
    assert not db.exists()  # refused before anything was created


def test_a_short_header_is_a_store_error_not_a_fallback(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer bytes than the header: the -shm file was truncated under SQLite, whose own next
    read of it would fault (see the test below), so the store does not ask SQLite: it raises,
    and serves again once the header is whole."""
    store.put(USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    read_header_as(monkeypatch, store, live_header(store)[:3])
    assert store.cache_generation() is None  # the memo cannot say; the gate's read answers
    assert store.peek((USER,), cached=True) is None
    with pytest.raises(StoreError, match="truncated"):
        store.get(USER, cached=True)
    assert store._local.data_version is None  # SQLite was not asked
    monkeypatch.undo()
    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}


def test_no_connection_is_opened_on_an_index_cut_short(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread's first connection reads the index at once, which faults on a -shm file cut
    short: a reader thread the event loop had not used yet, a server's new request thread.
    It is refused first, as the cached read is."""
    store.put(USER, {"epoch": 1})
    header = live_header(store)
    read_header_as(monkeypatch, store, header[:3])
    seen: list[str] = []

    def first_read_of_a_new_thread() -> None:
        try:
            seen.append(repr(store.get(USER)))
        except StoreError as exc:
            seen.append(str(exc))
        finally:
            store.close()

    for _ in range(2):
        thread = threading.Thread(target=first_read_of_a_new_thread)
        thread.start()
        thread.join()
        monkeypatch.undo()  # whole again: the second thread reads
    assert len(seen) == 2
    assert "truncated" in seen[0]
    assert seen[1] == "{'epoch': 1}"


# A -shm file truncated under SQLite, as no SQLite ever does (its first connection truncates
# only when no other process has the file open): a careless copy, a clean-up script. Run in a
# subprocess, since the outcome may be a signal. After it, a new process writes, which
# rebuilds the index.
TRUNCATED = """
import os, subprocess, sys
from mfa_middleware.core.effects import Key
from mfa_middleware.errors import StoreError
from mfa_middleware.stores.sqlite import SQLiteStore

db, signal, writer = sys.argv[1], sys.argv[2], sys.argv[3]
alice = Key("user", "alice")
store = SQLiteStore(db, change_signal=signal)
store.put(alice, {"epoch": 1})
assert store.get(alice, cached=True) == {"epoch": 1}
os.truncate(db + "-shm", 0)
print("truncated", flush=True)
for _ in range(3):
    for check in (store.cache_generation, lambda: store.get(alice, cached=True)):
        try:
            check()
            print("answered", flush=True)
        except StoreError:
            print("StoreError", flush=True)
subprocess.run([sys.executable, "-c", writer, db, "user", "alice", "", '{"epoch": 2}'], check=True)
print(store.get(alice, cached=True), flush=True)
"""


@needs_proc
@pytest.mark.parametrize(
    ("change_signal", "outcome"),
    [
        pytest.param(
            "pread",  # cache_generation answers None (cannot say), the read raises
            ["truncated", *["answered", "StoreError"] * 3, "{'epoch': 2}"],
            id="pread",
        ),
        pytest.param("mapping", ["truncated", "SIGBUS"], id="mapping"),  # its read faults
        pytest.param("pragma", ["truncated", "SIGBUS"], id="pragma"),  # SQLite's own read does
    ],
)
def test_a_truncated_shm_is_a_store_error_with_pread_and_a_signal_otherwise(
    tmp_path: Path, change_signal: str, outcome: list[str]
) -> None:
    db = tmp_path / "truncated.sqlite3"
    run = subprocess.run(
        [sys.executable, "-c", TRUNCATED, str(db), change_signal, WRITER],
        timeout=120,
        capture_output=True,
        text=True,
    )
    lines = run.stdout.splitlines()
    if run.returncode < 0:
        lines.append(signal.Signals(-run.returncode).name)
    else:
        assert run.returncode == 0, run.stderr[-2000:]
    assert lines == outcome, run.stderr[-2000:]


# 6. settled()


def test_settled_accepts_a_live_header(store: SQLiteStore) -> None:
    header = live_header(store)
    assert WalWatch.settled(header)
    assert int.from_bytes(header[:4], sys.byteorder) == WAL_INDEX_VERSION
    assert header[12] == 1


@pytest.mark.parametrize(
    ("name", "spoil"),
    [
        ("empty", lambda h: b""),
        ("one copy", lambda h: h[:HEADER_SIZE]),
        ("short", lambda h: h[:-1]),
        ("long", lambda h: h + b"\0"),
        ("copies differ", lambda h: h[:HEADER_SIZE] + h[:8] + bytes([h[8] ^ 1]) + h[9:HEADER_SIZE]),
        ("second copy zero", lambda h: h[:HEADER_SIZE] + bytes(HEADER_SIZE)),
        (
            "version",
            lambda h: with_copies((WAL_INDEX_VERSION + 1).to_bytes(4, sys.byteorder) + h[4:48]),
        ),
        (
            "version in the other byte order",
            lambda h: with_copies(
                WAL_INDEX_VERSION.to_bytes(4, "big" if sys.byteorder == "little" else "little")
                + h[4:48]
            ),
        ),
        ("not initialised", lambda h: with_copies(h[:12] + b"\0" + h[13:48])),
        ("isInit not 1", lambda h: with_copies(h[:12] + b"\2" + h[13:48])),
        ("all zero", lambda h: bytes(2 * HEADER_SIZE)),
    ],
)
def test_settled_rejects(store: SQLiteStore, name: str, spoil: Callable[[bytes], bytes]) -> None:
    header = live_header(store)
    bad = spoil(header)
    assert bad != header, name
    assert not WalWatch.settled(bad), name


# 7. fork


FORK_OK = 0
FORK_TIMEOUT = 60.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_store_survives_fork(store: SQLiteStore, db: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    store.put(USER, {"by": "parent", "n": 1})
    assert store.get(USER, cached=True) == {"by": "parent", "n": 1}
    assert USER in store._cache
    parent_watch = live_watch(store)  # opened by that cached read
    parent_local = store._local
    child_cached = ctx.Event()
    parent_wrote = ctx.Event()

    def child() -> None:
        def fail(code: int) -> None:
            sys.stdout.flush()
            os._exit(code)

        try:
            if not store._fork_pending:
                fail(10)
            if store.get(USER, cached=True) != {"by": "parent", "n": 1}:
                fail(11)  # the child did not see the parent's document
            if not store._inherited:
                fail(12)  # no fresh connections: the parent's are in use
            if store._local is parent_local or store._fork_pending:
                fail(13)
            if store._watch is None or store._watch is parent_watch:
                fail(14)  # the watch is the parent's, or was not reopened
            if store._inherited[0] != (parent_local, parent_watch):
                fail(15)
            child_cached.set()
            if not parent_wrote.wait(FORK_TIMEOUT):
                fail(16)
            if store.get(USER, cached=True) != {"by": "parent", "n": 2}:
                fail(17)  # the child's cache missed the parent's later commit
            store.put(USER, {"by": "child", "n": 3})
            if store.get(USER, cached=True) != {"by": "child", "n": 3}:
                fail(18)
            store.close()
        except BaseException:
            import traceback

            traceback.print_exc()
            fail(19)
        fail(FORK_OK)

    proc = ctx.Process(target=child)
    proc.start()
    try:
        assert child_cached.wait(FORK_TIMEOUT), f"child exited with {proc.exitcode}"
        store.put(USER, {"by": "parent", "n": 2})
        parent_wrote.set()
        proc.join(FORK_TIMEOUT)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == FORK_OK
    # The parent kept its own connection and watch, and sees the child's commit.
    assert store._inherited == []
    assert store._watch is parent_watch
    assert store._local is parent_local
    assert store.get(USER, cached=True) == {"by": "child", "n": 3}
    write_elsewhere(db, USER, {"by": "other", "n": 4})
    assert store.get(USER, cached=True) == {"by": "other", "n": 4}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@needs_proc
@pytest.mark.parametrize(
    "parent_used_it",
    [
        pytest.param(False, id="constructed-only"),
        pytest.param(
            True,
            id="used-before-fork",
            marks=pytest.mark.xfail(
                strict=True,
                reason="SQLite limitation: connections must not cross a fork. The child's "
                "fresh connections share the per-process lock state (unixInodeInfo) it "
                "inherited from the parent's open connection, so they take no OS locks of "
                "their own; when the parent closes its store, SQLite there believes it is "
                "the last user, checkpoints and deletes the WAL, and the child's later "
                "commits go to the deleted file",
            ),
        ),
    ],
)
def test_the_parent_closing_its_store_after_fork_keeps_the_childs_writes(
    store: SQLiteStore, db: Path, parent_used_it: bool
) -> None:
    """A preloading server builds its app (and store) before forking its workers; a worker
    writes; the master closes its store. The worker's commit must survive."""
    ctx = multiprocessing.get_context("fork")
    if parent_used_it:
        store.put(USER, {"by": "parent"})
        assert store.get(USER, cached=True) == {"by": "parent"}
        assert open_files(db) != []
    else:
        write_elsewhere(db, USER, {"by": "parent"})
        assert open_files(db) == []  # nothing of SQLite's crosses the fork
    child_ready = ctx.Event()
    parent_closed = ctx.Event()

    def child() -> None:
        code = 1
        try:
            if store.get(USER, cached=True) == {"by": "parent"}:  # fresh connections
                child_ready.set()
                if parent_closed.wait(FORK_TIMEOUT):
                    store.put(USER, {"by": "child"})
                    code = FORK_OK
        finally:
            os._exit(code)  # leaves its connections open: SQLite replays its WAL later

    proc = ctx.Process(target=child)
    proc.start()
    try:
        assert child_ready.wait(FORK_TIMEOUT), f"child exited with {proc.exitcode}"
        store.close()  # e.g. a preloading master shutting its own store
        gc.collect()  # and its watch's connection with it
        assert open_files(db) == []
        parent_closed.set()
        proc.join(FORK_TIMEOUT)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == FORK_OK
    again = SQLiteStore(db)
    try:
        assert again.get(USER) == {"by": "child"}
    finally:
        again.close()


# 8. close() from a worker thread and from the creating thread


def test_close_from_a_worker_thread_keeps_the_watch(store: SQLiteStore, db: Path) -> None:
    watch = live_watch(store)
    store.put(USER, {"epoch": 1})
    seen: list[Doc | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            seen.append(store.get(USER, cached=True))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            store.close()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert errors == []
    assert seen == [{"epoch": 1}]
    assert store._watch is watch
    assert WalWatch.settled(watch.read())  # still mapped
    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}
    assert store._watch is watch
    assert store._local.data_version is None  # seen through the watch


def test_close_from_the_creating_thread_drops_and_reopens_the_watch(
    store: SQLiteStore, db: Path
) -> None:
    watch = live_watch(store)
    store.put(USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    store.close()
    assert store._watch is None
    assert getattr(store._local, "conn", None) is None
    assert WalWatch.settled(watch.read())  # a reader still holding it reads on safely
    del watch
    gc.collect()

    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER, cached=True) == {"epoch": 2}
    reopened = store._watch
    assert reopened is not None
    assert store._seen_header == reopened.read()
    assert store._local.data_version is None  # the new watch saw the commit, not the PRAGMA

    write_elsewhere(db, USER, {"epoch": 3})
    assert store.get(USER, cached=True) == {"epoch": 3}
    assert store._watch is reopened
    store.put(USER, {"epoch": 4})
    assert store.get(USER, cached=True) == {"epoch": 4}


@needs_proc
def test_a_reopened_watch_sees_what_was_committed_while_everything_was_closed(
    store: SQLiteStore, db: Path
) -> None:
    write_elsewhere(db, USER, {"epoch": 1})  # and closed: SQLite removed the index
    assert store.get(USER, cached=True) == {"epoch": 1}  # the first watch: a fresh index
    store.close()
    gc.collect()
    assert open_files(db) == []  # nobody has the database open any more

    write_elsewhere(db, USER, {"epoch": 2})
    assert store.get(USER) == {"epoch": 2}
    assert store.get(USER, cached=True) == {"epoch": 2}


@needs_proc
def test_the_cache_is_dropped_before_the_new_header_is_recorded(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread compares the header with the recorded one and trusts its cache when they
    match: recording first would let it serve the old document in between."""
    store.put(USER, {"epoch": 0})
    assert store.get(USER, cached=True) == {"epoch": 0}
    seen_at_drop: list[bytes | None] = []
    drop = store._drop_cache

    def recording_drop() -> None:
        seen_at_drop.append(store._seen_header)
        drop()

    monkeypatch.setattr(store, "_drop_cache", recording_drop)
    before = store._seen_header
    write_elsewhere(db, USER, {"epoch": 1})
    assert store.get(USER, cached=True) == {"epoch": 1}
    assert seen_at_drop
    assert seen_at_drop[0] == before  # still the old header while dropping
    assert store._seen_header != before
