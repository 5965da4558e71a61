"""Per-route 2FA requirements for FastAPI: `Depends(require_mfa(max_age="5m"))`.

The dependency asks what a `two_factor` rule would on that route (see `web.stepup`) and
answers the same way, as an `HTTPException`: a browser is redirected (303) to confirm it's
them and comes back; an API client gets 401 with RFC 9470's `WWW-Authenticate` header and
the JSON the middleware sends, under FastAPI's `detail`. On success it returns the request's
`MFAState`, so a route can read how and when the user verified. `MFAMiddleware` must wrap the
app (it sets `scope["mfa"]`). `include_mfa_api(app, config)` adds the middleware's JSON API to
the app's OpenAPI document, so `/docs` shows it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from mfa_middleware.asgi import facts_from_scope
from mfa_middleware.config import MFAConfig
from mfa_middleware.core.mfa_state import ANONYMOUS_STATE, MFAState
from mfa_middleware.options import Duration
from mfa_middleware.web.openapi import build
from mfa_middleware.web.stepup import answer_requirement, need_of

PASSED_ON = ("location", "www-authenticate", "cache-control")


def require_mfa(
    max_age: Duration | None = None, *, device_ok: bool = True
) -> Callable[[Request], Awaitable[MFAState]]:
    """A dependency: the request's `MFAState` when it meets the requirement."""
    need = need_of(max_age, device_ok)

    async def mfa_state(request: Request) -> MFAState:
        state = request.scope.get("mfa")
        if not isinstance(state, MFAState):
            state = ANONYMOUS_STATE  # no middleware, or nobody signed in: refused below
        answer = answer_requirement(state, facts_from_scope(request.scope), None, need)
        if answer is None:
            return state
        headers = {name: value for name, value in answer.headers if name in PASSED_ON}
        is_json = any(
            v.startswith("application/json") for n, v in answer.headers if n == "content-type"
        )
        detail = json.loads(answer.body) if is_json else answer.body.decode() or None
        raise HTTPException(answer.status, detail=detail, headers=headers)

    return mfa_state


API_TAG = "Two-step verification"


def include_mfa_api(app: FastAPI, config: MFAConfig) -> None:
    """FastAPI's `/openapi.json` and `/docs` describe the middleware's JSON API beside the
    app's own routes (tagged "Two-step verification"), as `<prefix>/api/openapi.json` does.
    Call it once, after the routes; the middleware still serves the calls."""
    own = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = own()
        ours = build(config.pages.prefix, config.pages.app_name)
        for path, operations in ours["paths"].items():
            for operation in operations.values():
                operation["tags"] = [API_TAG]
            schema.setdefault("paths", {})[path] = operations
        components = schema.setdefault("components", {})
        for kind, items in ours["components"].items():
            theirs = components.setdefault(kind, {})
            clash = sorted(n for n in items if n in theirs and theirs[n] != items[n])
            if clash:  # ours are all named MFA*: never overwrite the app's silently
                raise ValueError(
                    f"include_mfa_api: the app's OpenAPI document already has {kind} named"
                    f" {', '.join(clash)}; rename the app's so both can be described"
                )
            theirs.update(items)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
