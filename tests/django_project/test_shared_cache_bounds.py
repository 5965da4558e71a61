"""`DjangoStore`'s process cache (`django.shared_cache.SharedCache`) is bounded like every other
cache: it keeps the documents read last, and never grows past two generations."""

from __future__ import annotations

import pytest

from mfa_middleware.core.effects import Key
from mfa_middleware.django import shared_cache
from mfa_middleware.django.shared_cache import SharedCache

LIMIT = 8


def test_the_process_cache_is_bounded_and_keeps_the_latest_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shared_cache, "CACHE_LIMIT", LIMIT, raising=False)
    cache = SharedCache("unused", lambda: "db", poll_interval=3600, max_age=3600)
    cache.live.set()  # as when its log is followed: no Django cache is needed below
    keys = [Key("user", str(n)) for n in range(6 * LIMIT + 2)]
    for n, key in enumerate(keys):
        _, generation = cache.lookup([key], now=0)
        cache.fill(key, {"n": n}, None, generation)
    assert len(cache._docs) <= 2 * LIMIT  # every one of them was cached when read
    found, _ = cache.lookup(keys[-LIMIT:], now=0)
    assert found == {key: {"n": n} for n, key in enumerate(keys) if n >= len(keys) - LIMIT}
    assert cache.lookup([keys[0]], now=0)[0] == {}  # evicted long ago: read again
    cache.forget([keys[-1]])
    assert cache.lookup([keys[-1]], now=0)[0] == {}
