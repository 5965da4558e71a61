"""Starting over: the lost-device email link, and turning 2FA off. Each resets the user's 2FA
(factor, recovery codes, trusted devices), is announced by email, and carries on in this
browser as an unverified session while every other session ends."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from mfa_middleware.core import recovery
from mfa_middleware.core.effects import Step
from mfa_middleware.core.records import UserRecord
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.http import redirect
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page


def lost_possible(page: Page) -> bool:
    """The link goes to the app's address of record only, never to one a factor's enrollment
    supplied (which an attacker with the password could have set)."""
    return (
        bool(page.rt.config.recovery.public_url)
        and page.params.notices
        and bool(page.principal.email)
    )


def lost_get(page: Page) -> Reply:
    return page.render("lost.html", possible=lost_possible(page))


def lost_post(page: Page) -> Reply:
    if not lost_possible(page):  # the page says so; nothing is sent
        return page.render("lost.html", sent=True, possible=True)
    return Step(send_lost_link(page), lambda _: page.render("lost.html", sent=True, possible=True))


def send_lost_link(page: Page) -> Any:
    """Email the user a link to turn 2FA off (its page needs their login too)."""
    settings = page.rt.config.recovery
    confirm_url = f"{settings.public_url}{page.url('lost/confirm')}"
    return recovery.send_reset_link(page.caller, page.params, settings.reset_link_ttl, confirm_url)


def _token(page: Page, value: str | None) -> str:
    return (value or "")[:100]


def lost_confirm_get(page: Page) -> Reply:
    token = _token(page, page.facts.query_param("token"))
    rt = page.rt
    checking = recovery.reset_link_valid(page.principal.id, token, rt.clock(), rt.keyring)
    return Step(checking, lambda valid: _confirm_page(page, token if valid else None))


def _confirm_page(page: Page, token: str | None) -> Reply:
    if token is None:
        return page.render("lost_confirm.html", 400, token="", invalid=True)
    return page.render("lost_confirm.html", token=token)


def lost_confirm_post(page: Page) -> Reply:
    """Spending the emailed link needs the same user's primary login (this request's user),
    so the email alone never removes the second factor."""
    rt = page.rt
    token = page.form.get("token", "")
    spending = recovery.spend_reset_link(page.principal.id, token, rt.clock(), rt.keyring)
    return Step(spending, partial(_link_spent, page))


def _link_spent(page: Page, ok: bool) -> Reply:
    if not ok:
        return _confirm_page(page, None)
    return Step(
        recovery.reset(page.caller, page.params, "self:lost-device"),
        partial(_restart, page, "enroll?off=1"),
    )


def _restart(page: Page, onward: str, record: UserRecord) -> Reply:
    """Carry on as an unverified session of the reset user (every other session ended): the
    user enrolls again, or continues unenrolled in optional mode."""
    cookie = page.rt.session_cookie(restarted(page, record), page.view.eff)
    return page.answer(redirect(page.url(onward), [cookie]))


def restarted(page: Page, record: UserRecord) -> SessionClaims:
    """This session's claims after a reset of its user: unverified, under the new epoch."""
    return replace(page.view.claims, epoch=record.epoch, verified_at=0, method="")


def disable_get(page: Page) -> Reply:
    return page.render("disable.html", required=page.view.eff.mode == "required")


def disable_post(page: Page) -> Reply:
    # required: set it up again (enroll?off=1 says it is off); optional: back to the settings
    onward = "enroll?off=1" if page.view.eff.mode == "required" else "settings?off=1"
    return Step(recovery.reset(page.caller, page.params, "self"), partial(_restart, page, onward))
