"""Admin pages: find a user, see their 2FA status and devices, reset them, force them out,
exempt them; change the global mode and session lifetime.

Only principals that `MFAConfig.is_admin` accepts, who entered a code in this session within
`reauth_window` (a trusted device does not count), get in (the router's `admin` state); other
users get 403, and without an `is_admin` predicate the pages do not exist (404). Every action
is CSRF-protected and audited with the admin as the actor and their address. An admin can
reset a factor but never see or set one.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from functools import partial
from typing import Any
from urllib.parse import quote

from mfa_middleware.core import enroll_code, ops
from mfa_middleware.core.effects import Effect, Step, annotated
from mfa_middleware.core.policy import effective
from mfa_middleware.core.records import MODES, RuntimeSettings
from mfa_middleware.errors import ConfigError
from mfa_middleware.options import format_duration, seconds
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page

MAX_USER_ID = 200


def admin_get(page: Page) -> Reply:
    target = (page.facts.query_param("user") or "").strip()[:MAX_USER_ID]
    return _admin_page(page, target, page.facts.query_param("done") or "")


def _admin_page(page: Page, target: str, done: str, **extra: Any) -> Reply:
    eff = page.view.eff
    context: dict[str, Any] = {
        "mode": eff.mode,
        "modes": MODES,
        "lifetime": format_duration(eff.session_lifetime),
        "target": target,
        "done": done,
        **extra,
    }
    if not target:
        return page.render("admin.html", **context)
    looking = ops.user_overview(target, page.rt.clock(), page.rt.limits)
    return Step(looking, lambda found: page.render("admin.html", **context, **_shown(page, found)))


def _shown(page: Page, found: ops.UserOverview) -> dict[str, Any]:
    """What the page shows of one user: status, where codes go (masked), lockout, codes left
    and devices."""
    now = page.rt.clock()
    forever = math.isinf(found.status.locked_for)
    minutes = 0 if forever else max(1, math.ceil(found.status.locked_for / 60))
    return {
        "user_status": found.status,
        "locked_forever": forever,
        "locked_minutes": minutes,
        "codes_left": found.codes_left,
        "devices": [
            {
                "name": r.name,
                "last_used": r.last_used,
                "trusted": r.trusted(now, found.user, found.settings),
            }
            for _, r in found.devices
        ],
    }


def admin_post(page: Page) -> Reply:
    action = page.form.get("action", "")
    target = page.form.get("user", "").strip()[:MAX_USER_ID]
    actor = f"admin:{page.principal.id}"
    back = page.url("admin")
    rt = page.rt

    def acting(flow: Generator[Effect, Any, Any]) -> Generator[Effect, Any, Any]:
        # every event of the action names where the admin acted from (the actor is in it)
        return annotated(flow, ip=page.facts.client)

    if action == "reset" and target:
        # answered here, not redirected: the enrollment code is shown once and goes in no URL
        resetting = enroll_code.reset_by_admin(
            target,
            actor,
            rt.clock(),
            rt.keyring,
            ttl=rt.config.recovery.enroll_code_ttl,
            app_name=rt.config.pages.app_name,
            texts=rt.languages.texts,
        )
        return Step(acting(resetting), partial(_reset_done, page, target))
    if action in ("logout", "exempt", "unexempt") and target:
        if action == "logout":
            changing = ops.force_logout(target, actor)
        else:
            changing = ops.set_exempt(target, action == "exempt", actor)
        done = f"{back}?user={quote(target)}&done={action}"
        return Step(acting(changing), lambda _: page.go(done))
    if action == "mode" and page.form.get("mode") in MODES:
        setting = ops.set_mode(page.form["mode"], rt.defaults, actor)
        return Step(acting(setting), lambda _: page.go(f"{back}?done=mode"))
    if action == "lifetime":
        try:
            lifetime = seconds("session_lifetime", page.form.get("lifetime", ""))
        except ConfigError:
            return page.go(f"{back}?done=bad_lifetime")
        setting = ops.set_session_lifetime(lifetime, actor)
        return Step(acting(setting), partial(_lifetime_set, page, lifetime))
    return page.go(back)


def _reset_done(page: Page, target: str, reset: enroll_code.AdminReset) -> Reply:
    shown = reset.code if reset.emailed_to is None else None
    return _admin_page(page, target, "reset", enroll_code=shown, emailed_to=reset.emailed_to)


def _lifetime_set(page: Page, lifetime: float, settings: RuntimeSettings) -> Reply:
    """Done, unless the lifetime asked for is outside what the configuration allows."""
    back = page.url("admin")
    applied = effective(settings, page.rt.defaults).session_lifetime == lifetime
    return page.go(f"{back}?done={'lifetime' if applied else 'bad_lifetime'}")
