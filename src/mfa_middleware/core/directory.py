"""Who the middleware has seen: one small index record per user, kept by the core, so the admin
pages and `mfa-admin` find users by name and list them with the store contract's `scan`
(no per-feature store method).

`Key("directory", "_", user_id)` holds the user's names as the app gave them (`name`, the
display name; `login`, a login name the app vouches for), the address of record (`email`:
where an administrator's reset is announced) and the day they were last seen. It is written
when a browser login session starts (the gate reads the user's records then anyway), at most
once a day per user unless a name or the address changed, and when an operator acts on a user
who has none. The 2FA state itself stays in the user's own records; listing reads it from
there, so the index never says something the records do not.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mfa_middleware.core.effects import Effect, Get, Key, Put, Scan
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import Record

DIRECTORY_KIND = "directory"
SEEN_PRECISION = 86400.0  # "last seen" is kept to the day: one write per user and day at most
MAX_NAME = 200


def directory_key(user_id: str) -> Key:
    return Key(DIRECTORY_KIND, "_", user_id)


@dataclass(frozen=True, slots=True)
class Entry(Record):
    name: str = ""
    login: str = ""
    email: str = ""
    seen_at: float = 0.0

    def matches(self, user_id: str, query: str) -> bool:
        """Whether `query` names this user: the id exactly, or a name or the address of
        record, whatever the case."""
        if query == user_id:
            return True
        wanted = query.casefold()
        return wanted in (self.name.casefold(), self.login.casefold(), self.email.casefold())

    def contains(self, user_id: str, text: str) -> bool:
        """Whether `text` is part of the id, a name or the address (the list's search)."""
        wanted = text.casefold()
        return any(wanted in value.casefold() for value in (user_id, self.name, self.login))


def entry_of(principal: Principal, now: float) -> Entry:
    return Entry(
        principal.username[:MAX_NAME],
        (principal.login_name or "")[:MAX_NAME],
        (principal.email or "")[:MAX_NAME],
        now,
    )


def note(principal: Principal, now: float) -> Generator[Effect, Any, None]:
    """Keep the user's index record current (see the module docstring): written only when it
    is missing, a name or the address changed, or it was last written a day ago or more. Raw
    effects, no helper generators: this runs inside the gate's session flow."""
    key = directory_key(principal.id)
    seen = Entry.from_doc((yield Get(key)))
    fresh = entry_of(principal, now)
    if (seen.name, seen.login, seen.email) == (fresh.name, fresh.login, fresh.email) and (
        now - seen.seen_at < SEEN_PRECISION
    ):
        return
    yield Put(key, fresh.to_doc())


def ensure(user_id: str, name: str = "") -> Generator[Effect, Any, None]:
    """An index record for a user an operator acts on (a service account that never signs in
    with a browser), under `name` (the name the operator gave, else the id) until the app
    shows us more."""
    key = directory_key(user_id)
    if (yield Get(key)) is None:
        yield Put(key, Entry(name=(name or user_id)[:MAX_NAME], login=name[:MAX_NAME]).to_doc())


def everyone() -> Generator[Effect, Any, list[tuple[str, Entry]]]:
    """Every user in the index, as (user id, entry), ordered by id."""
    rows: list[tuple[str, Any]] = yield Scan(DIRECTORY_KIND, "_")
    return [(user_id, Entry.from_doc(doc)) for user_id, doc in rows]


def find(query: str) -> Generator[Effect, Any, list[str]]:
    """The ids of the users `query` names: the id itself first when it is one, then users
    whose name, login name or address it is (several users may share a display name)."""
    rows = yield from everyone()
    exact = [user_id for user_id, _ in rows if user_id == query]
    named = [
        user_id for user_id, entry in rows if user_id != query and entry.matches(user_id, query)
    ]
    return exact + named


def entry(user_id: str) -> Generator[Effect, Any, Entry | None]:
    doc = yield Get(directory_key(user_id))
    return None if doc is None else Entry.from_doc(doc)
