"""The least gate: a lower bound for what ours can cost on a verified request.

`LeastGate` does only what any second-factor gate that keeps ours' guarantees must do on a
request it has let through before, each step as cheaply as Python allows:

- read the user id the app's authentication set (`scope["user"]`);
- read the app login's marker (the MFA session id kept in the app's session), so a new login
  is never taken for the old one;
- find its own cookie in the Cookie header lines, searched as bytes, only its value decoded
  (the MFA session, bound to this browser: a copied app session without it is challenged);
- ask whether any process wrote to the store since: one `os.pread` of SQLite's WAL index
  header (the same signal ours reads by default, without ours' checks around it) compared
  with the last one seen; none when `shm` is None (one process, nothing else can write);
- look the three up in a dict (bounded: cleared when full, as a gate must not grow without
  end) and compare the clock with the remembered deadline;
- hand the app the session's state (`scope["mfa"]`), call it, and check afterwards that the
  app did not log the user out (the marker gone), which must end the MFA session.

A request it has not seen is remembered, not challenged: the bench replays one verified
request, so every timed request is a hit. Being a bound, it has no error handling, no rules,
no pages and no setup checks. `PassThrough` is the layer alone: what being one more ASGI
middleware costs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.apps import ASGIApp
from mfa_middleware.core.effects import Key
from mfa_middleware.core.http import cookie_value
from mfa_middleware.core.mfa_state import BYPASS_STATE

MARKER = "_mfa_sid"  # where ours keeps the MFA session id in the app's session
LIMIT = 100_000  # remembered requests
WATCHED = 96  # bytes of the WAL index header: both copies


def watch(shm: Path) -> tuple[int, bytes]:
    """A descriptor of SQLite's `-shm` file and the WAL index header it holds now."""
    fd = os.open(shm, os.O_RDONLY)
    header = os.pread(fd, WATCHED, 0)
    if len(header) != WATCHED:
        raise RuntimeError(f"{shm} holds no WAL index header: is the store open?")
    return fd, header


class LeastGate:
    def __init__(self, app: ASGIApp, cookie_name: str, shm: Path | None) -> None:
        self.app = app
        self.name = cookie_name.encode("latin-1") + b"="
        self.fd, self.header = watch(shm) if shm is not None else (None, b"")
        self.generation = 0
        self.seen: dict[tuple[bytes | None, str | None, str | None], tuple[int, float]] = {}

    def token(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        name = self.name
        for key, value in headers:
            if key == b"cookie":
                start = value.find(name)
                while start != -1:
                    if start == 0 or value[start - 2 : start] == b"; ":
                        end = value.find(b";", start)
                        return value[start + len(name) : None if end == -1 else end]
                    start = value.find(name, start + 1)
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        user = scope["user"]
        user_id = user.identity if user.is_authenticated else None
        session = scope.get("session")
        marker = session.get(MARKER) if isinstance(session, dict) else None
        token = self.token(scope["headers"])
        if self.fd is not None:
            header = os.pread(self.fd, WATCHED, 0)
            if header != self.header:
                self.header = header
                self.generation += 1
        key = (token, marker, user_id)
        seen = self.seen.get(key)
        if seen is None or seen[0] != self.generation or time.time() >= seen[1]:
            if len(self.seen) >= LIMIT:
                self.seen.clear()
            self.seen[key] = (self.generation, time.time() + 3600.0)
        scope["mfa"] = BYPASS_STATE
        await self.app(scope, receive, send)
        if marker is not None and session.get(MARKER) is not marker:
            self.seen.pop(key, None)  # the app logged out: that MFA session is over


class PassThrough:
    """One more ASGI layer doing nothing: what the layer itself costs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class DjangoLeastGate:
    """`LeastGate` for Django (listed where ours would be): the user's primary key, the session
    key as the login's marker, our cookie from `META`, one `pread` of ours' SQLite store's WAL
    index header, a dict and the clock. Django tells of a logout by a signal, so there is
    nothing to check after the view. Its steps are written out as `LeastGate`'s are rather than
    shared through a method: a bound pays no call it can avoid."""

    def __init__(self, get_response: Any) -> None:
        from mfa_middleware.django.settings import runtime

        self.get_response = get_response
        rt = runtime()
        self.cookie_name = rt.cookie_name
        path = getattr(rt.store, "path", None)
        if path is None:
            raise RuntimeError("the least gate reads a SQLite store's change signal")
        rt.store.get(Key("bench", "_", "floor"))  # opens the store, and its -shm file
        self.fd, self.header = watch(Path(f"{path}-shm"))
        self.generation = 0
        self.seen: dict[tuple[str | None, str | None, str | None], tuple[int, float]] = {}

    def __call__(self, request: Any) -> Any:
        from django.utils.functional import empty

        lazy = request.user
        if lazy._wrapped is empty:
            lazy._setup()
        user = lazy._wrapped
        user_id = str(user.pk) if user.is_authenticated else None
        marker = request.session.session_key
        token = cookie_value(request.META.get("HTTP_COOKIE", ""), self.cookie_name)
        header = os.pread(self.fd, WATCHED, 0)
        if header != self.header:
            self.header = header
            self.generation += 1
        key = (token, marker, user_id)
        seen = self.seen.get(key)
        if seen is None or seen[0] != self.generation or time.time() >= seen[1]:
            if len(self.seen) >= LIMIT:
                self.seen.clear()
            self.seen[key] = (self.generation, time.time() + 3600.0)
        vars(request)["mfa"] = BYPASS_STATE
        return self.get_response(request)
