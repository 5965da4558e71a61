"""One contract for every `Store`, run through the sync methods and through the async twins.

A backend's test module subclasses `StoreContract` and provides a `store` fixture whose clock
is the `clock` fixture. Every contract test runs twice: once calling the sync methods
(`get`, `put`, ...) and once awaiting their twins (`aget`, `aput`, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mfa_middleware.core.effects import Doc, Key
from mfa_middleware.stores.base import Store
from mfa_middleware.testing import FixedClock as FakeClock

T0 = 1_000_000.0


class Api:
    """The store's operations as coroutines: sync methods called directly, or async twins."""

    def __init__(self, store: Store, mode: str) -> None:
        self.store = store
        self.mode = mode

    def _op(self, name: str) -> Callable[..., Awaitable[Any]]:
        if self.mode == "async":
            return getattr(self.store, "a" + name)  # type: ignore[no-any-return]
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return await self._op("get")(key, cached=cached)  # type: ignore[no-any-return]

    async def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        return await self._op("get_many")(keys, cached=cached)  # type: ignore[no-any-return]

    async def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        await self._op("put")(key, doc, ttl=ttl)

    async def delete(self, key: Key) -> None:
        await self._op("delete")(key)

    async def update(
        self, key: Key, fn: Callable[[Doc | None], Doc | None], *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        return await self._op("update")(key, fn, ttl=ttl)  # type: ignore[no-any-return]

    async def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        return await self._op("scan")(kind, part)  # type: ignore[no-any-return]


def increment(doc: Doc | None) -> Doc:
    return {"n": (doc or {}).get("n", 0) + 1}


K = Key("user", "alice")
K2 = Key("user", "bob")
K3 = Key("settings", "_", "global")


@pytest.mark.anyio
class StoreContract:
    """Subclass and provide a `store` fixture that uses the `clock` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture(params=["sync", "async"])
    def api(self, request: pytest.FixtureRequest, store: Store) -> Api:
        return Api(store, request.param)

    # --- get / put / delete ------------------------------------------------------------

    async def test_get_missing_is_none(self, api: Api) -> None:
        assert await api.get(K) is None
        assert await api.get(K, cached=True) is None

    async def test_put_get_delete(self, api: Api) -> None:
        doc = {"method": "totp", "epoch": 3, "nested": {"a": [1, 2, None]}, "flag": True}
        await api.put(K, doc)
        assert await api.get(K) == doc
        assert await api.get(K2) is None
        await api.delete(K)
        assert await api.get(K) is None

    async def test_put_replaces(self, api: Api) -> None:
        await api.put(K, {"a": 1, "b": 2})
        await api.put(K, {"a": 3})
        assert await api.get(K) == {"a": 3}

    async def test_delete_missing_is_fine(self, api: Api) -> None:
        await api.delete(K)
        assert await api.get(K) is None

    async def test_keys_differ_by_kind_part_and_name(self, api: Api) -> None:
        keys = [Key("a", "p", "n"), Key("b", "p", "n"), Key("a", "q", "n"), Key("a", "p", "m")]
        for i, key in enumerate(keys):
            await api.put(key, {"i": i})
        for i, key in enumerate(keys):
            assert await api.get(key) == {"i": i}
        await api.delete(keys[0])
        assert [await api.get(k) for k in keys] == [None, {"i": 1}, {"i": 2}, {"i": 3}]

    async def test_stored_doc_is_a_copy(self, api: Api) -> None:
        doc: Doc = {"list": [1], "n": 1}
        await api.put(K, doc)
        doc["list"].append(2)
        doc["n"] = 2
        assert await api.get(K) == {"list": [1], "n": 1}

    async def test_non_json_doc_is_refused(self, api: Api) -> None:
        with pytest.raises(TypeError):
            await api.put(K, {"bad": object()})
        assert await api.get(K) is None

    # --- TTL ---------------------------------------------------------------------------

    async def test_ttl_expiry(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"a": 1}, ttl=10)
        await api.put(K2, {"b": 1})
        clock.advance(9.9)
        assert await api.get(K) == {"a": 1}
        assert await api.get(K, cached=True) == {"a": 1}
        clock.advance(0.1)
        assert await api.get(K) is None
        assert await api.get(K, cached=True) is None
        assert await api.get(K2) == {"b": 1}  # no TTL: never expires
        clock.advance(10**9)
        assert await api.get(K2) == {"b": 1}

    async def test_expired_doc_is_gone_for_update(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"n": 41}, ttl=5)
        clock.advance(5)
        old, new = await api.update(K, increment)
        assert old is None
        assert new == {"n": 1}
        assert await api.get(K) == {"n": 1}

    async def test_put_without_ttl_clears_an_earlier_ttl(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"a": 1}, ttl=5)
        await api.put(K, {"a": 2})
        clock.advance(100)
        assert await api.get(K) == {"a": 2}

    # --- update ------------------------------------------------------------------------

    async def test_update_creates_and_returns_old_and_new(self, api: Api) -> None:
        old, new = await api.update(K, increment)
        assert (old, new) == (None, {"n": 1})
        old, new = await api.update(K, increment)
        assert (old, new) == ({"n": 1}, {"n": 2})
        assert await api.get(K) == {"n": 2}

    async def test_update_receives_a_copy(self, api: Api) -> None:
        await api.put(K, {"items": [1]})

        def mutate(doc: Doc | None) -> Doc:
            assert doc is not None
            doc["items"].append(2)
            return {"items": [9]}

        old, new = await api.update(K, mutate)
        assert old == {"items": [1]}
        assert new == {"items": [9]}

    async def test_update_unchanged_returns_equal_old_and_new(self, api: Api) -> None:
        await api.put(K, {"a": 1})
        old, new = await api.update(K, lambda doc: doc)
        assert old == new == {"a": 1}

    async def test_update_to_none_deletes(self, api: Api) -> None:
        await api.put(K, {"a": 1})
        old, new = await api.update(K, lambda doc: None)
        assert old == {"a": 1}
        assert new is None
        assert await api.get(K) is None
        assert await api.scan("user", "alice") == []

    async def test_update_to_none_on_missing(self, api: Api) -> None:
        assert await api.update(K, lambda doc: None) == (None, None)
        assert await api.get(K) is None

    async def test_update_that_raises_changes_nothing(self, api: Api) -> None:
        await api.put(K, {"a": 1})

        def boom(doc: Doc | None) -> Doc:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await api.update(K, boom)
        assert await api.get(K) == {"a": 1}
        # The store is still usable afterwards.
        assert (await api.update(K, lambda d: {"a": 2}))[1] == {"a": 2}

    async def test_update_keeps_expiry_without_ttl(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"n": 0}, ttl=10)
        clock.advance(5)
        await api.update(K, increment)
        clock.advance(4.9)
        assert await api.get(K) == {"n": 1}
        clock.advance(0.1)
        assert await api.get(K) is None

    async def test_update_without_ttl_on_untimed_doc_stays_untimed(
        self, api: Api, clock: FakeClock
    ) -> None:
        await api.put(K, {"n": 0})
        await api.update(K, increment)
        clock.advance(10**9)
        assert await api.get(K) == {"n": 1}

    async def test_update_with_ttl_sets_new_expiry(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"n": 0}, ttl=10)
        clock.advance(5)
        await api.update(K, increment, ttl=10)
        clock.advance(9.9)  # past the original expiry (T0 + 10), before the new (T0 + 15)
        assert await api.get(K) == {"n": 1}
        clock.advance(0.1)
        assert await api.get(K) is None

    async def test_update_with_ttl_on_new_doc(self, api: Api, clock: FakeClock) -> None:
        await api.update(K, increment, ttl=3)
        clock.advance(2.9)
        assert await api.get(K) == {"n": 1}
        clock.advance(0.1)
        assert await api.get(K) is None

    # --- scan --------------------------------------------------------------------------

    async def test_scan_lists_one_kind_and_part(self, api: Api) -> None:
        await api.put(Key("device", "alice", "d1"), {"i": 1})
        await api.put(Key("device", "alice", "d2"), {"i": 2})
        await api.put(Key("device", "bob", "d3"), {"i": 3})
        await api.put(Key("recovery", "alice", "r1"), {"i": 4})
        await api.put(Key("device", "alice2", "d4"), {"i": 5})
        rows = await api.scan("device", "alice")
        assert sorted(rows, key=lambda r: r[0]) == [("d1", {"i": 1}), ("d2", {"i": 2})]
        assert await api.scan("device", "bob") == [("d3", {"i": 3})]
        assert await api.scan("device", "nobody") == []
        assert await api.scan("nothing", "alice") == []

    async def test_scan_skips_expired(self, api: Api, clock: FakeClock) -> None:
        await api.put(Key("device", "alice", "short"), {"i": 1}, ttl=5)
        await api.put(Key("device", "alice", "long"), {"i": 2}, ttl=50)
        await api.put(Key("device", "alice", "forever"), {"i": 3})
        clock.advance(5)
        rows = await api.scan("device", "alice")
        assert sorted(rows, key=lambda r: r[0]) == [("forever", {"i": 3}), ("long", {"i": 2})]
        clock.advance(45)
        assert await api.scan("device", "alice") == [("forever", {"i": 3})]

    async def test_scan_after_delete(self, api: Api) -> None:
        await api.put(Key("device", "alice", "d1"), {"i": 1})
        await api.delete(Key("device", "alice", "d1"))
        assert await api.scan("device", "alice") == []

    # --- get_many and cached reads -----------------------------------------------------

    @pytest.mark.parametrize("cached", [False, True])
    async def test_get_many(self, api: Api, cached: bool) -> None:
        await api.put(K, {"a": 1})
        await api.put(K3, {"mode": "off"})
        docs = await api.get_many((K3, K2, K), cached=cached)
        assert docs == [{"mode": "off"}, None, {"a": 1}]
        assert await api.get_many((), cached=cached) == []

    async def test_get_many_skips_expired(self, api: Api, clock: FakeClock) -> None:
        await api.put(K, {"a": 1}, ttl=1)
        await api.put(K2, {"b": 1}, ttl=100)
        clock.advance(1)
        assert await api.get_many((K, K2)) == [None, {"b": 1}]
        assert await api.get_many((K, K2), cached=True) == [None, {"b": 1}]

    async def test_cached_reads_see_own_writes(self, api: Api) -> None:
        assert await api.get(K, cached=True) is None  # a cached miss
        await api.put(K, {"v": 1})
        assert await api.get(K, cached=True) == {"v": 1}
        assert await api.get_many((K3, K), cached=True) == [None, {"v": 1}]
        await api.put(K, {"v": 2})
        assert await api.get(K, cached=True) == {"v": 2}
        await api.update(K, lambda doc: {"v": 3})
        assert await api.get(K, cached=True) == {"v": 3}
        await api.update(K, lambda doc: None)
        assert await api.get(K, cached=True) is None
        await api.put(K, {"v": 4})
        assert await api.get(K, cached=True) == {"v": 4}
        await api.delete(K)
        assert await api.get(K, cached=True) is None
        assert await api.get_many((K,), cached=True) == [None]

    async def test_cached_read_respects_ttl(self, api: Api, clock: FakeClock) -> None:
        await api.put(K3, {"mode": "off"}, ttl=30)
        assert await api.get(K3, cached=True) == {"mode": "off"}
        clock.advance(30)
        assert await api.get(K3, cached=True) is None
