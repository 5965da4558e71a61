"""Redis (and Redis Cluster, Sentinel) as the shared store for many workers and machines.

Layout: each document is a JSON string at `<prefix><kind>:{u:<part>}:<name>`; the `{u:<part>}`
hash tag keeps every key of one user (and the index of their records of a kind) in one Cluster
slot. TTLs are Redis expiries. Writes are small Lua scripts, so each is atomic on the server:
`update` reads the document, runs the caller's pure function, and commits with a compare-and-set
script that only writes if the document is still what was read (retried on conflict), so
parallel requests can never both spend the same code or slot. The read is skipped when this
process read or wrote the key lately (usually earlier in the same request): the script is sent
from that value, and if another writer changed it meanwhile, the script's refusal carries the
current value to try again from. A challenge POST thus makes 7 round trips instead of 9.

Every operation is written once as a short program of Redis calls (`_Program`); one runner
executes it with the sync client and one with the asyncio client.

Optional local cache (`local_cache=True`): the gate's cached reads are answered in-process for
at most `cache_ttl` seconds, and every write publishes the key on a channel that each process
listens to and drops at once. While that subscription is down the cache is bypassed, so a
missed invalidation can never serve a stale epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import random
import threading
import time
from collections.abc import Generator
from typing import Any, TypeAlias
from urllib.parse import quote

import redis
import redis.asyncio
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.errors import StoreConflict, StoreError
from mfa_middleware.stores.base import Store

SyncClient: TypeAlias = "redis.Redis | RedisCluster"
AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"
_Call = tuple[str, tuple[Any, ...]]
_Cached = tuple[Doc | None, float | None, float]  # document, its expiry, when it was fetched
CACHE_LIMIT = 10_000  # documents per generation of the bounded local cache
SEEN_LIMIT = 1_024  # raw values kept per generation as the next update's expected value
_Program = Generator[_Call, Any, Any]

# KEYS: doc, index. ARGV: expected ('' = absent), new ('' = delete), ttl ('' = none, else
# milliseconds), name in the index, channel ('' = no invalidation messages). Returns 1, or
# {0, the current value} when it was not the one expected (the caller tries again from it).
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return {0, current} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
else
  if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2])
  else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
  redis.call('SADD', KEYS[2], ARGV[4])
end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], KEYS[1]) end
return 1
"""
# KEYS: doc, index. ARGV: new ('' = delete), ttl ('' or ms), name, channel.
_WRITE = """
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[3])
elseif ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], KEYS[1]) end
return 1
"""
# KEYS: index, then documents. ARGV: their names. Drops names whose document has expired.
_PRUNE_INDEX = """
for i, name in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], name) end
end
return 1
"""
_SCRIPTS = {
    "cas": _COMPARE_AND_SET,
    "write": _WRITE,
    "prune": _PRUNE_INDEX,
}


def _envelope(doc: Doc | None, expires: float | None) -> str:
    """The stored string: the document and its expiry by the middleware's clock.

    Expiry is decided by the configured clock, like every other store (tests fix it); the
    Redis TTL set alongside only removes the key once it is surely dead."""
    if doc is None:
        return ""
    return json.dumps({"d": doc, "x": expires}, separators=(",", ":"), sort_keys=True)


def _opened(raw: bytes | str | None, now: float) -> tuple[Doc | None, float | None]:
    """(document, expiry) from a stored string; (None, None) when absent or expired."""
    if raw is None or raw == b"" or raw == "":
        return None, None
    envelope = json.loads(raw)
    expires = envelope.get("x")
    if expires is not None and expires <= now:
        return None, None
    doc: Doc = envelope["d"]
    return doc, expires


def _text(raw: bytes | str | None) -> str:
    """A stored value as the scripts compare it ('' for an absent key)."""
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else raw


def _ttl_ms(expires: float | None, now: float) -> str:
    return "" if expires is None else str(max(1, int((expires - now) * 1000) + 1000))


class RedisStore(Store):
    """A store on redis-py. Pass a URL (`redis://`, `rediss://`, `unix://`), or ready clients:
    `client=` (sync: `redis.Redis`, `RedisCluster`, a Sentinel master) and/or `async_client=`
    (their `redis.asyncio` twins). WSGI and Django use the sync client, ASGI the async one."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        prefix: str = "mfa:",
        socket_timeout: float = 1.0,
        local_cache: bool = False,
        cache_ttl: float = 5.0,
        max_update_retries: int = 1000,
    ) -> None:
        if url is None and client is None and async_client is None:
            raise ValueError("RedisStore needs a url, a client or an async_client")
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix may not contain '{' or '}' (Cluster hash tags)")
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}invalidate"
        self.socket_timeout = socket_timeout
        self.max_update_retries = max_update_retries
        self._sync = client
        self._async = async_client
        self._sync_scripts: dict[str, Any] = {}
        self._async_scripts: dict[str, Any] = {}
        self.cache_ttl = cache_ttl
        # the local cache, shared with the listener thread: read and written under the lock
        self._lock = threading.Lock()
        self._cache: Bounded[str, _Cached] = Bounded(CACHE_LIMIT)
        # the value each key had when this process last read or wrote it: an update sends its
        # compare-and-set from it at once (one round trip, not a GET first); a stale one only
        # costs the conflict, whose reply carries the current value
        self._seen: Bounded[str, str] = Bounded(SEEN_LIMIT)
        self._generation = 0  # moves on every invalidation: a read older than it is not cached
        self._cache_live = threading.Event()
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        self.local_cache = local_cache
        if local_cache:
            if url is None and client is None:
                raise ValueError("local_cache needs a url or a sync client for its listener")
            self._start_listener()

    # -- clients --------------------------------------------------------------------------

    @property
    def sync_client(self) -> Any:
        if self._sync is None:
            if self.url is None:
                raise StoreError("this RedisStore has only an async client")
            self._sync = redis.Redis.from_url(
                self.url,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_timeout,
            )
        return self._sync

    @property
    def async_client(self) -> Any:
        if self._async is None:
            if self.url is None:
                raise StoreError("this RedisStore has only a sync client")
            self._async = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_timeout,
            )
        return self._async

    def _script(self, name: str, *, is_async: bool) -> Any:
        scripts = self._async_scripts if is_async else self._sync_scripts
        script = scripts.get(name)
        if script is None:
            client = self.async_client if is_async else self.sync_client
            script = scripts[name] = client.register_script(_SCRIPTS[name])
        return script

    # -- keys -----------------------------------------------------------------------------

    def redis_key(self, key: Key) -> str:
        part = quote(key.part, safe="")
        return f"{self.prefix}{key.kind}:{{u:{part}}}:{quote(key.name, safe='')}"

    def _index_key(self, kind: str, part: str) -> str:
        return f"{self.prefix}idx:{kind}:{{u:{quote(part, safe='')}}}"

    def _index(self, key: Key) -> str:
        return self._index_key(key.kind, key.part)

    @property
    def _publish_to(self) -> str:
        """Every write announces its key, whether or not this process caches: other
        processes' caches must hear of it."""
        return self.channel

    # -- programs: each operation once, as a sequence of Redis calls ------------------------

    def _get_many_program(self, keys: tuple[Key, ...], cached: bool) -> _Program:
        use_cache = cached and self.local_cache and self._cache_live.is_set()
        names = [self.redis_key(k) for k in keys]
        now = self.clock()
        fetched_at = time.monotonic()
        results: dict[str, Doc | None] = {}
        missing: list[str] = []
        hits: list[_Cached | None] = [None] * len(names)
        if use_cache:
            with self._lock:
                hits = [self._cache.get(name) for name in names]
        for name, hit in zip(names, hits, strict=True):
            if (
                hit is not None
                and fetched_at - hit[2] < self.cache_ttl
                and (hit[1] is None or hit[1] > now)
            ):
                results[name] = hit[0]
            else:
                missing.append(name)
        if missing:
            generation = self._generation
            raws = yield ("mget", tuple(missing))
            for name, raw in zip(missing, raws, strict=True):
                self._saw(name, raw)
                doc, expires = _opened(raw, now)
                results[name] = doc
                if use_cache:
                    with self._lock:
                        if generation == self._generation:
                            self._cache[name] = (doc, expires, fetched_at)
        return [results[name] for name in names]

    def _write_program(self, key: Key, doc: Doc | None, ttl: float | None) -> _Program:
        now = self.clock()
        expires = None if ttl is None else now + ttl
        stored = _envelope(doc, expires)
        args = (stored, _ttl_ms(expires, now), key.name, self._publish_to)
        yield ("write", ((self.redis_key(key), self._index(key)), args))
        self._saw(self.redis_key(key), stored)
        self._invalidate(self.redis_key(key))

    def _update_program(self, key: Key, fn: Updater, ttl: float | None) -> _Program:
        """Read, apply `fn`, compare-and-set; from the value this process last saw when it has
        one (no read first), and after a conflict from the value the script answered with."""
        rkey = self.redis_key(key)
        with self._lock:
            current = self._seen.get(rkey)
        guessed = current is not None
        races = 0
        while True:
            if current is None:
                current = _text((yield ("get", (rkey,))))
            now = self.clock()
            old, expires = _opened(current, now)
            new = fn(copy.deepcopy(old))
            if ttl is not None:
                expires = now + ttl
            stored = _envelope(new, expires)
            args = (current, stored, _ttl_ms(expires, now), key.name, self._publish_to)
            answer = yield ("cas", ((rkey, self._index(key)), args))
            if answer == 1:
                self._saw(rkey, stored)
                self._invalidate(rkey)
                return old, new
            current = _text(answer[1])  # what the key holds now
            if guessed:  # only our remembered value was old: no race, no back-off
                guessed = False
                continue
            races += 1
            if races >= self.max_update_retries:
                raise StoreConflict(f"update of {key.kind} kept conflicting; gave up")
            # lost a race: back off a little, with jitter, before trying again
            yield ("sleep", (min(0.05, 0.001 * 2 ** min(races, 6)) * random.random(),))  # noqa: S311 (jitter)

    def _saw(self, rkey: str, raw: bytes | str | None) -> None:
        with self._lock:
            self._seen[rkey] = _text(raw)

    def _scan_program(self, kind: str, part: str) -> _Program:
        index = self._index_key(kind, part)
        members = yield ("smembers", (index,))
        names = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        if not names:
            return []
        keys = tuple(self.redis_key(Key(kind, part, n)) for n in names)
        raws = yield ("mget", keys)
        now = self.clock()
        opened = [(n, _opened(raw, now)[0]) for n, raw in zip(names, raws, strict=True)]
        rows = [(n, doc) for n, doc in opened if doc is not None]
        if any(raw is None for raw in raws):
            yield ("prune", ((index, *keys), tuple(names)))
        return rows

    # -- runners --------------------------------------------------------------------------

    def _call_sync(self, call: _Call) -> Any:
        name, args = call
        if name == "sleep":
            time.sleep(args[0])
            return None
        client = self.sync_client
        if name in _SCRIPTS:
            keys, argv = args
            return self._script(name, is_async=False)(keys=list(keys), args=list(argv))
        if name == "mget":
            return self._mget(client, args)
        return getattr(client, name)(*args)

    async def _call_async(self, call: _Call) -> Any:
        name, args = call
        if name == "sleep":
            await asyncio.sleep(args[0])
            return None
        client = self.async_client
        if name in _SCRIPTS:
            keys, argv = args
            return await self._script(name, is_async=True)(keys=list(keys), args=list(argv))
        result = self._mget(client, args) if name == "mget" else getattr(client, name)(*args)
        return await result if inspect.isawaitable(result) else result

    @staticmethod
    def _mget(client: Any, keys: tuple[str, ...]) -> Any:
        """One MGET on a single server; per-slot MGETs on a Cluster (keys span slots)."""
        if isinstance(client, RedisCluster | redis.asyncio.RedisCluster):
            return client.mget_nonatomic(list(keys))
        return client.mget(list(keys))

    def _run(self, program: _Program) -> Any:
        try:
            call = next(program)
            while True:
                call = program.send(self._call_sync(call))
        except StopIteration as stop:
            return stop.value
        except RedisError as exc:
            raise StoreError(f"Redis: {exc}") from exc

    async def _arun(self, program: _Program) -> Any:
        try:
            call = next(program)
            while True:
                call = program.send(await self._call_async(call))
        except StopIteration as stop:
            return stop.value
        except RedisError as exc:
            raise StoreError(f"Redis: {exc}") from exc

    # -- the contract ---------------------------------------------------------------------

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        result: list[Doc | None] = self._run(self._get_many_program((key,), cached))
        return result[0]

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        result: list[Doc | None] = self._run(self._get_many_program(keys, cached))
        return result

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self._run(self._write_program(key, doc, ttl))

    def delete(self, key: Key) -> None:
        self._run(self._write_program(key, None, None))

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        result: tuple[Doc | None, Doc | None] = self._run(self._update_program(key, fn, ttl))
        return result

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        result: list[tuple[str, Doc]] = self._run(self._scan_program(kind, part))
        return result

    async def aget(self, key: Key, *, cached: bool = False) -> Doc | None:
        result: list[Doc | None] = await self._arun(self._get_many_program((key,), cached))
        return result[0]

    async def aget_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        result: list[Doc | None] = await self._arun(self._get_many_program(keys, cached))
        return result

    async def aput(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        await self._arun(self._write_program(key, doc, ttl))

    async def adelete(self, key: Key) -> None:
        await self._arun(self._write_program(key, None, None))

    async def aupdate(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        result: tuple[Doc | None, Doc | None] = await self._arun(self._update_program(key, fn, ttl))
        return result

    async def ascan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        result: list[tuple[str, Doc]] = await self._arun(self._scan_program(kind, part))
        return result

    def cache_generation(self) -> int | None:
        """Known only while the local cache hears every invalidation."""
        return self._generation if self.local_cache and self._cache_live.is_set() else None

    # -- cache invalidation ---------------------------------------------------------------

    def _start_listener(self) -> None:
        self._listener = threading.Thread(
            target=self._listen, name="mfa-redis-invalidation", daemon=True
        )
        self._listener.start()

    def _invalidate(self, redis_key: str) -> None:
        with self._lock:
            self._generation += 1
            self._cache.pop(redis_key)

    def _drop_cache(self) -> None:
        self._cache_live.clear()
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def _listen(self) -> None:
        """Keep a subscription to the invalidation channel; the cache is live only while it is."""
        backoff = 0.05
        while not self._closing.is_set():
            pubsub = None
            try:
                pubsub = self.sync_client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                with self._lock:
                    self._cache.clear()
                self._cache_live.set()
                backoff = 0.05
                while not self._closing.is_set():
                    message = pubsub.get_message(timeout=0.1)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._invalidate(data.decode() if isinstance(data, bytes) else data)
            except (RedisError, OSError, ValueError):
                self._drop_cache()
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                self._drop_cache()
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        pubsub.close()

    def close(self) -> None:
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=2)
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        self.close()
        if self._async is not None:
            await self._async.aclose()
