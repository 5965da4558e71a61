"""Django signals for the middleware's audit events, sent beside the `on_event` hook.

Every event is sent as `mfa_event` and as its own named signal (`mfa_verified`,
`mfa_locked_out`, ...: `SIGNALS` maps each event name to one). Receivers get
`sender=<the event name>`, `user_id` (the Django user's primary key as a string, or None for
global events such as a mode change) and `event`, the same dict `on_event` receives. So
`mfa_event.connect(fn, sender="locked_out")` hears one kind of event, and
`mfa_locked_out.connect(fn)` the same, by name.

Under ASGI they are sent with `asend` (sync receivers run in a thread, so they may use the
ORM); under WSGI, the CLI and `manage.py mfa`, with `send`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.dispatch import Signal

Hook = Callable[[Mapping[str, Any]], Awaitable[None] | None]

mfa_event = Signal()  # every event

mfa_verified = Signal()
mfa_verify_failed = Signal()
mfa_totp_replay = Signal()
mfa_webauthn_counter_regressed = Signal()
mfa_webauthn_registration_failed = Signal()
mfa_step_up_required = Signal()
mfa_locked_out = Signal()
mfa_enrolled = Signal()
mfa_approver_added = Signal()
mfa_approval_requested = Signal()
mfa_approval_refused = Signal()
mfa_approval_push_failed = Signal()
mfa_approval_approved = Signal()
mfa_approval_denied = Signal()
mfa_enroll_code_issued = Signal()
mfa_enroll_code_used = Signal()
mfa_reset = Signal()
mfa_reset_link_sent = Signal()
mfa_recovery_codes_generated = Signal()
mfa_recovery_code_used = Signal()
mfa_code_sent = Signal()
mfa_code_delivery_failed = Signal()
mfa_code_send_limited = Signal()
mfa_notification_failed = Signal()
mfa_trusted_device_used = Signal()
mfa_device_trusted = Signal()
mfa_device_renamed = Signal()
mfa_device_revoked = Signal()
mfa_session_expired = Signal()
mfa_signed_out = Signal()
mfa_forced_logout = Signal()
mfa_unlocked = Signal()
mfa_impersonated_request = Signal()
mfa_phone_assigned = Signal()
mfa_store_unavailable = Signal()
mfa_phone_withdrawn = Signal()
mfa_impersonation_refused = Signal()
mfa_all_sessions_cleared = Signal()
mfa_exemption_changed = Signal()
mfa_requirement_changed = Signal()
mfa_mode_changed = Signal()
mfa_session_lifetime_changed = Signal()

SIGNALS: dict[str, Signal] = {
    "verify_succeeded": mfa_verified,
    "verify_failed": mfa_verify_failed,
    "totp_replay": mfa_totp_replay,
    "webauthn_counter_regressed": mfa_webauthn_counter_regressed,
    "webauthn_registration_failed": mfa_webauthn_registration_failed,
    "step_up_required": mfa_step_up_required,
    "locked_out": mfa_locked_out,
    "enrolled": mfa_enrolled,
    "approver_added": mfa_approver_added,
    "approval_requested": mfa_approval_requested,
    "approval_refused": mfa_approval_refused,
    "approval_push_failed": mfa_approval_push_failed,
    "approval_approved": mfa_approval_approved,
    "approval_denied": mfa_approval_denied,
    "enroll_code_issued": mfa_enroll_code_issued,
    "enroll_code_used": mfa_enroll_code_used,
    "mfa_reset": mfa_reset,
    "reset_link_sent": mfa_reset_link_sent,
    "recovery_codes_generated": mfa_recovery_codes_generated,
    "recovery_code_used": mfa_recovery_code_used,
    "code_sent": mfa_code_sent,
    "code_delivery_failed": mfa_code_delivery_failed,
    "code_send_limited": mfa_code_send_limited,
    "notification_failed": mfa_notification_failed,
    "trusted_device_used": mfa_trusted_device_used,
    "device_trusted": mfa_device_trusted,
    "device_renamed": mfa_device_renamed,
    "device_revoked": mfa_device_revoked,
    "session_expired": mfa_session_expired,
    "signed_out": mfa_signed_out,
    "forced_logout": mfa_forced_logout,
    "unlocked": mfa_unlocked,
    "impersonated_request": mfa_impersonated_request,
    "phone_assigned": mfa_phone_assigned,
    "store_unavailable": mfa_store_unavailable,
    "phone_withdrawn": mfa_phone_withdrawn,
    "impersonation_refused": mfa_impersonation_refused,
    "all_sessions_cleared": mfa_all_sessions_cleared,
    "exemption_changed": mfa_exemption_changed,
    "requirement_changed": mfa_requirement_changed,
    "mode_changed": mfa_mode_changed,
    "session_lifetime_changed": mfa_session_lifetime_changed,
}


def _signals(name: str) -> list[Signal]:
    named = SIGNALS.get(name)
    return [mfa_event] if named is None else [mfa_event, named]


def _arguments(event: Mapping[str, Any]) -> dict[str, Any]:
    user = event.get("user")
    return {"user_id": None if user is None else str(user), "event": dict(event)}


async def _asend(event: Mapping[str, Any], then: Hook | None) -> None:
    name = str(event["event"])
    for signal in _signals(name):
        await signal.asend(sender=name, **_arguments(event))
    if then is not None:
        result = then(event)
        if inspect.isawaitable(result):
            await result


def signalling(hook: Hook | None) -> Hook:
    """An `on_event` hook that sends the signals, then calls `hook` (the project's own
    `on_event`, if any). On an event loop it returns a coroutine, which the ASGI path
    awaits; elsewhere it sends at once."""

    def on_event(event: Mapping[str, Any]) -> Awaitable[None] | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            name = str(event["event"])
            for signal in _signals(name):
                signal.send(sender=name, **_arguments(event))
            return None if hook is None else hook(event)
        return _asend(event, hook)

    return on_event
