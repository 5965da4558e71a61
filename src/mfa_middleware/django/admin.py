"""Two-step verification in the Django admin's user list: a 2FA column and actions.

`MFAUserAdminMixin` goes before your user admin class (see `examples/django_app`):

    admin.site.unregister(User)

    @admin.register(User)
    class UserAdmin(MFAUserAdminMixin, django.contrib.auth.admin.UserAdmin):
        list_display = (*django.contrib.auth.admin.UserAdmin.list_display, "two_factor")

`TwoFactorFilter` filters the list by it (`list_filter = (..., TwoFactorFilter)`). The
actions are the ops the admin pages and `mfa-admin` offer (`mfa_middleware.admin.Admin`),
by tier (`core.roles`): a helpdesk administrator (`is_admin`, by default Django's staff flag)
resets, unlocks and signs out the selected users; exempting accounts needs a superadmin
(`is_superadmin`, by default the superuser flag). Each needs a second factor entered in this
session within `reauth_window`, as the admin pages do; a reset is confirmed on a page first,
and the enrollment codes that could not be emailed are shown there once, never put in a
message (Django's message storage may be a cookie). Importing this module registers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from mfa_middleware.admin import Admin
from mfa_middleware.core import ops, roles
from mfa_middleware.core.addresses import peer_text
from mfa_middleware.django.decorators import mfa_state
from mfa_middleware.django.middleware import principal_from_user
from mfa_middleware.django.settings import runtime

KIND_NAMES = {
    "totp": "authenticator app",
    "sms": "text message",
    "email": "email",
    "webauthn": "passkey",
}


def role_of(request: HttpRequest) -> str | None:
    """The request's user's 2FA administrator tier (None: none)."""
    principal = principal_from_user(getattr(request, "user", None))
    if principal is None:
        return None
    access = runtime().config.access
    return roles.role_of(principal, access.is_admin, access.is_superadmin)


def status_text(status: ops.UserStatus) -> str:
    """One user's 2FA status in a few words, for the list's column."""
    if status.locked_for:
        state = "Locked"
    elif status.enrolled:
        kinds = sorted({KIND_NAMES.get(a.kind, a.kind) for a in status.authenticators})
        state = "On: " + ", ".join(kinds)
    else:
        state = "Not set up"
    if status.exempt:
        state += " (exempt: API calls)" if not status.exempt_browser else " (exempt)"
    return state


if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]  # the ModelAdmin the mixin joins
else:
    _AdminBase = object


class TwoFactorFilter(admin.SimpleListFilter):
    """The user list filtered by two-step verification: set up, not set up, locked out,
    exempt. It reads the middleware's directory of users (users it has seen sign in, or an
    operator acted on), as the admin pages' list does."""

    title = "two-step verification"
    parameter_name = "mfa"
    WANTED: ClassVar[dict[str, ops.UserFilter]] = {
        "on": ops.UserFilter(enrolled=True),
        "off": ops.UserFilter(enrolled=True),  # every user but these
        "locked": ops.UserFilter(locked=True),
        "exempt": ops.UserFilter(exempt=True),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("on", "Set up"),
            ("off", "Not set up"),
            ("locked", "Locked out"),
            ("exempt", "Exempt"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        wanted = self.WANTED.get(str(self.value()))
        if wanted is None:
            return None
        rt = runtime()
        rows = rt.run(ops.list_users(wanted, rt.clock(), rt.limits)).rows
        pks = _primary_keys(queryset.model, [row.user_id for row in rows])
        return (
            queryset.exclude(pk__in=pks) if self.value() == "off" else queryset.filter(pk__in=pks)
        )


def _primary_keys(model: Any, ids: list[str]) -> list[Any]:
    """The ids that are primary keys of `model` (a service account's name is not one)."""
    field = model._meta.pk
    keys = []
    for user_id in ids:
        try:
            keys.append(field.to_python(user_id))
        except ValidationError:
            continue
    return keys


class MFAUserAdminMixin(_AdminBase):
    """The 2FA column (`two_factor`) and actions for a ModelAdmin of the user model."""

    actions: Sequence[str] = (
        "mfa_reset",
        "mfa_unlock",
        "mfa_force_logout",
        "mfa_exempt",
        "mfa_unexempt",
    )

    # -- the column --------------------------------------------------------------------------

    @admin.display(description="Two-step verification")
    def two_factor(self, obj: Any) -> str:
        rt = runtime()
        return status_text(rt.run(ops.user_status(str(obj.pk), rt.clock(), rt.limits)))

    # -- who may --------------------------------------------------------------------------

    def has_mfa_helpdesk_permission(self, request: HttpRequest) -> bool:
        return roles.allowed(role_of(request), "reset")

    def has_mfa_superadmin_permission(self, request: HttpRequest) -> bool:
        return roles.allowed(role_of(request), "exempt")

    def _ops(self, request: HttpRequest) -> Admin | None:
        """The ops as this administrator, or None (and a message) when their second factor is
        not recent enough: the admin pages ask the same."""
        rt = runtime()
        state = mfa_state(request)
        if not state.fresh(rt.config.sessions.reauth_window, device_ok=False):
            back = request.get_full_path()
            link = rt.url("challenge") + "?reauth=1&next=" + back.replace("&", "%26")
            self.message_user(
                request,
                format_html(
                    'Confirm it\'s you first: <a href="{}">enter a code</a>, then choose the'
                    " action again.",
                    link,
                ),
                messages.WARNING,
            )
            return None
        ip = peer_text(request.META.get("REMOTE_ADDR"))
        return Admin(rt, actor=f"admin:{request.user.pk}", ip=ip)

    # -- the actions ------------------------------------------------------------------------

    @admin.action(description="Reset two-step verification", permissions=["mfa_helpdesk"])
    def mfa_reset(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        acting = self._ops(request)
        if acting is None:
            return None
        users = list(queryset)
        context: dict[str, Any] = {
            **admin.site.each_context(request),
            "title": "Reset two-step verification",
            "users": users,
            "opts": queryset.model._meta,
            "action": "mfa_reset",
        }
        if request.POST.get("mfa_confirm") != "yes":
            context["enroll_code"] = runtime().config.recovery.enroll_code_ttl is not None
            return TemplateResponse(request, "admin/mfa_middleware/reset_confirm.html", context)
        by = request.user.get_username()
        done = []
        for user in users:
            address = getattr(user, str(user.get_email_field_name()), None) or None
            reset = acting.reset(str(user.pk), email=address, by=by)
            done.append(
                {
                    "user": user,
                    "code": reset.handover,
                    "code_sent": reset.code_sent,
                    "emailed_to": reset.emailed_to,
                }
            )
        context["done"] = done
        return TemplateResponse(request, "admin/mfa_middleware/reset_done.html", context)

    @admin.action(description="Unlock two-step verification", permissions=["mfa_helpdesk"])
    def mfa_unlock(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if (acting := self._ops(request)) is not None:
            lifted = sum(acting.unlock(str(user.pk)) for user in queryset)
            self._tell(request, f"{lifted} user(s) unlocked: they can enter codes again.")

    @admin.action(description="Sign out everywhere", permissions=["mfa_helpdesk"])
    def mfa_force_logout(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if (acting := self._ops(request)) is not None:
            for user in queryset:
                acting.logout(str(user.pk))
            self._tell(request, f"{queryset.count()} user(s) signed out everywhere.")

    @admin.action(description="Exempt API calls from 2FA", permissions=["mfa_superadmin"])
    def mfa_exempt(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if (acting := self._ops(request)) is not None:
            for user in queryset:
                acting.exempt(str(user.pk), True)
            self._tell(request, f"{queryset.count()} user(s) exempt for API calls.")

    @admin.action(description="Remove the 2FA exemption", permissions=["mfa_superadmin"])
    def mfa_unexempt(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if (acting := self._ops(request)) is not None:
            for user in queryset:
                acting.exempt(str(user.pk), False)
            self._tell(request, f"{queryset.count()} user(s) need two-step verification again.")

    def _tell(self, request: HttpRequest, text: str) -> None:
        self.message_user(request, text, messages.SUCCESS)
