"""The directory of users the middleware has seen (`core.directory`): written when a login
session starts, at most once a day unless a name or the address changed; found by id, name,
login name or address."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mfa_middleware.core import directory, ops
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.stores.memory import MemoryStore

NOW = 1_700_000_000.0


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, key: Any, doc: Any, *, ttl: float | None = None) -> None:
        self.puts += 1
        super().put(key, doc, ttl=ttl)


def run(store: MemoryStore, flow: Generator[Effect, Any, Any]) -> Any:
    return run_sync(flow, store, EventSink())


def test_noted_once_a_day_unless_a_name_or_the_address_changes() -> None:
    store = CountingStore()
    alice = Principal("1", "Alice Liddell", login_name="alice", email="alice@example.com")
    run(store, directory.note(alice, NOW))
    run(store, directory.note(alice, NOW + 3600))
    assert store.puts == 1
    run(store, directory.note(alice, NOW + 86400))
    assert store.puts == 2
    renamed = Principal("1", "Alice L.", login_name="alice", email="alice@example.com")
    run(store, directory.note(renamed, NOW + 86401))
    assert store.puts == 3
    assert run(store, directory.entry("1")).name == "Alice L."


def test_found_by_id_name_login_or_address_in_any_case() -> None:
    store = MemoryStore()
    for principal in (
        Principal("1", "Alice Liddell", login_name="alice", email="alice@example.com"),
        Principal("2", "Bob", login_name="bob", email="bob@example.com"),
        Principal("3", "Bob", login_name="bob2", email="bob2@example.com"),
    ):
        run(store, directory.note(principal, NOW))
    assert run(store, ops.find_user("alice")) == ["1"]
    assert run(store, ops.find_user("ALICE@example.com")) == ["1"]
    assert run(store, ops.find_user("alice liddell")) == ["1"]
    assert run(store, ops.find_user("1")) == ["1"]
    assert run(store, ops.find_user("bob")) == ["2", "3"]  # a login name and a display name
    assert run(store, ops.find_user("bob2")) == ["3"]
    assert run(store, ops.find_user("carol")) == []


def test_a_user_with_a_record_but_never_seen_is_found_by_id() -> None:
    store = MemoryStore()
    store.put(user_key("svc"), UserRecord(exempt=True).to_doc())
    assert run(store, ops.find_user("svc")) == ["svc"]


def test_an_operator_acting_on_a_new_user_lists_them() -> None:
    store = MemoryStore()
    run(store, ops.set_exempt("svc-billing", True, "cli:root"))
    assert [user_id for user_id, _ in run(store, directory.everyone())] == ["svc-billing"]
    assert run(store, directory.entry("svc-billing")).name == "svc-billing"
