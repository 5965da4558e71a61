"""Section 11: the JSON API next to the pages (issue 20).

A verified session of the Starlette demo (memory store), driven in-process through
httpx's ASGI transport, side by side:
  page   GET /_mfa/settings: the session resolved, the recovery codes counted, the page
         rendered (Jinja2) with its security headers
  api    GET /_mfa/api/state: the same session and store reads, answered as JSON (the user's
         methods, the MFA state, a CSRF token)
Both run the same router and core; the difference is rendering a template against encoding
a small JSON object.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from examples.starlette_app.app import create_app

from bench.common import MFA_SECRET, interleaved_sync, scaled, simple_ratio, target
from mfa_middleware import MemoryStore


def signed_in_client() -> tuple[httpx.AsyncClient, asyncio.AbstractEventLoop]:
    """alice, enrolled and verified in one browser of the demo (its cookies in the client)."""
    app = create_app(store=MemoryStore(), secret_keys=[MFA_SECRET], trust_duration=0)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")
    html = {"accept": "text/html"}

    async def sign_up() -> None:
        form = (await client.get("/login")).text
        csrf = re.search(r'name="csrf" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
        data = {"username": "alice", "password": "alice-password", "csrf": csrf}
        await client.post("/login", data=data)
        state = (await client.get("/_mfa/api/state")).json()
        secret = (await client.get("/_mfa/api/enroll/totp")).json()["secret"]
        code = pyotp.TOTP(secret).at(time.time())
        headers = {"x-csrf-token": state["csrf_token"]}
        done = await client.post("/_mfa/api/enroll/totp", json={"code": code}, headers=headers)
        assert done.status_code == 200, done.text
        assert (await client.get("/_mfa/settings", headers=html)).status_code == 200

    loop.run_until_complete(sign_up())
    return client, loop


def sampler(
    client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, path: str, accept: str
) -> Callable[[int], int]:
    headers = {"accept": accept}

    async def many(n: int) -> int:
        began = time.perf_counter_ns()
        for _ in range(n):
            r = await client.get(path, headers=headers)
            assert r.status_code == 200
        return time.perf_counter_ns() - began

    return lambda n: loop.run_until_complete(many(n))


def run() -> dict[str, Any]:
    client, loop = signed_in_client()
    variants = {
        "page": sampler(client, loop, "/_mfa/settings", "text/html"),
        "api": sampler(client, loop, "/_mfa/api/state", "application/json"),
    }
    summaries = interleaved_sync(variants, rounds=scaled(15, 3), target_ns=scaled(40, 2) * 10**6)
    loop.run_until_complete(client.aclose())
    loop.close()
    page, api = summaries["page"], summaries["api"]
    ratio = simple_ratio(api, page)
    (p25, p75), (a25, a75) = page.quartiles(), api.quartiles()
    shown = f"{ratio['ratio']:.2f}" if ratio["ratio"] is not None else "-"
    return {
        "title": "11. The JSON API next to the pages (in-process, memory store)",
        "columns": ["request", "median µs", "p25-p75 µs", "vs the page"],
        "rows": [
            ["GET /_mfa/settings (HTML)", f"{page.median:.0f}", f"{p25:.0f}-{p75:.0f}", "1.00"],
            ["GET /_mfa/api/state (JSON)", f"{api.median:.0f}", f"{a25:.0f}-{a75:.0f}", shown],
        ],
        "data": {"page": page.to_json(), "api": api.to_json(), "ratio": ratio},
        "targets": [
            target(
                "api.state",
                "The API's state call next to the settings page it stands for (measured, no"
                " goal: both are called once per screen, never on the verified-request path)",
                "reported",
                ratio["ratio"],
                None,
                f"page {page.median:.0f} µs, API {api.median:.0f} µs",
            )
        ],
        "notes": [
            "Each request goes through the whole demo stack (sessions, authentication, the"
            " middleware, the router); only the answer's form differs.",
        ],
    }
