"""Audit events: one structured log record per security-relevant step, plus an optional hook.

Events carry who, what and the outcome; never a code, secret, cookie or token.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger("mfa_middleware")

Hook = Callable[[Mapping[str, Any]], Awaitable[None] | None]


class EventSink:
    def __init__(self, hook: Hook | None = None) -> None:
        self.hook = hook

    def _record(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        event = {"event": name, **fields}
        logger.info("%s", name, extra={"mfa_event": event})
        return event

    def emit(self, name: str, fields: Mapping[str, Any]) -> None:
        event = self._record(name, fields)
        if self.hook is not None:
            result = self.hook(event)
            if inspect.iscoroutine(result):
                result.close()
            if inspect.isawaitable(result):
                raise TypeError("an async on_event hook needs the ASGI middleware")

    async def aemit(self, name: str, fields: Mapping[str, Any]) -> None:
        event = self._record(name, fields)
        if self.hook is not None:
            result = self.hook(event)
            if inspect.isawaitable(result):
                await result
