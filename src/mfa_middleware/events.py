"""Audit events: one structured log record per security-relevant step, plus an optional hook.

Events carry who, what and the outcome; never a code, secret, cookie or token.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

logger = logging.getLogger("mfa_middleware")

Hook = Callable[[Mapping[str, Any]], Awaitable[None] | None]
Stamp = Callable[[str, Mapping[str, Any], float], dict[str, Any]]


class Journal(Protocol):
    """Where each event is kept besides the log (the runtime's: the users' recent events in
    the store, and the metrics). Never raises: a failure to keep an event is logged by it."""

    def record(self, event: Mapping[str, Any]) -> None: ...

    async def arecord(self, event: Mapping[str, Any]) -> None: ...


def _as_given(name: str, fields: Mapping[str, Any], now: float) -> dict[str, Any]:
    return {"event": name, **fields}


Listener = Callable[[Mapping[str, Any]], None]
"""A synchronous observer of every event (the Prometheus exporter): cheap, never awaited."""


class EventSink:
    """Each event once: stamped (`stamp`: `core.audit.stamp` in the runtime adds its id,
    time, actor and target), logged, handed to the `listeners` (the metrics), kept by the
    `journal`, then handed to the hook."""

    def __init__(
        self,
        hook: Hook | None = None,
        *,
        stamp: Stamp = _as_given,
        clock: Callable[[], float] = time.time,
        journal: Journal | None = None,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.hook = hook
        self.stamp = stamp
        self.clock = clock
        self.journal = journal
        self.listeners = listeners
        self._pending: set[Any] = set()  # hooks' coroutines started by `emit_now`

    def _record(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        event = self.stamp(name, fields, self.clock())
        logger.info("%s", name, extra={"mfa_event": event})
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # an observer's bug must not change what the event reports
                logger.exception("an event listener failed on %s", name)
        return event

    def emit_now(self, name: str, fields: Mapping[str, Any]) -> None:
        """An event from code that runs outside a flow (a page's answer to a store outage,
        which the driver asks for synchronously on either path): logged and observed at once,
        never kept (the store is what failed), and handed to the hook; an async hook runs as a
        task on the running event loop."""
        event = self._record(name, fields)
        if self.hook is None:
            return
        result = self.hook(event)
        if inspect.isawaitable(result):
            import asyncio

            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError("an async on_event hook needs the ASGI middleware") from None
            task = loop.create_task(_awaited(result))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def emit(self, name: str, fields: Mapping[str, Any]) -> None:
        event = self._record(name, fields)
        if self.journal is not None:
            self.journal.record(event)
        if self.hook is not None:
            result = self.hook(event)
            if inspect.iscoroutine(result):
                result.close()
            if inspect.isawaitable(result):
                raise TypeError("an async on_event hook needs the ASGI middleware")

    async def aemit(self, name: str, fields: Mapping[str, Any]) -> None:
        event = self._record(name, fields)
        if self.journal is not None:
            await self.journal.arecord(event)
        if self.hook is not None:
            result = self.hook(event)
            if inspect.isawaitable(result):
                await result


async def _awaited(result: Awaitable[None]) -> None:
    await result
