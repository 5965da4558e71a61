"""`python -m bench.serve PORT VARIANT DATA_DIR`: the Starlette example under uvicorn.

VARIANT `ours`: the example as shipped (SQLite store in DATA_DIR). `bare`: the same app with
our middleware taken out of its middleware list (its session and auth middleware stay).
`floor`: ours replaced by the least gate (`bench.floor.LeastGate`) reading the change signal of
its own SQLite store: a lower bound for `ours`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from examples.starlette_app.app import create_app
from starlette.middleware import Middleware

from bench.common import MFA_SECRET
from bench.floor import LeastGate
from mfa_middleware import MFAMiddleware, SQLiteStore
from mfa_middleware.core.effects import Key


def main() -> None:
    port, variant, data = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    app = create_app(store=SQLiteStore(data / "mfa.sqlite3"), secret_keys=[MFA_SECRET])
    ours: object = MFAMiddleware
    if variant == "bare":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ours]
    elif variant == "floor":
        store = SQLiteStore(data / "floor.sqlite3")
        store.get(Key("bench", "floor", "open"))  # opens the store and its change signal
        config = next(m.kwargs["config"] for m in app.user_middleware if m.cls is ours)
        name = config.sessions.cookie_name
        shm = Path(f"{store.path}-shm")
        gate = Middleware(LeastGate, cookie_name=name, shm=shm)
        app.user_middleware = [gate if m.cls is ours else m for m in app.user_middleware]
    elif variant != "ours":
        raise SystemExit(f"unknown variant {variant!r}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
