"""`python -m examples.starlette_app`: serve the demo on http://localhost:8000 (bound to
127.0.0.1; passkeys need the name localhost, browsers refuse them on an IP address)."""

from __future__ import annotations

import os

import uvicorn

from examples.starlette_app.app import DATA_DIR, create_app


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    print(
        f"Demo app on http://localhost:{port}  (users: alice / alice-password, "
        f"bob / bob-password; 2FA state in {DATA_DIR})"
    )
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    main()
