"""Prometheus metrics for ops teams, fed by the audit events (`pip install
'mfa_middleware[metrics]'`, prometheus-client):

    from mfa_middleware.metrics import PrometheusMetrics

    metrics = PrometheusMetrics()             # registers in prometheus_client's default registry
    MFAConfig(..., metrics=metrics)           # every event updates the counters
    # then serve them: prometheus_client.make_asgi_app() (or make_wsgi_app, generate_latest)

- `mfa_verifications_total{method, step, outcome}`: codes, passkeys and recovery codes
  checked (`step`: `challenge` or `enroll`; `outcome`: `success` or `failure`);
- `mfa_lockouts_total{method}`: wrong guesses that started a lockout;
- `mfa_codes_sent_total{channel, purpose, outcome}`: codes by SMS and email (`purpose`:
  `login` or `enroll`; `outcome`: `sent`, `fallback`, `failed`, `limited`);
- `mfa_store_errors_total{where, answer}`: requests that met a store outage (`where`: `gate`
  or `page`; `answer`: `503`, or `passed` under `on_store_error="verified_sessions"`);
- `mfa_step_ups_total`: requests asked for a fresher second factor;
- `mfa_impersonated_requests_total{outcome}`: requests of support staff signed in as a user
  (`passed`, `refused`);
- `mfa_events_total{event}`: every audit event, by name.

Labels take only the values the middleware itself writes (methods, channels, event names), never
a user id, an address or a path, so the number of series stays small and no one's activity is
published. Unknown values are counted as `other`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METHODS = frozenset(
    {"totp", "sms", "email", "webauthn", "recovery", "enroll_code", "device", "other"}
)
STEPS = frozenset({"challenge", "enroll", "other"})
CHANNELS = frozenset({"sms", "email", "other"})
PURPOSES = frozenset({"login", "enroll", "other"})


def _known(value: object, allowed: frozenset[str]) -> str:
    text = str(value) if value is not None else "other"
    return text if text in allowed else "other"


class PrometheusMetrics:
    """Counters in `registry` (prometheus_client's default one unless given; pass your own
    CollectorRegistry to keep them apart), named with `namespace` ("mfa"). Pass the instance
    as `MFAConfig(metrics=...)`: its `observe` hears every event, synchronously."""

    def __init__(self, registry: Any = None, namespace: str = "mfa") -> None:
        try:
            from prometheus_client import REGISTRY, Counter
        except ImportError as exc:  # pragma: no cover (the metrics extra is installed in dev)
            raise ImportError(
                "PrometheusMetrics needs prometheus-client: pip install 'mfa_middleware[metrics]'"
            ) from exc
        registry = REGISTRY if registry is None else registry
        self.registry = registry

        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Any:
            return Counter(name, text, labels, namespace=namespace, registry=registry)

        self.verifications = counter(
            "verifications", "Second factors checked", ("method", "step", "outcome")
        )
        self.lockouts = counter("lockouts", "Lockouts after wrong guesses", ("method",))
        self.codes_sent = counter(
            "codes_sent", "Codes sent by SMS or email", ("channel", "purpose", "outcome")
        )
        self.store_errors = counter(
            "store_errors", "Requests that met a store outage", ("where", "answer")
        )
        self.step_ups = counter("step_ups", "Requests asked for a fresher second factor")
        self.impersonated = counter(
            "impersonated_requests", "Requests of support staff signed in as a user", ("outcome",)
        )
        self.events = counter("events", "Audit events, by name", ("event",))

    def observe(self, event: Mapping[str, Any]) -> None:
        """Count one audit event (an `EventSink` listener)."""
        name = str(event.get("event", ""))
        self.events.labels(name if _event_name(name) else "other").inc()
        if name in ("verify_succeeded", "verify_failed"):
            self.verifications.labels(
                _known(event.get("method"), METHODS),
                _known(event.get("step"), STEPS),
                "success" if name == "verify_succeeded" else "failure",
            ).inc()
        elif name == "locked_out":
            self.lockouts.labels(_known(event.get("method"), METHODS)).inc()
        elif name in ("code_sent", "code_delivery_failed", "code_send_limited"):
            outcome = {"code_delivery_failed": "failed", "code_send_limited": "limited"}.get(
                name, "fallback" if event.get("fallback") else "sent"
            )
            self.codes_sent.labels(
                _known(event.get("channel"), CHANNELS),
                _known(event.get("purpose"), PURPOSES),
                outcome,
            ).inc()
        elif name == "store_unavailable":
            answer = "passed" if event.get("answered") == "passed" else "503"
            where = event.get("where") if event.get("where") in ("gate", "page") else "other"
            self.store_errors.labels(where, answer).inc()
        elif name == "step_up_required":
            self.step_ups.inc()
        elif name in ("impersonated_request", "impersonation_refused"):
            self.impersonated.labels(
                "passed" if name == "impersonated_request" else "refused"
            ).inc()


def _event_name(name: str) -> bool:
    """A name as the middleware writes its events (short snake_case), not free text."""
    return 0 < len(name) <= 40 and name.replace("_", "").isalpha() and name.islower()
