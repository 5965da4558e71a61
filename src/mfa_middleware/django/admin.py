"""Two-step verification in the Django admin's user list: columns, filters and actions.

`MFAUserAdminMixin` goes before your user admin class (see `examples/django_app`):

    admin.site.unregister(User)

    @admin.register(User)
    class UserAdmin(MFAUserAdminMixin, django.contrib.auth.admin.UserAdmin):
        list_display = (*django.contrib.auth.admin.UserAdmin.list_display, *MFA_COLUMNS)
        list_filter = (*django.contrib.auth.admin.UserAdmin.list_filter, *MFA_FILTERS)

The columns (`MFA_COLUMNS`) show each user's 2FA status, method (the default authenticator's
kind), authenticators, trusted devices, exemption and last verification, read for a page of
users in one core call (`ops.user_rows`) rather than once a column and row. The filters
(`MFA_FILTERS`) are by status, method and exemption. The actions are the ops the admin pages
and `mfa-admin` offer (`mfa_middleware.admin.Admin`), by tier (`core.roles`): a helpdesk
administrator (`is_admin`, by default Django's staff flag) resets, unlocks and signs out the
selected users; exempting accounts needs a superadmin (`is_superadmin`, by default the
superuser flag). Each needs a second factor entered in this session within `reauth_window`,
as the admin pages do, asks "Are you sure?" on a page first, and is written to the user's
history (a `LogEntry`) besides the core's event. The enrollment codes of a reset that could
not be emailed are shown once on the page after it, never put in a message (Django's message
storage may be a cookie). Importing this module registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

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

MFA_COLUMNS = (
    "two_factor",
    "mfa_method",
    "mfa_authenticators",
    "mfa_trusted_devices",
    "mfa_exemption",
    "mfa_last_verified",
)
"""The list's 2FA columns, for `list_display`."""

CONFIRM_FIELD = "mfa_confirm"  # posted with "yes" by the "Are you sure?" page's form
ROW_ATTR = "_mfa_row"  # where a user object keeps its row for the page being shown


def role_of(request: HttpRequest) -> str | None:
    """The request's user's 2FA administrator tier (None: none)."""
    principal = principal_from_user(getattr(request, "user", None))
    if principal is None:
        return None
    access = runtime().config.access
    return roles.role_of(principal, access.is_admin, access.is_superadmin)


def state_text(status: ops.UserStatus) -> str:
    """Whether 2FA is on for the user, in a word or two (the status column)."""
    if status.locked_for:
        return "Locked out"
    return "On" if status.enrolled else "Not set up"


def kind_names(status: ops.UserStatus) -> list[str]:
    """The kinds of the user's authenticators, the default one's first, in words."""
    kinds = [a.kind for a in sorted(status.authenticators, key=lambda a: not a.default)]
    return [KIND_NAMES.get(kind, kind) for kind in dict.fromkeys(kinds)]


def exemption_text(status: ops.UserStatus) -> str:
    if not status.exempt:
        return "No"
    return "API and browser" if status.exempt_browser else "API calls"


def when_text(at: float, now: float) -> str:
    """A time as "5 minutes ago", the exact time (in the project's time zone) on hover."""
    if not at:
        return "Never"
    moment = datetime.fromtimestamp(at, tz=UTC)
    exact = formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    if now - at < 60:
        ago = "just now"
    else:
        ago = timesince(moment, now=datetime.fromtimestamp(now, tz=UTC), depth=1) + " ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', moment.isoformat(), exact, ago)


if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]  # the ModelAdmin the mixin joins
else:
    _AdminBase = object


class _CoreFilter(admin.SimpleListFilter):
    """A filter of the user list by what the middleware knows of each user: it reads the
    directory of users (users it has seen sign in, or an operator acted on) with the core's
    `ops.list_users`, as the admin pages' list does. A choice either keeps the users the
    core's filter keeps or (`negated`) every user but them: a user the middleware has never
    seen has not set 2FA up and is not exempt."""

    CHOICES: ClassVar[dict[str, tuple[str, ops.UserFilter, bool]]] = {}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _, _) in self.CHOICES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        chosen = self.CHOICES.get(str(self.value()))
        if chosen is None:
            return None
        _, wanted, negated = chosen
        rt = runtime()
        rows = rt.run(ops.list_users(wanted, rt.clock(), rt.limits)).rows
        pks = _primary_keys(queryset.model, [row.user_id for row in rows])
        return queryset.exclude(pk__in=pks) if negated else queryset.filter(pk__in=pks)


class TwoFactorFilter(_CoreFilter):
    """By status: set up, not set up, locked out."""

    title = "two-step verification"
    parameter_name = "mfa"
    CHOICES: ClassVar[dict[str, tuple[str, ops.UserFilter, bool]]] = {
        "on": ("Set up", ops.UserFilter(enrolled=True), False),
        "off": ("Not set up", ops.UserFilter(enrolled=True), True),
        "locked": ("Locked out", ops.UserFilter(locked=True), False),
    }


class TwoFactorMethodFilter(_CoreFilter):
    """By a way to sign in the user has set up (any of theirs, not only the default)."""

    title = "2FA method"
    parameter_name = "mfa_method"
    CHOICES: ClassVar[dict[str, tuple[str, ops.UserFilter, bool]]] = {
        kind: (name.capitalize(), ops.UserFilter(method=kind), False)
        for kind, name in KIND_NAMES.items()
    }


class TwoFactorExemptFilter(_CoreFilter):
    """By exemption from 2FA (of API calls, or of browser logins too)."""

    title = "2FA exemption"
    parameter_name = "mfa_exempt"
    CHOICES: ClassVar[dict[str, tuple[str, ops.UserFilter, bool]]] = {
        "yes": ("Exempt", ops.UserFilter(exempt=True), False),
        "no": ("Not exempt", ops.UserFilter(exempt=True), True),
    }


MFA_FILTERS = (TwoFactorFilter, TwoFactorMethodFilter, TwoFactorExemptFilter)
"""The list's 2FA filters, for `list_filter`."""


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


@dataclass(frozen=True, slots=True)
class Asked:
    """What an action's "Are you sure?" page says, and what is logged once it is done."""

    question: str
    explanation: str
    button: str
    logged: str  # the change message of each user's LogEntry
    told: str  # the message after it, {count}: the users it changed


ASKED: dict[str, Asked] = {
    "mfa_reset": Asked(
        "Are you sure you want to reset two-step verification of the selected users?",
        "",  # reset_confirm.html says it, the enrollment code depending on the settings
        "Yes, reset",
        "Reset two-step verification.",
        "",
    ),
    "mfa_unlock": Asked(
        "Are you sure you want to unlock two-step verification of the selected users?",
        "They can enter codes again at once; their count of wrong codes starts over.",
        "Yes, unlock",
        "Unlocked two-step verification after wrong codes.",
        "{count} user(s) unlocked: they can enter codes again.",
    ),
    "mfa_force_logout": Asked(
        "Are you sure you want to sign the selected users out everywhere?",
        "Every session of theirs ends, on every device, at its next request: they sign in"
        " again with their password and second factor.",
        "Yes, sign them out",
        "Signed out everywhere.",
        "{count} user(s) signed out everywhere.",
    ),
    "mfa_exempt": Asked(
        "Are you sure you want to exempt the selected users' API calls from two-step verification?",
        "Their API calls pass without a second factor (their browser logins still need one)."
        " Exempt only service accounts whose tokens are kept safe.",
        "Yes, exempt them",
        "Exempted API calls from two-step verification.",
        "{count} user(s) exempt for API calls.",
    ),
    "mfa_unexempt": Asked(
        "Are you sure you want to remove the two-step verification exemption of the selected"
        " users?",
        "Their API calls and browser logins need a second factor again.",
        "Yes, remove it",
        "Removed the two-step verification exemption.",
        "{count} user(s) need two-step verification again.",
    ),
}


class MFAUserAdminMixin(_AdminBase):
    """The 2FA columns (`MFA_COLUMNS`) and actions for a ModelAdmin of the user model."""

    actions: Sequence[str] = (
        "mfa_reset",
        "mfa_unlock",
        "mfa_force_logout",
        "mfa_exempt",
        "mfa_unexempt",
    )

    # -- the columns ------------------------------------------------------------------------

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The list, its page of users' 2FA rows read at once (not once a column and row)."""
        changelist = super().get_changelist_instance(request)
        self.mfa_rows(changelist.result_list)
        return changelist

    def mfa_rows(self, users: Iterable[Any]) -> None:
        """Read the 2FA rows of these users in one core call; each user object keeps its own
        for the columns."""
        users = list(users)
        if not users:
            return
        rt = runtime()
        rows = rt.run(ops.user_rows([str(user.pk) for user in users], rt.clock(), rt.limits))
        for user, row in zip(users, rows, strict=True):
            setattr(user, ROW_ATTR, row)

    def mfa_row(self, obj: Any) -> ops.UserRow:
        """The user's row: read with the page's, else now (a column shown elsewhere)."""
        if getattr(obj, ROW_ATTR, None) is None:
            self.mfa_rows([obj])
        row: ops.UserRow = getattr(obj, ROW_ATTR)
        return row

    @admin.display(description="2FA")
    def two_factor(self, obj: Any) -> str:
        return state_text(self.mfa_row(obj).status)

    @admin.display(description="Method")
    def mfa_method(self, obj: Any) -> str:
        status = self.mfa_row(obj).status
        if not status.enrolled or not status.authenticators:
            return str(self.get_empty_value_display())
        return kind_names(status)[0].capitalize()

    @admin.display(description="Authenticators")
    def mfa_authenticators(self, obj: Any) -> str:
        status = self.mfa_row(obj).status
        if not status.enrolled:
            return "0"
        kinds = ", ".join(kind_names(status))
        return format_html('<span title="{}">{}</span>', kinds, len(status.authenticators))

    @admin.display(description="Trusted devices")
    def mfa_trusted_devices(self, obj: Any) -> int:
        return self.mfa_row(obj).trusted_devices or 0

    @admin.display(description="Exempt")
    def mfa_exemption(self, obj: Any) -> str:
        return exemption_text(self.mfa_row(obj).status)

    @admin.display(description="Last verified")
    def mfa_last_verified(self, obj: Any) -> str:
        return when_text(self.mfa_row(obj).status.last_verified_at, runtime().clock())

    # -- who may: each action needs the tier core.roles gives it -----------------------------

    def _may(self, request: HttpRequest, action: str) -> bool:
        return roles.allowed(role_of(request), action)

    def has_mfa_reset_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "reset")

    def has_mfa_unlock_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "unlock")

    def has_mfa_force_logout_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "logout")

    def has_mfa_exempt_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "exempt")

    def has_mfa_unexempt_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "unexempt")

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

    def _confirm(
        self,
        request: HttpRequest,
        users: list[Any],
        action: str,
        template: str = "admin/mfa_middleware/action_confirm.html",
        **extra: Any,
    ) -> TemplateResponse | None:
        """The "Are you sure?" page every action shows first (nothing is changed yet), the
        selected users listed; None once the administrator answered yes on it."""
        if request.POST.get(CONFIRM_FIELD) == "yes":
            return None
        asked = ASKED[action]
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "asked": asked,
            "users": users,
            "opts": self.model._meta,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "confirm_field": CONFIRM_FIELD,
            "media": self.media,
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def _act(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        action: str,
        change: Callable[[Admin, str], object],
    ) -> HttpResponse | None:
        """Confirm, then apply `change` to each selected user through the core (which emits
        its event, the administrator as actor) and log it in the user's history; a change
        that returns False did nothing and is not logged."""
        acting = self._ops(request)
        if acting is None:
            return None
        users = list(queryset)
        asked = self._confirm(request, users, action)
        if asked is not None:
            return asked
        changed = 0
        for user in users:
            if change(acting, str(user.pk)) is not False:
                changed += 1
                self.log_change(request, user, ASKED[action].logged)
        self.message_user(request, ASKED[action].told.format(count=changed), messages.SUCCESS)
        return None

    # -- the actions ------------------------------------------------------------------------

    @admin.action(description="Reset two-step verification", permissions=["mfa_reset"])
    def mfa_reset(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        acting = self._ops(request)
        if acting is None:
            return None
        users = list(queryset)
        enroll_code = runtime().config.recovery.enroll_code_ttl is not None
        asked = self._confirm(
            request,
            users,
            "mfa_reset",
            "admin/mfa_middleware/reset_confirm.html",
            enroll_code=enroll_code,
        )
        if asked is not None:
            return asked
        by = request.user.get_username()
        done = []
        for user in users:
            address = getattr(user, str(user.get_email_field_name()), None) or None
            reset = acting.reset(str(user.pk), email=address, by=by)
            self.log_change(request, user, ASKED["mfa_reset"].logged)
            done.append(
                {
                    "user": user,
                    "code": reset.handover,
                    "code_sent": reset.code_sent,
                    "emailed_to": reset.emailed_to,
                }
            )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Two-step verification reset",
            "opts": self.model._meta,
            "done": done,
        }
        return TemplateResponse(request, "admin/mfa_middleware/reset_done.html", context)

    @admin.action(description="Unlock two-step verification", permissions=["mfa_unlock"])
    def mfa_unlock(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._act(request, queryset, "mfa_unlock", Admin.unlock)

    @admin.action(description="Sign out everywhere", permissions=["mfa_force_logout"])
    def mfa_force_logout(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        return self._act(request, queryset, "mfa_force_logout", Admin.logout)

    @admin.action(description="Exempt API calls from 2FA", permissions=["mfa_exempt"])
    def mfa_exempt(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._act(request, queryset, "mfa_exempt", lambda ops_, uid: ops_.exempt(uid))

    @admin.action(description="Remove the 2FA exemption", permissions=["mfa_unexempt"])
    def mfa_unexempt(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._act(
            request, queryset, "mfa_unexempt", lambda ops_, uid: ops_.exempt(uid, False)
        )
