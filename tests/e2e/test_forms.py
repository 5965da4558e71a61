"""CSRF protection and malformed form input on the built-in pages: refused, never a 500."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from mfa_middleware import MemoryStore
from mfa_middleware.core import otp
from mfa_middleware.core.authenticators import kinds
from mfa_middleware.core.effects import Key
from mfa_middleware.core.records import UserRecord, user_key
from mfa_middleware.web.router import ROUTES
from tests.support.mail_and_sms import Mailbox, TwilioDouble
from tests.support.webpush import VapidKeys

from .helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    enroll,
    is_verified,
    login,
    make_app,
    relogin,
    secret_of,
    senders,
    sign_up,
    submit_code,
    totp,
)

pytestmark = pytest.mark.anyio


@pytest.mark.checklist("SES-17")
async def test_missing_csrf_is_refused_and_changes_nothing(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(30)
        code = totp(secret, clock())
        for data in ({"code": code, "next": "/account"}, {"code": code, "csrf": ""}):
            r = await c.post("/_mfa/challenge", data=data, headers=HTML)
            assert r.status_code == 403
            assert "did not come from this site" in r.text
            assert not await is_verified(c)
        r = await c.post(
            "/_mfa/challenge", data={"code": code}, headers={"accept": "application/json"}
        )
        assert r.status_code == 403
        assert r.json()["error"] == "csrf_failed"
        # The refused posts neither used the code nor counted as attempts.
        r = await submit_code(c, code)
        assert r.status_code == 303
        assert await is_verified(c)


@pytest.mark.checklist("SES-17")
async def test_csrf_token_of_another_session_is_refused(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c, client(app) as other:
        secret = await sign_up(c, clock)
        await relogin(c)
        old_page = await challenge_page(c)
        old_token = csrf_of(old_page.text)
        await relogin(c)
        await login(other)  # alice in another browser
        other_token = csrf_of((await challenge_page(other)).text)
        own_token = csrf_of((await challenge_page(c)).text)
        assert len({old_token, other_token, own_token}) == 3
        clock.advance(30)
        code = totp(secret, clock())
        for token in (other_token, old_token):
            r = await submit_code(c, code, csrf=token)
            assert r.status_code == 403
            assert not await is_verified(c)
        r = await submit_code(c, code, csrf=own_token)
        assert r.status_code == 303


@pytest.mark.checklist("SES-17")
async def test_enrollment_without_csrf_does_not_enroll(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        r = await c.post("/_mfa/enroll/totp", data={"code": totp(secret, clock())}, headers=HTML)
        assert r.status_code == 403
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        # Another session's token is no better.
        async with client(app) as other:
            await login(other)
            foreign = csrf_of((await other.get("/_mfa/enroll/totp", headers=HTML)).text)
        r = await c.post(
            "/_mfa/enroll/totp",
            data={"code": totp(secret, clock()), "csrf": foreign},
            headers=HTML,
        )
        assert r.status_code == 403
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"


def _fullwidth(code: str) -> str:
    return "".join(chr(0xFF10 + int(d)) for d in code)


@pytest.mark.checklist("TOTP-08", "RL-05")
async def test_malformed_challenge_input_never_500(clock: FixedClock) -> None:
    app = make_app(clock, max_attempts=20, failure_ceiling=20)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(30)
        code = totp(secret, clock())
        csrf = csrf_of((await challenge_page(c)).text)
        form = "application/x-www-form-urlencoded"
        cases: list[tuple[str, bytes | str, str]] = [
            ("missing", f"csrf={csrf}", form),
            ("empty", f"csrf={csrf}&code=", form),
            ("letters", f"csrf={csrf}&code=abc", form),
            ("fullwidth", f"csrf={csrf}&code={_fullwidth(code)}", form + "; charset=utf-8"),
            ("spaces", f"csrf={csrf}&code=+{code[:3]}+{code[3:]}+", form),
            ("long", f"csrf={csrf}&code={code * 1000}", form),
            ("repeated", f"csrf={csrf}&code=1&code=2", form),
            ("repeated-right", f"csrf={csrf}&code={code}&code={code}", form),
            ("huge", f"csrf={csrf}&code={code}&pad={'a' * 100_000}", form),
            (
                "multipart",
                f'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}'
                f'\r\n--x\r\nContent-Disposition: form-data; name="code"\r\n\r\n{code}\r\n--x--'
                "\r\n",
                "multipart/form-data; boundary=x",
            ),
            ("json", f'{{"csrf": "{csrf}", "code": "{code}"}}', "application/json"),
            ("no-type", f"csrf={csrf}&code={code}", ""),
            ("latin1", f"csrf={csrf}&code=".encode() + b"\xff\xfe", form),
            ("percent-garbage", f"csrf={csrf}&code=%ZZ%", form),
        ]
        statuses = {}
        for name, body, content_type in cases:
            headers = {**HTML, "content-type": content_type} if content_type else dict(HTML)
            content = body.encode() if isinstance(body, str) else body
            r = await c.post("/_mfa/challenge", content=content, headers=headers)
            statuses[name] = r.status_code
            assert r.status_code == 400, (name, r.status_code, r.text[:200])
            assert r.headers["cache-control"] == "no-store"
            assert not await is_verified(c), name
        assert statuses["repeated"] == 400
        # Nothing above consumed the code: it still works.
        r = await submit_code(c, code)
        assert r.status_code == 303
        assert await is_verified(c)


@pytest.mark.checklist("TOTP-08", "ENR-02")
async def test_malformed_enrollment_input_never_500(clock: FixedClock) -> None:
    app = make_app(clock, max_attempts=20, failure_ceiling=20)
    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret, csrf = secret_of(page.text), csrf_of(page.text)
        code = totp(secret, clock())
        form = {"content-type": "application/x-www-form-urlencoded", **HTML}
        for body in (
            f"csrf={csrf}",
            f"csrf={csrf}&code=",
            f"csrf={csrf}&code=abc",
            f"csrf={csrf}&code={_fullwidth(code)}",
            f"csrf={csrf}&code=1&code=2",
            f"csrf={csrf}&code={code}&pad={'a' * 100_000}",
        ):
            r = await c.post("/_mfa/enroll/totp", content=body.encode(), headers=form)
            assert r.status_code == 400, (body[:60], r.status_code)
            r = await c.get("/account", headers=HTML)
            assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        # The same pending secret is still offered and its code still enrolls.
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert secret_of(page.text) == secret
        r = await c.post("/_mfa/enroll/totp", data={"csrf": csrf, "code": code}, headers=HTML)
        assert r.status_code == 303
        assert await is_verified(c)


def _spy_on_evaluation(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TOTP generator the verifier builds (one per code it evaluates)."""
    built: list[Any] = []
    real = otp._totp

    def spy(*args: Any) -> Any:
        built.append(args)
        return real(*args)

    monkeypatch.setattr(otp, "_totp", spy)
    return built


@pytest.mark.checklist("TOTP-08")
async def test_malformed_codes_are_never_evaluated_and_never_succeed(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only exactly six ASCII digits reach the verifier: pyotp alone would NFKC-normalise a
    full-width copy of the right code and accept it."""
    app = make_app(clock, max_attempts=20, failure_ceiling=20)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        clock.advance(30)
        code = totp(secret, clock())
        csrf = csrf_of((await challenge_page(c)).text)
        evaluated = _spy_on_evaluation(monkeypatch)
        variants = [
            "",
            "      ",
            _fullwidth(code),
            "".join(chr(0x0660 + int(d)) for d in code),  # Arabic-Indic digits
            f" {code}",
            f"{code}\n",
            f"{code[:3]} {code[3:]}",
            code + "0",
            code[:-1],
            "+" + code[1:],
            code[:-1] + "a",
        ]
        for variant in variants:
            r = await c.post(
                "/_mfa/challenge",
                data={"csrf": csrf, "code": variant, "next": "/account"},
                headers=HTML,
            )
            assert r.status_code == 400, (variant, r.status_code)
            assert not await is_verified(c), variant
        r = await c.post("/_mfa/challenge", data={"csrf": csrf}, headers=HTML)  # no field
        assert r.status_code == 400
        assert evaluated == []
        assert (await submit_code(c, code)).status_code == 303  # and nothing spent it


@pytest.mark.checklist("TOTP-10")
async def test_a_huge_code_is_refused_before_anything_reads_it(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        await relogin(c)
        csrf = csrf_of((await challenge_page(c)).text)
        evaluated = _spy_on_evaluation(monkeypatch)
        r = await c.post(
            "/_mfa/challenge",
            data={"csrf": csrf, "code": "1" * 1_048_576, "next": "/account"},
            headers=HTML,
        )
        assert r.status_code == 400
        assert "could not be read" in r.text
        assert evaluated == []
        clock.advance(30)
        assert (await submit_code(c, totp(secret, clock()))).status_code == 303


@pytest.mark.checklist("TOTP-10")
async def test_codes_are_compared_in_constant_time(
    clock: FixedClock,
    mailbox: Mailbox,
    twilio: TwilioDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TOTP code, a code by email and a recovery code: each reaches its stored value only
    through `hmac.compare_digest` (an `==` would return at the first differing byte)."""
    store = MemoryStore()
    app = make_app(clock, store=store, recovery_code_count=2, **senders(mailbox, twilio))
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append(tuple(x if isinstance(x, bytes) else x.encode() for x in (a, b)))  # type: ignore[arg-type]
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    def compared_with(value: str) -> bool:
        return any(value.encode() in pair for pair in compared)

    async with client(app) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        r = await c.post(
            "/_mfa/enroll/totp",
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
            headers=HTML,
        )
        assert r.status_code == 200  # her recovery codes
        await relogin(c)
        clock.advance(30)
        code = totp(secret, clock())
        assert (await submit_code(c, code)).status_code == 303
        assert compared_with(code)
    async with client(app) as c:
        await login(c, "bob")
        page = await c.get("/_mfa/enroll/email", headers=HTML)
        r = await c.post(
            "/_mfa/enroll/email",
            data={"csrf": csrf_of(page.text), "email": "bob@example.com"},
            headers=HTML,
        )
        code_page = await c.get(r.headers["location"], headers=HTML)
        stored = store.get(Key("oob", "bob", "enroll"))
        assert stored is not None
        r = await c.post(
            "/_mfa/enroll/code",
            data={"csrf": csrf_of(code_page.text), "code": mailbox.last_code()},
            headers=HTML,
        )
        assert r.status_code == 200  # bob's recovery codes
        assert compared_with(stored["mac"])
        recovery = store.get(Key("recovery", "bob"))
        assert recovery is not None
        await relogin(c, "bob")
        page = await c.get("/_mfa/recovery", headers=HTML)
        codes = [line.split("</code>")[0] for line in r.text.split("<li><code>")[1:]]
        r = await c.post(
            "/_mfa/recovery", data={"csrf": csrf_of(page.text), "code": codes[0]}, headers=HTML
        )
        assert r.status_code == 200
        assert any(compared_with(digest) for _, digest in recovery["hashes"])


@pytest.mark.checklist("UI-02")
async def test_no_field_or_cookie_names_the_user_at_the_second_step(clock: FixedClock) -> None:
    """Bob's code posted in alice's login with every way of naming bob: refused, and bob's
    code is not spent; the code is checked against alice, who passed the password."""
    app = make_app(clock)
    async with client(app) as alice, client(app) as bob:
        alice_secret = await sign_up(alice, clock)
        bob_secret = await sign_up(bob, clock, "bob")
        await relogin(alice)
        await relogin(bob, "bob")
        csrf = csrf_of((await challenge_page(alice)).text)
        clock.advance(30)
        bobs = totp(bob_secret, clock())
        alice.cookies.set("verify", "bob")
        alice.cookies.set("user", "bob")
        naming_bob = {"user": "bob", "username": "bob", "user_id": "bob", "verify": "bob"}
        r = await alice.post(
            "/_mfa/challenge",
            data={"csrf": csrf, "code": bobs, "next": "/account", **naming_bob},
            headers=HTML,
        )
        assert r.status_code == 400
        r = await alice.post(
            "/_mfa/challenge",
            json={"csrf": csrf, "code": bobs, "username": "bob"},
            headers=HTML,
        )
        assert r.status_code == 400
        assert not await is_verified(alice)
        assert not await is_verified(bob)
        assert (await submit_code(bob, bobs)).status_code == 303  # never spent on alice
        r = await alice.post(
            "/_mfa/challenge",
            data={"csrf": csrf, "code": totp(alice_secret, clock()), **naming_bob},
            headers=HTML,
        )
        assert r.status_code == 303
        page = await alice.get("/account", headers=HTML)
        assert "Signed in as <strong>alice</strong>" in page.text


POSTED = sorted(path for path, route in ROUTES.items() if route.post)
GOTTEN = {path for path, route in ROUTES.items() if route.get}


@pytest.mark.checklist("SES-17")
async def test_every_form_refuses_another_sessions_token_and_a_get(clock: FixedClock) -> None:
    store = MemoryStore()
    app = make_app(
        clock,
        store=store,
        is_admin=lambda p: p.id == "alice",
        trust_duration="30d",
        push_vapid_private_key=VapidKeys.generate().private,  # the approval pages exist
        push_contact="mailto:ops@example.com",
    )
    async with client(app) as c, client(app) as other:
        await login(c)
        secret = await enroll(c, clock)
        await login(other, "bob")
        await enroll(other, clock)
        foreign = csrf_of((await other.get("/_mfa/settings", headers=HTML)).text)
        alice, bob = store.get(user_key("alice")), store.get(user_key("bob"))
        [(device, _)] = store.scan("device", "alice")
        actions = {
            "action": "reset",
            "user": "bob",
            "device": device,
            "choice": "trust",
            "code": totp(secret, clock() + 30),
            "mode": "off",
        }
        for path in POSTED:  # a token, but of another session (bob's)
            r = await c.post(f"/_mfa{path}", data={"csrf": foreign, **actions}, headers=HTML)
            assert r.status_code == 403, (path, r.status_code)
        for path in POSTED:  # the same fields by GET
            r = await c.get(f"/_mfa{path}", params=actions, headers=HTML)
            if path not in GOTTEN:
                assert r.status_code == 405, (path, r.status_code)
            else:  # a page (400: the lost-device link page says a link without a token is dead)
                assert r.status_code in (200, 303, 400), (path, r.status_code)
        assert store.get(user_key("alice")) == alice
        assert store.get(user_key("bob")) == bob
        assert store.get(Key("settings", "_", "global")) is None
        assert not any(d.get("trusted_until") for _, d in store.scan("device", "alice"))
        assert kinds(UserRecord.from_doc(alice)) == ["totp"]
        assert await is_verified(c)
        assert await is_verified(other)
