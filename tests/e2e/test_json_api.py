"""The JSON API for single-page apps (issue 20 point 3), through the Starlette demo as a front
end calls it with fetch(): the app's login cookie, the MFA cookie, the CSRF header, JSON
bodies. Every step the pages offer (enrolling an app, a passkey, a phone or an address; the
challenge, codes sent, recovery codes; trusting a browser; devices, authenticators, recovery
codes, other sessions; signing out), the refusals as RFC 9457 problems (bad JSON, wrong types,
huge bodies, no CSRF token, the wrong state, step-up), never a 500, and the same events as the
pages."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.web.api import CALLS
from mfa_middleware.web.openapi import build
from tests.e2e.helpers import (
    FixedClock,
    client,
    enroll,
    is_verified,
    login,
    make_app,
    relogin,
    senders,
    totp,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble
from tests.support.webauthn import SoftAuthenticator

pytestmark = pytest.mark.anyio

API = "/_mfa/api"
PROBLEM = "application/problem+json"
DOCUMENT = build("/_mfa", "Demo app")
ANSWERED: set[tuple[str, str]] = set()  # every call whose 200 was checked, for the last test


def conforms(method: str, path: str, r: httpx.Response) -> None:
    """A 200 of the call `method path` is what the OpenAPI document says it answers."""
    if r.status_code != 200:
        return
    operation = DOCUMENT["paths"][f"{API}/{path}"][method.lower()]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    rooted = {**schema, "components": DOCUMENT["components"]}  # for its $refs
    jsonschema.validate(r.json(), rooted, cls=jsonschema.Draft202012Validator)
    ANSWERED.add((f"/api/{path}", method))


class Api:
    """A single-page app's calls: JSON in and out, the CSRF token of `state` on each POST."""

    def __init__(self, c: httpx.AsyncClient) -> None:
        self.c = c
        self.csrf = ""

    async def state(self) -> dict[str, Any]:
        r = await self.c.get(f"{API}/state")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        conforms("GET", "state", r)
        body: dict[str, Any] = r.json()
        self.csrf = body["csrf_token"]
        return body

    async def get(self, path: str, **params: str) -> httpx.Response:
        r = await self.c.get(f"{API}/{path}", params=params)
        conforms("GET", path, r)
        return r

    async def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        if not self.csrf:
            await self.state()
        sent = {"x-csrf-token": self.csrf, **headers}
        if body is None:
            r = await self.c.post(f"{API}/{path}", headers=sent)
        else:
            r = await self.c.post(f"{API}/{path}", json=body, headers=sent)
        conforms("POST", path, r)
        if r.status_code == 200 and "csrf_token" in r.json():  # a new session, a new token
            self.csrf = r.json()["csrf_token"]
        return r


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`r` is the RFC 9457 problem `code` with `status`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["type"] == f"urn:mfa-middleware:problem:{code}"
    assert body["status"] == status
    assert body["title"]
    return body


async def api_sign_up(api: Api, clock: FixedClock, user: str = "alice") -> str:
    """Log in and enroll an authenticator app through the API; returns its secret."""
    await login(api.c, user)
    state = await api.state()
    assert state["state"] == "enroll"
    secret = (await api.get("enroll/totp")).json()["secret"]
    r = await api.post("enroll/totp", {"code": totp(secret, clock())})
    assert r.status_code == 200, r.text
    return str(secret)


async def test_enroll_an_app_then_sign_in_with_its_code(clock: FixedClock) -> None:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    app = make_app(clock, store, recovery_code_count=10, on_event=events.append)
    async with client(app) as c:
        api = Api(c)
        await login(c)
        state = await api.state()
        assert state["state"] == "enroll"
        assert state["user"] == "alice"
        assert state["methods"] == []
        assert "totp" in state["enroll_methods"]
        assert state["mfa"]["verified"] is False
        r = await api.get("enroll/totp")
        assert r.status_code == 200, r.text
        secret = r.json()["secret"]
        assert r.json()["otpauth_uri"].startswith("otpauth://totp/")
        assert r.json()["qr_svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
        assert r.json()["qr_data_uri"].startswith("data:image/svg+xml")
        assert (await api.get("enroll/totp")).json()["secret"] == secret  # same for the session
        wrong = await api.post("enroll/totp", {"code": wrong_code(secret, clock())})
        assert problem(wrong, 400, "wrong_code")["attempts_left"] >= 1
        assert not await is_verified(c)
        done = await api.post("enroll/totp", {"code": totp(secret, clock()), "name": "Phone"})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "done"
        assert len(done.json()["recovery_codes"]) == 10
        assert await is_verified(c)
        assert (await api.state())["state"] == "done"

        await relogin(c)
        state = await api.state()
        assert state["state"] == "challenge"
        assert state["methods"] == ["totp"]
        assert state["method"] == "totp"
        assert (await api.get("challenge")).json() == {"method": "totp", "digits": 6}
        clock.advance(30)
        problem(await api.post("challenge", {"code": "12"}), 400, "malformed_code")
        problem(
            await api.post("challenge", {"code": wrong_code(secret, clock())}), 400, "wrong_code"
        )
        r = await api.post("challenge", {"method": "totp", "code": totp(secret, clock())})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "state": "done",
            "verified": True,
            "trust_offered": False,
            "csrf_token": api.csrf,
        }
        assert "mfa_session=" in r.headers["set-cookie"]
        assert await is_verified(c)
    names = [e["event"] for e in events]
    assert names.count("enrolled") == 1
    assert names.count("verify_succeeded") == 2  # enrolling, then signing in
    assert names.count("verify_failed") == 2  # the malformed code was no guess


async def test_the_api_and_the_pages_emit_the_same_events(clock: FixedClock) -> None:
    """The same journey (enroll, a wrong code, a right one) through the pages and through the
    API: the same events, in the same order (they call the same core)."""
    journeys: list[list[str]] = []
    for use_api in (False, True):
        events: list[dict[str, Any]] = []
        app = make_app(FixedClock(), MemoryStore(), on_event=events.append)
        async with client(app) as c:
            api = Api(c)
            when = FixedClock()
            if use_api:
                secret = await api_sign_up(api, when)
            else:
                await login(c)
                secret = await enroll(c, when)
            del secret
        journeys.append([e["event"] for e in events if e["event"] != "page_view"])
    assert journeys[0] == journeys[1]


async def test_codes_by_email_and_sms_through_the_api(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, MemoryStore(), **senders(mailbox, twilio))
    async with client(app) as c:
        api = Api(c)
        await login(c, "bob")
        await api.state()
        bad = await api.post("enroll/sms", {"phone": "12", "region": "US"})
        assert problem(bad, 400, "invalid_phone")["field"] == "phone"
        sent = await api.post("enroll/sms", {"phone": "(201) 555-0123", "region": "US"})
        assert sent.status_code == 200, sent.text
        assert sent.json()["sent"] is True
        assert sent.json()["channel"] == "sms"
        assert "0123" in sent.json()["masked"]
        assert "555" not in sent.json()["masked"]
        code = twilio.last_code()
        again = await api.post("enroll/code", {"resend": True})
        problem(again, 429, "resend_too_soon")
        done = await api.post("enroll/code", {"code": code})
        assert done.status_code == 200, done.text
        assert done.json()["enrolled"] == "sms"

        await relogin(c, "bob")
        assert (await api.state())["method"] == "sms"
        started = await api.get("challenge")
        assert started.status_code == 200, started.text
        assert started.json()["method"] == "sms"
        assert started.json()["sent"] is True
        r = await api.post("challenge", {"code": twilio.last_code()})
        assert r.status_code == 200, r.text
        assert await is_verified(c)

    async with client(app) as c:
        api = Api(c)
        await login(c, "carol")
        await api.state()
        sent = await api.post("enroll/email", {})  # the app knows her address: that one
        assert sent.status_code == 200, sent.text
        assert sent.json()["masked"].endswith("@example.com")
        code = mailbox.last_code()
        done = await api.post("enroll/code", {"code": code})
        assert done.status_code == 200, done.text
        assert done.json()["enrolled"] == "email"


async def test_a_recovery_code_signs_in_and_a_new_set_replaces_the_old(clock: FixedClock) -> None:
    app = make_app(clock, MemoryStore(), recovery_code_count=10)
    async with client(app) as c:
        api = Api(c)
        await login(c)
        await api.state()
        secret = (await api.get("enroll/totp")).json()["secret"]
        codes = (await api.post("enroll/totp", {"code": totp(secret, clock())})).json()[
            "recovery_codes"
        ]
        await relogin(c)
        await api.state()
        problem(await api.post("recovery", {"code": "0000-0000-0000-0000"}), 400, "wrong_code")
        r = await api.post("recovery", {"code": codes[0]})
        assert r.status_code == 200, r.text
        assert r.json()["recovery_codes_left"] == 9
        assert await is_verified(c)
        new = await api.post("recovery/regenerate")
        assert new.status_code == 200, new.text
        assert len(new.json()["recovery_codes"]) == 10
        assert set(new.json()["recovery_codes"]).isdisjoint(codes)


async def test_trust_devices_and_authenticators(clock: FixedClock) -> None:
    app = make_app(clock, MemoryStore(), trust_duration="30d")
    async with client(app) as c:
        api = Api(c)
        secret = await api_sign_up(api, clock)
        await relogin(c)
        await api.state()
        clock.advance(30)
        r = await api.post("challenge", {"code": totp(secret, clock())})
        assert r.json()["trust_offered"] is True
        problem(await api.post("trust", {}), 400, "missing_field")
        trusted = await api.post("trust", {"trust": True, "name": "Work laptop"})
        assert trusted.status_code == 200, trusted.text
        assert trusted.json() == {"trusted": True, "days": 30}
        await relogin(c)
        assert (await api.state())["state"] == "done"  # a trusted browser: no code
        assert (await api.state())["mfa"]["trusted_device"] is True

        listed = (await api.get("devices")).json()["devices"]
        assert [d["name"] for d in listed] == ["Work laptop"]
        assert listed[0]["current"]
        assert listed[0]["trusted"]
        device = listed[0]["id"]
        renamed = await api.post("devices", {"device": device, "action": "rename", "name": "Mac"})
        assert renamed.json()["devices"][0]["name"] == "Mac"
        problem(await api.post("devices", {"device": "nope", "action": "delete"}), 404, "not_found")
        problem(await api.post("devices", {"device": device, "action": "fly"}), 400, "bad_action")

        # a trusted device's word is not enough to change a way to sign in: step up first
        stepped = await api.get("authenticators")
        assert problem(stepped, 401, "insufficient_user_authentication")["max_age"] > 0
        clock.advance(30)
        again = await api.post("challenge", {"code": totp(secret, clock()), "reauth": True})
        assert again.status_code == 200, again.text
        items = (await api.get("authenticators")).json()["authenticators"]
        assert len(items) == 1
        only = items[0]["id"]
        last = await api.post("authenticators", {"authenticator": only, "action": "remove"})
        problem(last, 409, "last_authenticator")
        named = await api.post(
            "authenticators", {"authenticator": only, "action": "rename", "name": "Old phone"}
        )
        assert named.json()["authenticators"][0]["name"] == "Old phone"
        deleted = await api.post("devices", {"device": device, "action": "delete"})
        assert deleted.json()["devices"] == []


async def test_a_passkey_through_the_api(clock: FixedClock) -> None:
    origin = "http://localhost"
    passkeys = {
        "webauthn_enabled": True,
        "webauthn_rp_id": "localhost",
        "webauthn_origins": [origin],
    }
    app = make_app(clock, MemoryStore(), **passkeys)
    key = SoftAuthenticator(attachment="platform", transports=("internal",))
    async with client(app, base_url=origin) as c:
        api = Api(c)
        await login(c)
        await api.state()
        options = (await api.get("enroll/passkey")).json()["options"]
        assert options["rp"]["id"] == "localhost"
        posted = key.register(options["challenge"], origin, "localhost")
        added = await api.post("enroll/passkey", {"credential": posted, "name": "Laptop"})
        assert added.status_code == 200, added.text
        assert added.json()["enrolled"] == "webauthn"
        await relogin(c)
        state = await api.state()
        assert state["methods"] == ["webauthn"]
        asked = (await api.get("challenge", method="webauthn")).json()
        junk = {"id": "x", "rawId": "x", "type": "public-key", "response": {}}
        refused = await api.post("challenge", {"method": "webauthn", "credential": junk})
        problem(refused, 400, "passkey_refused")  # said as a passkey's, not as a code's
        asked = (await api.get("challenge", method="webauthn")).json()
        assertion = key.assertion(asked["options"]["challenge"], origin, "localhost")
        r = await api.post("challenge", {"method": "webauthn", "credential": assertion})
        assert r.status_code == 200, r.text
        assert (await api.state())["mfa"]["amr"] == ["hwk"]  # bound to this device: not synced


async def test_bad_requests_get_problems_never_a_500(clock: FixedClock) -> None:
    async with client(make_app(clock, MemoryStore())) as c:
        problem(await c.get(f"{API}/state"), 401, "login_required")
        api = Api(c)
        await login(c)
        state = await api.state()
        token = state["csrf_token"]
        url = f"{API}/enroll/totp"
        json_type = {"content-type": "application/json"}
        problem(await c.post(url, json={"code": "123456"}), 403, "csrf_failed")
        problem(
            await c.post(url, json={"code": "1"}, headers={"x-csrf-token": "x" + token}),
            403,
            "csrf_failed",
        )
        ok_headers = {"x-csrf-token": token, **json_type}
        problem(await c.post(url, content=b"{not json", headers=ok_headers), 400, "bad_json")
        problem(await c.post(url, content=b"\xff\xfe", headers=ok_headers), 400, "bad_json")
        problem(await c.post(url, content=b"[1, 2]", headers=ok_headers), 400, "bad_json")
        wrong = await c.post(url, json={"code": 123456}, headers=ok_headers)
        assert problem(wrong, 400, "wrong_type")["field"] == "code"
        problem(
            await c.post(url, json={"code": "1", "admin": True}, headers=ok_headers),
            400,
            "unknown_field",
        )
        problem(await c.post(url, json={}, headers=ok_headers), 400, "missing_field")
        problem(await c.post(url, json={"code": "1" * 100}, headers=ok_headers), 400, "too_long")
        huge = json.dumps({"code": "1" * 100_000}).encode()
        problem(await c.post(url, content=huge, headers=ok_headers), 413, "body_too_large")
        form = {"x-csrf-token": token, "content-type": "application/x-www-form-urlencoded"}
        problem(await c.post(url, content=b"code=1", headers=form), 415, "unsupported_media_type")
        problem(await c.get(f"{API}/nothing"), 404, "not_found")
        problem(await c.delete(f"{API}/state"), 405, "method_not_allowed")
        # a step that does not fit the state: the state and the page the HTML flow would show
        wrong_state = problem(await api.post("challenge", {"code": "123456"}), 409, "wrong_state")
        assert wrong_state["state"] == "enroll"
        assert wrong_state["location"].startswith("/_mfa/enroll")
        # `next` (documented as a query parameter): carried when same-site, else dropped
        for asked, location in (
            ("/reports", "/_mfa/enroll?next=%2Freports"),
            ("//evil.example", "/_mfa/enroll"),
        ):
            r = await c.post(f"{API}/challenge?next={asked}", json={}, headers=ok_headers)
            assert problem(r, 409, "wrong_state")["location"] == location


async def test_lockout_and_sign_out(clock: FixedClock) -> None:
    async with client(make_app(clock, MemoryStore())) as c:
        api = Api(c)
        secret = await api_sign_up(api, clock)
        await relogin(c)
        await api.state()
        body: dict[str, Any] = {}
        for _ in range(20):
            r = await api.post("challenge", {"code": wrong_code(secret, clock())})
            if r.status_code == 429:
                body = problem(r, 429, "locked")
                break
        assert body["retry_after"] >= 1
        assert body["permanent"] is False
        problem(await api.get("challenge"), 429, "locked")
        out = await api.post("logout")
        assert out.status_code == 200, out.text
        assert out.json() == {"state": "login", "location": "/login"}
        problem(await c.get(f"{API}/state"), 401, "login_required")  # the app's login is over


async def test_the_openapi_document_describes_every_call(clock: FixedClock) -> None:
    from openapi_spec_validator import validate

    async with client(make_app(clock, MemoryStore())) as c:
        r = await c.get(f"{API}/openapi.json")  # no login needed: it holds nothing
        assert r.status_code == 200
        document = r.json()
    validate(document)
    documented = {
        (path.removeprefix("/_mfa"), method.upper())
        for path, methods in document["paths"].items()
        for method in methods
    }
    assert documented == set(CALLS)
    challenge = document["paths"]["/_mfa/api/challenge"]
    schema = challenge["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["reauth"] == {"type": "boolean"}
    assert re.fullmatch(r"\w+", challenge["post"]["operationId"])
    assert [p["name"] for p in challenge["get"]["parameters"]] == ["method", "reauth", "next"]
    assert "same-site path" in challenge["post"]["parameters"][0]["description"]
    assert "parameters" not in document["paths"]["/_mfa/api/state"]["get"]  # reads no `next`
    states = document["paths"]["/_mfa/api/state"]["get"]["responses"]["200"]["content"]
    assert states["application/json"]["schema"]["properties"]["mfa"] == {
        "$ref": "#/components/schemas/MFAState"
    }


POSTS = sorted(path for path, method in CALLS if method == "POST")


@pytest.mark.checklist("SES-17")
@pytest.mark.parametrize("path", POSTS)
async def test_every_post_needs_this_sessions_csrf_token(clock: FixedClock, path: str) -> None:
    """No token, or another session's: 403 before anything is read or changed; a POST-only
    call asked for by GET: 405."""
    app = make_app(clock, MemoryStore())
    async with client(app) as other, client(app) as c:
        await login(other, "bob")
        their_token = (await Api(other).state())["csrf_token"]
        await login(c)
        await Api(c).state()
        url = "/_mfa" + path
        problem(await c.post(url, json={}), 403, "csrf_failed")
        problem(
            await c.post(url, json={}, headers={"x-csrf-token": their_token}), 403, "csrf_failed"
        )
        if (path, "GET") not in CALLS:
            problem(await c.get(url), 405, "method_not_allowed")


async def test_turning_2fa_off_and_the_lost_device_link(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    options = {**senders(mailbox, twilio), "public_url": "http://testserver", "mode": "optional"}
    app = make_app(clock, MemoryStore(), **options)
    async with client(app) as c:
        api = Api(c)
        await login(c)
        assert (await api.state())["state"] == "done"  # optional: not asked to enroll
        secret = (await api.get("enroll/totp")).json()["secret"]
        assert (await api.post("enroll/totp", {"code": totp(secret, clock())})).status_code == 200
        await relogin(c)
        assert (await api.state())["state"] == "challenge"
        sent = await api.post("lost")
        assert sent.json() == {"sent": True}
        assert "lost/confirm?token=" in mailbox.text_of(mailbox.messages[-1])
        clock.advance(30)
        await api.post("challenge", {"code": totp(secret, clock())})
        clock.advance(3600)  # the code is no longer recent: a fresh one first
        problem(await api.post("disable"), 401, "insufficient_user_authentication")
        clock.advance(30)
        await api.post("challenge", {"code": totp(secret, clock()), "reauth": True})
        off = await api.post("disable")
        assert off.status_code == 200, off.text
        state = await api.state()
        assert state["methods"] == []
        assert state["state"] == "done"  # optional mode: on without a second step


@pytest.mark.parametrize("path", POSTS)
async def test_every_post_refuses_a_bad_body_with_a_problem(clock: FixedClock, path: str) -> None:
    """Bad JSON, a list, a field of the wrong type or unknown, a huge body, a form: each a
    problem naming what is wrong, before anything is read or changed, on every call."""
    async with client(make_app(clock, MemoryStore())) as c:
        await login(c)
        token = (await Api(c).state())["csrf_token"]
        url = "/_mfa" + path
        headers = {"x-csrf-token": token, "content-type": "application/json"}
        problem(await c.post(url, content=b'{"code": ', headers=headers), 400, "bad_json")
        problem(await c.post(url, content=b'["code"]', headers=headers), 400, "bad_json")
        problem(await c.post(url, json={"nope": 1}, headers=headers), 400, "unknown_field")
        fields = CALLS[(path, "POST")].fields
        if fields:
            name, spec = next(iter(fields.items()))
            wrong = 1 if spec.type != "boolean" else "yes"
            assert (
                problem(await c.post(url, json={name: wrong}, headers=headers), 400, "wrong_type")[
                    "field"
                ]
                == name
            )
        huge = b'{"x": "' + b"1" * 40_000 + b'"}'
        problem(await c.post(url, content=huge, headers=headers), 413, "body_too_large")
        form = {**headers, "content-type": "application/x-www-form-urlencoded"}
        problem(await c.post(url, content=b"a=1", headers=form), 415, "unsupported_media_type")


async def test_a_new_code_by_sms_at_the_challenge_and_other_sessions_signed_out(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    app = make_app(clock, MemoryStore(), **senders(mailbox, twilio))
    async with client(app) as c, client(app) as other:
        api = Api(c)
        await login(c, "bob")
        await api.state()
        await api.post("enroll/sms", {"phone": "(201) 555-0123", "region": "US"})
        assert (await api.post("enroll/code", {"code": twilio.last_code()})).status_code == 200
        await login(other, "bob")  # his other browser: asked for a code
        other_api = Api(other)
        assert (await other_api.state())["state"] == "challenge"
        first = (await other_api.get("challenge")).json()
        assert first["sent"] is True
        problem(await other_api.post("challenge/send", {}), 429, "resend_too_soon")
        clock.advance(61)
        again = await other_api.post("challenge/send", {})
        assert again.status_code == 200, again.text
        assert again.json()["channel"] == "sms"
        code = twilio.last_code()
        unknown = await other_api.post("challenge/send", {"method": "totp"})
        assert problem(unknown, 400, "unknown_method")["methods"] == ["sms"]  # not one of his
        assert (await other_api.post("challenge", {"code": code})).status_code == 200
        assert await is_verified(other)
        ended = await api.post("sessions/others")
        assert ended.status_code == 200, ended.text
        assert ended.json()["ended_others"] is True
        assert await is_verified(c)  # this one carries on
        assert not await is_verified(other)  # the other must enter a code again


async def test_the_enrollment_code_after_a_reset_and_the_default_authenticator(
    clock: FixedClock,
) -> None:
    from mfa_middleware.admin import Admin

    app = make_app(clock, MemoryStore(), enroll_code_ttl="72h", email_sender=None)
    async with client(app) as c:
        api = Api(c)
        secret = await api_sign_up(api, clock)
        clock.advance(30)
        second = (await api.get("enroll/totp")).json()["secret"]
        added = await api.post("enroll/totp", {"code": totp(second, clock()), "name": "Tablet"})
        assert added.status_code == 200, added.text
        items = (await api.get("authenticators")).json()["authenticators"]
        tablet = next(i for i in items if i["name"] == "Tablet")
        made = await api.post(
            "authenticators", {"authenticator": tablet["id"], "action": "default"}
        )
        assert next(i for i in made.json()["authenticators"] if i["default"])["name"] == "Tablet"
        del secret

        layer = app.middleware_stack
        while not hasattr(layer, "runtime"):
            layer = layer.app  # type: ignore[attr-defined]
        handover = Admin(layer.runtime, "cli:test").reset("alice").handover  # type: ignore[attr-defined]
        assert handover
        await relogin(c)
        state = await api.state()
        assert state["state"] == "enroll"
        assert state["enroll_code_required"] is True
        refused = problem(await api.get("enroll/totp"), 409, "wrong_state")  # the code first
        assert refused["location"] == "/_mfa/enroll/unlock"
        problem(await api.post("enroll/unlock", {"code": "aaaa-bbbb-cccc-dddd"}), 400, "wrong_code")
        unlocked = await api.post("enroll/unlock", {"code": handover})
        assert unlocked.status_code == 200, unlocked.text
        assert (await api.get("enroll/totp")).status_code == 200
        assert (await api.state())["enroll_code_required"] is False


async def test_what_a_review_found(clock: FixedClock) -> None:
    """Deep JSON, an ended session, a method the site does not offer, the enrollment code with
    none waiting, the trust prompt after enrolling, and the headers beside the problems."""
    app = make_app(clock, MemoryStore(), session_lifetime="1h", trust_duration="30d")
    async with client(app) as c:
        api = Api(c)
        await login(c)
        state = await api.state()
        headers = {"x-csrf-token": state["csrf_token"], "content-type": "application/json"}
        deep = b'{"code": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # a RecursionError in json
        problem(await c.post(f"{API}/enroll/totp", content=deep, headers=headers), 400, "bad_json")
        padded = b" " * 20_000 + b'{"code": "12"}'  # larger than a form, smaller than the limit
        problem(
            await c.post(f"{API}/enroll/totp", content=padded, headers=headers),
            400,
            "malformed_code",
        )
        offered = problem(await api.get("enroll/passkey"), 404, "method_not_offered")
        assert "webauthn" not in offered["enroll_methods"]
        nothing = await api.post("enroll/unlock", {"code": "aaaa-bbbb-cccc-dddd"})
        problem(nothing, 409, "wrong_state")  # no code waiting: no attempt spent either
        secret = (await api.get("enroll/totp")).json()["secret"]
        done = await api.post("enroll/totp", {"code": totp(secret, clock())})
        assert done.json()["trust_offered"] is True  # as the pages: "Trust this device?" next
        await relogin(c)
        await api.state()
        for _ in range(10):
            locked = await api.post("challenge", {"code": wrong_code(secret, clock())})
            if locked.status_code == 429:
                break
        assert problem(locked, 429, "locked")["retry_after"] == int(locked.headers["retry-after"])
        clock.advance(7200)  # past the session's lifetime
        ended = problem(await api.get("state"), 401, "session_expired")
        assert ended["location"] == "/login"


async def test_a_step_up_problem_carries_rfc_9470s_header(clock: FixedClock) -> None:
    async with client(make_app(clock, MemoryStore())) as c:
        api = Api(c)
        await api_sign_up(api, clock)
        clock.advance(3600)
        asked = await api.get("authenticators")
        problem(asked, 401, "insufficient_user_authentication")
        assert 'error="insufficient_user_authentication"' in asked.headers["www-authenticate"]


async def test_an_expired_enrollment_code_says_so_and_spends_no_attempt(clock: FixedClock) -> None:
    from mfa_middleware.admin import Admin

    app = make_app(clock, MemoryStore(), enroll_code_ttl="1h", email_sender=None)
    async with client(app) as c:
        api = Api(c)
        await api_sign_up(api, clock)
        layer = app.middleware_stack
        while not hasattr(layer, "runtime"):
            layer = layer.app  # type: ignore[attr-defined]
        Admin(layer.runtime, "cli:test").reset("alice")  # type: ignore[attr-defined]
        clock.advance(7200)
        await relogin(c)
        await api.state()
        for _ in range(6):  # more than max_attempts: an expired code is no guess
            expired = await api.post("enroll/unlock", {"code": "aaaa-bbbb-cccc-dddd"})
            problem(expired, 400, "enroll_code_expired")


PUSH_CALLS = {call for call in CALLS if call[0].startswith("/api/approv")}


def test_every_answer_above_was_the_documented_one() -> None:
    """Every call but push approval's (tests/e2e/test_push_approval.py drives those through
    `Api` too) answered a 200 above, and each was checked against its schema; a body that
    drifts from its schema fails."""
    if not ANSWERED:
        pytest.skip("run with the tests above")
    assert set(CALLS) - PUSH_CALLS <= ANSWERED, sorted(set(CALLS) - PUSH_CALLS - ANSWERED)
    drifted = httpx.Response(200, json={"recovery_codes": "one"})
    with pytest.raises(jsonschema.ValidationError):
        conforms("POST", "recovery/regenerate", drifted)
    renamed = httpx.Response(200, json={"recovery_codes": [], "codes": []})
    with pytest.raises(jsonschema.ValidationError):  # no member the document does not name
        conforms("POST", "recovery/regenerate", renamed)
