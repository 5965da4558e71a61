"""Section 9: the resident memory of one worker as distinct verified sessions pass (issue 22).

One ASGI app with ours (SQLite store, the default), one enrolled user, and N distinct verified
MFA sessions of that user, each sending one request (its first: the gate runs, reads the
store's cache, and the memo of verified requests keeps the answer; the session cookie's
decoding is cached too). The resident set size is read after 10,000 ... 300,000 sessions: the
caches are bounded (two generations each), so it grows until they are full and then stays
flat, whatever the number of sessions.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import MFA_SECRET, scaled, target
from mfa_middleware import MFAConfig, MFAMiddleware, Principal, SQLiteStore
from mfa_middleware.core import authenticators
from mfa_middleware.core.records import Authenticator
from mfa_middleware.core.tokens import SessionClaims, new_id

CHECKPOINTS = (10_000, 50_000, 100_000, 200_000, 300_000)
QUICK_CHECKPOINTS = (200, 400)


def rss_mib() -> float:
    """This process's resident set size (Linux: /proc/self/statm, in pages)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def alice(scope: Any) -> Principal | None:
    return Principal("alice", "alice")


async def measure(workdir: Path) -> dict[str, Any]:
    store = SQLiteStore(workdir / "mfa.sqlite3")
    app = MFAMiddleware(
        hello, MFAConfig(secret_keys=[MFA_SECRET], store=store, cookie_secure=False), identify=alice
    )
    rt = app.runtime
    now = rt.clock()
    item = Authenticator("app", "totp", "", now, secret=rt.keyring.encrypt("JBSWY3DPEHPK3PXP"))
    rt.run(authenticators.add("alice", now, item))
    user = rt.run(_user_epoch())
    base = SessionClaims("", rt.user_tag("alice"), int(now), int(now), int(now), user, 0, "totp")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    checkpoints = QUICK_CHECKPOINTS if scaled(0, 1) else CHECKPOINTS
    rows, done = [], 0
    gc.collect()
    start = rss_mib()
    for checkpoint in checkpoints:
        while done < checkpoint:
            cookie = rt.sessions.encode(replace(base, session_id=new_id()))
            header = f"{rt.cookie_name}={cookie}".encode()
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/",
                "root_path": "",
                "headers": [(b"cookie", header)],
                "client": ("127.0.0.1", 1),
                "scheme": "http",
            }
            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent[0]
            sent.clear()
            done += 1
        gc.collect()
        rows.append((checkpoint, rss_mib(), len(rt.verified_memo)))
    return {"start_mib": start, "rows": rows}


def _user_epoch() -> Any:
    from mfa_middleware.core.effects import get
    from mfa_middleware.core.records import UserRecord, user_key

    def epoch() -> Any:
        doc = yield from get(user_key("alice"))
        return UserRecord.from_doc(doc).epoch

    return epoch()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mfa-bench-memory-") as tmp:
        result = asyncio.run(measure(Path(tmp)))
    rows = result["rows"]
    start = result["start_mib"]
    last_two = [rss for _, rss, _ in rows[-2:]]
    flat = len(last_two) == 2 and last_two[1] - last_two[0] <= 0.05 * last_two[0]
    return {
        "title": "9. Resident memory of one worker as distinct verified sessions pass",
        "columns": ["sessions", "RSS MiB", "growth MiB", "memo entries"],
        "rows": [
            [f"{n:,}", f"{rss:.1f}", f"{rss - start:+.1f}", f"{memo:,}"] for n, rss, memo in rows
        ],
        "data": {"start_mib": start, "rows": rows},
        "targets": [
            target(
                "memory.bounded",
                "One worker's memory is bounded: the last two checkpoints within 5%",
                "flat",
                round(last_two[-1] - start, 1) if last_two else None,
                flat,
                f"start {start:.1f} MiB; after {rows[-1][0]:,} sessions {rows[-1][1]:.1f} MiB",
            )
        ],
        "notes": [
            "Each session sends one request (its first): the gate runs once and the memo keeps"
            " its answer; the memo and the session-token cache hold two generations each.",
        ],
    }
