"""The least gate: a lower bound for what ours can cost on a verified request.

`LeastGate` does only what any second-factor gate that keeps ours' guarantees must do on a
request it has let through before, and nothing of ours but the store's change signal:

- read the user id the app's authentication set (`scope["user"]`);
- read the app login's marker (the MFA session id kept in the app's session), so a new login
  is never taken for the old one;
- find its own cookie in the Cookie header (the MFA session, bound to this browser: a copied
  app session without it is challenged);
- ask the store whether anything changed since (another process revoked the session, an
  admin reset the user): SQLite's change signal, as ours reads it by default; none when
  `store` is None (one process, nothing else can write);
- look the three up in a dict and compare the clock with the remembered deadline;
- hand the app the session's state (`scope["mfa"]`), call it, and check afterwards that the
  app did not log the user out (the marker gone), which must end the MFA session.

A request it has not seen is remembered, not challenged: the bench replays one verified
request, so every timed request is a hit. Being a bound, it has no error handling, no rules,
no pages and no setup checks.
"""

from __future__ import annotations

import time
from typing import Any

from bench.apps import ASGIApp
from mfa_middleware.core.http import cookie_value
from mfa_middleware.core.mfa_state import BYPASS_STATE
from mfa_middleware.stores.base import Store

MARKER = "_mfa_sid"  # where ours keeps the MFA session id in the app's session


class LeastGate:
    def __init__(self, app: ASGIApp, cookie_name: str, store: Store | None) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.generation = store.cache_generation if store is not None else None
        self.seen: dict[tuple[str | None, str | None, str | None], tuple[Any, float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        user = scope["user"]
        user_id = user.identity if user.is_authenticated else None
        session = scope.get("session")
        marker = session.get(MARKER) if isinstance(session, dict) else None
        header = b""
        for name, value in scope["headers"]:
            if name == b"cookie":
                header = value
                break
        token = cookie_value(header.decode("latin-1"), self.cookie_name)
        generation = self.generation() if self.generation is not None else 0
        key = (token, marker, user_id)
        seen = self.seen.get(key)
        if seen is None or seen[0] != generation or time.time() >= seen[1]:
            self.seen[key] = (generation, time.time() + 3600.0)
        scope["mfa"] = BYPASS_STATE
        await self.app(scope, receive, send)
        if marker is not None and session.get(MARKER) is not marker:
            self.seen.pop(key, None)  # the app logged out: that MFA session is over


class DjangoLeastGate:
    """`LeastGate` for Django (listed where ours would be): the user's primary key, the session
    key as the login's marker, our cookie from `META`, the store's change signal (ours' store,
    from `MFA_MIDDLEWARE`), a dict and the clock. Django tells of a logout by a signal, so
    there is nothing to check after the view."""

    def __init__(self, get_response: Any) -> None:
        from mfa_middleware.django.settings import runtime

        self.get_response = get_response
        rt = runtime()
        self.cookie_name = rt.cookie_name
        self.generation = rt.store.cache_generation
        self.seen: dict[tuple[str | None, str | None, str | None], tuple[Any, float]] = {}

    def __call__(self, request: Any) -> Any:
        from django.utils.functional import empty

        lazy = request.user
        if lazy._wrapped is empty:
            lazy._setup()
        user = lazy._wrapped
        user_id = str(user.pk) if user.is_authenticated else None
        marker = request.session.session_key
        token = cookie_value(request.META.get("HTTP_COOKIE", ""), self.cookie_name)
        generation = self.generation()
        key = (token, marker, user_id)
        seen = self.seen.get(key)
        if seen is None or seen[0] != generation or time.time() >= seen[1]:
            self.seen[key] = (generation, time.time() + 3600.0)
        vars(request)["mfa"] = BYPASS_STATE
        return self.get_response(request)
