"""CSRF protection and malformed form input on the built-in pages: refused, never a 500."""

from __future__ import annotations

import pytest

from .helpers import (
    HTML,
    FixedClock,
    challenge_page,
    client,
    csrf_of,
    is_verified,
    login,
    make_app,
    relogin,
    secret_of,
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
