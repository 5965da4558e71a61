"""`effects.annotated`: a flow's events carry the fields of who asked, and everything else
(results sent in, errors thrown in by the driver, the flow's own result) passes through."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mfa_middleware.core.effects import Deliver, Effect, Key, annotated, emit, get, put
from mfa_middleware.drivers import run_sync
from mfa_middleware.errors import DeliveryFailed
from mfa_middleware.events import EventSink
from mfa_middleware.senders.base import Message, Sender
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.stores.memory import MemoryStore


class Refusing(Sender):
    channel = "email"

    def send(self, message: Message) -> None:
        raise DeliveryFailed("email", "refused")


def flow() -> Generator[Effect, Any, str]:
    yield from put(Key("x", "u"), {"n": 1})
    doc = yield from get(Key("x", "u"))
    assert doc == {"n": 1}
    try:
        yield Deliver("email", "a@example.com", "s", "t")
    except DeliveryFailed as exc:
        yield from emit("delivery", reason=exc.reason, ip="kept")
    yield from emit("done", user="u")
    return "result"


def test_events_get_the_fields_and_everything_else_passes_through() -> None:
    events: list[dict[str, Any]] = []
    result = run_sync(
        annotated(flow(), ip="203.0.113.7"),
        MemoryStore(),
        EventSink(events.append),
        Delivery(email=Refusing()),
    )
    assert result == "result"
    assert events == [
        {"event": "delivery", "reason": "refused", "ip": "kept"},  # its own field wins
        {"event": "done", "user": "u", "ip": "203.0.113.7"},
    ]
