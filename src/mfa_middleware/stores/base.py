"""The store contract: a few atomic document operations, each with a sync and an async twin.

Stores know nothing of 2FA. They keep JSON documents under `Key`s, expire them after a TTL,
and apply `update` atomically (a pure function run under a lock or a transaction, retried on
conflict), so every rule lives once in the core and each backend stays small. Documents handed
out are read-only by contract: callers build new records rather than mutate them.

`cached=True` reads may be answered from a local cache, but only one the store keeps coherent
(it sees every write that could make it stale), so a cached read is never older than the last
write the caller could know about.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from mfa_middleware.core.effects import Doc, Key, Updater

Clock = Callable[[], float]


class Store(ABC):
    """Base of every store. Subclasses implement the sync methods; async twins default to them
    (right for in-process stores whose calls take microseconds) and networked stores override."""

    clock: Clock = staticmethod(time.time)
    in_process = False  # True: calls never wait on a network (memory, SQLite)

    def use_clock(self, clock: Clock) -> None:
        """Expire documents by the same clock as the rest of the middleware (tests fix it)."""
        self.clock = clock

    @abstractmethod
    def get(self, key: Key, *, cached: bool = False) -> Doc | None: ...

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        return [self.get(key, cached=cached) for key in keys]

    @abstractmethod
    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: Key) -> None: ...

    @abstractmethod
    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        """Atomically replace the document with `fn(current)`; returns (old, new).

        A new document keeps the old one's expiry unless `ttl` is given."""

    @abstractmethod
    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]: ...

    def cache_generation(self) -> int | None:
        """A number that changes whenever a document this process may have cached changes
        (here or, for shared stores, anywhere); None when the store cannot say. The gate uses
        it to replay a verified request's answer without reading anything."""
        return None

    def close(self) -> None:  # noqa: B027 (a no-op by default, on purpose)
        """Release connections; the store may not be used afterwards."""

    async def aget(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.get(key, cached=cached)

    async def aget_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        return self.get_many(keys, cached=cached)

    async def aput(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self.put(key, doc, ttl=ttl)

    async def adelete(self, key: Key) -> None:
        self.delete(key)

    async def aupdate(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        return self.update(key, fn, ttl=ttl)

    async def ascan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        return self.scan(kind, part)

    async def aclose(self) -> None:
        self.close()
