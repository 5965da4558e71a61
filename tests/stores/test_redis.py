"""The store contract against `RedisStore` on a real redis-server (and a 3-master Cluster),
plus what only Redis shows: atomicity under concurrency, the invalidation cache, outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from mfa_middleware.core.effects import Key
from mfa_middleware.errors import StoreError
from mfa_middleware.stores import redis as redis_store
from mfa_middleware.stores.redis import RedisStore
from tests.stores.contract import FakeClock, StoreContract, increment
from tests.support.redis_servers import RedisServer, redis_cluster, redis_sentinel, redis_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, server: RedisServer) -> Iterator[RedisStore]:
        server.client().flushall()
        store = RedisStore(server.url)
        store.use_clock(clock)
        yield store
        store.close()


class TestRedisStoreWithLocalCache(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, server: RedisServer) -> Iterator[RedisStore]:
        server.client().flushall()
        store = RedisStore(server.url, local_cache=True)
        assert store._cache_live.wait(5)
        store.use_clock(clock)
        yield store
        store.close()


class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, cluster: list[RedisServer]) -> Iterator[RedisStore]:
        nodes = [ClusterNode("127.0.0.1", node.port) for node in cluster]
        sync_client = RedisCluster(startup_nodes=nodes)
        sync_client.flushall(target_nodes=RedisCluster.PRIMARIES)
        async_client = redis.asyncio.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode("127.0.0.1", n.port) for n in cluster]
        )
        store = RedisStore(client=sync_client, async_client=async_client)
        store.use_clock(clock)
        yield store
        store.close()


def test_one_users_keys_share_a_cluster_slot(server: RedisServer) -> None:
    store = RedisStore(server.url)
    alice = [
        store.redis_key(Key(kind, "alice", name))
        for kind, name in (("user", ""), ("throttle", ""), ("device", "d1"))
    ]
    alice.append(store._index_key("device", "alice"))
    assert len({key_slot(k.encode()) for k in alice}) == 1
    odd = [store.redis_key(Key("user", "we{ir}d")), store._index_key("user", "we{ir}d")]
    assert len({key_slot(k.encode()) for k in odd}) == 1


def test_parallel_updates_are_all_counted(server: RedisServer) -> None:
    server.client().flushall()
    stores = [RedisStore(server.url) for _ in range(4)]
    key = Key("throttle", "alice")

    def work(store: RedisStore) -> None:
        for _ in range(50):
            store.update(key, increment)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].get(key) == {"n": 400}


def calls_of(store: RedisStore) -> list[str]:
    """The names of the calls `store` sends to Redis from now on (one per round trip)."""
    sent: list[str] = []
    real = store._call_sync

    def counting(call: tuple[str, tuple[object, ...]]) -> object:
        sent.append(call[0])
        return real(call)

    store._call_sync = counting  # type: ignore[method-assign]
    return sent


def test_an_update_after_a_read_is_one_round_trip(server: RedisServer) -> None:
    """The gate reads a record, then the flow updates it: the compare-and-set goes at once
    from the value read (the challenge POST's 9 round trips became 7)."""
    server.client().flushall()
    store = RedisStore(server.url)
    key = Key("user", "alice")
    store.put(key, {"n": 1})
    sent = calls_of(store)
    assert store.get(key) == {"n": 1}
    assert store.update(key, increment) == ({"n": 1}, {"n": 2})
    assert sent == ["mget", "cas"]
    assert store.update(key, increment) == ({"n": 2}, {"n": 3})  # from the value it wrote
    assert sent == ["mget", "cas", "cas"]
    cold = RedisStore(server.url)  # never saw the key: reads it first, as before
    cold_sent = calls_of(cold)
    assert cold.update(key, increment) == ({"n": 3}, {"n": 4})
    assert cold_sent == ["get", "cas"]


def test_an_update_from_an_old_value_applies_to_the_current_one(server: RedisServer) -> None:
    """Another process wrote since this one read: the script refuses the old value and
    answers the current one, which the update is applied to (no lost write, no extra read)."""
    server.client().flushall()
    store, other = RedisStore(server.url), RedisStore(server.url)
    key = Key("throttle", "alice")
    store.put(key, {"n": 10})
    assert other.update(key, increment) == ({"n": 10}, {"n": 11})
    sent = calls_of(store)
    assert store.update(key, increment) == ({"n": 11}, {"n": 12})
    assert sent == ["cas", "cas"]  # the first from its old value, refused with the current one
    assert other.get(key) == {"n": 12}


def test_cache_is_invalidated_by_another_process_write(server: RedisServer) -> None:
    server.client().flushall()
    reader = RedisStore(server.url, local_cache=True, cache_ttl=60)
    writer = RedisStore(server.url, local_cache=True)
    assert reader._cache_live.wait(5)
    assert writer._cache_live.wait(5)
    key = Key("user", "alice")
    writer.put(key, {"epoch": 1})
    assert reader.get(key, cached=True) == {"epoch": 1}
    writer.update(key, lambda d: {"epoch": 2})
    # The reader caches for 60 s: seeing the new value well before that proves the
    # invalidation message (how fast it is, is for the benchmark, not a timed assertion).
    deadline = time.monotonic() + 20
    while reader.get(key, cached=True) != {"epoch": 2}:
        assert time.monotonic() < deadline, "invalidation did not arrive"
        time.sleep(0.005)
    reader.close()
    writer.close()


def test_local_cache_is_bounded_and_keeps_the_latest_documents(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 8
    monkeypatch.setattr(redis_store, "CACHE_LIMIT", limit, raising=False)
    server.client().flushall()
    store = RedisStore(server.url, local_cache=True, cache_ttl=60)
    try:
        assert store._cache_live.wait(5)
        keys = [Key("user", f"user-{n}") for n in range(6 * limit + 2)]
        for n, key in enumerate(keys):
            store.put(key, {"n": n})
        # each write moves the generation once when made and once when its own invalidation
        # message comes back: wait for them all, or a late one would drop a cached document
        deadline = time.monotonic() + 20
        while store._generation < 2 * len(keys):
            assert time.monotonic() < deadline, "invalidation messages did not arrive"
            time.sleep(0.005)
        assert [store.get(key, cached=True) for key in keys] == [{"n": n} for n in range(len(keys))]
        assert len(store._cache) <= 2 * limit  # every one of them was cached on its read
        fetched: list[tuple[str, ...]] = []
        call = store._call_sync
        monkeypatch.setattr(
            store,
            "_call_sync",
            lambda c: (fetched.append(c[1]) if c[0] == "mget" else None) or call(c),
        )
        latest = store.get_many(tuple(keys[-limit:]), cached=True)
        assert latest == [{"n": n} for n in range(len(keys) - limit, len(keys))]
        assert fetched == []  # the latest `limit` documents all came from the cache
        assert store.get(keys[0], cached=True) == {"n": 0}
        assert fetched == [(store.redis_key(keys[0]),)]  # evicted long ago: fetched again
    finally:
        store.close()


def test_outage_raises_store_error_and_recovers(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r") as srv:
        store = RedisStore(srv.url, socket_timeout=0.5)
        key = Key("user", "alice")
        store.put(key, {"method": "totp"})
        srv.kill()
        with pytest.raises(StoreError):
            store.get(key)
        srv.start()
        assert store.get(key) == {"method": "totp"}  # AOF kept it across the restart
        store.close()


@pytest.fixture(scope="module")
def sentinel_port(server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_sentinel(tmp_path_factory.mktemp("sentinel"), server) as port:
        yield port


class TestRedisSentinelStore(StoreContract):
    """The contract through clients that find the master via Redis Sentinel."""

    @pytest.fixture
    def store(
        self, clock: FakeClock, server: RedisServer, sentinel_port: int
    ) -> Iterator[RedisStore]:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel
        from redis.sentinel import Sentinel

        server.client().flushall()
        sync_client = Sentinel([("127.0.0.1", sentinel_port)]).master_for("mymaster")
        async_client = AsyncSentinel([("127.0.0.1", sentinel_port)]).master_for("mymaster")
        store = RedisStore(client=sync_client, async_client=async_client)
        store.use_clock(clock)
        yield store
        store.close()
