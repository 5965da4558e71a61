"""`DjangoStore`: the store contract on Django's ORM, in the project's own database.

Documents live in one table (`models.Document`, created by `manage.py migrate`) on whatever
database the project uses; the database is the one `DATABASE_ROUTERS` choose for the
`mfa_middleware` app (reads where `db_for_read` says, writes where `db_for_write` says), or
`using` when given.

`update` is atomic on every backend: inside `transaction.atomic`, the row is locked with
`select_for_update` before it is read; SQLite has no row locks, so there the transaction
first writes to the row (a no-op `UPDATE`), which takes SQLite's write lock before the read.
Two transactions creating the same missing row race on the unique key: the loser's
`IntegrityError` rolls it back and it tries again, now finding the row to lock.

Documents with a TTL carry an `expires` time that every read filters on; expired rows are
deleted by one indexed `DELETE` every `purge_every` writes, never by a scan per request.

Cached reads (the gate's): without `cache`, each is one indexed query, so a verified request
costs one query and sees every change at once. With `cache` naming a Django cache shared by
the workers (Redis, Memcached), they come from a process cache kept coherent through it
(`shared_cache`): no query at all, and changes reach every worker within `poll_interval`.

The ORM is sync. Under ASGI the store follows the contract's rule (`stores.base`): a cached
read the process cache answers whole stays on the event loop (`peek`); every other call runs
in the request's thread through `sync_to_async(thread_sensitive=True)` (`off_loop`), so no
query, write or purge runs on the loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.django.shared_cache import SharedCache
from mfa_middleware.errors import StoreConflict, StoreError
from mfa_middleware.stores.base import Store

T = TypeVar("T")
_Row = tuple[str | None, float | None]


def _model() -> Any:
    """The Document model (imported late: a store may be built in settings.py, before the
    app registry is ready)."""
    from mfa_middleware.django.models import Document

    return Document


def _json(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _loads(text: str | None) -> Doc | None:
    return None if text is None else json.loads(text)


class DjangoStore(Store):
    """The store in the project's database. `using`: a database alias (default: the routers'
    choice); `cache`: a Django cache alias shared by every worker, to make verified requests
    query-free (see the module docstring for what it costs and guarantees)."""

    def __init__(
        self,
        *,
        using: str | None = None,
        cache: str | None = None,
        poll_interval: float = 0.5,
        max_age: float = 60.0,
        purge_every: int = 500,
        max_update_retries: int = 20,
    ) -> None:
        if poll_interval <= 0 or max_age <= 0:
            raise ValueError("poll_interval and max_age must be positive")
        self.using = using
        self.cache_alias = cache
        self.poll_interval = poll_interval
        self.max_age = max_age
        self.purge_every = purge_every
        self.max_update_retries = max_update_retries
        self._writes = 0
        self.shared = (
            None if cache is None else SharedCache(cache, self._identity, poll_interval, max_age)
        )

    # -- where, and errors ------------------------------------------------------------------

    def database(self, *, write: bool) -> str:
        """The database alias for a read or a write: `using`, or what the routers say."""
        if self.using is not None:
            return self.using
        from django.db import router

        choose = router.db_for_write if write else router.db_for_read
        return str(choose(_model()))

    def _identity(self) -> str:
        """The database the documents are written to, named the same in every process
        (engine, host, port, name), whatever alias each one knows it by."""
        from django.db import connections

        db = connections[self.database(write=True)].settings_dict
        return "|".join(str(db.get(k, "")) for k in ("ENGINE", "HOST", "PORT", "NAME"))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from django.db import Error

        try:
            yield
        except Error as exc:
            raise StoreError(f"Django database: {exc}") from exc

    # -- reads --------------------------------------------------------------------------

    def _fetch(self, keys: tuple[Key, ...]) -> dict[Key, tuple[Doc, float | None]]:
        """The live documents among `keys`: one query, on the table's unique key."""
        from django.db.models import Q

        match = Q()
        for key in dict.fromkeys(keys):
            match |= Q(kind=key.kind, part=key.part, name=key.name)
        alive = Q(expires__isnull=True) | Q(expires__gt=self.clock())
        rows = (
            _model()
            .objects.using(self.database(write=False))
            .filter(match)
            .filter(alive)
            .values_list("kind", "part", "name", "doc", "expires")
        )
        return {Key(k, p, n): (json.loads(doc), exp) for k, p, n, doc, exp in rows}

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.get_many((key,), cached=cached)[0]

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        if not keys:
            return []
        shared = self.shared if cached and self.shared is not None and self.shared.start() else None
        found: dict[Key, Doc | None] = {}
        generation = 0
        if shared is not None:
            found, generation = shared.lookup(keys, self.clock())
        missing = tuple(k for k in keys if k not in found)
        if missing:
            with self._errors():
                rows = self._fetch(missing)
            for key in missing:
                doc, expires = rows.get(key, (None, None))
                found[key] = doc
                if shared is not None:
                    shared.fill(key, doc, expires, generation)
        return [found[key] for key in keys]

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        from django.db.models import Q

        with self._errors():
            rows = (
                _model()
                .objects.using(self.database(write=False))
                .filter(Q(expires__isnull=True) | Q(expires__gt=self.clock()), kind=kind, part=part)
                .order_by("name")
                .values_list("name", "doc")
            )
            return [(name, json.loads(doc)) for name, doc in rows]

    def cache_generation(self) -> int | None:
        """Known while the process cache follows the shared change log; without `cache`,
        None: the gate then makes its one cached read, a query, on every request."""
        if self.shared is None or not self.shared.start():
            return None
        return self.shared.generation

    # -- writes -------------------------------------------------------------------------

    def _locked_row(self, db: str, key: Key) -> _Row | None:
        """The row for `key` (its document text, None once expired, and expiry), locked
        until the transaction ends; None when there is no row (nothing to lock: a concurrent
        creator makes our insert fail, and the retry then finds its row)."""
        from django.db import connections

        rows = _model().objects.using(db).filter(kind=key.kind, part=key.part, name=key.name)
        if connections[db].features.has_select_for_update:
            rows = rows.select_for_update()
        else:  # SQLite: take the database's write lock before reading
            rows.update(kind=key.kind)
        row = rows.values_list("doc", "expires").first()
        if row is None:
            return None
        if row[1] is not None and row[1] <= self.clock():
            return None, None
        return row[0], row[1]

    def _transact(
        self, key: Key, fn: Updater, expiry: Callable[[float | None], float | None]
    ) -> tuple[Doc | None, Doc | None]:
        """Read-lock-replace `key` in one transaction; `expiry(old expiry)` is the new one."""
        from django.db import IntegrityError, transaction

        db = self.database(write=True)
        with self._errors():
            for _attempt in range(self.max_update_retries):
                try:
                    with transaction.atomic(using=db):
                        old, new = self._replace(db, key, fn, expiry)
                    break
                except IntegrityError:  # another transaction created the row first
                    continue
            else:
                raise StoreConflict(f"update of {key.kind} kept conflicting; gave up")
            self._wrote(db, key)
        return old, new

    def _replace(
        self, db: str, key: Key, fn: Updater, expiry: Callable[[float | None], float | None]
    ) -> tuple[Doc | None, Doc | None]:
        """Inside a transaction: the locked row replaced by `fn` of it. A row that was not
        there is inserted, never updated: one committed meanwhile must make this fail."""
        model = _model()
        row = self._locked_row(db, key)
        text, expires = row if row is not None else (None, None)
        old, new = _loads(text), fn(_loads(text))  # fn gets its own copy
        rows = model.objects.using(db).filter(kind=key.kind, part=key.part, name=key.name)
        if new is None:
            if row is not None:
                rows.delete()
            return old, new
        fields = {"doc": _json(new), "expires": expiry(expires)}
        if row is None:
            model.objects.using(db).create(kind=key.kind, part=key.part, name=key.name, **fields)
        else:
            rows.update(**fields)
        return old, new

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        def expiry(old: float | None) -> float | None:
            return old if ttl is None else self.clock() + ttl

        return self._transact(key, fn, expiry)

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        text = _json(doc)  # refuse what is not JSON before touching the database
        expires = None if ttl is None else self.clock() + ttl
        self._transact(key, lambda _old: json.loads(text), lambda _old: expires)

    def delete(self, key: Key) -> None:
        db = self.database(write=True)
        with self._errors():
            _model().objects.using(db).filter(kind=key.kind, part=key.part, name=key.name).delete()
            self._wrote(db, key)

    def _wrote(self, db: str, key: Key) -> None:
        """After a write: drop it from this process's cache now, announce it to the other
        processes once committed, and purge expired rows every `purge_every` writes."""
        from django.db import transaction

        if self.shared is not None:
            self.shared.forget((key,))
            transaction.on_commit(partial(self.shared.announce, (key,)), using=db)
        self._writes += 1
        if self.purge_every and self._writes % self.purge_every == 0:
            self.purge(db)

    def purge(self, db: str | None = None) -> int:
        """Delete the expired rows (the `expires` index finds them); how many there were."""
        with self._errors():
            rows = _model().objects.using(db or self.database(write=True))
            deleted, _ = rows.filter(expires__lte=self.clock()).delete()
            return int(deleted)

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()

    # -- under an event loop: the ORM is sync ------------------------------------------------

    def peek(self, keys: tuple[Key, ...], *, cached: bool) -> list[Doc | None] | None:
        shared = self.shared
        if not cached or shared is None or not shared.start():  # start: a forked child resets
            return None
        found, _ = shared.lookup(keys, self.clock())
        if len(found) != len(keys):  # one is not in memory: a query
            return None
        return [found[key] for key in keys]

    async def off_loop(self, call: Callable[[], T], *, write: bool) -> T:
        """In the request's thread, as Django runs its own sync code under ASGI."""
        result: T = await sync_to_async(call, thread_sensitive=True)()
        return result
