"""`DjangoStore`'s process cache across processes, on a real PostgreSQL server and a real Redis
as the Django cache: the bound on how long another process's change can stay unseen.

The bound, proved in two steps: a change committed by another process is served from the
cache until the next poll and never after it (`test_..._seen_at_the_next_poll`), and the
poller thread polls every `poll_interval` by itself (`test_the_thread_polls_...`). So a
force-logout, a mode or a lifetime change reaches every worker at most `poll_interval`
(plus one poll's round trip to the cache) after its commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from mfa_middleware.core.records import SETTINGS_KEY, user_key
from mfa_middleware.django.store import DjangoStore
from tests.django_project.test_django_store import fresh
from tests.support.postgres_server import PostgresServer
from tests.support.redis_servers import RedisServer, redis_server

ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = user_key("1"), user_key("2")
HOT = (SETTINGS_KEY, ALICE)

WRITER = """
import json, secrets, sys
import django
from django.conf import settings

database, cache_url, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings.configure(
    DATABASES={"default": json.loads(database)},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": cache_url}},
    INSTALLED_APPS=["mfa_middleware.django"],
)
django.setup()
from mfa_middleware import MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.django.store import DjangoStore
from mfa_middleware.runtime import Runtime

store = DjangoStore(cache="default")
keys = [secrets.token_urlsafe(48)]
admin = Admin(Runtime(MFAConfig(secret_keys=keys, store=store)), actor="test:other")
for name, args in ops:
    getattr(admin, name)(*args)
"""


@pytest.fixture(scope="module")
def redis_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis-cache")) as server:
        yield server


@pytest.fixture
def shared(redis_cache: RedisServer) -> Iterator[str]:
    """The Django cache alias "shared": the real Redis every process uses."""
    redis_cache.client().flushall()
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_cache.url}
    with override_settings(CACHES={"default": redis, "shared": redis}):
        yield "shared"


def reader(pg_alias: str, shared: str, poll_interval: float = 3600) -> DjangoStore:
    """A worker's store whose thread polls once at start, then (by default) not for an hour:
    the test decides when the next poll happens."""
    store = DjangoStore(using=pg_alias, cache=shared, poll_interval=poll_interval)
    assert store.shared is not None
    store.shared.start()
    assert store.shared.live.wait(10)
    return store


def other_process(postgres: PostgresServer, redis_cache: RedisServer, *ops: object) -> None:
    """`Admin` operations made by another process on the same database and cache."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITER,
            json.dumps(postgres.django_settings("mfa_store")),
            redis_cache.url,
            json.dumps(ops),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def queries(alias: str, store: DjangoStore, *keys: object) -> tuple[list[object], int]:
    """The cached read of `keys`, and how many queries it made."""
    with CaptureQueriesContext(connections[alias]) as captured:
        docs = store.get_many(keys, cached=True)  # type: ignore[arg-type]
    return docs, len(captured.captured_queries)


def test_a_change_by_another_process_is_seen_at_the_next_poll(
    pg_alias: str, shared: str, postgres: PostgresServer, redis_cache: RedisServer
) -> None:
    fresh(pg_alias)
    store = reader(pg_alias, shared)
    store.put(ALICE, {"epoch": 0})
    store.put(BOB, {"epoch": 0})
    before, _ = queries(pg_alias, store, *HOT, BOB)
    again, count = queries(pg_alias, store, *HOT, BOB)
    assert (again, count) == (before, 0)  # served by the process cache: no query at all

    other_process(
        postgres,
        redis_cache,
        ("logout", ["1"]),
        ("set_mode", ["off"]),
        ("set_session_lifetime", ["1h"]),
    )
    stale, count = queries(pg_alias, store, *HOT, BOB)
    assert (stale, count) == (before, 0)  # until the next poll, the cache answers

    generation = store.cache_generation()
    store.shared.poll()  # type: ignore[union-attr] (what the thread does every poll_interval)
    assert store.cache_generation() != generation  # remembered verified answers are void
    (settings, alice, bob), count = queries(pg_alias, store, *HOT, BOB)
    assert settings is not None
    assert settings["mode"] == "off"
    assert settings["session_lifetime"] == 3600
    assert alice is not None
    assert alice["epoch"] == 1  # forced out
    assert bob == {"epoch": 0}
    assert count == 1  # only what changed was read again: bob's record stayed cached
    store.close()


def test_the_thread_polls_every_poll_interval_by_itself(
    pg_alias: str, shared: str, postgres: PostgresServer, redis_cache: RedisServer
) -> None:
    fresh(pg_alias)
    store = reader(pg_alias, shared, poll_interval=0.05)
    assert store.shared is not None
    store.put(ALICE, {"epoch": 0})
    assert store.get(ALICE, cached=True) == {"epoch": 0}
    polls = store.shared.polls
    deadline = time.monotonic() + 20
    while store.shared.polls < polls + 3:  # three more polls, nobody asking for them
        assert time.monotonic() < deadline, "the thread does not poll"
        time.sleep(0.01)
    other_process(postgres, redis_cache, ("logout", ["1"]))
    while store.get(ALICE, cached=True) == {"epoch": 0}:
        assert time.monotonic() < deadline + 20, "the change never arrived"
        time.sleep(0.01)
    assert store.get(ALICE, cached=True)["epoch"] == 1  # type: ignore[index]
    store.close()


def test_a_lost_log_entry_drops_the_whole_process_cache(
    pg_alias: str, shared: str, redis_cache: RedisServer
) -> None:
    fresh(pg_alias)
    store = reader(pg_alias, shared)
    writer = DjangoStore(using=pg_alias, cache=shared)
    writer.put(BOB, {"epoch": 0})
    store.shared.poll()  # type: ignore[union-attr]
    assert queries(pg_alias, store, BOB) == ([{"epoch": 0}], 1)
    assert queries(pg_alias, store, BOB) == ([{"epoch": 0}], 0)
    writer.put(ALICE, {"epoch": 7})
    client = redis_cache.client()
    for entry in client.keys("*:change:*"):
        client.delete(entry)  # evicted before this worker read it: which key changed is lost
    store.shared.poll()  # type: ignore[union-attr]
    assert queries(pg_alias, store, BOB) == ([{"epoch": 0}], 1)  # everything read again
    assert store.get(ALICE, cached=True) == {"epoch": 7}
    store.close()
    writer.close()


def test_without_a_reachable_cache_every_read_goes_to_the_database(
    pg_alias: str, tmp_path: Path
) -> None:
    fresh(pg_alias)
    with redis_server(tmp_path / "redis") as server:
        redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url}
        with override_settings(CACHES={"default": redis}):
            store = reader(pg_alias, "default")
            store.put(ALICE, {"epoch": 0})
            assert queries(pg_alias, store, ALICE)[0] == [{"epoch": 0}]
            server.kill()
            store.shared.poll()  # type: ignore[union-attr]
            assert store.cache_generation() is None  # no remembered answers either
            DjangoStore(using=pg_alias).put(ALICE, {"epoch": 1})  # unannounced
            assert queries(pg_alias, store, ALICE) == ([{"epoch": 1}], 1)
            server.start()
            store.shared.poll()  # type: ignore[union-attr]
            assert store.cache_generation() is not None
            assert queries(pg_alias, store, ALICE) == ([{"epoch": 1}], 1)
            assert queries(pg_alias, store, ALICE) == ([{"epoch": 1}], 0)
            store.close()


def test_the_process_cache_is_dropped_every_max_age(pg_alias: str, shared: str) -> None:
    """The bound even for a change whose announcement was lost (its writer died between
    the commit and the announcement)."""
    fresh(pg_alias)
    store = DjangoStore(using=pg_alias, cache=shared, poll_interval=3600, max_age=1e-9)
    store.shared.start()  # type: ignore[union-attr]
    assert store.shared.live.wait(10)  # type: ignore[union-attr]
    store.put(ALICE, {"epoch": 0})
    assert queries(pg_alias, store, ALICE) == ([{"epoch": 0}], 1)
    DjangoStore(using=pg_alias).put(ALICE, {"epoch": 1})  # not announced
    store.shared.poll()  # type: ignore[union-attr]
    assert queries(pg_alias, store, ALICE) == ([{"epoch": 1}], 1)
    store.close()


def test_a_forked_worker_starts_with_an_empty_cache_and_its_own_poller(
    pg_alias: str, shared: str
) -> None:
    """A server that builds its app before forking workers: a child must not serve what the
    parent cached, since no poller of the parent's runs in it."""
    import os

    fresh(pg_alias)
    store = reader(pg_alias, shared)
    store.put(ALICE, {"epoch": 0})
    assert store.get(ALICE, cached=True) == {"epoch": 0}
    parent_thread = store.shared._thread  # type: ignore[union-attr]
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        found, _ = store.shared.lookup((ALICE,), store.clock())  # type: ignore[union-attr]
        store.shared.start()  # type: ignore[union-attr] (what every cached read does first)
        after, _ = store.shared.lookup((ALICE,), store.clock())  # type: ignore[union-attr]
        fresh_thread = store.shared._thread is not parent_thread  # type: ignore[union-attr]
        os._exit(0 if found and not after and fresh_thread else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.close()
