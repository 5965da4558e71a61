"""Every `mfa-admin` command against the running demo (uvicorn, its SQLite store, its keys),
each checked by what a person signed in to the demo sees next, not by the output alone."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from examples.starlette_app.users import DEMO_API_TOKENS, DEMO_PASSWORDS

from tests.test_demo import ROOT, first_answer, free_port

SCRIPT = Path(sys.executable).parent / "mfa-admin"
CONFIG = "examples.starlette_app.app:mfa_config"
HTML = {"accept": "text/html"}
SECRET = "cli-demo-tests-5b1e9c3a7d2f4e6081a3c5e7f9b1d3a5-Qm4Zt8Vx2Kp"


class Demo:
    """The demo served by uvicorn in a fresh data folder; `admin(...)` runs mfa-admin on it."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MFA_DEMO_DATA": str(data), "MFA_SECRET": SECRET}
        for name in ("MFA_CONFIG", "MFA_STORE_URL", "MFA_SECRET_KEYS"):
            self.env.pop(name, None)

    def admin(self, *args: str, config: bool = True) -> Any:
        done = self.text("--json", *args, config=config)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def text(self, *args: str, config: bool = True) -> subprocess.CompletedProcess[str]:
        """mfa-admin as a person runs it: its text output, whatever the exit status."""
        command = [str(SCRIPT), *(("--config", CONFIG) if config else ()), *args]
        return subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=5, headers=HTML)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = Demo(tmp_path_factory.mktemp("cli-demo"))
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "examples.starlette_app.app:create_app",
        "--host", "127.0.0.1", "--port", str(running.port), "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, env=running.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert first_answer(proc, f"{running.base}/login", 30).status_code == 200
        yield running
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def settings_put_back(demo: Demo) -> Iterator[None]:
    """The demo's mode and session lifetime as they started, after each test, even a failing
    one: one failure must not make every later test fail with it."""
    yield
    demo.admin("mode", "required")
    demo.admin("session-lifetime", "90d")


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', page)
    assert match, "no form on the page"
    return html.unescape(match.group(1))


def log_in(c: httpx.Client, user: str) -> httpx.Response:
    """The demo's login form as a person fills it in (its CSRF token too), then the account
    page. The browser keeps its cookies, as a browser does (its device cookie among them)."""
    form = c.get("/login")
    data = {"username": user, "password": DEMO_PASSWORDS[user], "csrf": csrf(form.text)}
    r = c.post("/login", data=data)
    assert r.status_code == 303, r.text
    return c.get("/account")


def enroll(c: httpx.Client) -> pyotp.TOTP:
    page = c.get("/_mfa/enroll/totp")
    assert page.status_code == 200, page.text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    done = c.post("/_mfa/enroll/totp", data={"csrf": csrf(page.text), "code": totp.now()})
    assert done.status_code in (200, 303), done.text
    return totp


def code_in(c: httpx.Client, totp: pyotp.TOTP) -> None:
    """Enter a code at the challenge: the next time step's (within the drift window), since
    the current one was used to enroll."""
    page = c.get("/_mfa/challenge")
    assert page.status_code == 200, page.text
    code = totp.at(int(time.time()) + 30)
    r = c.post("/_mfa/challenge", data={"csrf": csrf(page.text), "code": code})
    assert r.status_code == 303, r.text


def emailed_code(printed: str, address: str) -> str:
    """The enrollment code in the email the demo's console sender printed for `address`."""
    mail = printed.rpartition(f"[mfa_middleware email to {address}]")[2]
    match = re.search(r"\n([0-9a-z]{4}(?:-[0-9a-z]{4}){3})\n", mail)
    assert match, printed
    return match.group(1)


def verified(c: httpx.Client) -> bool:
    r = c.get("/account")
    return r.status_code == 200


def logged_out(c: httpx.Client) -> bool:
    r = c.get("/account")
    return r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.fixture(scope="module")
def alice(demo: Demo) -> Iterator[tuple[httpx.Client, pyotp.TOTP]]:
    with demo.browser() as c:
        first = log_in(c, "alice")
        assert first.headers["location"].startswith("/_mfa/enroll")
        totp = enroll(c)
        assert verified(c)
        yield c, totp


def test_status_and_devices_say_what_the_browser_did(demo: Demo, alice: Any) -> None:
    status = demo.admin("status", "alice")
    assert status["enrolled"] is True
    assert status["method"] == "totp"
    devices = demo.admin("devices", "alice")["devices"]
    assert len(devices) == 1  # the browser that enrolled
    assert devices[0]["name"]


def test_logout_then_logout_all_end_the_browsers_session(demo: Demo, alice: Any) -> None:
    c, totp = alice
    demo.admin("logout", "alice")
    assert logged_out(c)
    log_in(c, "alice")
    code_in(c, totp)  # on to "Trust this device?": trust it
    page = c.get("/_mfa/trust?next=/account")
    assert page.status_code == 200, page.text
    c.post("/_mfa/trust", data={"csrf": csrf(page.text), "choice": "trust", "next": "/account"})
    assert verified(c)
    demo.admin("logout", "--all", "--yes")
    assert logged_out(c)
    assert log_in(c, "alice").status_code == 200  # a trusted device: no code asked
    demo.admin("logout", "alice", "--devices")
    assert logged_out(c)
    assert log_in(c, "alice").headers["location"].startswith("/_mfa/challenge")


def test_exempt_and_unexempt_reach_the_api(demo: Demo) -> None:
    token = {"authorization": f"Bearer {DEMO_API_TOKENS['bob']}", "accept": "application/json"}
    with demo.browser() as api:
        assert api.get("/api/profile", headers=token).status_code == 401
        assert demo.admin("exempt", "bob", "--new") == {
            "user": "bob",
            "exempt": True,
            "browser": False,
        }
        assert api.get("/api/profile", headers=token).json() == {"username": "bob"}
        with demo.browser() as browser:  # his password alone opens no session
            assert log_in(browser, "bob").headers["location"].startswith("/_mfa/enroll")
        demo.admin("unexempt", "bob")
        assert api.get("/api/profile", headers=token).status_code == 401


def test_mode_require_and_session_lifetime(demo: Demo, alice: Any) -> None:
    with demo.browser() as bob:
        demo.admin("mode", "optional")
        assert log_in(bob, "bob").status_code == 200  # not enrolled, optional: in
        demo.admin("require", "bob")
        assert bob.get("/account").headers["location"].startswith("/_mfa/enroll")
        demo.admin("unrequire", "bob")
        assert verified(bob)
        demo.admin("mode", "required")
        assert bob.get("/account").headers["location"].startswith("/_mfa/enroll")
        demo.admin("mode", "optional")
        demo.admin("session-lifetime", "1s")
        time.sleep(1.2)
        assert logged_out(bob)
        demo.admin("session-lifetime", "90d")
        demo.admin("mode", "required")


def test_revoke_device_makes_a_trusted_browser_enter_a_code_again(demo: Demo) -> None:
    with demo.browser() as bob:
        demo.admin("mode", "optional")
        log_in(bob, "bob")
        totp = enroll(bob)  # a recent code: he may trust this browser from his device list
        devices = demo.admin("devices", "bob")["devices"]
        assert len(devices) == 1
        page = bob.get("/_mfa/devices")
        r = bob.post(
            "/_mfa/devices",
            data={"csrf": csrf(page.text), "device": devices[0]["device"], "action": "trust"},
        )
        assert r.status_code == 303
        assert demo.admin("devices", "bob")["devices"][0]["trusted"] is True
        assert log_in(bob, "bob").status_code == 200  # trusted: no code
        assert demo.admin("revoke-device", "bob", devices[0]["device"])["revoked"]
        assert log_in(bob, "bob").headers["location"].startswith("/_mfa/challenge")
        code_in(bob, totp)
        assert verified(bob)
        demo.admin("mode", "required")


def test_reset_prints_an_enrollment_code_that_works(demo: Demo, alice: Any) -> None:
    """The bug this test is for: with only --store the code was signed with a throwaway key
    and could never be entered. With --config (the demo's own keys) it works."""
    c, _ = alice
    done = subprocess.run(
        [str(SCRIPT), "--store", f"sqlite:///{demo.data / 'mfa.sqlite3'}", "reset", "alice",
         "--yes"],
        cwd=ROOT, env=demo.env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs the app's secret keys" in done.stderr
    done = demo.text("--json", "reset", "alice", "--yes")
    assert json.loads(done.stdout) == {
        "reset": "alice",
        "enrollment_code_emailed_to": "a***@example.com",  # her address of record
    }
    code = emailed_code(done.stderr, "alice@example.com")
    assert logged_out(c)
    r = log_in(c, "alice")
    assert r.headers["location"].startswith("/_mfa/enroll")
    unlock = c.get("/_mfa/enroll/unlock")
    assert unlock.status_code == 200
    r = c.post("/_mfa/enroll/unlock", data={"csrf": csrf(unlock.text), "code": code})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/_mfa/enroll")
    enroll(c)
    assert verified(c)
    assert demo.admin("status", "alice")["enrolled"] is True


def add_app(c: httpx.Client, name: str) -> pyotp.TOTP:
    """Add a second authenticator app from the settings (the session verified just now)."""
    page = c.get("/_mfa/enroll/totp")
    assert page.status_code == 200, page.text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    data = {"csrf": csrf(page.text), "code": totp.now(), "name": name}
    done = c.post("/_mfa/enroll/totp", data=data)
    assert done.status_code in (200, 303), done.text
    return totp


def test_remove_authenticator_takes_one_way_away_and_never_the_last(demo: Demo) -> None:
    with demo.browser() as bob:
        log_in(bob, "bob")  # run alone too: the store knows bob once he has signed in
        done = demo.text("reset", "bob", "--yes")  # a known start
        code = emailed_code(done.stderr, "bob@example.com")
        assert logged_out(bob)  # the reset ended his session
        assert log_in(bob, "bob").headers["location"].startswith("/_mfa/enroll")
        unlock = bob.get("/_mfa/enroll/unlock")
        r = bob.post("/_mfa/enroll/unlock", data={"csrf": csrf(unlock.text), "code": code})
        assert r.status_code == 303
        enroll(bob)
        tablet = add_app(bob, "Tablet")
        ways = demo.admin("status", "bob")["authenticators"]
        assert [w["name"] for w in ways] == ["", "Tablet"]
        first = ways[0]["id"]
        assert demo.admin("remove-authenticator", "bob", first, "--yes") == {
            "user": "bob",
            "removed": first,
        }
        # the removed app may have been lost: every session of bob's ends, and the next
        # sign-in is verified with the tablet
        assert logged_out(bob)
        assert log_in(bob, "bob").headers["location"].startswith("/_mfa/challenge")
        code_in(bob, tablet)
        assert verified(bob)
        (left,) = demo.admin("status", "bob")["authenticators"]
        assert left["name"] == "Tablet"
        refused = subprocess.run(
            [str(SCRIPT), "--config", CONFIG, "remove-authenticator", "bob", left["id"], "--yes"],
            cwd=ROOT, env=demo.env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "is the only way 'bob' signs in: use `reset`" in refused.stderr
        assert len(demo.admin("status", "bob")["authenticators"]) == 1


def test_mode_is_shown_and_off_is_asked_first(demo: Demo, alice: Any) -> None:
    assert demo.admin("mode") == {"mode": "required"}
    refused = demo.text("mode", "off")  # no terminal to ask on: refused, nothing changed
    assert refused.returncode == 2
    assert "Turn two-step verification off for everyone?" in refused.stderr
    assert demo.text("mode").stdout == "mode: required\n"
    with demo.browser() as bob:
        assert log_in(bob, "bob").headers["location"].startswith("/_mfa/")  # still asked


def test_devices_are_listed_with_times_people_read(demo: Demo, alice: Any) -> None:
    shown = demo.text("devices", "alice")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"last_used=20\d\d-\d\d-\d\d \d\d:\d\d UTC", shown.stdout), shown.stdout
    assert re.search(r"created_at=20\d\d-\d\d-\d\d \d\d:\d\d UTC", shown.stdout)


def test_a_mistyped_store_path_is_refused_and_creates_nothing(demo: Demo) -> None:
    typo = demo.data / "mfa.sqlite"
    done = demo.text("--store", f"sqlite://{typo}", "status", "alice", config=False)
    assert done.returncode == 2
    assert "no SQLite database at" in done.stderr
    assert not typo.exists()
    right = demo.text("--store", f"sqlite://{demo.data / 'mfa.sqlite3'}", "status", "alice",
                      config=False)  # fmt: skip
    assert right.returncode == 0, right.stderr
    assert "enrolled: True" in right.stdout


def test_unlock_lets_a_locked_out_user_enter_codes_again(demo: Demo) -> None:
    with demo.browser() as bob:
        demo.admin("mode", "required")
        log_in(bob, "bob")  # whatever earlier tests did: bob is known, and starts afresh
        done = demo.text("reset", "bob", "--yes")
        code = emailed_code(done.stderr, "bob@example.com")
        assert logged_out(bob)  # the reset ended his session
        log_in(bob, "bob")
        unlock = bob.get("/_mfa/enroll/unlock")
        bob.post("/_mfa/enroll/unlock", data={"csrf": csrf(unlock.text), "code": code})
        totp = enroll(bob)
        demo.admin("logout", "bob")
        assert logged_out(bob)
        log_in(bob, "bob")
        page = bob.get("/_mfa/challenge")
        for _ in range(5):  # the demo's max_attempts: locked out
            r = bob.post("/_mfa/challenge", data={"csrf": csrf(page.text), "code": "000000"})
        assert r.status_code == 429
        assert demo.admin("status", "bob")["locked"] is True
        assert demo.admin("unlock", "bob") == {"user": "bob", "unlocked": True}
        assert demo.admin("status", "bob")["locked"] is False
        code_in(bob, totp)
        assert verified(bob)


def test_list_shows_who_set_2fa_up_in_the_demo(demo: Demo, alice: Any) -> None:
    with demo.browser() as carol:
        log_in(carol, "carol")  # signed in, sent to set 2FA up
    listed = demo.admin("list")
    names = [u["user"] for u in listed["users"]]
    assert {"alice", "carol"} <= set(names)
    assert demo.admin("list", "--enrolled", "--search", "alice")["users"][0]["methods"] == ["totp"]
    assert "carol" not in [u["user"] for u in demo.admin("list", "--enrolled")["users"]]
    assert "carol" in [u["user"] for u in demo.admin("list", "--not-enrolled")["users"]]
    shown = demo.text("list", "--enrolled")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"user=alice, .*last_seen_at=20\d\d-\d\d-\d\d", shown.stdout)


def test_events_show_what_happened_to_alice(demo: Demo, alice: Any) -> None:
    demo.admin("logout", "alice")
    shown = demo.admin("events", "alice", "--limit", "5")
    latest = shown["events"][0]
    assert latest["event"] == "forced_logout"
    assert latest["actor"].startswith("cli:")
    assert latest["target"] == "alice"
    assert any(e["event"] == "enrolled" and e["actor"] == "user:alice" for e in
               demo.admin("events", "alice")["events"])  # fmt: skip
    text = demo.text("events", "alice", "--limit", "1")
    assert re.search(r"event=forced_logout, id=[0-9a-f]{32}, at=20\d\d-\d\d-\d\d \d\d:\d\d UTC",
                     text.stdout), text.stdout  # fmt: skip
    assert logged_out(alice[0])  # her browser is signed out: keep this test last
