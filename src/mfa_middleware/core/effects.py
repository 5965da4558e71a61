"""Store operations as data, so every flow is written once and run by a sync or async driver.

A flow is a generator that yields effects and receives their results (like httpx's
`Auth.auth_flow`): `doc = yield from get(key)`. The drivers in `mfa_middleware.drivers` carry
the effects out against a store's sync or async twin methods. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

Doc: TypeAlias = dict[str, Any]
"""A JSON-serialisable record as stores keep it."""

Updater: TypeAlias = Callable[["Doc | None"], "Doc | None"]
"""A pure function from the current record (or None) to the new one (None deletes)."""


@dataclass(frozen=True, slots=True)
class Key:
    """Where a record lives: its kind, the user it belongs to (the partition) and a name.

    The partition keeps every record of one user together (one Redis Cluster slot, one SQLite
    index range); global records use the partition "_".
    """

    kind: str
    part: str = "_"
    name: str = ""


@dataclass(frozen=True, slots=True)
class Get:
    key: Key
    cached: bool = False


@dataclass(frozen=True, slots=True)
class GetMany:
    keys: tuple[Key, ...]
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Put:
    key: Key
    doc: Doc
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: Key


@dataclass(frozen=True, slots=True)
class Update:
    """Atomic read-modify-write: `fn` may run more than once, so it must be pure."""

    key: Key
    fn: Updater
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """Every record of one kind in one partition, as (name, doc) pairs."""

    kind: str
    part: str


@dataclass(frozen=True, slots=True)
class Emit:
    """An audit event for the log and the configured hook; never holds a code or secret."""

    name: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send a message (a code) by SMS or email; a failure is thrown back into the flow as
    `DeliveryFailed`, so the flow can fall back to another channel."""

    channel: str
    to: str
    subject: str
    text: str
    html: str | None = None


Effect: TypeAlias = Get | GetMany | Put | Delete | Update | Scan | Emit | Deliver
Flow: TypeAlias = Generator[Effect, Any, Any]
"""A generator of effects; its return value is the flow's result."""


def get(key: Key, *, cached: bool = False) -> Generator[Effect, Any, Doc | None]:
    doc: Doc | None = yield Get(key, cached)
    return doc


def get_many(
    keys: tuple[Key, ...], *, cached: bool = False
) -> Generator[Effect, Any, list[Doc | None]]:
    docs: list[Doc | None] = yield GetMany(keys, cached)
    return docs


def put(key: Key, doc: Doc, *, ttl: float | None = None) -> Generator[Effect, Any, None]:
    yield Put(key, doc, ttl)


def delete(key: Key) -> Generator[Effect, Any, None]:
    yield Delete(key)


def update(
    key: Key, fn: Updater, *, ttl: float | None = None
) -> Generator[Effect, Any, tuple[Doc | None, Doc | None]]:
    """Returns (old, new) as seen by the winning run of `fn`."""
    result: tuple[Doc | None, Doc | None] = yield Update(key, fn, ttl)
    return result


def scan(kind: str, part: str) -> Generator[Effect, Any, list[tuple[str, Doc]]]:
    rows: list[tuple[str, Doc]] = yield Scan(kind, part)
    return rows


def emit(name: str, **fields: Any) -> Generator[Effect, Any, None]:
    yield Emit(name, fields)
