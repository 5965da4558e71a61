"""Per-view 2FA requirements for Flask: `@mfa_required` or `@mfa_required(max_age="5m")`.

The decorator asks what a `two_factor` rule would on that view (see `web.stepup`) and answers
the same way: a browser is sent to confirm it's them and comes back, an API client gets 401
with RFC 9470's `WWW-Authenticate`. `mfa_middleware.wsgi.MFAMiddleware` must wrap the app's
`wsgi_app` (it sets `environ["mfa"]`, which views may read too).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response as FlaskResponse
from flask import request

from mfa_middleware.core.mfa_state import ANONYMOUS_STATE, MFAState
from mfa_middleware.options import Duration
from mfa_middleware.web.stepup import answer_requirement, need_of
from mfa_middleware.wsgi import facts_from_environ

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
            return FlaskResponse(answer.body, status=answer.status, headers=answer.raw_headers())

        return cast(View, checked)

    return decorate(view) if view is not None else decorate
