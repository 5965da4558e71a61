"""Serve the Starlette example in its own process (for multi-worker and real-server tests).

python -X faulthandler -m tests.support.serve_example PORT
    env: MFA_SECRET, MFA_TEST_MAX_ATTEMPTS, and either
    MFA_TEST_REDIS_URL (MFA_TEST_LOCAL_CACHE=1, MFA_TEST_CACHE_TTL): a Redis store, or
    MFA_TEST_SQLITE_PATH (MFA_TEST_CHANGE_SIGNAL, MFA_TEST_SQLITE_TIMEOUT: its busy timeout
    in seconds): a SQLite store
"""

from __future__ import annotations

import os
import sys
from typing import cast

import uvicorn
from examples.starlette_app.app import create_app

from mfa_middleware.stores import SQLiteStore, Store
from mfa_middleware.stores.sqlite import ChangeSignal


def store_from_env() -> Store:
    path = os.environ.get("MFA_TEST_SQLITE_PATH")
    if path:
        signal = cast(ChangeSignal, os.environ.get("MFA_TEST_CHANGE_SIGNAL", "pread"))
        timeout = float(os.environ.get("MFA_TEST_SQLITE_TIMEOUT", "5"))
        return SQLiteStore(path, change_signal=signal, timeout=timeout)
    from mfa_middleware.stores.redis import RedisStore

    return RedisStore(
        os.environ["MFA_TEST_REDIS_URL"],
        local_cache=os.environ.get("MFA_TEST_LOCAL_CACHE") == "1",
        cache_ttl=float(os.environ.get("MFA_TEST_CACHE_TTL", "5")),
        socket_timeout=0.5,
    )


def main() -> None:
    port = int(sys.argv[1])
    attempts = int(os.environ.get("MFA_TEST_MAX_ATTEMPTS", "5"))
    app = create_app(store=store_from_env(), max_attempts=attempts, recovery_code_count=0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
