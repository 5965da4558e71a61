"""Pages for devices: "Trust this device?" after a code, and the list of recognised devices
where a user renames, trusts and deletes them. A user only ever sees their own devices: an id
that is not theirs is answered like an id that does not exist (404)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from mfa_middleware.core import devices
from mfa_middleware.core.effects import Doc, Effect, Step, annotated, get
from mfa_middleware.core.http import Cookie
from mfa_middleware.core.i18n import N_
from mfa_middleware.core.tokens import SessionClaims
from mfa_middleware.web.gate import current_device
from mfa_middleware.web.http import redirect, with_next
from mfa_middleware.web.outcomes import Answer, Reply
from mfa_middleware.web.page import Page


def trust_open(page: Page) -> bool:
    return page.rt.trust_seconds > 0


def onward(page: Page, then: Callable[[str], Reply]) -> Reply:
    """Where to go after a correct code, given to `then`: `next`, or first "Trust this
    device?" for an untrusted browser (trusted at once instead when `auto_trust` says so)."""
    device_id = current_device(page.rt, page.facts, page.principal)
    if not trust_open(page) or page.reauth or device_id is None:
        return then(page.next)
    auto_trust = page.rt.config.devices.auto_trust
    if auto_trust is not None and auto_trust(page.facts, page.principal):
        trusting = devices.trust_for(page.caller, device_id, None, page.rt.trust_seconds, "auto")
        return Step(trusting, lambda _: then(page.next))
    return then(with_next(page.url("trust"), page.next))


def signed_in(page: Page, claims: SessionClaims, *extra: Cookie) -> Reply:
    """The session is verified (its new `claims`): on to `next`, by way of the trust prompt
    (`extra`: more cookies to set, such as the method this browser used)."""
    cookies = [page.rt.session_cookie(claims, page.view.eff), *extra]
    return onward(page, lambda target: page.answer(redirect(target, cookies), claims))


def _this_device(page: Page) -> str:
    device_id = current_device(page.rt, page.facts, page.principal)
    assert device_id is not None  # the router's `trusting` state
    return device_id


def trust_get(page: Page) -> Reply:
    if not page.recently_verified:  # trusting skips codes for weeks: only right after one
        return page.step_up()
    key = devices.device_key(page.principal.id, _this_device(page))
    return Step(get(key), partial(_trust_prompt, page))


def _trust_prompt(page: Page, doc: Doc | None) -> Reply:
    if doc is None:
        return page.where_to()
    record = devices.DeviceRecord.from_doc(doc)
    days = round(page.rt.trust_seconds / 86400)
    return page.render("trust.html", device_name=record.name, days=days)


def trust_post(page: Page) -> Reply:
    if page.form.get("choice") != "trust":
        return _then_recognised(page)
    if not page.recently_verified:
        return page.step_up(back=with_next(page.url("trust"), page.next))
    name = page.form.get("name", "")
    trusting = devices.trust_for(
        page.caller, _this_device(page), name, page.rt.trust_seconds, "self"
    )
    return Step(trusting, lambda _: _then_recognised(page))


def _then_recognised(page: Page) -> Reply:
    """After the prompt, once per sign-in with a code: the user's other recently used devices
    that are not trusted, to trust some (`recognised_get`); with none, straight on."""
    if not page.recently_verified:
        return page.go(page.next)
    current = current_device(page.rt, page.facts, page.principal)
    listing = devices.recent_untrusted(page.principal.id, current, page.rt.clock())
    recognised = with_next(page.url("devices/recognised"), page.next)
    return Step(listing, lambda rows: page.go(recognised if rows else page.next))


def devices_get(page: Page) -> Reply:
    return Step(devices.devices_of(page.principal.id), partial(_device_list, page))


def device_rows(page: Page, rows: list[tuple[str, devices.DeviceRecord]]) -> list[dict[str, Any]]:
    """The user's devices as the list shows them: this one marked, trusted or not now."""
    now = page.rt.clock()
    current = current_device(page.rt, page.facts, page.principal)
    state = page.view.state
    return [
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


def _device_list(page: Page, rows: list[tuple[str, devices.DeviceRecord]]) -> Reply:
    return page.render(
        "devices.html",
        devices=device_rows(page, rows),
        trust_open=trust_open(page),
        done=page.facts.query_param("done") or "",
    )


def devices_post(page: Page) -> Reply:
    device_id = page.form.get("device", "")
    if not device_id:
        return _not_found(page)
    key = devices.device_key(page.principal.id, device_id)
    return Step(get(key), partial(_device_action, page, device_id))


def _not_found(page: Page) -> Reply:
    return page.message(404, N_("Not found"), N_("That device is not on your list."), "not_found")


def _device_action(page: Page, device_id: str, doc: Doc | None) -> Reply:
    if doc is None:
        return _not_found(page)
    action = page.form.get("action", "")
    back = page.url("devices")
    if action == "confirm_delete":
        name = devices.DeviceRecord.from_doc(doc).name
        return page.render("device_delete.html", device_id=device_id, device_name=name)
    change = device_change(page, device_id, action, back)
    if change is None:
        return page.go(back)
    if isinstance(change, Answer):  # a fresh code first
        return change
    if action == "rename":
        return Step(change, lambda renamed: page.go(f"{back}?done={_renamed(renamed)}"))
    done = "deleted" if action == "delete" else "trusted"
    return Step(change, lambda _: page.go(f"{back}?done={done}"))


def device_change(
    page: Page, device_id: str, action: str, back: str
) -> Generator[Effect, Any, Any] | Answer | None:
    """The core change of a rename (the form's `name`), a delete or a trust of one of the
    user's devices; trusting one needs a recent code (a step-up answer, back to `back`, until
    then); None for any other action."""
    user_id = page.principal.id
    if action == "rename":
        return devices.rename(user_id, device_id, page.form.get("name", ""))
    if action == "delete":
        return annotated(devices.forget(user_id, device_id, actor="self"), ip=page.facts.client)
    if action == "trust" and trust_open(page):
        if not page.recently_verified:  # trusting another browser remotely is an elevation
            return page.step_up(back=back)
        return devices.trust_for(page.caller, device_id, None, page.rt.trust_seconds, "self")
    return None


def _renamed(renamed: bool) -> str:
    return "renamed" if renamed else "unnamed"


# -- the devices recognised after a sign-in ---------------------------------------------------

TRUST_FIELD = "trust_"  # one checkbox per device: trust_<device id>=1 (a form field appears once)


def recognised_get(page: Page) -> Reply:
    """Right after a sign-in with a code on a new device (the trust prompt sends the user on
    here): the user's other recently used devices that are not trusted, with checkboxes to
    trust them. With none, straight on."""
    if not page.recently_verified:
        return page.go(page.next)  # only right after a code, never on a trusted device's word
    current = current_device(page.rt, page.facts, page.principal)
    listing = devices.recent_untrusted(page.principal.id, current, page.rt.clock())
    return Step(listing, partial(_recognised_page, page))


def _recognised_page(page: Page, rows: list[tuple[str, devices.DeviceRecord]]) -> Reply:
    if not rows:
        return page.go(page.next)
    listed = [
        {"id": device_id, "name": r.name, "last_used": r.last_used, "last_ip": r.last_ip}
        for device_id, r in rows
    ]
    days = round(page.rt.trust_seconds / 86400)
    return page.render("devices_recognised.html", devices=listed, days=days)


def recognised_post(page: Page) -> Reply:
    chosen = [
        key[len(TRUST_FIELD) :]
        for key, value in page.form.items()
        if key.startswith(TRUST_FIELD) and value
    ]
    if page.form.get("choice") != "trust" or not chosen:
        return page.go(page.next)
    if not page.recently_verified:
        return page.step_up(back=with_next(page.url("devices/recognised"), page.next))
    current = current_device(page.rt, page.facts, page.principal)
    listing = devices.recent_untrusted(page.principal.id, current, page.rt.clock())
    return Step(listing, partial(_trust_chosen, page, chosen))


def _trust_chosen(
    page: Page, chosen: list[str], rows: list[tuple[str, devices.DeviceRecord]]
) -> Reply:
    """Trust the chosen devices among those offered (an id that was not offered is ignored)."""
    offered = {device_id for device_id, _ in rows}
    wanted = [device_id for device_id in chosen if device_id in offered]
    trusting = devices.trust_some(page.caller, wanted, page.rt.trust_seconds, "self")
    return Step(trusting, lambda _: page.go(page.next))
