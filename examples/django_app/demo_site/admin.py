"""The Django admin's user list with two-step verification: each user's 2FA status, method,
authenticators, trusted devices, exemption and last verification, filters by them, and
actions (reset, unlock, sign out everywhere; exempting needs a superuser), each asking first:
mfa_middleware.django.admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from mfa_middleware.django.admin import MFA_COLUMNS, MFA_FILTERS, MFAUserAdminMixin

admin.site.unregister(User)
# the list's columns and filters take the width: no app list beside them (it is on /admin/)
admin.site.enable_nav_sidebar = False


@admin.register(User)
class DemoUserAdmin(MFAUserAdminMixin, UserAdmin):
    list_display = ("username", "email", *MFA_COLUMNS)
    list_filter = ("is_staff", "is_superuser", *MFA_FILTERS)
