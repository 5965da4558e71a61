"""Section 7: Django with DjangoStore (the 2FA state in the project's database).

The same requests as section 2 (Django's WSGI handler called directly, a verified session
replayed), with the MFA store in Django's own SQLite database: first without a cache (one
indexed query per verified request), then with the process cache (`DjangoStore(cache=...)`,
its change log in Django's cache; one process here, so LocMem stands in for Redis). Each phase
interleaves plain Django, django-otp and ours, so the ratio to django-otp's added time is
paired per round as in section 2. How fast another process's change arrives is bounded by
`poll_interval` (proved in tests/django_project/test_django_store_cache.py), not measured here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import interleaved_sync, paired_ratio, scaled, target
from bench.django_bench import VARIANTS, configure, handler_for, queries_per_request, replayer
from bench.django_bench import set_up_sessions as sessions

POLL_INTERVAL = 0.5


def phase(cached: bool) -> dict[str, Any]:
    """Plain, django-otp and ours on DjangoStore (with or without the process cache)."""
    from django.conf import settings

    from mfa_middleware.django.models import Document
    from mfa_middleware.django.settings import runtime
    from mfa_middleware.django.store import DjangoStore

    Document.objects.all().delete()  # each phase enrolls the same user afresh
    store = DjangoStore(cache="mfa" if cached else None, poll_interval=POLL_INTERVAL)
    settings.MFA_MIDDLEWARE = {**settings.MFA_MIDDLEWARE, "store": store}
    runtime.cache_clear()
    handlers = {name: handler_for(mw) for name, (_, mw) in VARIANTS.items() if name != "floor"}
    cookies = sessions(handlers)
    if cached:
        assert store.shared is not None
        store.shared.start()
        store.shared.live.wait(10)
    queries = {name: queries_per_request(handlers[name], cookies[name])[0] for name in handlers}
    samplers = {name: replayer(handlers[name], cookies[name]) for name in handlers}
    timed = interleaved_sync(samplers, scaled(15, 3), scaled(40_000_000, 5_000_000))
    ratio = paired_ratio(timed["ours"], timed["plain"], timed["otp"], timed["plain"])
    plain = timed["plain"].median
    return {
        "queries_added": queries["ours"] - queries["plain"],
        "otp_queries_added": queries["otp"] - queries["plain"],
        "ours_added_us": timed["ours"].median - plain,
        "otp_added_us": timed["otp"].median - plain,
        "ratio": ratio["ratio"],
        "timed": {name: summary.to_json() for name, summary in timed.items()},
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mfa-bench-django-store-") as tmp:
        configure(Path(tmp))
        without = phase(cached=False)
        with_cache = phase(cached=True)
    return report(without, with_cache)


def report(without: dict[str, Any], cached: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for label, result in (("DjangoStore", without), ("DjangoStore + cache", cached)):
        ratio = result["ratio"]
        rows.append(
            [
                label,
                f"{result['queries_added']:+g}",
                f"{result['otp_queries_added']:+g}",
                f"{result['ours_added_us']:+.1f}",
                f"{result['otp_added_us']:+.1f}",
                "-" if ratio is None else f"{ratio:.2f}",
            ]
        )
    return {
        "title": "7. Django on DjangoStore: queries and added time per verified request",
        "columns": ["store", "ours q", "otp q", "ours us", "otp us", "ours/otp time"],
        "rows": rows,
        "data": {"without_cache": without, "with_cache": cached},
        "targets": [
            target(
                "django_store.queries",
                "DjangoStore: queries a verified request adds, without / with the cache",
                "<= 1 / 0",
                f"{without['queries_added']:g} / {cached['queries_added']:g}",
                without["queries_added"] <= 1 and cached["queries_added"] == 0,
                f"django-otp adds {without['otp_queries_added']:g}",
            ),
        ],
        "notes": [
            "Database sessions on SQLite with persistent connections, as in section 2.",
            "The cache phase uses LocMem (one process); in production the change log lives in"
            " Redis or Memcached, which adds their round trip to each poll, not to requests.",
        ],
    }
