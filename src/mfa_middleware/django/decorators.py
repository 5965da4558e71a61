"""Per-view 2FA requirements for Django: `@mfa_required` and `MFARequiredMixin`.

They ask what a `two_factor` rule would on that view's path, with `max_age` (the last factor
at most this old: "5m", a number of seconds, a timedelta) and `device_ok` (False: a session a
trusted device let in must pass a real factor), and answer the same way (`web.stepup`): a
browser is sent to confirm it's them and comes back, an API client gets 401 with RFC 9470's
`WWW-Authenticate`. An anonymous user is sent to `LOGIN_URL`, as `login_required` would.
Sync and async views both work; the middleware must be installed (it sets `request.mfa`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from django.views import View as DjangoView

from mfa_middleware.core.mfa_state import ANONYMOUS_STATE, MFAState
from mfa_middleware.django.middleware import facts_from_request, principal_from_user, to_django
from mfa_middleware.options import Duration
from mfa_middleware.web.stepup import Need, answer_requirement, need_of

View = TypeVar("View", bound=Callable[..., Any])
if TYPE_CHECKING:
    _ViewBase = DjangoView  # the view class the mixin joins
else:
    _ViewBase = object

NO_MIDDLEWARE = (
    "mfa_required needs mfa_middleware.django.MFAMiddleware in MIDDLEWARE (it sets request.mfa)"
)


def mfa_state(request: HttpRequest) -> MFAState:
    """`request.mfa`, typed (the middleware sets it on every request; without it: nobody
    signed in, as far as 2FA knows)."""
    state = vars(request).get("mfa")
    return state if isinstance(state, MFAState) else ANONYMOUS_STATE


def refusal(request: HttpRequest, user: Any, need: Need) -> HttpResponseBase | None:
    """The response that stands in for the view, or None to call it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return redirect_to_login(request.get_full_path())
    state = vars(request).get("mfa")
    if not isinstance(state, MFAState):
        raise ImproperlyConfigured(NO_MIDDLEWARE)
    facts = facts_from_request(request, with_body=False)
    answer = answer_requirement(state, facts, principal_from_user(user), need)
    return None if answer is None else to_django(answer, head=facts.method == "HEAD")


def mfa_required(
    view: View | None = None, *, max_age: Duration | None = None, device_ok: bool = True
) -> Any:
    """`@mfa_required` or `@mfa_required(max_age="5m", device_ok=False)` on a view."""
    need = need_of(max_age, device_ok)

    def decorate(function: View) -> View:
        if iscoroutinefunction(function):

            @wraps(function)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = refusal(request, await request.auser(), need)
                return refused if refused is not None else await function(request, *args, **kwargs)

            return cast(View, markcoroutinefunction(async_view))

        @wraps(function)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = refusal(request, request.user, need)
            return refused if refused is not None else function(request, *args, **kwargs)

        return cast(View, sync_view)

    return decorate(view) if view is not None else decorate


class MFARequiredMixin(_ViewBase):
    """For class-based views: `mfa_max_age` and `mfa_device_ok` as `mfa_required` takes them.
    List it first among the view's bases."""

    mfa_max_age: Duration | None = None
    mfa_device_ok: bool = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        need = need_of(self.mfa_max_age, self.mfa_device_ok)
        parent: Callable[..., Any] = super().dispatch  # a coroutine function on an async view
        if getattr(self, "view_is_async", False):

            async def checked() -> Any:
                refused = refusal(request, await request.auser(), need)
                return refused if refused is not None else await parent(request, *args, **kwargs)

            return checked()
        refused = refusal(request, request.user, need)
        return refused if refused is not None else parent(request, *args, **kwargs)
