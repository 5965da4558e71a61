"""Store operations as data, so every flow is written once and run by a sync or async driver.

A flow is a generator that yields effects and receives their results (like httpx's
`Auth.auth_flow`): `doc = yield from get(key)`. The drivers in `mfa_middleware.drivers` carry
the effects out against a store's sync or async twin methods. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

Doc: TypeAlias = dict[str, Any]
"""A JSON-serialisable record as stores keep it."""

Updater: TypeAlias = Callable[["Doc | None"], "Doc | None"]
"""A pure function from the current record (or None) to the new one (None deletes)."""

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """Run `flow`, then hand its result to `then`: plain code that returns the final answer
    or the next `Step`. A flow may return a `Step` too. The drivers run the chain one step
    after another, so code built of steps (the pages) adds no generator level of its own."""

    flow: Generator[Effect, Any, T]
    then: Callable[[T], Any]


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


def annotated(flow: Generator[Effect, Any, T], **extra: Any) -> Generator[Effect, Any, T]:
    """`flow` with `extra` fields added to each of its events (where it has no such field):
    who asked and from where, when the operation itself does not know it (an admin's
    address for the operations shared with the CLI). Everything else passes through both ways,
    errors thrown in by the driver included."""
    sent: Any = None
    thrown: Exception | None = None
    while True:
        try:
            effect = flow.send(sent) if thrown is None else flow.throw(thrown)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(effect, Emit):
            added = {k: v for k, v in extra.items() if k not in effect.fields}
            effect = Emit(effect.name, {**effect.fields, **added})
        sent, thrown = None, None
        try:
            sent = yield effect
        except Exception as exc:  # e.g. DeliveryFailed: the flow decides what it means
            thrown = exc
