"""Support staff signed in as a user ("Login with Access"): how the middleware learns of it.

`MFAConfig.is_impersonating` is a function of the framework's request (the ASGI scope, the
WSGI environ, Django's HttpRequest) returning the user id of the support agent acting as the
signed-in user, or None. Such a session passes the gate on the agent's own second factor, never
the user's; it gets 403 on every page under the prefix (the user's 2FA is theirs alone); and
each of its requests is an `impersonated_request` event naming both people. Ready-made hooks:
`session_flag` here (an app's own flag, in its session or the scope) and, for django-hijack,
`mfa_middleware.django.impersonation.hijacker`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Hook = Callable[[Any], str | None]


def session_flag(key: str = "impersonator") -> Hook:
    """A hook reading the agent's user id where the app put it when an agent started acting as
    a user: `scope[key]` or `scope["session"][key]` (ASGI: Starlette's session), `environ[key]`
    (WSGI), `request.session[key]` (Django). The app keeps its session when it switches the
    user (so the agent's own 2FA session goes on), sets the flag, and removes it on the way
    back."""

    def agent_of(request: Any) -> str | None:
        if isinstance(request, Mapping):
            found = request.get(key)
            session = request.get("session")
        else:
            found, session = None, getattr(request, "session", None)
        if found is None and session is not None and hasattr(session, "get"):
            found = session.get(key)
        return str(found) if found not in (None, "") else None

    return agent_of


def agent_id(value: object) -> str | None:
    """What a hook returned, as the agent's user id (None, "" and False: nobody)."""
    if value is None or value is False or value == "":
        return None
    return str(value)
