"""Every event carries an id, a time, an actor and a target (`core.audit.stamp`), and the
runtime keeps the recent ones per user (`StoreJournal`), never failing the step it reports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core import audit
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.runtime import Runtime, StoreJournal
from mfa_middleware.testing import FixedClock, OutageStore

KEY = "audit-tests-0123456789-abcdefghijklmnopqrstuvwxyz"


def test_stamp_adds_id_time_actor_and_target() -> None:
    event = audit.stamp("forced_logout", {"user": "bob", "actor": "admin:alice"}, 1000.0)
    assert event["event"] == "forced_logout"
    assert len(event["id"]) == 32
    assert event["at"] == 1000.0
    assert (event["actor"], event["target"], event["user"]) == ("admin:alice", "bob", "bob")
    other = audit.stamp("forced_logout", {"user": "bob"}, 1000.0)
    assert other["id"] != event["id"]


@pytest.mark.parametrize(
    ("fields", "actor", "target"),
    [
        ({"user": "bob"}, "user:bob", "bob"),  # the user themself
        ({"user": "bob", "actor": "self"}, "user:bob", "bob"),
        ({"user": "bob", "actor": "auto"}, "system:auto_trust", "bob"),
        ({"user": "bob", "actor": "app_logout"}, "app:logout", "bob"),
        ({"user": "bob", "actor": "cli:root"}, "cli:root", "bob"),
        ({"mode": "off", "actor": "admin:alice"}, "admin:alice", None),  # about everyone
        ({"reason": "down"}, "system", None),
    ],
)
def test_actors_and_targets(fields: dict[str, Any], actor: str, target: str | None) -> None:
    event = audit.stamp("x", fields, 0.0)
    assert (event["actor"], event["target"]) == (actor, target)


def test_the_record_keeps_the_newest_and_forgets_the_old() -> None:
    doc: dict[str, Any] | None = None
    for n in range(7):
        doc = audit.appended({"event": "e", "n": n, "at": 1000.0 + n}, keep=5)(doc)
    assert doc is not None
    assert [e["n"] for e in doc["events"]] == [2, 3, 4, 5, 6]
    later = audit.appended({"event": "e", "n": 7, "at": 1000.0 + audit.RETENTION + 4.5}, 5)
    assert [e["n"] for e in later(doc)["events"]] == [5, 6, 7]  # older than 90 days: gone


def test_an_agents_event_is_kept_for_both_people() -> None:
    event = audit.stamp("impersonated_request", {"user": "bob", "actor": "agent:carol"}, 0.0)
    assert audit.targets(event) == ["bob", "carol"]
    assert audit.targets(audit.stamp("mode_changed", {"actor": "admin:a"}, 0.0)) == []


def test_the_runtime_keeps_each_users_recent_events_newest_first() -> None:
    clock = FixedClock()
    seen: list[Mapping[str, Any]] = []
    rt = Runtime(
        MFAConfig(
            secret_keys=[KEY],
            store=MemoryStore(),
            clock=clock,
            on_event=seen.append,
            events_kept=3,
        )
    )
    for n in range(4):
        clock.advance(1)
        rt.events.emit("verify_failed", {"user": "bob", "n": n})
    asyncio.run(rt.events.aemit("unlocked", {"user": "bob", "actor": "admin:alice"}))
    kept = run_sync(audit.recent("bob"), rt.store, EventSink())
    assert [e["event"] for e in kept] == ["unlocked", "verify_failed", "verify_failed"]
    assert [e.get("n") for e in kept] == [None, 3, 2]
    assert kept[1] == dict(seen[3])  # what the hook got, stamped once
    assert kept[0]["at"] == clock()


def test_events_kept_zero_keeps_none() -> None:
    rt = Runtime(MFAConfig(secret_keys=[KEY], store=MemoryStore(), events_kept=0))
    rt.events.emit("verify_failed", {"user": "bob"})
    assert rt.store.get(audit.events_key("bob")) is None


def test_a_store_failure_keeping_an_event_is_logged_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mfa_middleware")
    store = OutageStore()
    store.down = True
    seen: list[Mapping[str, Any]] = []
    sink = EventSink(seen.append, stamp=audit.stamp, journal=StoreJournal(store, 5))
    sink.emit("locked_out", {"user": "bob"})
    asyncio.run(sink.aemit("locked_out", {"user": "bob"}))
    assert [e["event"] for e in seen] == ["locked_out", "locked_out"]  # the hook still hears
    assert "event locked_out not kept for its user" in caplog.text
