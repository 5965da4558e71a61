"""Section 4: does anything grow with the number of users or sessions?

Two stores of each kind, side by side: "small" holds 10 other users, "big" 100,000 (each an
enrolled user record, a throttle record and 5 trusted-device records: 500,000 devices in the
big store, written straight through the store API). Two users of each store go through the
real pages: u0 enrolls (the verified request), v0 enrolls and trusts its browser (the device
entry). The other users are copies of u0's record.
  verified request  the replayed verified request of u0, small vs big (SQLite, Redis)
  device entry      v0's first request of a login session on its trusted browser: the
                    device record is read and written among 50 vs 500,000 others
  uncached read     the gate's hot-state read of a random user with the cache bypassed
  clear all         `Admin.logout_all()` with 10 vs 100,000 live sessions: every session is a
                    signed cookie, so 100,000 session cookies are minted (and a sample of them
                    checked through the gate before and after: allowed, then all cleared)
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from bench import apps
from bench.asgi_bench import ours_config
from bench.common import (
    MFA_SECRET,
    Summary,
    interleaved,
    redis_available,
    redis_server,
    scaled,
    schedule,
    simple_ratio,
    target,
)
from mfa_middleware import MFAConfig, SQLiteStore
from mfa_middleware.admin import Admin
from mfa_middleware.core.devices import DeviceRecord, device_key
from mfa_middleware.core.effects import Doc, Key, Updater
from mfa_middleware.core.http import RequestFacts
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.records import SETTINGS_KEY, throttle_key, user_key
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.core.tokens import SessionClaims, new_id
from mfa_middleware.drivers import run_sync
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores.base import Store
from mfa_middleware.web.gate import AppSession, gate

SMALL = 10
DEVICES_PER_USER = 5
CHECKED_SESSIONS = 100
TRUST_SECONDS = 30 * 86400


class CountingStore(Store):
    """Delegates to a store and counts the writes (to show an operation is one write)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.writes = 0

    def get(self, key: Key, *, cached: bool = False) -> Doc | None:
        return self.inner.get(key, cached=cached)

    def get_many(self, keys: tuple[Key, ...], *, cached: bool = False) -> list[Doc | None]:
        return self.inner.get_many(keys, cached=cached)

    def put(self, key: Key, doc: Doc, *, ttl: float | None = None) -> None:
        self.writes += 1
        self.inner.put(key, doc, ttl=ttl)

    def delete(self, key: Key) -> None:
        self.writes += 1
        self.inner.delete(key)

    def update(
        self, key: Key, fn: Updater, *, ttl: float | None = None
    ) -> tuple[Doc | None, Doc | None]:
        self.writes += 1
        return self.inner.update(key, fn, ttl=ttl)

    def scan(self, kind: str, part: str) -> list[tuple[str, Doc]]:
        return self.inner.scan(kind, part)


@dataclass
class Population:
    """One store with `users` users, its app, and the verified request of user u0."""

    name: str
    store: Store
    app: Any
    scope: dict[str, Any]
    device_scope: dict[str, Any]
    users: int


def padding(template: Doc, users: int, now: float) -> Iterable[tuple[Key, Doc]]:
    """`users` other users, each with a throttle record and `DEVICES_PER_USER` trusted devices."""
    throttle = ThrottleState(in_window=1, window_at=now, failures=1).to_doc()
    device = DeviceRecord(
        name="Firefox on Linux",
        created_at=now,
        last_used=now,
        last_ip="192.0.2.1",
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
        trusted_until=now + TRUST_SECONDS,
    ).to_doc()
    yield throttle_key("u0"), throttle
    for i in range(1, users + 1):
        yield user_key(f"u{i}"), template
        yield throttle_key(f"u{i}"), throttle
        for d in range(DEVICES_PER_USER):
            yield device_key(f"u{i}", f"d{i}x{d}"), device


def seed_sqlite(store: SQLiteStore, items: Iterable[tuple[Key, Doc]]) -> None:
    """Every record in one transaction, through the store's own `put`."""
    conn = store._connection()
    conn.execute("BEGIN")
    try:
        for key, doc in items:
            store.put(key, doc)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # start timing from a settled file


def seed_redis(store: Any, items: Iterable[tuple[Key, Doc]]) -> None:
    """Pipelined, through the store's own write script; plain `put`s if its internals moved."""
    try:
        from mfa_middleware.stores.redis import _envelope

        script = store._script("write", is_async=False)
        batch = store.sync_client.pipeline(transaction=False)
        pending = 0
        for key, doc in items:
            keys = [store.redis_key(key), store._index(key)]
            script(keys=keys, args=[_envelope(doc, None), "", key.name, ""], client=batch)
            pending += 1
            if pending == 2000:
                batch.execute()
                pending = 0
        batch.execute()
    except (ImportError, AttributeError, TypeError):
        for key, doc in items:
            store.put(key, doc)


async def population(
    name: str, store: Store, users: int, seed: Callable[[Iterable[tuple[Key, Doc]]], None]
) -> Population:
    app = apps.bench_app("ours", ours_config(store))
    headers, _ = await apps.verified_session(app, "u0")
    device_headers = await apps.trusted_device_login(app, "v0")
    template = store.get(user_key("u0"))
    assert template is not None
    seed(padding(template, users, time.time()))
    scope = apps.http_scope(headers)
    device_scope = apps.http_scope(device_headers)
    for what, replayed in (("verified request", scope), ("device entry", device_scope)):
        status, _ = await apps.status_of(app, replayed)
        if status != 200:
            raise AssertionError(f"{name}: {what} answered {status}")
    return Population(name, store, app, scope, device_scope, users)


def uncached_reads(store: Store, users: int) -> Callable[[int], Awaitable[int]]:
    rng = random.Random(4)  # noqa: S311 (which users to read, not a secret)
    keys = [(SETTINGS_KEY, user_key(f"u{rng.randrange(users)}")) for _ in range(4096)]

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for i in range(n):
            store.get_many(keys[i & 4095], cached=False)
        return perf_counter_ns() - start

    return run


# -- clear all sessions ------------------------------------------------------------------------


def mint_sessions(rt: Runtime, users: int, epoch: int) -> list[tuple[str, SessionClaims, str]]:
    """One live, verified session cookie per user: (user id, claims, cookie value)."""
    now = int(time.time())
    sessions = []
    for i in range(users):
        user = f"u{i}"
        claims = SessionClaims(new_id(), rt.user_tag(user), now, now, now, epoch, 0, "totp")
        sessions.append((user, claims, rt.sessions.encode(claims)))
    return sessions


def gate_allows(rt: Runtime, session: tuple[str, SessionClaims, str]) -> str:
    """What the gate says to a request of that session: 'allow' or its refusal."""
    user, claims, cookie = session
    facts = RequestFacts(
        method="GET",
        path="/",
        headers={"cookie": f"{rt.cookie_name}={cookie}", "accept": "text/html"},
        client="127.0.0.1",
    )
    result = run_sync(
        gate(
            rt, facts, Principal(id=user, username=user), AppSession(True, claims.session_id), None
        ),
        rt.store,
        rt.events,
    )
    if result.response is None:
        return "allow"
    return f"{result.response.status} {result.response.header('location')}"


@dataclass
class ClearAll:
    admin: Admin
    counter: CountingStore
    sessions: list[tuple[str, SessionClaims, str]]
    sample: list[tuple[str, SessionClaims, str]]


def clear_all_setup(pop: Population, sessions: list[tuple[str, SessionClaims, str]]) -> ClearAll:
    counter = CountingStore(pop.store)
    rt = Runtime(MFAConfig(secret_keys=[MFA_SECRET], store=counter, cookie_secure=False))
    rng = random.Random(7)  # noqa: S311 (which sessions to check, not a secret)
    sample = rng.sample(sessions, min(CHECKED_SESSIONS, len(sessions)))
    verdicts = {gate_allows(rt, s) for s in sample}
    if verdicts != {"allow"}:
        raise AssertionError(f"{pop.name}: minted sessions not live before clearing: {verdicts}")
    return ClearAll(Admin(rt, "bench"), counter, sessions, sample)


def time_clear_all(
    clears: dict[str, ClearAll], rounds: int, per_round: int
) -> tuple[dict[str, Summary], dict[str, Summary], dict[str, dict[str, float]]]:
    """Each call timed on its own, interleaved by rounds: per round the median call (the
    typical cost) and the mean call (the amortized cost, which includes any periodic work a
    store does on some writes), and over every call the distribution."""
    medians = {name: Summary(ops_per_sample=per_round) for name in clears}
    means = {name: Summary(ops_per_sample=per_round) for name in clears}
    calls: dict[str, list[float]] = {name: [] for name in clears}
    for name in schedule(list(clears), rounds):
        gc.collect()
        logout_all = clears[name].admin.logout_all
        times = []
        for _ in range(per_round):
            start = perf_counter_ns()
            logout_all()
            times.append((perf_counter_ns() - start) / 1000)
        medians[name].samples.append(statistics.median(times))
        means[name].samples.append(statistics.fmean(times))
        calls[name] += times
    spread = {
        name: {
            "calls": len(times),
            "median_us": round(statistics.median(times), 2),
            "mean_us": round(statistics.fmean(times), 2),
            "p99_us": round(statistics.quantiles(times, n=100)[98], 2),
            "max_us": round(max(times), 2),
            "calls_over_5ms": sum(1 for t in times if t > 5000),
        }
        for name, times in calls.items()
    }
    return medians, means, spread


def clear_all_outcome(clear: ClearAll) -> dict[str, Any]:
    before = clear.counter.writes
    clear.admin.logout_all()
    writes = clear.counter.writes - before
    verdicts = [gate_allows(clear.admin.runtime, s) for s in clear.sample]
    cleared = sum(1 for v in verdicts if v.startswith("303 /login"))
    return {
        "live_sessions": len(clear.sessions),
        "store_writes_per_call": writes,
        "sampled_sessions_checked": len(verdicts),
        "sampled_sessions_ended": cleared,
    }


# -- the section -------------------------------------------------------------------------------


async def measure(workdir: Path) -> dict[str, Any]:
    big = scaled(100_000, 2_000)
    started = time.perf_counter()
    sqlite_small_store = SQLiteStore(workdir / "small.sqlite3")
    sqlite_big_store = SQLiteStore(workdir / "big.sqlite3")
    pops = [
        await population(
            "sqlite_small",
            sqlite_small_store,
            SMALL,
            lambda items: seed_sqlite(sqlite_small_store, items),
        ),
        await population(
            "sqlite_big", sqlite_big_store, big, lambda items: seed_sqlite(sqlite_big_store, items)
        ),
    ]
    seeded = {"sqlite_seconds": round(time.perf_counter() - started, 1)}

    redis_ctx = None
    if redis_available():
        from contextlib import ExitStack

        from mfa_middleware.stores.redis import RedisStore

        redis_ctx = ExitStack()
        small_srv = redis_ctx.enter_context(redis_server(workdir / "redis-small"))
        big_srv = redis_ctx.enter_context(redis_server(workdir / "redis-big"))
        redis_small, redis_big = RedisStore(small_srv.url), RedisStore(big_srv.url)
        started = time.perf_counter()
        pops.append(
            await population(
                "redis_small", redis_small, SMALL, lambda items: seed_redis(redis_small, items)
            )
        )
        pops.append(
            await population(
                "redis_big", redis_big, big, lambda items: seed_redis(redis_big, items)
            )
        )
        seeded["redis_seconds"] = round(time.perf_counter() - started, 1)
    try:
        by_name = {p.name: p for p in pops}
        rounds, target_ns = scaled(15, 3), scaled(30_000_000, 4_000_000)
        verified = await interleaved(
            {p.name: apps.sampler(p.app, p.scope) for p in pops}, rounds, target_ns
        )
        entries = await interleaved(
            {p.name: apps.sampler(p.app, p.device_scope) for p in pops}, rounds, target_ns
        )
        reads = await interleaved(
            {p.name: uncached_reads(p.store, p.users) for p in pops}, rounds, target_ns
        )
        # minted after the timings above, so 100,000 cookies in memory weigh on no timing but
        # the clear-all one (where they are the point)
        rt = apps.mfa_layer(pops[0].app).runtime
        user_epoch = int((pops[0].store.get(user_key("u0")) or {}).get("epoch", 0))
        minted_at = time.perf_counter()
        sessions_small = mint_sessions(rt, SMALL, user_epoch)
        sessions_big = mint_sessions(rt, big, user_epoch)
        seeded["minting_seconds"] = round(time.perf_counter() - minted_at, 1)
        clears = {
            "sqlite_small": clear_all_setup(by_name["sqlite_small"], sessions_small),
            "sqlite_big": clear_all_setup(by_name["sqlite_big"], sessions_big),
        }
        if "redis_big" in by_name:
            clears["redis_small"] = clear_all_setup(by_name["redis_small"], sessions_small)
            clears["redis_big"] = clear_all_setup(by_name["redis_big"], sessions_big)
        clear_medians, clear_means, clear_calls = time_clear_all(
            clears, scaled(12, 3), scaled(250, 20)
        )
        outcomes = {name: clear_all_outcome(c) for name, c in clears.items()}
        for name, calls in clear_calls.items():
            outcomes[name]["calls"] = calls
    finally:
        if redis_ctx is not None:
            for p in pops:
                if p.name.startswith("redis"):
                    await p.store.aclose()
            redis_ctx.close()
    return report(pops, verified, entries, reads, clear_medians, clear_means, outcomes, seeded, big)


def _pair(kind: str, timings: dict[str, Summary]) -> dict[str, float | None] | None:
    if f"{kind}_big" not in timings:
        return None
    return simple_ratio(timings[f"{kind}_big"], timings[f"{kind}_small"])


def report(
    pops: list[Population],
    verified: dict[str, Summary],
    entries: dict[str, Summary],
    reads: dict[str, Summary],
    clear_medians: dict[str, Summary],
    clear_means: dict[str, Summary],
    outcomes: dict[str, dict[str, Any]],
    seeded: dict[str, Any],
    big: int,
) -> dict[str, Any]:
    rows = []
    ratios: dict[str, Any] = {}
    for kind in ("sqlite", "redis"):
        for what, timings in (
            ("verified request", verified),
            ("trusted-device entry", entries),
            ("uncached hot-state read", reads),
            ("clear all sessions: median call", clear_medians),
            ("clear all sessions: mean call", clear_means),
        ):
            pair = _pair(kind, timings)
            if pair is None:
                continue
            ratios[f"{kind}.{what}"] = pair
            small, large = timings[f"{kind}_small"], timings[f"{kind}_big"]
            extra = ""
            if what == "clear all sessions: median call":
                o = outcomes[f"{kind}_big"]
                extra = (
                    f"{o['store_writes_per_call']} store write/call; "
                    f"{o['sampled_sessions_ended']}/{o['sampled_sessions_checked']} sampled of "
                    f"{o['live_sessions']:,} sessions ended"
                )
            elif what == "clear all sessions: mean call":
                small_calls = outcomes[f"{kind}_small"]["calls"]
                big_calls = outcomes[f"{kind}_big"]["calls"]
                extra = (
                    f"calls over 5 ms: {small_calls['calls_over_5ms']} vs"
                    f" {big_calls['calls_over_5ms']} of {big_calls['calls']};"
                    f" max {small_calls['max_us'] / 1000:.1f} vs"
                    f" {big_calls['max_us'] / 1000:.1f} ms"
                )
            rows.append(
                [
                    kind,
                    what,
                    f"{small.median:.1f}",
                    f"{large.median:.1f}",
                    f"{pair['ratio']:.3f}" if pair["ratio"] is not None else "-",
                    extra,
                ]
            )
    verified_ratio = ratios["sqlite.verified request"]["ratio"]
    clear_median_ratio = ratios["sqlite.clear all sessions: median call"]["ratio"]
    clear_ratio = ratios["sqlite.clear all sessions: mean call"]["ratio"]
    redis_clear = ratios.get("redis.clear all sessions: mean call", {}).get("ratio")
    writes = {o["store_writes_per_call"] for o in outcomes.values()}
    ended = all(
        o["sampled_sessions_ended"] == o["sampled_sessions_checked"] for o in outcomes.values()
    )
    redis_verified = ratios.get("redis.verified request", {}).get("ratio")
    entry_ratio = ratios["sqlite.trusted-device entry"]["ratio"]
    redis_entry = ratios.get("redis.trusted-device entry", {}).get("ratio")
    targets = [
        target(
            "scale.verified",
            f"Scale: verified request with {big:,} users and {big * DEVICES_PER_USER:,} devices"
            f" / with {SMALL} (SQLite)",
            "<= 1.1",
            verified_ratio,
            None if verified_ratio is None else verified_ratio <= 1.1,
            "" if redis_verified is None else f"Redis (no cache): {redis_verified:.3f}",
        ),
        target(
            "scale.clear_all",
            f"Scale: clear all sessions, mean call with {big:,} users and live sessions /"
            f" with {SMALL} (SQLite)",
            "constant (<= 1.1, one write)",
            clear_ratio,
            None
            if clear_ratio is None or clear_median_ratio is None
            else (clear_ratio <= 1.1 and clear_median_ratio <= 1.1 and writes == {1} and ended),
            f"median call ratio {clear_median_ratio}; Redis mean call ratio {redis_clear};"
            f" store writes per call {sorted(writes)}; every sampled session ended: {ended}",
        ),
        target(
            "scale.devices",
            f"Scale: trusted-device entry with {big * DEVICES_PER_USER:,} devices / with"
            f" {SMALL * DEVICES_PER_USER} (SQLite)",
            "<= 1.1",
            entry_ratio,
            None if entry_ratio is None else entry_ratio <= 1.1,
            "" if redis_entry is None else f"Redis (no cache): {redis_entry:.3f}",
        ),
    ]
    return {
        "title": f"4. Scale: {SMALL} vs {big:,} users, {SMALL * DEVICES_PER_USER} vs"
        f" {big * DEVICES_PER_USER:,} devices, live sessions (us per operation)",
        "columns": ["store", "operation", f"{SMALL} users", f"{big:,} users", "ratio", "check"],
        "rows": rows,
        "data": {
            "users_small": SMALL,
            "users_big": big,
            "records_big": (2 + DEVICES_PER_USER) * big,
            "devices_big": DEVICES_PER_USER * big,
            "device_entry_us": {k: v.to_json() for k, v in entries.items()},
            "verified_us": {k: v.to_json() for k, v in verified.items()},
            "uncached_read_us": {k: v.to_json() for k, v in reads.items()},
            "clear_all_median_call_us": {k: v.to_json() for k, v in clear_medians.items()},
            "clear_all_mean_call_us": {k: v.to_json() for k, v in clear_means.items()},
            "clear_all_outcomes": outcomes,
            "ratios": ratios,
            "setup_seconds": seeded,
            "populations": [p.name for p in pops],
        },
        "targets": targets,
        "notes": [
            "Clear all sessions: each call timed alone; 'median call' is the typical call,"
            " 'mean call' the amortized cost including periodic work some writes trigger"
            " (SQLiteStore purges expired rows every 500 writes, a scan of the whole table).",
            f"Big stores: {big:,} enrolled user records + {big:,} throttle records +"
            f" {big * DEVICES_PER_USER:,} trusted-device records; sessions are signed cookies,"
            " so 'live sessions' are minted cookies, not store rows.",
            "Device entry: each replay is the first request of a login session on v0's trusted"
            " browser (one device read, one device write, a new MFA session cookie).",
            "Redis rows use RedisStore without the local cache (one MGET per request).",
        ],
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mfa-bench-scale-") as tmp:
        return asyncio.run(measure(Path(tmp)))
