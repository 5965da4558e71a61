"""The user's own account pages: the settings (status, method, recovery codes, devices),
logging out other sessions, and signing out."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from functools import partial
from typing import Any

from mfa_middleware.core import approvals, assigned, authenticators, enrollment, ops, recovery
from mfa_middleware.core.effects import Effect, Step, annotated
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import ALLOW_EXEMPT, Allow
from mfa_middleware.core.records import UserRecord
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.gate import current_device, end_session
from mfa_middleware.web.http import redirect
from mfa_middleware.web.outcomes import Answer, Reply
from mfa_middleware.web.page import Page


def settings_get(page: Page) -> Reply:
    return Step(recovery.codes_left(page.principal.id), partial(_with_assigned, page))


def _with_assigned(page: Page, left: int | None) -> Reply:
    """And a phone number an administrator set for this user, still to be confirmed."""
    if "sms" not in page.rt.enroll_methods:
        return _with_approvals(page, left, None)
    return Step(assigned.pending(page.principal.id), partial(_with_approvals, page, left))


def _with_approvals(page: Page, left: int | None, phone: assigned.AssignedPhone | None) -> Reply:
    """And, on an approver (push approval on), the sign-ins waiting for its approval."""
    device = current_device(page.rt, page.facts, page.principal)
    if page.params.push is None or device is None:
        return _settings(page, left, phone, [])
    waiting = approvals.pending(page.caller, device)
    return Step(waiting, partial(_settings, page, left, phone))


def _settings(
    page: Page,
    left: int | None,
    phone: assigned.AssignedPhone | None,
    waiting: list[approvals.Approval],
) -> Reply:
    user, decision = page.user, page.decision
    extra: dict[str, Any] = {
        "assigned": phone,
        "codes_left": left,
        "few_left": left is not None and left <= recovery.FEW_LEFT,
        "can_disable": isinstance(decision, Allow),
        "push_on": page.params.push is not None,
        "approvals_waiting": len(waiting),
    }
    return page.render(
        "settings.html",
        mode=page.view.eff.mode,
        enrolled=user.enrolled_in(page.view.state.settings.enroll_epoch),
        authenticators=ops.authenticator_info(user),
        enrolled_at=user.enrolled_at,
        exempt=decision == ALLOW_EXEMPT,
        ended=page.facts.query_param("ended") == "1",
        turned_off=page.facts.query_param("off") == "1",
        **extra,
    )


# -- the user's authenticators ----------------------------------------------------------------


def authenticators_get(page: Page) -> Reply:
    return _authenticators_page(page, done=page.facts.query_param("done") or "")


def _authenticators_page(page: Page, status: int = 200, **context: Any) -> Reply:
    return page.render(
        "authenticators.html",
        status,
        authenticators=ops.authenticator_info(page.user),
        required=page.view.eff.mode == "required",
        **context,
    )


def authenticators_post(page: Page) -> Reply:
    """Rename one, make one the default, or remove one (after a confirmation page; never the
    last one). The router asked for a recent code first."""
    item_id, action = page.form.get("authenticator", ""), page.form.get("action", "")
    item = authenticators.find(page.user, item_id)
    if item is None:
        return page.message(
            404, N_("Not found"), N_("That is not one of your ways to sign in."), "not_found"
        )
    back = page.url("authenticators")
    if (changing := authenticator_change(page, item_id, action)) is not None:
        done = "renamed" if action == "rename" else "default"
        return Step(changing, lambda _: page.go(f"{back}?done={done}"))
    if action == "confirm_remove":
        if authenticators.last_one(page.user, item_id):
            return _authenticators_page(page, 409, refused=True)
        info = next(a for a in ops.authenticator_info(page.user) if a.id == item_id)
        return page.render("authenticator_remove.html", item=info)
    if action == "remove":
        removing = enrollment.remove(page.caller, page.params, item_id)
        return Step(removing, partial(_removed, page))
    return page.go(back)


def authenticator_change(
    page: Page, item_id: str, action: str
) -> Generator[Effect, Any, authenticators.Changed] | None:
    """The core change of a rename (the form's `name`) or a "make default" of one of the
    user's authenticators; None for any other action."""
    user_id = page.principal.id
    if action == "rename":
        rename = partial(_renamed, item_id, page.form.get("name", ""))
        return authenticators.change(user_id, item_id, rename, "authenticator_renamed", "self")
    if action == "default":
        make_default = partial(authenticators.made_default, authenticator_id=item_id)
        return authenticators.change(
            user_id, item_id, make_default, "authenticator_default", "self"
        )
    return None


def _renamed(item_id: str, name: str, user: UserRecord) -> UserRecord:
    return authenticators.renamed(user, item_id, name)


def _removed(page: Page, changed: authenticators.Changed) -> Reply:
    if not changed.ok:
        return _authenticators_page(page, 409, refused=True)
    cookie = page.rt.session_cookie(carried_on(page, changed.user), page.view.eff)
    return page.answer(redirect(page.url("authenticators?done=removed"), [cookie]))


def carried_on(page: Page, record: UserRecord) -> SessionClaims:
    """This session's claims under the user's new epoch: it carries on, the others (which
    still hold the old one) must verify again."""
    return replace(page.view.claims, epoch=record.epoch)


def end_other_sessions_post(page: Page) -> Reply:
    """Log out every other session of this user; this one carries on with the new epoch. An
    enrolled user enters a code first (SES-13, the router's `recent_if_verified`): a stolen
    old session must not evict the owner and stay in."""
    return Step(ending_others(page), partial(_others_ended, page))


def ending_others(page: Page) -> Generator[Effect, Any, UserRecord]:
    """Sign out every other session of this user (the record with its new epoch)."""
    return annotated(ops.force_logout(page.principal.id, actor="self"), ip=page.facts.client)


def _others_ended(page: Page, record: UserRecord) -> Reply:
    cookie = page.rt.session_cookie(carried_on(page, record), page.view.eff)
    return page.answer(redirect(page.url("settings?ended=1"), [cookie]))


def logout_post(page: Page) -> Reply:
    rt = page.rt
    response = redirect(page.facts.url(rt.config.pages.login_url), [rt.clear_session_cookie()])
    return signing_out(page, page.answer(response, end_app_session=True))


def signing_out(page: Page, signed_out: Answer) -> Reply:
    """End this MFA session server-side too (a copy of its cookie replays nothing), then
    answer `signed_out` (which ends the app's login)."""
    if page.view.fresh:
        return signed_out
    ending = end_session(page.rt, page.view.claims, page.principal.id, actor="self")
    return Step(annotated(ending, ip=page.facts.client), lambda _: signed_out)
