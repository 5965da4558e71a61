"""Plumbing of the browser tests: what they need on the machine, the demo servers, the page
watchers and the screenshots. Playwright is imported only for type checking here, so this
module loads (and can say what is missing) where playwright is not installed.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.mail_and_sms import Mailbox, smtp_server

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Request, Response, ViewportSize

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = os.environ.get("MFA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}
# Each page state a journey passes is looked at in these sizes: screenshots and axe-core at
# desktop and phone width, and the narrowest phone must not scroll sideways either.
SNAP_SIZES: tuple[tuple[str, ViewportSize], ...] = (
    ("desktop", DESKTOP),
    ("phone", {"width": 390, "height": 844}),
)
NARROWEST: ViewportSize = {"width": 320, "height": 640}
SCREENSHOT_DIR = ROOT / "docs" / "screenshots"
# A fixed, high-entropy key for the Starlette demo (MFAConfig refuses weak ones).
MFA_SECRET = "browser-tests-3f9c1e7a5b2d4068a1c9e7f3b5d2a4c6-K8mQ2xV7pLw"
MFA_PREFIX = "/_mfa/"


def missing_browser_parts() -> list[str]:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return missing


def require_parts(what: str, missing: Sequence[str], *, module_level: bool = False) -> None:
    """Fail under CI (CI=true), where every part must be installed (scripts/system-deps.sh);
    skip loudly elsewhere."""
    if not missing:
        return
    message = f"{what} need " + " and ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install them, see .ci/run)", pytrace=False)
    pytest.skip(f"SKIPPING {what.upper()}: {message}", allow_module_level=module_level)


def require_browser(*, module_level: bool = False) -> None:
    """Playwright's own browser download is never used: the tests drive Debian's Chromium."""
    require_parts("browser tests", missing_browser_parts(), module_level=module_level)


def missing_commands(*commands: tuple[str, str]) -> list[str]:
    """`(command, Debian package)` pairs whose command is not on the PATH."""
    return [
        f"{command} (apt-get install {package})"
        for command, package in commands
        if shutil.which(command) is None
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- the demo servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One running example app, and where its own (non-2FA) pages are."""

    name: str
    base_url: str
    login_path: str
    account_path: str
    data_dir: Path
    mailbox: Mailbox | None = None
    # the id the middleware knows each demo user by (Django: the primary key)
    user_ids: Mapping[str, str] = field(default_factory=lambda: {"alice": "alice", "bob": "bob"})


@contextmanager
def serve(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    ready_url: str,
    log_path: Path,
    timeout: float,
) -> Iterator[None]:
    """Run a server until the block ends; wait until `ready_url` answers 200."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    state = "exited" if proc.poll() is not None else f"not ready in {timeout} s"
                    output = log_path.read_text(errors="replace")
                    pytest.fail(f"{' '.join(command)}: {state}\n{output}", pytrace=False)
                time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


_MAILBOXES = ExitStack()


def _enter_mailbox() -> Mailbox:
    """A fresh SMTP server for one site; all are stopped when the test process ends."""
    return _MAILBOXES.enter_context(smtp_server())


atexit.register(_MAILBOXES.close)


def base_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in (
        "MFA_SECRET",
        "MFA_DEMO_DATA",
        "DJANGO_DEMO_DATA",
        "REDIS_URL",
        "MFA_DEMO_BRAND_COLOR",
        "MFA_DEMO_PUBLIC_URL",
        "PORT",
    ):
        env.pop(name, None)
    return env


@contextmanager
def starlette_site(
    python: str, tmp: Path, extra_env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[Site]:
    """examples/starlette_app under uvicorn, with a fresh data folder and a fixed key, sending
    email codes to a real SMTP server (aiosmtpd) in this process. `extra_env`: more of the
    demo's settings (MFA_DEMO_BRAND_COLOR, ...); `host`: the name the browser uses for the
    loopback server ("localhost" turns the demo's passkeys on: an IP address cannot have any)."""
    port, data = free_port(), tmp / "starlette-data"
    mailbox = _enter_mailbox()
    base = f"http://{host}:{port}"
    env = {
        **base_env(),
        **(extra_env or {}),
        "MFA_DEMO_PUBLIC_URL": base,
        "MFA_DEMO_DATA": str(data),
        "MFA_SECRET": MFA_SECRET,
        "MFA_DEMO_SMTP": f"{mailbox.host}:{mailbox.port}",
    }
    command = [
        python, "-m", "uvicorn", "--factory", "examples.starlette_app.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with serve(
        command,
        cwd=ROOT,
        env=env,
        ready_url=f"{base}/login",
        log_path=tmp / "starlette.log",
        timeout=30,
    ):
        yield Site("starlette", base, "/login", "/account", data, mailbox)


@contextmanager
def django_site(
    python: str, tmp: Path, extra_env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[Site]:
    """examples/django_app through `manage.py rundemo` (migrates, then runserver); `host` as
    for `starlette_site`."""
    port, data = free_port(), tmp / "django-data"
    mailbox = _enter_mailbox()
    base = f"http://{host}:{port}"
    env = {
        **base_env(),
        **(extra_env or {}),
        "MFA_DEMO_PUBLIC_URL": base,
        "DJANGO_DEMO_DATA": str(data),
        "MFA_DEMO_SMTP": f"{mailbox.host}:{mailbox.port}",
    }
    with serve(
        [python, "manage.py", "rundemo", "--port", str(port)],
        cwd=ROOT / "examples" / "django_app",
        env=env,
        ready_url=f"{base}/accounts/login/",
        log_path=tmp / "django.log",
        timeout=60,
    ):
        ids = {"alice": "1", "bob": "2"}  # created in this order by the demo's migration
        yield Site("django", base, "/accounts/login/", "/account/", data, mailbox, ids)


def mfa_admin(site: Site, *args: str) -> str:
    """An operator's command against a running demo's store: `manage.py mfa` on the Django
    demo's database (users named by username), `mfa-admin --store` on the Starlette demo's
    SQLite file. Returns its output."""
    if site.name == "django":
        env = {**base_env(), "DJANGO_DEMO_DATA": str(site.data_dir)}
        command = [sys.executable, "manage.py", "mfa", *args]
        cwd: Path | None = ROOT / "examples" / "django_app"
    else:
        env = None
        store = f"sqlite://{Path(site.data_dir).resolve() / 'mfa.sqlite3'}"  # sqlite:///abs/path
        command = [sys.executable, "-m", "mfa_middleware.cli", "--store", store, *args]
        cwd = None
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def flask_site(python: str, tmp: Path, host: str = "localhost") -> Iterator[Site]:
    """examples/flask_app (the Flask extension on a Flask-Login app) on Werkzeug's server."""
    port, data = free_port(), tmp / "flask-data"
    base = f"http://{host}:{port}"
    env = {
        **base_env(),
        "PORT": str(port),
        "MFA_DEMO_DATA": str(data),
        "MFA_DEMO_PUBLIC_URL": base,
        "MFA_SECRET": MFA_SECRET,
    }
    with serve(
        [python, "-m", "examples.flask_app.app"],
        cwd=ROOT,
        env=env,
        ready_url=f"{base}/login",
        log_path=tmp / "flask.log",
        timeout=30,
    ):
        yield Site("flask", base, "/login", "/", data)


@contextmanager
def spa_site(python: str, tmp: Path, host: str = "localhost") -> Iterator[Site]:
    """examples/spa (a single-page app on the 2FA JSON API) on uvicorn."""
    port, data = free_port(), tmp / "spa-data"
    base = f"http://{host}:{port}"
    env = {**base_env(), "PORT": str(port), "MFA_DEMO_DATA": str(data), "MFA_SECRET": MFA_SECRET}
    with serve(
        [python, "-m", "examples.spa.app"],
        cwd=ROOT,
        env=env,
        ready_url=f"{base}/",
        log_path=tmp / "spa.log",
        timeout=30,
    ):
        yield Site("spa", base, "/", "/", data)


# --- watching a page ------------------------------------------------------------------------


@dataclass
class PageGuard:
    """Records what a page does that it must not: load anything from another origin, serve a
    2FA page without its Content-Security-Policy, or break that policy."""

    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    mfa_pages: dict[str, str | None] = field(default_factory=dict)  # url -> CSP header
    csp_violations: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("console", self._on_console)

    def _on_request(self, request: Request) -> None:
        if urlsplit(request.url).scheme in ("data", "blob", "about"):
            return
        if origin(request.url) != self.origin:
            self.foreign_requests.append(request.url)

    def _on_response(self, response: Response) -> None:
        if response.request.resource_type != "document":
            return
        if not urlsplit(response.url).path.startswith(MFA_PREFIX) or response.status in (
            301,
            302,
            303,
            307,
            308,
        ):
            return
        self.mfa_pages[response.url] = response.all_headers().get("content-security-policy")

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def assert_clean(self, *, saw_mfa_pages: bool = True) -> None:
        """Nothing foreign, no CSP violation, and (`saw_mfa_pages`: a single-page app shows
        none) every 2FA page seen with a strict policy."""
        assert not self.foreign_requests, f"requests to other origins: {self.foreign_requests}"
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert self.mfa_pages or not saw_mfa_pages, "no 2FA page was seen"
        for url, csp in self.mfa_pages.items():
            assert csp, f"{url} has no Content-Security-Policy header"
            assert "default-src 'none'" in csp, f"{url}: weak CSP {csp!r}"
            assert "frame-ancestors 'none'" in csp, f"{url}: CSP allows framing: {csp!r}"


# --- screenshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shots:
    """Full-page screenshots, taken only when `enabled` (MFA_SCREENSHOTS=1, and only for one
    of the sites: the 2FA pages look the same on both)."""

    enabled: bool
    directory: Path = SCREENSHOT_DIR

    def take(self, page: Page, name: str, label: str) -> None:
        if not self.enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=self.directory / f"{name}-{label}.png",
            full_page=True,
            animations="disabled",
            caret="hide",
        )


def screenshots_wanted() -> bool:
    return os.environ.get("MFA_SCREENSHOTS") == "1"
