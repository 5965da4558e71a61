"""Section 3: Redis round trips per verified request, counted by the server (INFO commandstats).

A real redis-server on a free loopback port. The hello-world app with ours on RedisStore, one
verified session made through the real pages, then CONFIG RESETSTAT, N replayed requests, and
the server's own count of every command it ran (our INFO/CONFIG calls left out):
  no cache     RedisStore(url)
  local cache  RedisStore(url, local_cache=True): replays run for longer than one cache_ttl,
               so the count includes the periodic re-reads (the cache's worst case)
  API token    a principal exempt by a bypass rule: no store access at all
Also timed side by side: the verified request on SQLite, Redis, and Redis with the cache.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import apps
from bench.asgi_bench import ours_config
from bench.common import (
    command_calls,
    interleaved,
    redis_available,
    redis_server,
    scaled,
    simple_ratio,
    target,
)
from mfa_middleware import SQLiteStore
from mfa_middleware.stores.redis import RedisStore


async def count_calls(
    admin: Any, app: Any, scope: dict[str, Any], n: int, min_seconds: float
) -> dict[str, Any]:
    await apps.replay(app, scope, 20)  # warm: the first read fills the cache when there is one
    admin.config_resetstat()
    done = 0
    started = time.perf_counter()
    while done < n or time.perf_counter() - started < min_seconds:
        await apps.replay(app, scope, 200)
        done += 200
    seconds = time.perf_counter() - started
    calls = command_calls(admin)
    total = sum(calls.values())
    return {
        "requests": done,
        "seconds": round(seconds, 2),
        "commands": calls,
        "round_trips_per_request": total / done,
    }


async def measure(workdir: Path) -> dict[str, Any]:
    with redis_server(workdir / "redis") as server:
        admin = server.client()
        plain = RedisStore(server.url)
        cached = RedisStore(server.url, local_cache=True, prefix="mfa-cached:")
        live = getattr(cached, "_cache_live", None)  # set once the listener has subscribed
        deadline = time.monotonic() + 5
        while live is not None and not live.is_set():
            if time.monotonic() > deadline:
                raise AssertionError("the local cache's listener did not subscribe")
            await asyncio.sleep(0.01)
        app_plain = apps.bench_app("ours", ours_config(plain))
        app_cached = apps.bench_app("ours", ours_config(cached))
        app_sqlite = apps.bench_app("ours", ours_config(SQLiteStore(workdir / "mfa.sqlite3")))
        headers_plain, _ = await apps.verified_session(app_plain, "alice")
        headers_cached, _ = await apps.verified_session(app_cached, "alice")
        headers_sqlite, _ = await apps.verified_session(app_sqlite, "alice")
        scope_plain = apps.http_scope(headers_plain)
        scope_cached = apps.http_scope(headers_cached)
        scope_sqlite = apps.http_scope(headers_sqlite)
        scope_token = apps.http_scope(apps.token_headers())
        for app, scope in ((app_plain, scope_plain), (app_cached, scope_cached)):
            status, _ = await apps.status_of(app, scope)
            if status != 200:
                raise AssertionError(f"verified request answered {status}")

        n = scaled(2000, 200)
        counts = {
            "no_cache": await count_calls(admin, app_plain, scope_plain, n, 0),
            "local_cache": await count_calls(
                admin, app_cached, scope_cached, n, scaled(1, 0) * (cached.cache_ttl + 1)
            ),
            "api_token_exempt": await count_calls(admin, app_plain, scope_token, n // 4, 0),
        }
        timed = await interleaved(
            {
                "sqlite": apps.sampler(app_sqlite, scope_sqlite),
                "redis": apps.sampler(app_plain, scope_plain),
                "redis_cache": apps.sampler(app_cached, scope_cached),
            },
            scaled(15, 3),
            scaled(40_000_000, 5_000_000),
        )
        await plain.aclose()
        await cached.aclose()
        admin.close()
    return report(counts, timed, cached.cache_ttl)


def report(counts: dict[str, Any], timed: dict[str, Any], cache_ttl: float) -> dict[str, Any]:
    labels = {
        "no_cache": "verified request, RedisStore",
        "local_cache": f"verified request, local_cache=True (ttl {cache_ttl:g} s)",
        "api_token_exempt": "API token exempt by rule",
    }
    rows = []
    for name, count in counts.items():
        rows.append(
            [
                name,
                labels[name],
                f"{count['round_trips_per_request']:.4f}",
                ", ".join(f"{k} {v}" for k, v in sorted(count["commands"].items())) or "none",
                f"{count['requests']} in {count['seconds']} s",
            ]
        )
    for name, label in (
        ("sqlite", "time: verified request on SQLite"),
        ("redis", "time: verified request on Redis"),
        ("redis_cache", "time: verified request on Redis + cache"),
    ):
        rows.append([name, label, "", f"{timed[name].median:.1f} us median", ""])
    no_cache = counts["no_cache"]["round_trips_per_request"]
    with_cache = counts["local_cache"]["round_trips_per_request"]
    return {
        "title": "3. Redis round trips per request (server-side INFO commandstats)",
        "columns": ["case", "what", "round trips/req", "commands seen", "requests"],
        "rows": rows,
        "data": {
            "counts": counts,
            "timing_us": {k: v.to_json() for k, v in timed.items()},
            "redis_vs_sqlite": simple_ratio(timed["redis"], timed["sqlite"]),
            "redis_cache_vs_sqlite": simple_ratio(timed["redis_cache"], timed["sqlite"]),
        },
        "targets": [
            target(
                "redis.no_cache",
                "Redis: round trips per verified request without the local cache",
                "<= 1",
                round(no_cache, 4),
                no_cache <= 1,
            ),
            target(
                "redis.cache",
                "Redis: round trips per verified request with the local cache",
                "<= 0.01",
                round(with_cache, 6),
                with_cache <= 0.01,
                f"replays ran {counts['local_cache']['seconds']} s; cache_ttl {cache_ttl:g} s",
            ),
        ],
        "notes": [
            "Counted by the server, so every command any client of ours sent is included"
            " (the cache's SUBSCRIBE happened before the count started).",
            f"Redis vs SQLite time on a verified request: "
            f"{simple_ratio(timed['redis'], timed['sqlite'])['ratio']}x; with the cache: "
            f"{simple_ratio(timed['redis_cache'], timed['sqlite'])['ratio']}x.",
        ],
    }


def unavailable() -> dict[str, Any]:
    reason = "redis-server is not installed (bash scripts/system-deps.sh installs it)"
    return {
        "title": "3. Redis round trips per request: SKIPPED",
        "columns": ["case", "what"],
        "rows": [["-", reason]],
        "data": {},
        "targets": [
            target("redis.no_cache", "Redis round trips, no cache", "<= 1", None, None, reason),
            target("redis.cache", "Redis round trips, cache", "<= 0.01", None, None, reason),
        ],
    }


def run() -> dict[str, Any]:
    if not redis_available():
        return unavailable()
    with tempfile.TemporaryDirectory(prefix="mfa-bench-redis-") as tmp:
        return asyncio.run(measure(Path(tmp)))
