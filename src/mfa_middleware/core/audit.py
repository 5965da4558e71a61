"""What every audit event carries, and the recent events kept per user.

Every event is stamped once, when it is emitted (`stamp`): an `id` (random), the time `at`
(seconds since the epoch, by the configured clock), the `actor` (who did it: `user:<id>` for
the user themself, `admin:<id>` on the admin pages and in the Django admin, `agent:<id>` for a
support agent signed in as the user, `cli:<name>` for `mfa-admin`, `app:logout` for the app's
own logout, `system:<what>` for the middleware itself) and the `target` (the id of the user it
is about; None for events about everyone: the mode, the session lifetime, all sessions).

The last `keep` events about a user are kept in one record of theirs (`Key("events", user)`),
written by the runtime as each event is emitted (an atomic update: a pure function here
appends and trims), for the admin pages and `mfa-admin events`. Never a code, a secret or a
cookie: events hold none.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Mapping
from typing import Any

from mfa_middleware.core.effects import Doc, Effect, Key, Updater, get

EVENTS_KIND = "events"
RETENTION = 90 * 86400.0  # events older than this are dropped from a user's record

ACTORS = {"self": "user", "auto": "system:auto_trust", "app_logout": "app:logout"}
"""Older shorthand actors, as `stamp` writes them out."""


def events_key(user_id: str) -> Key:
    return Key(EVENTS_KIND, user_id)


def stamp(name: str, fields: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The event as it is logged, handed to hooks and signals, and kept: its name and fields
    with `id`, `at`, `actor` and `target` added where the emitter did not give them."""
    user = fields.get("user")
    actor = fields.get("actor")
    if actor is None or actor == "self":
        actor = f"user:{user}" if user is not None else "system"
    else:
        actor = ACTORS.get(str(actor), str(actor))
    return {
        "event": name,
        "id": uuid.uuid4().hex,
        "at": now,
        **fields,
        "actor": actor,
        "target": fields.get("target", user),
    }


def targets(event: Mapping[str, Any]) -> list[str]:
    """The users whose records keep this event: its target, and a support agent acting as
    them (both people are named in each other's history)."""
    found = [str(event["target"])] if event.get("target") is not None else []
    actor = str(event.get("actor", ""))
    if actor.startswith("agent:") and actor[6:] not in found:
        found.append(actor[6:])
    return found


def appended(event: Mapping[str, Any], keep: int) -> Updater:
    """The pure update that adds `event` to a user's record of recent events: the newest
    `keep`, none older than RETENTION."""

    def add(doc: Doc | None) -> Doc:
        kept = list((doc or {}).get("events", []))
        kept.append(dict(event))
        horizon = float(event.get("at", 0.0)) - RETENTION
        kept = [e for e in kept if float(e.get("at", 0.0)) >= horizon][-keep:]
        return {"events": kept}

    return add


def recent(user_id: str, limit: int | None = None) -> Generator[Effect, Any, list[dict[str, Any]]]:
    """The user's recent events, newest first."""
    doc = yield from get(events_key(user_id))
    kept = list(reversed((doc or {}).get("events", [])))
    return kept if limit is None else kept[:limit]
