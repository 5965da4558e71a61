"""SES-16: our answers to HTTPS requests carry Strict-Transport-Security (one year by default),
answers over plain HTTP never do (a header there is ignored by browsers and misleads), and
`hsts_max_age=0` turns it off for deployments whose proxy sets it."""

from __future__ import annotations

import httpx
import pytest

from mfa_middleware import MFAConfig
from mfa_middleware.errors import ConfigError
from tests.e2e.helpers import HTML, SECRET_KEY, FixedClock, client, login, make_app, sign_up

pytestmark = pytest.mark.anyio

HTTPS = "https://testserver"
YEAR = "max-age=31536000"


@pytest.mark.checklist("SES-16")
async def test_pages_over_https_send_hsts(clock: FixedClock) -> None:
    async with client(make_app(clock), HTTPS) as c:
        await login(c)
        page = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert page.status_code == 200
        assert page.headers["strict-transport-security"] == YEAR
        sheet = await c.get("/_mfa/static/mfa.css")
        assert sheet.headers["strict-transport-security"] == YEAR


@pytest.mark.checklist("SES-16")
async def test_gate_answers_over_https_send_hsts(clock: FixedClock) -> None:
    async with client(make_app(clock), HTTPS) as c:
        await login(c)
        sent_away = await c.get("/account", headers=HTML)
        assert sent_away.status_code == 303
        assert sent_away.headers["location"].startswith("/_mfa/enroll")
        assert sent_away.headers["strict-transport-security"] == YEAR
        as_json = await c.get("/account", headers={"accept": "application/json"})
        assert as_json.status_code == 401
        assert as_json.headers["strict-transport-security"] == YEAR


async def test_the_apps_own_answers_are_left_alone(clock: FixedClock) -> None:
    """HSTS for the whole site is the app's (or its proxy's) decision, not ours."""
    async with client(make_app(clock), HTTPS) as c:
        await sign_up(c, clock)
        r = await c.get("/account", headers=HTML)
        assert r.status_code == 200
        assert "strict-transport-security" not in r.headers


async def test_no_hsts_over_plain_http(clock: FixedClock) -> None:
    async with client(make_app(clock)) as c:
        await login(c)
        responses: list[httpx.Response] = [
            await c.get("/_mfa/enroll/totp", headers=HTML),
            await c.get("/account", headers=HTML),
        ]
        assert [r.status_code for r in responses] == [200, 303]
        assert all("strict-transport-security" not in r.headers for r in responses)


async def test_hsts_can_be_turned_off_or_lengthened(clock: FixedClock) -> None:
    async with client(make_app(clock, hsts_max_age=0), HTTPS) as c:
        await login(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.status_code == 200
        assert "strict-transport-security" not in r.headers
    async with client(make_app(clock, hsts_max_age=63_072_000), HTTPS) as c:
        await login(c)
        r = await c.get("/_mfa/enroll/totp", headers=HTML)
        assert r.headers["strict-transport-security"] == "max-age=63072000"


@pytest.mark.parametrize("value", [-1, 63_072_001])
def test_hsts_max_age_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(ConfigError, match="hsts_max_age"):
        MFAConfig(secret_keys=[SECRET_KEY], hsts_max_age=value)
