"""Section 2: Django, through Django's WSGI handler called directly (no network).

Variants, each its own WSGIHandler with its own MIDDLEWARE, on one database:
  plain  SessionMiddleware + AuthenticationMiddleware (database sessions, Django's default)
  otp    plain + django_otp.middleware.OTPMiddleware, session verified with a TOTP device
         (the view checks `user.is_verified()`, as `otp_required` would)
  ours   plain + mfa_middleware.django.MFAMiddleware, session verified through our real pages
  floor  plain + the least gate (bench/floor.py) on ours' session and cookies: only what any
         gate keeping ours' checks does on a verified request; a lower bound for ours

Reported: us per request, and database queries per request (counted in a separate, untimed
pass with CaptureQueriesContext).
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlencode

import pyotp

from bench.common import MFA_SECRET, Summary, interleaved_sync, paired_ratio, scaled, target

BASE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
VARIANTS = {
    "plain": ("plain Django auth (Session + Authentication)", BASE_MIDDLEWARE),
    "otp": (
        "+ django-otp OTPMiddleware, verified",
        [*BASE_MIDDLEWARE, "django_otp.middleware.OTPMiddleware"],
    ),
    "ours": (
        "+ ours (mfa_middleware.django), verified",
        [*BASE_MIDDLEWARE, "mfa_middleware.django.MFAMiddleware"],
    ),
    "floor": (
        "+ the least gate (bench/floor.py), ours' session",
        [*BASE_MIDDLEWARE, "bench.floor.DjangoLeastGate"],
    ),
}
HTML_ACCEPT = "text/html,application/xhtml+xml"
_SECRET_RE = re.compile(r"<code>([A-Z2-7 ]+)</code>")
_CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def configure(
    workdir: Path | None = None, store: Any = None, database: dict[str, Any] | None = None
) -> None:
    """Django on `database` (a DATABASES entry), or a SQLite database in `workdir`; the MFA
    store `store`, or a SQLite file in `workdir`. Migrated (a no-op where another process
    already migrated the database)."""
    import django
    from django.conf import settings

    from mfa_middleware import SQLiteStore

    if database is None:
        assert workdir is not None, "a database, or a workdir for one"
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "db.sqlite3")}
    if store is None:
        assert workdir is not None, "a store, or a workdir for one"
        store = SQLiteStore(workdir / "mfa.sqlite3")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=MFA_SECRET,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="bench.django_site",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django_otp",
            "django_otp.plugins.otp_totp",
            "mfa_middleware.django",
        ],
        MIDDLEWARE=BASE_MIDDLEWARE,
        # persistent connections: no reconnect per request (less noise, same for all)
        DATABASES={"default": {**database, "CONN_MAX_AGE": 600}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "mfa": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        },
        USE_TZ=True,
        LOGIN_URL="/login/",
        MFA_MIDDLEWARE={
            "store": store,
            "cookie_secure": False,
            "app_name": "Django bench",
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def handler_for(middleware: list[str]) -> WSGIApp:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    settings.MIDDLEWARE = middleware  # read once, when the handler loads its middleware
    return WSGIHandler()


def environ(
    method: str, path: str, cookie: str, body: bytes = b"", content_type: str = ""
) -> dict[str, Any]:
    path, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) bench",
        "HTTP_ACCEPT": HTML_ACCEPT,
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    if content_type:
        env["CONTENT_TYPE"] = content_type
    if cookie:
        env["HTTP_COOKIE"] = cookie
    return env


class Browser:
    """Just enough of a browser for the setup: a cookie jar over direct WSGI calls."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        body = urlencode(form).encode() if form is not None else b""
        content_type = "application/x-www-form-urlencoded" if form is not None else ""
        env = environ(method, path, self.cookie_header, body, content_type)
        status, headers, payload = call(self.app, env)
        for name, value in headers:
            if name.lower() == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(morsel.key, None)
                    else:
                        self.cookies[morsel.key] = morsel.value
        return status, {k.lower(): v for k, v in headers}, payload.decode()


def call(app: WSGIApp, env: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    return int(status.split()[0]), headers, body


def set_up_sessions(handlers: dict[str, WSGIApp]) -> dict[str, str]:
    """Log a user in for each variant and verify the session the variant's way."""
    cookies: dict[str, str] = {}
    plain = Browser(handlers["plain"])
    plain.request("POST", "/login/", {"username": "plain-user"})
    cookies["plain"] = plain.cookie_header

    otp = Browser(handlers["otp"])
    otp.request("POST", "/login/", {"username": "otp-user", "otp": "1"})
    cookies["otp"] = otp.cookie_header

    ours = Browser(handlers["ours"])
    ours.request("POST", "/login/", {"username": "ours-user"})
    status, headers, _ = ours.request("GET", "/")
    if status != 303 or "/_mfa/enroll" not in headers.get("location", ""):
        raise AssertionError(f"ours should send an unenrolled user to enroll: {status} {headers}")
    status, _, page = ours.request("GET", "/_mfa/enroll/totp")
    secret, csrf = _SECRET_RE.search(page), _CSRF_RE.search(page)
    if status != 200 or secret is None or csrf is None:
        raise AssertionError(f"enrollment page: {status}")
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
    status, _, _ = ours.request(
        "POST", "/_mfa/enroll/totp", {"csrf": csrf.group(1), "code": code, "next": "/"}
    )
    if status not in (200, 303):  # 200: the recovery codes, shown once
        raise AssertionError(f"enrollment refused: {status}")
    cookies["ours"] = ours.cookie_header
    if "floor" in handlers:
        cookies["floor"] = ours.cookie_header  # the same user, session and MFA cookie
    return cookies


def replayer(app: WSGIApp, cookie: str) -> Callable[[int], int]:
    template = environ("GET", "/", cookie)

    def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            env = dict(template)
            env["wsgi.input"] = io.BytesIO(b"")
            result = app(env, _start_response)
            for _chunk in result:
                pass
            result.close()  # type: ignore[attr-defined]
        return perf_counter_ns() - start

    return run


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    if not status.startswith("200"):
        raise AssertionError(f"replayed request answered {status}")


def queries_per_request(app: WSGIApp, cookie: str, n: int = 10) -> tuple[float, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call(app, environ("GET", "/", cookie))
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(n):
            status, _, _ = call(app, environ("GET", "/", cookie))
            if status != 200:
                raise AssertionError(f"status {status}")
    sqls = [q["sql"] for q in ctx.captured_queries[: len(ctx.captured_queries) // n]]
    return len(ctx.captured_queries) / n, sqls


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mfa-bench-django-") as tmp:
        configure(Path(tmp))
        handlers = {name: handler_for(mw) for name, (_, mw) in VARIANTS.items()}
        cookies = set_up_sessions(handlers)
        queries = {name: queries_per_request(handlers[name], cookies[name]) for name in handlers}
        samplers = {name: replayer(handlers[name], cookies[name]) for name in handlers}
        timed = interleaved_sync(samplers, scaled(21, 3), scaled(80_000_000, 5_000_000))
        queries_after = {
            name: queries_per_request(handlers[name], cookies[name])[0] for name in handlers
        }
        profile = profile_ours(samplers["ours"], scaled(1000, 200))
        return report(timed, queries, queries_after, profile)


def profile_ours(run: Callable[[int], int], n: int) -> dict[str, Any]:
    import cProfile

    from bench.common import RESULTS
    from bench.profiling import write_report

    run(50)
    profiler = cProfile.Profile()
    profiler.enable()
    run(n)
    profiler.disable()
    return write_report(
        profiler,
        n,
        RESULTS / "profile_django_ours.txt",
        f"cProfile of the Django variant 'ours': {n} replayed verified requests (SQLite store).",
        ("mfa_middleware/django/middleware.py", "__call__"),
        drill=("run_sync", "_flow", "gate", "resolve_session"),
        note="principal_from_user includes Django loading the session and the user (the two"
        " queries the view needs anyway); get_response is the view and the rest of Django.",
    )


def report(
    timed: dict[str, Summary],
    queries: dict[str, tuple[float, list[str]]],
    queries_after: dict[str, float],
    profile: dict[str, Any],
) -> dict[str, Any]:
    plain = timed["plain"].median
    ratio = paired_ratio(timed["ours"], timed["plain"], timed["otp"], timed["plain"])
    floor = paired_ratio(timed["floor"], timed["plain"], timed["otp"], timed["plain"])
    rows = []
    data: dict[str, Any] = {}
    for name, (label, middleware) in VARIANTS.items():
        summary = timed[name]
        low, high = summary.quartiles()
        added = "" if name == "plain" else f"{summary.median - plain:+.1f}"
        added_q = queries[name][0] - queries["plain"][0]
        rows.append(
            [
                name,
                label,
                f"{summary.median:.1f}",
                f"{low:.1f}-{high:.1f}",
                added,
                f"{queries[name][0]:g}",
                "" if name == "plain" else f"{added_q:+g}",
            ]
        )
        data[name] = {
            "label": label,
            "middleware": middleware,
            **summary.to_json(),
            "queries_per_request": queries[name][0],
            "queries_per_request_after_timing": queries_after[name],
            "queries": queries[name][1],
        }
    ours_added_q = queries["ours"][0] - queries["plain"][0]
    otp_added = timed["otp"].median - plain
    ours_added = timed["ours"].median - plain
    value = ratio["ratio"]
    return {
        "title": "2. Django, WSGI handler called directly (us per request, DB queries per request)",
        "columns": ["variant", "what", "median us", "p25-p75", "added us", "queries", "added q"],
        "rows": rows,
        "data": {
            "variants": data,
            "ours_vs_django_otp_added_time": ratio,
            "floor_vs_django_otp_added_time": floor,
            "profile_ours": profile,
        },
        "targets": [
            target(
                "django.queries",
                "Django: database queries ours adds to a verified request",
                "0",
                ours_added_q,
                ours_added_q == 0,
                f"plain {queries['plain'][0]:g}, django-otp {queries['otp'][0]:g}, "
                f"ours {queries['ours'][0]:g} per request",
            ),
            target(
                "django.time",
                "Django: ours' added time / django-otp's added time (verified session)",
                "<= 0.10",
                value,
                None if value is None else value <= 0.10,
                f"ours adds {ours_added:.1f} us, django-otp {otp_added:.1f} us",
            ),
            target(
                "django.time.second",
                "Django, the second goal: ours' added time / django-otp's added time",
                "<= 0.03",
                value,
                None if value is None else value <= 0.03,
                f"ours adds {ours_added:.1f} us, django-otp {otp_added:.1f} us",
            ),
            target(
                "django.floor",
                "Django: the least gate's added time (bench/floor.py) / django-otp's: no gate that"
                " keeps ours' checks adds less",
                "measured",
                floor["ratio"],
                floor["ratio"] is not None,
                f"the least gate adds {timed['floor'].median - plain:.1f} us, ours"
                f" {ours_added:.1f} us; per-round ratios p25-p75"
                f" {floor['per_round_p25']}-{floor['per_round_p75']} (ours"
                f" {ratio['per_round_p25']}-{ratio['per_round_p75']})",
            ),
        ],
        "notes": [
            "Database sessions (Django's default) on SQLite with persistent connections; the"
            " view reads request.user, as any protected view does, so the session and user"
            " queries belong to the baseline.",
            "django-otp's added query is its device lookup (Device.from_persistent_id).",
        ],
    }
