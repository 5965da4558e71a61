"""The store contract: a few atomic document operations, each with a sync and an async twin.

Stores know nothing of 2FA. They keep JSON documents under `Key`s, expire them after a TTL,
and apply `update` atomically (a pure function run under a lock or a transaction, retried on
conflict), so every rule lives once in the core and each backend stays small. Documents handed
out are read-only by contract: callers build new records rather than mutate them.

`cached=True` reads may be answered from a local cache, but only one the store keeps coherent
(it sees every write that could make it stale), so a cached read is never older than the last
write the caller could know about.

Under an event loop (ASGI, async Django) nothing that can wait may run on the loop: one write
waiting for a lock would hold up every request of the worker. So the async twins are written
once, here: a read the store can answer at once, without waiting for anything (`peek`: from
memory, or for SQLite one read that refuses to wait), stays inline, which keeps the gate's read
as cheap as it was; every other call goes to `off_loop`, which each store defines by what its
calls can wait for (the default: a thread; memory: inline; SQLite: its own threads; Django:
`sync_to_async`). Stores with an async client of their own (Redis) override the twins
instead.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # types only: a store loads none of the core
    from mfa_middleware.core.effects import Doc, Key, Updater


Clock = Callable[[], float]
T = TypeVar("T")


class Store(ABC):
    """Base of every store. Subclasses implement the sync methods; the async twins run them
    through `peek` and `off_loop` (see the module docstring), or are overridden by a store
    with an async client."""

    clock: Clock = staticmethod(time.time)

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
        (here or, for shared stores, anywhere); None when the store cannot say without
        waiting (it is asked on the event loop, for every request). The gate uses it to
        replay a verified request's answer without reading anything."""
        return None

    def close(self) -> None:  # noqa: B027 (a no-op by default, on purpose)
        """Release connections; the store may not be used afterwards."""

    def peek(self, keys: tuple[Key, ...], *, cached: bool) -> list[Doc | None] | None:
        """What `get_many(keys, cached=cached)` would return, when the store can answer at
        once, without waiting for anything (a lock, a connection); None when it cannot."""
        return None

    async def off_loop(self, call: Callable[[], T], *, write: bool) -> T:
        """Carry out a sync call that may wait (a lock, a disk, a network) without holding up
        the event loop: by default in a thread of the loop's executor. `write` says whether
        the call writes, for stores that keep writes apart from reads."""
        import asyncio  # loaded by the running loop: not made part of `import mfa_middleware`

        return await asyncio.to_thread(call)

    async def aget(self, key: Key, *, cached: bool = False) -> Doc | None:
        return (await self.aget_many((key,), cached=cached))[0]

    async def aget_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        if (docs := self.peek(keys, cached=cached)) is not None:
            return docs
        return await self.off_loop(partial(self.get_many, keys, cached=cached), write=False)

    async def aput(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        await self.off_loop(partial(self.put, key, doc, ttl=ttl), write=True)

    async def adelete(self, key: Key) -> None:
        await self.off_loop(partial(self.delete, key), write=True)

    async def aupdate(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        return await self.off_loop(partial(self.update, key, fn, ttl=ttl), write=True)

    async def ascan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        return await self.off_loop(partial(self.scan, kind, part), write=False)

    async def aclose(self) -> None:
        await self.off_loop(self.close, write=False)
