"""The Prometheus exporter fed by the events (issue 21 point 10): verifications and failures by
method, lockouts, codes sent by channel and outcome (fallbacks included), store errors and
503s, step-ups, support staff's requests; no user id in any label. Through the Starlette demo
(its /metrics) and the Django demo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.errors import ConfigError
from mfa_middleware.metrics import PrometheusMetrics
from mfa_middleware.testing import OutageStore
from tests.e2e.helpers import (
    HTML,
    SECRET_KEY,
    FixedClock,
    client,
    enroll_sms,
    login,
    make_app,
    relogin,
    senders,
    sign_up,
    submit_code,
    totp,
    wrong_code,
)
from tests.support.mail_and_sms import Mailbox, TwilioDouble

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(autouse=True)
def _demo_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFA_SECRET", SECRET_KEY)


@pytest.fixture
def mailbox() -> Any:
    from tests.support.mail_and_sms import smtp_server

    with smtp_server() as box:
        yield box


@pytest.fixture
def twilio() -> Any:
    from tests.support.mail_and_sms import twilio_double

    with twilio_double() as double:
        yield double


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_observe_counts_each_event_with_bounded_labels() -> None:
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    for event in (
        {"event": "verify_succeeded", "user": "alice", "method": "totp", "step": "challenge"},
        {"event": "verify_failed", "user": "alice", "method": "sms", "step": "challenge"},
        {"event": "locked_out", "user": "alice", "method": "sms"},
        {"event": "code_sent", "user": "bob", "channel": "email", "purpose": "login",
         "fallback": True},
        {"event": "code_delivery_failed", "user": "bob", "channel": "sms", "to": "+1 •••"},
        {"event": "store_unavailable", "user": "bob", "where": "gate", "answered": 503},
        {"event": "step_up_required", "user": "bob", "path": "/billing"},
        {"event": "impersonated_request", "user": "bob", "actor": "agent:carol"},
        {"event": "verify_failed", "user": "x", "method": "alice@example.com", "step": "?"},
        {"event": "Not An Event Name <script>"},
    ):  # fmt: skip
        metrics.observe(event)
    assert value(metrics, "mfa_verifications_total", method="totp", step="challenge",
                 outcome="success") == 1  # fmt: skip
    assert value(metrics, "mfa_verifications_total", method="other", step="other",
                 outcome="failure") == 1  # an unknown value is "other", never echoed  # fmt: skip
    assert value(metrics, "mfa_lockouts_total", method="sms") == 1
    assert value(metrics, "mfa_codes_sent_total", channel="email", purpose="login",
                 outcome="fallback") == 1  # fmt: skip
    assert value(metrics, "mfa_codes_sent_total", channel="sms", purpose="other",
                 outcome="failed") == 1  # fmt: skip
    assert value(metrics, "mfa_store_errors_total", where="gate", answer="503") == 1
    assert value(metrics, "mfa_step_ups_total") == 1
    assert value(metrics, "mfa_impersonated_requests_total", outcome="passed") == 1
    assert value(metrics, "mfa_events_total", event="other") == 1
    text = generate_latest(metrics.registry).decode()
    for private in ("alice", "bob", "carol", "+1", "/billing", "<script>"):
        assert private not in text, private


def test_metrics_must_observe() -> None:
    with pytest.raises(ConfigError, match="metrics: has no observe"):
        MFAConfig(secret_keys=[SECRET_KEY], metrics=object())


async def scrape(c: httpx.AsyncClient) -> str:
    r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_the_demo_counts_what_happens_and_serves_it(
    clock: FixedClock, mailbox: Mailbox, twilio: TwilioDouble
) -> None:
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    options = {**senders(mailbox, twilio), "email_codes": False, "sms_fallback": "email"}
    app = make_app(clock, **options, max_attempts=2, metrics=metrics)
    async with client(app) as alice, client(app) as bob:
        secret = await sign_up(alice, clock)
        await relogin(alice)
        clock.advance(30)
        for step in range(2):  # locked out
            await submit_code(alice, wrong_code(secret, clock() + 90 * step))
        clock.advance(3600)
        assert (await submit_code(alice, totp(secret, clock()))).status_code == 303
        await login(bob, "bob")
        await enroll_sms(bob, twilio)
        await relogin(bob, "bob")
        twilio.mode = "error"
        await bob.get("/_mfa/challenge", headers=HTML)  # the SMS fails: emailed instead
        clock.advance(6 * 60)
        await alice.get("/billing", headers=HTML)  # a step-up: /billing asks a recent code
        text = await scrape(alice)
    assert value(metrics, "mfa_verifications_total", method="totp", step="challenge",
                 outcome="failure") == 2  # fmt: skip
    assert value(metrics, "mfa_verifications_total", method="totp", step="challenge",
                 outcome="success") == 1  # fmt: skip
    assert value(metrics, "mfa_verifications_total", method="totp", step="enroll",
                 outcome="success") == 1  # fmt: skip
    assert value(metrics, "mfa_lockouts_total", method="totp") == 1
    assert value(metrics, "mfa_codes_sent_total", channel="sms", purpose="enroll",
                 outcome="sent") == 1  # fmt: skip
    assert value(metrics, "mfa_codes_sent_total", channel="sms", purpose="login",
                 outcome="failed") == 1  # fmt: skip
    assert value(metrics, "mfa_codes_sent_total", channel="email", purpose="login",
                 outcome="fallback") == 1  # fmt: skip
    assert value(metrics, "mfa_step_ups_total") == 1
    assert 'mfa_lockouts_total{method="totp"} 1.0' in text
    for private in ("alice", "bob", "example.com", "+1", "2671"):
        assert private not in text, private


async def test_store_outages_and_503s_are_counted(clock: FixedClock) -> None:
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    store = OutageStore()
    app = make_app(clock, store=store, metrics=metrics)
    async with client(app) as alice:
        await sign_up(alice, clock)
        store.down = True
        assert (await alice.get("/account", headers=HTML)).status_code == 503
        assert (await alice.get("/_mfa/settings", headers=HTML)).status_code == 503
        store.down = False
        text = await scrape(alice)
    assert value(metrics, "mfa_store_errors_total", where="gate", answer="503") == 1
    assert value(metrics, "mfa_store_errors_total", where="page", answer="503") == 1
    assert 'mfa_store_errors_total{answer="503",where="page"} 1.0' in text


async def test_metrics_are_for_this_machine_only(clock: FixedClock) -> None:
    app = make_app(clock, store=MemoryStore(), metrics=PrometheusMetrics(CollectorRegistry()))
    transport = httpx.ASGITransport(app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as far:
        assert (await far.get("/metrics")).status_code == 404
