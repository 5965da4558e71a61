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


class EventSink:
    """Each event once: stamped (`stamp`: `core.audit.stamp` in the runtime adds its id,
    time, actor and target), logged, kept by the `journal`, then handed to the hook."""

    def __init__(
        self,
        hook: Hook | None = None,
        *,
        stamp: Stamp = _as_given,
        clock: Callable[[], float] = time.time,
        journal: Journal | None = None,
    ) -> None:
        self.hook = hook
        self.stamp = stamp
        self.clock = clock
        self.journal = journal

    def _record(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        event = self.stamp(name, fields, self.clock())
        logger.info("%s", name, extra={"mfa_event": event})
        return event

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
