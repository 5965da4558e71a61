"""The Django middleware: `request.user` is the principal, Django's logout ends sessions.

Place it after `AuthenticationMiddleware`. It reads the request into an `Incoming`, makes the
one call (`web.entry.Entry.handle`) and writes the outcome back; its sync and async paths
share that body (`_finish`) and differ only in how they run a flow, log out and call the view.
Under ASGI Django the user is read with `request.auser()`. A verified request costs no
database query of its own: the user is the one Django's auth loads for the view anyway, and the
MFA state comes from the MFA store's coherent cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.utils.functional import LazyObject, empty

from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.http import Cookie, RequestFacts, Response
from mfa_middleware.core.principal import Principal
from mfa_middleware.django.settings import runtime
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.entry import Entry, Incoming
from mfa_middleware.web.messages import misconfigured
from mfa_middleware.web.outcomes import Answer, Outcome, Pass, Work

ENDED_BY_US: weakref.WeakSet[HttpRequest] = weakref.WeakSet()
"""Requests whose app session our middleware ended (the MFA session is over already)."""

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


def principal_from_user(user: Any, *, with_groups: bool = False) -> Principal | None:
    """A Principal from a Django user; its id is the primary key, stable across renames.

    Group names cost a query, so they are read only when a rule matches on groups."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    groups: frozenset[str] = frozenset()
    if with_groups and hasattr(user, "groups"):
        groups = frozenset(user.groups.values_list("name", flat=True))
    return Principal(
        id=str(user.pk),
        username=user.get_username(),
        login_name=user.get_username(),  # unique (USERNAME_FIELD): rules may name it
        email=getattr(user, "email", None) or None,
        groups=groups,
        attributes={
            "is_staff": bool(getattr(user, "is_staff", False)),
            "is_superuser": bool(getattr(user, "is_superuser", False)),
        },
        auth_method=str(getattr(user, "auth_method", "session")),
    )


class MetaHeaders(Mapping[str, str]):
    """Headers read straight from `request.META` when asked for; building Django's
    `request.headers` parses every META key on each request."""

    __slots__ = ("_meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self._meta = meta

    @staticmethod
    def _key(name: str) -> str:
        upper = name.upper().replace("-", "_")
        return upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{upper}"

    def __getitem__(self, name: str) -> str:
        return str(self._meta[self._key(name)])

    def __iter__(self) -> Iterator[str]:
        for key in self._meta:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def facts_from_request(request: HttpRequest, *, with_body: bool) -> RequestFacts:
    path, full = request.path_info, request.path
    return RequestFacts(
        method=(request.method or "GET").upper(),
        path=path,
        query=request.META.get("QUERY_STRING", ""),
        headers=MetaHeaders(request.META),
        client=peer_text(request.META.get("REMOTE_ADDR")),
        scheme=request.scheme or "http",
        body=request.body if with_body and request.method == "POST" else b"",
        root_path=full[: len(full) - len(path)].rstrip("/") if full.endswith(path) else "",
        language=django_language(request),
    )


def django_language(request: HttpRequest) -> str | None:
    """Django's active language, when the project uses Django's translations: with
    `LocaleMiddleware` (which sets `request.LANGUAGE_CODE`; list it before ours) or with one
    language for the whole project (`USE_I18N = False`: `LANGUAGE_CODE`). Otherwise None, and
    our pages follow the browser."""
    if hasattr(request, "LANGUAGE_CODE") or not settings.USE_I18N:
        return translation.get_language()
    return None


@dataclass(slots=True)
class Source:
    """A Django request and its user (read with `request.user` or `await request.auser()`),
    and the user's group names where the async path had to read them beforehand."""

    request: HttpRequest
    user: Any
    groups: frozenset[str] | None = None


def _unwrapped(user: Any) -> Any:
    """The user behind `request.user`'s lazy object, loaded as the view would load it: each
    attribute read through the lazy object costs Django a raised and caught AttributeError
    (about a microsecond), and the verified-request path reads three."""
    if isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


def _user_id(source: Source) -> str | None:
    user = source.user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def _principal(source: Source) -> Principal | None:
    with_groups = source.groups is None and runtime().config.access.rules.uses_groups
    principal = principal_from_user(source.user, with_groups=with_groups)
    if principal is not None and source.groups is not None:
        return replace(principal, groups=source.groups)
    return principal


def _facts(source: Source, body: bytes) -> RequestFacts:
    return facts_from_request(source.request, with_body=bool(body))


def _auth_method(source: Source) -> str:
    """As `principal_from_user` reads it."""
    return str(getattr(source.user, "auth_method", "session"))


@lru_cache(maxsize=4)
def _entry(rt: Runtime) -> Entry:
    """The entry of the process's runtime (rebuilt with it when settings change)."""
    return Entry(
        rt,
        principal_of=_principal,
        facts_of=_facts,
        user_id_of=_user_id,
        auth_method_of=_auth_method,
        request_of=_request,  # the config's hooks get Django's HttpRequest
    )


def _request(source: Source) -> HttpRequest:
    return source.request


def incoming(request: HttpRequest, user: Any, groups: frozenset[str] | None = None) -> Incoming:
    """Django cycles the session key at every login: it is the login's marker, so a new login
    always needs a new code."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    return Incoming(
        request.path_info,
        (request.method or "GET").upper(),
        request.META.get("HTTP_COOKIE", ""),
        key or None,
        False,
        Source(request, user, groups),
    )


def to_django(response: Response, *, head: bool) -> HttpResponse:
    result = HttpResponse(b"" if head else response.body, status=response.status)
    for name, value in response.headers:
        result.headers[name] = value
    _set_cookies(result, response.cookies)
    return result


def _set_cookies(response: HttpResponseBase, cookies: list[Cookie] | tuple[Cookie, ...]) -> None:
    for cookie in cookies:
        response.set_cookie(
            cookie.name,
            cookie.value,
            max_age=cookie.max_age,
            path="/",
            secure=cookie.secure,
            httponly=True,
            samesite="Strict" if cookie.samesite == "strict" else "Lax",
        )


LOG_OUT = "log_out"
VIEW = "view"
Step = Work | str


def _enter(request: HttpRequest, entry: Entry, ask: Incoming) -> Outcome | Work:
    """The one call (with the body of a POST to our pages)."""
    if ask.method == "POST" and entry.is_page(ask.path):
        ask.body = request.body
    return entry.handle(ask)


def _finish(
    request: HttpRequest, ask: Incoming, outcome: Outcome | Work
) -> Generator[Step, Any, Any]:
    """Everything after the one call, for both paths: a flow to run (yield the `Work`), the
    app's logout (yield LOG_OUT), our answer or the view's (yield VIEW) with our cookies."""
    if isinstance(outcome, Work):
        outcome = yield outcome
    assert not isinstance(outcome, Work)
    if outcome.end_app_session:
        ENDED_BY_US.add(request)  # our own logout: see end_session_at_logout
        yield LOG_OUT
    if isinstance(outcome, Answer):
        return to_django(outcome.response, head=ask.method == "HEAD")
    vars(request)["mfa"] = outcome.mfa  # request.mfa: see core.mfa_state
    response = yield VIEW
    _set_cookies(response, outcome.cookies)
    return response


class MFAMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        rt = runtime()
        if not hasattr(request, "user"):
            return misconfigured_response(request, rt)
        ask = incoming(request, _unwrapped(request.user))
        outcome = _enter(request, _entry(rt), ask)
        if outcome.__class__ is Pass and outcome.plain:  # the common case
            vars(request)["mfa"] = outcome.mfa  # request.mfa: see core.mfa_state
            return self.get_response(request)
        steps = _finish(request, ask, outcome)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Work):
                    step = steps.send(rt.run(step.flow, step.recover))
                elif step == LOG_OUT:
                    auth.logout(request)
                    step = next(steps)
                else:
                    step = steps.send(self.get_response(request))
        except StopIteration as done:
            return done.value

    async def _view(self, request: HttpRequest) -> HttpResponseBase:
        """The view's response on the async path (`get_response` is a coroutine function)."""
        response = self.get_response(request)
        return response if isinstance(response, HttpResponseBase) else await response

    async def __acall__(self, request: HttpRequest) -> Any:
        rt = runtime()
        if not hasattr(request, "auser"):
            return misconfigured_response(request, rt)
        user = await request.auser()
        groups = None
        if rt.config.access.rules.uses_groups and getattr(user, "is_authenticated", False):
            names = await sync_to_async(_group_names)(user)  # the ORM is sync-only
            groups = frozenset(names)
        ask = incoming(request, user, groups)
        outcome = _enter(request, _entry(rt), ask)
        if outcome.__class__ is Pass and outcome.plain:  # the common case
            vars(request)["mfa"] = outcome.mfa  # request.mfa: see core.mfa_state
            return await self._view(request)
        steps = _finish(request, ask, outcome)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Work):
                    step = steps.send(await rt.arun(step.flow, step.recover))
                elif step == LOG_OUT:
                    await auth.alogout(request)
                    step = next(steps)
                else:
                    step = steps.send(await self._view(request))
        except StopIteration as done:
            return done.value


def _group_names(user: Any) -> list[str]:
    return list(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else []


NO_USER = (
    "mfa_middleware.django.MFAMiddleware found no request.user: list it after "
    "django.contrib.auth.middleware.AuthenticationMiddleware in MIDDLEWARE (`manage.py check` "
    "says so too). Every request is refused until then."
)


def misconfigured_response(request: HttpRequest, rt: Runtime) -> HttpResponse:
    """A 500 page (and the reason in the log) instead of letting the request through."""
    logger.error("%s", NO_USER)
    facts = facts_from_request(request, with_body=False)
    return to_django(misconfigured(rt, facts), head=facts.method == "HEAD")


def end_session_at_logout(request: HttpRequest | None, user: Any) -> None:
    """Django's `user_logged_out`: sign this browser's MFA session out server-side, so a
    copied MFA cookie replays nothing after the user logged out (SES-10). Not when our own
    middleware is logging the user out (the session is over already)."""
    if request is None or user is None or request in ENDED_BY_US:
        return
    rt = runtime()
    work = _entry(rt).sign_out(incoming(request, user))
    if work is not None:
        rt.run(work.flow, work.recover)
