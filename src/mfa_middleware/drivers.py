"""Run a flow of effects (`core.effects`) against a store: one sync driver, one async driver.

`_call` maps each effect to the method that carries it out and its arguments once; the sync
driver calls the method, the async driver awaits its twin `a<name>` (a store's twins keep
whatever may wait off the event loop: `stores.base`). The flows never touch I/O themselves.
A store failure is thrown into the flow at the `yield` that asked for it, so flows decide what
an outage means (the gate fails closed) in one place for every adapter.

A flow that returns a `Step` goes on with the step's flow, whose result goes to the step's
`then` (see `Chain`); `recover` answers a store failure no flow of the chain handled.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
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
    Step,
    Update,
)
from mfa_middleware.errors import DeliveryFailed, StoreError
from mfa_middleware.events import EventSink
from mfa_middleware.senders.base import Message
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.stores.base import Store

T = TypeVar("T")


def _call(
    effect: Effect, store: Store, events: EventSink, delivery: Delivery | None
) -> tuple[Any, str, tuple[Any, ...], dict[str, Any]]:
    """Who carries out `effect`, the name of its method, and the arguments."""
    match effect:
        case Get(key, cached):
            return store, "get", (key,), {"cached": cached}
        case GetMany(keys, cached):
            return store, "get_many", (keys,), {"cached": cached}
        case Update(key, fn, ttl):
            return store, "update", (key, fn), {"ttl": ttl}
        case Put(key, doc, ttl):
            return store, "put", (key, doc), {"ttl": ttl}
        case Delete(key):
            return store, "delete", (key,), {}
        case Scan(kind, part):
            return store, "scan", (kind, part), {}
        case Emit(name, fields):
            return events, "emit", (name, fields), {}
        case Deliver(channel, to, subject, text, html):
            if delivery is None:
                raise DeliveryFailed(channel, "no sender is configured")
            return delivery, "send", (Message(channel, to, subject, text, html),), {}
    raise TypeError(f"not an effect: {effect!r}")  # pragma: no cover


class Chain:
    """The flow being run and the `then`s waiting for results, for either driver.

    `advance` sends the last effect's result (or throws its error) into the current flow and
    returns the next effect, or `Done` with the chain's result. A flow that returns a `Step`
    is followed by the step's flow; when a flow returns anything else, the last waiting `then`
    turns it into the next value (which may be a `Step` again)."""

    __slots__ = ("flow", "waiting")

    def __init__(self, flow: Generator[Effect, Any, Any]) -> None:
        self.flow = flow
        self.waiting: list[Callable[[Any], Any]] = []

    def advance(self, value: Any = None, error: BaseException | None = None) -> Effect | Done:
        while True:
            try:
                return self.flow.send(value) if error is None else self.flow.throw(error)
            except StopIteration as stop:
                value, error = stop.value, None
            while not isinstance(value, Step):
                if not self.waiting:
                    return Done(value)
                value = self.waiting.pop()(value)
            self.flow = value.flow
            self.waiting.append(value.then)
            value = None


@dataclass(frozen=True, slots=True)
class Done:
    value: Any


def run_sync(
    flow: Generator[Effect, Any, T],
    store: Store,
    events: EventSink,
    delivery: Delivery | None = None,
    recover: Callable[[StoreError], T] | None = None,
) -> T:
    chain = Chain(flow)
    try:
        step = chain.advance()
        while not isinstance(step, Done):
            target, name, args, kwargs = _call(step, store, events, delivery)
            try:
                result = getattr(target, name)(*args, **kwargs)
            except (StoreError, DeliveryFailed) as exc:
                step = chain.advance(error=exc)
                continue
            step = chain.advance(result)
    except StoreError as exc:
        if recover is None:
            raise
        return recover(exc)
    value: T = step.value
    return value


async def run_async(
    flow: Generator[Effect, Any, T],
    store: Store,
    events: EventSink,
    delivery: Delivery | None = None,
    recover: Callable[[StoreError], T] | None = None,
) -> T:
    chain = Chain(flow)
    try:
        step = chain.advance()
        while not isinstance(step, Done):
            target, name, args, kwargs = _call(step, store, events, delivery)
            try:
                result = await getattr(target, "a" + name)(*args, **kwargs)
            except (StoreError, DeliveryFailed) as exc:
                step = chain.advance(error=exc)
                continue
            step = chain.advance(result)
    except StoreError as exc:
        if recover is None:
            raise
        return recover(exc)
    value: T = step.value
    return value
