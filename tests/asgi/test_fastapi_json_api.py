"""The JSON API in the FastAPI example (issue 20 point 3): FastAPI's own OpenAPI document and
/docs describe it beside the app's routes, the document validates, and a front end enrolls and
signs in through it behind FastAPI's session (no AuthenticationMiddleware)."""

from __future__ import annotations

import secrets

import httpx
import pyotp
import pytest
from examples.fastapi_app.app import create_app
from fastapi import FastAPI
from openapi_spec_validator import validate
from pydantic import BaseModel

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.fastapi import include_mfa_api
from mfa_middleware.testing import FixedClock
from mfa_middleware.web.api import CALLS

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_docs_describe_the_app_and_the_2fa_api() -> None:
    app = create_app(store=MemoryStore())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        document = (await c.get("/openapi.json")).json()
        docs = await c.get("/docs")
    validate(document)
    assert "/billing" in document["paths"]  # the app's own routes
    ours = {path for path in document["paths"] if path.startswith("/_mfa/api/")}
    assert ours == {"/_mfa" + path for path, _ in CALLS}
    state = document["paths"]["/_mfa/api/state"]["get"]
    assert state["tags"] == ["Two-step verification"]
    assert "MFAProblem" in document["components"]["schemas"]
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


async def test_a_front_end_enrolls_and_signs_in_through_the_api() -> None:
    clock = FixedClock(1_800_000_000)
    app = create_app(store=MemoryStore(), clock=clock, recovery_code_count=0, trust_duration=0)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/login", data={"username": "alice", "password": "alice-password"})
        assert r.status_code == 303
        state = (await c.get("/_mfa/api/state")).json()
        assert state["state"] == "enroll"
        secret = (await c.get("/_mfa/api/enroll/totp")).json()["secret"]
        code = pyotp.TOTP(secret).at(clock())
        done = await c.post(
            "/_mfa/api/enroll/totp",
            json={"code": code},
            headers={"x-csrf-token": state["csrf_token"]},
        )
        assert done.status_code == 200, done.text
        assert (await c.get("/", headers={"accept": "application/json"})).json() == {
            "user": "alice"
        }


def test_the_apps_own_components_are_kept_and_a_clash_is_refused() -> None:
    """The app's own `Problem` schema stays the app's (ours are named MFA*); a component of
    the app's that would be overwritten by ours is a loud error, never a silent swap."""

    class Problem(BaseModel):  # the app's own error shape
        reason: str

    config = MFAConfig(secret_keys=[secrets.token_urlsafe(32)], store=MemoryStore())
    app = FastAPI()

    @app.get("/thing", responses={400: {"model": Problem}})
    def thing() -> dict[str, str]:
        return {}

    include_mfa_api(app, config)
    schemas = app.openapi()["components"]["schemas"]
    assert schemas["Problem"]["properties"] == {"reason": {"title": "Reason", "type": "string"}}
    assert "MFAProblem" in schemas

    clashing = FastAPI()

    class MFAProblem(BaseModel):
        mine: int

    @clashing.get("/thing", responses={400: {"model": MFAProblem}})
    def other() -> dict[str, str]:
        return {}

    include_mfa_api(clashing, config)
    with pytest.raises(ValueError, match="MFAProblem"):
        clashing.openapi()
