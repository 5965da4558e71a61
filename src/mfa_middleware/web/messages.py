"""Short message pages and their JSON twins: refusals, outages, errors."""

from __future__ import annotations

from mfa_middleware.core.http import RequestFacts, Response
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.principal import Principal
from mfa_middleware.runtime import Runtime
from mfa_middleware.web.http import html_response, json_response, wants_json
from mfa_middleware.web.problems import problem_response


def is_api(rt: Runtime, facts: RequestFacts) -> bool:
    """A call to the JSON API (`web.api`): its refusals are RFC 9457 problems."""
    return facts.path.startswith(rt.prefix + "/api/")


def message(
    rt: Runtime,
    facts: RequestFacts,
    principal: Principal | None,
    status: int,
    title: str,
    text: str,
    error: str,
    locale: str | None = None,
) -> Response:
    """A message page (or its JSON twin) in `locale`, else in the language negotiated here."""
    if locale is None:
        locale = rt.locale_of(facts, principal)
    texts = rt.languages.texts(locale)
    if is_api(rt, facts):
        return problem_response(status, error, texts.gettext(title), texts.gettext(text))
    if wants_json(facts, principal):
        return json_response(status, {"error": error, "message": texts.gettext(text)})
    body = rt.renderer.render(
        "message.html",
        texts,
        title=title,
        message=text,
        csrf_token="",
        next=facts.url("/"),
        user="",
        prefix=facts.url(rt.prefix),
    )
    return html_response(status, body)


def forbidden(rt: Runtime, facts: RequestFacts, principal: Principal | None) -> Response:
    return message(
        rt,
        facts,
        principal,
        403,
        N_("Request refused"),
        N_(
            "This form has expired or did not come from this site. Go back, reload the "
            "page and try again."
        ),
        "csrf_failed",
    )


def unavailable(rt: Runtime, facts: RequestFacts, principal: Principal | None) -> Response:
    return message(
        rt,
        facts,
        principal,
        503,
        N_("Temporarily unavailable"),
        N_("Sign-in verification is unavailable right now. Please try again in a moment."),
        "mfa_unavailable",
    )


def denied(rt: Runtime, facts: RequestFacts, principal: Principal | None) -> Response:
    return message(
        rt,
        facts,
        principal,
        403,
        N_("Access denied"),
        N_("You do not have access to this page."),
        "forbidden",
    )


def misconfigured(rt: Runtime, facts: RequestFacts) -> Response:
    """The middleware cannot tell who is signed in (see `SetupError`): refuse, never pass."""
    return message(
        rt,
        facts,
        None,
        500,
        N_("Sign-in is not set up correctly"),
        N_(
            "This site's two-step verification is not set up correctly, so the page can't be"
            " shown. Please try again later or contact the site's administrator."
        ),
        "mfa_misconfigured",
    )
