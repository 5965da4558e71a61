"""The demo's Prometheus counters (mfa_middleware.metrics), fed by the 2FA events and served at
/metrics to a scraper on this machine (without the metrics extra: none, and a 404)."""

from __future__ import annotations

import importlib.util
import ipaddress
from typing import Any

from django.http import HttpRequest, HttpResponse


def _metrics() -> Any:
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import CollectorRegistry

    from mfa_middleware.metrics import PrometheusMetrics

    return PrometheusMetrics(registry=CollectorRegistry())


METRICS = _metrics()


def metrics_view(request: HttpRequest) -> HttpResponse:
    try:
        local = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        local = False
    if METRICS is None or not local:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(METRICS.registry), content_type=CONTENT_TYPE_LATEST)
