"""A process cache for `DjangoStore`, kept coherent through Django's cache framework.

Each process keeps the documents the gate reads (settings, the user's record) in memory and
learns of other processes' writes from a change log in the project's shared cache (Redis or
Memcached): every committed write increments a counter and files the keys it changed under
the counter's new value. A thread in each process polls the
counter every `poll_interval` seconds and drops just the keys written since its last look,
so a verified request costs no query at all, and a change made anywhere is seen by every
worker at most `poll_interval` (plus one round trip to the cache) after its commit.

When the log cannot be followed exactly (entries evicted, more than `MAX_LOG` writes between
two looks, the counter lost: it then starts again from a random 48-bit value, so it cannot
come back to a value a process remembers) the whole process cache is dropped; when the cache
cannot be reached, the process cache is not used at all until it can. An announcement lost
altogether (a worker killed between its commit and its announcement) is bounded by
`max_age`: the process cache is dropped that often whatever the log says.

The process cache holds at most two generations of `CACHE_LIMIT` documents (`core.bounded`):
the documents in use stay, the ones no request asked for lately go.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.effects import Doc, Key
from mfa_middleware.events import logger

MAX_LOG = 256  # writes between two polls followed key by key; more drop everything
LOG_TTL = 300  # seconds a log entry is kept: many polls' worth
CACHE_LIMIT = 10_000  # documents per generation of the bounded process cache
_Cached = tuple[Doc | None, float | None]


class SharedCache:
    """The process cache and its change log in the Django cache named `alias`."""

    def __init__(
        self, alias: str, database: Callable[[], str], poll_interval: float, max_age: float
    ) -> None:
        self.alias = alias
        self.poll_interval = poll_interval
        self.max_age = max_age
        self._database = database
        self._namespace: str | None = None
        self._reset()

    def _reset(self) -> None:
        """Fresh state (at creation and in a forked child: threads do not survive a fork)."""
        self._lock = threading.Lock()
        self._docs: Bounded[Key, _Cached] = Bounded(CACHE_LIMIT)  # under self._lock
        self.generation = 0
        self.live = threading.Event()  # set while the log is followed: the cache may be used
        self.polls = 0
        self._seen: int | None = None
        self._dropped_at = time.monotonic()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def namespace(self) -> str:
        """The cache keys' prefix: one log per database, however each process names it."""
        if self._namespace is None:
            digest = hashlib.sha256(self._database().encode()).hexdigest()[:16]
            self._namespace = f"mfa_middleware:{digest}"
        return self._namespace

    @property
    def _counter(self) -> str:
        return f"{self.namespace}:changes"

    def _entry(self, n: int) -> str:
        return f"{self.namespace}:change:{n}"

    def _cache(self) -> Any:
        from django.core.cache import caches

        return caches[self.alias]

    # -- the request side --------------------------------------------------------------

    def start(self) -> bool:
        """Start following the log in this process (once; again after a fork); whether the
        cache may be used now."""
        if self._pid != os.getpid():
            self._reset()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._follow, name="mfa-django-store-changes", daemon=True
                    )
                    self._thread.start()
        return self.live.is_set()

    def lookup(self, keys: Iterable[Key], now: float) -> tuple[dict[Key, Doc | None], int]:
        """The documents cached and still alive, and the generation to `fill` the others with."""
        with self._lock:  # a lookup may move an entry: never back in after a drop
            generation = self.generation
            hits = [(key, self._docs.get(key)) for key in keys]
        found: dict[Key, Doc | None] = {}
        for key, hit in hits:
            if hit is not None and (hit[1] is None or hit[1] > now):
                found[key] = hit[0]
        return found, generation

    def fill(self, key: Key, doc: Doc | None, expires: float | None, generation: int) -> None:
        """Cache a document read from the database, unless something was dropped meanwhile
        (the read may predate that write)."""
        with self._lock:
            if generation == self.generation and self.live.is_set():
                self._docs[key] = (doc, expires)

    def forget(self, keys: Iterable[Key]) -> None:
        """This process wrote `keys`: drop them, and anything read before, at once."""
        with self._lock:
            for key in keys:
                self._docs.pop(key)
            self.generation += 1

    def announce(self, keys: Iterable[Key]) -> None:
        """After a commit: tell the other processes which keys changed."""
        keys = list(keys)
        self.forget(keys)
        cache = self._cache()
        try:
            try:
                n = cache.incr(self._counter)
            except ValueError:  # no counter yet (or it was evicted)
                self._start_counter(cache)
                n = cache.incr(self._counter)
            names = [(k.kind, k.part, k.name) for k in keys]
            cache.set(self._entry(n), names, timeout=LOG_TTL)
        except Exception as exc:  # any cache backend's error: the write itself is committed
            logger.error(
                "2FA store: could not announce a change in cache %r (%s); other workers see "
                "it within max_age (%ss)",
                self.alias,
                exc,
                self.max_age,
            )

    # -- the polling side ----------------------------------------------------------------

    def _follow(self) -> None:
        self.poll()
        while not self._closing.wait(self.poll_interval):
            self.poll()

    def poll(self) -> None:
        """One look at the log: drop what other processes changed since the last look."""
        try:
            changed = self._changes()
        except Exception as exc:  # any cache backend's error: do without the process cache
            if self.live.is_set():
                logger.error("2FA store: cache %r unreachable, not caching: %s", self.alias, exc)
            self.live.clear()
            self._seen = None
            self._drop(None)
        else:
            if changed is None or time.monotonic() - self._dropped_at >= self.max_age:
                self._drop(None)
            elif changed:
                self._drop(changed)
            self.live.set()
        self.polls += 1

    def _start_counter(self, cache: Any) -> None:
        cache.add(self._counter, secrets.randbits(48), timeout=None)

    def _changes(self) -> set[Key] | None:
        """The keys changed since the last look (empty: none); None when unknown."""
        cache = self._cache()
        n = cache.get(self._counter)
        if n is None:
            self._start_counter(cache)
            n = cache.get(self._counter)
            if n is None:
                raise RuntimeError("the cache keeps nothing (a dummy cache?)")
        seen, self._seen = self._seen, n
        if seen == n:
            return set()
        if seen is None or not seen < n <= seen + MAX_LOG:
            return None
        entries = cache.get_many([self._entry(i) for i in range(seen + 1, n + 1)])
        if len(entries) != n - seen:  # evicted, expired, or written but not filed yet
            return None
        return {Key(*name) for names in entries.values() for name in names}

    def _drop(self, keys: set[Key] | None) -> None:
        with self._lock:
            if keys is None:
                self._docs.clear()
                self._dropped_at = time.monotonic()
            else:
                for key in keys:
                    self._docs.pop(key)
            self.generation += 1

    def close(self) -> None:
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self.live.clear()
