"""Bad MFA session cookies count as no cookie; cookie attributes and page security headers."""

from __future__ import annotations

import base64
import html
import re
import zlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mfa_middleware import MemoryStore, MFAConfig, MFAMiddleware
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.tokens import session_codec
from mfa_middleware.runtime import METHOD_COOKIE
from tests.security.support import HeaderLogin

from .helpers import (
    COOKIE,
    HTML,
    SECRET_KEY,
    FixedClock,
    challenge_page,
    client,
    cookie,
    csrf_of,
    enroll,
    is_verified,
    login,
    logout,
    make_app,
    mfa_set_cookie,
    relogin,
    secret_of,
    set_cookie,
    sign_up,
    submit_code,
    totp,
    wrong_code,
)

pytestmark = pytest.mark.anyio


def _flip(value: str, index: int) -> str:
    """`value` with one letter or digit at or after `index` changed."""
    while not value[index].isalnum():
        index += 1
    replacement = "B" if value[index] == "A" else "A"
    return value[:index] + replacement + value[index + 1 :]


async def _assert_challenged(c: httpx.AsyncClient, clock: FixedClock, secret: str) -> None:
    """Not let through; sent to the challenge, which then works with a new code."""
    r = await c.get("/account", headers=HTML)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
    r = await c.get("/api/profile", headers={"accept": "application/json"})
    assert r.status_code == 401
    assert r.json()["error"] == "mfa_required"
    clock.advance(30)
    r = await submit_code(c, totp(secret, clock()))
    assert r.status_code == 303
    assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.parametrize("where", ["payload", "signature"])
@pytest.mark.checklist("SES-02", "SES-03", "SES-06")
async def test_tampered_cookie_is_absent(clock: FixedClock, where: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        value = cookie(c)
        assert value is not None
        dot = value.rindex(".")
        index = 2 if where == "payload" else dot + (len(value) - dot) // 2
        tampered = _flip(value, index)
        assert tampered != value
        set_cookie(c, tampered)
        await _assert_challenged(c, clock, secret)


@pytest.mark.parametrize("value", ["garbage", "", "x" * 5000, "a.b.c", '"quoted"'])
@pytest.mark.checklist("SES-02")
async def test_garbage_cookie_is_absent(clock: FixedClock, value: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        set_cookie(c, value)
        await _assert_challenged(c, clock, secret)


@pytest.mark.parametrize("value", ["garbage", "", "x" * 5000])
async def test_garbage_cookie_before_enrollment_is_absent(clock: FixedClock, value: str) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        set_cookie(c, value)
        for path in ("/account", "/_mfa/challenge", "/_mfa/enroll/totp"):
            r = await c.get(path, headers=HTML)
            assert r.status_code in (200, 303), (path, r.status_code)
            if path == "/account":
                assert r.headers["location"] == "/_mfa/enroll?next=%2Faccount"
        secret = await enroll(c, clock)
        assert secret
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("SES-03")
async def test_other_users_cookie_is_absent(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as bob, client(app) as alice:
        await sign_up(bob, clock, "bob")
        alice_secret = await sign_up(alice, clock, "alice")
        assert (await bob.get("/account", headers=HTML)).status_code == 200
        bobs_cookie = cookie(bob)
        assert bobs_cookie is not None
        await relogin(alice)
        assert (await alice.get("/account", headers=HTML)).status_code == 303
        set_cookie(alice, bobs_cookie)
        r = await alice.get("/account", headers=HTML)
        assert r.status_code == 303
        assert "bob" not in r.text
        await _assert_challenged(alice, clock, alice_secret)
        # Bob's own session is untouched.
        r = await bob.get("/account", headers=HTML)
        assert r.status_code == 200
        assert "Signed in as <strong>bob</strong>" in r.text


@pytest.mark.checklist("SES-06")
async def test_expired_session_is_never_let_through(clock: FixedClock) -> None:
    app = make_app(clock, session_lifetime="1h")
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        expired = cookie(c)
        assert expired is not None
        clock.advance(3601)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Faccount"
        assert cookie(c) is None  # cleared
        # The app session was ended as well: the demo itself asks for a login.
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/account"
        await login(c)
        r = await c.get("/account", headers=HTML)
        assert r.headers["location"] == "/_mfa/challenge?next=%2Faccount"
        # Bringing the expired cookie back into the new login does not help.
        set_cookie(c, expired)
        await _assert_challenged(c, clock, secret)


@pytest.mark.checklist("SES-01", "SES-03")
async def test_cookie_of_a_previous_login_is_absent(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        secret = await sign_up(c, clock)
        assert (await c.get("/account", headers=HTML)).status_code == 200
        previous = cookie(c)
        assert previous is not None
        await relogin(c)
        assert (await c.get("/account", headers=HTML)).status_code == 303
        set_cookie(c, previous)
        await _assert_challenged(c, clock, secret)


async def test_expired_session_api_gets_json(clock: FixedClock) -> None:
    app = make_app(clock, session_lifetime="1h")
    async with client(app) as c:
        await sign_up(c, clock)
        clock.advance(3601)
        r = await c.get("/api/profile", headers={"accept": "application/json"})
        assert r.status_code == 401
        body = r.json()
        assert body["error"] == "session_expired"
        assert body["location"] == "/login"


@pytest.mark.checklist("SES-05")
async def test_cookie_attributes_plain_http(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        header = mfa_set_cookie(r)
        assert header is not None, r.headers
        attributes = [part.strip() for part in header.split(";")]
        assert "HttpOnly" in attributes
        assert "SameSite=Lax" in attributes
        assert "Path=/" in attributes
        assert "Secure" not in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)
        # Pages setting the cookie too.
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.status_code == 200


@pytest.mark.checklist("SES-05", "SES-16")
async def test_cookie_secure_uses_host_prefix(clock: FixedClock) -> None:
    app = make_app(clock, cookie_secure=True)
    async with client(app, base_url="https://testserver") as c:
        await login(c)
        r = await c.get("/account", headers=HTML)
        header = mfa_set_cookie(r, "__Host-mfa_session")
        assert header is not None, r.headers
        assert mfa_set_cookie(r) is None
        attributes = [part.strip() for part in header.split(";")]
        for expected in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
            assert expected in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)
        # The whole flow works with the prefixed cookie.
        await enroll(c, clock)
        assert cookie(c, "__Host-mfa_session") is not None
        assert (await c.get("/account", headers=HTML)).status_code == 200


@pytest.mark.checklist("UI-03")
async def test_pages_send_security_headers(clock: FixedClock) -> None:
    app = make_app(clock)
    async with client(app) as c:
        await login(c)
        responses = [
            await c.get("/_mfa/enroll", headers=HTML),
            await c.get("/_mfa/enroll/totp", headers=HTML),
            await c.get("/_mfa/nowhere", headers=HTML),
            await c.post("/_mfa/enroll/totp", data={"code": "1"}, headers=HTML),
        ]
        secret = await enroll(c, clock)
        await relogin(c)
        responses.append(await challenge_page(c))
        clock.advance(30)
        responses.append(await submit_code(c, "000"))
        for r in responses:
            assert r.status_code in (200, 400, 403, 404), r.status_code
            assert r.headers["cache-control"] == "no-store"
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"
        # Redirects from the gate are not cached either.
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 303
        assert r.headers["cache-control"] == "no-store"
        r = await submit_code(c, totp(secret, clock()))
        assert r.status_code == 303
        assert r.headers["cache-control"] == "no-store"


@pytest.mark.checklist("SES-02")
async def test_a_planted_session_cookie_is_never_adopted(clock: FixedClock) -> None:
    """Session fixation: a value the attacker chose, or the attacker's own pending session of
    the same account, planted in the victim's browser before she logs in, never becomes her
    verified session, and the attacker's copy stays unverified."""
    app = make_app(clock)
    async with client(app) as victim:
        secret = await sign_up(victim, clock)
        await logout(victim)
    async with client(app) as attacker:
        await login(attacker)  # knows the password, not the second factor
        assert not await is_verified(attacker)
        theirs = cookie(attacker)
        assert theirs is not None
        for planted in ("attacker-chosen", theirs):
            async with client(app) as victim:
                victim.cookies.set(COOKIE, planted, domain="testserver.local")  # as ours
                await login(victim)
                clock.advance(30)
                assert (await submit_code(victim, totp(secret, clock()))).status_code == 303
                assert await is_verified(victim)
                issued = cookie(victim)
                assert issued not in (planted, theirs)
            assert not await is_verified(attacker)
            set_cookie(attacker, issued or "")  # even her new cookie: bound to her login
            assert not await is_verified(attacker)
            set_cookie(attacker, theirs)


NEW_KEY = "n3w-rotation-key-" + "Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs"
AS_ALICE = {**HTML, "x-test-user": "alice"}


async def _account(request: Request) -> PlainTextResponse:
    return PlainTextResponse("the account page")


def keyed_app(clock: FixedClock, store: MemoryStore, keys: list[str]) -> Starlette:
    """An app whose login is the `x-test-user` header (no session of its own to rotate),
    with MFA under `keys`."""
    config = MFAConfig(
        secret_keys=keys,
        store=store,
        clock=clock,
        cookie_secure=False,
        trust_duration="30d",
        recovery_code_count=2,
    )
    login = HeaderLogin({"alice": {"identity": "alice"}})
    return Starlette(
        routes=[Route("/account", _account)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=login),
            Middleware(MFAMiddleware, config=config),
        ],
    )


async def _reaches(app: Starlette, cookies: dict[str, str]) -> bool:
    async with client(app) as browser:
        browser.cookies.update(cookies)
        return (await browser.get("/account", headers=AS_ALICE)).status_code == 200


@pytest.mark.checklist("TD-09")
async def test_a_new_key_keeps_sessions_devices_and_codes_and_dropping_the_old_one_ends_them(
    clock: FixedClock,
) -> None:
    """Keys rotate as the README says: append a new one (nobody is logged out, trusted
    devices stay trusted, recovery codes keep working, a signed-out session stays out), then
    drop the old one (what it signed is refused)."""
    store = MemoryStore()
    old_only = keyed_app(clock, store, [SECRET_KEY])
    async with client(old_only) as c:
        page = await c.get("/_mfa/enroll/totp", headers=AS_ALICE)
        secret = secret_of(page.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=AS_ALICE,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        codes = re.findall(r"<li><code>([0-9a-z-]+)</code></li>", done.text)
        prompt = await c.get("/_mfa/trust", headers=AS_ALICE)
        await c.post(
            "/_mfa/trust", headers=AS_ALICE, data={"csrf": csrf_of(prompt.text), "choice": "trust"}
        )
        assert (await c.get("/account", headers=AS_ALICE)).status_code == 200
        made_with_old = dict(c.cookies)
    async with client(old_only) as gone:  # another session, signed out: a copy stays out
        clock.advance(30)
        page = await gone.get("/_mfa/challenge", headers=AS_ALICE)
        await gone.post(
            "/_mfa/challenge",
            headers=AS_ALICE,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        copied = dict(gone.cookies)
        settings = await gone.get("/_mfa/settings", headers=AS_ALICE)
        await gone.post("/_mfa/logout", headers=AS_ALICE, data={"csrf": csrf_of(settings.text)})
    assert not await _reaches(old_only, copied)
    rotated = keyed_app(clock, store, [SECRET_KEY, NEW_KEY])  # a new key appended
    assert await _reaches(rotated, made_with_old)
    assert not await _reaches(rotated, copied)
    async with client(rotated) as c:
        c.cookies.update(made_with_old)
        c.cookies.delete(COOKIE)  # a new session: the old key's device cookie still trusted
        assert (await c.get("/account", headers=AS_ALICE)).status_code == 200
        assert session_codec(Keyring([NEW_KEY])).decode(cookie(c)) is not None  # newest signs
    async with client(rotated) as c:  # a recovery code issued under the old key
        page = await c.get("/_mfa/recovery", headers=AS_ALICE)
        r = await c.post(
            "/_mfa/recovery", headers=AS_ALICE, data={"csrf": csrf_of(page.text), "code": codes[0]}
        )
        assert r.status_code == 200
        assert (await c.get("/account", headers=AS_ALICE)).status_code == 200
    new_only = keyed_app(clock, store, [NEW_KEY])  # the old key dropped
    async with client(new_only) as c:
        c.cookies.update(made_with_old)
        r = await c.get("/account", headers=AS_ALICE)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/_mfa/challenge")
        c.cookies.delete(COOKIE)
        r = await c.get("/account", headers=AS_ALICE)
        assert r.headers["location"].startswith("/_mfa/challenge")  # nor the device cookie


def _payload(value: str) -> bytes:
    """The readable part of an itsdangerous token (signed, not encrypted)."""
    compressed = value.startswith(".")
    raw = value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    return zlib.decompress(data) if compressed else data


@pytest.mark.checklist("SES-05", "SES-16", "TD-06", "TD-11")
async def test_every_cookie_we_set_is_host_only_secure_httponly_and_opaque(
    clock: FixedClock,
) -> None:
    app = make_app(clock, cookie_secure=True, trust_duration="30d")
    headers: list[str] = []

    async def keep(response: httpx.Response) -> None:
        headers.extend(h for h in response.headers.get_list("set-cookie") if "mfa_session" in h)

    async with client(app, "https://testserver") as c:
        c.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
        c.event_hooks["response"].append(keep)
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock())},
        )
        prompt = await c.get(done.headers["location"], headers=HTML)
        trust = {"csrf": csrf_of(prompt.text), "choice": "trust"}
        await c.post("/_mfa/trust", headers=HTML, data=trust)
        await logout(c)
        await login(c)
        assert await is_verified(c)  # the trusted device
        page = await c.get("/_mfa/settings", headers=HTML)
        await c.post("/_mfa/logout", headers=HTML, data={"csrf": csrf_of(page.text)})
    names = {h.split("=", 1)[0] for h in headers}
    assert names == {"__Host-mfa_session", "__Host-mfa_session_device"}
    for header in headers:
        name, _, rest = header.partition("=")
        value, *attributes = [part.strip() for part in rest.split(";")]
        assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes), header
        assert not any(a.lower().startswith(("domain", "expires")) for a in attributes), header
        max_age = int(next(a for a in attributes if a.startswith("Max-Age=")).split("=")[1])
        if name.endswith("_device"):
            assert max_age >= 30 * 86400  # at least the trust period (trust itself is the store's)
        if value:
            readable = _payload(value).decode()
            for personal in ("alice", "example.com", "127.0.0.1", "Firefox", "Linux"):
                assert personal not in readable, (name, readable)
    async with client(app) as c:  # plain HTTP (TLS ended at a proxy): still Secure
        await login(c)
        r = await c.get("/account", headers=HTML)
        ours = [h for h in r.headers.get_list("set-cookie") if "mfa_session" in h]
        assert ours
        assert all(h.startswith("__Host-") and "Secure" in h for h in ours)


def _check_headers(r: httpx.Response) -> None:
    where = (r.request.method, r.url.path, r.status_code)
    kind = r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff", where
    assert r.headers["referrer-policy"] == "no-referrer", where
    assert kind.startswith("application/json") or "charset=utf-8" in kind, where
    if r.url.path != "/_mfa/static/mfa.css":
        assert r.headers["cache-control"] == "no-store", where
    if kind.startswith("text/html"):
        csp = [d.strip() for d in r.headers["content-security-policy"].split(";")]
        for directive in ("default-src 'none'", "frame-ancestors 'none'", "object-src 'none'",
                          "base-uri 'none'", "form-action 'self'"):  # fmt: skip
            assert directive in csp, where
        assert not any(d.startswith("script-src") or "unsafe" in d for d in csp), where
        assert r.headers["x-frame-options"] == "DENY", where


@pytest.mark.checklist("UI-03", "UI-04", "UI-05")
async def test_every_answer_of_ours_is_uncached_unframed_and_typed(clock: FixedClock) -> None:
    """Pages, redirects, JSON and refusals of the gate and of the 2FA pages, in each state."""
    app = make_app(
        clock,
        is_admin=lambda p: p.id == "alice",
        recovery_code_count=10,
        trust_duration="30d",
        rules=[{"action": "deny", "paths": ["/admin"]}],
    )
    ours: list[httpx.Response] = []
    as_json = {"accept": "application/json"}
    async with client(app) as c, client(app) as pending:
        await login(c)
        ours += [
            await c.get("/account", headers=HTML),
            await c.get("/api/profile", headers=as_json),
        ]
        ours += [await c.get("/_mfa/enroll", headers=HTML)]
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        csrf = csrf_of(page.text)
        ours += [page, await c.post("/_mfa/enroll/totp", headers=HTML, data={"csrf": csrf})]
        codes = await c.post(
            "/_mfa/enroll/totp", headers=HTML, data={"csrf": csrf, "code": totp(secret, clock())}
        )
        assert "set-cookie" in codes.headers  # the recovery codes page starts the session
        ours += [codes, await c.get("/_mfa/trust", headers=HTML)]
        for path in ("/_mfa/settings", "/_mfa/devices", "/_mfa/admin", "/_mfa/disable",
                     "/_mfa/nowhere", "/_mfa/logout", "/_mfa/static/mfa.css"):  # fmt: skip
            ours.append(await c.get(path, headers=HTML))
        ours += [await c.get("/admin", headers=HTML), await c.get("/admin", headers=as_json)]
        ours += [await c.post("/_mfa/challenge", headers=HTML, data={"code": "1"})]
        ours += [await c.post("/_mfa/challenge", headers=as_json, data={"code": "1"})]
        await login(pending)
        ours += [await pending.get("/account", headers=HTML)]
        for path in ("/_mfa/challenge", "/_mfa/recovery", "/_mfa/lost", "/_mfa/settings"):
            ours.append(await pending.get(path, headers=HTML))
        clock.advance(30)
        ours += [await submit_code(pending, wrong_code(secret, clock()))]
        ours += [await submit_code(pending, totp(secret, clock()))]
    async with client(app) as anonymous:
        ours += [await anonymous.get("/_mfa/challenge", headers=HTML)]
        ours += [await anonymous.get("/_mfa/challenge", headers=as_json)]
    assert {r.status_code for r in ours} >= {200, 303, 400, 401, 403, 404, 405}
    for r in ours:
        _check_headers(r)


_URL_RE = re.compile(r'(?:href|action|src)="([^"]*)"')


@pytest.mark.checklist("SES-15")
async def test_no_session_or_device_token_ever_appears_in_a_url(clock: FixedClock) -> None:
    app = make_app(clock, recovery_code_count=10, trust_duration="30d")
    codec = session_codec(Keyring([SECRET_KEY]))
    urls: list[str] = []
    tokens: set[str] = set()

    async def crawl(response: httpx.Response) -> None:
        await response.aread()
        urls.append(str(response.request.url))
        urls.append(response.headers.get("location", ""))
        if "text/html" in response.headers.get("content-type", ""):
            urls.extend(html.unescape(u) for u in _URL_RE.findall(response.text))
            tokens.update(re.findall(r'name="csrf" value="([^"]+)"', response.text))
        for name, value in response.cookies.items():
            if name == METHOD_COOKIE:  # which method this browser used last: not a secret
                continue
            claims = codec.decode(value)
            tokens.update([value] + ([claims.session_id] if claims else []))

    async with client(app) as c:
        c.event_hooks["response"].append(crawl)
        await login(c)
        r = await c.get("/account", headers=HTML)
        await c.get(r.headers["location"], headers=HTML)  # the method chooser
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        secret = secret_of(page.text)
        done = await c.post(
            "/_mfa/enroll/totp",
            headers=HTML,
            data={"csrf": csrf_of(page.text), "code": totp(secret, clock()), "next": "/account"},
        )
        follow = re.search(r'<a class="button primary" href="([^"]*)"', done.text)
        assert follow
        prompt = await c.get(html.unescape(follow.group(1)), headers=HTML)
        await c.post(
            "/_mfa/trust",
            headers=HTML,
            data={"csrf": csrf_of(prompt.text), "choice": "trust", "next": "/account"},
        )
        for path in ("/_mfa/settings", "/_mfa/devices", "/account"):
            await c.get(path, headers=HTML)
        await logout(c)
        await login(c)
        await c.get("/account", headers=HTML)
        page = await c.get("/_mfa/settings", headers=HTML)
        await c.post("/_mfa/settings/sessions", headers=HTML, data={"csrf": csrf_of(page.text)})
    async with client(app) as other:
        other.event_hooks["response"].append(crawl)
        await login(other)
        r = await other.get("/account", headers=HTML)
        await other.get(r.headers["location"], headers=HTML)
        await other.get("/_mfa/recovery", headers=HTML)
        clock.advance(30)
        assert (await submit_code(other, totp(secret, clock()))).status_code == 303
        await other.get("/_mfa/trust?next=/account", headers=HTML)
    assert len(tokens) > 10
    crawled = "\n".join(urls)
    for token in tokens:
        assert token not in crawled, token
