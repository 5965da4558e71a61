"""Admin pages: find a user (by username, id or address of record) or list them all, see their
2FA status, devices and recent events, reset them (after a confirmation), unlock them, force
them out, set a phone number they confirm at their next sign-in, exempt them; change the
global mode and session lifetime, sign everyone out.

Only principals that `MFAConfig.is_admin` accepts, who entered a code in this session within
`reauth_window` (a trusted device does not count; while 2FA is off, see the router's `admin`
state), get in; other users get 403, and without an `is_admin` predicate the pages do not exist
(404). What reaches everyone or exempts an account needs a superadmin (`core.roles`). Every
action is CSRF-protected and audited with the admin as the actor and their address. An admin
can reset a factor, or propose a phone number the user must confirm, but never see or set one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from mfa_middleware.core import assigned, directory, enroll_code, ops, roles
from mfa_middleware.core.context import MODES
from mfa_middleware.core.effects import Effect, Step, annotated
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.oob import mask
from mfa_middleware.core.policy import effective
from mfa_middleware.core.records import RuntimeSettings
from mfa_middleware.errors import ConfigError
from mfa_middleware.options import format_duration, seconds, spoken_duration
from mfa_middleware.web.outcomes import Reply
from mfa_middleware.web.page import Page
from mfa_middleware.web.phone import allowed_regions, normalise_phone, region_choices

MAX_USER_ID = 200
PER_PAGE = 25
METHODS = ("totp", "sms", "email", "webauthn")


def admin_get(page: Page) -> Reply:
    query = (page.facts.query_param("user") or "").strip()[:MAX_USER_ID]
    done = page.facts.query_param("done") or ""
    if not query:
        return _admin_page(page, "", done)
    return Step(ops.find_user(query), partial(_found, page, query, done))


def users_get(page: Page) -> Reply:
    """The login list: every user the middleware has seen, with their 2FA status, searchable
    and filterable, a page at a time, each with a Reset button."""
    param = page.facts.query_param
    enrolled = {"yes": True, "no": False}.get(param("enrolled") or "")
    method = param("method") or ""
    wanted = ops.UserFilter(
        search=(param("q") or "").strip()[:MAX_USER_ID],
        enrolled=enrolled,
        method=method if method in METHODS else None,
        exempt=True if param("exempt") == "1" else None,
        locked=True if param("locked") == "1" else None,
    )
    raw_page = param("page") or "1"
    number = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100_000 else 1
    rt = page.rt
    listing = ops.list_users(
        wanted, rt.clock(), rt.limits, offset=(number - 1) * PER_PAGE, limit=PER_PAGE
    )
    return Step(listing, partial(_users_page, page, wanted))


def _users_page(page: Page, wanted: ops.UserFilter, found: ops.Listing) -> Reply:
    pages = max(1, -(-found.total // PER_PAGE))
    query = {
        "q": wanted.search,
        "enrolled": "" if wanted.enrolled is None else "yes" if wanted.enrolled else "no",
        "method": wanted.method or "",
        "exempt": "1" if wanted.exempt else "",
        "locked": "1" if wanted.locked else "",
    }
    kept = urlencode({k: v for k, v in query.items() if v})

    def link(to: int) -> str:
        return page.url("admin/users?" + (f"{kept}&" if kept else "") + f"page={to}")

    number = found.offset // PER_PAGE + 1  # the page shown (a page past the end: the last)
    return page.render(
        "admin_users.html",
        rows=found.rows,
        total=found.total,
        filters=query,
        methods=METHODS,
        number=number,
        pages=pages,
        first=found.offset + 1,
        previous=link(number - 1) if number > 1 else "",
        following=link(number + 1) if number < pages else "",
        may_reset=roles.allowed(role(page), "reset"),
    )


def _found(page: Page, query: str, done: str, ids: list[str]) -> Reply:
    """One user: their record; several (a shared display name): which one; none: say so,
    rather than show an empty record under a name that is nobody's id."""
    if len(ids) == 1:
        return _admin_page(page, ids[0], done)
    if not ids:
        return _admin_page(page, "", done, query=query, nobody=True)
    listing = ops.directory_entries(ids)
    return Step(listing, lambda rows: _admin_page(page, "", done, query=query, matches=rows))


def _admin_page(page: Page, target: str, done: str, **extra: Any) -> Reply:
    eff = page.view.eff
    tier = role(page)
    codes = page.rt.config.codes
    regions = allowed_regions(codes.sms_regions)
    context: dict[str, Any] = {
        "sms": codes.sms_sender is not None,
        "regions": region_choices(regions, page.texts) if codes.sms_sender is not None else [],
        "region": codes.default_region.upper(),
        "role": tier,
        "may": {action: roles.allowed(tier, action) for action in roles.NEEDS},
        "mode": eff.mode,
        "modes": MODES,
        "lifetime": page.texts.duration(eff.session_lifetime),
        "lifetime_field": _as_typed(page, eff.session_lifetime),
        "lifetime_hint": page.texts.gettext(LIFETIME_HINT),
        "target": target,
        "query": target,
        "done": done,
        **extra,
    }
    if not target:
        return page.render("admin.html", **context)
    looking = ops.user_overview(target, page.rt.clock(), page.rt.limits)
    return Step(looking, lambda found: page.render("admin.html", **context, **_shown(page, found)))


LIFETIME_HINT = N_("How long a sign-in lasts, like 90 days, 12 hours or 30 minutes.")


def _as_typed(page: Page, value: float) -> str:
    """The lifetime as the form's hint tells the admin to type it: English words where the
    hint is the English one ("90 days"), else the short form the translations give ("90d"),
    since the parser reads only those."""
    english = page.texts.gettext(LIFETIME_HINT) == LIFETIME_HINT
    return spoken_duration(value) if english else format_duration(value)


def _shown(page: Page, found: ops.UserOverview) -> dict[str, Any]:
    """What the page shows of one user: status, where codes go (masked), lockout, codes left
    and devices."""
    now = page.rt.clock()
    forever = math.isinf(found.status.locked_for)
    minutes = 0 if forever else max(1, math.ceil(found.status.locked_for / 60))
    entry = found.entry
    return {
        "target_name": entry.name
        if entry is not None and entry.name != found.status.user_id
        else "",
        "user_status": found.status,
        "locked_forever": forever,
        "locked_minutes": minutes,
        "codes_left": found.codes_left,
        "events": found.events,
        "assigned": found.assigned,
        "devices": [
            {
                "name": r.name,
                "last_used": r.last_used,
                "trusted": r.trusted(now, found.user, found.settings),
            }
            for _, r in found.devices
        ],
    }


def role(page: Page) -> str | None:
    """The administrator's tier (`core.roles`): what the page offers and accepts."""
    access = page.rt.config.access
    return roles.role_of(page.principal, access.is_admin, access.is_superadmin)


def admin_post(page: Page) -> Reply:
    action = page.form.get("action", "")
    target = page.form.get("user", "").strip()[:MAX_USER_ID]
    actor = f"admin:{page.principal.id}"
    back = page.url("admin")
    rt = page.rt
    if not roles.allowed(role(page), action):
        return page.message(
            403,
            N_("Not allowed for your role"),
            N_(
                "Your administrator role can help one user at a time (reset, unlock, sign"
                " out). Changing the mode or the session lifetime, signing everyone out and"
                " exempting an account need a higher role."
            ),
            "role_too_low",
        )

    def acting(flow: Generator[Effect, Any, Any]) -> Generator[Effect, Any, Any]:
        # every event of the action names where the admin acted from (the actor is in it)
        return annotated(flow, ip=page.facts.client)

    if action == "reset" and target and page.form.get("confirm") != "yes":
        looking = ops.user_overview(target, rt.clock(), rt.limits)
        return Step(looking, partial(_confirm_reset, page))
    if action == "reset" and target:
        # answered here, not redirected: the enrollment code is shown once and goes in no URL
        return Step(directory.entry(target), partial(_reset, page, target, acting))
    if action in ("logout", "exempt", "unexempt", "unlock") and target:
        changing: Generator[Effect, Any, Any]
        if action == "logout":
            changing = ops.force_logout(target, actor)
        elif action == "unlock":
            changing = ops.unlock(target, actor)
        else:
            changing = ops.set_exempt(target, action == "exempt", actor)
        done = f"{back}?user={quote(target)}&done={action}"
        return Step(acting(changing), lambda _: page.go(done))
    if action == "set_phone" and target:
        return _set_phone(page, target, acting)
    if action == "clear_phone" and target:
        withdrawing = assigned.withdraw(target, actor)
        done = f"{back}?user={quote(target)}&done=clear_phone"
        return Step(acting(withdrawing), lambda _: page.go(done))
    if action == "logout_all" and page.form.get("confirm") != "yes":
        return page.render("admin_logout_all.html")
    if action == "logout_all":
        clearing = ops.logout_everyone(actor)
        return Step(acting(clearing), lambda _: page.go(f"{back}?done=logout_all"))
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


def _set_phone(
    page: Page,
    target: str,
    acting: Callable[[Generator[Effect, Any, Any]], Generator[Effect, Any, Any]],
) -> Reply:
    """Keep a number as the user's pending phone for codes (core.assigned): they confirm it
    with a code at their next sign-in. A number the phone form would refuse is refused here
    too, with its message, on the user's page."""
    rt = page.rt
    raw, region = page.form.get("phone", "").strip(), page.form.get("region", "")
    if rt.config.codes.sms_sender is None:
        return page.message(
            400, N_("Bad request"), N_("Text messages are not set up on this site."), "no_sms"
        )
    try:
        phone = normalise_phone(raw, region, allowed_regions(rt.config.codes.sms_regions))
    except ValueError as exc:
        context = {"phone_error": str(exc), "phone": raw[:40], "region": region[:3].upper()}
        return _admin_page(page, target, "", **context)
    setting = assigned.assign(
        target, phone, page.principal.display_name, f"admin:{page.principal.id}", rt.clock()
    )
    done = f"{page.url('admin')}?user={quote(target)}&done=set_phone"
    return Step(acting(setting), lambda _: page.go(done))


def _confirm_reset(page: Page, found: ops.UserOverview) -> Reply:
    """What a reset does to this user, and a button that does it (a reset cannot be undone)."""
    entry = found.entry
    rt = page.rt
    return page.render(
        "admin_reset.html",
        target=found.status.user_id,
        target_name=entry.name if entry is not None else "",
        address=mask("email", entry.email) if entry is not None and entry.email else "",
        notices="email" in rt.delivery.channels(),
        enroll_code=rt.config.recovery.enroll_code_ttl is not None,
        ways=len(found.status.authenticators),
        devices=len(found.devices),
    )


def _reset(
    page: Page,
    target: str,
    acting: Callable[[Generator[Effect, Any, Any]], Generator[Effect, Any, Any]],
    entry: directory.Entry | None,
) -> Reply:
    rt = page.rt
    resetting = enroll_code.reset_by_admin(
        target,
        f"admin:{page.principal.id}",
        rt.clock(),
        rt.keyring,
        ttl=rt.config.recovery.enroll_code_ttl,
        email=entry.email if entry is not None and entry.email else None,
        by=page.principal.display_name,
        app_name=rt.config.pages.app_name,
        texts=rt.languages.texts,
    )
    return Step(acting(resetting), partial(_reset_done, page, target))


def _reset_done(page: Page, target: str, reset: enroll_code.AdminReset) -> Reply:
    return _admin_page(
        page,
        target,
        "reset",
        enroll_code=reset.handover,
        emailed_to=reset.emailed_to,
        code_sent=reset.code_sent,
    )


def _lifetime_set(page: Page, lifetime: float, settings: RuntimeSettings) -> Reply:
    """Done, unless the lifetime asked for is outside what the configuration allows."""
    back = page.url("admin")
    applied = effective(settings, page.rt.defaults).session_lifetime == lifetime
    return page.go(f"{back}?done={'lifetime' if applied else 'bad_lifetime'}")
