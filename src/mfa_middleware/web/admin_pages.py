"""Admin pages: find a user, see their 2FA status and devices, reset them, force them out,
exempt them; change the global mode and session lifetime.

Only principals that `MFAConfig.is_admin` accepts, who entered a code in this session within
`reauth_window` (a trusted device does not count), get in; other users get 403, and without an
`is_admin` predicate the pages do not exist (404). Every action is CSRF-protected and audited
with the admin as the actor. An admin can reset a factor but never see or set one.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any
from urllib.parse import quote

from mfa_middleware.config import format_duration, parse_duration
from mfa_middleware.core import devices, enroll_code, ops, recovery
from mfa_middleware.core.effects import Effect, annotated
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import ALLOW_VERIFIED, effective
from mfa_middleware.core.records import MODES, load_hot_state
from mfa_middleware.errors import ConfigError
from mfa_middleware.web.code_pages import masked_factor
from mfa_middleware.web.messages import denied, message
from mfa_middleware.web.page import Page, PageOutcome, posted

MAX_USER_ID = 200


def _refusal(page: Page) -> PageOutcome | None:
    is_admin = page.rt.config.access.is_admin
    if is_admin is None:
        return page.outcome(
            message(
                page.rt,
                page.facts,
                page.principal,
                404,
                N_("Not found"),
                N_("There is nothing here."),
                "not_found",
            )
        )
    if not is_admin(page.principal):
        return page.outcome(denied(page.rt, page.facts, page.principal))
    if page.view.decision != ALLOW_VERIFIED:
        return page.where_to()
    if not page.recently_verified:
        return page.step_up()
    return None


def _actor(page: Page) -> str:
    return f"admin:{page.principal.id}"


def admin_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := _refusal(page)) is not None:
        return refused
    target = (page.facts.query_param("user") or "").strip()[:MAX_USER_ID]
    return (yield from _admin_page(page, target, page.facts.query_param("done") or ""))


def _admin_page(
    page: Page, target: str, done: str, **extra: Any
) -> Generator[Effect, Any, PageOutcome]:
    rt = page.rt
    eff = page.view.eff
    context: dict[str, Any] = {
        "mode": eff.mode,
        "modes": MODES,
        "lifetime": format_duration(eff.session_lifetime),
        "target": target,
        "done": done,
        **extra,
    }
    if target:
        status = yield from ops.user_status(target, rt.clock(), rt.limits)
        state = yield from load_hot_state(target)
        rows = yield from devices.devices_of(target)
        now = rt.clock()
        context["user_status"] = status
        context["destination"] = masked_factor(state.user)
        forever = math.isinf(status.locked_for)
        context["locked_forever"] = forever
        context["locked_minutes"] = 0 if forever else max(1, math.ceil(status.locked_for / 60))
        context["codes_left"] = yield from recovery.codes_left(target)
        context["devices"] = [
            {
                "name": r.name,
                "last_used": r.last_used,
                "trusted": r.trusted(now, state.user, state.settings),
            }
            for _, r in rows
        ]
    return page.render("admin.html", **context)


def admin_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if (refused := _refusal(page)) is not None:
        return refused
    # every event of the action names the admin (actor) and where they acted from (ip)
    return (yield from annotated(_act(page), ip=page.facts.client))


def _act(page: Page) -> Generator[Effect, Any, PageOutcome]:
    action = page.form.get("action", "")
    target = page.form.get("user", "").strip()[:MAX_USER_ID]
    actor = _actor(page)
    back = page.url("admin")
    if action == "reset" and target:
        # answered here, not redirected: the enrollment code is shown once and goes in no URL
        rt = page.rt
        reset = yield from enroll_code.reset_by_admin(
            target,
            actor,
            rt.clock(),
            rt.keyring,
            ttl=rt.config.recovery.enroll_code_ttl,
            app_name=rt.config.pages.app_name,
            translate=rt.translate,
            plural=rt.plural,
        )
        shown = reset.code if reset.emailed_to is None else None
        return (
            yield from _admin_page(
                page, target, "reset", enroll_code=shown, emailed_to=reset.emailed_to
            )
        )
    if action in ("logout", "exempt", "unexempt") and target:
        if action == "logout":
            yield from ops.force_logout(target, actor)
        else:
            yield from ops.set_exempt(target, action == "exempt", actor)
        return page.go(f"{back}?user={quote(target)}&done={action}")
    if action == "mode" and page.form.get("mode") in MODES:
        yield from ops.set_mode(page.form["mode"], page.rt.defaults, actor)
        return page.go(f"{back}?done=mode")
    if action == "lifetime":
        try:
            seconds = parse_duration("session_lifetime", page.form.get("lifetime", ""))
        except ConfigError:
            seconds = None
        if seconds is not None:
            settings = yield from ops.set_session_lifetime(seconds, actor)
            if effective(settings, page.rt.defaults).session_lifetime == seconds:
                return page.go(f"{back}?done=lifetime")
        return page.go(f"{back}?done=bad_lifetime")
    return page.go(back)
