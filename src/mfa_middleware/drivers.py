"""Run a flow of effects (`core.effects`) against a store: one sync driver, one async driver.

`_operation` maps each effect to a method name and its arguments once; the sync driver calls
`name`, the async driver awaits its twin `aname`. The flows never touch I/O themselves. A store
failure is thrown into the flow at the `yield` that asked for it, so flows decide what an
outage means (the gate fails closed) in one place for every adapter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from mfa_middleware.core.effects import Delete, Effect, Emit, Get, GetMany, Put, Scan, Update
from mfa_middleware.errors import StoreError
from mfa_middleware.events import EventSink
from mfa_middleware.stores.base import Store

T = TypeVar("T")


def _operation(effect: Effect) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    match effect:
        case Get(key, cached):
            return "get", (key,), {"cached": cached}
        case GetMany(keys, cached):
            return "get_many", (keys,), {"cached": cached}
        case Update(key, fn, ttl):
            return "update", (key, fn), {"ttl": ttl}
        case Put(key, doc, ttl):
            return "put", (key, doc), {"ttl": ttl}
        case Delete(key):
            return "delete", (key,), {}
        case Scan(kind, part):
            return "scan", (kind, part), {}
        case Emit(name, fields):
            return "emit", (name, fields), {}
    raise TypeError(f"not an effect: {effect!r}")  # pragma: no cover


def _target(effect: Effect, store: Store, events: EventSink) -> Store | EventSink:
    return events if isinstance(effect, Emit) else store


def run_sync(flow: Generator[Effect, Any, T], store: Store, events: EventSink) -> T:
    try:
        effect = next(flow)
        while True:
            name, args, kwargs = _operation(effect)
            try:
                result = getattr(_target(effect, store, events), name)(*args, **kwargs)
            except StoreError as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(flow: Generator[Effect, Any, T], store: Store, events: EventSink) -> T:
    try:
        effect = next(flow)
        while True:
            name, args, kwargs = _operation(effect)
            try:
                result = await getattr(_target(effect, store, events), "a" + name)(*args, **kwargs)
            except StoreError as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
