"""The flows of `core.recovery`, run by the sync driver: recovery codes (entropy, format,
storage, single use under races), resetting a user, and the lost-device link."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware.core import recovery
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.context import OobParams, ThrottleParams
from mfa_middleware.core.devices import device_key
from mfa_middleware.core.effects import Doc, Effect, Key, Updater
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.records import (
    UserRecord,
    pending_totp_key,
    throttle_key,
    user_key,
)
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.senders.base import Message, Sender
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.stores.base import Store
from mfa_middleware.stores.memory import MemoryStore
from mfa_middleware.stores.sqlite import SQLiteStore

KEY = "recovery-test-key-" + "q8Wm3Nv5Bt6Yc4Hj0FsK2"
OTHER_KEY = "another-test-key-" + "Zr7Lp3Kd8Wm2Nv5Bt6Yc4"
NOW = 1_700_000_000.0
LIMITS = ThrottleParams(limit=5, base_lockout=60.0, max_lockout=3600.0, ceiling=20)
WIDE = ThrottleParams(limit=20, base_lockout=60.0, max_lockout=3600.0, ceiling=20)
CODE = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")
USER = "alice"


class Env:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        self.now = NOW
        self.store.use_clock(lambda: self.now)
        self.events: list[dict[str, Any]] = []
        self.sink = EventSink(self.events.append)
        self.keyring = Keyring([KEY])

    def run(self, flow: Generator[Effect, Any, Any]) -> Any:
        return run_sync(flow, self.store, self.sink)

    def issue(self, user: str = USER, count: int = 10) -> list[str]:
        return self.run(recovery.issue_codes(user, self.now, self.keyring, count))  # type: ignore[no-any-return]

    def use(self, code: str, user: str = USER, limits: ThrottleParams = LIMITS) -> Any:
        return self.run(recovery.use_code(user, code, self.now, self.keyring, limits))

    def left(self, user: str = USER) -> int | None:
        return self.run(recovery.codes_left(user))  # type: ignore[no-any-return]


@pytest.fixture
def env() -> Env:
    return Env()


# --- the codes themselves --------------------------------------------------------------------


@pytest.mark.checklist("RC-01")
def test_codes_carry_at_least_64_bits(env: Env) -> None:
    assert len(set(recovery.ALPHABET)) == 32
    assert not set("ilou") & set(recovery.ALPHABET)  # Crockford: no look-alikes
    codes = env.issue()
    assert len(codes) == 10
    for code in codes:
        assert CODE.fullmatch(code), code
        assert len(recovery.normalise(code)) == 16
    assert recovery.CODE_LENGTH * math.log2(len(recovery.ALPHABET)) >= 64


@pytest.mark.checklist("RC-01")
def test_codes_are_unique_across_many_issues(env: Env) -> None:
    seen: list[str] = []
    for n in range(300):
        seen += env.issue(f"user-{n % 7}")
    assert len(seen) == 3000
    assert len(set(seen)) == 3000
    symbols = "".join(recovery.normalise(code) for code in seen)
    assert set(symbols) == set(recovery.ALPHABET)  # every symbol is used: no narrowed alphabet
    # roughly uniform: each of 32 symbols ~1500 times in 48,000
    counts = [symbols.count(ch) for ch in recovery.ALPHABET]
    assert min(counts) > 1100
    assert max(counts) < 1900


@pytest.mark.checklist("RC-03")
def test_only_salted_keyed_hashes_are_stored(env: Env) -> None:
    codes = env.issue()
    doc = env.store.get(recovery.recovery_key(USER))
    assert doc is not None
    text = json.dumps(doc).lower()
    for code in codes:
        assert recovery.normalise(code) not in text
        assert code not in text
    salts = [salt for salt, _ in doc["hashes"]]
    assert len(set(salts)) == 10
    # keyed: the same codes under another secret key do not match
    other = Env(env.store)
    other.keyring = Keyring([OTHER_KEY])
    assert not other.use(codes[0]).ok
    assert env.use(codes[0]).ok


@pytest.mark.checklist("RC-02")
def test_each_code_works_once(env: Env) -> None:
    codes = env.issue()
    assert env.left() == 10
    assert env.use(codes[3]).ok
    assert env.left() == 9
    again = env.use(codes[3])
    assert not again.ok
    assert env.left() == 9
    assert env.use(codes[4]).ok
    assert env.left() == 8


def test_a_user_without_codes_has_none_left(env: Env) -> None:
    assert env.left() is None
    assert not env.use("0000-0000-0000-0000").ok
    assert env.store.get(recovery.recovery_key(USER)) is None


def test_codes_of_one_user_do_not_work_for_another(env: Env) -> None:
    alice = env.issue("alice")
    env.issue("bob")
    assert not env.use(alice[0], user="bob").ok
    assert env.left("bob") == 10
    assert env.use(alice[0], user="alice").ok


def test_regenerating_replaces_the_whole_set(env: Env) -> None:
    old = env.issue()
    assert env.use(old[0]).ok
    new = env.issue()
    assert env.left() == 10
    assert not set(old) & set(new)
    assert not env.use(old[1]).ok
    assert env.use(new[1]).ok


@pytest.mark.parametrize(
    "typed",
    [
        "0011-abcd-efgh-jkmn",
        "0011ABCDEFGHJKMN",
        "  0011 abcd efgh jkmn  ",
        "OO11-abcd-efgh-jkmn",  # letter O for zero
        "0oIl-ABCD-EFGH-JKMN",  # o, I, l for 0, 1, 1
        "0011-ABCD-efgh-JKMN",
    ],
)
def test_typed_codes_are_normalised(env: Env, monkeypatch: pytest.MonkeyPatch, typed: str) -> None:
    fixed = iter(["0011-abcd-efgh-jkmn", "2233-pqrs-tvwx-yz45"])
    monkeypatch.setattr(recovery, "new_code", lambda: next(fixed))
    env.issue(count=2)
    assert env.use(typed).ok
    assert env.left() == 1


@pytest.mark.parametrize(
    "typed", ["", "0011-abcd-efgh-jkm", "0011-abcd-efgh-jkmnp", "uuuu-abcd-efgh-jkmn", "x" * 500]
)
def test_malformed_codes_fail_and_cost_no_attempt(
    env: Env, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    """Input that cannot be a recovery code is no guess (issue 15): refused at once, nothing
    counted, nothing spent."""
    monkeypatch.setattr(recovery, "new_code", lambda: "0011-abcd-efgh-jkmn")
    env.issue(count=1)
    attempt = env.use(typed)
    assert (attempt.ok, attempt.malformed) == (False, True)
    assert env.left() == 1
    assert env.use("0000-0000-0000-0000").attempts_left == LIMITS.limit - 1  # nothing counted


@pytest.mark.checklist("RC-04")
def test_wrong_codes_lock_the_user_and_a_right_one_then_waits(env: Env) -> None:
    codes = env.issue()
    for n in range(LIMITS.limit):
        attempt = env.use("zzzz-zzzz-zzzz-zzzz")
        assert not attempt.ok
        assert attempt.locked is (n == LIMITS.limit - 1)
    locked = env.use(codes[0])
    assert not locked.ok
    assert locked.locked
    assert env.left() == 10  # the good code was not evaluated, so not spent
    env.now += 61
    assert env.use(codes[0]).ok
    assert env.store.get(throttle_key(USER)) is None  # a success resets the counter


@pytest.mark.checklist("LOG-01")
def test_events_name_the_user_and_never_a_code(env: Env) -> None:
    codes = env.issue()
    env.use(codes[0])
    assert [e["event"] for e in env.events] == ["recovery_codes_generated", "recovery_code_used"]
    assert env.events[0] == {"event": "recovery_codes_generated", "user": USER, "count": 10}
    assert env.events[1] == {"event": "recovery_code_used", "user": USER, "left": 9}
    text = repr(env.events)
    assert not any(recovery.normalise(c) in text or c in text for c in codes)


# --- races -----------------------------------------------------------------------------------


class RacingStore(MemoryStore):
    """Runs a rival flow to completion just before the first update of the recovery codes,
    i.e. after the flow under test matched the code and before it spends it."""

    def __init__(self) -> None:
        super().__init__()
        self.rival: Generator[Effect, Any, Any] | None = None
        self.rival_result: Any = None
        self.sink = EventSink()

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        if key == recovery.recovery_key(USER) and self.rival is not None:
            rival, self.rival = self.rival, None
            self.rival_result = run_sync(rival, self, self.sink)
        return super().update(key, fn, ttl=ttl)


@pytest.mark.checklist("RL-04", "RC-02")
def test_a_code_used_by_two_interleaved_requests_works_once() -> None:
    store = RacingStore()
    env = Env(store)
    codes = env.issue()
    store.rival = recovery.use_code(USER, codes[0], env.now, env.keyring, LIMITS)
    first = env.use(codes[0])
    assert store.rival_result is not None
    assert store.rival_result.ok  # the rival spent it first
    assert not first.ok
    assert first.replayed
    assert env.left() == 9


@pytest.mark.parametrize("threads", [2, 8])
@pytest.mark.checklist("RL-04", "RC-02")
def test_parallel_use_of_one_code_succeeds_once(tmp_path: Path, threads: int) -> None:
    path = tmp_path / "mfa.sqlite3"
    setup = Env(SQLiteStore(path))
    codes = setup.issue()
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker() -> None:
        own = Env(SQLiteStore(path))  # its own connection, as another worker process would
        try:
            barrier.wait()
            results.append(own.use(codes[0], limits=WIDE).ok)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=20)
    assert not errors, errors
    assert len(results) == threads
    assert results.count(True) == 1
    assert setup.left() == 9


def test_parallel_use_of_different_codes_each_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "mfa.sqlite3"
    setup = Env(SQLiteStore(path))
    codes = setup.issue()
    barrier = threading.Barrier(5)
    results: list[bool] = []

    def worker(code: str) -> None:
        own = Env(SQLiteStore(path))
        barrier.wait()
        results.append(own.use(code, limits=WIDE).ok)

    pool = [threading.Thread(target=worker, args=(code,)) for code in codes[:5]]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=20)
    assert results == [True] * 5
    assert setup.left() == 5


# --- resetting a user ------------------------------------------------------------------------


def _populate(env: Env, user: str) -> None:
    env.store.put(
        user_key(user),
        UserRecord(
            method="totp",
            totp_secret="ciphertext",
            last_totp_step=99,
            phone="+14155552671",
            enrolled_at=5.0,
            epoch=3,
            device_epoch=2,
            exempt=False,
            required=True,
        ).to_doc(),
    )
    env.issue(user)
    env.store.put(pending_totp_key(user), {"secret": "x", "session_id": "s"})
    env.store.put(throttle_key(user), {"failures": 2, "in_window": 2, "window_at": NOW})
    env.store.put(Key("oob", user, "login"), {"digest": "d"})
    env.store.put(Key("pending_oob", user), {"channel": "email"})
    env.store.put(device_key(user, "dev1"), {"name": "Laptop", "trusted_until": NOW + 999})
    env.store.put(device_key(user, "dev2"), {"name": "Phone"})
    env.run(recovery.issue_reset_link(user, NOW, 3600, env.keyring))


def test_reset_clears_one_user_and_keeps_their_flags(env: Env) -> None:
    _populate(env, "alice")
    _populate(env, "bob")
    bob_docs = {
        key: env.store.get(key)
        for key in (
            user_key("bob"),
            recovery.recovery_key("bob"),
            pending_totp_key("bob"),
            throttle_key("bob"),
            Key("oob", "bob", "login"),
            Key("pending_oob", "bob"),
            Key("reset_link", "bob"),
        )
    }
    bob_devices = env.store.scan("device", "bob")
    env.events.clear()
    after = env.run(recovery.reset_user("alice", "admin:root"))
    record = UserRecord.from_doc(env.store.get(user_key("alice")))
    assert after == record
    assert kinds(record) == []
    assert record.authenticators == []
    assert record.totp_secret is None  # the old shape's secret is gone too
    assert record.phone is None
    assert record.last_totp_step == -1
    assert record.epoch == 4  # every session ends
    assert record.device_epoch == 3  # every trusted device ends
    assert record.required is True  # flags set by ops stay
    for key in (
        recovery.recovery_key("alice"),
        pending_totp_key("alice"),
        throttle_key("alice"),
        Key("oob", "alice", "login"),
        Key("pending_oob", "alice"),
        Key("reset_link", "alice"),
    ):
        assert env.store.get(key) is None, key
    assert env.store.scan("device", "alice") == []
    assert env.left("alice") is None
    assert {key: env.store.get(key) for key in bob_docs} == bob_docs
    assert env.store.scan("device", "bob") == bob_devices
    assert env.events == [{"event": "mfa_reset", "user": "alice", "actor": "admin:root"}]


def test_reset_of_a_user_without_a_record_is_harmless(env: Env) -> None:
    record = env.run(recovery.reset_user("ghost", "self"))
    assert kinds(record) == []
    assert record.epoch == 1


# --- the lost-device link --------------------------------------------------------------------


def test_a_reset_link_is_spent_once_by_its_own_user(env: Env) -> None:
    token = env.run(recovery.issue_reset_link(USER, env.now, 3600, env.keyring))
    assert len(token) >= 32
    doc = env.store.get(Key("reset_link", USER))
    assert doc is not None
    assert token not in json.dumps(doc)
    assert env.events == [{"event": "reset_link_sent", "user": USER}]
    spend = recovery.spend_reset_link
    assert not env.run(spend("bob", token, env.now, env.keyring))
    assert not env.run(spend(USER, token + "x", env.now, env.keyring))
    assert not env.run(spend(USER, "", env.now, env.keyring))
    assert not env.run(spend(USER, "a" * 101, env.now, env.keyring))
    other = Keyring([OTHER_KEY])
    assert not env.run(spend(USER, token, env.now, other))
    assert env.run(spend(USER, token, env.now, env.keyring))
    assert not env.run(spend(USER, token, env.now, env.keyring))


def test_a_reset_link_expires(env: Env) -> None:
    token = env.run(recovery.issue_reset_link(USER, env.now, 3600, env.keyring))
    env.now += 3600
    assert not env.run(recovery.spend_reset_link(USER, token, env.now, env.keyring))


def test_a_link_past_its_time_is_refused_even_when_the_store_still_holds_it(env: Env) -> None:
    """Expiry is checked by the flow, not only by the store's TTL (which may lag)."""
    token = env.run(recovery.issue_reset_link(USER, env.now, 3600, env.keyring))
    key = Key("reset_link", USER)
    doc = env.store.get(key)
    assert doc is not None
    env.store.put(key, doc)  # the same record, kept without a TTL
    env.now += 3601
    assert env.store.get(key) == doc
    assert not env.run(recovery.spend_reset_link(USER, token, env.now, env.keyring))


def test_a_new_link_replaces_the_old_one(env: Env) -> None:
    old = env.run(recovery.issue_reset_link(USER, env.now, 3600, env.keyring))
    new = env.run(recovery.issue_reset_link(USER, env.now, 3600, env.keyring))
    assert old != new
    assert not env.run(recovery.spend_reset_link(USER, old, env.now, env.keyring))
    assert env.run(recovery.spend_reset_link(USER, new, env.now, env.keyring))


def test_a_reset_link_is_spent_once_under_parallel_requests(tmp_path: Path) -> None:
    path = tmp_path / "mfa.sqlite3"
    setup = Env(SQLiteStore(path))
    token = setup.run(recovery.issue_reset_link(USER, NOW, 3600, setup.keyring))
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def worker() -> None:
        own = Env(SQLiteStore(path))
        barrier.wait()
        results.append(own.run(recovery.spend_reset_link(USER, token, NOW, own.keyring)))

    pool = [threading.Thread(target=worker) for _ in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=20)
    assert sorted(results) == [False] * 5 + [True]


@pytest.mark.checklist("TD-09")
def test_codes_links_and_enrollment_codes_survive_a_key_rotation() -> None:
    """Made under the old key, checked once a new key was appended: each still works once;
    once the old key is dropped, none does."""
    from mfa_middleware.core import enroll_code, oob

    old = Env()
    codes = old.issue()
    token = old.run(recovery.issue_reset_link(USER, NOW, 3600, old.keyring))
    unlock = old.run(enroll_code.issue("bob", NOW, 3600, old.keyring, "admin"))
    oob_params = OobParams()
    sent: list[str] = []

    class Keep(Sender):
        channel = "email"

        def send(self, message: Message) -> None:
            sent.append(message.text)

    flow = oob.send_code(USER, "sid", "login", [("email", "a@example.com")], NOW, old.keyring,
                         oob_params, "App", first=True)  # fmt: skip
    assert run_sync(flow, old.store, old.sink, Delivery(email=Keep())).ok
    emailed = re.findall(r"\b\d{6}\b", sent[0])[0]
    rotated = Env(old.store)
    rotated.keyring = Keyring([KEY, OTHER_KEY])
    assert rotated.use(codes[0]).ok
    assert rotated.run(recovery.spend_reset_link(USER, token, NOW, rotated.keyring))
    assert rotated.run(enroll_code.unlock("bob", unlock, "s", NOW, rotated.keyring, LIMITS)).ok
    attempt, _ = rotated.run(
        oob.verify_code(USER, "sid", "login", emailed, NOW, rotated.keyring, oob_params, LIMITS)
    )
    assert attempt.ok
    dropped = Env(old.store)
    dropped.keyring = Keyring([OTHER_KEY])
    assert not dropped.use(codes[1]).ok
