"""`store_from_url`: the URL forms settings files, environment variables and the CLI use."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfa_middleware.core.effects import Key
from mfa_middleware.stores import MemoryStore, SQLiteStore, store_from_url
from mfa_middleware.stores.redis import RedisStore

KEY = Key("user", "alice")


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mfa.sqlite3"
    store = store_from_url(f"sqlite://{path}")  # sqlite:///tmp/.../mfa.sqlite3
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == str(path)
        store.put(KEY, {"method": "totp"})
        assert path.is_file()
    finally:
        store.close()
    reopened = SQLiteStore(path)
    assert reopened.get(KEY) == {"method": "totp"}
    reopened.close()


def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = store_from_url("sqlite:state/mfa.sqlite3")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == "state/mfa.sqlite3"
        store.put(KEY, {"method": "totp"})
    finally:
        store.close()
    assert (tmp_path / "state" / "mfa.sqlite3").is_file()


def test_memory() -> None:
    first = store_from_url("memory://")
    second = store_from_url("memory://")
    assert isinstance(first, MemoryStore)
    first.put(KEY, {"epoch": 1})
    assert first.get(KEY) == {"epoch": 1}
    assert second.get(KEY) is None  # each URL gives a store of its own


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6399/0",
        "rediss://user:pw@redis.example.invalid:6380/2",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
def test_redis_forms_give_a_redis_store_without_connecting(url: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, RedisStore)
    assert store.url == url
    assert store._sync is None  # no client made yet: nothing connects until first use
    assert store._async is None


@pytest.mark.parametrize(
    "url",
    ["postgres://db/mfa", "memory://x", "mysql:///mfa", "", "SQLITE:///var/x", "/var/lib/mfa.db"],
)
def test_unknown_scheme(url: str) -> None:
    with pytest.raises(ValueError, match="unknown store URL"):
        store_from_url(url)


@pytest.mark.parametrize("url", ["sqlite:", "sqlite://"])
def test_sqlite_without_a_path(url: str) -> None:
    with pytest.raises(ValueError, match="needs a path"):
        store_from_url(url)
