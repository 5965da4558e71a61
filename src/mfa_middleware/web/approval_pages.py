"""Approving sign-ins from another browser (`core.approvals`): making a trusted browser an
approver, asking for approval at the challenge and waiting for it, and answering on the
approver. The JSON API's calls (`web.api_calls`) use the same core actions and these steps."""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import Any

from mfa_middleware.core import approvals
from mfa_middleware.core.effects import Effect, Step
from mfa_middleware.core.flows import Attempt
from mfa_middleware.core.i18n import N_
from mfa_middleware.web.challenge_pages import approvals_offered, verified_claims
from mfa_middleware.web.device_pages import signed_in
from mfa_middleware.web.gate import current_device
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def _off(page: Page) -> Reply | None:
    if page.params.push is None:
        return page.message(404, N_("Not found"), N_("There is nothing here."), "not_found")
    return None


# -- making this browser an approver ----------------------------------------------------------


def approvers_get(page: Page) -> Reply:
    if (off := _off(page)) is not None:
        return off
    return _approvers_page(page, done=page.facts.query_param("done") or "")


def _approvers_page(page: Page, status: int = 200, **context: Any) -> Reply:
    assert page.params.push is not None
    device = current_device(page.rt, page.facts, page.principal)
    mine = approvals.approver_of_device(page.user, device) if device else None
    return page.render(
        "approvers.html",
        status,
        scripts=True,
        vapid_key=page.params.push.public_key,
        approvers=approvals.approvers(page.user),
        this_one=mine.id if mine else "",
        **context,
    )


def adding_approver(page: Page) -> Generator[Effect, Any, approvals.Added]:
    """This browser made an approver with the posted `subscription` and `name` (the page's
    form and the JSON API post the same two fields)."""
    device = current_device(page.rt, page.facts, page.principal)
    subscription, name = page.form.get("subscription", ""), page.form.get("name", "")
    return approvals.add(page.caller, page.params, device, name, subscription)


def approvers_post(page: Page) -> Reply:
    if (off := _off(page)) is not None:
        return off
    return Step(adding_approver(page), partial(_added, page))


def _added(page: Page, added: approvals.Added) -> Reply:
    if not added.ok:
        return _approvers_page(page, 400, refused=added.reason)
    return page.go(page.url("approvers?done=added"))


# -- asking, at the challenge -----------------------------------------------------------------


def wait_get(page: Page) -> Reply:
    """The login screen while an approval is pending: the number to pick on the approver."""
    if (off := _off(page)) is not None:
        return off
    return Step(approvals.status(page.caller), partial(_waiting, page, 200, {}))


def wait_post(page: Page) -> Reply:
    """`action=start`: ask the approvers; `action=finish` (the Continue button, or the page's
    script once approved): sign in when the approval came."""
    if (off := _off(page)) is not None:
        return off
    if page.form.get("action") == "start":
        if not approvals_offered(page):
            return page.where_to()
        asking = approvals.start(page.caller, page.params, page.user, page.url("approve"))
        return Step(asking, partial(_started, page))
    return Step(approvals.finish(page.caller, page.params), partial(_finished, page))


def _started(page: Page, started: approvals.Started) -> Reply:
    if started.approval is None:
        context = {"refused": started.reason, "retry_minutes": -(-int(started.retry_after) // 60)}
        return _waiting(page, 429, context, None)
    return _waiting(page, 200, {"sent": started.sent}, started.approval)


def _finished(page: Page, attempt: Attempt) -> Reply:
    if attempt.ok:
        return signed_in(page, verified_claims(page, approvals.KIND, attempt))
    return Step(approvals.status(page.caller), partial(_waiting, page, 200, {}))


def _waiting(
    page: Page, status: int, context: dict[str, Any], approval: approvals.Approval | None
) -> Reply:
    state = "none" if approval is None else approval.state
    return page.render(
        "approval_wait.html",
        status,
        scripts=state == approvals.PENDING,
        state=state,
        number=approval.number if approval else 0,
        expires_at=approval.expires_at if approval else 0,
        **context,
    )


def status_get(page: Page) -> Reply:
    """The pending approval's state, for the waiting page's script (and the JSON API)."""
    return Step(approvals.status(page.caller), partial(_status, page))


def _status(page: Page, approval: approvals.Approval | None) -> Reply:
    if approval is None:
        return page.json({"state": "none"})
    payload: dict[str, Any] = {"state": approval.state}
    if approval.state == approvals.PENDING:
        payload["number"] = approval.number
        payload["expires_in"] = max(0, round(approval.expires_at - page.caller.now))
    return page.json(payload)


# -- answering, on the approver ---------------------------------------------------------------


def approve_get(page: Page) -> Reply:
    """The approval the notification opened (`t`), or every pending one (an approver open on
    the app sees them without a push)."""
    if (off := _off(page)) is not None:
        return off
    device = current_device(page.rt, page.facts, page.principal)
    wanted = page.facts.query_param("t")
    if wanted is not None:
        finding = approvals.find(page.caller, device, wanted)
        return Step(finding, partial(_one, page))
    return Step(approvals.pending(page.caller, device), partial(_listed, page, device))


def _one(page: Page, found: approvals.Decided) -> Reply:
    if found.outcome != approvals.PENDING or found.approval is None:
        return _answered(page, found)
    return _approve_page(page, [found.approval], True)


def _listed(page: Page, device: str | None, rows: list[approvals.Approval]) -> Reply:
    is_approver = device is not None and approvals.approver_of_device(page.user, device)
    return _approve_page(page, rows, bool(is_approver))


def _approve_page(page: Page, rows: list[approvals.Approval], is_approver: bool) -> Reply:
    named = {a.id: a.browser(page.texts) for a in rows}  # in the approver's language
    return page.render("approve.html", approvals=rows, is_approver=is_approver, named=named)


def approve_post(page: Page) -> Reply:
    if (off := _off(page)) is not None:
        return off
    device = current_device(page.rt, page.facts, page.principal)
    picked = page.form.get("choice", "")
    choice = int(picked) if picked.isdigit() and len(picked) <= 3 else None
    deciding = approvals.decide(page.caller, page.params, device, page.form.get("t", ""), choice)
    return Step(deciding, partial(_answered, page))


ANSWERS = {  # outcome -> status, title, text
    approvals.APPROVED: (
        200,
        N_("Sign-in approved"),
        N_("The other browser is signing in now. You can close this page."),
    ),
    approvals.DENIED: (
        200,
        N_("Sign-in refused"),
        N_(
            "That sign-in was stopped, and we sent you an email about it. If it wasn't you,"
            " change your password now."
        ),
    ),
    "expired": (
        410,
        N_("Request expired"),
        N_("This request is more than 2 minutes old. Ask again from the sign-in page."),
    ),
    "answered": (
        410,
        N_("Already answered"),
        N_("This request was already approved or refused. Each one is answered once."),
    ),
}


NOT_FOUND = (
    404,
    N_("Not found"),
    N_("There is no such request for this browser. Only your approvers can answer it."),
)


def _answered(page: Page, decided: approvals.Decided) -> Reply:
    status, title, text = ANSWERS.get(decided.outcome, NOT_FOUND)
    return page.render("message.html", status, title=title, message=text)
