"""Serve the Starlette example on a Redis store in its own process (for multi-worker tests).

python -m tests.support.serve_example PORT   (env: MFA_TEST_REDIS_URL, MFA_SECRET,
                                              MFA_TEST_LOCAL_CACHE=1, MFA_TEST_MAX_ATTEMPTS)
"""

from __future__ import annotations

import os
import sys

import uvicorn
from examples.starlette_app.app import create_app

from mfa_middleware.stores.redis import RedisStore


def main() -> None:
    port = int(sys.argv[1])
    store = RedisStore(
        os.environ["MFA_TEST_REDIS_URL"],
        local_cache=os.environ.get("MFA_TEST_LOCAL_CACHE") == "1",
        cache_ttl=float(os.environ.get("MFA_TEST_CACHE_TTL", "5")),
        socket_timeout=0.5,
    )
    attempts = int(os.environ.get("MFA_TEST_MAX_ATTEMPTS", "5"))
    app = create_app(store=store, max_attempts=attempts, recovery_code_count=0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
