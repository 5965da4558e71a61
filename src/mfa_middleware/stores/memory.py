"""A store in a dict: for tests and single-process experiments; forgets everything on exit."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from mfa_middleware.stores.base import Store

if TYPE_CHECKING:  # types only: a store loads none of the core
    from mfa_middleware.core.effects import Doc, Key, Updater

_Entry: TypeAlias = "tuple[Doc, float | None]"
T = TypeVar("T")


class MemoryStore(Store):
    """Every call is a dict operation under a lock held for microseconds: nothing waits, so
    the async twins run inline, with no thread."""

    def __init__(self) -> None:
        self._data: dict[Key, _Entry] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def cache_generation(self) -> int | None:
        return self._generation

    def _live(self, key: Key) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self.clock():
            del self._data[key]
            return None
        return entry

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        entry = self._live(key)
        return None if entry is None else entry[0]

    def peek(self, keys: tuple[Key, ...], *, cached: bool) -> list[Doc | None] | None:
        return self.get_many(keys, cached=cached)

    async def off_loop(self, call: Callable[[], T], *, write: bool) -> T:
        return call()

    def _write(self, key: Key, doc: Doc | None, expires: float | None) -> None:
        self._generation += 1
        if doc is None:
            self._data.pop(key, None)
        else:
            json.dumps(doc)  # the same documents must be storable in SQLite and Redis
            self._data[key] = (copy.deepcopy(doc), expires)

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        with self._lock:
            self._write(key, doc, None if ttl is None else self.clock() + ttl)

    def delete(self, key: Key) -> None:
        with self._lock:
            self._generation += 1
            self._data.pop(key, None)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        with self._lock:
            entry = self._live(key)
            old = None if entry is None else entry[0]
            new = fn(copy.deepcopy(old))
            expires = self.clock() + ttl if ttl is not None else (entry[1] if entry else None)
            self._write(key, new, expires)
            return old, (None if new is None else self._data[key][0])

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        with self._lock:
            keys = [k for k in self._data if k.kind == kind and k.part == part]
            return [(k.name, entry[0]) for k in keys if (entry := self._live(k)) is not None]
