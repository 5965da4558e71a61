"""Operations for admins and ops (CLI, admin pages, Django command), as flows of effects.

Every change is O(1): forcing a user out bumps their epoch, clearing all sessions bumps the
global epoch, switching 2FA off and on again bumps the enrollment epoch. No session is listed
or touched one by one.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from mfa_middleware.core import assigned as assigned_phone
from mfa_middleware.core import audit, authenticators, directory
from mfa_middleware.core.context import MODES, ThrottleParams
from mfa_middleware.core.devices import DeviceRecord, devices_of
from mfa_middleware.core.effects import Doc, Effect, delete, emit, get, get_many, put, update
from mfa_middleware.core.oob import mask
from mfa_middleware.core.policy import PolicyDefaults
from mfa_middleware.core.records import (
    SETTINGS_KEY,
    RuntimeSettings,
    UserRecord,
    load_hot_state,
    session_end_key,
    throttle_key,
    user_key,
)
from mfa_middleware.core.recovery import codes_left
from mfa_middleware.core.throttle import ThrottleState


def _update_user(user_id: str, **changes: Any) -> Generator[Effect, Any, UserRecord]:
    def change(doc: Doc | None) -> Doc:
        record = UserRecord.from_doc(doc)
        values = {k: (v(record) if callable(v) else v) for k, v in changes.items()}
        return replace(record, **values).to_doc()

    before, after = yield from update(user_key(user_id), change)
    if before is None:  # a user without a record yet (a service account): listed from now on
        yield from directory.ensure(user_id)
    return UserRecord.from_doc(after)


def _update_settings(**changes: Any) -> Generator[Effect, Any, RuntimeSettings]:
    def change(doc: Doc | None) -> Doc:
        record = RuntimeSettings.from_doc(doc)
        values = {k: (v(record) if callable(v) else v) for k, v in changes.items()}
        return replace(record, **values).to_doc()

    _, after = yield from update(SETTINGS_KEY, change)
    return RuntimeSettings.from_doc(after)


def force_logout(
    user_id: str, actor: str, *, revoke_devices: bool = False
) -> Generator[Effect, Any, UserRecord]:
    """End every session of one user, on every device and worker, at their next request;
    with `revoke_devices`, their trusted devices must verify again too."""
    changes: dict[str, Any] = {"epoch": lambda r: r.epoch + 1}
    if revoke_devices:
        changes["device_epoch"] = lambda r: r.device_epoch + 1
    record = yield from _update_user(user_id, **changes)
    yield from emit("forced_logout", user=user_id, actor=actor, devices_revoked=revoke_devices)
    return record


def unlock(user_id: str, actor: str) -> Generator[Effect, Any, bool]:
    """Lift a lockout after wrong codes (and the count toward it), the one that only an
    administrator may lift included; False when there was nothing to lift."""
    key = throttle_key(user_id)
    existing = yield from get(key)
    if existing is None:
        return False
    yield from delete(key)
    failures = ThrottleState.from_doc(existing).failures
    yield from emit("unlocked", user=user_id, actor=actor, failures=failures)
    return True


def end_session(
    user_id: str, session_tag: str, now: float, until: float, actor: str
) -> Generator[Effect, Any, None]:
    """Sign one MFA session out, server-side: its cookie is refused from now on, even if it
    was copied (SES-10). O(1): one record, kept until the session would have expired anyway."""
    if until > now:
        yield from put(session_end_key(user_id, session_tag), {"at": now}, ttl=until - now)
    yield from emit("signed_out", user=user_id, actor=actor)


def logout_everyone(
    actor: str, *, revoke_devices: bool = False
) -> Generator[Effect, Any, RuntimeSettings]:
    """Clear all sessions: every user goes back to the login page; with `revoke_devices`,
    every trusted device must verify again too."""
    changes: dict[str, Any] = {"global_epoch": lambda s: s.global_epoch + 1}
    if revoke_devices:
        changes["device_epoch"] = lambda s: s.device_epoch + 1
    settings = yield from _update_settings(**changes)
    yield from emit("all_sessions_cleared", actor=actor, devices_revoked=revoke_devices)
    return settings


def set_exempt(
    user_id: str, exempt: bool, actor: str, *, browser: bool = False
) -> Generator[Effect, Any, UserRecord]:
    """Exempt a user's API calls from 2FA (a service account's token); with `browser`, their
    browser logins too (only on purpose: EX-04). Un-exempting removes both."""
    record = yield from _update_user(user_id, exempt=exempt, exempt_browser=exempt and browser)
    yield from emit(
        "exemption_changed", user=user_id, exempt=exempt, browser=exempt and browser, actor=actor
    )
    return record


def set_required(user_id: str, required: bool, actor: str) -> Generator[Effect, Any, UserRecord]:
    record = yield from _update_user(user_id, required=required)
    yield from emit("requirement_changed", user=user_id, required=required, actor=actor)
    return record


def set_mode(
    mode: str, defaults: PolicyDefaults, actor: str
) -> Generator[Effect, Any, RuntimeSettings]:
    """Change the global mode. Switching on from `off` bumps the enrollment epoch: everyone
    enrolls again and old trusted devices stop counting (2FA was off meanwhile)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")

    def change(doc: Doc | None) -> Doc:
        record = RuntimeSettings.from_doc(doc)
        was = record.mode or defaults.mode
        epoch = record.enroll_epoch + 1 if was == "off" and mode != "off" else record.enroll_epoch
        return replace(record, mode=mode, enroll_epoch=epoch).to_doc()

    before, after = yield from update(SETTINGS_KEY, change)
    settings = RuntimeSettings.from_doc(after)
    yield from emit(
        "mode_changed",
        mode=mode,
        actor=actor,
        previous=RuntimeSettings.from_doc(before).mode or defaults.mode,
    )
    return settings


def set_session_lifetime(seconds: float, actor: str) -> Generator[Effect, Any, RuntimeSettings]:
    if seconds <= 0:
        raise ValueError("the session lifetime must be longer than zero")
    settings = yield from _update_settings(session_lifetime=seconds)
    yield from emit("session_lifetime_changed", seconds=seconds, actor=actor)
    return settings


@dataclass(frozen=True, slots=True)
class AuthenticatorInfo:
    """What an operator may see of one authenticator: never a secret or a full number."""

    id: str
    kind: str
    name: str
    created_at: float
    last_used_at: float
    default: bool
    destination: str = ""  # a phone or an address, masked

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "default": self.default,
            "destination": self.destination,
        }


def remove_authenticator(
    user_id: str, authenticator_id: str, actor: str
) -> Generator[Effect, Any, authenticators.Changed]:
    """Remove one of a user's authenticators (a lost key, an old phone's app); never the last
    one: `reset` is for that. Every session and trusted browser of the user verifies again."""
    changed: authenticators.Changed = yield from authenticators.change(
        user_id,
        authenticator_id,
        lambda user: authenticators.removed(user, authenticator_id),
        "authenticator_removed",
        actor,
        keep_one=True,
    )
    return changed


def authenticator_info(user: UserRecord) -> tuple[AuthenticatorInfo, ...]:
    default = authenticators.default_id(user)
    return tuple(
        AuthenticatorInfo(
            a.id,
            a.kind,
            a.name,
            a.created_at,
            a.last_used_at,
            a.id == default,
            mask(a.kind, a.destination) if a.destination else "",
        )
        for a in user.factors()
    )


@dataclass(frozen=True, slots=True)
class UserStatus:
    user_id: str
    enrolled: bool
    method: str | None
    exempt: bool
    required: bool
    failures: int
    locked_for: float  # seconds; 0 when not locked, inf when locked until reset
    exempt_browser: bool = False  # the exemption covers browser logins too
    authenticators: tuple[AuthenticatorInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user_id,
            "enrolled": self.enrolled,
            "method": self.method,
            "exempt": self.exempt,
            "exempt_browser": self.exempt_browser,
            "required": self.required,
            "failures": self.failures,
            "locked_for_seconds": None if self.locked_for == float("inf") else self.locked_for,
            "locked": self.locked_for > 0,
            "authenticators": [a.to_dict() for a in self.authenticators],
        }

    @property
    def last_verified_at(self) -> float:
        """When the user last proved a second factor (0: never): the latest use of any of
        their authenticators, setting one up included (that takes a code or a key too)."""
        return max((max(a.last_used_at, a.created_at) for a in self.authenticators), default=0.0)


def status_of(
    user_id: str,
    settings: RuntimeSettings,
    record: UserRecord,
    throttle: ThrottleState,
    now: float,
    limits: ThrottleParams,
) -> UserStatus:
    """One user's status from their records (pure: the list reads many users' at once)."""
    locked = throttle.retry_after(now, limits) if throttle.locked(now, limits) else 0.0
    kinds = authenticators.kinds(record)
    return UserStatus(
        user_id,
        record.enrolled_in(settings.enroll_epoch),
        kinds[0] if kinds else None,
        record.exempt,
        record.required,
        throttle.failures,
        locked,
        record.exempt_browser,
        authenticator_info(record),
    )


def user_status(
    user_id: str, now: float, limits: ThrottleParams
) -> Generator[Effect, Any, UserStatus]:
    settings = RuntimeSettings.from_doc((yield from get(SETTINGS_KEY)))
    record = UserRecord.from_doc((yield from get(user_key(user_id))))
    throttle = ThrottleState.from_doc((yield from get(throttle_key(user_id))))
    return status_of(user_id, settings, record, throttle, now, limits)


STATUS_BATCH = 250  # users whose records one read asks for, when listing


def statuses(
    user_ids: list[str], now: float, limits: ThrottleParams
) -> Generator[Effect, Any, list[UserStatus]]:
    """Several users' statuses, their records read a batch at a time (two keys a user)."""
    settings = RuntimeSettings.from_doc((yield from get(SETTINGS_KEY)))
    found: list[UserStatus] = []
    for start in range(0, len(user_ids), STATUS_BATCH):
        batch = user_ids[start : start + STATUS_BATCH]
        keys = tuple(k for uid in batch for k in (user_key(uid), throttle_key(uid)))
        docs = yield from get_many(keys)
        for i, uid in enumerate(batch):
            record = UserRecord.from_doc(docs[2 * i])
            throttle = ThrottleState.from_doc(docs[2 * i + 1])
            found.append(status_of(uid, settings, record, throttle, now, limits))
    return found


@dataclass(frozen=True, slots=True)
class UserFilter:
    """What the list shows: a part of an id, a name or a login name (`search`, any case), and
    only users enrolled or not (`enrolled`), with a way to sign in of one kind (`method`),
    exempt, or locked out now. None: either."""

    search: str = ""
    enrolled: bool | None = None
    method: str | None = None
    exempt: bool | None = None
    locked: bool | None = None

    @property
    def on_status(self) -> bool:
        """Whether the filter looks at the users' records (not only at the directory)."""
        return any(v is not None for v in (self.enrolled, self.method, self.exempt, self.locked))

    def keeps(self, status: UserStatus) -> bool:
        kinds = {a.kind for a in status.authenticators}
        return (
            (self.enrolled is None or status.enrolled == self.enrolled)
            and (self.method is None or (status.enrolled and self.method in kinds))
            and (self.exempt is None or status.exempt == self.exempt)
            and (self.locked is None or (status.locked_for > 0) == self.locked)
        )


@dataclass(frozen=True, slots=True)
class UserRow:
    """One user in a list of users: their names, their status and, where the list shows them
    (`user_rows`), how many trusted devices they have (None: not counted)."""

    user_id: str
    entry: directory.Entry
    status: UserStatus
    trusted_devices: int | None = None

    def to_dict(self) -> dict[str, Any]:
        status = self.status
        return {
            "user": self.user_id,
            "name": self.entry.name,
            "login": self.entry.login,
            "last_seen_at": self.entry.seen_at,
            "enrolled": status.enrolled,
            "methods": sorted({a.kind for a in status.authenticators}) if status.enrolled else [],
            "exempt": status.exempt,
            "exempt_browser": status.exempt_browser,
            "failures": status.failures,
            "locked": status.locked_for > 0,
        }


def user_rows(
    user_ids: list[str], now: float, limits: ThrottleParams
) -> Generator[Effect, Any, list[UserRow]]:
    """The rows of a page of users the app lists itself (the Django admin's user list): what
    `list_users` shows of each, with their trusted devices counted. One read of the settings,
    one batched read of the users' records (three keys a user) and one scan of each user's
    devices: a column more costs no extra read."""
    settings = RuntimeSettings.from_doc((yield from get(SETTINGS_KEY)))
    found: list[UserRow] = []
    for start in range(0, len(user_ids), STATUS_BATCH):
        batch = user_ids[start : start + STATUS_BATCH]
        keys = tuple(
            k
            for uid in batch
            for k in (user_key(uid), throttle_key(uid), directory.directory_key(uid))
        )
        docs = yield from get_many(keys)
        for i, uid in enumerate(batch):
            record = UserRecord.from_doc(docs[3 * i])
            throttle = ThrottleState.from_doc(docs[3 * i + 1])
            entry = directory.Entry.from_doc(docs[3 * i + 2])
            status = status_of(uid, settings, record, throttle, now, limits)
            kept = yield from devices_of(uid)
            trusted = sum(1 for _, device in kept if device.trusted(now, record, settings))
            found.append(UserRow(uid, entry, status, trusted))
    return found


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[UserRow]
    total: int  # users the filter keeps, on every page
    offset: int


def list_users(
    wanted: UserFilter,
    now: float,
    limits: ThrottleParams,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> Generator[Effect, Any, Listing]:
    """The users the middleware has seen (`core.directory`) that `wanted` keeps, ordered by
    name, with their statuses; `offset` and `limit` page through them. Without a filter on
    status, only the page's users' records are read; with one, every candidate's are (in
    batches), which is fine for thousands of users and says so in the README."""

    def clamp(total: int) -> int:  # a page past the end shows the last one
        if limit is None or offset < total or total == 0:
            return offset
        return (total - 1) // limit * limit

    entries = yield from directory.everyone()
    if wanted.search:
        entries = [(uid, e) for uid, e in entries if e.contains(uid, wanted.search)]
    entries.sort(key=lambda row: ((row[1].name or row[0]).casefold(), row[0]))
    if wanted.on_status:
        found = yield from statuses([uid for uid, _ in entries], now, limits)
        rows = [UserRow(uid, e, st) for (uid, e), st in zip(entries, found, strict=True)]
        rows = [row for row in rows if wanted.keeps(row.status)]
        start = clamp(len(rows))
        shown = rows[start:] if limit is None else rows[start : start + limit]
        return Listing(shown, len(rows), start)
    start = clamp(len(entries))
    entries_shown = entries[start:] if limit is None else entries[start : start + limit]
    found = yield from statuses([uid for uid, _ in entries_shown], now, limits)
    rows = [UserRow(uid, e, st) for (uid, e), st in zip(entries_shown, found, strict=True)]
    return Listing(rows, len(entries), start)


@dataclass(frozen=True, slots=True)
class UserOverview:
    """What support staff see of one user: the status, the records it comes from, the
    devices and how many recovery codes are left (None: never had any)."""

    status: UserStatus
    user: UserRecord
    settings: RuntimeSettings
    devices: list[tuple[str, DeviceRecord]]
    codes_left: int | None
    entry: directory.Entry | None = None  # the names and address the app gave us, if seen
    events: list[dict[str, Any]] = field(default_factory=list)  # the recent ones, newest first
    assigned: assigned_phone.AssignedPhone | None = None  # a number an admin set, unconfirmed


def find_user(query: str) -> Generator[Effect, Any, list[str]]:
    """The ids of the users `query` names, for the admin pages: a user id (of a user with any
    2FA record, or in the directory), else a name, login name or address of record that the
    directory holds (see `core.directory`). Several users may share a display name."""
    found = yield from directory.find(query)
    if query not in found and (yield from get(user_key(query))) is not None:
        found.insert(0, query)
    return found


def directory_entries(ids: list[str]) -> Generator[Effect, Any, list[tuple[str, directory.Entry]]]:
    """The directory's entries of these users, in this order (a user without one: empty)."""
    rows = []
    for user_id in ids:
        seen = yield from directory.entry(user_id)
        rows.append((user_id, seen or directory.Entry()))
    return rows


OVERVIEW_EVENTS = 20  # the recent events the admin page shows of one user


def user_overview(
    user_id: str, now: float, limits: ThrottleParams
) -> Generator[Effect, Any, UserOverview]:
    status = yield from user_status(user_id, now, limits)
    state = yield from load_hot_state(user_id)
    rows = yield from devices_of(user_id)
    left = yield from codes_left(user_id)
    seen = yield from directory.entry(user_id)
    recent = yield from audit.recent(user_id, OVERVIEW_EVENTS)
    phone = yield from assigned_phone.pending(user_id)
    return UserOverview(status, state.user, state.settings, rows, left, seen, recent, phone)
