"""The Django admin's user list with two-step verification: each user's 2FA status, method,
authenticators, trusted devices, exemption and last verification, filters by them, and
actions (reset, unlock, sign out everywhere; exempting needs a superuser), each asking first:
mfa_middleware.django.admin. Beside them, django-hijack's "Impersonate" button (support staff
signed in as a user, issue 21)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from hijack.contrib.admin import HijackUserAdminMixin

from mfa_middleware.django.admin import MFA_COLUMNS, MFA_FILTERS, MFAUserAdminMixin

admin.site.unregister(User)
# the list's columns and filters take the width: no app list beside them (it is on /admin/)
admin.site.enable_nav_sidebar = False


@admin.register(User)
class DemoUserAdmin(MFAUserAdminMixin, HijackUserAdminMixin, UserAdmin):
    """MFAUserAdminMixin first: django-hijack's list (its "Impersonate" button) does not call
    on to the classes after it, so ours reads the page's 2FA rows around it in one call."""

    # the address is searched (UserAdmin's search_fields), not shown: with django-hijack's
    # button the 2FA columns take the width of a laptop screen
    list_display = ("username", *MFA_COLUMNS)
    list_filter = ("is_staff", "is_superuser", *MFA_FILTERS)
