"""Flask: the `MFA` extension, and `@mfa_required` for a view that asks more.

    from mfa_middleware.flask import MFA
    MFA(app, MFAConfig(secret_keys=[...], login_url="/login"))

The extension runs in Flask's own request cycle (`before_request`, `after_request`), so it
reads the user the way the app does: Flask-Login's `current_user` by default, or an
`identify()` callable. A new Flask-Login login gets a new MFA session (a nonce the extension
keeps in Flask's session at `user_logged_in`); an expired or forced-out session logs the user
out of Flask-Login too; `logout_user()` ends the MFA session server-side. Views read the
session's second factor in `g.mfa` (an `MFAState`, also in `request.environ["mfa"]`).

`@mfa_required` (or `@mfa_required(max_age="5m", device_ok=False)`) asks what a `two_factor`
rule would on that view (see `web.stepup`) and answers the same way: a browser is sent to
confirm it's them and comes back, an API client gets 401 with RFC 9470's `WWW-Authenticate`.
It works behind the extension and behind `mfa_middleware.wsgi.MFAMiddleware` alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, g, request, session
from flask import Response as FlaskResponse

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.http import Response
from mfa_middleware.core.mfa_state import ANONYMOUS_STATE, MFAState
from mfa_middleware.core.principal import Principal
from mfa_middleware.options import Duration
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.entry import Entry, Incoming
from mfa_middleware.web.outcomes import Answer, Outcome, Work
from mfa_middleware.web.stepup import answer_requirement, need_of
from mfa_middleware.wsgi import facts_from_environ, read_body, wsgi_path

LOGIN_NONCE = "_mfa_login"  # in Flask's session: changes at every login
Identify = Callable[[], Principal | None]

View = TypeVar("View", bound=Callable[..., Any])


def mfa_required(
    view: View | None = None, *, max_age: Duration | None = None, device_ok: bool = True
) -> Any:
    need = need_of(max_age, device_ok)

    def decorate(function: View) -> View:
        @wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            state = request.environ.get("mfa")
            if not isinstance(state, MFAState):
                state = ANONYMOUS_STATE  # no middleware, or nobody signed in: refused
            answer = answer_requirement(state, facts_from_environ(request.environ), None, need)
            if answer is None:
                return function(*args, **kwargs)
            return to_flask(answer)

        return cast(View, checked)

    return decorate(view) if view is not None else decorate


def to_flask(response: Response) -> FlaskResponse:
    return FlaskResponse(response.body, status=response.status, headers=response.raw_headers())


def flask_login_user() -> Principal | None:
    """The default `identify`: Flask-Login's `current_user` (its `get_id()` as the stable id;
    `username`, `email`, `phone` where the user model has them)."""
    from flask_login import current_user

    user = current_user._get_current_object()  # once: each proxy access looks the user up
    if not getattr(user, "is_authenticated", False):
        return None
    user_id = str(user.get_id())
    return Principal(
        id=user_id,
        username=str(getattr(user, "username", "") or user_id),
        email=getattr(user, "email", None) or None,
        phone=getattr(user, "phone", None) or None,
    )


class MFA:
    """Two-factor authentication for a Flask app (see the module docstring).

    `config`: an `MFAConfig`, else `app.config["MFA"]` (an `MFAConfig` or a dict of its
    options); `identify`: the logged-in user as a `Principal` (default: Flask-Login's)."""

    def __init__(
        self,
        app: Flask | None = None,
        config: MFAConfig | None = None,
        *,
        identify: Identify | None = None,
    ) -> None:
        self.identify = identify or flask_login_user
        self.runtime: Runtime | None = None
        self.entry: Entry | None = None
        if app is not None:
            self.init_app(app, config)

    def init_app(self, app: Flask, config: MFAConfig | None = None) -> None:
        if config is None:
            configured = app.config.get("MFA")
            if isinstance(configured, Mapping):
                configured = MFAConfig(**configured)
            if not isinstance(configured, MFAConfig):
                from mfa_middleware.errors import ConfigError

                raise ConfigError("MFA", "pass an MFAConfig, or set app.config['MFA']")
            config = configured
        self.runtime = Runtime(config)
        self.entry = Entry(
            self.runtime,
            principal_of=lambda environ: self.identify(),
            facts_of=facts_from_environ,
        )
        app.extensions["mfa"] = self
        app.before_request(self._before)
        app.after_request(self._after)
        if self.identify is flask_login_user:
            self._follow_flask_login(app)

    def _incoming(self) -> Incoming:
        environ = request.environ
        cookies = environ.get("HTTP_COOKIE", "")
        marker = session.get(LOGIN_NONCE)
        method = request.method.upper()
        return Incoming(wsgi_path(environ), method, cookies, marker, False, environ)

    def _before(self) -> FlaskResponse | None:
        assert self.entry is not None
        assert self.runtime is not None
        incoming = self._incoming()
        limit = self.entry.body_limit(incoming.path) if incoming.method == "POST" else None
        if limit is not None:
            incoming.body = read_body(request.environ, limit)
        handled = self.entry.handle(incoming)
        outcome: Outcome = (
            self.runtime.run(handled.flow, handled.recover)
            if isinstance(handled, Work)
            else handled
        )
        if outcome.end_app_session:
            self._end_login()
        if isinstance(outcome, Answer):
            return to_flask(outcome.response)
        g.mfa = request.environ["mfa"] = outcome.mfa
        g._mfa_cookies = outcome.cookies
        return None

    def _after(self, response: FlaskResponse) -> FlaskResponse:
        for cookie in g.pop("_mfa_cookies", ()):
            response.headers.add("set-cookie", cookie.header())
        return response

    def _end_login(self) -> None:
        """Our own logout (an expired or forced-out session): Flask-Login's too."""
        g._mfa_ending = True
        if self.identify is flask_login_user:
            from flask_login import logout_user

            logout_user()
        session.clear()

    def _follow_flask_login(self, app: Flask) -> None:
        from flask_login import user_logged_in, user_logged_out

        def logged_in(sender: Any, user: Any, **extra: Any) -> None:
            session[LOGIN_NONCE] = secrets.token_urlsafe(16)  # a new login, a new MFA session

        def logged_out(sender: Any, user: Any, **extra: Any) -> None:
            """The app's logout: end this MFA session server-side, so a copy of its cookie
            replays nothing (Flask-Login still knows the user when it sends the signal)."""
            if g.get("_mfa_ending") or self.entry is None or self.runtime is None:
                return
            work = self.entry.sign_out(self._incoming())
            if work is not None:
                self.runtime.run(work.flow, work.recover)
            session.pop(LOGIN_NONCE, None)

        user_logged_in.connect(logged_in, app, weak=False)
        user_logged_out.connect(logged_out, app, weak=False)
