"""The embedded default: a SQLite file, stdlib only, safe for threads and for several processes.

Each thread gets its own connection (WAL mode, so readers never block the writer). `update`
runs inside `BEGIN IMMEDIATE`, which takes SQLite's write lock first, so read-modify-write is
atomic across threads and processes alike.

Cached reads (the gate's settings and user record) come from a process-wide cache kept
coherent without polling the rows: our own writes update it at once, and `PRAGMA data_version`
(which changes when any other connection commits) drops it when anyone else wrote. A force-logout
done by another process is therefore seen on the very next request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.errors import StoreError
from mfa_middleware.stores.base import Store

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
_Cached = tuple[Doc | None, float | None]


class SQLiteStore(Store):
    in_process = True

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: dict[Key, _Cached] = {}
        self._generation = 0
        self._writes = 0
        with self._errors():
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(SCHEMA)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
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

    def _check_cache(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._local.data_version:
            self._local.data_version = version
            with self._lock:
                self._cache.clear()
                self._generation += 1

    def cache_generation(self) -> int | None:
        with self._errors():
            self._check_cache(self._connection())
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
            docs: list[Doc | None] = []
            for key in keys:
                hit = self._cache.get(key)
                if hit is not None and (hit[1] is None or hit[1] > now):
                    docs.append(hit[0])
                    continue
                generation = self._generation
                doc, expires = self._row(conn, key)
                with self._lock:
                    if generation == self._generation:
                        self._cache[key] = (doc, expires)
                docs.append(doc)
            return docs

    def _wrote(self, conn: sqlite3.Connection, key: Key) -> None:
        with self._lock:
            self._cache.pop(key, None)
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
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
