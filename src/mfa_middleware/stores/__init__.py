"""State stores: one small contract (`Store`), implemented in memory, SQLite and Redis."""

from __future__ import annotations

from mfa_middleware.stores.base import Store
from mfa_middleware.stores.memory import MemoryStore
from mfa_middleware.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "store_from_url"]


def store_from_url(url: str) -> Store:
    """A store from a URL, for settings files, environment variables and the CLI.

    `sqlite:///absolute/path.sqlite3`, `sqlite:relative/path.sqlite3`, `memory://`, and the
    Redis forms `redis://`, `rediss://`, `unix://` (these need the `redis` extra).
    """
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError("a sqlite: URL needs a path, e.g. sqlite:///var/lib/app/mfa.sqlite3")
        return SQLiteStore(path)
    if url == "memory://":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mfa_middleware.stores.redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"unknown store URL {url!r}: use sqlite:, redis://, rediss://, unix:// or memory://"
    )
