"""The JSON API (issue 20 point 3) behind the Django middleware, sync and async: Django's own
CSRF middleware does not stand in its way (the middleware answers before any view), and ours
does (the X-CSRF-Token header); a front end enrolls and signs in through it."""

from __future__ import annotations

import json

import pyotp
import pytest
from django.test import AsyncClient, Client

from mfa_middleware.stores.base import Store

JSON = "application/json"


def test_a_front_end_enrolls_and_signs_in_through_the_api(mfa_store: Store) -> None:
    client = Client(enforce_csrf_checks=True)  # as a browser: Django's CSRF checks on
    assert client.login(username="alice", password="alice-password")
    state = client.get("/_mfa/api/state").json()
    assert state["state"] == "enroll"
    secret = client.get("/_mfa/api/enroll/totp").json()["secret"]
    code = pyotp.TOTP(secret).now()
    refused = client.post("/_mfa/api/enroll/totp", json.dumps({"code": code}), content_type=JSON)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    done = client.post(
        "/_mfa/api/enroll/totp",
        json.dumps({"code": code}),
        content_type=JSON,
        headers={"x-csrf-token": state["csrf_token"]},
    )
    assert done.status_code == 200, done.content
    assert client.get("/_mfa/api/state").json()["state"] == "done"
    assert client.get("/account/").status_code == 200


@pytest.mark.anyio
async def test_the_async_path_answers_problems_too(mfa_store: Store) -> None:
    client = AsyncClient()
    await client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    state = await client.get("/_mfa/api/state")
    assert state.status_code == 200
    token = state.json()["csrf_token"]
    bad = await client.post(
        "/_mfa/api/enroll/totp", b"{nope", content_type=JSON, headers={"x-csrf-token": token}
    )
    assert bad.status_code == 400
    assert bad["content-type"] == "application/problem+json"
    assert bad.json()["code"] == "bad_json"
