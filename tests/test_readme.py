"""The README's Quickstart and WSGI code run as pasted: each block is executed as it stands
(only the environment variables it reads are set), then a login is added the way its comments
say the app's own login works, and the first page after it asks to set up two-step
verification."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def run(code: str, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(code, f"README.md: {name}", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace


@pytest.fixture
def pasted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh folder (the blocks create mfa.sqlite3 there) and the secrets they read."""
    monkeypatch.chdir(tmp_path)
    for name in ("SESSION_SECRET", "MFA_SECRET", "FLASK_SECRET"):
        monkeypatch.setenv(name, secrets.token_urlsafe(48))


@pytest.mark.usefixtures("pasted")
@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
@pytest.mark.anyio
async def test_the_quickstart_runs_as_pasted(framework: str) -> None:
    from starlette.requests import Request
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    quickstart = run(python_block("## Quickstart (Starlette or FastAPI)"), "quickstart")

    async def login(request: Request) -> RedirectResponse:  # "your /login route"
        request.session.clear()
        request.session["user"] = "alice"
        return RedirectResponse("/", 303)

    routes = [*quickstart["app"].routes, Route("/login", login, methods=["POST"])]
    if framework == "fastapi":
        from fastapi import FastAPI

        app: Any = FastAPI(routes=routes, middleware=quickstart["middleware"])
    else:
        app = quickstart["app"]
        app.router.routes.append(routes[-1])
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        assert (await c.get("/")).status_code == 200  # anonymous: untouched
        assert (await c.post("/login")).status_code == 303
        gated = await c.get("/", headers={"accept": "text/html"})
        assert gated.status_code == 303
        assert gated.headers["location"].startswith("/_mfa/enroll")
        assert (await c.get("/_mfa/enroll/totp")).status_code == 200


@pytest.mark.usefixtures("pasted")
def test_the_wsgi_example_runs_as_pasted() -> None:
    from flask import redirect, session

    app = run(python_block("## Any WSGI app (Flask, ...)"), "wsgi_example")["app"]

    @app.post("/login")
    def login() -> Any:  # "your login view stores a new random login_id"
        session.clear()
        session["user"] = "alice"
        session["login_id"] = secrets.token_urlsafe(16)
        return redirect("/", 303)

    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    assert client.post("/login", base_url="https://localhost").status_code == 303
    gated = client.get("/", base_url="https://localhost", headers={"accept": "text/html"})
    assert gated.status_code == 303
    assert gated.headers["location"].startswith("/_mfa/enroll")


def test_the_testing_helpers_block_runs_as_pasted() -> None:
    namespace = run(python_block("## Testing your app"), "readme_testing")
    assert namespace["store"].down
    assert namespace["clock"]() == namespace["config"].clock()
    code = namespace["totp_code"]("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", namespace["clock"]())
    assert len(code) == 6
    assert code.isdigit()
