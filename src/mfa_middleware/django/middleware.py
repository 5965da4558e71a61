"""The Django middleware: `request.user` is the principal, Django's logout ends sessions.

Place it after `AuthenticationMiddleware`. It is sync and async capable: under ASGI Django it
runs the shared flows with the async driver and reads the user with `request.auser()`. A
verified request costs no database query of its own: the user is the one Django's auth loads
for the view anyway, and the MFA state comes from the MFA store's coherent cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from mfa_middleware.core.addresses import peer_text
from mfa_middleware.core.effects import Effect
from mfa_middleware.core.principal import Principal
from mfa_middleware.django.settings import runtime
from mfa_middleware.errors import StoreError
from mfa_middleware.events import logger
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.gate import (
    NO_APP_SESSION,
    UNGATED,
    AppSession,
    GateResult,
    Replay,
    access,
    bound,
    end_session,
    gate,
    remember,
    replay,
)
from mfa_middleware.web.http import Cookie, RequestFacts, Response, cookie_value
from mfa_middleware.web.messages import misconfigured
from mfa_middleware.web.page import PageOutcome
from mfa_middleware.web.routes import handle_page

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
    )


def app_session(request: HttpRequest) -> AppSession:
    """Django cycles the session key at every login: a new login means a new code."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    return AppSession(marker=key) if key else NO_APP_SESSION


def to_django(response: Response, *, head: bool) -> HttpResponse:
    result = HttpResponse(b"" if head else response.body, status=response.status)
    for name, value in response.headers:
        result.headers[name] = value
    _set_cookies(result, response.cookies)
    return result


def _set_cookies(response: HttpResponseBase, cookies: list[Cookie]) -> None:
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


class MFAMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _ticket(self, request: HttpRequest, rt: Runtime, user: Any) -> Replay | None:
        """The verified-request memo's answer for this request (see `replay`); None for an
        anonymous request or one to our own pages, which always run their flow."""
        path = request.path_info
        if path == rt.prefix or path.startswith(rt.prefix + "/"):
            return None
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        token = cookie_value(request.META.get("HTTP_COOKIE", ""), rt.cookie_name)
        return replay(rt, token, app_session(request).marker, str(user.pk))

    def _flow(
        self, request: HttpRequest, rt: Runtime, principal: Principal | None, ticket: Replay | None
    ) -> tuple[RequestFacts, Generator[Effect, Any, GateResult | PageOutcome] | None]:
        """The flow this request needs, or None when it simply passes (anonymous, or a
        verified request the gate already answered: see `replay`)."""
        path = request.path_info
        page = path == rt.prefix or path.startswith(rt.prefix + "/")
        facts = facts_from_request(request, with_body=page)
        if page:
            return facts, handle_page(rt, facts, principal, app_session(request))
        if principal is None or ticket is None:
            return facts, None
        action = access(rt, ticket, facts, principal)
        if action == UNGATED:
            return facts, None
        return facts, gate(rt, facts, principal, app_session(request), action)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        rt = runtime()
        if not hasattr(request, "user"):
            return misconfigured_response(request, rt)
        user = request.user
        ticket = self._ticket(request, rt, user)
        if ticket is not None and ticket.final:
            return self.get_response(request)
        principal = principal_from_user(user, with_groups=rt.config.rule_set.uses_groups)
        facts, flow = self._flow(request, rt, principal, ticket)
        if flow is None:
            return self.get_response(request)
        result = rt.run(flow)
        if isinstance(result, GateResult) and ticket is not None:
            remember(rt, ticket, result)
        if result.end_app_session:
            request.mfa_ended = True  # type: ignore[attr-defined]
            auth.logout(request)
        if (answer := own_answer(facts, result)) is not None:
            return answer
        assert isinstance(result, GateResult)
        response = self.get_response(request)
        _set_cookies(response, result.cookies)  # type: ignore[arg-type]
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        rt = runtime()
        if not hasattr(request, "auser"):
            return misconfigured_response(request, rt)
        user = await request.auser()
        ticket = self._ticket(request, rt, user)
        if ticket is not None and ticket.final:
            return await self.get_response(request)  # type: ignore[misc]
        if rt.config.rule_set.uses_groups:
            principal = await sync_to_async(principal_from_user)(user, with_groups=True)
        else:
            principal = principal_from_user(user)
        facts, flow = self._flow(request, rt, principal, ticket)
        if flow is None:
            return await self.get_response(request)  # type: ignore[misc]
        result = await rt.arun(flow)
        if isinstance(result, GateResult) and ticket is not None:
            remember(rt, ticket, result)
        if result.end_app_session:
            request.mfa_ended = True  # type: ignore[attr-defined]
            await auth.alogout(request)
        if (answer := own_answer(facts, result)) is not None:
            return answer
        assert isinstance(result, GateResult)
        response = await self.get_response(request)  # type: ignore[misc]
        _set_cookies(response, result.cookies)
        return response


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
    copied MFA cookie replays nothing after the user logged out (SES-10)."""
    if request is None or user is None or getattr(request, "mfa_ended", False):
        return
    rt = runtime()
    claims = rt.sessions.decode(request.COOKIES.get(rt.cookie_name))
    principal = principal_from_user(user)
    app = app_session(request)
    if claims is None or principal is None or not bound(rt, claims, principal, app):
        return
    try:
        rt.run(end_session(rt, claims, principal.id, actor="app_logout"))
    except StoreError as exc:  # the logout goes on: Django's session is flushed anyway
        logger.error("2FA store unavailable, sign-out not recorded: %s", exc)


def own_answer(facts: RequestFacts, result: GateResult | PageOutcome) -> HttpResponse | None:
    """Our response (a page, a redirect, a refusal), or None to let the view answer."""
    if result.response is None:
        return None
    return to_django(result.response, head=facts.method == "HEAD")
