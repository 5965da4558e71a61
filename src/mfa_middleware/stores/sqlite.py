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
the process with SIGBUS) or `"pragma"` (`PRAGMA data_version` on every check, the slowest; also
what the other two fall back to where they cannot read the header).

A store created before `fork` (a preloading server) opens fresh connections in the child:
SQLite connections must not cross a fork.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.errors import StoreError
from mfa_middleware.stores.base import Store
from mfa_middleware.stores.sqlite_wal import WATCHED, HeaderRead, WalWatch, open_watch

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
_Cached = tuple[Doc | None, float | None]
ChangeSignal = Literal["pread", "mapping", "pragma"]


_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_OPEN_STORES):
        store._fork_pending = True


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to survive
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteStore(Store):
    in_process = True

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
        self._watchable = self.path != ":memory:" and change_signal != "pragma"
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
        """In a child process: leave the parent's connections alone and open our own."""
        self._inherited.append((self._local, self._watch))
        self._fork_pending = False
        self._local = threading.local()
        self._lock = threading.Lock()
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
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.conn = conn
            self._local.data_version = None
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

    def _check_cache(self, conn: sqlite3.Connection) -> None:
        """Drop the cache when any connection committed since we last looked."""
        watch = self._watch
        if watch is None and self._watchable:
            # a new watch's header compares with nothing: an index SQLite rebuilt after every
            # connection closed reads the same whatever was committed meanwhile
            self._seen_header = None
            how: HeaderRead = "mapping" if self.change_signal == "mapping" else "pread"
            watch = self._watch = open_watch(self.path, self.timeout, how)
            self._watchable = watch is not None
        if watch is not None:
            header = watch.read()
            if header == self._seen_header:  # nobody committed since: the common case
                return
            if watch.settled(header):
                self._drop_cache()  # first: a thread that sees the new header finds it dropped
                self._seen_header = header
                return
            if len(header) < WATCHED:  # SQLite itself would fault on its next read of it
                raise StoreError(
                    f"SQLite store {self.path!r}: the -shm file was truncated while in use; "
                    "waiting for a process that opens the database to rebuild it"
                )
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._local.data_version:
            self._local.data_version = version
            self._drop_cache()

    def cache_generation(self) -> int | None:
        watch = self._watch
        try:
            if watch is not None and not self._fork_pending and watch.read() == self._seen_header:
                return self._generation  # nobody committed since we last looked: the common case
            self._check_cache(self._connection())
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        return self._generation

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.get_many((key,), cached=cached)[0]

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        with self._errors():
            conn = self._connection()
            if not cached:
                return [self._row(conn, key)[0] for key in keys]
            self._check_cache(conn)
            now = self.clock()
            with self._lock:
                generation = self._generation
                hits = [self._cache.get(key) for key in keys]
            docs: list[Doc | None] = []
            for key, hit in zip(keys, hits, strict=True):
                if hit is not None and (hit[1] is None or hit[1] > now):
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

    def close(self) -> None:
        """Close this thread's connection; in the thread that created the store, the change
        watch as well (worker threads close just their own connection when they finish)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if threading.get_ident() == self._owner:
            self._watch = None  # its connection closes when collected, after any reader
            self._seen_header = None
