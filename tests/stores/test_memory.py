"""The store contract against `MemoryStore`."""

from __future__ import annotations

import threading

import pytest

from mfa_middleware.core.effects import Key
from mfa_middleware.stores.memory import MemoryStore
from tests.stores.contract import FakeClock, StoreContract, increment


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> MemoryStore:
        store = MemoryStore()
        store.use_clock(clock)
        return store


def test_concurrent_updates_are_all_counted() -> None:
    store = MemoryStore()
    key = Key("throttle", "alice")

    def work() -> None:
        for _ in range(200):
            store.update(key, increment)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(key) == {"n": 1600}
