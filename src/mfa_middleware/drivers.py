"""Run a flow of effects (`core.effects`) against a store: one sync driver, one async driver.

`_operation` maps each effect to a method name and its arguments once; the sync driver calls
`name`, the async driver awaits its twin `aname`. The flows never touch I/O themselves. A store
failure is thrown into the flow at the `yield` that asked for it, so flows decide what an
outage means (the gate fails closed) in one place for every adapter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from mfa_middleware.core.effects import (
    Delete,
    Deliver,
    Effect,
    Emit,
    Get,
    GetMany,
    Put,
    Scan,
    Update,
)
from mfa_middleware.errors import DeliveryFailed, StoreError
from mfa_middleware.events import EventSink
from mfa_middleware.senders.base import Message
from mfa_middleware.senders.delivery import Delivery
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
        case Deliver(channel, to, subject, text, html):
            return "send", (Message(channel, to, subject, text, html),), {}
    raise TypeError(f"not an effect: {effect!r}")  # pragma: no cover


def _target(effect: Effect, store: Store, events: EventSink, delivery: Delivery | None) -> Any:
    if isinstance(effect, Emit):
        return events
    if isinstance(effect, Deliver):
        if delivery is None:
            raise DeliveryFailed(effect.channel, "no sender is configured")
        return delivery
    return store


def run_sync(
    flow: Generator[Effect, Any, T],
    store: Store,
    events: EventSink,
    delivery: Delivery | None = None,
) -> T:
    try:
        effect = next(flow)
        while True:
            name, args, kwargs = _operation(effect)
            try:
                result = getattr(_target(effect, store, events, delivery), name)(*args, **kwargs)
            except (StoreError, DeliveryFailed) as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(
    flow: Generator[Effect, Any, T],
    store: Store,
    events: EventSink,
    delivery: Delivery | None = None,
) -> T:
    try:
        effect = next(flow)
        while True:
            name, args, kwargs = _operation(effect)
            try:
                target = _target(effect, store, events, delivery)
                result = await getattr(target, "a" + name)(*args, **kwargs)
            except (StoreError, DeliveryFailed) as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
