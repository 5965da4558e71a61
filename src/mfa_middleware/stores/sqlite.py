"""The embedded default: a SQLite file, stdlib only, safe for threads and for several processes.

Each thread gets its own connection (WAL mode, so readers never block the writer). `update`
runs inside `BEGIN IMMEDIATE`, which takes SQLite's write lock first, so read-modify-write is
atomic across threads and processes alike.

Cached reads (the gate's settings and user record) come from a process-wide cache kept
coherent without polling the rows: our own writes update it at once, and a change of the WAL
index header (`sqlite_wal`, rewritten by every commit of any process) drops it when anyone else
wrote. A force-logout done by another process is therefore seen on the very next request.
`change_signal` says how the header is read: `"pread"` (the default: one system call on
SQLite's own descriptor of the `-shm` file, which cannot fault), `"mapping"` (a copy from
SQLite's own memory mapping of it: no system call, but a `-shm` truncated under SQLite kills
the process with SIGBUS) or `"pragma"` (`PRAGMA data_version` on every check, on the watch's
own connection, the slowest; also what the other two fall back to where they cannot read the
header). Where there is no watch at all (a database not in WAL mode), each thread asks
`PRAGMA data_version` on its own connection, and `cache_generation` cannot say.

A store created before `fork` (a preloading server) opens fresh connections in the child:
SQLite connections must not cross a fork.

Under an event loop, what can wait runs in the store's own threads (`off_loop`): writes
(`update` waits up to `timeout` for the write lock another process may hold, and a write may
purge or checkpoint) in one writer thread; reads that cannot be answered at once in
`READ_THREADS` reader threads; each thread has its own connection. One writer thread because
SQLite takes one writer at a time anyway: this process's writes queue in order instead of
polling the lock against each other, and reads never queue behind a write that waits. A call
that waited in the queue longer than `timeout` fails as a busy database would, so an answer
comes within about twice `timeout`.

Reads stay on the loop when they cannot wait (`peek`), so the gate's read costs what it did: a
cached read when the watch alone says the cache is current, and otherwise one read on the
loop thread's own connection, which a reader thread opens for it (the loop opens nothing) with
a busy timeout of 0 and read-only. In WAL mode a read waits for no writer and no checkpoint;
when SQLite is busy all the same (rebuilding the index after a crash), it says so at once and
the read goes to a reader thread, which waits. A thread hop (two wake-ups) costs 30 µs on an
idle machine and 100-230 µs on a busy 2-core VM, several times what the read itself does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeVar, get_args

from mfa_middleware.core.bounded import Bounded
from mfa_middleware.errors import StoreError
from mfa_middleware.stores.base import Store
from mfa_middleware.stores.sqlite_wal import WalWatch, open_watch

if TYPE_CHECKING:  # types only: a store loads none of the core
    from mfa_middleware.core.effects import Doc, Key, Updater

SCHEMA = """
CREATE TABLE IF NOT EXISTS mfa_docs (
    kind TEXT NOT NULL,
    part TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    expires REAL,
    PRIMARY KEY (kind, part, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mfa_docs_expires ON mfa_docs (expires) WHERE expires IS NOT NULL;
"""
PURGE_EVERY = 500
CACHE_LIMIT = 10_000  # documents per generation of the bounded cache
READ_THREADS = 2  # per store, for reads that cannot be answered at once under an event loop
LANE = "mfa-sqlite-"  # the name of the store's own threads starts with this
_Cached: TypeAlias = "tuple[Doc | None, float | None]"
ChangeSignal = Literal["pread", "mapping", "pragma"]
T = TypeVar("T")


_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_OPEN_STORES):
        store._fork_pending = True


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to survive
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteStore(Store):
    def __init__(
        self, path: str | Path, *, timeout: float = 5.0, change_signal: ChangeSignal = "pread"
    ) -> None:
        if change_signal not in get_args(ChangeSignal):
            raise ValueError(f"change_signal must be one of {get_args(ChangeSignal)}")
        self.path = str(path)
        self.timeout = timeout
        self.change_signal = change_signal
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: Bounded[Key, _Cached] = Bounded(CACHE_LIMIT)  # under self._lock
        self._generation = 0
        self._writes = 0
        self._fork_pending = False
        self._owner = threading.get_ident()
        self._inherited: list[object] = []  # a parent's connections: kept, never used or closed
        self._seen_header: bytes | None = None
        self._watch: WalWatch | None = None  # opened by the first cache check
        self._watchable = self.path != ":memory:"
        # nothing else can hold an in-memory database's lock: its calls never wait
        self._inline = self.path == ":memory:"
        self._lanes_lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None  # created by the first off_loop call
        self._readers: ThreadPoolExecutor | None = None
        self._lane_conns: list[sqlite3.Connection] = []  # theirs, closed when they stop
        self._quick: dict[int, sqlite3.Connection] = {}  # an event loop's thread: no-wait reads
        with self._errors():
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(SCHEMA)
        if self.path != ":memory:":
            self.close()  # no connection left open by the constructor: a preloading server
            # that builds its app before forking workers hands them no SQLite state
        _OPEN_STORES.add(self)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def _forked(self) -> None:
        """In a child process: leave the parent's connections and threads alone (none of its
        threads exist here) and open our own."""
        self._inherited.append((self._local, self._watch))
        if self._writer is not None or self._readers is not None:
            self._inherited.append((self._writer, self._readers, self._lane_conns, self._quick))
        self._fork_pending = False
        self._local = threading.local()
        self._lock = threading.Lock()
        self._lanes_lock = threading.Lock()
        self._writer = self._readers = None
        self._lane_conns = []
        self._quick = {}
        with self._lock:
            self._cache.clear()
            self._generation += 1
        self._seen_header = None
        self._watch = None  # reopened by the next cache check

    def _connection(self) -> sqlite3.Connection:
        if self._fork_pending:
            self._forked()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._refuse_if_cut_short()  # a new connection's first look at the index would fault
            # one of our threads: its connection is closed by close(), from another thread
            lane = threading.current_thread().name.startswith(LANE)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=not lane
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.conn = conn
            self._local.data_version = None
            if lane:
                with self._lanes_lock:
                    self._lane_conns.append(conn)
        return conn

    def _row(self, conn: sqlite3.Connection, key: Key) -> tuple[Doc | None, float | None]:
        row = conn.execute(
            "SELECT doc, expires FROM mfa_docs WHERE kind=? AND part=? AND name=?",
            (key.kind, key.part, key.name),
        ).fetchone()
        if row is None or (row[1] is not None and row[1] <= self.clock()):
            return None, None
        return json.loads(row[0]), row[1]

    def _drop_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._generation += 1

    def _unchanged(self) -> bool:
        """Whether the watch alone says the cache is current, without asking SQLite or
        opening anything (so on an event loop too); the cache is dropped first when anyone
        committed since the last look. False when only SQLite can say: no watch yet, a fork,
        a header being written or cut short, a version read that would have waited."""
        watch = self._watch
        if watch is None or self._fork_pending:
            return False
        try:
            header = watch.read()
        except sqlite3.OperationalError:  # a VersionWatch read that would have waited
            return False
        if header == self._seen_header:  # nobody committed since: the common case
            return True
        if not watch.settled(header):
            return False
        self._drop_cache()  # first: a thread that sees the new header finds it dropped
        self._seen_header = header
        return True

    def _check_cache(self, conn: sqlite3.Connection) -> None:
        """Drop the cache when any connection committed since we last looked; may open the
        watch and ask SQLite (so never on an event loop)."""
        if self._unchanged():
            return
        watch = self._watch
        if watch is None and self._watchable:
            # a new watch's header compares with nothing: an index SQLite rebuilt after every
            # connection closed reads the same whatever was committed meanwhile
            self._seen_header = None
            watch = self._watch = self._open_watch()
            self._watchable = watch is not None
            if self._unchanged():
                return
        self._refuse_if_cut_short()  # SQLite's own next read of it would fault
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._local.data_version:
            self._local.data_version = version
            self._drop_cache()

    def _refuse_if_cut_short(self) -> None:
        watch = self._watch
        if watch is not None and watch.cut_short():
            raise StoreError(
                f"SQLite store {self.path!r}: the -shm file was truncated while in use; "
                "waiting for a process that opens the database to rebuild it"
            )

    def _open_watch(self) -> WalWatch | None:
        """The change signal asked for; `PRAGMA data_version` where the header cannot be read
        (no /proc, another VFS); None for a database not in WAL mode."""
        watch = open_watch(self.path, self.timeout, self.change_signal)
        if watch is None and self.change_signal != "pragma":
            watch = open_watch(self.path, self.timeout, "pragma")
        return watch

    def cache_generation(self) -> int | None:
        """Read from the watch alone, so the memo may ask it on an event loop; None (the gate
        then runs, and its read opens or asks what is needed) when only SQLite can say."""
        try:
            if self._unchanged():
                return self._generation
            if self._inline:
                self._check_cache(self._connection())
                return self._generation
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        return None

    def _cached(self, keys: tuple[Key, ...]) -> tuple[int, list[_Cached | None]]:
        """The cache's generation and its live entries for `keys` (None: not cached)."""
        now = self.clock()
        with self._lock:
            generation = self._generation
            hits = [self._cache.get(key) for key in keys]
        return generation, [
            hit if hit is not None and (hit[1] is None or hit[1] > now) else None for hit in hits
        ]

    def peek(self, keys: tuple[Key, ...], *, cached: bool) -> list[Doc | None] | None:
        """From the cache, or read with the loop thread's own connection (see the module
        docstring); only while the watch reads a whole, settled header: SQLite's read of an
        index cut short would fault, and the cache must be current to be filled."""
        try:
            if not self._unchanged():
                return None
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        hits: list[_Cached | None] | None = None
        generation = 0
        if cached:
            generation, hits = self._cached(keys)
            if None not in hits:  # all in memory: the gate's common case
                return [hit[0] for hit in hits if hit is not None]
        quick = self._quick.get(threading.get_ident())
        if quick is None:
            return None
        try:
            return self._fetch(quick, keys, hits, generation)
        except sqlite3.Error:  # busy (it would have waited) or closed: a reader thread asks
            return None

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.get_many((key,), cached=cached)[0]

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        with self._errors():
            conn = self._connection()
            if not cached:
                return self._fetch(conn, keys, None, 0)
            self._check_cache(conn)
            generation, hits = self._cached(keys)
            return self._fetch(conn, keys, hits, generation)

    def _fetch(
        self,
        conn: sqlite3.Connection,
        keys: tuple[Key, ...],
        hits: list[_Cached | None] | None,
        generation: int,
    ) -> list[Doc | None]:
        """The documents: the cached `hits` (None: not a cached read), the others read with
        `conn` and cached, unless the cache was dropped since `generation` (the read may
        predate the write that dropped it)."""
        if hits is None:
            return [self._row(conn, key)[0] for key in keys]
        docs: list[Doc | None] = []
        for key, hit in zip(keys, hits, strict=True):
            if hit is not None:
                docs.append(hit[0])
                continue
            doc, expires = self._row(conn, key)
            with self._lock:
                if generation == self._generation:
                    self._cache[key] = (doc, expires)
            docs.append(doc)
        return docs

    def _wrote(self, conn: sqlite3.Connection, key: Key) -> None:
        with self._lock:
            self._cache.pop(key)
            self._generation += 1
            self._writes += 1
            purge = self._writes % PURGE_EVERY == 0
        if purge:
            conn.execute(
                "DELETE FROM mfa_docs WHERE expires IS NOT NULL AND expires <= ?", (self.clock(),)
            )

    def _store(self, conn: sqlite3.Connection, key: Key, doc: Doc, expires: float | None) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO mfa_docs (kind, part, name, doc, expires) VALUES (?,?,?,?,?)",
            (key.kind, key.part, key.name, json.dumps(doc, separators=(",", ":")), expires),
        )

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        with self._errors():
            conn = self._connection()
            self._store(conn, key, doc, None if ttl is None else self.clock() + ttl)
            self._wrote(conn, key)

    def delete(self, key: Key) -> None:
        with self._errors():
            conn = self._connection()
            conn.execute(
                "DELETE FROM mfa_docs WHERE kind=? AND part=? AND name=?",
                (key.kind, key.part, key.name),
            )
            self._wrote(conn, key)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        with self._errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                old, expires = self._row(conn, key)
                new = fn(None if old is None else json.loads(json.dumps(old)))
                if new is None:
                    conn.execute(
                        "DELETE FROM mfa_docs WHERE kind=? AND part=? AND name=?",
                        (key.kind, key.part, key.name),
                    )
                else:
                    self._store(conn, key, new, self.clock() + ttl if ttl is not None else expires)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may have ended it already
                    conn.execute("ROLLBACK")
                raise
            self._wrote(conn, key)
            return old, new

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        with self._errors():
            rows = (
                self._connection()
                .execute(
                    "SELECT name, doc FROM mfa_docs WHERE kind=? AND part=? "
                    "AND (expires IS NULL OR expires > ?) ORDER BY name",
                    (kind, part, self.clock()),
                )
                .fetchall()
            )
            return [(name, json.loads(doc)) for name, doc in rows]

    # -- under an event loop ------------------------------------------------------------

    async def off_loop(self, call: Callable[[], T], *, write: bool) -> T:
        """In the writer thread or a reader thread (see the module docstring)."""
        if self._inline:
            return call()
        import asyncio  # loaded by the running loop: not made part of `import mfa_middleware`

        loop = asyncio.get_running_loop()
        # a reader thread also opens the loop's thread its connection for reads that cannot wait
        ident = None if write or threading.get_ident() in self._quick else threading.get_ident()
        lane = self._lane(write)
        return await loop.run_in_executor(lane, self._in_lane, call, time.monotonic(), ident)

    def _lane(self, write: bool) -> ThreadPoolExecutor:
        if self._fork_pending:
            self._forked()
        lane = self._writer if write else self._readers
        if lane is None:
            with self._lanes_lock:
                lane = self._writer if write else self._readers
                if lane is None:
                    # no initializer: a thread holding the store would keep an unclosed store
                    # (and its threads, and its connections) alive for good
                    lane = ThreadPoolExecutor(
                        1 if write else READ_THREADS,
                        thread_name_prefix=LANE + ("writer" if write else "reader"),
                    )
                    if write:
                        self._writer = lane
                    else:
                        self._readers = lane
        return lane

    def _in_lane(self, call: Callable[[], T], asked: float, quick_for: int | None) -> T:
        if time.monotonic() - asked > self.timeout:
            raise StoreError(
                f"SQLite store {self.path!r}: busy; this call waited {self.timeout} s for the "
                "store's thread, behind calls that waited for the database's lock"
            )
        result = call()
        if quick_for is not None:
            self._open_quick(quick_for)
        return result

    def _open_quick(self, ident: int) -> None:
        """The connection thread `ident` (an event loop's) reads with at once: opened here,
        since opening may wait; busy timeout 0, so a read that would wait fails instead."""
        try:
            self._refuse_if_cut_short()
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=1")
        except (StoreError, sqlite3.Error):  # the next read that goes to a thread tries again
            return
        with self._lanes_lock:
            if ident in self._quick:  # two first reads at once
                conn.close()
            else:
                self._quick[ident] = conn

    def close(self) -> None:
        """Close this thread's connection; in the thread that created the store, also the
        store's own threads (once their calls are done) with their connections, and the change
        watch (request threads of a server close just their own connection)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if threading.get_ident() == self._owner:
            self._shut()

    def _shut(self) -> None:
        with self._lanes_lock:
            lanes = [lane for lane in (self._writer, self._readers) if lane is not None]
            self._writer = self._readers = None
        for lane in lanes:
            lane.shutdown(wait=True)
        with self._lanes_lock:
            conns, self._lane_conns = self._lane_conns, []
            conns += self._quick.values()
            self._quick = {}
        for conn in conns:  # their threads are gone, the loops' forgotten: no one uses them
            conn.close()
        self._watch = None  # its connection closes when collected, after any reader
        self._seen_header = None

    async def aclose(self) -> None:
        """`close`, waiting for the store's threads (and closing, which may checkpoint) off
        the event loop."""
        if threading.get_ident() == self._owner:
            import asyncio

            await asyncio.to_thread(self._shut)
        self.close()
