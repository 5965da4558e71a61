"""Section 6: challenge throughput, and the attempt limits under that load.

Per store (SQLite, Redis, DjangoStore on PostgreSQL): users enrolled (one through the real
pages, the rest copies of its record), each logged in with a pending challenge (cookies and CSRF
token from the real pages).
Then W worker processes, each with its own app on the same store, fire form POSTs to
/_mfa/challenge with C in flight per worker, all starting together:
  verifications  one correct code per user (a code is good once per user and time step)
  wrong codes    3 x max_attempts wrong guesses per "storm" user, interleaved over users and
                 workers. The limits hold when the store counted exactly max_attempts
                 evaluated guesses and one lockout per user, every answer was 400 (wrong) or
                 429 (locked), and the user's correct code is then refused too.
Each POST is timed from the moment it is one of the C in flight (its worker's semaphore
acquired) to its answer (`perf_counter_ns`): the latency a client of a worker serving C requests
at once sees, the waits for the store and for the worker's other requests included. The time a
job waited before it was let in flight is left out: every job is queued at the start, so that
wait is its place in the list, not something a server does. p50, p99 and max over both workers,
for each run.
Meanwhile each worker measures its event loop's lag (`LoopLag`: how late a task that asks to
wake every 5 ms woke): the longest the loop was held up, by a store call waiting for SQLite's
write lock (which the other worker holds half the time) or by anything else.

DjangoStore: the parent and each worker set Django up on one PostgreSQL database (the test
suite's throwaway server, as a multi-worker Django deployment would use PostgreSQL) with
`configure_django`, section 2's settings; the workers serve the same Starlette app with
`DjangoStore()`. Its calls leave the loop through `sync_to_async(thread_sensitive=True)`, which
outside Django's own ASGI handler (no per-request `ThreadSensitiveContext`) is one thread per
process: a worker's store calls run one at a time, on one persistent connection. Without a
PostgreSQL server (or psycopg) its row says so and the rest runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyotp

from bench import apps
from bench.common import MFA_SECRET, redis_available, redis_server, scaled, target
from bench.django_bench import configure
from mfa_middleware import MFAConfig, SQLiteStore
from mfa_middleware.core.records import throttle_key, user_key
from mfa_middleware.stores.base import Store

WORKERS = 2
IN_FLIGHT = 16
MAX_ATTEMPTS = 5
Spec = tuple[str, Any]  # ("sqlite", path) | ("redis", url) | ("django", a DATABASES entry)
Job = tuple[str, str, str, str]  # user, cookie header, csrf token, "good" | "wrong"
Answer = tuple[str, int, int]  # user, status, ns from in flight to answered


def make_store(spec: Spec) -> Store:
    kind, where = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    if kind == "django":
        from mfa_middleware.django.store import DjangoStore

        configure_django(where)
        return DjangoStore()
    from mfa_middleware.stores.redis import RedisStore

    return RedisStore(where)


def configure_django(database: dict[str, Any]) -> None:
    """Django set up in this process (the parent, before its event loop, and each worker) as
    section 2 sets it up, on `database`; once per process."""
    from django.conf import settings

    from mfa_middleware.django.store import DjangoStore

    if not settings.configured:
        configure(store=DjangoStore(), database=database)
    elif any(settings.DATABASES["default"].get(k) != v for k, v in database.items()):
        raise RuntimeError("Django is already set up on another database")


def config(store: Store) -> MFAConfig:
    return MFAConfig(
        secret_keys=[MFA_SECRET], store=store, cookie_secure=False, max_attempts=MAX_ATTEMPTS
    )


def wrong_code(totp: pyotp.TOTP) -> str:
    """A well-formed code matching no step near now (nor in the next minutes)."""
    near = {totp.at(time.time() + d * 30) for d in range(-3, 12)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


# -- the worker processes ----------------------------------------------------------------------


def worker(
    spec: Spec,
    secret: str,
    wrong: str,
    jobs: list[Job],
    barrier: Any,
    results: Any,
) -> None:
    """One process: its own app on the shared store; fires `jobs` once everyone is ready."""
    from tests.support.stalls import LoopLag  # the test suite's, as `redis_server` is

    store = make_store(spec)
    app = apps.bench_app("ours", config(store))
    totp = pyotp.TOTP(secret)

    async def fire() -> tuple[int, int, list[Answer], float]:
        limit = asyncio.Semaphore(IN_FLIGHT)

        async def one(job: Job) -> Answer:
            user, cookie, csrf, kind = job
            code = totp.at(time.time() + 30) if kind == "good" else wrong
            async with limit:  # the latency counts from here: one of IN_FLIGHT in the worker
                began = time.perf_counter_ns()
                status = await apps.post_form(
                    app,
                    apps.request_headers(cookie),
                    "/_mfa/challenge",
                    {"csrf": csrf, "code": code, "next": "/"},
                )
                took = time.perf_counter_ns() - began
            return user, status, took

        await apps.status_of(app, apps.http_scope(apps.request_headers()))  # build the stack
        barrier.wait()
        async with LoopLag() as lag:
            start = time.monotonic_ns()
            outcome = await asyncio.gather(*(one(job) for job in jobs))
            end = time.monotonic_ns()
        await store.aclose()
        return start, end, list(outcome), lag.worst

    results.put(asyncio.run(fire()))


def fire_jobs(spec: Spec, secret: str, wrong: str, jobs: list[Job]) -> dict[str, Any]:
    """Split `jobs` round-robin over the workers, start them together, gather the outcome."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS + 1)
    results = ctx.Queue()
    shares = [jobs[i::WORKERS] for i in range(WORKERS)]
    procs = [
        ctx.Process(target=worker, args=(spec, secret, wrong, share, barrier, results))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    start = min(o[0] for o in outcomes)
    end = max(o[1] for o in outcomes)
    answers: list[Answer] = [answer for o in outcomes for answer in o[2]]
    lag = max(o[3] for o in outcomes)
    return {
        "seconds": (end - start) / 1e9,
        "statuses": [(user, status) for user, status, _ in answers],
        "latency": latency([ns for _, _, ns in answers]),
        "loop_lag_ms": lag * 1000,
    }


def latency(durations_ns: list[int]) -> dict[str, float]:
    """p50, p99 and max of the POSTs' latencies, in ms."""
    ms = sorted(ns / 1e6 for ns in durations_ns)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(ms[-1], 1),
        "requests": len(ms),
    }


# -- setup in the parent -----------------------------------------------------------------------


async def pending_challenges(app: Any, users: list[str]) -> dict[str, tuple[str, str]]:
    """Each user logged in, sent to the challenge: (cookie header, CSRF token)."""
    sessions = {}
    for user in users:
        async with apps.client(app) as c:
            await apps.log_in(c, user)
            r = await c.get("/", headers=apps.HTML)
            if r.status_code != 303 or "/_mfa/challenge" not in r.headers["location"]:
                raise AssertionError(f"{user}: expected the challenge, got {r.status_code}")
            page = await c.get("/_mfa/challenge", headers=apps.HTML)
            sessions[user] = (apps.cookie_header(c), apps.csrf_of(page.text))
    return sessions


async def prepare(spec: Spec, ok: int, storm: int) -> dict[str, Any]:
    store = make_store(spec)
    app = apps.bench_app("ours", config(store))
    async with apps.client(app) as c:
        await apps.log_in(c, "u0")
        totp = await apps.enroll_totp(c)
    template = await store.aget(user_key("u0"))
    assert template is not None
    ok_users = [f"ok{i}" for i in range(ok)]
    storm_users = [f"storm{i}" for i in range(storm)]
    for user in ok_users + storm_users:
        await store.aput(user_key(user), template)
    sessions = await pending_challenges(app, ok_users + storm_users)
    return {
        "store": store,
        "app": app,
        "totp": totp,
        "ok_users": ok_users,
        "storm_users": storm_users,
        "sessions": sessions,
    }


async def locked_out_correct(
    app: Any, sessions: dict[str, tuple[str, str]], users: list[str], totp: pyotp.TOTP
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for user in users:
        cookie, csrf = sessions[user]
        statuses[
            await apps.post_form(
                app,
                apps.request_headers(cookie),
                "/_mfa/challenge",
                {"csrf": csrf, "code": totp.at(time.time() + 30), "next": "/"},
            )
        ] += 1
    return statuses


async def measure_store(spec: Spec) -> dict[str, Any]:
    """The whole measurement for one store; the workers' runs block this loop meanwhile."""
    ok, storm = scaled(400, 40), scaled(40, 6)
    guesses = 3 * MAX_ATTEMPTS
    started = time.perf_counter()
    setup = await prepare(spec, ok, storm)
    setup_seconds = time.perf_counter() - started
    store: Store = setup["store"]
    totp: pyotp.TOTP = setup["totp"]
    sessions = setup["sessions"]
    wrong = wrong_code(totp)

    good_jobs: list[Job] = [(u, *sessions[u], "good") for u in setup["ok_users"]]
    verify = fire_jobs(spec, totp.secret, wrong, good_jobs)
    good_statuses = Counter(s for _, s in verify["statuses"])
    leftover = sum([await store.aget(throttle_key(u)) is not None for u in setup["ok_users"]])

    storm_jobs: list[Job] = [
        (u, *sessions[u], "wrong") for _ in range(guesses) for u in setup["storm_users"]
    ]
    attack = fire_jobs(spec, totp.secret, wrong, storm_jobs)
    per_user: dict[str, Counter[int]] = {u: Counter() for u in setup["storm_users"]}
    for user, status in attack["statuses"]:
        per_user[user][status] += 1
    records = {u: await store.aget(throttle_key(u)) or {} for u in setup["storm_users"]}
    # A guess that was evaluated shows as a stored failure; its answer is 400, or 429 when it
    # was the one that locked the user (or a parallel one had). Refused guesses are 429.
    answers_ok = all(
        set(c) <= {400, 429} and c[400] <= MAX_ATTEMPTS and c.total() == guesses
        for c in per_user.values()
    )
    records_ok = all(
        r.get("failures") == MAX_ATTEMPTS and r.get("lockouts") == 1 for r in records.values()
    )
    after = await locked_out_correct(setup["app"], sessions, setup["storm_users"], totp)
    await store.aclose()
    return {
        "setup_seconds": round(setup_seconds, 1),
        "worst_loop_lag_ms": round(max(verify["loop_lag_ms"], attack["loop_lag_ms"]), 1),
        "verifications": {
            "requests": len(good_jobs),
            "seconds": round(verify["seconds"], 3),
            "per_second": len(good_jobs) / verify["seconds"],
            "latency": verify["latency"],
            "loop_lag_ms": round(verify["loop_lag_ms"], 1),
            "statuses": dict(good_statuses),
            "all_succeeded": good_statuses == Counter({303: len(good_jobs)}),
            "throttle_records_left": leftover,
        },
        "wrong_codes": {
            "users": storm,
            "guesses_per_user": guesses,
            "requests": len(storm_jobs),
            "seconds": round(attack["seconds"], 3),
            "per_second": len(storm_jobs) / attack["seconds"],
            "latency": attack["latency"],
            "loop_lag_ms": round(attack["loop_lag_ms"], 1),
            "statuses": dict(Counter(s for _, s in attack["statuses"])),
            "answers_only_400_or_429": answers_ok,
            "evaluated_guesses_stored": sum(int(r.get("failures", 0)) for r in records.values()),
            "evaluated_guesses_allowed": storm * MAX_ATTEMPTS,
            "every_user_exactly_max_attempts_failures_and_one_lockout": records_ok,
            "correct_code_after_lockout": dict(after),
            "sample_record": records[setup["storm_users"][0]],
        },
        "limits_hold": answers_ok and records_ok and after == Counter({429: storm}),
    }


async def request_shape(spec: Spec) -> dict[str, Any]:
    """One correct-code challenge POST on a store of its own, profiled: how many calls of
    ours it makes in how many modules, and how deep the generators are nested when a flow
    waits for the store (issue 16: at most three)."""
    import cProfile
    import pstats

    from mfa_middleware import drivers

    setup = await prepare(spec, 1, 0)
    app, totp = setup["app"], setup["totp"]
    cookie, csrf = setup["sessions"]["ok0"]
    form = {"csrf": csrf, "code": totp.at(time.time() + 30), "next": "/"}  # not enrollment's
    # the browser's GET of the challenge page with its own headers first, as a browser does
    # before it posts (its Accept-Language negotiated once, as every later request finds it)
    scope = apps.http_scope(apps.request_headers(cookie), "/_mfa/challenge")
    await apps.status_of(app, scope)
    depths: list[int] = []
    advance = drivers.Chain.advance

    def counting(chain: drivers.Chain, value: Any = None, error: Any = None) -> Any:
        effect = advance(chain, value, error)
        depth, generator = 0, chain.flow
        while generator is not None and not isinstance(effect, drivers.Done):
            depth, generator = depth + 1, generator.gi_yieldfrom
        depths.append(depth)
        return effect

    drivers.Chain.advance = counting  # type: ignore[method-assign]
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        status = await apps.post_form(app, apps.request_headers(cookie), "/_mfa/challenge", form)
        profiler.disable()
    finally:
        drivers.Chain.advance = advance  # type: ignore[method-assign]
    await setup["store"].aclose()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    ours = {k: v for k, v in stats.items() if "/mfa_middleware/" in k[0]}
    return {
        "status": status,
        "calls": sum(v[1] for v in ours.values()),
        "modules": len({k[0] for k in ours}),
        "generator_depth": max(depths),
        "effects": sum(1 for d in depths if d),
    }


def start_postgres(stack: ExitStack) -> Any:
    """A throwaway PostgreSQL server (the test suite's helper), or why there is none (a str)."""
    import pytest
    from tests.support.postgres_server import postgres_server

    try:
        return stack.enter_context(postgres_server())
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:  # missing: the helper's word
        return str(exc).removeprefix("SKIPPING POSTGRESQL TESTS: ")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:  # it did not start
        return f"{type(exc).__name__}: {exc}"


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mfa-bench-challenge-") as tmp, ExitStack() as stack:
        shape = asyncio.run(request_shape(("sqlite", str(Path(tmp) / "shape.sqlite3"))))
        results["sqlite"] = asyncio.run(measure_store(("sqlite", str(Path(tmp) / "mfa.sqlite3"))))
        if redis_available():
            server = stack.enter_context(redis_server(Path(tmp) / "redis"))
            results["redis"] = asyncio.run(measure_store(("redis", server.url)))
        else:
            skipped["redis"] = "redis-server not installed"
        postgres = start_postgres(stack)
        if isinstance(postgres, str):
            skipped["django"] = f"PostgreSQL not available ({postgres})"
        else:
            postgres.create_database("mfa_bench")
            database = postgres.django_settings("mfa_bench")
            configure_django(database)  # before the event loop: migrate is sync
            results["django"] = asyncio.run(measure_store(("django", database)))
    return report(results, skipped, shape)


def spread(latency: dict[str, float]) -> str:
    return f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f} / {latency['max_ms']:.1f}"


def report(
    results: dict[str, Any], skipped: dict[str, str], shape: dict[str, Any]
) -> dict[str, Any]:
    rows = []
    for kind, r in results.items():
        v, w = r["verifications"], r["wrong_codes"]
        rows.append(
            [
                kind,
                f"{v['per_second']:.0f}",
                f"{v['requests']} ok" if v["all_succeeded"] else f"FAILED {v['statuses']}",
                spread(v["latency"]),
                f"{w['per_second']:.0f}",
                ", ".join(f"{k}: {n}" for k, n in sorted(w["statuses"].items())),
                spread(w["latency"]),
                f"{w['evaluated_guesses_stored']}/{w['evaluated_guesses_allowed']}",
                "yes" if r["limits_hold"] else "NO",
                f"{r['worst_loop_lag_ms']:.1f} ms",
            ]
        )
    for kind, reason in skipped.items():  # the row without the details (data keeps them)
        rows.append([kind, *["-"] * 7, f"skipped: {reason.partition(' (')[0]}", "-"])
    hold = all(r["limits_hold"] and r["verifications"]["all_succeeded"] for r in results.values())
    lag = results["sqlite"]["worst_loop_lag_ms"]
    p99 = results["sqlite"]["verifications"]["latency"]["p99_ms"]
    return {
        "title": f"6. Challenge throughput: {WORKERS} worker processes x {IN_FLIGHT} in flight,"
        f" form POSTs to /_mfa/challenge (max_attempts {MAX_ATTEMPTS})",
        "columns": [
            "store",
            "verifications/s",
            "correct codes",
            "ms p50/p99/max",
            "wrong guesses/s",
            "wrong-guess statuses",
            "ms p50/p99/max",
            "evaluated/allowed",
            "limits hold",
            "worst loop lag",
        ],
        "rows": rows,
        "data": {**results, "skipped": skipped, "shape": shape},
        "targets": [
            target(
                "challenge.shape",
                "One correct-code challenge POST (SQLite): generators nested at most 3 deep",
                "depth <= 3",
                shape["generator_depth"],
                shape["generator_depth"] <= 3 and shape["status"] == 303,
                f"{shape['calls']} calls of ours in {shape['modules']} modules,"
                f" {shape['effects']} store effects",
            ),
            target(
                "challenge.limits",
                "Challenge: limits hold under load (exactly max_attempts evaluated per user)",
                "hold",
                hold,
                hold,
                "; ".join(
                    f"{k}: {r['verifications']['per_second']:.0f} verifications/s"
                    for k, r in results.items()
                ),
            ),
            target(
                "challenge.loop_lag",
                "Challenge: worst event-loop lag of a worker under that load (SQLite; the other"
                " worker holds the write lock half the time), in ms",
                "measured (beside Redis's)",
                lag,
                True,
                "; ".join(
                    f"{k}: {r['verifications']['loop_lag_ms']:.1f} ms verifying,"
                    f" {r['wrong_codes']['loop_lag_ms']:.1f} ms under wrong guesses"
                    for k, r in results.items()
                ),
            ),
            target(
                "challenge.p99",
                "Challenge: p99 latency of a correct-code POST under that load (SQLite), in ms,"
                " from in flight to answered",
                "measured (beside the other stores')",
                p99,
                True,
                "; ".join(
                    f"{k}: {spread(r['verifications']['latency'])} ms verifying,"
                    f" {spread(r['wrong_codes']['latency'])} ms under wrong guesses"
                    for k, r in results.items()
                )
                + " (p50 / p99 / max)",
            ),
        ],
        "notes": [
            "400 = wrong code; 429 = locked out (a refused guess, or the evaluated guess that"
            " locked the user). Evaluated guesses are counted by the store's throttle record.",
            "Each worker is a separate process with its own app and store connection on the"
            " same SQLite file, Redis server or PostgreSQL database (django: DjangoStore, Django"
            " set up in every process), as separate server workers would be.",
            "django: under Starlette, DjangoStore's calls leave the loop through"
            " sync_to_async(thread_sensitive=True), one thread per process (Django's ASGI"
            " handler would give each request its own): a worker's store calls run one at a"
            " time. Its rate here is set by the CPU: a POST alone costs about 8 ms (0.9 ms on"
            " SQLite), mostly the ORM's 10 queries; see bench/README.md.",
            "ms p50/p99/max: each POST from the moment it is one of the"
            f" {IN_FLIGHT} in flight in its worker to its answer (the waits for the store and"
            " for the worker's other requests included; the wait before it was let in flight,"
            " its place in the queued list, left out), over both workers.",
            "Worst loop lag: how late a task of each worker's event loop, asking to wake every"
            " 5 ms, woke while the codes were posted (the longest any other request of that"
            " worker, one needing no store included, would have waited). It grows with the"
            " machine's load for every store (Redis never waits on the loop): read it beside"
            " Redis's.",
        ],
    }
