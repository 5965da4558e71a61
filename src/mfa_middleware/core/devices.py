"""Devices: every browser a user logs in from, and whether it is trusted to skip the code.

A browser is recognised by a signed device cookie (its own salt, bound to one user by a keyed
hash, no personal data). Whether it is *trusted* lives only in the store, so revoking a device,
resetting 2FA or changing the factor (device epochs), switching 2FA off and on (enrollment
epoch) or a force-logout with device revocation (device epochs) takes effect at once on every
worker. Trust is checked when a new MFA session starts, never on the verified-session hot
path.

Skipping the code on a trusted device is a convenience, not an authenticator: NIST SP 800-63B
rev 4 §5.1 does not count it at AAL2. Sessions started this way carry the method "device" and
must enter a code before sensitive changes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Generator
from dataclasses import dataclass, replace
from typing import Any

from mfa_middleware.core.context import Caller
from mfa_middleware.core.effects import (
    Doc,
    Effect,
    Key,
    annotated,
    delete,
    emit,
    get,
    put,
    scan,
    update,
)
from mfa_middleware.core.i18n import N_, UNTRANSLATED, Texts
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import Record, RuntimeSettings, UserRecord, load_hot_state
from mfa_middleware.core.tokens import MAX_TOKEN_LENGTH, new_id

DEVICE_KIND = "device"
MAX_NAME_LENGTH = 60


def device_key(user_id: str, device_id: str) -> Key:
    return Key(DEVICE_KIND, user_id, device_id)


@dataclass(frozen=True, slots=True)
class DeviceRecord(Record):
    name: str = ""
    created_at: float = 0.0
    last_used: float = 0.0
    last_ip: str = ""
    user_agent: str = ""
    trusted_until: float = 0.0  # 0: not trusted
    enroll_epoch: int = 0  # epochs at the time of trusting; a later bump revokes the trust
    user_device_epoch: int = 0
    global_device_epoch: int = 0

    def trusted(self, now: float, user: UserRecord, settings: RuntimeSettings) -> bool:
        return (
            self.trusted_until > now
            and self.enroll_epoch == settings.enroll_epoch
            and self.user_device_epoch == user.device_epoch
            and self.global_device_epoch == settings.device_epoch
        )


@dataclass(frozen=True, slots=True)
class DeviceCookie:
    device_id: str
    user_tag: str


class DeviceCodec:
    """The device cookie: signed with its own salt and checked with `max_age` on every read."""

    def __init__(self, keyring: Keyring, max_age: float) -> None:
        from itsdangerous import BadData, URLSafeTimedSerializer  # at startup, not import

        self._serializer = URLSafeTimedSerializer(keyring.secrets, salt="mfa.device.v1")
        self._invalid: type[Exception] = BadData
        self.max_age = max_age

    def encode(self, cookie: DeviceCookie) -> str:
        token = self._serializer.dumps([cookie.device_id, cookie.user_tag])
        return token if isinstance(token, str) else token.decode()

    def decode(self, token: str | None) -> DeviceCookie | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            device_id, user_tag = self._serializer.loads(token, max_age=int(self.max_age))
        except (self._invalid, ValueError, TypeError):
            return None
        if not (isinstance(device_id, str) and isinstance(user_tag, str)):
            return None
        return DeviceCookie(device_id, user_tag)


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def name_from_user_agent(user_agent: str, texts: Texts = UNTRANSLATED) -> str:
    """A default device name such as "Chrome on macOS" in the user's language (they can
    change it)."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    browser = browser or texts.gettext(N_("Browser"))
    if not system:
        return browser
    return texts.gettext(N_("{browser} on {system}")).format(browser=browser, system=system)


def clean_name(name: str) -> str:
    """A device name as typed, without control characters, trimmed to a sane length."""
    return re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:MAX_NAME_LENGTH]


def _prune(rows: list[tuple[str, Doc]], cap: int, now: float) -> list[str]:
    """Ids to delete so a new device fits under `cap`: oldest untrusted first, then oldest."""
    if len(rows) < cap:
        return []
    devices = [(name, DeviceRecord.from_doc(doc)) for name, doc in rows]
    devices.sort(key=lambda item: (item[1].trusted_until > now, item[1].last_used))
    return [name for name, _ in devices[: len(rows) - cap + 1]]


@dataclass(frozen=True, slots=True)
class Recognised:
    device_id: str
    record: DeviceRecord
    trusted: bool


def recognise(
    user_id: str,
    cookie: DeviceCookie | None,
    user_tags: Collection[str],
    now: float,
    ip: str,
    user_agent: str,
    user: UserRecord,
    settings: RuntimeSettings,
) -> Generator[Effect, Any, Recognised | None]:
    """At the start of a login session: this browser's device record, its use noted; None
    when the browser has no device of this user (a cookie of another user or of a deleted
    device counts as none). Nothing is created here: see `register`."""
    if cookie is None or cookie.user_tag not in user_tags:
        return None
    existing = yield from get(device_key(user_id, cookie.device_id))
    if existing is None:
        return None

    def touch(doc: Doc | None) -> Doc | None:
        if doc is None:  # deleted meanwhile
            return None
        record = DeviceRecord.from_doc(doc)
        return replace(record, last_used=now, last_ip=ip, user_agent=user_agent[:300]).to_doc()

    _, after = yield from update(device_key(user_id, cookie.device_id), touch)
    if after is None:
        return None
    record = DeviceRecord.from_doc(after)
    return Recognised(cookie.device_id, record, record.trusted(now, user, settings))


def register(
    user_id: str, now: float, ip: str, user_agent: str, cap: int, texts: Texts = UNTRANSLATED
) -> Generator[Effect, Any, str]:
    """A new device record for a browser that reached a 2FA page without one of this user's
    devices, named in the page's language; the oldest untrusted devices make room under
    `cap`. Returns its id."""
    rows = yield from scan(DEVICE_KIND, user_id)
    for stale in _prune(rows, cap, now):
        yield from delete(device_key(user_id, stale))
    device_id = new_id()
    record = DeviceRecord(
        name=name_from_user_agent(user_agent, texts),
        created_at=now,
        last_used=now,
        last_ip=ip,
        user_agent=user_agent[:300],
    )
    yield from put(device_key(user_id, device_id), record.to_doc())
    return device_id


def trust(
    user_id: str,
    device_id: str,
    name: str | None,
    now: float,
    duration: float,
    user: UserRecord,
    settings: RuntimeSettings,
    actor: str,
) -> Generator[Effect, Any, DeviceRecord | None]:
    """Trust a device of this user for `duration` seconds (None: no such device)."""

    def change(doc: Doc | None) -> Doc | None:
        if doc is None:
            return None
        record = DeviceRecord.from_doc(doc)
        new_name = (clean_name(name) or record.name) if name is not None else record.name
        return replace(
            record,
            name=new_name,
            trusted_until=now + duration,
            enroll_epoch=settings.enroll_epoch,
            user_device_epoch=user.device_epoch,
            global_device_epoch=settings.device_epoch,
        ).to_doc()

    _, after = yield from update(device_key(user_id, device_id), change)
    if after is None:
        return None
    yield from emit("device_trusted", user=user_id, actor=actor, days=round(duration / 86400))
    return DeviceRecord.from_doc(after)


def trust_for(
    caller: Caller, device_id: str, name: str | None, duration: float, actor: str
) -> Generator[Effect, Any, DeviceRecord | None]:
    """Trust one of the caller's devices under the epochs as they are now, not as the request
    found them: right after an enrollment the new factor has just moved the device epoch on."""
    state = yield from load_hot_state(caller.user_id)
    trusting = trust(
        caller.user_id,
        device_id,
        name,
        caller.now,
        duration,
        state.user,
        state.settings,
        actor,
    )
    return (yield from annotated(trusting, ip=caller.peer))


def rename(user_id: str, device_id: str, name: str) -> Generator[Effect, Any, bool]:
    cleaned = clean_name(name)
    if not cleaned:
        return False

    def change(doc: Doc | None) -> Doc | None:
        return None if doc is None else replace(DeviceRecord.from_doc(doc), name=cleaned).to_doc()

    _, after = yield from update(device_key(user_id, device_id), change)
    if after is not None:
        yield from emit("device_renamed", user=user_id)
    return after is not None


def forget(user_id: str, device_id: str, actor: str) -> Generator[Effect, Any, bool]:
    """Delete a device: it is no longer trusted nor listed."""
    existing = yield from get(device_key(user_id, device_id))
    if existing is None:
        return False
    yield from delete(device_key(user_id, device_id))
    yield from emit("device_revoked", user=user_id, actor=actor)
    return True


def devices_of(user_id: str) -> Generator[Effect, Any, list[tuple[str, DeviceRecord]]]:
    """This user's devices, most recently used first."""
    rows = yield from scan(DEVICE_KIND, user_id)
    devices = [(name, DeviceRecord.from_doc(doc)) for name, doc in rows]
    devices.sort(key=lambda item: item[1].last_used, reverse=True)
    return devices


RECENT = 30 * 86400.0  # "recently used": what the list after a sign-in offers to trust


def recent_untrusted(
    user_id: str, current: str | None, now: float
) -> Generator[Effect, Any, list[tuple[str, DeviceRecord]]]:
    """The user's other devices used within RECENT and not trusted now, most recent first:
    what the page after a sign-in on a new device offers to trust."""
    state = yield from load_hot_state(user_id)
    rows = yield from devices_of(user_id)
    return [
        (device_id, record)
        for device_id, record in rows
        if device_id != current
        and now - record.last_used <= RECENT
        and not record.trusted(now, state.user, state.settings)
    ]


def trust_some(
    caller: Caller, device_ids: list[str], duration: float, actor: str
) -> Generator[Effect, Any, int]:
    """Trust these devices of the caller's (an id that is not theirs trusts nothing); returns
    how many were trusted."""
    trusted = 0
    for device_id in device_ids:
        done = yield from trust_for(caller, device_id, None, duration, actor)
        trusted += done is not None
    return trusted
