"""Section 10: sizing Redis from measurements (issue 22 point 6).

A real redis-server and the hello-world app with ours on RedisStore. One user is made typical
through the real pages: an authenticator app (and its ten recovery codes), a trusted browser,
two more browsers on the device list, a passkey; then measured:
  bytes    MEMORY USAGE of every key the store holds for that user (grouped by kind)
  login    the commands one login costs: log in, the challenge page, a correct code
  request  the commands one verified request costs (RedisStore without and with local_cache)
From these, on paper, a 10-million-user deployment (see `paper`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import apps
from bench.asgi_bench import ours_config
from bench.common import command_calls, redis_available, redis_server, target
from mfa_middleware.core import authenticators
from mfa_middleware.core.records import Authenticator
from mfa_middleware.core.webauthn import Credential, credential_to_dict
from mfa_middleware.stores.redis import RedisStore

USERS = 10_000_000
LOGINS_PER_SECOND = 1_000  # a stated peak: every user once a day would be ~116/s on average
REQUESTS_PER_SECOND = 50_000  # verified requests at the same peak
SHARD_MEMORY_GIB = 25.0  # usable memory per Redis Cluster primary (a 32 GiB machine)
SHARD_COMMANDS = 100_000  # commands per second one primary serves with headroom


async def typical_user(app: Any) -> Any:
    """alice: an app and recovery codes, a trusted browser, two more browsers, a passkey."""
    await apps.trusted_device_login(app, "alice")  # enrolls, trusts, logs out and in again
    for _ in range(2):  # more browsers on her device list: each reached the challenge page
        async with apps.client(app) as c:
            await apps.log_in(c, "alice")
            await c.get("/_mfa/challenge", headers=apps.HTML)
    rt = apps.mfa_layer(app).runtime
    credential = Credential(b"k" * 32, b"p" * 77, sign_count=1, transports=("internal",))
    key = Authenticator(
        "key", "webauthn", "Laptop", rt.clock(), credential=credential_to_dict(credential)
    )
    rt.run(authenticators.add("alice", rt.clock(), key))
    return rt


async def login_commands(app: Any, admin: Any) -> dict[str, int]:
    """One login of an enrolled user who has no trusted browser: the password, the challenge
    page, the code, the first page."""
    async with apps.client(app) as c:
        await apps.log_in(c, "bob")
        totp = await apps.enroll_totp(c)
        await c.post("/logout")
        admin.config_resetstat()
        await apps.log_in(c, "bob")
        page = await c.get("/_mfa/challenge", headers=apps.HTML)
        data = {"csrf": apps.csrf_of(page.text), "code": totp.at(int(time.time()) + 30)}
        done = await c.post("/_mfa/challenge", headers=apps.HTML, data=data)
        if done.status_code != 303:
            raise AssertionError(f"challenge refused: {done.status_code}")
        await c.get("/", headers=apps.HTML)
        return command_calls(admin)


async def request_commands(app: Any, admin: Any, user: str) -> float:
    headers, _ = await apps.verified_session(app, user)
    scope = apps.http_scope(headers)
    await apps.replay(app, scope, 20)
    admin.config_resetstat()
    n = 1000
    await apps.replay(app, scope, n)
    return sum(command_calls(admin).values()) / n


def user_bytes(admin: Any) -> tuple[int, dict[str, int]]:
    by_kind: Counter[str] = Counter()
    total = 0
    for key in admin.scan_iter(count=1000):
        name = key.decode()
        if "alice" not in name and "settings" not in name:
            continue
        size = int(admin.memory_usage(key, samples=0) or 0)
        if "settings" in name:
            continue  # global, not per user
        kind = name.split(":")[1] if name.count(":") >= 1 else name
        by_kind[kind] += size
        total += size
    return total, dict(by_kind)


def paper(per_user: int, per_login: int, per_request: float) -> dict[str, Any]:
    memory_gib = USERS * per_user / 2**30
    commands = LOGINS_PER_SECOND * per_login + REQUESTS_PER_SECOND * per_request
    shards = max(memory_gib / SHARD_MEMORY_GIB, commands / SHARD_COMMANDS)
    return {
        "users": USERS,
        "memory_gib": round(memory_gib, 1),
        "logins_per_second": LOGINS_PER_SECOND,
        "verified_requests_per_second": REQUESTS_PER_SECOND,
        "commands_per_second": round(commands),
        "primaries": max(1, int(-(-shards // 1))),
    }


async def measure(url: str) -> dict[str, Any]:
    import redis

    admin = redis.Redis.from_url(url)
    app = apps.bench_app("ours", ours_config(RedisStore(url), rules=False))
    await typical_user(app)
    per_user, by_kind = user_bytes(admin)
    per_login = sum((await login_commands(app, admin)).values())
    per_request = await request_commands(app, admin, "carol")
    cached = apps.bench_app("ours", ours_config(RedisStore(url, local_cache=True), rules=False))
    per_request_cached = await request_commands(cached, admin, "dave")
    return {
        "bytes_per_user": per_user,
        "bytes_by_kind": by_kind,
        "commands_per_login": per_login,
        "commands_per_request": per_request,
        "commands_per_request_local_cache": per_request_cached,
        "paper": paper(per_user, per_login, per_request),
        "paper_local_cache": paper(per_user, per_login, per_request_cached),
    }


def run() -> dict[str, Any]:
    if not redis_available():
        return {
            "title": "10. Sizing Redis",
            "columns": [],
            "rows": [],
            "notes": ["skipped: no redis-server"],
            "targets": [],
        }
    with (
        tempfile.TemporaryDirectory(prefix="mfa-bench-sizing-") as tmp,
        redis_server(Path(tmp)) as server,
    ):
        r = asyncio.run(measure(server.url))
    p, pc = r["paper"], r["paper_local_cache"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(r["bytes_by_kind"].items()))
    cached = f"with local_cache {r['commands_per_request_local_cache']:.3f}"
    peak = (
        f"{LOGINS_PER_SECOND:,} logins/s + {REQUESTS_PER_SECOND:,} verified requests/s"
        f" (local_cache: {pc['commands_per_second']:,})"
    )
    rows = [
        [
            "bytes per typical user",
            f"{r['bytes_per_user']:,}",
            kinds,
        ],
        [
            "commands per login",
            str(r["commands_per_login"]),
            "password, challenge page, code, first page",
        ],
        [
            "commands per verified request",
            f"{r['commands_per_request']:.2f}",
            cached,
        ],
        [
            f"{USERS:,} users: memory",
            f"{p['memory_gib']} GiB",
            f"{SHARD_MEMORY_GIB:.0f} GiB usable per primary",
        ],
        [
            "commands/s at the peak",
            f"{p['commands_per_second']:,}",
            peak,
        ],
        [
            "Redis Cluster primaries",
            str(p["primaries"]),
            f"local_cache: {pc['primaries']}; {SHARD_COMMANDS:,} commands/s per primary",
        ],
    ]
    return {
        "title": "10. Sizing Redis from measurements (a typical user; 10 million on paper)",
        "columns": ["what", "measured", "how"],
        "rows": rows,
        "data": r,
        "targets": [
            target(
                "sizing.bytes_per_user",
                "Redis bytes per typical enrolled user (app, codes, 3 devices, a passkey)",
                "measured",
                r["bytes_per_user"],
                r["bytes_per_user"] > 0,
                f"{USERS:,} users: {p['memory_gib']} GiB, {p['primaries']} primaries",
            )
        ],
        "notes": [
            "MEMORY USAGE counts each key with its Redis overhead; TTL'd keys (pending codes,"
            " challenges) come and go and are not counted.",
        ],
    }
