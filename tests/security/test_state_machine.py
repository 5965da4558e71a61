"""Stateful fuzzing of the whole middleware (issue 14, "Prove it"): random sequences of what
two users in three browsers, an attacker copying cookies and an operator can do, checked
against a model of who may see the protected page.

Invariants after every step:
- the app's protected page is served only to a browser whose login session passed a factor
  (a right, unused code in this login, or a device the user trusted) since its last login and
  every revocation (sign-out, force-logout, reset, 2FA switched off and on), or where no
  factor is asked (mode off; optional mode for a user not enrolled);
- a code is accepted only when it is the user's right code for a time step not used before;
- no answer is a 500;
- the attempt counters never exceed the limits.

CI runs a fixed seed and a bounded budget (`MFA_FUZZ_EXAMPLES`, default 60 sequences of up
to 50 steps, some thousands of steps); set it higher to search longer.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import httpx
import pyotp
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.admin import Admin
from mfa_middleware.core.records import UserRecord, throttle_key, user_key
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.runtime import Runtime
from tests.e2e.helpers import (
    COOKIE,
    HTML,
    PASSWORDS,
    SECRET_KEY,
    FixedClock,
    csrf_of,
    make_app,
    secret_of,
)

pytestmark = pytest.mark.checklist(
    "UI-01", "UI-08", "UI-10", "RL-01", "RL-04", "SES-11", "SES-12", "TD-02", "TD-03", "GEN-01"
)

USERS = ("alice", "bob")
BROWSERS = 3
LIFETIME = 90 * 86400.0
TRUST = 30 * 86400.0
REAUTH = 15 * 60.0
MAX_ATTEMPTS = 3
CEILING = 9
SUCCESS = ("/account", "/_mfa/trust?next=%2Faccount")
DEVICE_COOKIE = f"{COOKIE}_device"
EXAMPLES = int(os.environ.get("MFA_FUZZ_EXAMPLES", "60"))


@dataclass
class Person:
    enrolled: bool = False
    secret: str = ""
    last_step: int = -1


@dataclass
class Browser:
    user: str | None = None
    verified: bool = False  # passed a factor since the last login and revocation
    started: float | None = None  # when its MFA session began (the first request after login)
    code_at: float = -1e18  # when a code was last accepted in this browser
    trusted_until: dict[str, float] = field(default_factory=dict)  # user -> device trust
    lost: bool = False  # its MFA cookie was dropped, replaced or tampered with


class Middleware(RuleBasedStateMachine):
    """The model and the real app, step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FixedClock()
        self.store = MemoryStore()
        self.app = make_app(
            self.clock,
            store=self.store,
            trust_duration="30d",
            max_attempts=MAX_ATTEMPTS,
            failure_ceiling=CEILING,
            enroll_code_ttl=None,
        )
        config = MFAConfig(
            secret_keys=[SECRET_KEY], store=self.store, clock=self.clock, enroll_code_ttl=None
        )
        self.ops = Admin(Runtime(config), actor="test:fuzz")
        self.mode = "required"
        self.people = {name: Person() for name in USERS}
        self.browsers = [Browser() for _ in range(BROWSERS)]
        transport = httpx.ASGITransport(self.app)
        self.clients = [
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
            for _ in range(BROWSERS)
        ]

    def teardown(self) -> None:
        for c in self.clients:
            self.loop.run_until_complete(c.aclose())
        self.loop.close()

    # -- plumbing ---------------------------------------------------------------------------

    def request(self, index: int, method: str, path: str, **kwargs: object) -> httpx.Response:
        response: httpx.Response = self.loop.run_until_complete(
            self.clients[index].request(method, path, headers=HTML, **kwargs)  # type: ignore[arg-type]
        )
        assert response.status_code < 500, (method, path, response.text[:300])
        self._began(index)
        return response

    def _began(self, index: int) -> None:
        browser = self.browsers[index]
        if browser.lost and browser.user is not None:
            # a login whose MFA session is gone: over where no factor would be asked, else a
            # new MFA session that needs one
            browser.lost = False
            if self.factor_free(browser.user):
                browser.user, browser.verified, browser.started = None, False, None
                return
        browser.lost = False
        if browser.user is not None and browser.started is None:
            browser.started = self.clock()

    def cookie(self, index: int, name: str = COOKIE) -> str | None:
        return next((c.value for c in self.clients[index].cookies.jar if c.name == name), None)

    def set_cookie(self, index: int, name: str, value: str) -> None:
        """Replace what the browser holds under `name` (as a person editing cookies can)."""
        jar = self.clients[index].cookies.jar
        for cookie in [c for c in jar if c.name == name]:
            jar.clear(cookie.domain, cookie.path, cookie.name)
        self.clients[index].cookies.set(name, value, domain="testserver.local", path="/")

    def form(self, index: int, page: str) -> tuple[httpx.Response, str | None]:
        r = self.request(index, "GET", page)
        return r, (csrf_of(r.text) if 'name="csrf"' in r.text else None)

    def step(self) -> int:
        return int(self.clock()) // 30

    def device_trusted(self, browser: Browser) -> bool:
        if browser.user is None or not self.people[browser.user].enrolled:
            return False
        return browser.trusted_until.get(browser.user, 0.0) > self.clock()

    def factor_free(self, user: str) -> bool:
        """No factor is asked of `user` (mode off, or optional mode before enrolling)."""
        return self.mode == "off" or (self.mode == "optional" and not self.people[user].enrolled)

    def allowed(self, browser: Browser) -> bool:
        if browser.user is None or (browser.lost and self.factor_free(browser.user)):
            return False
        person = self.people[browser.user]
        if self.factor_free(browser.user):
            return True
        if not person.enrolled:
            return False
        return browser.verified or self.device_trusted(browser)

    def revoke(self, user: str, *, devices: bool = False) -> None:
        """Every MFA session of `user` is over: the app logs each out at its next request. A
        login that has made no request yet has no MFA session to end: it starts a new one
        under the new epochs (and still needs a factor)."""
        for browser in self.browsers:
            if browser.user == user and browser.started is not None:
                browser.user, browser.verified, browser.started = None, False, None
            elif browser.user == user:
                browser.verified = False
            if devices:
                browser.trusted_until.pop(user, None)

    def expire(self) -> None:
        """Sessions past their lifetime are over (the app logs them out)."""
        for browser in self.browsers:
            if browser.started is not None and self.clock() - browser.started >= LIFETIME:
                browser.user, browser.verified, browser.started = None, False, None

    # -- the users --------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """alice and bob enroll, each in a browser of their own; the third is nobody's."""
        self.clock.set(1_700_000_000)
        for index, user in enumerate(USERS):
            self.log_in(index, user)
            self.enroll(index)
            assert self.people[user].enrolled
        self.clock.advance(30)

    def pick(self, choice: int, fit: object) -> int | None:
        """The `choice`-th browser (modulo) of those `fit(browser)` holds for."""
        fitting = [i for i, b in enumerate(self.browsers) if fit(b)]  # type: ignore[operator]
        return fitting[choice % len(fitting)] if fitting else None

    def signed_in(self, browser: Browser) -> bool:
        return browser.user is not None

    def enrolled_in(self, browser: Browser) -> bool:
        return browser.user is not None and self.people[browser.user].enrolled

    def awaiting_code(self, browser: Browser) -> bool:
        return self.enrolled_in(browser) and not browser.verified

    @rule(index=st.integers(0, BROWSERS - 1), user=st.sampled_from(USERS))
    def log_in(self, index: int, user: str) -> None:
        _, csrf = self.form(index, "/login")
        data = {"username": user, "password": PASSWORDS[user], "csrf": csrf or ""}
        r = self.request(index, "POST", "/login", data=data)
        if r.status_code == 403:  # the login page was not shown: the gate sent it elsewhere
            return
        assert r.status_code == 303
        browser = self.browsers[index]
        location = r.headers["location"]
        if location == "/":  # the app's own answer: logged in
            browser.user, browser.verified, browser.started = user, False, None
        elif location.startswith("/login"):  # a session that was over ended first
            browser.user, browser.verified, browser.started = None, False, None
        else:  # still logged in as before, without a factor: the gate sent it to our pages
            assert location.startswith("/_mfa/"), location

    @rule(index=st.integers(0, BROWSERS - 1))
    def log_out_of_the_app(self, index: int) -> None:
        r, csrf = self.form(index, "/account")  # the app's page, with its log-out button
        if r.status_code != 200 or csrf is None:
            return
        self.request(index, "POST", "/logout", data={"csrf": csrf})
        browser = self.browsers[index]
        browser.user, browser.verified, browser.started = None, False, None

    @precondition(lambda self: any(self.signed_in(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99))
    def sign_out_of_2fa(self, choice: int) -> None:
        index = self.pick(choice, self.signed_in)
        assert index is not None
        _, csrf = self.form(index, "/_mfa/settings")
        if csrf is None:
            return
        self.request(index, "POST", "/_mfa/logout", data={"csrf": csrf})
        browser = self.browsers[index]
        browser.user, browser.verified, browser.started = None, False, None

    @rule(index=st.integers(0, BROWSERS - 1))
    def open_the_protected_page(self, index: int) -> None:
        self.expire()
        browser = self.browsers[index]
        allowed = self.allowed(browser)
        r = self.request(index, "GET", "/account")
        if r.status_code == 200:
            assert allowed, f"browser {index} saw the protected page: {browser}"
            if browser.user is not None and self.device_trusted(browser):
                browser.verified = True  # the session the device let in stays verified
        elif r.status_code == 303 and r.headers["location"].startswith("/login"):
            browser.user, browser.verified, browser.started = None, False, None

    @rule(index=st.integers(0, BROWSERS - 1))
    def enroll(self, index: int) -> None:
        browser = self.browsers[index]
        if browser.user is None or self.people[browser.user].enrolled or self.mode == "off":
            return
        r, csrf = self.form(index, "/_mfa/enroll/totp")
        if r.status_code != 200 or csrf is None or "<code>" not in r.text:
            return
        secret = secret_of(r.text)
        code = pyotp.TOTP(secret).at(int(self.clock()))
        r = self.request(
            index,
            "POST",
            "/_mfa/enroll/totp",
            data={"csrf": csrf, "code": code, "next": "/account"},
        )
        if r.status_code == 303 and r.headers["location"] in SUCCESS:
            user = browser.user
            started = browser.started
            self.revoke(user)  # enrolling ends the user's other sessions
            self.people[user] = Person(True, secret, self.step())
            browser.user, browser.started = user, started
            browser.verified, browser.code_at = True, self.clock()

    def _submit(self, index: int, code: str, *, right: bool) -> None:
        browser = self.browsers[index]
        _, csrf = self.form(index, "/_mfa/challenge?next=/account")
        if csrf is None or browser.user is None:
            return
        r = self.request(
            index, "POST", "/_mfa/challenge", data={"csrf": csrf, "code": code, "next": "/account"}
        )
        if r.status_code == 303 and r.headers["location"] in SUCCESS:
            person = self.people[browser.user]
            assert right, f"a wrong code was accepted for {browser.user}"
            assert self.step() > person.last_step, f"a used time step was accepted again: {code}"
            person.last_step = self.step()
            browser.verified, browser.code_at = True, self.clock()

    @precondition(lambda self: any(self.awaiting_code(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99))
    def enter_the_right_code(self, choice: int) -> None:
        index = self.pick(choice, self.awaiting_code)
        assert index is not None
        user = self.browsers[index].user
        assert user is not None
        self._submit(index, pyotp.TOTP(self.people[user].secret).at(int(self.clock())), right=True)

    @precondition(lambda self: any(self.awaiting_code(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99), offset=st.sampled_from([-3, 2, 5, 1000]))
    def enter_a_wrong_code(self, choice: int, offset: int) -> None:
        index = self.pick(choice, self.awaiting_code)
        assert index is not None
        user = self.browsers[index].user
        assert user is not None
        totp = pyotp.TOTP(self.people[user].secret)
        near = {totp.at(int(self.clock()) + 30 * d) for d in (-1, 0, 1)}
        code = totp.at(int(self.clock()) + 30 * offset)
        if code not in near:
            self._submit(index, code, right=False)

    @rule(
        index=st.integers(0, BROWSERS - 1), code=st.sampled_from(["", "12345", "abcdef", "1" * 7])
    )
    def enter_something_that_is_no_code(self, index: int, code: str) -> None:
        self._submit(index, code, right=False)

    @precondition(lambda self: any(self.enrolled_in(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99))
    def trust_this_device(self, choice: int) -> None:
        index = self.pick(choice, self.enrolled_in)
        assert index is not None
        browser = self.browsers[index]
        r, csrf = self.form(index, "/_mfa/trust?next=/account")
        if r.status_code != 200 or csrf is None or browser.user is None:
            return
        data = {"csrf": csrf, "choice": "trust", "next": "/account"}
        r = self.request(index, "POST", "/_mfa/trust", data=data)
        if r.status_code == 303 and r.headers["location"] == "/account":
            recent = self.clock() - browser.code_at <= REAUTH
            assert recent, "a device was trusted without a recent code"
            browser.trusted_until[browser.user] = self.clock() + TRUST

    @precondition(lambda self: any(self.signed_in(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99))
    def delete_this_device(self, choice: int) -> None:
        index = self.pick(choice, self.signed_in)
        assert index is not None
        browser = self.browsers[index]
        r, csrf = self.form(index, "/_mfa/devices")
        if r.status_code != 200 or csrf is None or browser.user is None:
            return
        cookie = self.ops.runtime.devices.decode(self.cookie(index, DEVICE_COOKIE))
        if cookie is None:
            return
        data = {"csrf": csrf, "device": cookie.device_id, "action": "delete"}
        r = self.request(index, "POST", "/_mfa/devices", data=data)
        if r.status_code == 303 and "done=deleted" in r.headers["location"]:
            browser.trusted_until.pop(browser.user, None)

    @precondition(lambda self: any(self.enrolled_in(b) for b in self.browsers))
    @rule(choice=st.integers(0, 99))
    def turn_2fa_off(self, choice: int) -> None:
        index = self.pick(choice, self.enrolled_in)
        assert index is not None
        browser = self.browsers[index]
        r, csrf = self.form(index, "/_mfa/disable")
        if r.status_code != 200 or csrf is None or browser.user is None:
            return
        r = self.request(index, "POST", "/_mfa/disable", data={"csrf": csrf})
        record = UserRecord.from_doc(self.store.get(user_key(browser.user)))
        if record.method is None and self.people[browser.user].enrolled:
            assert self.clock() - browser.code_at <= REAUTH, "2FA turned off without a code"
            user, started = browser.user, browser.started
            self.people[user] = Person()
            self.revoke(user, devices=True)  # every other session ends; this one carries on
            browser.user, browser.started = user, started

    # -- the attacker -----------------------------------------------------------------------

    @rule(source=st.integers(0, BROWSERS - 1), to=st.integers(0, BROWSERS - 1))
    def copy_the_mfa_cookie(self, source: int, to: int) -> None:
        if source == to:
            return
        value = self.cookie(source)
        if value is None:
            return
        self.set_cookie(to, COOKIE, value)
        self.lose_mfa_session(to)

    def lose_mfa_session(self, index: int) -> None:
        browser = self.browsers[index]
        browser.lost = browser.started is not None
        browser.verified, browser.started = False, None

    @rule(source=st.integers(0, BROWSERS - 1), to=st.integers(0, BROWSERS - 1))
    def clone_the_whole_browser(self, source: int, to: int) -> None:
        if source == to:
            return
        self.clients[to].cookies.clear()
        for cookie in list(self.clients[source].cookies.jar):
            self.set_cookie(to, cookie.name, cookie.value or "")
        original = self.browsers[source]
        self.browsers[to] = Browser(
            original.user,
            original.verified,
            original.started,
            original.code_at,
            dict(original.trusted_until),  # its device cookie came along too
            original.lost,
        )

    @rule(index=st.integers(0, BROWSERS - 1))
    def tamper_with_the_mfa_cookie(self, index: int) -> None:
        value = self.cookie(index)
        if not value:
            return
        flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
        self.set_cookie(index, COOKIE, flipped)
        self.lose_mfa_session(index)

    # -- the operator and time --------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), devices=st.booleans())
    def force_logout(self, user: str, devices: bool) -> None:
        self.ops.logout(user, revoke_devices=devices)
        self.revoke(user, devices=devices)

    @rule(user=st.sampled_from(USERS))
    def reset(self, user: str) -> None:
        self.ops.reset(user)
        self.people[user] = Person()
        self.revoke(user, devices=True)

    @rule(mode=st.sampled_from(["off", "optional", "required"]))
    def change_the_mode(self, mode: str) -> None:
        self.ops.set_mode(mode)
        if self.mode == "off" and mode != "off":  # everyone enrolls again, nobody is logged out
            for name in USERS:
                self.people[name] = Person()
            for browser in self.browsers:
                browser.verified = False
                browser.trusted_until.clear()
        self.mode = mode

    @rule(seconds=st.sampled_from([10, 31, 300, 16 * 60, 31 * 86400, 100 * 86400]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.expire()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def attempt_counters_stay_within_the_limits(self) -> None:
        for user in USERS:
            state = ThrottleState.from_doc(self.store.get(throttle_key(user)))
            assert state.in_window <= MAX_ATTEMPTS
            assert state.failures <= CEILING


Middleware.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_random_sequences_of_users_attackers_and_operators = Middleware.TestCase
