"""Pages for devices: "Trust this device?" after a code, and the list of recognised devices
where a user renames, trusts and deletes them. A user only ever sees their own devices: an id
that is not theirs is answered like an id that does not exist (404)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mfa_middleware.core import devices
from mfa_middleware.core.effects import Effect, annotated, get
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.policy import ALLOW_VERIFIED, Allow
from mfa_middleware.core.records import load_hot_state
from mfa_middleware.web.gate import current_device
from mfa_middleware.web.http import redirect, with_next
from mfa_middleware.web.messages import message
from mfa_middleware.web.page import Page, PageOutcome, posted


def _trust_open(page: Page) -> bool:
    return page.rt.trust_seconds > 0


def after_verification(page: Page) -> Generator[Effect, Any, str]:
    """Where to go after a correct code: `next`, or the trust prompt for an untrusted browser."""
    device_id = current_device(page.rt, page.facts, page.principal)
    if not _trust_open(page) or page.reauth or device_id is None:
        return page.next
    auto_trust = page.rt.config.devices.auto_trust
    if auto_trust is not None and auto_trust(page.facts, page.principal):
        yield from _trust(page, device_id, None, actor="auto")
        return page.next
    return with_next(page.url("trust"), page.next)


def _trust(
    page: Page, device_id: str, name: str | None, actor: str
) -> Generator[Effect, Any, devices.DeviceRecord | None]:
    # the epochs as they are now, not as this request found them: right after an enrollment
    # (auto_trust) the new factor has just moved the user's device epoch on
    state = yield from load_hot_state(page.principal.id)
    return (
        yield from annotated(
            devices.trust(
                page.principal.id,
                device_id,
                name,
                page.rt.clock(),
                page.rt.trust_seconds,
                state.user,
                state.settings,
                actor,
            ),
            ip=page.facts.client,
        )
    )


def trust_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    device_id = current_device(page.rt, page.facts, page.principal)
    if page.view.decision != ALLOW_VERIFIED or not _trust_open(page) or device_id is None:
        return page.where_to()
    if not page.recently_verified:  # trusting skips codes for weeks: only right after one
        return page.step_up()
    doc = yield from get(devices.device_key(page.principal.id, device_id))
    if doc is None:
        return page.where_to()
    record = devices.DeviceRecord.from_doc(doc)
    days = round(page.rt.trust_seconds / 86400)
    return page.render("trust.html", device_name=record.name, days=days)


def trust_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    device_id = current_device(page.rt, page.facts, page.principal)
    if page.view.decision != ALLOW_VERIFIED or not _trust_open(page) or device_id is None:
        return page.where_to()
    if page.form.get("choice") == "trust" and not page.recently_verified:
        return page.step_up(back=with_next(page.url("trust"), page.next))
    if page.form.get("choice") == "trust":
        yield from _trust(page, device_id, page.form.get("name", ""), actor="self")
    return page.go(page.next)


def devices_get(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if not isinstance(page.view.decision, Allow):
        return page.where_to()
    rows = yield from devices.devices_of(page.principal.id)
    now = page.rt.clock()
    current = current_device(page.rt, page.facts, page.principal)
    state = page.view.state
    listed = [
        {
            "id": device_id,
            "name": record.name,
            "current": device_id == current,
            "trusted": record.trusted(now, state.user, state.settings),
            "last_used": record.last_used,
            "created_at": record.created_at,
        }
        for device_id, record in rows
    ]
    return page.render(
        "devices.html",
        devices=listed,
        trust_open=_trust_open(page),
        done=page.facts.query_param("done") or "",
    )


def _not_found(page: Page) -> PageOutcome:
    return page.outcome(
        message(
            page.rt,
            page.facts,
            page.principal,
            404,
            N_("Not found"),
            N_("That device is not on your list."),
            "not_found",
        )
    )


def devices_post(page: Page) -> Generator[Effect, Any, PageOutcome]:
    if (refused := posted(page)) is not None:
        return refused
    if not isinstance(page.view.decision, Allow):
        return page.where_to()
    device_id = page.form.get("device", "")
    doc = None
    if device_id:
        doc = yield from get(devices.device_key(page.principal.id, device_id))
    if doc is None:
        return _not_found(page)
    record = devices.DeviceRecord.from_doc(doc)
    action = page.form.get("action", "")
    back = page.url("devices")
    if action == "rename":
        renamed = yield from devices.rename(page.principal.id, device_id, page.form.get("name", ""))
        return page.go(f"{back}?done={'renamed' if renamed else 'unnamed'}")
    if action == "confirm_delete":
        return page.render("device_delete.html", device_id=device_id, device_name=record.name)
    if action == "delete":
        forgetting = devices.forget(page.principal.id, device_id, actor="self")
        yield from annotated(forgetting, ip=page.facts.client)
        return page.go(f"{back}?done=deleted")
    if action == "trust" and _trust_open(page):
        if not page.recently_verified:  # trusting another browser remotely is an elevation
            return page.step_up(back=back)
        yield from _trust(page, device_id, None, actor="self")
        return page.go(f"{back}?done=trusted")
    return page.outcome(redirect(back, page.view.cookies))
