"""A bounded cache for the hot path: two generations of at most `limit` entries each.

Lookups try the young generation, then the old one (an old hit is moved back to the young).
When the young generation is full it becomes the old one and the previous old one is dropped
whole, so an entry in use survives, memory never exceeds about twice `limit` entries, and
nothing is ever scanned or sorted: every operation is O(1). Cheaper than an LRU's per-hit
bookkeeping, and unlike clearing everything when full, a busy worker keeps its warm entries.
Keys are values (strings, tuples), never object ids.

Not locked: `get` may move an entry between generations, so a cache that threads share and
also invalidate (a store's) takes its own lock around lookups as well as writes, or an entry
being moved could come back after it was dropped. A cache whose values never go stale (a
token's decoding, a parsed document) needs no lock.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    __slots__ = ("_old", "_young", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a bounded cache holds at least one entry")
        self.limit = limit
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        if value is not None:
            return value
        value = self._old.get(key)
        if value is not None:
            self[key] = value  # still in use: keep it through the next rotation
        return value

    def __setitem__(self, key: K, value: V) -> None:
        young = self._young
        if key not in young and len(young) >= self.limit:
            self._old = young
            young = self._young = {}
        young[key] = value

    def __contains__(self, key: object) -> bool:
        """Held in either generation (nothing moves)."""
        return key in self._young or key in self._old

    def pop(self, key: K) -> None:
        self._young.pop(key, None)
        self._old.pop(key, None)

    def clear(self) -> None:
        self._young = {}
        self._old = {}

    def __len__(self) -> int:
        """Entries held, counting a key in both generations once per generation."""
        return len(self._young) + len(self._old)
