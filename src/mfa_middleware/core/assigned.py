"""A phone number an administrator set for a user (the partner portal: "edit each employee's
profile to include their mobile phone number"): kept as pending until the user confirms it.

The number is never a factor by itself: at the user's next sign-in (or from their settings)
a code is sent to it and the user enters it, which adds text messages as their way to sign
in, by the same enrollment flow as a number they typed. The page says which administrator
set it. So an administrator who sets a number they hold gains nothing: the code goes to that
number, and only the user's own login can enter it. One pending number per user, kept
`ASSIGNED_TTL`; setting another replaces it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mfa_middleware.core.effects import Effect, Key, delete, emit, get, put
from mfa_middleware.core.oob import mask
from mfa_middleware.core.records import Record

ASSIGNED_TTL = 30 * 86400.0


def assigned_key(user_id: str) -> Key:
    return Key("assigned_phone", user_id)


@dataclass(frozen=True, slots=True)
class AssignedPhone(Record):
    destination: str = ""  # E.164
    set_by: str = ""  # the administrator's name, as the user is told it
    set_at: float = 0.0

    @property
    def masked(self) -> str:
        return mask("sms", self.destination)


def assign(
    user_id: str, destination: str, set_by: str, actor: str, now: float
) -> Generator[Effect, Any, AssignedPhone]:
    """Keep `destination` as the user's pending phone for sign-in codes."""
    record = AssignedPhone(destination, set_by, now)
    yield from put(assigned_key(user_id), record.to_doc(), ttl=ASSIGNED_TTL)
    yield from emit("phone_assigned", user=user_id, actor=actor, to=record.masked)
    return record


def pending(user_id: str) -> Generator[Effect, Any, AssignedPhone | None]:
    doc = yield from get(assigned_key(user_id))
    return None if doc is None else AssignedPhone.from_doc(doc)


def withdraw(user_id: str, actor: str) -> Generator[Effect, Any, bool]:
    """Forget the pending number (an administrator cancels it); False when there was none."""
    existing = yield from pending(user_id)
    if existing is None:
        return False
    yield from delete(assigned_key(user_id))
    yield from emit("phone_withdrawn", user=user_id, actor=actor, to=existing.masked)
    return True


def fulfilled(user_id: str, destination: str) -> Generator[Effect, Any, None]:
    """The user confirmed a number by a code: the pending one is done if it was that one."""
    existing = yield from pending(user_id)
    if existing is not None and existing.destination == destination:
        yield from delete(assigned_key(user_id))
