"""The Django admin's user list with a two-step verification column and actions (reset,
unlock, sign out everywhere; exempting needs a superuser): mfa_middleware.django.admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from mfa_middleware.django.admin import MFAUserAdminMixin, TwoFactorFilter

admin.site.unregister(User)


@admin.register(User)
class DemoUserAdmin(MFAUserAdminMixin, UserAdmin):
    list_display = (*UserAdmin.list_display, "two_factor")
    list_filter = (*UserAdmin.list_filter, TwoFactorFilter)
