"""The store contract against `DjangoStore`: on SQLite (Django's test database), on a real
PostgreSQL server, and with the process cache kept coherent through Django's cache; plus
atomic updates from many threads on both databases, and an async write that waits for the
database's lock without holding up the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from mfa_middleware.core.effects import Key
from mfa_middleware.django.models import Document
from mfa_middleware.django.store import DjangoStore
from mfa_middleware.stores.base import Store
from tests.stores.contract import Api, FakeClock, StoreContract, increment
from tests.support.stalls import LoopLag, holding_write_lock

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mfa-tests"}


def fresh(alias: str) -> None:
    Document.objects.using(alias).all().delete()


class ThreadedApi(Api):
    """The sync methods called from a thread, as Django requires (never on an event loop)."""

    def _op(self, name: str) -> Callable[..., Awaitable[Any]]:
        if self.mode == "async":
            return super()._op(name)
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


class DjangoContract(StoreContract):
    @pytest.fixture(params=["sync", "async"])
    def api(self, request: pytest.FixtureRequest, store: Store) -> Api:
        return ThreadedApi(store, request.param)


class TestDjangoStoreOnSQLite(DjangoContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> Iterator[DjangoStore]:
        fresh("default")
        store = DjangoStore()
        store.use_clock(clock)
        yield store
        store.close()


class TestDjangoStoreOnPostgreSQL(DjangoContract):
    @pytest.fixture
    def store(self, clock: FakeClock, pg_alias: str) -> Iterator[DjangoStore]:
        fresh(pg_alias)
        store = DjangoStore(using=pg_alias)
        store.use_clock(clock)
        yield store
        store.close()


class TestDjangoStoreWithSharedCache(DjangoContract):
    """The process cache in use (its log in a cache every thread of this process shares)."""

    @pytest.fixture
    def store(self, clock: FakeClock, pg_alias: str) -> Iterator[DjangoStore]:
        fresh(pg_alias)
        with override_settings(CACHES={"default": LOCMEM, "mfa": LOCMEM}):
            store = DjangoStore(using=pg_alias, cache="mfa")
            store.use_clock(clock)
            assert store.shared is not None
            store.shared.start()
            assert store.shared.live.wait(10)
            yield store
            store.close()


def updates_from_threads(store: DjangoStore, threads: int, each: int) -> list[int]:
    """`threads` threads each adding one `each` times to one counter; the old values seen."""
    from django.db import connections

    key = Key("throttle", "alice")
    seen: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)
    lock = threading.Lock()

    def work() -> None:
        try:
            start.wait()
            for _ in range(each):
                old, _new = store.update(key, increment)
                with lock:
                    seen.append((old or {}).get("n", 0))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connections

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert store.get(key) == {"n": threads * each}
    return seen


def test_parallel_updates_on_postgresql_are_each_counted_once(pg_alias: str) -> None:
    fresh(pg_alias)
    seen = updates_from_threads(DjangoStore(using=pg_alias), 8, 25)
    assert sorted(seen) == list(range(200))  # no two updates read the same state


def test_parallel_updates_on_a_sqlite_file_are_each_counted_once(sqlite_file: str) -> None:
    seen = updates_from_threads(DjangoStore(using=sqlite_file), 8, 25)
    assert sorted(seen) == list(range(200))


def test_the_gates_read_is_one_indexed_query_on_postgresql(pg_alias: str) -> None:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from mfa_middleware.core.records import SETTINGS_KEY, user_key

    fresh(pg_alias)
    store = DjangoStore(using=pg_alias)
    store.put(user_key("7"), {"epoch": 1})
    with CaptureQueriesContext(connections[pg_alias]) as captured:
        docs = store.get_many((SETTINGS_KEY, user_key("7")), cached=True)
    assert docs == [None, {"epoch": 1}]
    [query] = [q["sql"] for q in captured.captured_queries]
    with connections[pg_alias].cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: show the index can serve it
        cursor.execute(f"EXPLAIN {query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "mfa_document_key" in plan, plan
    assert "Seq Scan" not in plan, plan


class ToTheFile:
    """A project's router: the 2FA app's tables on the "sqlite_file" database."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "sqlite_file" if model._meta.app_label == "mfa_middleware" else None

    db_for_write = db_for_read


def test_the_routers_choose_the_database(sqlite_file: str) -> None:
    fresh("default")
    fresh(sqlite_file)
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.ToTheFile"]):
        store = DjangoStore()
        store.put(Key("user", "alice"), {"epoch": 3})
        assert store.get(Key("user", "alice")) == {"epoch": 3}
    assert Document.objects.using(sqlite_file).count() == 1
    assert Document.objects.using("default").count() == 0
    assert DjangoStore(using="default").get(Key("user", "alice")) is None  # `using` wins


def test_expired_rows_are_purged_every_purge_every_writes() -> None:
    fresh("default")
    clock = FakeClock()
    store = DjangoStore(purge_every=3)
    store.use_clock(clock)
    store.put(Key("pending", "alice"), {"x": 1}, ttl=1)  # write 1
    clock.advance(2)
    assert store.get(Key("pending", "alice")) is None  # expired by the query at once
    assert Document.objects.filter(kind="pending").count() == 1  # the row is still there
    store.put(Key("filler", "_", "a"), {"i": 1})  # write 2
    store.put(Key("filler", "_", "b"), {"i": 2})  # write 3: the purge
    assert Document.objects.filter(kind="pending").count() == 0
    assert Document.objects.filter(kind="filler").count() == 2


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_async_write_waits_for_the_lock_off_the_event_loop(
    sqlite_file: str, anyio_backend: str
) -> None:
    """Async Django (or an ASGI app on this store): another process holds the SQLite file's
    write lock; the update waits for it in a thread, and the loop keeps running."""
    from django.db import connections

    await asyncio.to_thread(fresh, sqlite_file)
    store = DjangoStore(using=sqlite_file)
    key = Key("throttle", "alice")
    await store.aput(key, {"n": 1})
    assert (
        store.peek((key,), cached=True) is None
    )  # no process cache: every read is a query, off the loop
    path = Path(connections[sqlite_file].settings_dict["NAME"])
    with holding_write_lock(path, 1.0):
        async with LoopLag() as lag:
            started = time.perf_counter()
            assert await store.aupdate(key, increment) == ({"n": 1}, {"n": 2})
            waited = time.perf_counter() - started
    assert lag.worst < 0.1, lag.worst
    assert lag.wakes > 50
    assert waited > 0.5  # it did wait for the lock
    assert await store.aget(key) == {"n": 2}
